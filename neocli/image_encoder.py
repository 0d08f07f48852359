"""The ``ImageEncoder`` façade: pyaogmaneo 2.14.4's dense image pre-encoder (spec §10).

An ``ImageEncoder`` turns one or more uint8 images into a CSDR (usually fed to a
``none`` IO port of a :class:`~neocli.Hierarchy`). Each hidden column is a small
self-organising map along its cells; an optional learned linear decoder
reconstructs the images from a CSDR.

Every argument is validated here before a kernel runs: the kernels
(``cython_core/_image.pyx``) are compiled without bounds checks.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core, _image, aogmaneo, ohr
from ._errors import NeoError
from ._threads import ThreadTuner, exclusive, get_num_threads, holding, run_step
from ._merge import merge_sources
from .params import MergeMode, _Record, _size3

__all__ = ["ImageEncoder", "ImageEncoderParams", "ImageVisibleLayerDesc"]

KIND = "image_encoder"
_U64 = 2**64
# Kernels index every array with C ints: no single array may reach 2**31 elements.
_MAX_ELEMENTS = 2**31 - 1


class ImageVisibleLayerDesc(_Record):
    """One input image: its size ``(width, height, channels)`` and the field radius onto it.

    The defaults are pyaogmaneo's Python defaults, ``(5, 5, 16)`` and 4.
    """

    _fields = {"size": "size", "radius": "i"}

    def __init__(self, size=(5, 5, 16), radius=4):
        self.size = size
        self.radius = radius


class ImageEncoderParams(_Record):
    """Learning parameters of an :class:`ImageEncoder` (spec §10, §12), read at every step.

    ``falloff``: SOM neighbour rate multiplier per cell of distance; ``lr``: how
    fast a cell's resource (its plasticity) is used up; ``scale``: reconstruction
    contrast; ``rr``: reconstruction learning rate; ``n_radius``: SOM neighbourhood
    radius along the cell axis.
    """

    _fields = {"falloff": "f", "lr": "f", "scale": "f", "rr": "f", "n_radius": "i"}

    def __init__(self, falloff=0.9, lr=0.1, scale=2.0, rr=0.02, n_radius=1):
        self.falloff = falloff
        self.lr = lr
        self.scale = scale
        self.rr = rr
        self.n_radius = n_radius


def _as_bytes_view(buffer: Any, what: str) -> memoryview:
    """A flat byte view of a bytes-like object or a uint8 array."""
    if isinstance(buffer, np.ndarray):
        if buffer.dtype != np.uint8:
            raise TypeError(f"{what} must be a uint8 array or a bytes-like object, got dtype {buffer.dtype}")
        return memoryview(np.ascontiguousarray(buffer).reshape(-1)).cast("B")
    if isinstance(buffer, (bytes, bytearray, memoryview)):
        return memoryview(buffer).cast("B")
    raise TypeError(f"{what} must be bytes, bytearray, memoryview or a uint8 array, got {type(buffer).__name__}")


def _check_descs(hidden_size: Any, descs: Any) -> tuple[tuple[int, int, int], list[ImageVisibleLayerDesc]]:
    """Validate the constructor's descriptors (before anything is allocated)."""
    if isinstance(hidden_size, (str, bytes)):
        raise TypeError(f"hidden_size must be a (width, height, column_size) tuple, got {hidden_size!r}")
    hs = _size3(hidden_size, "hidden_size")
    if not isinstance(descs, Sequence) or isinstance(descs, (str, bytes)):
        raise TypeError("visible_layer_descs must be a list of ImageVisibleLayerDesc")
    vis = list(descs)
    if not vis:
        raise NeoError("an ImageEncoder needs at least one ImageVisibleLayerDesc "
                       "(or file_name=/buffer= to load one)")
    for i, c in enumerate(("width", "height", "column_size")):
        if hs[i] < 1:
            raise NeoError(f"hidden_size {c} must be >= 1, got {hs}")
    out = []
    for v, d in enumerate(vis):
        if not isinstance(d, ImageVisibleLayerDesc):
            raise TypeError(f"visible_layer_descs[{v}] must be an ImageVisibleLayerDesc, got {type(d).__name__}")
        if min(d.size) < 1:
            raise NeoError(f"visible layer {v}: size must be >= 1 in every dimension (width, height, channels), "
                           f"got {tuple(d.size)}")
        if d.radius < 0:
            raise NeoError(f"visible layer {v}: radius must be >= 0, got {d.radius}")
        out.append(ImageVisibleLayerDesc(tuple(d.size), d.radius))
    cells = hs[0] * hs[1] * hs[2]
    if 2 * cells > _MAX_ELEMENTS:
        raise NeoError(f"hidden_size {hs} is too large: {cells:,} cells (the limit is {_MAX_ELEMENTS // 2:,})")
    for v, d in enumerate(out):
        w, h, c = d.size
        n = cells * c * (2 * d.radius + 1) ** 2
        if n > _MAX_ELEMENTS or w * h * c > _MAX_ELEMENTS:
            raise NeoError(f"visible layer {v} (size {tuple(d.size)}, radius {d.radius}) would need an array of "
                           f"{max(n, w * h * c):,} elements; the limit is {_MAX_ELEMENTS:,} "
                           "(reduce the sizes or the radius)")
    return hs, out


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def _check_params(p: Any) -> None:
    if type(p) is not ImageEncoderParams and not isinstance(p, ImageEncoderParams):
        raise TypeError(f"params must be an ImageEncoderParams, got {type(p).__name__}")
    # One test for all four (they are float32 values, so a finite sum means all are finite).
    if not math.isfinite(p.falloff + p.lr + p.scale + p.rr):
        name = next(n for n in ("falloff", "lr", "scale", "rr") if not math.isfinite(getattr(p, n)))
        raise NeoError(f"params.{name} must be finite, got {getattr(p, name)}")
    if p.n_radius < 0:
        raise NeoError(f"params.n_radius must be >= 0, got {p.n_radius}")


class ImageEncoder:
    """Dense uint8 images -> a CSDR (spec §10), API-compatible with pyaogmaneo 2.14.4.

    ``ImageEncoder(hidden_size, visible_layer_descs)`` builds a new encoder, drawing
    its initial weights from the process-wide generator exactly as pyaogmaneo does
    (so ``set_global_state(s)`` then constructing gives pyaogmaneo's weights); it
    then continues on its own random stream, saved with it (decisions D2).
    ``ImageEncoder(file_name=...)`` loads an ``.ohr`` image-encoder file and
    ``ImageEncoder(buffer=...)`` the bytes ``serialize_to_buffer()`` returned.
    """

    def __init__(self, hidden_size: Sequence[int] = (5, 5, 16),
                 visible_layer_descs: Sequence[ImageVisibleLayerDesc] = (),
                 file_name: str = "", buffer: Any = None) -> None:
        # pyaogmaneo's own file/buffer format, told apart by its first bytes: read as .ohr bytes.
        converted = aogmaneo.load_source(file_name, buffer, "image_encoder")
        if converted is not None:
            file_name, buffer = "", converted
        if buffer is not None and len(_as_bytes_view(buffer, "buffer")) > 0:
            header, sections = ohr.decode(_as_bytes_view(buffer, "buffer"))
            self._load(header, sections)
        elif file_name:
            if not isinstance(file_name, (str, bytes, os.PathLike)):
                raise TypeError(f"file_name must be a path, got {type(file_name).__name__}")
            header, sections = ohr.read_file(file_name)
            self._load(header, sections)
        else:
            hs, descs = _check_descs(hidden_size, visible_layer_descs)
            self._build(hs, descs)
            state = int(_core.GLOBAL_RNG.state)
            for fw in self._k.forward_weights:
                state = _image.fill_random_bytes(fw, state)
            self._k.refresh_norms()
            _core.GLOBAL_RNG.state = state
            self._rng = state

    def _build(self, hidden_size: tuple[int, int, int], descs: list[ImageVisibleLayerDesc]) -> None:
        self._hidden_size = hidden_size
        self._descs = descs
        self._k = _image.ImageKernel(hidden_size, [(*d.size, d.radius) for d in descs])
        self._rng = 0
        self._tuner = ThreadTuner()
        self._lock = threading.RLock()  # see _threads.exclusive
        self.params = ImageEncoderParams()

    # ------------------------------------------------------------------ stepping
    def _coerce_image(self, v: int, x: Any) -> np.ndarray:
        w, h, c = self._descs[v].size
        n = w * h * c
        if type(x) is np.ndarray and x.dtype == np.uint8 and x.ndim == 1 and x.size == n and x.flags.c_contiguous:
            return x  # the common case, checked cheaply: any byte is a valid pixel
        where = f"visible layer {v} (size {w}x{h}x{c})"
        if isinstance(x, np.ndarray) and x.dtype == np.uint8:
            a = x
        else:
            if isinstance(x, (bool, int, float, np.generic)):
                raise TypeError(f"{where}: expected an image of {n} pixel bytes, got a single {type(x).__name__}")
            try:
                a = np.asarray(x)
            except (ValueError, TypeError) as e:
                raise TypeError(f"{where}: expected an image (a sequence of {n} bytes), got {type(x).__name__}: {e}") from None
            if a.dtype == np.bool_:
                raise TypeError(f"{where}: expected pixel bytes in [0, 255], got booleans "
                                "(for a binary image pass img.astype(np.uint8) * 255)")
            if a.dtype.kind in "iu":
                if a.size and (a.min() < 0 or a.max() > 255):
                    bad = int(np.flatnonzero((a.reshape(-1) < 0) | (a.reshape(-1) > 255))[0])
                    raise NeoError(f"{where}: pixel {bad} is {a.reshape(-1)[bad]}, outside the byte range [0, 255]")
            elif a.dtype.kind == "f":
                flat = a.reshape(-1)
                finite = np.isfinite(flat)
                if not finite.all():
                    bad = int(np.flatnonzero(~finite)[0])
                    raise NeoError(f"{where}: pixel {bad} is {flat[bad]}; pixels must be finite bytes in [0, 255]")
                if a.size and (flat.min() < 0 or flat.max() > 255):
                    bad = int(np.flatnonzero((flat < 0) | (flat > 255))[0])
                    raise NeoError(f"{where}: pixel {bad} is {flat[bad]}, outside the byte range [0, 255]")
                frac = flat != np.floor(flat)
                if frac.any():
                    bad = int(np.flatnonzero(frac)[0])
                    hint = (" (an image scaled to [0, 1] must be converted first: "
                            "(img * 255).round().astype(np.uint8))" if flat.max() <= 1.0 else "")
                    raise NeoError(f"{where}: pixels are bytes in [0, 255], but pixel {bad} is {flat[bad]}, "
                                   f"not a whole number{hint}")
            else:
                raise TypeError(f"{where}: expected pixel bytes (uint8), got dtype {a.dtype}")
        if a.size != n:
            raise NeoError(f"{where}: expected {n} pixel values (width x height x channels), got {a.size}")
        if a.ndim != 1 and a.shape not in ((w, h, c), (w * h, c)) and not (c == 1 and a.shape == (w, h)):
            hint = ("; columns are x-major, so an (H, W, C) array needs .transpose(1, 0, 2)"
                    if a.shape in ((h, w, c), (h, w)) else "")
            raise NeoError(f"{where}: expected a flat array of {n} bytes or shape ({w}, {h}, {c}), "
                           f"got shape {a.shape}{hint}")
        return np.ascontiguousarray(a.reshape(-1), dtype=np.uint8)

    def step(self, inputs: Sequence[Any], learn_enabled: bool = True, learn_recon: bool = False) -> None:
        """Encode one image per visible layer into the hidden CSDR (spec §10.2).

        Images are uint8 (or whole numbers in [0, 255]) in x-major order: a flat
        array of ``width*height*channels`` bytes, or an array of shape
        ``(width, height, channels)``. With ``learn_enabled`` the SOM learns; with
        ``learn_recon`` as well, so does the reconstruction. Using this encoder
        from a second thread during the step raises NeoError.
        """
        if type(inputs) is list or type(inputs) is tuple:
            pass  # the common case, without the slower abstract-class check below
        elif isinstance(inputs, np.ndarray) and inputs.ndim >= 2:
            inputs = list(inputs)  # a stacked array of images, as pyaogmaneo accepts
        elif isinstance(inputs, np.ndarray) or not isinstance(inputs, Sequence) or isinstance(inputs, (str, bytes)):
            raise TypeError("inputs must be a list with one image per visible layer "
                            "(wrap a single image in a list: step([img]))")
        nv = len(self._descs)
        if len(inputs) != nv:
            raise NeoError(f"step needs one image per visible layer: expected {nv}, got {len(inputs)}")
        images = [self._coerce_image(v, x) for v, x in enumerate(inputs)]
        p = self.params
        _check_params(p)
        learn = _flag(learn_enabled, "learn_enabled")
        recon = _flag(learn_recon, "learn_recon")
        k, par_work = self._k, _core.get_parallel_threshold()
        self._rng = run_step(self, learn, lambda nt: k.step(images, learn, recon, p.falloff, p.lr, p.scale, p.rr,
                                                            p.n_radius, nt, par_work, self._rng))

    def _coerce_cis(self, cis: Any) -> np.ndarray:
        hw, hh, hz = self._hidden_size
        cols = hw * hh
        if isinstance(cis, (bool, np.bool_)):
            raise TypeError("recon_cis must be a CSDR of integer cell indices, got a bool")
        try:
            a = np.asarray(cis)
        except (ValueError, TypeError) as e:
            raise TypeError(f"recon_cis must be a CSDR (a sequence of {cols} integer cell indices): {e}") from None
        if a.dtype.kind not in "iu":
            raise TypeError(f"recon_cis must hold integer cell indices in [0, {hz}), got dtype {a.dtype}")
        if a.ndim != 1 and a.shape != (hw, hh):
            raise NeoError(f"recon_cis must be a 1-D CSDR of {cols} columns (or shape ({hw}, {hh})), got shape {a.shape}")
        if a.size != cols:
            raise NeoError(f"recon_cis must have one cell index per hidden column ({cols}), got {a.size}")
        flat = a.reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= hz):
            bad = int(np.flatnonzero((flat < 0) | (flat >= hz))[0])
            raise NeoError(f"recon_cis: cell index {flat[bad]} at column {bad} is out of range [0, {hz})")
        return np.ascontiguousarray(flat, dtype=np.int32)

    @exclusive
    def reconstruct(self, recon_cis: Any) -> None:
        """Reconstruct every visible layer's image from a hidden CSDR; read it with ``get_reconstruction``."""
        cis = self._coerce_cis(recon_cis)
        _check_params(self.params)
        self._k.reconstruct(cis, self.params.scale, get_num_threads(), _core.get_parallel_threshold())

    # ------------------------------------------------------------------ queries
    def _visible_index(self, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"visible layer index must be an integer, got {type(v).__name__}")
        if not 0 <= v < len(self._descs):
            raise NeoError(f"visible layer index {v} out of range [0, {len(self._descs) - 1}]")
        return int(v)

    @exclusive
    def get_hidden_cis(self) -> np.ndarray:
        """The current hidden CSDR (int32, one cell index per hidden column)."""
        return self._k.hidden_cis.copy()

    def get_hidden_size(self) -> tuple[int, int, int]:
        """The hidden size ``(W, H, Z)``."""
        return tuple(self._hidden_size)

    def get_num_visible_layers(self) -> int:
        """Number of input images."""
        return len(self._descs)

    def get_visible_size(self, i: int) -> tuple[int, int, int]:
        """Visible layer ``i``'s image size ``(width, height, channels)``."""
        return tuple(self._descs[self._visible_index(i)].size)

    def get_visible_layer_desc(self, i: int) -> ImageVisibleLayerDesc:
        """A copy of visible layer ``i``'s descriptor (neocli extension)."""
        d = self._descs[self._visible_index(i)]
        return ImageVisibleLayerDesc(tuple(d.size), d.radius)

    @exclusive
    def get_reconstruction(self, i: int) -> np.ndarray:
        """Visible layer ``i``'s image from the last ``reconstruct`` (uint8, zeros before any)."""
        return self._k.reconstructions[self._visible_index(i)].copy()

    @exclusive
    def get_receptive_field(self, i: int, pos: tuple[int, int, int]):
        """The forward weights of one hidden cell as (uint8 array ``d*d*C``, ``(d, d, C)``).

        Element ``[ox][oy][c]``; offsets outside the image are 0, as in pyaogmaneo.
        """
        v = self._visible_index(i)
        hw, hh, hz = self._hidden_size
        try:
            x, y, z = (int(a) for a in pos)
        except (TypeError, ValueError):
            raise NeoError(f"position must be a cell (x, y, z), got {pos!r}") from None
        if not (0 <= x < hw and 0 <= y < hh and 0 <= z < hz):
            raise NeoError(f"cell {tuple(pos)} outside hidden size {self._hidden_size}")
        (vw, vh, vc), r = self._descs[v].size, self._descs[v].radius
        d = 2 * r + 1
        fw = self._k.forward_weights[v].reshape(hw * hh, d, d, vc, hz)
        field = np.ascontiguousarray(fw[x * hh + y, :, :, :, z])
        sx, sy = np.float32(vw) / np.float32(hw), np.float32(vh) / np.float32(hh)
        cx = int((np.float32(x) + np.float32(0.5)) * sx)
        cy = int((np.float32(y) + np.float32(0.5)) * sy)
        ox = np.arange(d) + cx - r
        oy = np.arange(d) + cy - r
        field[(ox < 0) | (ox >= vw), :, :] = 0
        field[:, (oy < 0) | (oy >= vh), :] = 0
        return field.reshape(-1), (d, d, vc)

    # ------------------------------------------------------------------ sizes and buffers
    def _section_arrays(self) -> dict[str, list[tuple[str, np.ndarray]]]:
        """The arrays of the state, weights and persistent sections (spec §9.1, §10.1 order)."""
        k = self._k
        weights = []
        for v in range(k.nv):
            weights.append((f"v{v}.forward", k.forward_weights[v]))
            weights.append((f"v{v}.recon", k.recon_weights[v]))
        return {
            "state": [("hidden_cis", k.hidden_cis)],
            "weights": weights,
            "persistent": [("rng", np.array([self._rng], dtype=np.uint64)), ("resources", k.resources)],
        }

    def get_state_size(self) -> int:
        """Bytes of the state (the hidden CSDR), as pyaogmaneo counts them."""
        return self._k.hidden_cis.nbytes

    def get_weights_size(self) -> int:
        """Bytes of the weights (forward and reconstruction), as pyaogmaneo counts them."""
        return sum(a.nbytes for _, a in self._section_arrays()["weights"])

    def get_size(self) -> int:
        """Bytes of all model data: state + weights + persistent (decisions D5).

        pyaogmaneo's ``get_size()`` also counts its descriptor and params bytes
        (9,404 for spec §10.3's example, against 9,332 here); in an ``.ohr`` file
        those live in the header, and the persistent section adds the encoder's
        random-stream position to the resources.
        """
        return sum(a.nbytes for s in self._section_arrays().values() for _, a in s)

    @exclusive
    def serialize_state_to_buffer(self) -> np.ndarray:
        """The state (hidden CSDR) as a uint8 array, byte-compatible with pyaogmaneo's."""
        return self._k.hidden_cis.view(np.uint8).copy()

    @exclusive
    def serialize_weights_to_buffer(self) -> np.ndarray:
        """The weights as a uint8 array (per visible layer: forward, then reconstruction), as pyaogmaneo's."""
        return np.concatenate([a.reshape(-1).view(np.uint8) for _, a in self._section_arrays()["weights"]])

    @exclusive
    def set_state_from_buffer(self, buffer: Any) -> None:
        """Restore the hidden CSDR from ``serialize_state_to_buffer`` bytes of the same structure."""
        data = _as_bytes_view(buffer, "state buffer")
        cis = self._check_state_bytes(data, "state buffer")
        self._k.hidden_cis[...] = cis

    def _check_state_bytes(self, data: memoryview, what: str) -> np.ndarray:
        want = self.get_state_size()
        if len(data) != want:
            raise NeoError(f"{what} has {len(data)} bytes but this ImageEncoder's state is {want} bytes: "
                           "the buffer comes from an encoder of a different structure")
        cis = np.frombuffer(data, dtype="<i4").astype(np.int32)
        hz = self._hidden_size[2]
        if cis.size and (cis.min() < 0 or cis.max() >= hz):
            raise NeoError(f"{what} holds a hidden cell index outside [0, {hz}): "
                           "the buffer is corrupt or from another encoder")
        return cis

    @exclusive
    def set_weights_from_buffer(self, buffer: Any) -> None:
        """Load weights from ``serialize_weights_to_buffer`` bytes of the same structure.

        As in pyaogmaneo, the cells' resources (how much plasticity each has left)
        are not part of the weights and stay as they are.
        """
        data = _as_bytes_view(buffer, "weights buffer")
        arrays = self._section_arrays()["weights"]
        total = sum(a.nbytes for _, a in arrays)
        if len(data) != total:
            raise NeoError(f"weights buffer has {len(data)} bytes but this ImageEncoder's weights are {total} "
                           "bytes: the buffer comes from an encoder of a different structure")
        raw = np.frombuffer(data, dtype=np.uint8)
        pos = 0
        for _, a in arrays:
            a[...] = raw[pos:pos + a.nbytes]
            pos += a.nbytes
        self._k.refresh_norms()

    def _header_meta(self) -> dict[str, Any]:
        secs = self._section_arrays()
        sizes = {k: sum(a.nbytes for _, a in v) for k, v in secs.items()}
        return {
            "kind": KIND,
            "architecture": {
                "hidden_size": list(self._hidden_size),
                "visible_layer_descs": [d.to_dict() for d in self._descs],
            },
            "params": self.params.to_dict(),
            "sizes": {**sizes, "total": self.get_size()},
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
        """Write the encoder atomically to an ``.ohr`` file (header ``"kind": "image_encoder"``).

        neocli extensions: ``meta`` adds JSON header keys; ``include_state=False``
        leaves the hidden CSDR out (it loads as zeros). A failed write leaves any
        previous file intact. ``file_name`` may also be an open binary stream
        (``sys.stdout.buffer``): the file is streamed into it, not atomically.
        """
        if not isinstance(file_name, (str, bytes, os.PathLike)) and not hasattr(file_name, "write"):
            raise TypeError(f"file_name must be a path or a binary stream, got {type(file_name).__name__}")
        self._encode(meta, include_state, dest=file_name)

    @exclusive
    def get_rng_state(self) -> int:
        """The position of this encoder's own random stream (neocli extension, decisions D2)."""
        return int(self._rng)

    @exclusive
    def set_rng_state(self, state: int) -> None:
        """Set this encoder's own random stream (neocli extension)."""
        if isinstance(state, bool) or not isinstance(state, (int, np.integer)):
            raise TypeError(f"state must be an integer, got {type(state).__name__}")
        self._rng = int(state) % _U64

    def _load(self, header: dict[str, Any], sections: dict[str, dict[str, np.ndarray]]) -> None:
        kind = header.get("kind")
        if kind != KIND:
            what = "a Hierarchy (load it with neocli.Hierarchy)" if kind in (None, "hierarchy") else f"a {kind!r}"
            raise ohr.OhrError(f"this .ohr file holds {what}, not an ImageEncoder")
        arch = header.get("architecture")
        try:
            hs = arch["hidden_size"]
            descs = [ImageVisibleLayerDesc.from_dict(d) for d in arch["visible_layer_descs"]]
            params = ImageEncoderParams.from_dict(header["params"])
            _check_params(params)  # what step() would refuse, refused on load (found by fuzzing)
        except (KeyError, TypeError) as e:
            raise ohr.OhrError(f"image encoder header has no valid architecture/params: {e!r}") from None
        try:
            hs, descs = _check_descs(hs, descs)
        except (TypeError, NeoError) as e:
            raise ohr.OhrError(f"image encoder header has an invalid architecture: {e}") from None
        # Compare the arrays the header claims with what this architecture needs
        # before allocating it: a hostile header must not make us allocate gigabytes.
        cols, cells = hs[0] * hs[1], hs[0] * hs[1] * hs[2]
        want: dict[str, list[tuple[str, str, int]]] = {
            "state": [("hidden_cis", "<i4", cols)],
            "weights": [x for v, d in enumerate(descs) for x in (
                (f"v{v}.forward", "|u1", cells * d.size[2] * (2 * d.radius + 1) ** 2),
                (f"v{v}.recon", "|u1", cells * d.size[2] * (2 * d.radius + 1) ** 2))],
            "persistent": [("rng", "<u8", 1), ("resources", "<f4", cells)],
        }
        for name, entries in want.items():
            if name not in sections:
                if name == "state":
                    continue  # a deployable file without the hidden CSDR
                raise ohr.OhrError(f"image encoder file has no {name} section")
            got = sections[name]
            if list(got) != [n for n, _, _ in entries]:
                raise ohr.OhrError(f"image encoder file's {name} section does not match its architecture "
                                   f"(arrays {list(got)}, expected {[n for n, _, _ in entries]})")
            for n, dt, size in entries:
                a = got[n]
                if a.dtype.str != dt or a.size != size:
                    raise ohr.OhrError(f"image encoder file's array {name}/{n} has dtype {a.dtype} and {a.size} "
                                       f"elements, expected {np.dtype(dt)} and {size}")
        res = sections["persistent"]["resources"]
        if not np.isfinite(res).all():
            raise ohr.OhrError("image encoder file's resources hold non-finite values: the file is corrupt")
        cis = None
        if "state" in sections:
            cis = sections["state"]["hidden_cis"].reshape(-1)
            if cis.size and (cis.min() < 0 or cis.max() >= hs[2]):
                raise ohr.OhrError(f"image encoder file's hidden CSDR holds a cell index outside [0, {hs[2]})")
        self._build(hs, descs)
        self.params = params
        k = self._k
        for v in range(len(descs)):
            k.forward_weights[v][...] = sections["weights"][f"v{v}.forward"].reshape(-1)
            k.recon_weights[v][...] = sections["weights"][f"v{v}.recon"].reshape(-1)
        k.resources[...] = res.reshape(-1)
        k.refresh_norms()
        if cis is not None:
            k.hidden_cis[...] = cis
        self._rng = int(sections["persistent"]["rng"].reshape(-1)[0])

    # ------------------------------------------------------------------ merge and copies
    def _structure(self) -> list[Any]:
        return [list(self._hidden_size)] + [d.to_dict() for d in self._descs]

    @exclusive
    def merge(self, image_encoders: Sequence["ImageEncoder"], mode: MergeMode) -> None:
        """Overwrite this encoder's weights with a merge of ``image_encoders`` (spec §9.5).

        ``merge_average`` averages (rounding half up) and ``merge_random`` picks a
        random source per weight (the same one for the forward and reconstruction
        weight at that index), as their names say (pyaogmaneo 2.14.4 swaps them,
        quirk Q1). All encoders must share this one's structure; the list may
        include this encoder. Resources, state and params are not touched.
        """
        mode, srcs = merge_sources(self, image_encoders, mode, "image_encoders")
        with holding(srcs):  # a source stepping in another thread would be read half-updated
            self._merge(mode, srcs)

    def _merge(self, mode: MergeMode, srcs: list["ImageEncoder"]) -> None:
        n = len(srcs)
        results = []
        state = self._rng
        for v in range(len(self._descs)):
            fws = np.stack([e._k.forward_weights[v] for e in srcs])
            rws = np.stack([e._k.recon_weights[v] for e in srcs])
            if mode == MergeMode.merge_random:
                # One draw per index even for n == 1, as the reference does.
                pick, state = _image.draw_mod(fws.shape[1], n, state)
                idx = np.arange(fws.shape[1])
                results.append((fws[pick, idx], rws[pick, idx]))
            else:
                results.append(tuple(
                    np.floor(s.astype(np.float32).sum(axis=0) / np.float32(n) + np.float32(0.5)).astype(np.uint8)
                    for s in (fws, rws)))
        for v, (fw, rw) in enumerate(results):
            self._k.forward_weights[v][...] = fw
            self._k.recon_weights[v][...] = rw
        self._k.refresh_norms()
        self._rng = state

    def __copy__(self) -> "ImageEncoder":
        return self.__deepcopy__({})

    @exclusive
    def __deepcopy__(self, memo: dict) -> "ImageEncoder":
        """A fully independent copy (weights, resources, state, params, random stream)."""
        return ImageEncoder(buffer=self._encode())

    def __repr__(self) -> str:
        vis = ", ".join(f"{tuple(d.size)} r{d.radius}" for d in self._descs)
        return f"<neocli.ImageEncoder hidden={self._hidden_size} visible=[{vis}]>"
