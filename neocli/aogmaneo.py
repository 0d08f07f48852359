"""pyaogmaneo 2.14.4's own model files and buffers: read them, write them.

pyaogmaneo saves a whole model with ``save_to_file`` or ``serialize_to_buffer()``
in its own binary layout (learned from the bytes it writes; README section
"Migrating from pyaogmaneo"). This module converts that layout to
and from neocli's ``.ohr`` container, so that ``Hierarchy(file_name=...)``,
``Hierarchy(buffer=...)`` and the ``ImageEncoder`` equivalents accept both, and a
neocli model can be written back for AOgmaNeo.

The layout (little-endian throughout; ``int4`` = four int32, the fourth is
padding that pyaogmaneo may leave uninitialised; ``D`` = dendrites per cell)::

    Hierarchy   int32 magic 5710502, L, n_io, n_pred, n_act
                n_io x int4 IO size, n_io x uint8 IO type (0 none, 1 prediction, 2 action)
                2*n_io x int32: [d] = IO of decoder d, [n_io + a] = IO of actor a (rest unused)
                n_io x int32: IO -> its decoder or actor index (-1 for a none IO)
                per layer l: the encoder, then its decoders (IO order at l = 0)
                per actor (IO order)
                L x LayerParams (32 bytes), n_io x IOParams (48 bytes)
                uint8 anticipation: only in the file (the buffer lacks this last byte)
    encoder     int4 hidden size, hidden_cis, uint8 committed per cell, int32 nv,
                per visible layer: int4 size, int32 radius, A, B (uint8),
                TA, TB (int32 per cell: in-field sums of A and B), float32 importance
    decoder     int4 size, int32 D, pred_cis, probs, dend, int32 nv,
                per visible layer: int4 size, int32 radius, weights (int8)
    actor       int4 size, int32 value D, int32 policy D, action_cis, values,
                td_scale (float32 per column), int32 nv, per visible layer: int4 size,
                int32 radius, value weights, policy weights (float32);
                int32 history size, capacity, start; capacity history samples
    LayerParams decoder (scale, lr), encoder (choice, vigilance, lr, active_ratio,
                int32 l_radius), recurrent_importance
    IOParams    decoder (scale, lr), actor (vlr, plr, smoothing, delay_rate,
                policy_clip, discount, td_scale_decay, int32 min_steps,
                int32 history_iters), importance
    ImageEncoder int32 magic 2118029, int4 hidden size, params (falloff, lr,
                scale, rr, int32 n_radius), hidden_cis, float32 resources per cell,
                int32 nv, per visible layer: int4 size, int32 radius, forward and
                reconstruction weights (uint8); file and buffer are identical.

Every array above that neocli also has is byte-identical to neocli's (same order,
same element layout), so the conversion only re-frames bytes.

What is not carried:

* pyaogmaneo's random numbers come from one process-wide generator, which no
  file holds. A model read from pyaogmaneo's format gets its own random stream
  (neocli keeps one per model) started at the process-wide state at load time
  (``neocli.get_global_state()``), the position a new model's stream starts from
  after its construction draws; loading draws nothing. ``set_global_state(s)``
  before loading in neocli and before continuing in pyaogmaneo makes both
  continue with the same draws; ``model.set_rng_state(s)`` does it afterwards.
* The actors' delayed policies are not in the format: they start equal to the
  policies, as pyaogmaneo does on load. The actors' last probabilities are not
  either (pyaogmaneo leaves them unset): they read 0 until the next step.
* pyaogmaneo's buffer lacks the anticipation byte (its ``serialize_to_buffer``
  writes it one byte past the end of the buffer it returns): reading a buffer
  gives ``anticipation = True``, the default of a hierarchy's params.
* pyaogmaneo stores the params as they were at the last ``step``, not the current
  Python ones; what the bytes hold is what is read.
* Going the other way, an ``.ohr`` file's extras (codec, training history,
  metadata, the model's random-stream position, the delayed policies) have no
  place in the reference's layout and are dropped.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from . import ohr
from ._errors import NeoError
from .params import (
    ActorParams, DecoderParams, EncoderParams, IODesc, IOParams, IOType, LayerDesc, LayerParams, Params,
)

__all__ = [
    "HIERARCHY_MAGIC", "IMAGE_ENCODER_MAGIC", "FORMAT_NAME", "AogmaneoError", "is_aogmaneo", "kind_of",
    "is_aogmaneo_file", "to_ohr", "from_ohr", "read_hierarchy", "read_image_encoder", "hierarchy_to_bytes",
    "image_encoder_to_bytes", "read_header", "export_file", "import_file", "load_source", "load_model",
]

HIERARCHY_MAGIC = 5710502
IMAGE_ENCODER_MAGIC = 2118029
FORMAT_NAME = "pyaogmaneo-2.14.4"
_KINDS = {HIERARCHY_MAGIC: "hierarchy", IMAGE_ENCODER_MAGIC: "image_encoder"}
_LAYER_PARAMS_BYTES = 32
_IO_PARAMS_BYTES = 48
_IO_HEADER_BYTES = 16 + 1 + 12  # int4 size, type, three index ints
_MAX_UNBACKED = 256 * 2**20  # see _parse_image_encoder


class AogmaneoError(ohr.OhrError):
    """A malformed, truncated or inconsistent pyaogmaneo model file or buffer."""


# --------------------------------------------------------------------------
# recognising the format


def _view(data: Any) -> memoryview:
    """A flat read-only byte view of bytes-like data or a uint8 array."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TypeError(f"data must be a uint8 array or a bytes-like object, got dtype {data.dtype}")
        return memoryview(np.ascontiguousarray(data).reshape(-1)).cast("B").toreadonly()
    if isinstance(data, (str, int, float)) or data is None:
        raise TypeError(f"data must be bytes, bytearray, memoryview or a uint8 array, got {type(data).__name__}")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"data must be bytes, bytearray, memoryview or a uint8 array, "
                        f"got {type(data).__name__}") from None
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B").toreadonly()


def kind_of(data: Any) -> str | None:
    """``"hierarchy"`` or ``"image_encoder"`` if ``data`` starts like a pyaogmaneo save, else None.

    Only the first four bytes are looked at (pyaogmaneo's magic numbers; an
    ``.ohr`` file starts with ``\\x89OHR``); whether the rest is valid is for the
    reader to say.
    """
    mv = _view(data)
    if len(mv) < 4:
        return None
    return _KINDS.get(int.from_bytes(mv[:4], "little"))


def is_aogmaneo(data: Any) -> bool:
    """Whether ``data`` (bytes or a uint8 array) starts like a pyaogmaneo model file or buffer."""
    return kind_of(data) is not None


def _peek(path: Any) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except (OSError, TypeError, ValueError):
        return None


def is_aogmaneo_file(path: Any) -> bool:
    """Whether the file at ``path`` starts like a pyaogmaneo model (False if it cannot be read)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False  # open() would take an int as a file descriptor
    head = _peek(path)
    return head is not None and is_aogmaneo(head)


def _read_path(path: Any) -> bytes:
    shown = os.fsdecode(os.fspath(path))
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise AogmaneoError(f"cannot read '{shown}': {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------
# reading


class _Reader:
    """Bounds-checked sequential reads: every length is checked against the bytes left
    before anything is sliced, so a hostile count fails here instead of allocating."""

    def __init__(self, mv: memoryview, what: str) -> None:
        self.mv = mv
        self.pos = 0
        self.what = what

    def fail(self, msg: str) -> AogmaneoError:
        return AogmaneoError(f"not a valid pyaogmaneo {self.what}: {msg} (at byte {self.pos})")

    def left(self) -> int:
        return len(self.mv) - self.pos

    def need(self, nbytes: int, what: str) -> None:
        if nbytes < 0 or nbytes > self.left():
            raise AogmaneoError(f"not a valid pyaogmaneo {self.what}: {what} needs {nbytes:,} bytes at byte "
                                f"{self.pos:,} but only {max(self.left(), 0):,} remain (truncated or corrupt)")

    def take(self, nbytes: int, what: str) -> memoryview:
        self.need(nbytes, what)
        out = self.mv[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return out

    def array(self, count: int, dtype: str, what: str) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(count * dt.itemsize, what), dtype=dt).copy()

    def i32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "little", signed=True)

    def f32(self, what: str) -> float:
        return float(np.frombuffer(self.take(4, what), dtype="<f4")[0])

    def size3(self, what: str) -> tuple[int, int, int]:
        w, h, z = (int(x) for x in np.frombuffer(self.take(16, what), dtype="<i4")[:3])  # 4th: padding
        if min(w, h, z) < 1:
            raise self.fail(f"{what} is {(w, h, z)}, but every dimension must be >= 1")
        return w, h, z

    def count(self, what: str, lo: int, hi: int, per: int = 0) -> int:
        """An int32 count in [lo, hi]; with ``per`` (bytes each counted item needs at
        least), ``hi`` is what the bytes left can hold."""
        n = self.i32(what)
        if per and n > hi:
            raise AogmaneoError(f"not a valid pyaogmaneo {self.what}: {what} is {n:,}, but {n:,} of them need "
                                f"at least {n * per:,} bytes and only {self.left():,} remain (truncated or corrupt)")
        if not lo <= n <= hi:
            raise self.fail(f"{what} is {n}, expected {lo}..{hi}")
        return n


def _area(r: int) -> int:
    return (2 * r + 1) ** 2


def _vis_desc(rd: _Reader, what: str, want_size: tuple[int, int, int] | None) -> tuple[tuple[int, int, int], int]:
    size = rd.size3(f"{what} size")
    radius = rd.i32(f"{what} radius")
    if radius < 0:
        raise rd.fail(f"{what} radius is {radius}, expected >= 0")
    if want_size is not None and size != want_size:
        raise rd.fail(f"{what} size is {size}, but the model's structure says {want_size}")
    return size, radius


def _field_masks(hidden: tuple[int, int, int], vis: tuple[int, int, int], r: int) -> np.ndarray:
    """Per hidden column, which of the ``d x d`` field offsets fall inside the visible layer
    (the receptive-field rule of the kernels, with its float32 centre projection)."""
    hw, hh = hidden[0], hidden[1]
    vw, vh = vis[0], vis[1]
    d = 2 * r + 1
    sx, sy = np.float32(vw) / np.float32(hw), np.float32(vh) / np.float32(hh)
    cx = ((np.arange(hw, dtype=np.float32) + np.float32(0.5)) * sx).astype(np.int64)
    cy = ((np.arange(hh, dtype=np.float32) + np.float32(0.5)) * sy).astype(np.int64)
    ox = cx[:, None] - r + np.arange(d)[None, :]  # [hx][ox]
    oy = cy[:, None] - r + np.arange(d)[None, :]
    inx = (ox >= 0) & (ox < vw)
    iny = (oy >= 0) & (oy < vh)
    return (inx[:, None, :, None] & iny[None, :, None, :]).reshape(hw * hh, d, d)  # column j = hx*hh + hy


def _totals(hidden: tuple[int, int, int], vis: tuple[int, int, int], r: int, weights: np.ndarray) -> np.ndarray:
    """In-field sums of an encoder's uint8 weights per hidden cell, as int32."""
    cols, hz = hidden[0] * hidden[1], hidden[2]
    d = 2 * r + 1
    w = weights.reshape(cols, vis[2], d, d, hz)
    mask = _field_masks(hidden, vis, r).reshape(cols, d * d).astype(np.uint8)
    out = np.einsum("jcok,jo->jk", w.reshape(cols, vis[2], d * d, hz), mask, dtype=np.int64, casting="unsafe")
    return out.reshape(-1).astype(np.int32)


def _finite(value: float, rd: _Reader, what: str) -> float:
    if not math.isfinite(value):
        raise rd.fail(f"{what} is {value}: params must be finite")
    return value


def _layer_params(rd: _Reader, l: int) -> LayerParams:
    w = f"layer {l} params"
    dec = DecoderParams(_finite(rd.f32(w), rd, f"{w} decoder.scale"), _finite(rd.f32(w), rd, f"{w} decoder.lr"))
    enc = EncoderParams(*(_finite(rd.f32(w), rd, f"{w} encoder.{n}")
                          for n in ("choice", "vigilance", "lr", "active_ratio")), rd.i32(w))
    return LayerParams(enc, dec, _finite(rd.f32(w), rd, f"{w} recurrent_importance"))


def _io_params(rd: _Reader, i: int) -> IOParams:
    w = f"IO {i} params"
    dec = DecoderParams(_finite(rd.f32(w), rd, f"{w} decoder.scale"), _finite(rd.f32(w), rd, f"{w} decoder.lr"))
    floats = [_finite(rd.f32(w), rd, f"{w} actor.{n}") for n in
              ("vlr", "plr", "smoothing", "delay_rate", "policy_clip", "discount", "td_scale_decay")]
    act = ActorParams(*floats, rd.i32(w), rd.i32(w))
    return IOParams(dec, act, _finite(rd.f32(w), rd, f"{w} importance"))


def _parse_hierarchy(mv: memoryview, rng_state: int) -> tuple[dict[str, Any], dict[str, list], str]:
    """pyaogmaneo Hierarchy bytes -> (.ohr header keys, .ohr sections, "file"|"buffer")."""
    rd = _Reader(mv, "Hierarchy file or buffer")
    if rd.i32("magic") != HIERARCHY_MAGIC:
        raise rd.fail("wrong magic number")
    L = rd.count("layer count", 1, rd.left() // 64, 64)
    n_io = rd.count("IO count", 1, rd.left() // _IO_HEADER_BYTES, _IO_HEADER_BYTES)
    n_pred = rd.count("prediction IO count", 0, n_io)
    n_act = rd.count("action IO count", 0, n_io)
    io_sizes = [rd.size3(f"IO {i} size") for i in range(n_io)]
    types = list(rd.take(n_io, "IO types"))
    for i, t in enumerate(types):
        if t > 2:
            raise rd.fail(f"IO {i} has type {t}, expected 0 (none), 1 (prediction) or 2 (action)")
    pred_io = [i for i, t in enumerate(types) if t == 1]
    act_io = [i for i, t in enumerate(types) if t == 2]
    if (len(pred_io), len(act_io)) != (n_pred, n_act):
        raise rd.fail(f"the header counts {n_pred} prediction and {n_act} action IOs, "
                      f"the IO types {len(pred_io)} and {len(act_io)}")
    i_idx = rd.array(2 * n_io, "<i4", "IO index map")
    d_idx = rd.array(n_io, "<i4", "IO index map")
    # Only the used slots are defined; pyaogmaneo leaves the others uninitialised.
    for k, i in enumerate(pred_io):
        if i_idx[k] != i or d_idx[i] != k:
            raise rd.fail(f"the IO index maps disagree with the IO types (decoder {k}, IO {i})")
    for k, i in enumerate(act_io):
        if i_idx[n_io + k] != i or d_idx[i] != k:
            raise rd.fail(f"the IO index maps disagree with the IO types (actor {k}, IO {i})")
    for i, t in enumerate(types):
        if t == 0 and d_idx[i] != -1:
            raise rd.fail(f"IO {i} has no decoder or actor but its index is {d_idx[i]}")

    ios = [IODesc(io_sizes[i], IOType(types[i])) for i in range(n_io)]
    layers: list[LayerDesc] = []
    state: list[tuple[str, np.ndarray]] = []
    weights: list[tuple[str, np.ndarray]] = []
    persistent: list[tuple[str, np.ndarray]] = [("rng", np.array([rng_state], dtype=np.uint64))]
    n_fb = 2 if L > 1 else 1
    for l in range(L):
        w = f"layer {l} encoder"
        hs = rd.size3(f"{w} hidden size")
        cols, cells = hs[0] * hs[1], hs[0] * hs[1] * hs[2]
        ld = LayerDesc(hs)
        state.append((f"l{l}.enc.hidden_cis", rd.array(cols, "<i4", f"{w} hidden state")))
        committed = rd.array(cells, "|u1", f"{w} committed flags")
        if committed.size and committed.max() > 1:
            raise rd.fail(f"{w}'s committed flags hold a value other than 0 or 1")
        persistent.append((f"l{l}.enc.committed", committed))
        below = io_sizes if l == 0 else [layers[l - 1].hidden_size]
        nv = rd.count(f"{w} visible layer count", len(below), len(below) + 1)
        for v in range(nv):
            rec = v == len(below)
            size, r = _vis_desc(rd, f"{w} visible layer {v}", hs if rec else below[v])
            n = cells * _area(r) * size[2]
            a = rd.array(n, "|u1", f"{w} visible layer {v} weights")
            b = rd.array(n, "|u1", f"{w} visible layer {v} weights")
            ta = rd.array(cells, "<i4", f"{w} visible layer {v} totals")
            tb = rd.array(cells, "<i4", f"{w} visible layer {v} totals")
            rd.take(4, f"{w} visible layer {v} importance")  # set from the params at every step
            if not (np.array_equal(ta, _totals(hs, size, r, a)) and np.array_equal(tb, _totals(hs, size, r, b))):
                raise rd.fail(f"{w} visible layer {v}'s totals do not match its weights")
            weights += [(f"l{l}.enc.v{v}.a", a), (f"l{l}.enc.v{v}.b", b)]
            if rec:
                ld.recurrent_radius = r
            elif l == 0:
                ios[v].up_radius = r
            else:
                ld.up_radius = r
        if nv == len(below):
            ld.recurrent_radius = -1
        layers.append(ld)
        outs = [io_sizes[i] for i in pred_io] if l == 0 else [layers[l - 1].hidden_size]
        for k, osize in enumerate(outs):
            w = f"layer {l} decoder {k}"
            got = rd.size3(f"{w} size")
            if got != osize:
                raise rd.fail(f"{w} size is {got}, but the model's structure says {osize}")
            ocols, ocells = osize[0] * osize[1], osize[0] * osize[1] * osize[2]
            D = rd.count(f"{w} dendrites per cell", 1, rd.left() // (4 * ocells), 4 * ocells)
            state.append((f"l{l}.dec{k}.pred_cis", rd.array(ocols, "<i4", f"{w} state")))
            state.append((f"l{l}.dec{k}.probs", rd.array(ocells, "<f4", f"{w} state")))
            state.append((f"l{l}.dec{k}.dend", rd.array(ocells * D, "<f4", f"{w} state")))
            want_nv = n_fb if l == 0 else (2 if l < L - 1 else 1)
            rd.count(f"{w} visible layer count", want_nv, want_nv)
            radii = set()
            for v in range(want_nv):
                _, r = _vis_desc(rd, f"{w} visible layer {v}", hs)
                radii.add(r)
                weights.append((f"l{l}.dec{k}.v{v}.w", rd.array(ocells * D * _area(r) * hs[2], "|i1",
                                                                f"{w} visible layer {v} weights")))
            if len(radii) != 1:
                raise rd.fail(f"{w}'s visible layers have different radii {sorted(radii)}")
            if l == 0:
                ios[pred_io[k]].num_dendrites_per_cell = D
                ios[pred_io[k]].down_radius = radii.pop()
            else:
                ld.num_dendrites_per_cell = D
                ld.down_radius = radii.pop()
    h0 = layers[0].hidden_size
    for k, i in enumerate(act_io):
        w = f"actor {k} (IO {i})"
        got = rd.size3(f"{w} size")
        if got != io_sizes[i]:
            raise rd.fail(f"{w} size is {got}, but IO {i} has size {io_sizes[i]}")
        ocols, ocells = got[0] * got[1], got[0] * got[1] * got[2]
        vd = rd.count(f"{w} value dendrites per cell", 1, rd.left() // (4 * ocols), 4 * ocols)
        pd = rd.count(f"{w} policy dendrites per cell", 1, rd.left() // (4 * ocells), 4 * ocells)
        action_cis = rd.array(ocols, "<i4", f"{w} state")
        values = rd.array(ocols, "<f4", f"{w} state")
        td_scale = rd.array(ocols, "<f4", f"{w} td_scale")
        rd.count(f"{w} visible layer count", n_fb, n_fb)
        radii = set()
        vw, pw = [], []
        for v in range(n_fb):
            _, r = _vis_desc(rd, f"{w} visible layer {v}", h0)
            radii.add(r)
            vw.append(rd.array(ocols * vd * _area(r) * h0[2], "<f4", f"{w} visible layer {v} weights"))
            pw.append(rd.array(ocells * pd * _area(r) * h0[2], "<f4", f"{w} visible layer {v} weights"))
        if len(radii) != 1:
            raise rd.fail(f"{w}'s visible layers have different radii {sorted(radii)}")
        size = rd.i32(f"{w} history size")
        cap = rd.i32(f"{w} history capacity")
        start = rd.i32(f"{w} history start")
        sample = n_fb * 4 * h0[0] * h0[1] + 8 * ocols + 4
        if not (2 <= cap <= rd.left() // sample and 0 <= size <= cap and 0 <= start < cap):
            raise rd.fail(f"{w} has history size {size}, capacity {cap} and start {start}: "
                          f"expected 0 <= size <= capacity, 0 <= start < capacity and capacity samples "
                          f"of {sample} bytes in the {rd.left():,} bytes left (truncated or corrupt)")
        ring = rd.array(cap * sample // 4, "<i4", f"{w} history")
        d = ios[i]
        d.value_num_dendrites_per_cell, d.num_dendrites_per_cell = vd, pd
        d.down_radius, d.history_capacity = radii.pop(), cap
        state += [(f"act{k}.action_cis", action_cis), (f"act{k}.values", values),
                  (f"act{k}.meta", np.array([size, start], dtype=np.int32)), (f"act{k}.ring", ring)]
        for v in range(n_fb):
            weights += [(f"act{k}.v{v}.value", vw[v]), (f"act{k}.v{v}.policy", pw[v])]
        persistent += [(f"act{k}.td_scale", td_scale), (f"act{k}.probs", np.zeros(ocells, dtype=np.float32))]
        persistent += [(f"act{k}.v{v}.policy_delayed", pw[v].copy()) for v in range(n_fb)]
    rd.need(L * _LAYER_PARAMS_BYTES + n_io * _IO_PARAMS_BYTES, "params")
    params = Params([_layer_params(rd, l) for l in range(L)], [_io_params(rd, i) for i in range(n_io)],
                    anticipation=True)
    if rd.left() == 1:
        flag = rd.take(1, "anticipation")[0]
        if flag > 1:
            raise rd.fail(f"the anticipation flag is {flag}, expected 0 or 1")
        params.anticipation = bool(flag)
        kind = "file"
    elif rd.left() == 0:
        kind = "buffer"
    else:
        raise rd.fail(f"{rd.left():,} bytes follow the params, expected 1 (a file) or 0 (a buffer)")
    header = {
        "kind": "hierarchy",
        "architecture": {"io_descs": [d.to_dict() for d in ios], "layer_descs": [d.to_dict() for d in layers]},
        "params": params.to_dict(),
    }
    return header, {"state": state, "weights": weights, "persistent": persistent}, kind


def _parse_image_encoder(mv: memoryview, rng_state: int) -> tuple[dict[str, Any], dict[str, list], str]:
    rd = _Reader(mv, "ImageEncoder file or buffer")
    if rd.i32("magic") != IMAGE_ENCODER_MAGIC:
        raise rd.fail("wrong magic number")
    hs = rd.size3("hidden size")
    p = {n: _finite(rd.f32("params"), rd, f"params.{n}") for n in ("falloff", "lr", "scale", "rr")}
    p["n_radius"] = rd.i32("params")
    cols, cells = hs[0] * hs[1], hs[0] * hs[1] * hs[2]
    cis = rd.array(cols, "<i4", "hidden state")
    resources = rd.array(cells, "<f4", "resources")
    nv = rd.count("visible layer count", 1, rd.left() // 20, 20)
    descs, weights = [], []
    for v in range(nv):
        size, r = _vis_desc(rd, f"visible layer {v}", None)
        n = cells * _area(r) * size[2]
        weights.append((f"v{v}.forward", rd.array(n, "|u1", f"visible layer {v} weights")))
        weights.append((f"v{v}.recon", rd.array(n, "|u1", f"visible layer {v} weights")))
        descs.append({"size": list(size), "radius": r})
    if rd.left():
        raise rd.fail(f"{rd.left():,} bytes follow the last visible layer")
    # An image's width and height are backed by no bytes (a radius-0 field over a
    # gigapixel image has tiny weights), yet loading allocates its reconstruction
    # buffers (5 bytes per pixel and channel): refuse what no sane model needs.
    image_bytes = sum(5 * d["size"][0] * d["size"][1] * d["size"][2] for d in descs)
    if image_bytes > max(_MAX_UNBACKED, 64 * len(mv)):
        raise rd.fail(f"its visible layers {[tuple(d['size']) for d in descs]} would need {image_bytes:,} bytes "
                      f"of image buffers for a {len(mv):,}-byte model (corrupt)")
    header = {
        "kind": "image_encoder",
        "architecture": {"hidden_size": list(hs), "visible_layer_descs": descs},
        "params": p,
    }
    sections = {"state": [("hidden_cis", cis)], "weights": weights,
                "persistent": [("rng", np.array([rng_state], dtype=np.uint64)), ("resources", resources)]}
    return header, sections, "file"


def _parse(data: Any, want: str | None, rng_state: int | None):
    mv = _view(data)
    kind = kind_of(mv)
    if kind is None:
        raise AogmaneoError("not a pyaogmaneo model file or buffer (no pyaogmaneo magic number)")
    if want is not None and kind != want:
        what = {"hierarchy": "a Hierarchy", "image_encoder": "an ImageEncoder"}
        raise AogmaneoError(f"this pyaogmaneo data holds {what[kind]}, not {what[want]}")
    if rng_state is None:
        from . import hierarchy  # the process-wide generator lives with the Hierarchy façade

        rng_state = hierarchy.get_global_state()
    parse = _parse_hierarchy if kind == "hierarchy" else _parse_image_encoder
    header, sections, form = parse(mv, rng_state)
    return kind, header, sections, form


def to_ohr(data: Any, kind: str | None = None, rng_state: int | None = None, meta: dict | None = None) -> bytes:
    """Convert pyaogmaneo model bytes (file or buffer) to ``.ohr`` bytes.

    ``kind`` (``"hierarchy"`` or ``"image_encoder"``) insists on one model type.
    The new model's random stream starts at ``rng_state``, by default the
    process-wide state (``get_global_state()``). ``meta`` adds header keys.
    Raises :class:`AogmaneoError` (a ``NeoError``) for anything malformed.
    """
    _, header, sections, _ = _parse(data, kind, rng_state)
    header.update(meta or {})
    return ohr.encode(header, sections)


def load_source(file_name: Any = "", buffer: Any = None, kind: str = "hierarchy") -> bytes | None:
    """The ``.ohr`` bytes for a constructor's ``file_name``/``buffer`` if it holds pyaogmaneo's
    format, else None (the constructor then reads its own format as usual)."""
    if buffer is not None:
        mv = _view(buffer)
        return to_ohr(mv, kind) if len(mv) and is_aogmaneo(mv) else None
    if file_name and is_aogmaneo_file(file_name):
        return to_ohr(_read_path(file_name), kind)
    return None


def read_hierarchy(data: Any):
    """A :class:`neocli.Hierarchy` from pyaogmaneo ``save_to_file`` or ``serialize_to_buffer()`` bytes."""
    from .hierarchy import Hierarchy

    return Hierarchy(buffer=to_ohr(data, "hierarchy"))


def read_image_encoder(data: Any):
    """A :class:`neocli.ImageEncoder` from pyaogmaneo ``save_to_file`` or ``serialize_to_buffer()`` bytes."""
    from .image_encoder import ImageEncoder

    return ImageEncoder(buffer=to_ohr(data, "image_encoder"))


def read_header(path: Any) -> dict[str, Any]:
    """An ``.ohr``-style header describing the pyaogmaneo model at ``path`` (for ``inspect``).

    The whole file is parsed and validated. ``format`` is :data:`FORMAT_NAME`,
    ``format_version`` says ``"file"`` or ``"buffer"``, and ``sections`` /
    ``sizes`` give the byte counts neocli's own sections would have.
    """
    kind, header, sections, form = _parse(_read_path(path), None, 0)
    secs = {}
    for name, arrays in sections.items():
        secs[name] = [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape), "nbytes": a.nbytes}
                      for n, a in arrays]
    sizes = {name: sum(e["nbytes"] for e in entries) for name, entries in secs.items()}
    header.update(format=FORMAT_NAME, format_version=form, sections=secs, sizes={**sizes, "total": sum(sizes.values())})
    return header


# --------------------------------------------------------------------------
# writing


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def i32(self, *values: int) -> None:
        self.parts.append(np.array(values, dtype="<i4").tobytes())

    def f32(self, *values: float) -> None:
        self.parts.append(np.array(values, dtype="<f4").tobytes())

    def size3(self, size: Any) -> None:
        self.i32(*size, 0)

    def raw(self, a: np.ndarray) -> None:
        self.parts.append(np.ascontiguousarray(a).tobytes())

    def data(self) -> bytes:
        return b"".join(self.parts)


def _model_ohr(model: Any) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    if isinstance(model, (bytes, bytearray, memoryview, np.ndarray)):
        data = model
    else:
        data = model.serialize_to_buffer()  # a neocli model: its complete .ohr bytes
    return ohr.decode(data)


def _hierarchy_bytes(header: dict[str, Any], secs: dict[str, dict[str, np.ndarray]], kind: str) -> bytes:
    arch = header["architecture"]
    ios = [IODesc.from_dict(d) for d in arch["io_descs"]]
    layers = [LayerDesc.from_dict(d) for d in arch["layer_descs"]]
    params = Params.from_dict(header["params"])
    st, wt, ps = secs["state"] if "state" in secs else None, secs["weights"], secs["persistent"]
    L, n_io = len(layers), len(ios)
    pred_io = [i for i, d in enumerate(ios) if d.io_type == IOType.prediction]
    act_io = [i for i, d in enumerate(ios) if d.io_type == IOType.action]
    n_fb = 2 if L > 1 else 1

    def state(name: str, shape_like: np.ndarray) -> np.ndarray:
        # A deployable .ohr without its state section loads with a cleared state.
        return st[name] if st is not None else np.zeros_like(shape_like)

    wr = _Writer()
    wr.i32(HIERARCHY_MAGIC, L, n_io, len(pred_io), len(act_io))
    for d in ios:
        wr.size3(d.size)
    wr.parts.append(bytes(int(d.io_type) for d in ios))
    i_idx = np.zeros(2 * n_io, dtype="<i4")
    d_idx = np.full(n_io, -1, dtype="<i4")
    for k, i in enumerate(pred_io):
        i_idx[k], d_idx[i] = i, k
    for k, i in enumerate(act_io):
        i_idx[n_io + k], d_idx[i] = i, k
    wr.raw(i_idx)
    wr.raw(d_idx)
    for l, ld in enumerate(layers):
        hs = tuple(ld.hidden_size)
        wr.size3(hs)
        committed = ps[f"l{l}.enc.committed"]
        wr.raw(state(f"l{l}.enc.hidden_cis", np.zeros(hs[0] * hs[1], "<i4")))
        wr.raw(committed)
        if l == 0:
            vis = [(tuple(d.size), d.up_radius, params.ios[i].importance) for i, d in enumerate(ios)]
        else:
            vis = [(tuple(layers[l - 1].hidden_size), ld.up_radius, 1.0)]
        if ld.recurrent_radius >= 0:
            vis.append((hs, ld.recurrent_radius, params.layers[l].recurrent_importance))
        wr.i32(len(vis))
        for v, (size, r, importance) in enumerate(vis):
            a, b = wt[f"l{l}.enc.v{v}.a"], wt[f"l{l}.enc.v{v}.b"]
            wr.size3(size)
            wr.i32(r)
            wr.raw(a)
            wr.raw(b)
            wr.raw(_totals(hs, size, r, a))
            wr.raw(_totals(hs, size, r, b))
            wr.f32(importance)
        if l == 0:
            decs = [(tuple(ios[i].size), ios[i].num_dendrites_per_cell, ios[i].down_radius) for i in pred_io]
            nv = n_fb
        else:
            decs = [(tuple(layers[l - 1].hidden_size), ld.num_dendrites_per_cell, ld.down_radius)]
            nv = 2 if l < L - 1 else 1
        for k, (size, D, r) in enumerate(decs):
            ocols, ocells = size[0] * size[1], size[0] * size[1] * size[2]
            wr.size3(size)
            wr.i32(D)
            wr.raw(state(f"l{l}.dec{k}.pred_cis", np.zeros(ocols, "<i4")))
            wr.raw(state(f"l{l}.dec{k}.probs", np.zeros(ocells, "<f4")))
            wr.raw(state(f"l{l}.dec{k}.dend", np.zeros(ocells * D, "<f4")))
            wr.i32(nv)
            for v in range(nv):
                wr.size3(hs)
                wr.i32(r)
                wr.raw(wt[f"l{l}.dec{k}.v{v}.w"])
    h0 = tuple(layers[0].hidden_size)
    for k, i in enumerate(act_io):
        d = ios[i]
        ocols = d.size[0] * d.size[1]
        wr.size3(d.size)
        wr.i32(d.value_num_dendrites_per_cell, d.num_dendrites_per_cell)
        wr.raw(state(f"act{k}.action_cis", np.zeros(ocols, "<i4")))
        wr.raw(state(f"act{k}.values", np.zeros(ocols, "<f4")))
        wr.raw(ps[f"act{k}.td_scale"])
        wr.i32(n_fb)
        for v in range(n_fb):
            wr.size3(h0)
            wr.i32(d.down_radius)
            wr.raw(wt[f"act{k}.v{v}.value"])
            wr.raw(wt[f"act{k}.v{v}.policy"])
        sample = n_fb * h0[0] * h0[1] + 2 * ocols + 1
        meta = state(f"act{k}.meta", np.zeros(2, "<i4"))
        wr.i32(int(meta[0]), d.history_capacity, int(meta[1]))
        wr.raw(state(f"act{k}.ring", np.zeros(d.history_capacity * sample, "<i4")))
    for lp in params.layers:
        e = lp.encoder
        wr.f32(lp.decoder.scale, lp.decoder.lr, e.choice, e.vigilance, e.lr, e.active_ratio)
        wr.i32(e.l_radius)
        wr.f32(lp.recurrent_importance)
    for ip in params.ios:
        a = ip.actor
        wr.f32(ip.decoder.scale, ip.decoder.lr, a.vlr, a.plr, a.smoothing, a.delay_rate, a.policy_clip,
               a.discount, a.td_scale_decay)
        wr.i32(a.min_steps, a.history_iters)
        wr.f32(ip.importance)
    if kind == "file":
        wr.parts.append(bytes([1 if params.anticipation else 0]))
    return wr.data()


def _image_encoder_bytes(header: dict[str, Any], secs: dict[str, dict[str, np.ndarray]]) -> bytes:
    arch, p = header["architecture"], header["params"]
    hs = arch["hidden_size"]
    wr = _Writer()
    wr.i32(IMAGE_ENCODER_MAGIC)
    wr.size3(hs)
    wr.f32(p["falloff"], p["lr"], p["scale"], p["rr"])
    wr.i32(p["n_radius"])
    if "state" in secs:
        wr.raw(secs["state"]["hidden_cis"])
    else:
        wr.raw(np.zeros(hs[0] * hs[1], "<i4"))
    wr.raw(secs["persistent"]["resources"])
    descs = arch["visible_layer_descs"]
    wr.i32(len(descs))
    for v, d in enumerate(descs):
        wr.size3(d["size"])
        wr.i32(d["radius"])
        wr.raw(secs["weights"][f"v{v}.forward"])
        wr.raw(secs["weights"][f"v{v}.recon"])
    return wr.data()


def _check_kind(kind: str) -> None:
    if kind not in ("file", "buffer"):
        raise NeoError(f"kind must be 'file' or 'buffer', got {kind!r}")


def from_ohr(data: Any, kind: str = "file") -> bytes:
    """Convert ``.ohr`` model bytes (a Hierarchy or an ImageEncoder) to pyaogmaneo's format.

    ``kind="file"`` gives what pyaogmaneo's ``save_to_file`` writes, ``"buffer"``
    what its ``serialize_to_buffer()`` returns (one byte shorter for a Hierarchy).
    The model is loaded first, so a malformed ``.ohr`` fails as it would there.
    """
    _check_kind(kind)
    if ohr.decode_header(data).get("kind", "hierarchy") == "image_encoder":
        from .image_encoder import ImageEncoder

        return image_encoder_to_bytes(ImageEncoder(buffer=data), kind)
    from .hierarchy import Hierarchy

    return hierarchy_to_bytes(Hierarchy(buffer=data), kind)


def hierarchy_to_bytes(h: Any, kind: str = "file") -> bytes:
    """A :class:`neocli.Hierarchy` as pyaogmaneo ``save_to_file`` (``kind="file"``) or
    ``serialize_to_buffer()`` (``kind="buffer"``) bytes, which pyaogmaneo loads with
    ``Hierarchy(file_name=...)`` or ``Hierarchy(buffer=...)``."""
    _check_kind(kind)
    header, secs = _model_ohr(h)
    if header.get("kind", "hierarchy") != "hierarchy":
        raise NeoError("hierarchy_to_bytes needs a Hierarchy (use image_encoder_to_bytes for an ImageEncoder)")
    return _hierarchy_bytes(header, secs, kind)


def image_encoder_to_bytes(e: Any, kind: str = "file") -> bytes:
    """A :class:`neocli.ImageEncoder` as pyaogmaneo ``save_to_file`` / ``serialize_to_buffer()``
    bytes (the two are identical for an ImageEncoder)."""
    _check_kind(kind)
    header, secs = _model_ohr(e)
    if header.get("kind") != "image_encoder":
        raise NeoError("image_encoder_to_bytes needs an ImageEncoder (use hierarchy_to_bytes for a Hierarchy)")
    return _image_encoder_bytes(header, secs)


def export_file(model: Any, path: Any, kind: str = "file") -> None:
    """Write ``model`` (a neocli Hierarchy or ImageEncoder) atomically in pyaogmaneo's format.

    A failed write leaves any previous file at ``path`` intact.
    """
    _check_kind(kind)
    header, secs = _model_ohr(model)
    if header.get("kind", "hierarchy") == "image_encoder":
        data = _image_encoder_bytes(header, secs)
    else:
        data = _hierarchy_bytes(header, secs, kind)
    ohr.atomic_write(path, data)


def import_file(path: Any, rng_state: int | None = None):
    """Load the pyaogmaneo model file (or saved buffer) at ``path`` as a neocli model.

    Returns a :class:`neocli.Hierarchy` or :class:`neocli.ImageEncoder`, whichever
    the file holds; its random stream starts at ``rng_state`` (default: the
    process-wide state).
    """
    data = _read_path(path)
    kind = kind_of(data)
    if kind is None:
        raise AogmaneoError(f"'{os.fsdecode(os.fspath(path))}' is not a pyaogmaneo model file "
                            "(no pyaogmaneo magic number)")
    ohr_bytes = to_ohr(data, kind, rng_state)
    if kind == "image_encoder":
        from .image_encoder import ImageEncoder

        return ImageEncoder(buffer=ohr_bytes)
    from .hierarchy import Hierarchy

    return Hierarchy(buffer=ohr_bytes)


def load_model(path: Any):
    """A neocli Hierarchy or ImageEncoder from a model file in either format (``.ohr`` or
    pyaogmaneo's), whichever kind of model the file holds."""
    if is_aogmaneo_file(path):
        return import_file(path)
    kind = ohr.read_header(path).get("kind", "hierarchy")
    if kind == "image_encoder":
        from .image_encoder import ImageEncoder

        return ImageEncoder(file_name=path)
    from .hierarchy import Hierarchy

    return Hierarchy(file_name=path)
