"""Generation from a trained sequence model (what ``neocli generate`` runs)."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .codecs import CsvCodec
from .errors import NeoError, OptionError
from .training import MAX_SEED, TrainedModel


def check_generation_options(length: int, temperature: float, seed: int | None) -> None:
    """Refuse a negative ``length``, a negative or non-finite ``temperature`` and a ``seed``
    outside 0..2**64-1."""
    if length < 0:
        raise OptionError("length", f"must be >= 0, got {length}")
    if not (temperature >= 0.0) or temperature == float("inf"):
        raise OptionError("temperature", f"must be a finite number >= 0, got {temperature}")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise OptionError("seed", f"must be in 0..{MAX_SEED}, got {seed}")


def generate(model: TrainedModel, prompt: bytes | None = None, length: int = 200, temperature: float = 0.0,
             seed: int | None = None, echo_prompt: bool = False) -> Iterator[bytes]:
    """Feed ``prompt`` (learning off) and yield the bytes of ``length`` generated symbols, one at a time.

    Without a prompt, generation continues from the context saved in the model. Sampling
    has its own generator, seeded by ``seed``, else by the model's RNG position, so the
    same call gives the same output. ``temperature`` 0 takes the most likely symbol.
    """
    check_generation_options(length, temperature, seed)
    h, codec = model.hierarchy, model.codec
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
    for _ in range(length):
        sym = codec.choose(h.get_prediction_acts(0), temperature, rng)
        yield codec.format(sym)
        h.step([codec.encode(sym)], False)


__all__ = ["generate", "check_generation_options"]
