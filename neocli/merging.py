"""Weight averaging for synchronising copies of one model (data-parallel training).

``Hierarchy.merge(..., merge_average)`` reproduces pyaogmaneo: it rounds 8-bit
weights as ``trunc(mean + 0.5)``, so averaging two *identical* hierarchies moves
a few percent of their weight bytes (every negative decoder weight ending in .5
after the float division goes up by one). Repeated every few thousand steps, that
drift costs quality. The functions here work on the public weights buffers
(``serialize_weights_to_buffer`` / ``set_weights_from_buffer``) and:

* leave identical inputs byte-for-byte unchanged (the mean is computed as the
  first input plus weighted deviations from it, so identical inputs give a zero
  deviation and no float error);
* round 8-bit weights half to even (``rounding="even"``) or stochastically with
  an explicit seed (``rounding="stochastic"``, unbiased: a weight whose mean is
  12.25 becomes 13 with probability 0.25), clipped to the dtype's range;
* average float weights (actors) in float64 and store them as float32 (8-bit
  weights are averaged in float32, which is exact for their deviations).

The layout of a weights buffer (name, dtype and size of every array, in order)
comes from the model's ``.ohr`` header, see :func:`weights_layout`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from . import ohr
from .errors import NeoError

__all__ = ["WeightArray", "weights_layout", "average_weights", "average_hierarchies", "ROUNDINGS"]

ROUNDINGS = ("even", "stochastic")


@dataclass(frozen=True)
class WeightArray:
    """One array of a weights buffer: ``buffer[offset:offset + nbytes]`` viewed as ``dtype``.

    ``name`` is the array's name in the ``.ohr`` file (``l0.enc.v0.a``: layer 0
    encoder, visible layer 0, on-weights, uint8; ``l0.dec0.v1.w``: a decoder's
    int8 weights; ``act0.v0.policy``: an actor's float32 weights).
    """

    name: str
    dtype: np.dtype
    offset: int
    nbytes: int

    @property
    def count(self) -> int:
        """Number of elements."""
        return self.nbytes // self.dtype.itemsize


def weights_layout(model: Any) -> list[WeightArray]:
    """The arrays of ``model.serialize_weights_to_buffer()``, in buffer order.

    ``model`` is a ``Hierarchy`` (or anything with ``serialize_to_buffer``), or the
    bytes of an ``.ohr`` file. Read from the file header's ``weights`` section, whose
    concatenation is by definition the weights buffer.
    """
    data = model if isinstance(model, (bytes, bytearray, memoryview, np.ndarray)) else \
        model.serialize_to_buffer(include_state=False)
    header = ohr.decode_header(data)
    out, pos = [], 0
    for e in header["sections"].get("weights", []):
        dt = np.dtype(e["dtype"])
        out.append(WeightArray(e["name"], dt, pos, int(e["nbytes"])))
        pos += int(e["nbytes"])
    return out


def _as_u8(buf: Any, what: str) -> np.ndarray:
    if isinstance(buf, np.ndarray):
        return np.ascontiguousarray(buf).reshape(-1).view(np.uint8)
    if isinstance(buf, (bytes, bytearray, memoryview)):
        return np.frombuffer(buf, dtype=np.uint8)
    raise TypeError(f"{what} must be bytes or a uint8 array, got {type(buf).__name__}")


def average_weights(buffers: Sequence[Any], layout: Sequence[WeightArray],
                    weights: Optional[Sequence[float]] = None, rounding: str = "even",
                    seed: Optional[int] = None) -> np.ndarray:
    """The weighted average of weights buffers of one structure, as a new uint8 buffer.

    ``buffers``: ``serialize_weights_to_buffer()`` outputs (bytes or uint8 arrays);
    ``layout``: :func:`weights_layout` of that structure; ``weights``: one
    non-negative factor per buffer (default equal), e.g. the steps each copy
    trained since the last average. ``rounding``: ``"even"`` (round half to even)
    or ``"stochastic"`` (needs ``seed``; the same seed gives the same bytes).
    Identical buffers give that buffer back exactly, whatever the rounding.
    """
    if rounding not in ROUNDINGS:
        raise NeoError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    if rounding == "stochastic" and seed is None:
        raise NeoError("rounding='stochastic' needs an explicit seed")
    bufs = [_as_u8(b, f"buffers[{k}]") for k, b in enumerate(buffers)]
    if not bufs:
        raise NeoError("buffers must hold at least one weights buffer")
    total = sum(a.nbytes for a in layout)
    for k, b in enumerate(bufs):
        if b.size != total:
            raise NeoError(f"buffers[{k}] has {b.size} bytes but the layout describes {total}: "
                           "it comes from a model of a different structure")
    w = np.ones(len(bufs)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != len(bufs) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise NeoError(f"weights must be {len(bufs)} non-negative numbers with a positive sum, got {list(w)}")
    w = w / w.sum()
    rng = np.random.Generator(np.random.PCG64(seed)) if rounding == "stochastic" else None
    out = bufs[0].copy()
    for arr in layout:
        sl = slice(arr.offset, arr.offset + arr.nbytes)
        # 8-bit weights differ by at most 255, so float32 holds every deviation and an
        # equal-weight tie (x.5) exactly, at half the memory traffic of float64.
        ftype = np.float64 if arr.dtype.kind == "f" else np.float32
        base = bufs[0][sl].view(arr.dtype).astype(ftype)
        dev = None
        for b, f in zip(bufs[1:], w[1:]):
            if f:
                d = b[sl].view(arr.dtype).astype(ftype)
                d -= base
                d *= ftype(f)
                dev = d if dev is None else dev + d
        mean = base if dev is None else base + dev  # identical inputs: dev is exactly 0
        if arr.dtype.kind == "f":
            res = mean.astype(arr.dtype)
        else:
            if rng is None:
                r = np.rint(mean)
            else:
                r = np.floor(mean + rng.random(mean.size))
            info = np.iinfo(arr.dtype)
            res = np.clip(r, info.min, info.max).astype(arr.dtype)
        out[sl] = res.view(np.uint8)
    return out


def average_hierarchies(target: Any, sources: Sequence[Any], weights: Optional[Sequence[float]] = None,
                        rounding: str = "even", seed: Optional[int] = None) -> None:
    """Set ``target``'s weights to :func:`average_weights` of ``sources``' weights.

    Unlike ``Hierarchy.merge(..., merge_average)`` (pyaogmaneo's rounding), the
    average of identical hierarchies is the identity. ``target`` keeps its state.
    """
    layout = weights_layout(target)
    merged = average_weights([s.serialize_weights_to_buffer() for s in sources], layout,
                             weights, rounding, seed)
    target.set_weights_from_buffer(merged)
