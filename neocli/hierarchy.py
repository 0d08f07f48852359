"""The ``Hierarchy`` façade: pyaogmaneo's API over the compiled kernels.

Every argument is validated here, before any kernel runs: kernels are compiled
without bounds checks and trust what they are given.
"""
from __future__ import annotations

import copy as _copy
import math
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core, aogmaneo, ohr
from ._errors import NeoError
from ._threads import ThreadTuner, exclusive, holding, run_step
from ._merge import merge_sources
from .params import (
    _f32, IODesc, IOParams, IOType, LayerDesc, LayerParams, MergeMode, Params,
)

__all__ = ["Hierarchy", "set_global_state", "get_global_state", "rng_state_from_seed"]

_U64 = 2**64


def set_global_state(state: int) -> None:
    """Set the raw process-wide PCG32 state (not hashed), as pyaogmaneo does."""
    if isinstance(state, bool) or not isinstance(state, (int, np.integer)):
        raise TypeError(f"state must be an integer, got {type(state).__name__}")
    _core.GLOBAL_RNG.state = int(state) % _U64


def get_global_state() -> int:
    """The raw process-wide PCG32 state."""
    return int(_core.GLOBAL_RNG.state)


def _as_bytes_view(buffer: Any, what: str) -> memoryview:
    """A flat byte view of a bytes-like object or a 1-D uint8 array."""
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


def _check_descs(io_descs: Any, layer_descs: Any) -> tuple[list[IODesc], list[LayerDesc]]:
    if not isinstance(io_descs, Sequence) or isinstance(io_descs, (str, bytes)):
        raise TypeError("io_descs must be a list of IODesc")
    if not isinstance(layer_descs, Sequence) or isinstance(layer_descs, (str, bytes)):
        raise TypeError("layer_descs must be a list of LayerDesc")
    ios = list(io_descs)
    layers = list(layer_descs)
    if not ios or not layers:
        raise NeoError("a hierarchy needs at least one IODesc and one LayerDesc "
                       f"(got {len(ios)} IO descriptors and {len(layers)} layer descriptors)")
    for i, d in enumerate(ios):
        if not isinstance(d, IODesc):
            raise TypeError(f"io_descs[{i}] must be an IODesc, got {type(d).__name__}")
        if min(d.size) < 1:
            raise NeoError(f"IO {i}: size must be >= 1 in every dimension, got {d.size}")
        for name in ("num_dendrites_per_cell", "value_num_dendrites_per_cell"):
            if getattr(d, name) < 1:
                raise NeoError(f"IO {i}: {name} must be >= 1, got {getattr(d, name)}")
        for name in ("up_radius", "down_radius"):
            if getattr(d, name) < 0:
                raise NeoError(f"IO {i}: {name} must be >= 0, got {getattr(d, name)}")
        if d.io_type == IOType.action and d.history_capacity < 2:
            raise NeoError(f"IO {i}: history_capacity must be >= 2, got {d.history_capacity}")
    for l, d in enumerate(layers):
        if not isinstance(d, LayerDesc):
            raise TypeError(f"layer_descs[{l}] must be a LayerDesc, got {type(d).__name__}")
        if min(d.hidden_size) < 1:
            raise NeoError(f"layer {l}: hidden_size must be >= 1 in every dimension, got {d.hidden_size}")
        if d.num_dendrites_per_cell < 1:
            raise NeoError(f"layer {l}: num_dendrites_per_cell must be >= 1, got {d.num_dendrites_per_cell}")
        if d.up_radius < 0 or d.down_radius < 0:
            raise NeoError(f"layer {l}: up_radius and down_radius must be >= 0")
        if d.recurrent_radius < -1:
            raise NeoError(f"layer {l}: recurrent_radius must be >= -1 (-1 = no recurrence), got {d.recurrent_radius}")
    _check_array_sizes(ios, layers)
    # Quirk Q8: with only one-cell columns an encoder's inactive-input count is 0.
    z0 = [d.size[2] for d in ios] + ([layers[0].hidden_size[2]] if layers[0].recurrent_radius >= 0 else [])
    if max(z0) < 2:
        raise NeoError("layer 0's encoder sees only columns of size 1 (every IO has column_size 1): "
                       "give at least one IO a column_size >= 2")
    for l in range(1, len(layers)):
        zl = [layers[l - 1].hidden_size[2]] + ([layers[l].hidden_size[2]] if layers[l].recurrent_radius >= 0 else [])
        if max(zl) < 2:
            raise NeoError(f"layer {l}'s encoder sees only columns of size 1 (layer {l - 1} hidden_size "
                           f"{tuple(layers[l - 1].hidden_size)}): use a hidden_size column size >= 2")
    return [_copy.deepcopy(d) for d in ios], [_copy.deepcopy(d) for d in layers]


# Largest actor history_iters (replay iterations per step; the reference default is
# 16): the one loop count no array bounds, so a hostile file could stall every step.
MAX_HISTORY_ITERS = 65536
_I32 = np.dtype(np.int32)

# Kernels index every array with C ints: no single array may reach 2**31 elements.
_MAX_ELEMENTS = 2**31 - 1


def _check_array_sizes(ios: list[IODesc], layers: list[LayerDesc]) -> None:
    """Refuse descriptors whose largest array would not fit the kernels' C int indices.

    Every product is computed with Python integers, so nothing overflows here; the
    check runs before anything is allocated (a hostile or mistyped size must give a
    clear error, not a wrapped-around allocation that the nogil kernels overrun).
    """
    def need(what: str, *factors: int) -> None:
        n = 1
        for f in factors:
            n *= int(f)
        if n > _MAX_ELEMENTS:
            raise NeoError(f"{what} would need an array of {n:,} elements; the limit is {_MAX_ELEMENTS:,} "
                           "(reduce the sizes, radii or dendrite counts)")

    nfb = 2 if len(layers) > 1 else 1
    for l, ld in enumerate(layers):
        hw, hh, hz = ld.hidden_size
        need(f"layer {l}: hidden_size {tuple(ld.hidden_size)}", hw, hh, hz, 4)
        vis = ([(f"IO {i}", io.size, io.up_radius) for i, io in enumerate(ios)] if l == 0
               else [(f"layer {l - 1}", layers[l - 1].hidden_size, ld.up_radius)])
        if ld.recurrent_radius >= 0:
            vis.append((f"layer {l} (recurrent)", ld.hidden_size, ld.recurrent_radius))
        for name, size, r in vis:
            need(f"layer {l}: encoder weights from {name} (radius {r})", hw, hh, hz, (2 * r + 1) ** 2, size[2])
        if l > 0:
            pw, ph, pz = layers[l - 1].hidden_size
            need(f"layer {l}: decoder (num_dendrites_per_cell {ld.num_dendrites_per_cell}, "
                 f"down_radius {ld.down_radius})", pw, ph, pz, ld.num_dendrites_per_cell,
                 (2 * ld.down_radius + 1) ** 2, hz)
    hw, hh, hz = layers[0].hidden_size
    for i, io in enumerate(ios):
        w, h, z = io.size
        # Every port, input-only ones too: the kernels index its cells with C ints.
        need(f"IO {i}: size {tuple(io.size)}", w, h, z)
        area = (2 * io.down_radius + 1) ** 2
        if io.io_type == IOType.prediction:
            need(f"IO {i}: decoder (num_dendrites_per_cell {io.num_dendrites_per_cell}, "
                 f"down_radius {io.down_radius})", w, h, z, io.num_dendrites_per_cell, area, hz)
        elif io.io_type == IOType.action:
            need(f"IO {i}: actor value weights (value_num_dendrites_per_cell "
                 f"{io.value_num_dendrites_per_cell})", w, h, io.value_num_dendrites_per_cell, area, hz)
            need(f"IO {i}: actor policy weights (num_dendrites_per_cell {io.num_dendrites_per_cell})",
                 w, h, z, io.num_dendrites_per_cell, area, hz)
            need(f"IO {i}: actor scratch", w, h, io.value_num_dendrites_per_cell
                 + 2 * z * io.num_dendrites_per_cell + 2 * z)
            need(f"IO {i}: actor history (history_capacity {io.history_capacity})",
                 io.history_capacity, nfb * hw * hh + 2 * w * h + 1)


class Hierarchy:
    """A Sparse Predictive Hierarchy (spec §8), API-compatible with pyaogmaneo 2.14.4.

    ``Hierarchy(io_descs, layer_descs)`` builds a new hierarchy, drawing its initial
    weights from the process-wide generator (``set_global_state``);
    ``Hierarchy(file_name=...)`` loads an ``.ohr`` file and ``Hierarchy(buffer=...)``
    the bytes ``serialize_to_buffer()`` returned.
    """

    def __init__(self, io_descs: Sequence[IODesc] = (), layer_descs: Sequence[LayerDesc] = (),
                 file_name: str = "", buffer: Any = None) -> None:
        # pyaogmaneo's own file/buffer format, told apart by its first bytes: read as .ohr bytes.
        converted = aogmaneo.load_source(file_name, buffer, "hierarchy")
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
            ios, layers = _check_descs(io_descs, layer_descs)
            self._build(ios, layers, _core.GLOBAL_RNG)
            # Decisions D2: continue from a private copy of the post-construction state.
            self._core_rng.state = _core.GLOBAL_RNG.state

    # ------------------------------------------------------------------ building
    def _build(self, ios: list[IODesc], layers: list[LayerDesc], rng: Any) -> None:
        """Create the components in the reference's construction (RNG) order (spec §8.1)."""
        self._io_descs = ios
        self._layer_descs = layers
        L = len(layers)
        n_fb = 2 if L > 1 else 1
        encoders, decoders, actors, dec_io, act_io, recurrent = [], [], [], [], [], []
        for l, ld in enumerate(layers):
            hs = ld.hidden_size
            if l == 0:
                decs = []
                for i, io in enumerate(ios):
                    if io.io_type == IOType.prediction:
                        vis = [(*hs, io.down_radius)] * n_fb
                        decs.append(_core.Decoder(io.size, io.num_dendrites_per_cell, vis, rng))
                        dec_io.append(i)
                for i, io in enumerate(ios):
                    if io.io_type == IOType.action:
                        vis = [(*hs, io.down_radius)] * n_fb
                        actors.append(_core.Actor(io.size, io.value_num_dendrites_per_cell,
                                                  io.num_dendrites_per_cell, io.history_capacity, vis, rng))
                        act_io.append(i)
                vis = [(*io.size, io.up_radius) for io in ios]
            else:
                vis = [(*hs, ld.down_radius)] * (2 if l < L - 1 else 1)
                decs = [_core.Decoder(layers[l - 1].hidden_size, ld.num_dendrites_per_cell, vis, rng)]
                vis = [(*layers[l - 1].hidden_size, ld.up_radius)]
            decoders.append(decs)
            recurrent.append(ld.recurrent_radius >= 0)
            if ld.recurrent_radius >= 0:
                vis = vis + [(*hs, ld.recurrent_radius)]
            encoders.append(_core.Encoder(hs, vis, rng))
        self._core_rng = _core.Rng(0)
        self._tuner = ThreadTuner()
        self._lock = threading.RLock()  # see _threads.exclusive
        self._c = _core.Core(encoders, decoders, actors, dec_io, act_io, recurrent, self._core_rng)
        self._dec_index = {io: k for k, io in enumerate(dec_io)}
        self._act_index = {io: k for k, io in enumerate(act_io)}
        self.params = Params(layers=[LayerParams() for _ in layers], ios=[IOParams() for _ in ios],
                             anticipation=True)

    # ------------------------------------------------------------------ stepping
    def _coerce_input(self, i: int, x: Any) -> np.ndarray:
        w, h, z = self._io_descs[i].size
        cols = w * h
        if type(x) is np.ndarray and x.dtype is _I32 and x.ndim == 1 and x.shape[0] == cols:
            # The common case, checked in a fraction of the general path's time: a
            # private copy (see below), then its range.
            a = x.copy()
            if _core.first_out_of_range(a, z) < 0:
                return a
        if isinstance(x, (bool, np.bool_)):
            raise TypeError(f"IO {i}: expected a CSDR of {cols} integer cell indices, got a bool")
        if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "iu":
            x = x.item()
        if isinstance(x, (int, np.integer)):
            if cols != 1:
                raise NeoError(f"IO {i}: a bare integer is only accepted for a one-column port; "
                               f"this port has {cols} columns (size {w}x{h}x{z}), pass {cols} indices")
            x = [x]
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise TypeError(f"IO {i}: expected a CSDR (a sequence of {cols} integer cell indices), got {type(x).__name__}: {e}") from None
        if a.size == 0 and cols > 0:
            raise NeoError(f"IO {i}: expected {cols} columns (size {w}x{h}x{z}), got an empty CSDR")
        if a.dtype.kind not in "iu":
            if a.dtype.kind == "f":
                raise TypeError(
                    f"IO {i}: expected a CSDR of {cols} integer cell indices in [0, {z}) "
                    f"(size {w}x{h}x{z}), got {a.size} float value(s); continuous values must be "
                    "encoded first, e.g. binned into column_size cells per column")
            raise TypeError(f"IO {i}: expected a CSDR of {cols} integer cell indices, got dtype {a.dtype}")
        if a.ndim != 1 and a.shape != (w, h):
            raise NeoError(f"IO {i}: expected a 1-D CSDR of {cols} columns (or shape ({w}, {h})), got shape {a.shape}")
        if a.size != cols:
            raise NeoError(f"IO {i}: expected {cols} columns (size {w}x{h}x{z}), got {a.size}")
        if a.dtype != np.int32:
            lo, hi = a.min(), a.max()
            if lo < 0 or hi >= z:
                bad = int(np.flatnonzero((a.reshape(-1) < 0) | (a.reshape(-1) >= z))[0])
                raise NeoError(f"IO {i}: cell index {a.reshape(-1)[bad]} at column {bad} is out of range [0, {z})")
        # Always a private copy, validated after copying: the kernels read it without
        # the GIL, so no other thread may change it between the check and the step
        # (and read-only or strided arrays are fine as input).
        a = np.array(a.reshape(-1), dtype=np.int32, order="C", copy=True)
        bad = _core.first_out_of_range(a, z)
        if bad >= 0:
            raise NeoError(f"IO {i}: cell index {a[bad]} at column {bad} is out of range [0, {z})")
        return a

    def _check_params(self) -> None:
        p = self.params
        if len(p.layers) != len(self._layer_descs) or len(p.ios) != len(self._io_descs):
            raise NeoError(f"params must keep one LayerParams per layer ({len(self._layer_descs)}) and one "
                           f"IOParams per IO ({len(self._io_descs)}); got {len(p.layers)} and {len(p.ios)}")
        for l, lp in enumerate(p.layers):
            if not isinstance(lp, LayerParams):
                raise TypeError(f"params.layers[{l}] must be a LayerParams")
            if lp.encoder.l_radius < 0:
                raise NeoError(f"params.layers[{l}].encoder.l_radius must be >= 0")
        for i in self._c.act_io:
            a = p.ios[i].actor
            if a.min_steps < 1:
                raise NeoError(f"params.ios[{i}].actor.min_steps must be >= 1 (the actor replays samples "
                               f"at least one step old), got {a.min_steps}")
            if not 0 <= a.history_iters <= MAX_HISTORY_ITERS:
                raise NeoError(f"params.ios[{i}].actor.history_iters must be in [0, {MAX_HISTORY_ITERS}] "
                               f"(replay iterations per step), got {a.history_iters}")
        for i, iop in enumerate(p.ios):
            if not isinstance(iop, IOParams):
                raise TypeError(f"params.ios[{i}] must be an IOParams")

    def step(self, input_cis: Sequence[Any], learn_enabled: bool = True, reward: float = 0.0,
             mimic: float = 0.0) -> None:
        """Advance one time step: encode the inputs up, learn and predict down (spec §8.2).

        ``input_cis`` holds one CSDR per IO (action ports included: the action
        actually taken). A bare integer is accepted for a one-column port. The
        kernels run without the GIL; calling this (or another method of this
        hierarchy) from a second thread meanwhile raises NeoError.
        """
        if type(input_cis) is list:
            pass
        elif isinstance(input_cis, np.ndarray) and input_cis.ndim >= 1:
            input_cis = list(input_cis)  # pyaogmaneo accepts a stacked array of rows
        elif not isinstance(input_cis, Sequence) or isinstance(input_cis, (str, bytes)):
            raise TypeError("input_cis must be a list with one CSDR per IO")
        n = len(self._io_descs)
        if len(input_cis) != n:
            raise NeoError(f"step needs one input CSDR per IO: expected {n}, got {len(input_cis)}")
        inputs = [self._coerce_input(i, x) for i, x in enumerate(input_cis)]
        reward = _f32(reward, "reward")
        mimic = _f32(mimic, "mimic")
        if type(learn_enabled) is not bool and not isinstance(learn_enabled, (np.bool_, int, np.integer)):
            raise TypeError(f"learn_enabled must be a bool, got {type(learn_enabled).__name__}")
        self._check_params()
        learn = bool(learn_enabled)
        c, params = self._c, self.params
        run_step(self, learn, lambda nt: c.step(inputs, learn, reward, mimic, params, nt))

    @exclusive
    def clear_state(self) -> None:
        """Reset the temporal context (hidden states, predictions, actor history size).

        Weights are untouched. As in pyaogmaneo, decoder ``dend``, the actor ring
        contents, actor probs and ``td_scale`` are kept (spec Q4).
        """
        self._c.clear_state()

    # ------------------------------------------------------------------ queries
    def _io_index(self, i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"IO index must be an integer, got {type(i).__name__}")
        if not 0 <= i < len(self._io_descs):
            raise NeoError(f"IO index {i} out of range [0, {len(self._io_descs) - 1}]")
        return int(i)

    def _layer_index(self, l: Any, lo: int = 0) -> int:
        if isinstance(l, bool) or not isinstance(l, (int, np.integer)):
            raise TypeError(f"layer index must be an integer, got {type(l).__name__}")
        if not lo <= l < len(self._layer_descs):
            raise NeoError(f"layer index {l} out of range [{lo}, {len(self._layer_descs) - 1}]")
        return int(l)

    def _predictor(self, i: Any):
        i = self._io_index(i)
        if i in self._dec_index:
            return self._c.decoders[0][self._dec_index[i]]
        if i in self._act_index:
            return self._c.actors[self._act_index[i]]
        raise NeoError(f"IO {i} is of type none: it has no prediction")

    @exclusive
    def _score(self, i: int, actual: np.ndarray, floor: float) -> tuple[bool, float]:
        """Decisions D14's metrics of prediction IO ``i`` against ``actual`` (a validated
        int32 CSDR) in one kernel call: the CLI scores every training step with it."""
        p = self._predictor(i)
        w, h, z = self._io_descs[i].size
        if actual.shape != (w * h,) or _core.first_out_of_range(actual, z) >= 0:
            raise NeoError(f"IO {i}: cannot score {actual!r}: expected {w * h} cell indices in [0, {z})")
        return _core.score_columns(p.pred_cis, p.probs, actual, z, floor)

    @exclusive
    def get_prediction_cis(self, i: int) -> np.ndarray:
        """The predicted next CSDR of prediction IO ``i``, or the sampled action of action IO ``i``."""
        p = self._predictor(i)
        return (p.pred_cis if isinstance(p, _core.Decoder) else p.action_cis).copy()

    @exclusive
    def get_prediction_acts(self, i: int) -> np.ndarray:
        """Per-cell probabilities (float32, ``W*H*Z``) behind ``get_prediction_cis(i)``."""
        return self._predictor(i).probs.copy()

    @exclusive
    def sample_prediction(self, i: int, temperature: float) -> np.ndarray:
        """Sample a CSDR from the prediction probabilities at ``temperature`` (0 = argmax)."""
        p = self._predictor(i)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
            raise TypeError(f"temperature must be a number, got {type(temperature).__name__}")
        t = float(temperature)
        if not math.isfinite(t) or t < 0:
            raise NeoError(f"temperature must be a finite number >= 0, got {temperature}")
        if t == 0.0:
            return self.get_prediction_cis(i)
        w, h, z = self._io_descs[i].size
        return _core.sample_columns(p.probs, w * h, z, t, self._core_rng)

    @exclusive
    def get_layer_prediction_cis(self, l: int) -> np.ndarray:
        """Layer ``l``'s (1 <= l < L) prediction of layer ``l-1``'s next hidden CSDR."""
        l = self._layer_index(l, 1)
        return self._c.decoders[l][0].pred_cis.copy()

    @exclusive
    def get_hidden_cis(self, l: int) -> np.ndarray:
        """Layer ``l``'s current hidden CSDR."""
        return self._c.encoders[self._layer_index(l)].hidden_cis.copy()

    def get_hidden_size(self, l: int) -> tuple[int, int, int]:
        """Layer ``l``'s hidden size ``(W, H, Z)``."""
        return tuple(self._layer_descs[self._layer_index(l)].hidden_size)

    def get_num_layers(self) -> int:
        """Number of layers."""
        return len(self._layer_descs)

    def get_num_io(self) -> int:
        """Number of IO ports."""
        return len(self._io_descs)

    def get_io_size(self, i: int) -> tuple[int, int, int]:
        """IO ``i``'s size ``(W, H, Z)``."""
        return tuple(self._io_descs[self._io_index(i)].size)

    def get_io_type(self, i: int) -> IOType:
        """IO ``i``'s type."""
        return self._io_descs[self._io_index(i)].io_type

    def get_num_encoder_visible_layers(self, l: int) -> int:
        """How many inputs layer ``l``'s encoder has (IOs or the layer below, plus recurrence)."""
        return self._c.encoders[self._layer_index(l)].nv

    def get_up_radius(self, l: int) -> int:
        """Radius of encoder ``l``'s first visible layer."""
        return self._c.encoders[self._layer_index(l)].vis_descs[0][3]

    def get_down_radius(self, l: int, i: int) -> int:
        """Radius of the decoder (or actor, for an action IO ``i`` at layer 0) onto layer ``l``."""
        l = self._layer_index(l)
        if l == 0:
            return self._predictor(i).vis_descs[0][3]
        if i != 0:
            raise NeoError(f"layer {l} has one decoder: index must be 0, got {i}")
        return self._c.decoders[l][0].vis_descs[0][3]

    @exclusive
    def get_encoder_receptive_field(self, l: int, v: int, pos: tuple[int, int, int]):
        """The on-weights ``A`` of one hidden cell as (uint8 array ``d*d*Zv``, ``(d, d, Zv)``)."""
        enc = self._c.encoders[self._layer_index(l)]
        if not 0 <= v < enc.nv:
            raise NeoError(f"visible layer {v} out of range [0, {enc.nv - 1}]")
        try:
            x, y, z = (int(a) for a in pos)
        except (TypeError, ValueError):
            raise NeoError(f"position must be a cell (x, y, z), got {pos!r}") from None
        if not (0 <= x < enc.hw and 0 <= y < enc.hh and 0 <= z < enc.hz):
            raise NeoError(f"cell {pos} outside hidden size {(enc.hw, enc.hh, enc.hz)}")
        vw, vh, vz, r = enc.vis_descs[v]
        d = 2 * r + 1
        col = x * enc.hh + y
        a = enc.weights_a[v].reshape(enc.hw * enc.hh, vz, d, d, enc.hz)[col, :, :, :, z]  # [vc][ox][oy]
        field = np.ascontiguousarray(a.transpose(1, 2, 0))
        # Zero the offsets that fall outside the visible layer (never read or written).
        sx, sy = np.float32(vw) / np.float32(enc.hw), np.float32(vh) / np.float32(enc.hh)
        cx, cy = int((np.float32(x) + np.float32(0.5)) * sx), int((np.float32(y) + np.float32(0.5)) * sy)
        ox = np.arange(d) + cx - r
        oy = np.arange(d) + cy - r
        field[(ox < 0) | (ox >= vw), :, :] = 0
        field[:, (oy < 0) | (oy >= vh), :] = 0
        return field.reshape(-1), (d, d, vz)

    # ------------------------------------------------------------------ sizes and buffers
    def _section_arrays(self) -> dict[str, list[tuple[str, np.ndarray]]]:
        """The arrays of the state, weights and persistent sections, in spec §9.1 order."""
        c = self._c
        state, weights, persistent = [], [], []
        persistent.append(("rng", np.array([self._core_rng.state], dtype=np.uint64)))
        for l, enc in enumerate(c.encoders):
            state.append((f"l{l}.enc.hidden_cis", enc.hidden_cis))
            for v in range(enc.nv):
                weights.append((f"l{l}.enc.v{v}.a", enc.weights_a[v]))
                weights.append((f"l{l}.enc.v{v}.b", enc.weights_b[v]))
            persistent.append((f"l{l}.enc.committed", enc.committed))
            for k, dec in enumerate(c.decoders[l]):
                state.append((f"l{l}.dec{k}.pred_cis", dec.pred_cis))
                state.append((f"l{l}.dec{k}.probs", dec.probs))
                state.append((f"l{l}.dec{k}.dend", dec.dend))
                for v in range(dec.nv):
                    weights.append((f"l{l}.dec{k}.v{v}.w", dec.weights[v]))
        for k, act in enumerate(c.actors):
            state.append((f"act{k}.action_cis", act.action_cis))
            state.append((f"act{k}.values", act.values))
            state.append((f"act{k}.meta", act.meta))
            # The reference lays the ring out newest first (H[0], H[1], ...); we keep a
            # physical ring and rotate on the way out and in (see _fill_state).
            state.append((f"act{k}.ring", np.roll(act.ring.reshape(act.cap, -1), -int(act.meta[1]), axis=0)))
            for v in range(act.nv):
                weights.append((f"act{k}.v{v}.value", act.value_weights[v]))
                weights.append((f"act{k}.v{v}.policy", act.policy_weights[v]))
            persistent.append((f"act{k}.td_scale", act.td_scale))
            persistent.append((f"act{k}.probs", act.probs))
            for v in range(act.nv):
                persistent.append((f"act{k}.v{v}.policy_delayed", act.policy_delayed[v]))
        return {"state": state, "weights": weights, "persistent": persistent}

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
        """The state as a uint8 array in spec §9.1 layout."""
        return _concat(self._section_arrays()["state"])

    @exclusive
    def serialize_weights_to_buffer(self) -> np.ndarray:
        """The weights as a uint8 array in spec §9.1 layout (byte-compatible with pyaogmaneo)."""
        return _concat(self._section_arrays()["weights"])

    @exclusive
    def set_state_from_buffer(self, buffer: Any) -> None:
        """Restore the state from ``serialize_state_to_buffer`` bytes of the same structure."""
        self._fill_state(self._section_arrays()["state"], _as_bytes_view(buffer, "state buffer"))

    def _fill_state(self, arrays: list[tuple[str, np.ndarray]], data: Any) -> None:
        """Validate a state buffer completely, then copy it in (no partial update).

        Every CSDR in it is range-checked: these values index weights inside the
        kernels, which run without bounds checks.
        """
        copies = [(n, np.empty_like(a)) for n, a in arrays]
        _fill(copies, data, "state")
        got = dict(copies)
        c = self._c

        def check(name: str, z: int) -> None:
            a = got[name]
            if a.size and (a.min() < 0 or a.max() >= z):
                raise NeoError(f"state buffer: {name} holds a cell index outside [0, {z}): "
                               "the buffer is corrupt or from another model")

        for l, enc in enumerate(c.encoders):
            check(f"l{l}.enc.hidden_cis", enc.hz)
            for k, dec in enumerate(c.decoders[l]):
                check(f"l{l}.dec{k}.pred_cis", dec.oz)
        for k, act in enumerate(c.actors):
            check(f"act{k}.action_cis", act.oz)
            size, start = (int(x) for x in got[f"act{k}.meta"])
            if not (0 <= start < act.cap and 0 <= size <= act.cap):
                raise NeoError(f"state buffer: actor {k} has history size {size} and start {start}, "
                               f"expected within [0, {act.cap}]")
            ring = got[f"act{k}.ring"].reshape(act.cap, -1)
            z0 = c.encoders[0].hz
            inputs = ring[:, :act.nv * act.in_cols]
            targets = ring[:, act.nv * act.in_cols:act.nv * act.in_cols + act.ow * act.oh]
            # Slots past history_size are never read (a slot is written before it is
            # counted), so they are kept as given: a state round trip is byte-exact
            # even after clear_state, and their values cannot reach the kernels.
            used = np.zeros(act.cap, dtype=bool)
            used[:size] = True
            if inputs[used].size and (inputs[used].min() < 0 or inputs[used].max() >= z0 or
                                      targets[used].min() < 0 or targets[used].max() >= act.oz):
                raise NeoError(f"state buffer: actor {k}'s history holds out-of-range cell indices")
        for (n, dst), (_, src) in zip(arrays, copies):
            if n.endswith(".ring"):
                continue
            dst[...] = src
        for k, act in enumerate(c.actors):
            act.ring.reshape(act.cap, -1)[...] = np.roll(got[f"act{k}.ring"].reshape(act.cap, -1),
                                                         int(act.meta[1]), axis=0)

    @exclusive
    def set_weights_from_buffer(self, buffer: Any) -> None:
        """Load weights from ``serialize_weights_to_buffer`` bytes of the same structure.

        Unlike pyaogmaneo (quirk Q3), the encoder committed flags and totals are
        derived from the weights, so the receiving hierarchy behaves as the trained
        one did. The actors' delayed policies are reset to the loaded policies.
        """
        _fill(self._section_arrays()["weights"], _as_bytes_view(buffer, "weights buffer"), "weights")
        self._after_weights_change(derive_committed=True)

    def _after_weights_change(self, derive_committed: bool) -> None:
        for enc in self._c.encoders:
            enc.recompute_totals()
            if derive_committed:
                enc.derive_committed()
        for act in self._c.actors:
            act.reset_delayed()

    # ------------------------------------------------------------------ files
    def _header_meta(self) -> dict[str, Any]:
        sizes = {k: sum(a.nbytes for _, a in v) for k, v in self._section_arrays().items()}
        return {
            "architecture": {
                "io_descs": [d.to_dict() for d in self._io_descs],
                "layer_descs": [d.to_dict() for d in self._layer_descs],
            },
            "params": self.params.to_dict(),
            "sizes": {**sizes, "total": sum(sizes.values())},
        }

    @exclusive
    def serialize_to_buffer(self, meta: dict[str, Any] | None = None, include_state: bool = True) -> np.ndarray:
        """The complete ``.ohr`` bytes (what ``save_to_file`` writes) as a uint8 array.

        ``meta`` and ``include_state`` are neocli extensions, as for ``save_to_file``.
        """
        return np.frombuffer(self._encode(meta, include_state), dtype=np.uint8).copy()

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
    def save_to_file(self, file_name: str, meta: dict[str, Any] | None = None, include_state: bool = True) -> None:
        """Write the model atomically to an ``.ohr`` file.

        neocli extensions: ``meta`` adds JSON header keys (``codec``, ``training``,
        ``user``); ``include_state=False`` leaves the temporal state out (a
        deployable file; loading it gives a cleared state). A failed write leaves
        any previous file intact. ``file_name`` may also be an open binary stream
        (``sys.stdout.buffer``): the file is streamed into it, not atomically.
        """
        if not isinstance(file_name, (str, bytes, os.PathLike)) and not hasattr(file_name, "write"):
            raise TypeError(f"file_name must be a path or a binary stream, got {type(file_name).__name__}")
        self._encode(meta, include_state, dest=file_name)

    @exclusive
    def get_rng_state(self) -> int:
        """The position of this hierarchy's own random stream (neocli extension, decisions D2)."""
        return int(self._core_rng.state)

    @exclusive
    def set_rng_state(self, state: int) -> None:
        """Set this hierarchy's own random stream, e.g. to seed ``sample_prediction`` (neocli extension)."""
        if isinstance(state, bool) or not isinstance(state, (int, np.integer)):
            raise TypeError(f"state must be an integer, got {type(state).__name__}")
        self._core_rng.state = int(state) % _U64

    def _load(self, header: dict[str, Any], sections: dict[str, dict[str, np.ndarray]]) -> None:
        kind = header.get("kind", "hierarchy")
        if kind != "hierarchy":
            what = "an ImageEncoder (load it with neocli.ImageEncoder)" if kind == "image_encoder" else f"a {kind!r}"
            raise ohr.OhrError(f"this .ohr file holds {what}, not a Hierarchy")
        arch = header.get("architecture")
        try:
            ios = [IODesc.from_dict(d) for d in arch["io_descs"]]
            layers = [LayerDesc.from_dict(d) for d in arch["layer_descs"]]
            params = Params.from_dict(header["params"])
        except (KeyError, TypeError, NeoError) as e:
            # Records raise NeoError for bad values ("size must have 3 entries"); say which file part.
            what = f"missing key {e}" if isinstance(e, KeyError) else str(e)
            raise ohr.OhrError(f"model header has no valid architecture/params: {what}") from None
        try:
            ios, layers = _check_descs(ios, layers)
        except (NeoError, TypeError) as e:
            raise ohr.OhrError(f"model header's architecture is invalid: {e}") from None
        # Check the claimed architecture against the arrays actually in the file
        # before allocating it: a hostile header must not make us allocate gigabytes.
        want = _section_sizes(ios, layers)
        for name, nbytes in want.items():
            if name not in sections:
                # A missing section must be refused here too: otherwise nothing backs
                # the claimed sizes and _build would allocate them (found by fuzzing).
                if name == "state":
                    continue  # a deployable file without temporal context
                raise ohr.OhrError(f"model file has no {name} section")
            got = sum(a.nbytes for a in sections[name].values())
            if got != nbytes:
                raise ohr.OhrError(f"model file's {name} section has {got} bytes, but its architecture "
                                   f"needs {nbytes}: the file is corrupt or inconsistent")
        self._build(ios, layers, None)
        self.params = params
        try:
            self._check_params()
        except (TypeError, NeoError) as e:  # e.g. history_iters = 2**29 (found by fuzzing)
            raise ohr.OhrError(f"model header has invalid params: {e}") from None
        expected = self._section_arrays()
        for name in ("weights", "persistent", "state"):
            if name not in sections:
                if name == "state":
                    continue  # a deployable file without temporal context
                raise ohr.OhrError(f"model file has no {name} section")
            got = sections[name]
            want = expected[name]
            if list(got) != [n for n, _ in want]:
                raise ohr.OhrError(f"model file's {name} section does not match its architecture")
            for (n, dst) in want:
                src = got[n]
                if src.dtype.newbyteorder("=") != dst.dtype.newbyteorder("=") or src.size != dst.size:
                    raise ohr.OhrError(f"model file's array {name}/{n} has dtype {src.dtype} and "
                                       f"{src.size} elements, expected {dst.dtype} and {dst.size}")
        for name in ("weights", "persistent"):
            for n, dst in expected[name]:
                dst.reshape(-1)[...] = sections[name][n].reshape(-1)
        if "state" in sections:
            raw = b"".join(np.ascontiguousarray(a).tobytes() for a in sections["state"].values())
            self._fill_state(expected["state"], memoryview(raw))
        # reshape: the file may store the one-element array with any shape (found by fuzzing).
        self._core_rng.state = int(sections["persistent"]["rng"].reshape(-1)[0])
        for enc in self._c.encoders:
            enc.recompute_totals()

    # ------------------------------------------------------------------ merge and copies
    def _structure(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self._io_descs] + [d.to_dict() for d in self._layer_descs]

    @exclusive
    def merge(self, hierarchies: Sequence["Hierarchy"], mode: MergeMode) -> None:
        """Overwrite this hierarchy's weights with a merge of ``hierarchies`` (spec §9.5).

        ``merge_average`` averages and ``merge_random`` picks a random source per
        weight, as their names say (pyaogmaneo 2.14.4 swaps them, quirk Q1). All
        hierarchies must share this one's structure. Committed flags are derived from
        the merged weights.
        """
        mode, srcs = merge_sources(self, hierarchies, mode, "hierarchies")
        with holding(srcs):  # a source stepping in another thread would be read half-updated
            self._merge(mode, srcs)

    def _merge(self, mode: MergeMode, srcs: list["Hierarchy"]) -> None:
        n = len(srcs)
        rng = self._core_rng
        c = self._c
        groups = []  # (kind, list of destination arrays, per-source arrays) in spec order
        for l, enc in enumerate(c.encoders):
            for v in range(enc.nv):
                groups.append(("enc", [enc.weights_a[v], enc.weights_b[v]],
                               [[h._c.encoders[l].weights_a[v], h._c.encoders[l].weights_b[v]] for h in srcs]))
            for k, dec in enumerate(c.decoders[l]):
                for v in range(dec.nv):
                    groups.append(("dec", [dec.weights[v]], [[h._c.decoders[l][k].weights[v]] for h in srcs]))
        for k, act in enumerate(c.actors):
            for v in range(act.nv):
                groups.append(("act", [act.value_weights[v]], [[h._c.actors[k].value_weights[v]] for h in srcs]))
                groups.append(("act", [act.policy_weights[v]], [[h._c.actors[k].policy_weights[v]] for h in srcs]))
        results = []
        for kind, dsts, per_src in groups:
            outs = []
            if mode == MergeMode.merge_random:
                pick = rng.draw_mod(dsts[0].size, n)  # one draw per index even for n == 1, as the reference
                idx = np.arange(dsts[0].size)
                for m in range(len(dsts)):
                    stack = np.stack([s[m] for s in per_src])
                    outs.append(stack[pick, idx])
            else:
                for m in range(len(dsts)):
                    stack = np.stack([s[m] for s in per_src])
                    if kind == "enc":
                        mean = stack.astype(np.float32).sum(axis=0) / np.float32(n)
                        outs.append(np.floor(mean + np.float32(0.5)).astype(np.uint8))
                    elif kind == "dec":
                        mean = stack.astype(np.float32).sum(axis=0) / np.float32(n)
                        outs.append(np.trunc(mean + np.float32(0.5)).astype(np.int8))
                    else:
                        total = stack[0].copy()
                        for s in stack[1:]:
                            total += s
                        outs.append(total / np.float32(n))
            results.append((dsts, outs))
        for dsts, outs in results:
            for d, o in zip(dsts, outs):
                d[...] = o
        self._after_weights_change(derive_committed=True)

    def __copy__(self) -> "Hierarchy":
        return self.__deepcopy__({})

    @exclusive
    def __deepcopy__(self, memo: dict) -> "Hierarchy":
        """A fully independent copy (weights, state, params, RNG position)."""
        return Hierarchy(buffer=self._encode())

    def __repr__(self) -> str:
        ios = ", ".join(f"{d.io_type.name}{tuple(d.size)}" for d in self._io_descs)
        layers = ", ".join(str(tuple(d.hidden_size)) for d in self._layer_descs)
        return f"<neocli.Hierarchy ios=[{ios}] layers=[{layers}]>"

    @property
    def io_descs(self) -> list[IODesc]:
        """The IO descriptors this hierarchy was built with (a copy of the list)."""
        return list(self._io_descs)

    @property
    def layer_descs(self) -> list[LayerDesc]:
        """The layer descriptors this hierarchy was built with (a copy of the list)."""
        return list(self._layer_descs)


def _section_sizes(ios: list[IODesc], layers: list[LayerDesc]) -> dict[str, int]:
    """Bytes of the state, weights and persistent sections, computed from descriptors only."""
    L = len(layers)
    nfb = 2 if L > 1 else 1
    state = weights = 0
    persistent = 8  # the RNG state
    for l, ld in enumerate(layers):
        hw, hh, hz = ld.hidden_size
        cols, cells = hw * hh, hw * hh * hz
        vis = ([(io.size, io.up_radius) for io in ios] if l == 0
               else [(layers[l - 1].hidden_size, ld.up_radius)])
        if ld.recurrent_radius >= 0:
            vis.append((ld.hidden_size, ld.recurrent_radius))
        state += 4 * cols
        persistent += cells
        weights += sum(2 * cells * (2 * r + 1) ** 2 * size[2] for size, r in vis)
        if l == 0:
            decs = [(io.size, io.num_dendrites_per_cell, io.down_radius) for io in ios
                    if io.io_type == IOType.prediction]
        else:
            decs = [(layers[l - 1].hidden_size, ld.num_dendrites_per_cell, ld.down_radius)]
        n_vis = nfb if l == 0 else (2 if l < L - 1 else 1)
        for size, d, r in decs:
            ocols, ocells = size[0] * size[1], size[0] * size[1] * size[2]
            state += 4 * ocols + 4 * ocells + 4 * ocells * d
            weights += n_vis * ocells * d * (2 * r + 1) ** 2 * hz
    hw, hh, hz = layers[0].hidden_size
    for io in ios:
        if io.io_type != IOType.action:
            continue
        ocols, ocells = io.size[0] * io.size[1], io.size[0] * io.size[1] * io.size[2]
        area = (2 * io.down_radius + 1) ** 2
        state += 8 * ocols + 8 + io.history_capacity * (nfb * 4 * hw * hh + 8 * ocols + 4)
        weights += nfb * 4 * (ocols * io.value_num_dendrites_per_cell + ocells * io.num_dendrites_per_cell) * area * hz
        persistent += 4 * ocols + 4 * ocells + nfb * 4 * ocells * io.num_dendrites_per_cell * area * hz
    return {"state": state, "weights": weights, "persistent": persistent}


def _concat(arrays: list[tuple[str, np.ndarray]]) -> np.ndarray:
    if not arrays:
        return np.zeros(0, dtype=np.uint8)
    return np.concatenate([a.reshape(-1).view(np.uint8) for _, a in arrays])


def _fill(arrays: list[tuple[str, np.ndarray]], data: memoryview, what: str) -> None:
    """Copy ``data`` into ``arrays`` in order, after checking its length (no partial update)."""
    total = sum(a.nbytes for _, a in arrays)
    if len(data) != total:
        raise NeoError(f"{what} buffer has {len(data)} bytes but this hierarchy's {what} is {total} bytes: "
                       "the buffer comes from a hierarchy of a different structure")
    raw = np.frombuffer(data, dtype=np.uint8)
    pos = 0
    for _, a in arrays:
        a.reshape(-1).view(np.uint8)[...] = raw[pos:pos + a.nbytes]
        pos += a.nbytes


def rng_state_from_seed(seed: int) -> int:
    """The random-stream state a user-facing seed maps to (a seeding step: raw small states
    such as 0 or 1 give poor first draws), e.g. for ``Hierarchy.set_rng_state``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < _U64:
        raise NeoError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(_core.seed_state(int(seed)))
