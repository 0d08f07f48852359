"""What ``Hierarchy`` and ``ImageEncoder`` share: the ``.ohr`` file and buffer plumbing,
the own random stream, the per-object lock, copies and pickling.

A model is the arrays its ``_section_arrays()`` lists (state, weights, persistent)
plus the header its ``_architecture()`` and ``params`` describe. Everything that
moves a model in or out of bytes goes through those two, so a copy, a pickle, a
file and a buffer are the same bytes and continue the same way.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core, aogmaneo, ohr
from ._errors import NeoError
from ._merge import merge_sources
from ._threads import ThreadTuner, exclusive, holding
from .params import MergeMode

_U64 = 2**64
# Kernels index every array with C ints: no single array may reach 2**31 elements.
MAX_ELEMENTS = 2**31 - 1

# What a file of each kind is called when the wrong class is asked to load it.
_KIND_NAMES = {
    "hierarchy": "a Hierarchy (load it with neocli.Hierarchy)",
    "image_encoder": "an ImageEncoder (load it with neocli.ImageEncoder)",
}

# A section's expected arrays: (name, little-endian dtype string, element count).
Layout = dict[str, list[tuple[str, str, int]]]


def as_state(state: Any) -> int:
    """A random-stream position given by the user, as an unsigned 64-bit integer."""
    if isinstance(state, bool) or not isinstance(state, (int, np.integer)):
        raise TypeError(f"state must be an integer, got {type(state).__name__}")
    return int(state) % _U64


def as_bytes_view(buffer: Any, what: str) -> memoryview:
    """A flat byte view of a bytes-like object or a uint8 array."""
    if isinstance(buffer, np.ndarray):
        if buffer.dtype != np.uint8:
            raise TypeError(f"{what} must be a uint8 array or a bytes-like object, got dtype {buffer.dtype}")
        return memoryview(np.ascontiguousarray(buffer).reshape(-1)).cast("B")
    if isinstance(buffer, (str, int, float)) or buffer is None:
        raise TypeError(f"{what} must be bytes, bytearray, memoryview or a uint8 array, got {type(buffer).__name__}")
    try:
        view = memoryview(buffer)  # any buffer-protocol object: array.array, mmap, ...
    except TypeError:
        raise TypeError(f"{what} must be bytes, bytearray, memoryview or a uint8 array, "
                        f"got {type(buffer).__name__}") from None
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B")


def check_path(file_name: Any) -> None:
    # bytes: file names that are not valid UTF-8 (os.fsencode) must work too.
    if not isinstance(file_name, (str, bytes, os.PathLike)):
        raise TypeError(f"file_name must be a path, got {type(file_name).__name__}")


def check_cells(arrays: dict[str, np.ndarray], name: str, z: int) -> None:
    """Refuse a staged CSDR ``arrays[name]`` with a cell index outside ``[0, z)``.

    These values index weights inside the kernels, which run without bounds checks.
    """
    a = arrays[name]
    if a.size and (a.min() < 0 or a.max() >= z):
        raise NeoError(f"state buffer: {name} holds a cell index outside [0, {z}): "
                       "the buffer is corrupt or from another model")


def check_index(i: Any, what: str, n: int, lo: int = 0) -> int:
    """``i`` checked as an index in ``[lo, n)``; ``what`` names it in messages."""
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, got {type(i).__name__}")
    if not lo <= i < n:
        raise NeoError(f"{what} {i} out of range [{lo}, {n - 1}]")
    return int(i)


def hidden_cell(pos: Any, hidden_size: tuple[int, int, int]) -> tuple[int, int, int]:
    """``pos`` checked as a hidden cell ``(x, y, z)`` of a layer of ``hidden_size``."""
    try:
        x, y, z = (int(a) for a in pos)
    except (TypeError, ValueError):
        raise NeoError(f"position must be a cell (x, y, z), got {pos!r}") from None
    hw, hh, hz = hidden_size
    if not (0 <= x < hw and 0 <= y < hh and 0 <= z < hz):
        raise NeoError(f"cell {tuple(pos)} outside hidden size {tuple(hidden_size)}")
    return x, y, z


def field_bytes(field: np.ndarray, cell: tuple[int, int, int], hidden_size: tuple[int, int, int],
                visible: tuple[int, int, int], r: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A receptive field ``[ox][oy][c]`` (a private copy) as pyaogmaneo returns it: flat,
    with its shape, and 0 at the offsets outside the visible layer (never read or written)."""
    vw, vh, vz = visible
    d = 2 * r + 1
    sx, sy = np.float32(vw) / np.float32(hidden_size[0]), np.float32(vh) / np.float32(hidden_size[1])
    ox = np.arange(d) + int((np.float32(cell[0]) + np.float32(0.5)) * sx) - r
    oy = np.arange(d) + int((np.float32(cell[1]) + np.float32(0.5)) * sy) - r
    field[(ox < 0) | (ox >= vw), :, :] = 0
    field[:, (oy < 0) | (oy >= vh), :] = 0
    return field.reshape(-1), (d, d, vz)


def _concat(arrays: list[tuple[str, np.ndarray]]) -> np.ndarray:
    if not arrays:
        return np.zeros(0, dtype=np.uint8)
    return np.concatenate([a.reshape(-1).view(np.uint8) for _, a in arrays])


def _restore(cls: type, data: bytes) -> Any:
    """Unpickling: the model the ``.ohr`` bytes ``data`` hold (see ``_Model.__reduce__``)."""
    return cls(buffer=data)


class _Model:
    """Base of the model classes: what they do alike, written once.

    A subclass sets ``_KIND`` (the header's ``kind``), ``_NAME`` and ``_NOUN`` (for messages) and
    provides ``_section_arrays``, ``_architecture``, ``_read_header``, ``_check_architecture``, ``_layout``,
    ``_build_from``, ``_check_params``, ``_fill_state`` and ``_weights_changed``.
    Its own random stream is ``self._core_rng`` (a ``_core.Rng``; decisions D2).
    """

    _KIND = ""
    _NAME = ""
    _ARTICLE = "a"  # before _NAME and _NOUN
    _NOUN = ""  # in running text
    _HEADER_KIND = True  # False: the header carries no "kind" key (hierarchy files predate it)

    # ------------------------------------------------------------------ construction
    def _init_runtime(self) -> None:
        """The per-object parts that are never saved: the lock, the thread tuner, the stream."""
        self._core_rng = _core.Rng(0)
        self._tuner = ThreadTuner()
        self._lock = threading.RLock()  # see _threads.exclusive

    def _open(self, file_name: Any, buffer: Any) -> bool:
        """Load from ``buffer`` (if not empty) or ``file_name`` (if given); False if neither."""
        # pyaogmaneo's own file/buffer format, told apart by its first bytes: read as .ohr bytes.
        converted = aogmaneo.load_source(file_name, buffer, self._KIND)
        if converted is not None:
            file_name, buffer = "", converted
        if buffer is not None:
            view = as_bytes_view(buffer, "buffer")
            if len(view) > 0:
                self._load(*ohr.decode(view))
                return True
        if file_name:
            check_path(file_name)
            self._load(*ohr.read_file(file_name))
            return True
        return False

    # ------------------------------------------------------------------ sizes and buffers
    def get_state_size(self) -> int:
        """Bytes of the temporal state (what ``serialize_state_to_buffer`` returns)."""
        return sum(a.nbytes for _, a in self._section_arrays()["state"])

    def get_weights_size(self) -> int:
        """Bytes of the learned weights (what ``serialize_weights_to_buffer`` returns)."""
        return sum(a.nbytes for _, a in self._section_arrays()["weights"])

    def get_size(self) -> int:
        """Bytes of all model data: state + weights + persistent (decisions D5)."""
        return sum(a.nbytes for s in self._section_arrays().values() for _, a in s)

    @exclusive
    def serialize_state_to_buffer(self) -> np.ndarray:
        """The state as a uint8 array, byte-compatible with pyaogmaneo's."""
        return _concat(self._section_arrays()["state"])

    @exclusive
    def serialize_weights_to_buffer(self) -> np.ndarray:
        """The weights as a uint8 array, byte-compatible with pyaogmaneo's."""
        return _concat(self._section_arrays()["weights"])

    @exclusive
    def set_state_from_buffer(self, buffer: Any) -> None:
        """Restore the state from ``serialize_state_to_buffer`` bytes of the same structure.

        The buffer is validated completely first: on an error nothing changes.
        """
        self._fill_state(self._section_arrays()["state"], as_bytes_view(buffer, "state buffer"))

    def _staged(self, arrays: list[tuple[str, np.ndarray]], data: memoryview, what: str) -> dict[str, np.ndarray]:
        """Copies of ``arrays`` filled from ``data``, after checking its length; the
        caller validates them and only then copies them in (no partial update)."""
        total = sum(a.nbytes for _, a in arrays)
        if len(data) != total:
            raise NeoError(f"{what} buffer has {len(data)} bytes but this {self._NOUN}'s {what} is {total} "
                           f"bytes: the buffer comes from {self._ARTICLE} {self._NOUN} of a different structure")
        raw = np.frombuffer(data, dtype=np.uint8)
        out, pos = {}, 0
        for n, a in arrays:
            out[n] = raw[pos:pos + a.nbytes].view(a.dtype).copy()
            pos += a.nbytes
        return out

    def _set_weights(self, buffer: Any) -> None:
        arrays = self._section_arrays()["weights"]
        got = self._staged(arrays, as_bytes_view(buffer, "weights buffer"), "weights")
        for n, a in arrays:
            a.reshape(-1)[...] = got[n]
        self._weights_changed()

    # ------------------------------------------------------------------ files
    def _header_meta(self) -> dict[str, Any]:
        sizes = {k: sum(a.nbytes for _, a in v) for k, v in self._section_arrays().items()}
        return {
            **({"kind": self._KIND} if self._HEADER_KIND else {}),
            "architecture": self._architecture(),
            "params": self.params.to_dict(),
            "sizes": {**sizes, "total": sum(sizes.values())},
        }

    def _encode(self, meta: dict[str, Any] | None = None, include_state: bool = True, dest: Any = None) -> Any:
        m = dict(meta or {})
        m.update(self._header_meta())
        secs = self._section_arrays()
        if not include_state:
            del secs["state"]
        if dest is not None:  # streamed array by array: saving does not double peak memory
            return ohr.save(dest, m, secs)
        return ohr.encode(m, secs)

    @exclusive
    def serialize_to_buffer(self, meta: dict[str, Any] | None = None, include_state: bool = True) -> np.ndarray:
        """The complete ``.ohr`` bytes (what ``save_to_file`` writes) as a uint8 array.

        ``meta`` and ``include_state`` are neocli extensions, as for ``save_to_file``.
        """
        return np.frombuffer(self._encode(meta, include_state), dtype=np.uint8).copy()

    @exclusive
    def save_to_file(self, file_name: str, meta: dict[str, Any] | None = None, include_state: bool = True) -> None:
        """Write the model atomically to an ``.ohr`` file.

        neocli extensions: ``meta`` adds JSON header keys (``codec``, ``training``,
        ``user``); ``include_state=False`` leaves the temporal state out (a
        deployable file; loading it gives a cleared state). A failed write leaves
        any previous file intact. ``file_name`` may also be an open binary stream
        (``sys.stdout.buffer``): the file is streamed into it, not atomically.
        """
        if not hasattr(file_name, "write"):
            check_path(file_name)
        self._encode(meta, include_state, dest=file_name)

    @exclusive
    def get_rng_state(self) -> int:
        """The position of this model's own random stream (neocli extension, decisions D2)."""
        return int(self._core_rng.state)

    @exclusive
    def set_rng_state(self, state: int) -> None:
        """Set this model's own random stream, e.g. to seed sampling (neocli extension)."""
        self._core_rng.state = as_state(state)

    def _load(self, header: dict[str, Any], sections: dict[str, dict[str, np.ndarray]]) -> None:
        """Build this model from a decoded ``.ohr`` file, checking it completely.

        The arrays the header's architecture needs are compared with the file's
        before anything is allocated: a hostile header must not make us allocate
        gigabytes, and no array may be read with another size than it has.
        """
        kind = header.get("kind", "hierarchy")
        if kind != self._KIND:
            what = _KIND_NAMES.get(kind, f"a {kind!r}")
            raise ohr.OhrError(f"this .ohr file holds {what}, not {self._ARTICLE} {self._NAME}")
        what = f"{self._NAME} file"
        try:
            descs, params = self._read_header(header["architecture"], header["params"])
        except (KeyError, TypeError, NeoError) as e:
            # Records raise NeoError for bad values ("size must have 3 entries"); say which file part.
            why = f"missing key {e}" if isinstance(e, KeyError) else str(e)
            raise ohr.OhrError(f"{what} header has no valid architecture/params: {why}") from None
        try:
            arch = self._check_architecture(*descs)
        except (NeoError, TypeError) as e:
            raise ohr.OhrError(f"{what} header's architecture is invalid: {e}") from None
        for name, entries in self._layout(arch).items():
            if name not in sections:
                if name == "state":
                    continue  # a deployable file without temporal context
                raise ohr.OhrError(f"{what} has no {name} section")
            got = sections[name]
            names = [n for n, _, _ in entries]
            if list(got) != names:
                raise ohr.OhrError(f"{what}'s {name} section holds the arrays {list(got)}, but its "
                                   f"architecture needs {names}: the file is corrupt or inconsistent")
            for n, dt, size in entries:
                a = got[n]
                if a.dtype.str != dt or a.size != size:
                    raise ohr.OhrError(f"{what}'s array {name}/{n} has dtype {a.dtype} and {a.size} "
                                       f"elements, expected {np.dtype(dt)} and {size} (what its architecture "
                                       "needs): the file is corrupt or inconsistent")
        self._check_sections(sections)
        self._build_from(arch)
        self.params = params
        try:
            self._check_params()
        except (TypeError, NeoError) as e:  # e.g. history_iters = 2**29 (found by fuzzing)
            raise ohr.OhrError(f"{what} header has invalid params: {e}") from None
        expected = self._section_arrays()
        for name in ("weights", "persistent"):
            for n, dst in expected[name]:
                # reshape: the file may store an array with any shape (found by fuzzing).
                dst.reshape(-1)[...] = sections[name][n].reshape(-1)
        if "state" in sections:
            raw = b"".join(np.ascontiguousarray(a).tobytes() for a in sections["state"].values())
            try:
                self._fill_state(expected["state"], memoryview(raw))
            except NeoError as e:
                raise ohr.OhrError(f"{what}'s state section is invalid: {e}") from None
        self._core_rng.state = int(sections["persistent"]["rng"].reshape(-1)[0])
        self._loaded()

    def _check_sections(self, sections: dict[str, dict[str, np.ndarray]]) -> None:
        """Subclass hook: refuse values a well-sized file may still hold wrongly."""

    # ------------------------------------------------------------------ merge, copies, pickling
    def _merge_from(self, sources: Sequence[Any], mode: MergeMode, what: str) -> None:
        mode, srcs = merge_sources(self, sources, mode, what)
        with holding(srcs):  # a source stepping in another thread would be read half-updated
            self._merge(mode, srcs)

    def __copy__(self):
        return self.__deepcopy__({})

    @exclusive
    def __deepcopy__(self, memo: dict):
        """A fully independent copy (weights, state, params, random stream)."""
        return type(self)(buffer=self._encode())

    @exclusive
    def __reduce__(self):
        """Pickle as the model's ``.ohr`` bytes: unpickled, it continues bit-exactly."""
        return (_restore, (type(self), self._encode()))
