"""Pieces shared by the train, generate and eval commands."""
from __future__ import annotations

import datetime
import glob
import os
import signal
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import Hierarchy, NeoError, aogmaneo
from ..codecs import FLOOR, RESET, Codec, codec_from_dict
from ..ohr import read_header
from .app import CliError, UsageError, echo_err


def utc_now() -> str:
    """The current UTC time, ISO-8601 with a Z."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_model(path: str) -> tuple[Hierarchy, dict[str, Any], Codec]:
    """Load a model file with its header and codec (a model without a codec is an error)."""
    if os.path.isdir(path):
        raise CliError(f"'{path}' is a directory, not a model file")
    if aogmaneo.is_aogmaneo_file(path):
        from .migrate import reference_hint

        raise CliError(reference_hint(path))
    header = read_header(path)
    if "codec" not in header and isinstance(header.get("rl"), dict):
        raise CliError(f"model '{path}' is a reinforcement-learning agent (env {header['rl'].get('env_id')}): "
                       "use it with --env")
    if header.get("kind") == "image_encoder":
        raise CliError(f"'{path}' is an image encoder, not a sequence model: load it with neocli.ImageEncoder")
    if "codec" not in header:
        raise CliError(f"model '{path}' has no codec in its header: it was not trained with the neocli CLI")
    codec = codec_from_dict(header["codec"])
    h = Hierarchy(file_name=path)
    if h.get_io_size(0) != codec.io_size:
        raise CliError(f"model '{path}': its codec expects IO size {codec.io_size}, the model has {h.get_io_size(0)}")
    return h, header, codec


@dataclass
class Score:
    """Accumulated next-symbol metrics (decisions D14)."""

    scored: int = 0
    correct: int = 0
    bits: float = 0.0
    symbols: int = 0
    seconds: float = 0.0

    def add(self, h: Hierarchy, codec: Codec, cis: np.ndarray) -> None:
        """Score the model's current prediction against the actual ``cis`` (before stepping)."""
        hit, bits = h._score(0, cis, FLOOR)
        self.correct += hit
        self.bits += bits
        self.scored += 1

    def summary(self) -> dict[str, Any]:
        """accuracy, bits/symbol, symbols/s as a JSON-ready dict."""
        return {
            "accuracy": (self.correct / self.scored) if self.scored else None,
            "bits_per_symbol": (self.bits / self.scored) if self.scored else None,
            "symbols": self.symbols,
            "scored": self.scored,
            "symbols_per_s": (self.symbols / self.seconds) if self.seconds > 0 else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """The raw accumulators (saved in checkpoints so a resumed epoch reports the same)."""
        return {"scored": self.scored, "correct": self.correct, "bits": self.bits,
                "symbols": self.symbols, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: Any) -> "Score":
        """Rebuild the accumulators from ``to_dict`` output."""
        if not isinstance(d, dict):
            return cls()
        return cls(int(d.get("scored", 0)), int(d.get("correct", 0)), float(d.get("bits", 0.0)),
                   int(d.get("symbols", 0)), float(d.get("seconds", 0.0)))


def fmt_metrics(s: dict[str, Any]) -> str:
    """A one-line human rendering of ``Score.summary()``."""
    acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.4f}"
    bps = "n/a" if s["bits_per_symbol"] is None else f"{s['bits_per_symbol']:.3f}"
    sps = "n/a" if s["symbols_per_s"] is None else f"{s['symbols_per_s']:.0f}"
    return f"accuracy {acc}  bits/symbol {bps}  symbols/s {sps}  ({s['symbols']} symbols)"


class Interrupt:
    """Turns SIGINT into a flag checked between steps, so a checkpoint is always consistent."""

    def __init__(self) -> None:
        self.flag = False
        self._old: Any = None

    def __enter__(self) -> "Interrupt":
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (e.g. under a test runner thread)
            self._old = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.flag:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def parse_meta(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs into a dict (values stay strings)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--meta expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        if not k:
            raise UsageError(f"--meta expects KEY=VALUE, got {item!r}")
        out[k] = v
    return out


def parse_sizes(hidden: str, layers: int | None) -> list[tuple[int, int, int]]:
    """``--hidden WxHxZ`` (with ``--layers N``) or ``--hidden A,B,C`` (decisions D12)."""
    parts = [p.strip() for p in hidden.split(",") if p.strip()]
    sizes = []
    for p in parts:
        dims = p.lower().split("x")
        try:
            w, h, z = (int(d) for d in dims)
        except ValueError:
            raise UsageError(f"--hidden expects WxHxZ sizes like 5x5x32, got {p!r}") from None
        if min(w, h, z) < 1:
            raise UsageError(f"--hidden sizes must be >= 1, got {p!r}")
        sizes.append((w, h, z))
    if not sizes:
        raise UsageError("--hidden is empty")
    if len(sizes) == 1:
        n = 2 if layers is None else layers
        if n < 1:
            raise UsageError(f"--layers must be >= 1, got {n}")
        return sizes * n
    if layers is not None and layers != len(sizes):
        raise UsageError(f"--layers {layers} disagrees with the {len(sizes)} sizes given to --hidden")
    return sizes


def rotate_checkpoints(directory: str, keep: int | None) -> None:
    """Keep only the ``keep`` newest ``ckpt-e*-s*.ohr`` files of ``directory`` (by name,
    which sorts by epoch or episode, then step); None keeps all."""
    if not keep:
        return
    for old in sorted(glob.glob(os.path.join(directory, "ckpt-e*-s*.ohr")))[:-keep]:
        try:
            os.remove(old)
        except OSError as e:
            echo_err(f"warning: could not remove old checkpoint '{old}': {e.strerror}")


__all__ = ["rotate_checkpoints", "utc_now", "load_model", "Score", "fmt_metrics", "Interrupt", "parse_meta", "parse_sizes",
           "RESET", "NeoError", "CliError"]
