"""Text generation from a trained model, sampling the calibrated distribution.

The next symbol is drawn from ``neocli.predictive.Predictive`` (the distribution the
model is scored with), restricted to the symbols the codec may write (for bytes,
the byte values met in training), with the controls users of text generators
expect: temperature, top-k, top-p (nucleus), a repetition penalty on symbols in a
recent window, and stop strings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from ._errors import NeoError
from .predictive import Predictive, sample_index

__all__ = ["Controls", "generate"]


@dataclass(frozen=True)
class Controls:
    """Sampling controls (validated): ``temperature`` 0 = most likely symbol; ``top_k``
    0 = off; ``top_p`` 1 = off; ``repetition_penalty`` 1 = off (divides the probability
    of symbols among the last ``penalty_window`` generated); ``stop``: strings that end
    a sample (the output stops right after the first one appears)."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    penalty_window: int = 64
    stop: tuple[bytes, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not (self.temperature >= 0.0) or self.temperature == float("inf"):
            raise NeoError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise NeoError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise NeoError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 1.0 <= self.repetition_penalty < float("inf"):
            raise NeoError(f"repetition_penalty must be >= 1, got {self.repetition_penalty}")
        if self.penalty_window < 1:
            raise NeoError(f"penalty_window must be >= 1, got {self.penalty_window}")
        if any(not s for s in self.stop):
            raise NeoError("a stop string must not be empty")


def _allowed(codec) -> np.ndarray | None:
    """Symbol indices the codec may write (None: every one)."""
    if codec.kind == "bytes":
        cand = codec.candidates()
        return np.asarray(cand[0], dtype=np.intp) if cand else None
    if codec.kind == "words" and len(codec.vocab) > 1:
        return np.arange(1, len(codec.vocab))   # never write the unknown token
    return None


def _symbol(codec, dists: list[np.ndarray], picks: list[int]) -> Any:
    if codec.kind == "csv":
        return codec.decode(np.asarray(picks, dtype=np.int32))
    k = picks[0]
    if codec.kind == "bytes":
        return k
    if codec.kind == "tokens":
        return k
    return codec.vocab[k]


def generate(h, codec, pred: Predictive, length: int, controls: Controls,
             rng: np.random.Generator) -> Iterator[bytes]:
    """Yield the output bytes of up to ``length`` symbols sampled from ``h`` (whose
    state holds the context, e.g. after a prompt), feeding each back as the next
    input (learning off). Stops early after a stop string."""
    allowed = _allowed(codec)
    recent: list[int] = []
    tail = b""
    longest = max((len(s) for s in controls.stop), default=0)
    for _ in range(length):
        dists = pred.distributions(h.get_prediction_acts(0))
        picks = []
        for j, p in enumerate(dists):
            if allowed is not None and codec.kind != "csv":
                mask = np.zeros_like(p)
                mask[allowed] = 1.0
                p = p * mask
            pen = None
            if controls.repetition_penalty != 1.0 and recent and codec.kind != "csv":
                pen = np.ones_like(p)
                pen[np.unique(recent)] = controls.repetition_penalty
            picks.append(sample_index(p, rng, controls.temperature, controls.top_k, controls.top_p, pen))
        sym = _symbol(codec, dists, picks)
        out = codec.format(sym)
        if codec.kind != "csv":
            recent.append(picks[0])
            del recent[:-controls.penalty_window]
        if longest:
            tail = (tail + out)[-(longest + len(out)):]
            hit = _first_stop(tail, controls.stop, len(out))
            if hit is not None:
                yield out[:hit]
                return
        yield out
        h.step([codec.encode(sym)], False)


def _first_stop(tail: bytes, stops: tuple[bytes, ...], new: int) -> int | None:
    """Where, in the newest ``new`` bytes of ``tail``, output must end so that the
    first stop string completed by them is the last thing written; None if none is."""
    best = None
    start = len(tail) - new
    for s in stops:
        i = tail.find(s, max(0, start - len(s) + 1))
        if i >= 0:
            end = i + len(s) - start
            if best is None or end < best:
                best = end
    return best
