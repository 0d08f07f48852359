"""Training and evaluation of sequence models as a library API (what ``neocli train``/``eval`` run).

Everything here works from Python with no command line in sight::

    from neocli import training

    opts = training.TrainOptions(codec=training.CodecOptions(kind="chars"),
                                 architecture=training.Architecture(hidden="4x4x16"),
                                 schedule=training.Schedule(epochs=2))
    result = training.train(["book.txt"], opts, output="book.ohr")
    metrics = training.evaluate(training.load_model("book.ohr"), ["held_out.txt"])
    print(metrics.bits_per_symbol)

Option records are frozen dataclasses validated when they are built; a bad value raises
:class:`OptionError` (a :class:`~neocli.errors.NeoError`) whose ``field`` names the record
field. Nothing here prints: progress is reported through a callback.

A run is deterministic: the same sources and options give byte-identical weights and
state, and a run resumed from any checkpoint ends byte-identical to an uninterrupted one
(the checkpoint records the position in the data, the partial metrics, the RNG and the
hierarchy's state).
"""
from __future__ import annotations

import copy
import datetime
import glob
import math
import numbers
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from . import checkpoints as _ckpt
from ._errors import NamedError, Param
from .errors import ConflictError, NeedsForce, NeoError, OptionError, ParameterError
from ._threads import set_num_threads
from .codecs import CODEC_KINDS, FLOOR, RESET, Codec, codec_from_dict, make_codec
from .hierarchy import Hierarchy, set_global_state
from .predictive import Predictive
from .presets import apply_params, parse_param
from .ohr import read_header
from .memory import check_memory
from .ohr import check_output_path, decode_header, read_header
from .params import IODesc, LayerDesc, prediction
from .sources import ByteCount, CountingDigest, HashingReader, Sources, as_list, open_sources, prepare_directory

#: Layer size and count used when the architecture leaves them out (README "Choosing the
#: defaults": picked on held-out bits per byte).
DEFAULT_HIDDEN = (8, 8, 32)
DEFAULT_LAYERS = 1
#: Radii and dendrites used when the architecture leaves them out.
ARCH_DEFAULTS = {"up_radius": 2, "down_radius": 4, "recurrent_radius": 0, "dendrites": 4}
#: The bytes codec's layout when none is given: one 256-cell column (the nibble pair
#: is faster per step but its product of marginals models text worse).
DEFAULT_BYTE_LAYOUT = "byte"
#: Learning parameters set on a new model unless ``params`` overrides them (names as
#: in ``neocli.presets.parse_param``); the Hierarchy's own defaults stay pyaogmaneo's.
DEFAULT_PARAMS: dict[str, Any] = {"ios.decoder.scale": 4.0}
#: Where the hierarchy's state is cleared: at each file, at blank lines too, or never.
RESET_MODES = ("file", "blank", "none")
#: Largest seed (seeds are unsigned 64-bit).
MAX_SEED = 2**64 - 1
#: Symbols between two progress reports.
PROGRESS_EVERY = 256


class Interrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM after writing a checkpoint (``path``; None if nowhere to write).

    ``resume_hint`` says how to continue; ``signum`` is the signal received.
    """

    def __init__(self, path: str | None, epoch: int, steps: int, signum: int = signal.SIGINT,
                 where: str | None = None, output: str | None = None, data: list[str] | None = None,
                 env: str | None = None) -> None:
        self.path = path
        #: The run's data sources (``-`` for stdin), which a resumed run must read again; None if unknown.
        self.data = data
        #: For an RL agent: its environment id (then ``data`` is None).
        self.env = env
        self.epoch = epoch
        self.steps = steps
        self.signum = signum
        #: The run's output (what a resumed run must write again), or None.
        self.output = output
        #: Where the run stopped, for messages ("epoch 2, 1500 steps"); the epoch is the one in
        #: progress, 1-based, as in checkpoint names and ``neocli inspect``'s "resumable at".
        self.where = where or f"epoch {epoch}, {steps} steps"
        out = f", output={output!r}" if output else ""
        self.resume_hint = f"resume={path!r}{out}" if path else "no checkpoint could be written"
        super().__init__(f"interrupted at {self.where}; continue with {self.resume_hint}")


class EvalInterrupted(KeyboardInterrupt):
    """Evaluation stopped by a signal; ``metrics`` holds the scores of the symbols read so far."""

    def __init__(self, metrics: "Metrics", signum: int = signal.SIGINT) -> None:
        self.metrics = metrics
        self.signum = signum
        super().__init__(f"interrupted after {metrics.symbols} symbols")


# --------------------------------------------------------------------------- validation helpers


def _int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise OptionError(name, f"must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise OptionError(name, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise OptionError(name, f"must be <= {maximum}, got {value}")
    return value


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _check_ints(record: Any, bounds: dict[str, int | tuple[int, int]]) -> None:
    """Validate, in place, the optional integer fields of a frozen option record named in
    ``bounds`` (name: minimum, or (minimum, maximum)); a field left None is not given."""
    for name, bound in bounds.items():
        value = getattr(record, name)
        if value is not None:
            low, high = bound if isinstance(bound, tuple) else (bound, None)
            _set(record, name, _int(name, value, low, high))


def _given(record: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of an option record that are set (not None), but those in ``drop``."""
    return {k: v for k, v in asdict(record).items() if v is not None and k not in drop}


def parse_hidden(text: str, name: str = "hidden") -> tuple[tuple[int, int, int], ...]:
    """``"WxHxZ"`` or ``"A,B,C"`` (one size per layer) as a tuple of ``(w, h, z)``."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise OptionError(name, "is empty")
    sizes = []
    for p in parts:
        try:
            w, h, z = (int(d) for d in p.lower().split("x"))
        except ValueError:
            raise OptionError(name, f"expects WxHxZ sizes like 5x5x32, got {p!r}") from None
        sizes.append((w, h, z))
    return tuple(sizes)


def format_hidden(sizes: Iterable[Iterable[int]]) -> str:
    """The inverse of :func:`parse_hidden`."""
    return ",".join("x".join(str(int(d)) for d in s) for s in sizes)


def parse_range(text: str, name: str = "csv_range") -> tuple[float, float]:
    """``"LO:HI"`` as two finite floats with LO < HI."""
    try:
        lo, hi = (float(x) for x in str(text).split(":"))
    except ValueError:
        raise OptionError(name, f"expects LO:HI, e.g. 0:200, got {text!r}") from None
    return _check_range(name, (lo, hi), text)


def _check_range(name: str, pair: Any, shown: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in pair)
    except (TypeError, ValueError):
        raise OptionError(name, f"expects (LO, HI), got {shown!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise OptionError(name, f"needs finite LO and HI, got {shown!r}")
    if not lo < hi:
        raise OptionError(name, f"needs LO < HI, got {shown!r}")
    if not math.isfinite(hi - lo):
        # Bins are fractions of HI-LO: an infinite span makes every bin's value inf or nan.
        raise OptionError(name, f"needs a finite span HI-LO (at most about 1.8e308), got {shown!r}")
    return lo, hi


def parse_every(text: str | None) -> tuple[int, int]:
    """``"N"`` steps or ``"Ne"`` epochs, as ``(every_steps, every_epochs)``; None gives (0, 0)."""
    if text is None:
        return 0, 0
    t = str(text).strip().lower()
    try:
        n = int(t[:-1] if t.endswith("e") else t)
    except ValueError:
        n = 0
    if n < 1:
        raise OptionError("every_steps", "expects a number of steps (e.g. 5000) or epochs (e.g. 1e), "
                                         f"got {text!r}")
    return (0, n) if t.endswith("e") else (n, 0)


def parse_meta(items: Iterable[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict (values stay strings)."""
    out: dict[str, str] = {}
    for item in items or []:
        k, sep, v = str(item).partition("=")
        if not sep or not k:
            raise OptionError("meta", f"expects KEY=VALUE, got {item!r}")
        out[k] = v
    return out


# --------------------------------------------------------------------------- option records


@dataclass(frozen=True)
class CodecOptions:
    """How data becomes symbols. ``None`` fields take the documented defaults (``kind`` None:
    bytes for a new model, the model's own codec with ``resume``/``init``)."""

    kind: str | None = None
    byte_layout: str | None = None
    bins: int | None = None
    max_vocab: int | None = None
    csv_columns: tuple[str, ...] | None = None
    csv_range: tuple[float, float] | None = None
    csv_header: bool | None = None
    csv_delimiter: str | None = None
    csv_missing: str | None = None
    encoding: str | None = None

    def __post_init__(self) -> None:
        if self.csv_delimiter is not None:
            from .codecs import parse_delimiter
            try:
                _set(self, "csv_delimiter", parse_delimiter(self.csv_delimiter) or "auto")
            except NeoError as e:
                raise OptionError("csv_delimiter", "must " + str(e).split(" must ", 1)[-1]) from None
        if self.csv_missing is not None and self.csv_missing not in ("skip", "cell", "error"):
            raise OptionError("csv_missing", f"must be skip, cell or error, got {self.csv_missing!r}")
        if self.encoding is not None:
            from .codecs import check_encoding
            try:
                _set(self, "encoding", check_encoding(self.encoding))
            except NeoError as e:
                raise OptionError("encoding", str(e)) from None
        if self.kind is not None and self.kind not in CODEC_KINDS:
            raise OptionError("kind", f"must be one of {', '.join(CODEC_KINDS)}, got {self.kind!r}")
        if self.byte_layout is not None and self.byte_layout not in ("nibbles", "byte"):
            raise OptionError("byte_layout", f"must be nibbles or byte, got {self.byte_layout!r}")
        _check_ints(self, {"bins": 2, "max_vocab": 2 if self.kind == "words" else 1})
        if self.csv_columns is not None:
            cols = self.csv_columns.split(",") if isinstance(self.csv_columns, str) else list(self.csv_columns)
            cols = tuple(str(c).strip() for c in cols if str(c).strip())
            if not cols:
                raise OptionError("csv_columns", "is empty")
            _set(self, "csv_columns", cols)
        if self.csv_range is not None:
            r = self.csv_range
            _set(self, "csv_range", parse_range(r) if isinstance(r, str) else _check_range("csv_range", r, r))
        if self.csv_header is not None and not isinstance(self.csv_header, bool):
            raise OptionError("csv_header", f"must be True, False or None, got {self.csv_header!r}")
        if self.kind is not None:
            self.check_applies(self.kind)

    def check_applies(self, kind: str) -> None:
        """Refuse a field that does not apply to codec ``kind``."""
        if self.byte_layout is not None and kind != "bytes":
            raise OptionError("byte_layout", "applies to codec bytes only")
        if self.bins is not None and kind != "csv":
            raise OptionError("bins", "applies to codec csv only")
        if self.max_vocab is not None:
            if kind not in ("chars", "words"):
                raise OptionError("max_vocab", "applies to codec chars or words only")
            _int("max_vocab", self.max_vocab, 2 if kind == "words" else 1)
        if self.encoding is not None and kind not in ("chars", "words", "csv"):
            raise OptionError("encoding", "applies to codec chars, words or csv only")
        for name in ("csv_range", "csv_header", "csv_columns", "csv_delimiter", "csv_missing"):
            if getattr(self, name) is not None and kind != "csv":
                raise OptionError(name, "applies to codec csv only")

    def given(self) -> dict[str, Any]:
        """The fields set (not None), in the form stored in a training record."""
        out = _given(self, drop=("kind",))
        if "csv_columns" in out:
            out["csv_columns"] = ",".join(out["csv_columns"])
        if "csv_range" in out:
            out["csv_range"] = f"{out['csv_range'][0]:g}:{out['csv_range'][1]:g}"
        return out


@dataclass(frozen=True)
class Architecture:
    """The hierarchy's shape. ``hidden`` is ``"WxHxZ"``, ``"A,B,C"`` or a sequence of ``(w, h, z)``;
    one size with ``layers`` N gives N equal layers. ``None`` fields take the defaults
    (:data:`DEFAULT_HIDDEN`, :data:`DEFAULT_LAYERS`, :data:`ARCH_DEFAULTS`)."""

    layers: int | None = None
    hidden: tuple[tuple[int, int, int], ...] | None = None
    up_radius: int | None = None
    down_radius: int | None = None
    recurrent_radius: int | None = None
    dendrites: int | None = None

    def __post_init__(self) -> None:
        _check_ints(self, {"layers": 1, "up_radius": 0, "down_radius": 0, "recurrent_radius": -1, "dendrites": 1})
        if self.hidden is not None:
            h = self.hidden
            if isinstance(h, str):
                sizes = parse_hidden(h)
            else:
                seq = list(h)
                if len(seq) == 3 and all(isinstance(d, numbers.Integral) for d in seq):
                    seq = [seq]
                try:
                    sizes = tuple(tuple(_int("hidden", d) for d in s) for s in seq)
                except TypeError:
                    raise OptionError("hidden", f"expects WxHxZ sizes, got {h!r}") from None
                if not sizes or any(len(s) != 3 for s in sizes):
                    raise OptionError("hidden", f"expects WxHxZ sizes, got {h!r}")
            for s in sizes:
                if min(s) < 1:
                    raise OptionError("hidden", f"sizes must be >= 1, got {format_hidden([s])!r}")
                if s[0] * s[1] * s[2] >= 2**31:
                    raise OptionError("hidden", f"size {format_hidden([s])} is too large")
            _set(self, "hidden", sizes)
            if len(sizes) > 1 and self.layers is not None and self.layers != len(sizes):
                raise OptionError("layers", f"{self.layers} disagrees with the {len(sizes)} sizes given to hidden")

    def sizes(self, default_layers: int = DEFAULT_LAYERS,
              default_hidden: tuple[int, int, int] = DEFAULT_HIDDEN) -> list[tuple[int, int, int]]:
        """The layer sizes (one per layer); ``default_*`` fill what the record leaves out."""
        hidden = self.hidden or (default_hidden,)
        if len(hidden) > 1:
            return list(hidden)
        return list(hidden) * (self.layers if self.layers is not None else default_layers)

    def radii(self, defaults: dict[str, int] | None = None) -> dict[str, int]:
        """up/down/recurrent radius and dendrites, ``defaults`` (:data:`ARCH_DEFAULTS`) filled in."""
        defaults = ARCH_DEFAULTS if defaults is None else defaults
        return {k: (getattr(self, k) if getattr(self, k) is not None else v) for k, v in defaults.items()}

    def given(self) -> dict[str, Any]:
        """The fields set (not None), in the form stored in a training record."""
        out = _given(self)
        if "hidden" in out:
            out["hidden"] = format_hidden(out["hidden"])
        return out


@dataclass(frozen=True)
class Schedule:
    """Passes over the data and where the hierarchy's state is cleared (one of :data:`RESET_MODES`;
    None: ``file`` for a new run, the model's own with ``resume``)."""

    epochs: int = 1
    reset_on: str | None = None

    def __post_init__(self) -> None:
        _set(self, "epochs", _int("epochs", self.epochs, 1))
        if self.reset_on is not None and self.reset_on not in RESET_MODES:
            raise OptionError("reset_on", f"must be file, blank or none, got {self.reset_on!r}")


@dataclass(frozen=True)
class CheckpointPolicy:
    """Checkpoints in ``directory`` every ``every_steps`` steps or ``every_epochs`` epochs (0: never),
    keeping the ``keep`` newest (None: all)."""

    directory: str | None = None
    every_steps: int = 0
    every_epochs: int = 0
    keep: int | None = None

    def __post_init__(self) -> None:
        if self.directory is not None:
            _set(self, "directory", os.fspath(self.directory))
        _set(self, "every_steps", _int("every_steps", self.every_steps, 0))
        _set(self, "every_epochs", _int("every_epochs", self.every_epochs, 0))
        if self.every_steps and self.every_epochs:
            raise OptionError("every_steps", "and every_epochs cannot both be set")
        _check_ints(self, {"keep": 1})
        if (self.every_steps or self.every_epochs or self.keep) and not self.directory:
            raise OptionError("directory", "is required to write or keep checkpoints")


@dataclass(frozen=True)
class TrainOptions:
    """Everything a training run needs besides its data. ``meta`` goes to the header's ``user`` object."""

    codec: CodecOptions = field(default_factory=CodecOptions)
    architecture: Architecture = field(default_factory=Architecture)
    schedule: Schedule = field(default_factory=Schedule)
    checkpoints: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    #: Seed of the initial weights. None (not given) is 0 for a new model and, when resuming,
    #: the model's own; a seed given when resuming must equal the model's (0 included).
    seed: int | None = None
    threads: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: Learning-parameter overrides ``{"layers.encoder.lr": 0.3, ...}`` (``neocli.presets``
    #: names), applied over :data:`DEFAULT_PARAMS` and stored in the model's header.
    params: dict[str, Any] = field(default_factory=dict)
    #: Held-out data scored (learning off) after every epoch and every ``valid_every``
    #: steps; the best-scoring model is what ``output`` holds.
    valid: tuple[str, ...] | None = None
    valid_every: int = 0
    #: Stop after this many validations without a new best (None: never stop early).
    patience: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.params, dict):
            raise OptionError("params", f"must be a dict of NAME: VALUE, got {self.params!r}")
        try:
            _set(self, "params", dict(parse_param(f"{k}={v}") for k, v in self.params.items()))
        except NeoError as e:
            raise OptionError("params", str(e)) from None
        if self.valid is not None:
            v = [self.valid] if isinstance(self.valid, (str, bytes, os.PathLike)) else list(self.valid)
            if not v:
                raise OptionError("valid", "is empty")
            _set(self, "valid", tuple(os.fsdecode(x) for x in v))
        _set(self, "valid_every", _int("valid_every", self.valid_every, 0))
        _check_ints(self, {"patience": 1, "seed": (0, MAX_SEED), "threads": 1})
        if (self.valid_every or self.patience is not None) and self.valid is None:
            raise OptionError("valid", "is required by valid_every and patience")
        for name, cls in (("codec", CodecOptions), ("architecture", Architecture), ("schedule", Schedule),
                          ("checkpoints", CheckpointPolicy)):
            if not isinstance(getattr(self, name), cls):
                raise OptionError(name, f"must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.meta, dict) or not all(isinstance(k, str) and k for k in self.meta):
            raise OptionError("meta", f"must be a dict with non-empty string keys, got {self.meta!r}")

    @property
    def initial_seed(self) -> int:
        """The seed a new model starts from: ``seed``, or 0 when it was not given."""
        return 0 if self.seed is None else self.seed


def validate(options: TrainOptions) -> TrainOptions:
    """Check ``options`` (records validate themselves when built; this re-checks a record
    whose fields were changed behind its back with ``object.__setattr__``)."""
    if not isinstance(options, TrainOptions):
        raise OptionError("options", f"must be a TrainOptions, got {type(options).__name__}")
    for part in (options.codec, options.architecture, options.schedule, options.checkpoints):
        part.__post_init__()
    options.__post_init__()
    return options


# --------------------------------------------------------------------------- results


@dataclass
class Progress:
    """A progress report: ``symbols`` of epoch ``epoch`` (1-based) of ``epochs`` done, of
    ``total`` if known; ``metrics`` is set on the report that ends an epoch."""

    epoch: int
    epochs: int
    symbols: int
    total: int | None = None
    metrics: dict[str, Any] | None = None
    #: Set on the report of a validation (``valid``): epoch, steps and held-out bits_per_symbol.
    validation: dict[str, Any] | None = None


@dataclass
class Metrics:
    """Next-symbol metrics: the model's prediction is scored before each step, except the
    first step after a state reset (nothing to predict from)."""

    symbols: int = 0
    scored: int = 0
    correct: int = 0
    bits: float = 0.0
    seconds: float = 0.0
    #: Bytes of data the symbols came from (None: unknown), for bits per byte.
    data_bytes: int | None = None
    #: Codec counters (``unknown`` symbols, CSV ``skipped_rows``/``missing_cells``), when the codec has them.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        """Fraction of scored symbols predicted exactly (None if nothing was scored)."""
        return self.correct / self.scored if self.scored else None

    @property
    def bits_per_symbol(self) -> float | None:
        """Mean -log2 probability of the actual symbol (None if nothing was scored)."""
        return self.bits / self.scored if self.scored else None

    @property
    def symbols_per_s(self) -> float | None:
        """Throughput (None for a zero duration)."""
        return self.symbols / self.seconds if self.seconds > 0 else None

    @property
    def perplexity(self) -> float | None:
        """2 ** bits_per_symbol: the number of equally likely symbols that would be as surprising."""
        b = self.bits_per_symbol
        return 2.0 ** b if b is not None and b < 1024 else None

    @property
    def bits_per_byte(self) -> float | None:
        """Total bits over the bytes of the data scored (None when the size is unknown)."""
        return self.bits / self.data_bytes if self.data_bytes else None

    def add(self, hierarchy: Hierarchy, cis: np.ndarray, predictive: Predictive | None = None,
            learn: bool = False) -> None:
        """Score ``hierarchy``'s current prediction against ``cis`` (call before stepping): an
        exact hit of every column, and the bits of the calibrated distribution
        ``predictive`` (which learns from the symbol when ``learn``; without one, the raw
        per-column rule floored at ``FLOOR``)."""
        hit, bits = score_prediction(hierarchy, cis)
        if predictive is not None:
            bits = predictive.score(hierarchy.get_prediction_acts(0), cis, learn=learn)
        self.correct += hit
        self.bits += bits
        self.scored += 1

    def to_dict(self) -> dict[str, Any]:
        """accuracy, bits/symbol, perplexity, bits/byte (when known), symbols, scored, symbols/s,
        and the codec's counters as a JSON-ready dict."""
        d = {"accuracy": self.accuracy, "bits_per_symbol": self.bits_per_symbol, "perplexity": self.perplexity,
             "symbols": self.symbols, "scored": self.scored, "symbols_per_s": self.symbols_per_s}
        if self.data_bytes:
            d["bits_per_byte"] = self.bits_per_byte
        return {**d, **self.counts}

    def state(self) -> dict[str, Any]:
        """The raw accumulators (saved in checkpoints so a resumed epoch reports the same)."""
        return {"scored": self.scored, "correct": self.correct, "bits": self.bits,
                "symbols": self.symbols, "seconds": self.seconds}

    @classmethod
    def from_state(cls, d: Any) -> "Metrics":
        """Rebuild the accumulators from :meth:`state` output (empty for anything else)."""
        if not isinstance(d, dict):
            return cls()
        return cls(symbols=int(d.get("symbols", 0)), scored=int(d.get("scored", 0)),
                   correct=int(d.get("correct", 0)), bits=float(d.get("bits", 0.0)),
                   seconds=float(d.get("seconds", 0.0)))


def score_prediction(hierarchy: Hierarchy, cis: np.ndarray) -> tuple[bool, float]:
    """(exact hit, bits) of ``hierarchy``'s prediction on IO 0 against the actual CSDR ``cis``:
    bits is -log2 of the product of the columns' probabilities, each floored at ``FLOOR``."""
    return hierarchy._score(0, cis, FLOOR)


@dataclass
class TrainedModel:
    """A sequence model: its hierarchy, codec and file header."""

    hierarchy: Hierarchy
    codec: Codec
    header: dict[str, Any] = field(default_factory=dict)
    #: The calibrated distribution (its learned state comes from the header); built on first use.
    predictive: Predictive | None = None

    @property
    def record(self) -> dict[str, Any]:
        """The header's ``training`` object ({} if none)."""
        t = self.header.get("training")
        return t if isinstance(t, dict) else {}

    @property
    def model(self) -> Hierarchy:
        """Read-only alias of ``hierarchy`` (the name :class:`TrainingResult` uses)."""
        return self.hierarchy


@dataclass
class TrainingResult:
    """What :func:`train` returns; ``metrics`` has one dict per epoch (``epoch`` is 1-based).

    ``hierarchy`` is a read-only alias of ``model`` (the name :class:`TrainedModel` uses);
    ``predictive`` is the run's calibrated distribution. :func:`evaluate` accepts it as is."""

    model: Hierarchy
    codec: Codec
    record: dict[str, Any]
    output: str | None = None
    predictive: Predictive | None = None

    @property
    def hierarchy(self) -> Hierarchy:
        """Read-only alias of ``model`` (the name :class:`TrainedModel` uses)."""
        return self.model

    def as_trained_model(self) -> TrainedModel:
        """The result as a :class:`TrainedModel` (sharing the hierarchy, codec, record and
        calibrated distribution), e.g. for :func:`evaluate` or :func:`save_model`."""
        return TrainedModel(self.model, self.codec, {"training": self.record}, self.predictive)

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Per-epoch metrics (the record's ``metrics``)."""
        return self.record.get("metrics", [])


# --------------------------------------------------------------------------- models and codecs


def utc_now() -> str:
    """The current UTC time, ISO-8601 with a Z."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def predictive_of(model: TrainedModel) -> Predictive:
    """The model's calibrated distribution: restored from the header's ``predictive`` state
    (a model without one starts a fresh state), created once and kept on ``model``."""
    if model.predictive is None:
        state = model.header.get("predictive")
        model.predictive = Predictive(model.codec, state if state is not None else None)
    return model.predictive


def load_model(path: Any) -> TrainedModel:
    """Load a sequence model (a file written by :func:`train`/:func:`save_model`) with its codec.

    ``"-"`` reads the model from stdin (so models pipe like data)."""
    if path in ("-", b"-"):
        import sys

        data = sys.stdin.buffer.read()
        return _model_from(decode_header(data), "<stdin>", lambda: Hierarchy(buffer=data))
    shown = _shown(path)
    if os.path.isdir(path):
        raise NeoError(f"'{shown}' is a directory, not a model file")
    return _model_from(read_header(path), shown, lambda: Hierarchy(file_name=path))


def _model_from(header: dict[str, Any], shown: str, build: Callable[[], Hierarchy]) -> TrainedModel:
    if "codec" not in header and isinstance(header.get("rl"), dict):
        raise NeoError(f"model '{shown}' is a reinforcement-learning agent (env {header['rl'].get('env_id')}), "
                       "not a sequence model: load it with neocli.rl.load_agent")
    if header.get("kind") == "image_encoder":
        raise NeoError(f"'{shown}' is an image encoder, not a sequence model: load it with neocli.ImageEncoder")
    if "codec" not in header:
        raise NeoError(f"model '{shown}' has no codec in its header: it was not trained with neocli.training")
    codec = codec_from_dict(header["codec"])
    h = build()
    if h.get_io_size(0) != codec.io_size:
        raise NeoError(f"model '{shown}': its codec expects IO size {codec.io_size}, the model has {h.get_io_size(0)}")
    model = TrainedModel(h, codec, header)
    predictive_of(model)   # validate the stored state now, not halfway through a run
    return model


def save_model(path: Any, hierarchy: Hierarchy, codec: Codec, record: dict[str, Any] | None = None,
               meta: dict[str, Any] | None = None, predictive: Predictive | None = None) -> None:
    """Write ``hierarchy`` atomically to ``path`` with its codec, training record, user metadata
    and the state of its calibrated distribution."""
    header: dict[str, Any] = {"codec": codec.to_dict()}
    if predictive is not None:
        header["predictive"] = predictive.to_dict()
    if record is not None:
        record["updated_utc"] = utc_now()
        header["training"] = record
    header["user"] = dict(meta or {})
    hierarchy.save_to_file(path, meta=header)


#: CodecOptions field -> make_codec argument.
_CODEC_ARGS = {"byte_layout": "layout", "bins": "bins", "max_vocab": "max_vocab", "csv_columns": "select",
               "csv_header": "header", "csv_delimiter": "delimiter", "csv_missing": "missing",
               "encoding": "encoding"}


def _new_codec(options: CodecOptions) -> Codec:
    kind = options.kind or "bytes"
    options.check_applies(kind)
    opts: dict[str, Any] = {arg: getattr(options, name) for name, arg in _CODEC_ARGS.items()
                            if getattr(options, name) is not None}
    if "select" in opts:
        opts["select"] = list(opts["select"])
    if kind == "bytes" and "layout" not in opts:
        opts["layout"] = DEFAULT_BYTE_LAYOUT
    codec = make_codec(kind, **opts)
    if options.csv_range is not None:
        codec.set_range(*options.csv_range)
    return codec


def fit_codec(sources: Any, options: CodecOptions, decompress: bool = True) -> Codec:
    """A codec for ``options``, fitted once over all ``sources`` when it learns from the data
    (a vocabulary, a value range); files are read decompressed by extension, as
    :func:`train` reads them, unless ``decompress`` is False."""
    codec = _new_codec(options)
    if codec.needs_fit:
        with open_sources(sources, need_multiple_passes=True, decompress=decompress) as srcs:
            codec.fit(*srcs.opener())
    return codec


def _descs(codec: Codec, options: TrainOptions) -> tuple[list[IODesc], list[LayerDesc]]:
    arch = options.architecture
    r = arch.radii()
    ios = [IODesc(codec.io_size, prediction, num_dendrites_per_cell=r["dendrites"], up_radius=r["up_radius"],
                  down_radius=r["down_radius"])]
    layers = [LayerDesc(s, num_dendrites_per_cell=r["dendrites"], up_radius=r["up_radius"],
                        recurrent_radius=r["recurrent_radius"], down_radius=r["down_radius"])
              for s in arch.sizes()]
    return ios, layers


def _check_memory(ios: list[IODesc], layers: list[LayerDesc], force: bool) -> None:
    try:
        check_memory(ios, layers, force=force, override="{force}")
    except NeedsForce:
        raise
    except NeoError as e:
        if "{force}" not in str(e):
            raise
        raise NeedsForce(str(e)) from None


def build_model(codec: Codec, options: TrainOptions, force: bool = False) -> Hierarchy:
    """A fresh hierarchy for ``codec`` with ``options``' architecture, seeded by ``options.seed``.

    Its size is computed first (:func:`neocli.memory.check_memory`): beyond the memory
    available it raises :class:`~neocli.errors.NeedsForce` unless ``force``."""
    ios, layers = _descs(codec, options)
    _check_memory(ios, layers, force)
    set_global_state(options.initial_seed)
    h = Hierarchy(ios, layers)
    apply_params(h, {**DEFAULT_PARAMS, **options.params})
    return h


def _conflicts(h: Hierarchy, codec: Codec, options: TrainOptions) -> dict[str, tuple[Any, Any]]:
    """Fields of ``options`` that disagree with a model, as ``{field: (model's value, asked)}``.
    Values are compared as resolved (hidden 5x5x32 equals a model built with the default)."""
    out: dict[str, tuple[Any, Any]] = {}
    arch, copts = options.architecture, options.codec
    sizes = [tuple(h.get_hidden_size(l)) for l in range(h.get_num_layers())]
    if arch.hidden is not None and arch.sizes(len(sizes)) != sizes:
        out["hidden"] = (format_hidden(sizes), format_hidden(arch.hidden))
    if arch.layers is not None and arch.layers != len(sizes):
        out["layers"] = (len(sizes), arch.layers)
    io, l0 = h.io_descs[0], h.layer_descs[0]
    model_arch = {"up_radius": io.up_radius, "down_radius": io.down_radius,
                  "recurrent_radius": l0.recurrent_radius, "dendrites": io.num_dendrites_per_cell}
    for k, v in model_arch.items():
        if getattr(arch, k) is not None and getattr(arch, k) != v:
            out[k] = (v, getattr(arch, k))
    model_codec = {"kind": codec.kind, "byte_layout": getattr(codec, "layout", None),
                   "bins": getattr(codec, "bins", None), "max_vocab": getattr(codec, "max_vocab", None),
                   "csv_header": getattr(codec, "header", None), "csv_delimiter": getattr(codec, "delimiter", None),
                   "csv_missing": getattr(codec, "missing", None), "encoding": getattr(codec, "encoding", None)}
    for k, v in model_codec.items():
        if getattr(copts, k) is not None and getattr(copts, k) != v:
            out[k] = (v, getattr(copts, k))
    if copts.csv_columns is not None:
        asked = list(copts.csv_columns)
        use, names = getattr(codec, "use", None), getattr(codec, "columns", [])
        if use is None or not (asked == names or asked == [str(i + 1) for i in use]):
            out["csv_columns"] = (",".join(names) if use is not None else "all", ",".join(asked))
    if copts.csv_range is not None:
        lo, hi = copts.csv_range
        lows, highs = getattr(codec, "lows", []), getattr(codec, "highs", [])
        if not lows or any(a != lo for a in lows) or any(b != hi for b in highs):
            out["csv_range"] = ("learned from the data" if lows else None, f"{lo:g}:{hi:g}")
    return out


def _check_resume_data(sources: Sources, t: dict[str, Any]) -> None:
    """Refuse to resume on data other than the run's own. A run that streamed stdin only knows
    the hash of what it had read when it stopped, so that prefix is compared instead."""
    want = t.get("data_sha256")
    if want:
        got = sources.sha256()
        if got != want:
            raise ParameterError("resume", "the data differs from the data the model was trained on "
                                 f"(sha256 {got[:12]}… vs {want[:12]}…)")
        return
    prefix = t.get("data_prefix")
    if not isinstance(prefix, dict) or not isinstance(prefix.get("bytes"), int) or \
            not isinstance(prefix.get("sha256"), str):
        raise ParameterError("resume", "the model records no hash of its training data, so the data cannot be checked")
    got, n = sources.prefix_sha256(prefix["bytes"])
    if n < prefix["bytes"] or got != prefix["sha256"]:
        raise ParameterError("resume", "the data differs from the data the model was trained on "
                             f"(its first {prefix['bytes']} bytes do not match)")


def rotate_checkpoints(directory: str, keep: int | None) -> list[str]:
    """Keep only the ``keep`` newest ``ckpt-e*-s*.ohr`` files of ``directory`` (by name, which
    sorts by epoch or episode, then step); None keeps all. Returns the files it could not remove."""
    failed: list[str] = []
    if not keep:
        return failed
    for old in sorted(glob.glob(os.path.join(glob.escape(directory), "ckpt-e*-s*.ohr")))[:-keep]:
        try:
            os.remove(old)
        except OSError:
            failed.append(old)
    return failed


# --------------------------------------------------------------------------- signals


class StopNow(KeyboardInterrupt):
    """Raised by :class:`StopSignals` when a signal arrives while the run cannot reach its next step."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"signal {signum}")


class StopSignals:
    """Turns SIGINT/SIGTERM/SIGHUP into a flag checked between steps, so a checkpoint is always
    consistent; a second signal stops at once (KeyboardInterrupt). Outside the main
    thread signals cannot be caught and nothing is installed.

    While ``reading`` is set (the loop is blocked reading a terminal or a pipe, between
    steps) or ``looping`` is not (setup: spooling stdin, building the model), a signal
    raises :class:`StopNow` at once instead: waiting for the next step could take forever."""

    SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
                    if s is not None)

    def __init__(self, looping: bool = True) -> None:
        self.signum: int | None = None
        self.reading = False
        self.looping = looping
        self._old: dict[int, Any] = {}

    @property
    def flag(self) -> bool:
        """Whether a stop was asked for."""
        return self.signum is not None

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                try:
                    self._old[s] = signal.signal(s, self._handle)
                except (ValueError, OSError):
                    pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        if self.reading or not self.looping:
            raise StopNow(signum)

    def __exit__(self, *exc: Any) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()


# --------------------------------------------------------------------------- the training loop

_BOUNDARY = object()


def _with_boundary(events: Iterable[Any]) -> Iterator[Any]:
    yield _BOUNDARY
    yield from events


class _Run:
    """One training run: the loop with its bookkeeping, checkpoints and resume position."""

    def __init__(self, h: Hierarchy, codec: Codec, sources: Sources, t: dict[str, Any], user: dict[str, Any],
                 output: Any, policy: CheckpointPolicy, progress: Callable[[Progress], Any] | None,
                 pred: Predictive, options: TrainOptions | None = None, stop: StopSignals | None = None,
                 resume_point: str | None = None):
        self.h, self.codec, self.sources, self.t, self.user = h, codec, sources, t, user
        self.output, self.policy, self.progress = output, policy, progress
        #: Where an interrupted run without a checkpoint directory saves (a regular-file output).
        self.resume_point = resume_point
        self.pred = pred
        self.valid = options.valid if options is not None else None
        self.valid_every = options.valid_every if options is not None else 0
        self.patience = options.patience if options is not None else None
        self.best: tuple[float, Hierarchy, Predictive, dict[str, Any]] | None = None
        self.stale = 0
        self.early = False
        self._epoch_start = time.perf_counter()
        self._cut_epoch: int | None = None   # the epoch early stopping cut short
        #: Symbols in a whole epoch, once one was seen (from the record's full metrics rows on resume).
        self._epoch_symbols: int | None = next((m["symbols"] for m in t.get("metrics", [])
                                                if isinstance(m, dict) and not m.get("partial")
                                                and type(m.get("symbols")) is int), None)
        self.reset_on = t["options"].get("reset_on", "file")
        self.digest: CountingDigest | None = None
        self.stop = stop or StopSignals()
        self.total = sources.total_bytes() if codec.kind == "bytes" else None

    def save(self, path: str) -> None:
        """Write the model (state, weights, RNG, counters, calibration) atomically."""
        save_model(path, self.h, self.codec, self.t, self.user, self.pred)

    def validate(self, score: Metrics | None = None, event: int = 0) -> None:
        """Score the held-out data (learning off, the run's state and RNG untouched); keep
        a copy of the model when it is the best so far; count toward ``patience``.

        Without ``score``: at the end of an epoch, after its bookkeeping (the record counts
        it as completed). With ``score``, the current epoch's metrics so far, and ``event``,
        the position in it: mid-epoch. The copy's record is then that of a mid-epoch
        checkpoint (position, partial metrics, data prefix: a resume continues it exactly)
        with a last metrics row marked partial: the metrics of the model it keeps."""
        h = self.h
        state, rng = h.serialize_state_to_buffer(), h.get_rng_state()
        try:
            m = evaluate(TrainedModel(h, self.codec, {}, self.pred), list(self.valid))
        finally:
            h.set_state_from_buffer(state)
            h.set_rng_state(rng)
        bits = m.bits_per_symbol if m.bits_per_symbol is not None else math.inf
        label = self.t["epoch"] + (1 if score is not None else 0)
        entry = {"epoch": label, "steps": self.t["steps"], "bits_per_symbol": m.bits_per_symbol}
        self.t.setdefault("validation", []).append(entry)
        if self.best is None or bits < self.best[0]:
            self.t["best"] = entry
            kept = copy.deepcopy(self.t)
            if score is not None:
                part = copy.deepcopy(score)
                part.seconds = time.perf_counter() - self._epoch_start
                kept["position"], kept["partial"] = event, part.state()
                if self.digest is not None:
                    kept["data_prefix"] = {"bytes": self.digest.n, "sha256": self.digest.hexdigest()}
                _finish_metrics(part, self.codec, self._epoch_start)
                kept["metrics"].append({"epoch": label, **part.to_dict(), "partial": True})
            self.best = (bits, copy.deepcopy(h), copy.deepcopy(self.pred), kept)
            self.stale = 0
        else:
            self.stale += 1
            if self.patience is not None and self.stale >= self.patience:
                self.early = True
                self.t["stopped_early"] = {**entry, "validations_without_improvement": self.stale}
        if self.progress is not None:
            self.progress(Progress(label, self.t["epochs"], 0, None, None, validation=entry))

    def kept_record(self) -> dict[str, Any]:
        """The training record of the model the run keeps: the last one, or with validation
        the best one seen. The best's record says what that model is (its steps, epochs and
        metrics up to it, a last partial row when it was kept mid-epoch) and, under ``run``,
        how far training went past it (steps, epochs completed, every metrics row); the
        validations, ``best`` and ``stopped_early`` are the whole run's."""
        if self.best is None or self.best[3]["steps"] == self.t["steps"]:
            return self.t
        t = self.best[3]
        for k in ("validation", "best", "stopped_early", "complete", "finished_utc"):
            if k in self.t:
                t[k] = self.t[k]
        done = self.t["epoch"] - (1 if self._cut_epoch == self.t["epoch"] else 0)
        t["run"] = {"steps": self.t["steps"], "epochs_completed": done, "metrics": self.t["metrics"]}
        return t

    def save_final(self, path: str) -> None:
        """Write the model at the end: with validation, the best one seen (see :meth:`kept_record`)."""
        if self.best is None or self.best[3]["steps"] == self.t["steps"]:
            self.save(path)
            return
        _, h, pred, _ = self.best
        save_model(path, h, self.codec, self.kept_record(), self.user, pred)

    def checkpoint(self) -> str | None:
        """Write a checkpoint into the checkpoint directory and rotate old ones."""
        d = self.policy.directory
        if not d:
            return None
        # The epoch in a name is the one a resume continues (1-based), as in listings, messages and inspect.
        path = os.path.join(d, _ckpt.checkpoint_name(self.t["run_id"], _ckpt.epoch_of(self.t), self.t["steps"]))
        self.save(path)
        _ckpt.rotate(d, self.t["run_id"], self.policy.keep, just_written=path)
        return path

    def _report(self, score: Metrics, metrics: dict[str, Any] | None = None) -> None:
        if self.progress is not None:
            self.progress(Progress(self.t["epoch"] + 1, self.t["epochs"], score.symbols, self.total, metrics))

    def run(self) -> None:
        """Train for the remaining epochs (fewer if early stopping says so)."""
        # From here on a signal waits for a step boundary (or the end of the final save):
        # the model in memory is worth a checkpoint, and a half-written output never is.
        self.stop.looping = True
        while self.t["epoch"] < self.t["epochs"] and not self.early:
            self._epoch()

    def _epoch(self) -> None:
        t, h = self.t, self.h
        score = Metrics.from_state(t.get("partial"))
        skip, event, pending = int(t.get("position", 0)), 0, 0
        start = time.perf_counter() - score.seconds
        self._epoch_start = start
        self.digest = CountingDigest() if self.sources.streamed else None
        getattr(self.codec, "reset_counts", lambda: None)()
        every_steps = self.policy.every_steps
        self._report(score)
        events = self._events()
        while True:
            try:
                sym = next(events)
            except StopIteration:
                break
            except StopNow:
                self._interrupted(score, max(event, skip), start)
            event += 1
            if event <= skip:
                continue
            if self.stop.flag:
                self._interrupted(score, event - 1, start)
            if sym is _BOUNDARY or sym is RESET:
                if sym is RESET or self.reset_on != "none":
                    h.clear_state()
                    t["fresh"] = True
                continue
            cis = self.codec.encode(sym)
            if not t["fresh"]:
                score.add(h, cis, self.pred, learn=True)
            else:
                self.pred.observe(cis)
            h.step([cis], True)
            t["fresh"] = False
            t["steps"] += 1
            score.symbols += 1
            pending += 1
            if pending >= PROGRESS_EVERY:
                self._report(score)
                pending = 0
            if every_steps and t["steps"] % every_steps == 0:
                self._mid_epoch_checkpoint(score, event, start)
            if self.valid_every and t["steps"] % self.valid_every == 0:
                self.validate(score, event)
                if self.early:
                    break
        score.seconds = time.perf_counter() - start
        if score.symbols == 0 and t["epoch"] == 0:
            raise NeoError("the data is empty: nothing to train on")
        _finish_metrics(score, self.codec, time.perf_counter() - score.seconds)
        summary = {"epoch": t["epoch"] + 1, **score.to_dict()}
        # Stopped inside the epoch (not at its last symbol): its row covers part of it.
        if self.early and self._cut_short(score, events):
            self._cut_epoch = t["epoch"] + 1
            summary["partial"] = True
        elif not self.early:
            self._epoch_symbols = score.symbols
        events.close()
        t["metrics"].append(summary)
        self._report(score, summary)
        t["epoch"] += 1
        t["position"] = 0
        t.pop("partial", None)
        if self.digest is not None:
            t["data_sha256"] = self.digest.hexdigest()
            t.pop("data_prefix", None)
        best = self.best
        if best is not None and best[3]["steps"] == t["steps"] and not self.early:
            # Kept at the epoch's last step: its record is the completed epoch's, not a partial one.
            self.best = (best[0], best[1], best[2], copy.deepcopy(t))
        if self.valid is not None and not self.early and not (self.valid_every and t["steps"] % self.valid_every == 0):
            self.validate()
        every = self.policy.every_epochs
        if every and t["epoch"] % every == 0 and t["epoch"] < t["epochs"]:
            self.checkpoint()

    def _cut_short(self, score: Metrics, events: Iterator[Any]) -> bool:
        """Whether an early stop came before the epoch's last symbol. Known without reading
        on once a whole epoch was seen (its symbol count); otherwise a regular file is read
        on to its end (that cannot block), while a pipe or stdin is not (it could wait for
        data indefinitely): its epoch counts as cut short, its end not seen."""
        if self._epoch_symbols is not None:
            return score.symbols < self._epoch_symbols
        if any(s.path is None or not os.path.isfile(s.path) for s in self.sources.items):
            return True
        return next((e for e in events if e is not _BOUNDARY and e is not RESET), None) is not None

    def _events(self) -> Iterator[Any]:
        """Every symbol of every source in order; a file boundary is an event too, so a
        resume position is exact."""
        blank = self.reset_on == "blank"
        for src in self.sources.items:
            raw = src.open()
            stream = raw
            if self.digest is not None and src.path is None:
                stream = HashingReader(raw, self.digest, guard=self.stop)
            try:
                yield from _with_boundary(self.codec.symbols(stream, blank, where=src.name))
            finally:
                if not (src.stdin and src.path is None):
                    raw.close()

    def _record_position(self, score: Metrics, event: int, start: float) -> None:
        if self.digest is not None:
            self.t["data_prefix"] = {"bytes": self.digest.n, "sha256": self.digest.hexdigest()}
        score.seconds = time.perf_counter() - start
        self.t["position"] = event
        self.t["partial"] = score.state()

    def _mid_epoch_checkpoint(self, score: Metrics, event: int, start: float) -> None:
        self._record_position(score, event, start)
        self.checkpoint()
        self.t["position"] = 0
        self.t.pop("partial", None)

    def _interrupted(self, score: Metrics, event: int, start: float) -> None:
        self._record_position(score, event, start)
        path = self.checkpoint() or self.resume_point
        if path is not None and path == self.resume_point:
            self.save(path)
        shown = os.fsdecode(self.output) if isinstance(self.output, (str, bytes)) else None
        data = ["-" if s.stdin else os.fsdecode(s.name) for s in self.sources.items]
        raise Interrupted(path if path is None else os.fsdecode(path), _ckpt.epoch_of(self.t), self.t["steps"],
                          self.stop.signum or signal.SIGINT, output=shown, data=data)


def _resume_state(resume: Any, options: TrainOptions, sources: Any,
                  decompress: bool = True) -> tuple[TrainedModel, dict[str, Any], Sources]:
    model = load_model(resume)
    t = model.header.get("training")
    if not isinstance(t, dict) or "options" not in t:
        raise ParameterError("resume", f"'{_shown(resume)}' has no training record to resume from")
    for k, (had, asked) in _conflicts(model.hierarchy, model.codec, options).items():
        raise ConflictError("resume", _shown(resume), k, had, asked)
    given = options.schedule.reset_on
    if given is not None and given != t["options"].get("reset_on", "file"):
        raise ConflictError("resume", _shown(resume), "reset_on", t["options"].get("reset_on", "file"), given)
    if options.seed is not None and "seed" in t and options.seed != t["seed"]:
        raise ConflictError("resume", _shown(resume), "seed", t.get("seed"), options.seed)
    epochs = options.schedule.epochs
    done = bool(t.get("complete")) and epochs <= _int_or(t.get("epoch"), 0)
    if int(t.get("epochs", 0)) != epochs and t.get("complete"):
        t["epochs"] = epochs  # extend a finished run with more epochs
    elif int(t.get("epochs", 0)) != epochs:
        raise ParameterError("resume", f"the interrupted run was for {t.get('epochs')} epochs, not {epochs}")
    if t.get("complete"):
        # The previous run's outcome (how far it went past the model kept, why it stopped)
        # is not this run's: kept as history, so inspect and train describe the new run.
        last = {k: t.pop(k) for k in ("run", "stopped_early", "best", "finished_utc") if k in t}
        if last:
            t["history"] = [*(t.get("history") if isinstance(t.get("history"), list) else []), last]
        cut = bool(t.get("metrics")) and isinstance(t["metrics"][-1], dict) and t["metrics"][-1].get("partial") is True
        if cut and "partial" not in t:
            # Written before kept models recorded their position: where to continue is unknown.
            raise NamedError(Param("resume"), f": '{_shown(resume)}' holds a model kept inside epoch "
                             f"{t['metrics'][-1].get('epoch')} without its position in that epoch, so it cannot "
                             "be continued exactly; start a new run from its weights with ", Param("init"))
        if cut:
            # A model kept inside an epoch continues from its position; the epoch's row is
            # written when the epoch ends (from the partial metrics the record holds).
            t["metrics"].pop()
    t["complete"] = False
    t.setdefault("run_id", _ckpt.new_run_id())  # models of earlier versions had none
    srcs = open_sources(sources, need_multiple_passes=True, decompress=decompress)
    try:
        _check_resume_data(srcs, t)  # other data is the first thing to say, then nothing left to do
        if done:
            raise ParameterError("epochs", f"the run in '{_shown(resume)}' is already complete ({t.get('epoch')} "
                                 f"epochs, {t.get('steps')} steps): raise epochs above {t.get('epoch')} "
                                 "to train more")
    except BaseException:
        srcs.close()
        raise
    return model, t, srcs


def _init_state(init: Any, options: TrainOptions, sources: Any,
                decompress: bool = True) -> tuple[Hierarchy, Codec, Sources]:
    # Another model's weights: its codec and architecture come with them, and options
    # given must agree (compared as resolved values).
    src = load_model(init)
    for k, (had, asked) in _conflicts(src.hierarchy, src.codec, options).items():
        raise ConflictError("init", _shown(init), k, had, asked)
    srcs = open_sources(sources, need_multiple_passes=options.schedule.epochs > 1, decompress=decompress)
    set_global_state(options.initial_seed)
    h = Hierarchy(src.hierarchy.io_descs, src.hierarchy.layer_descs)
    h.set_weights_from_buffer(src.hierarchy.serialize_weights_to_buffer())
    h.params = copy.deepcopy(src.hierarchy.params)
    apply_params(h, options.params)
    return h, src.codec, srcs


def _fresh_state(options: TrainOptions, sources: Any, decompress: bool = True,
                 force: bool = False) -> tuple[Hierarchy, Codec, Sources]:
    codec = _new_codec(options.codec)
    # The size is known before the data is read unless the codec learns it from the data.
    if not codec.needs_fit:
        _check_memory(*_descs(codec, options), force=force)
    srcs = open_sources(sources, need_multiple_passes=options.schedule.epochs > 1 or codec.needs_fit,
                        decompress=decompress)
    try:
        if codec.needs_fit:
            codec.fit(*srcs.opener())
        return build_model(codec, options, force=force), codec, srcs
    except BaseException:
        srcs.close()
        raise


def _shown(path: Any) -> str:
    """A path as messages show it (undecodable bytes as ``\\x..`` escapes, never lone surrogates)."""
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_output(output: Any, sources: Any, init: Any, force: bool, resume: Any) -> str | None:
    """Check ``output`` before anything is read: writable, not one of the inputs, and not an
    interrupted run that this fresh run would silently replace. Returns its kind (see
    :func:`neocli.ohr.check_output_path`, plus ``"stdout"`` for ``"-"``), or None."""
    if output is None:
        return None
    if output in ("-", b"-"):
        return "stdout"
    inputs = [s for s in as_list(sources) if s not in ("-", b"-")] + ([init] if init is not None else [])
    try:
        kind = check_output_path(output, allow_fifo=True, inputs=inputs)
    except NeoError as e:
        # A value that can never be an output (a device, a directory, one of the inputs) is a
        # bad option; a missing or read-only directory is the environment's (a plain error).
        if "not a regular file" not in str(e) and "it is the input file" not in str(e):
            raise
        raise OptionError("output", str(e).replace("cannot write model to ", "", 1)) from None
    t = _ckpt.incomplete_training(output) if resume is None and not force else None
    if t is not None:
        p = _shown(output)
        where = f"epoch {_int_or(t.get('epoch'), 0) + 1}, {_int_or(t.get('steps'), 0)} steps"
        raise NeedsForce(f"'{p}' holds an interrupted training run ({where}); continue it with "
                         f"{{resume}}'{p}' {{output}}'{p}' (and the same data), or replace it with {{force}}")
    return kind


def _int_or(x: Any, default: int) -> int:
    return x if type(x) is int else default


def _write_output(output: Any, kind: str | None, save: Callable[[Any], None]) -> None:
    if kind == "stdout":
        import sys

        save(sys.stdout.buffer)
        sys.stdout.buffer.flush()
    elif kind is not None:
        save(output)


def train(sources: Any, options: TrainOptions | None = None, output: Any = None,
          progress: Callable[[Progress], Any] | None = None, resume: Any = None, init: Any = None,
          force: bool = False, decompress: bool = True) -> TrainingResult:
    """Train a sequence model on ``sources`` (paths, FIFOs, or ``"-"`` for stdin) and write it to
    ``output`` (atomically, at the end; through a symlink; streamed into a FIFO; ``"-"`` is
    stdout; None writes nothing).

    ``output`` is checked before any data is read: a directory, device or socket, one of
    the inputs, or an interrupted run (unless ``resume`` or ``force``) is refused.
    ``resume``: continue a model or checkpoint exactly (state, weights, RNG, epoch and
    position; the data must be the same, which its sha256 checks). ``init``: start from
    another model's weights with a fresh state. ``force``: also build a model larger than
    the memory available. On SIGINT/SIGTERM/SIGHUP a checkpoint is written (into the
    checkpoint directory, else to a regular-file ``output``) and :class:`Interrupted` is
    raised. Files are decompressed by extension unless ``decompress`` is False.
    """
    options = validate(options if options is not None else TrainOptions())
    if resume is not None and init is not None:
        raise OptionError("resume", "and init cannot be used together")
    if options.threads is not None:
        set_num_threads(options.threads)
    kind = _check_output(output, sources, init, force, resume)
    if options.checkpoints.directory:
        prepare_directory(options.checkpoints.directory)
    with StopSignals(looping=False) as stop:
        try:
            return _train(sources, options, output, kind, progress, resume, init, force, decompress, stop)
        except StopNow as e:
            raise Interrupted(None, 0, 0, e.signum, where="setup, before training started") from None


def _train(sources: Any, options: TrainOptions, output: Any, kind: str | None, progress: Any, resume: Any,
           init: Any, force: bool, decompress: bool, stop: StopSignals) -> TrainingResult:
    user = dict(options.meta)
    if resume is not None:
        model, t, srcs = _resume_state(resume, options, sources, decompress)
        h, codec = model.hierarchy, model.codec
        pred = predictive_of(model)
        user = {**(model.header.get("user") or {}), **user}
    else:
        h, codec, srcs = (_init_state(init, options, sources, decompress) if init is not None
                          else _fresh_state(options, sources, decompress, force))
        pred = Predictive(codec)
        t = {"epoch": 0, "epochs": options.schedule.epochs, "steps": 0, "position": 0, "fresh": True,
             "complete": False, "seed": options.initial_seed, "run_id": _ckpt.new_run_id(), "data_sha256": srcs.sha256(),
             "data_files": [_shown(n) for n in srcs.names], "metrics": [], "started_utc": utc_now(),
             "updated_utc": utc_now(),
             "options": {"codec": codec.kind, **options.codec.given(), **options.architecture.given(),
                         "reset_on": options.schedule.reset_on or "file",
                         **({"params": dict(options.params)} if options.params else {}),
                         **({"init": os.path.basename(_shown(init))} if init is not None else {})}}
    with srcs:
        point = output if kind in ("file", "new") else None
        run = _Run(h, codec, srcs, t, user, output, options.checkpoints, progress, pred, options, stop, point)
        run.run()
        t["complete"] = True
        t["finished_utc"] = utc_now()
        _write_output(output, kind, run.save_final)
    if run.best is not None and run.best[3]["steps"] != t["steps"]:
        h, pred = run.best[1], run.best[2]
    return TrainingResult(h, codec, run.kept_record(), output if kind != "stdout" else "-", pred)


#: The dry run's speed probe: warm-up (at most this many steps or seconds, whichever comes
#: first), then timed steps for at least ``PROBE_SECONDS`` (README "Sequences, stdin,
#: checkpoints and resuming": why these).
PROBE_WARM_STEPS, PROBE_WARM_SECONDS, PROBE_SECONDS = 200, 0.5, 2.0


def dry_run(sources: Any, options: TrainOptions | None = None, probe_steps: int = 50,
            probe_seconds: float = PROBE_SECONDS, force: bool = False) -> dict[str, Any]:
    """What :func:`train` would build, without training: the codec, the architecture, the
    weights size, a memory estimate and the symbols/s measured on this machine (the options'
    threads) by stepping random symbols as training does (scored, then learned): after a
    warm-up, at least ``probe_steps`` steps and ``probe_seconds`` seconds are timed.

    The probe builds the model, so it takes the model's memory: as :func:`train`, a model
    beyond the memory available raises :class:`~neocli.errors.NeedsForce` unless ``force``,
    before anything is allocated (and, unless the codec learns from the data, before the
    data is read)."""
    options = validate(options if options is not None else TrainOptions())
    if options.threads is not None:
        set_num_threads(options.threads)
    if not _new_codec(options.codec).needs_fit:
        _check_memory(*_descs(_new_codec(options.codec), options), force=force)
    codec = fit_codec(sources, options.codec)
    h = build_model(codec, options, force=force)
    pred = Predictive(codec)
    rng = np.random.default_rng(0)
    _, cols, z = codec.io_size
    if codec.kind == "csv":
        probe = rng.integers(0, z, size=(1024, cols)).astype(np.int32)
    else:   # symbols the codec can produce, as their CSDRs
        n = pred.num_symbols(0)
        probe = np.stack([pred.code(int(k)) for k in rng.integers(0, n, size=1024)])
    score = Metrics()

    def step(i: int) -> None:
        # What an epoch does per symbol (``_Run._epoch``): score the prediction, then learn.
        cis = probe[i % len(probe)]
        score.add(h, cis, pred, learn=True)
        h.step([cis], True)

    # The first steps pay once for what a long run amortises: starting the threads, the
    # thread tuner's first measurements and trials (a trial may stall for a scheduler time
    # slice under load), first touches of the arrays. A window of a few hundred steps
    # (0.1 s) caught one such stall often enough to read 2-5x slow; seconds do not.
    start = time.perf_counter()
    i = 0
    while i < PROBE_WARM_STEPS and time.perf_counter() - start < PROBE_WARM_SECONDS:
        step(i)
        i += 1
    start, timed = time.perf_counter(), 0
    while timed < probe_steps or time.perf_counter() - start < probe_seconds:
        step(i + timed)
        timed += 1
    seconds = time.perf_counter() - start
    probe_steps = timed
    sizes = [tuple(h.get_hidden_size(l)) for l in range(h.get_num_layers())]
    total = sources_total(sources)
    sps = probe_steps / seconds if seconds > 0 else None
    return {
        "codec": codec.describe(), "io_size": list(codec.io_size), "layers": [list(s) for s in sizes],
        "radii": options.architecture.radii(), "params": {**DEFAULT_PARAMS, **options.params},
        "weights_bytes": h.get_weights_size(), "state_bytes": h.get_state_size(),
        # The model plus the calibration's per-symbol arrays and a second copy while a file is written.
        "memory_estimate_bytes": 2 * h.get_size() + 64 * (256 if codec.kind == "bytes" else codec.io_size[2] ** 2),
        "expected_symbols_per_s": sps, "probe_steps": probe_steps, "probe_seconds": seconds,
        "epochs": options.schedule.epochs, "data_bytes": total,
        "expected_seconds": (total * options.schedule.epochs / sps) if (total and sps and codec.kind == "bytes") else None,
    }


def sources_total(sources: Any) -> int | None:
    """Total size of the data files (None for stdin)."""
    paths = [sources] if isinstance(sources, (str, bytes, os.PathLike)) else list(sources)
    if any(os.fsdecode(p) == "-" for p in paths):
        return None
    return sum(os.path.getsize(p) for p in paths)


# --------------------------------------------------------------------------- evaluation


def evaluate(model: TrainedModel | Any, sources: Any, learn: bool = False,
             progress: Callable[[Progress], Any] | None = None, reset_on: str = "file",
             decompress: bool = True) -> Metrics:
    """Score ``model`` (a :class:`TrainedModel`, a :class:`TrainingResult` or a path) on
    ``sources``: accuracy and bits per symbol.

    ``learn=False`` leaves the weights untouched; ``learn=True`` keeps learning while it scores
    (the honest measure for an online learner); the model changes, its training record
    (``model.record``) gets the steps and data files learned (:func:`record_learning`), and
    the caller may save it. A bare :class:`Hierarchy` has no codec and is refused.
    The state is cleared at each file (and at blank lines with ``reset_on="blank"``). Symbols
    the model never saw (``<unk>`` of chars/words) are scored and counted in ``unknown``; CSV
    rows skipped for missing values in ``skipped_rows``. A signal (SIGINT/SIGTERM/SIGHUP)
    raises :class:`EvalInterrupted` carrying the metrics of the symbols read so far.
    """
    if reset_on not in RESET_MODES:
        raise OptionError("reset_on", f"must be file, blank or none, got {reset_on!r}")
    model = _as_model(model)
    score = Metrics()
    for name in ("reset_counts",):
        getattr(model.codec, name, lambda: None)()
    start = time.perf_counter()
    try:
        with StopSignals(looping=False) as stop, \
                open_sources(sources, need_multiple_passes=False, decompress=decompress) as srcs:
            _score_sources(model, srcs, learn, progress, reset_on, score, stop)
    except KeyboardInterrupt as e:
        _finish_metrics(score, model.codec, start)
        score.data_bytes = _bytes_scored_so_far(model.codec, score)
        raise EvalInterrupted(score, getattr(e, "signum", signal.SIGINT)) from None
    _finish_metrics(score, model.codec, start)
    if score.symbols == 0:
        raise NeoError("the data is empty: nothing to evaluate")
    if learn:
        record_learning(model, score, srcs.names)
    if progress is not None:
        progress(Progress(1, 1, score.symbols, metrics=score.to_dict()))
    return score


def _as_model(model: Any) -> TrainedModel:
    if isinstance(model, TrainedModel):
        return model
    if isinstance(model, TrainingResult):
        return model.as_trained_model()
    if isinstance(model, Hierarchy):
        raise TypeError("evaluate: model is a bare Hierarchy, which has no codec to encode the data; pass the "
                        "TrainingResult of train(), a TrainedModel (load_model) or a model file path")
    if not isinstance(model, (str, bytes, os.PathLike)):
        raise TypeError(f"evaluate: model must be a TrainedModel, a TrainingResult or a path, "
                        f"not {type(model).__name__}")
    return load_model(model)


def record_learning(model: TrainedModel, metrics: Metrics, sources: Iterable[Any]) -> dict[str, Any]:
    """Record in ``model.record`` (kept in ``model.header``) that the model went on learning
    ``metrics.symbols`` steps on ``sources`` (e.g. :func:`evaluate` with ``learn=True``): the
    steps are added, the data files appended, the run listed under ``learned`` and
    ``updated_utc`` set, so that a model saved with its record says what it was trained on.
    Returns the record (created if the model had none)."""
    t = model.header.get("training")
    if not isinstance(t, dict):
        t = model.header["training"] = {}
    files = [_shown(s) for s in sources]
    t["steps"] = _int_or(t.get("steps"), 0) + metrics.symbols
    t["data_files"] = list(t.get("data_files") or []) + files
    t.setdefault("learned", []).append({"steps": metrics.symbols, "data_files": files, "utc": utc_now()})
    t["updated_utc"] = utc_now()
    return t


def _bytes_scored_so_far(codec: Codec, score: Metrics) -> int | None:
    """The bytes behind the symbols an interrupted evaluation read, for its bits per byte.

    The bytes codec's symbols are bytes. Other codecs read ahead (a chunk, a line), so
    neither the bytes read nor the file size is the size of what was scored: None, and
    the partial metrics leave bits per byte out rather than print a wrong one."""
    return score.symbols if codec.kind == "bytes" else None


def _finish_metrics(score: Metrics, codec: Codec, start: float) -> None:
    score.seconds = time.perf_counter() - start
    for name in ("unknown", "skipped_rows", "missing_cells"):
        if isinstance(getattr(codec, name, None), int):
            score.counts[name] = getattr(codec, name)


def _score_sources(model: TrainedModel, srcs: Sources, learn: bool, progress: Any, reset_on: str,
                   score: Metrics, stop: StopSignals) -> None:
    h, codec = model.hierarchy, model.codec
    pred = predictive_of(model)
    fresh = True
    for src in srcs.items:
        if reset_on != "none":
            h.clear_state()
            fresh = True
        raw = src.open()
        # The bytes the codec reads, after decompression: a compressed file's size on disk is
        # not its data's, and a streamed stdin has none; bits per byte needs the data's.
        counted = ByteCount()
        stream = HashingReader(raw, counted, guard=stop if src.path is None else None)
        try:
            for sym in codec.symbols(stream, reset_on == "blank", where=src.name):
                if sym is RESET:
                    h.clear_state()
                    fresh = True
                    continue
                if getattr(codec, "UNK", None) is None:  # with an <unk>, unseen symbols are scored and counted
                    codec.check_known(sym, src.name)
                cis = codec.encode(sym)
                if not fresh:
                    score.add(h, cis, pred, learn=learn)
                elif learn:
                    pred.observe(cis)
                h.step([cis], learn)
                fresh = False
                score.symbols += 1
                if progress is not None and score.symbols % PROGRESS_EVERY == 0:
                    progress(Progress(1, 1, score.symbols))
        finally:
            score.data_bytes = (score.data_bytes or 0) + counted.n
            if not (src.stdin and src.path is None):
                raw.close()


__all__ = [
    "TrainOptions", "CodecOptions", "Architecture", "Schedule", "CheckpointPolicy", "validate",
    "OptionError", "Interrupted", "Progress", "Metrics", "TrainedModel", "TrainingResult",
    "train", "evaluate", "load_model", "save_model", "fit_codec", "build_model", "score_prediction",
    "rotate_checkpoints", "parse_hidden", "format_hidden", "parse_range", "parse_every", "parse_meta",
    "StopSignals", "StopNow", "EvalInterrupted", "DEFAULT_HIDDEN", "DEFAULT_LAYERS", "ARCH_DEFAULTS",
    "RESET_MODES", "MAX_SEED", "utc_now", "DEFAULT_BYTE_LAYOUT", "DEFAULT_PARAMS", "predictive_of", "dry_run",
    "record_learning",
]
