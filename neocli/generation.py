"""Generation from a trained sequence model (what ``neocli generate`` runs).

The next symbol is drawn from ``neocli.predictive.Predictive`` (the distribution the
model is scored with), restricted to the symbols the codec may write (for bytes,
the byte values met in training), with the controls users of text generators
expect: temperature, top-k, top-p (nucleus), a repetition penalty on symbols in a
recent window, and stop strings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .codecs import CsvCodec
from .errors import NeoError, OptionError
from .predictive import Predictive, sample_index
from .training import MAX_SEED, TrainedModel, predictive_of

__all__ = ["Controls", "generate", "sample_stream", "check_generation_options"]


def check_generation_options(length: int, temperature: float, seed: int | None) -> None:
    """Refuse a negative ``length``, a negative or non-finite ``temperature`` and a ``seed``
    outside 0..2**64-1."""
    if length < 0:
        raise OptionError("length", f"must be >= 0, got {length}")
    if not (temperature >= 0.0) or temperature == float("inf"):
        raise OptionError("temperature", f"must be a finite number >= 0, got {temperature}")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise OptionError("seed", f"must be in 0..{MAX_SEED}, got {seed}")


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
            raise OptionError("temperature", f"must be a finite number >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise OptionError("top_k", f"must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise OptionError("top_p", f"must be in (0, 1], got {self.top_p}")
        if not 1.0 <= self.repetition_penalty < float("inf"):
            raise OptionError("repetition_penalty", f"must be >= 1, got {self.repetition_penalty}")
        if self.penalty_window < 1:
            raise OptionError("penalty_window", f"must be >= 1, got {self.penalty_window}")
        if any(not s for s in self.stop):
            raise OptionError("stop", "a stop string must not be empty")


def _allowed(codec) -> np.ndarray | None:
    """Symbol indices the codec may write (None: every one)."""
    if codec.kind == "bytes":
        cand = codec.candidates()
        return np.asarray(cand[0], dtype=np.intp) if cand else None
    if codec.kind == "words" and len(codec.vocab) > 1:
        return np.arange(1, len(codec.vocab))   # never write the unknown token
    return None


def _symbol(codec, picks: list[int]) -> Any:
    """The codec symbol of the sampled indices (one per factor)."""
    if codec.kind == "csv":
        return codec.decode(np.asarray(picks, dtype=np.int32))
    k = picks[0]
    return k if codec.kind in ("bytes", "tokens") else codec.vocab[k]


def sample_stream(h, codec, pred: Predictive, length: int, controls: Controls,
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
        sym = _symbol(codec, picks)
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


def generate(model: TrainedModel, prompt: bytes | None = None, length: int = 200, temperature: float = 0.0,
             seed: int | None = None, echo_prompt: bool = False, controls: Controls | None = None,
             num_samples: int = 1, separator: bytes = b"\n") -> Iterator[bytes]:
    """Feed ``prompt`` (learning off) and yield the bytes of ``length`` generated symbols, a
    few at a time, sampled from the model's calibrated distribution.

    Without a prompt, generation continues from the context saved in the model. Sampling
    has its own generator, seeded by ``seed``, else by the model's RNG position, so the
    same call gives the same output. ``controls`` (default: ``temperature`` alone) adds
    top-k, top-p, a repetition penalty and stop strings. ``num_samples`` > 1 draws
    several continuations of the same context, each followed by ``separator``.
    """
    check_generation_options(length, temperature, seed)
    if num_samples < 1:
        raise OptionError("num_samples", f"must be >= 1, got {num_samples}")
    controls = controls if controls is not None else Controls(temperature=temperature)
    h, codec = model.hierarchy, model.codec
    pred = predictive_of(model)
    symbols: list[Any] = codec.parse_prompt(prompt) if prompt is not None else []
    if prompt is not None and not symbols and not isinstance(codec, CsvCodec):
        raise NeoError("the prompt is empty")
    rng = np.random.default_rng(seed if seed is not None else h.get_rng_state())
    if symbols:
        h.clear_state()
        for s in symbols:
            h.step([codec.encode(s)], False)
        if echo_prompt:
            yield b"".join(codec.format(s) for s in symbols)
    start = h.serialize_state_to_buffer() if num_samples > 1 else None
    for i in range(num_samples):
        if i:
            h.set_state_from_buffer(start)
        yield from sample_stream(h, codec, pred, length, controls, rng)
        if num_samples > 1:
            yield separator
