"""Scaling out: many models, sweeps and data-parallel training on a cluster.

The core is engine-agnostic: every unit of work is a pure function of bytes
(the data, ``.ohr`` model bytes, options and an explicit seed), so its result
never depends on which process or machine ran it, nor on how often it was
retried. Two engines run these functions:

* :class:`SerialEngine`: in this process, one after the other (no dependency);
* :class:`DaskEngine`: Dask's distributed scheduler, either a ``LocalCluster`` of
  ``workers`` single-threaded processes or an existing cluster at ``scheduler``
  (``pip install 'neocli[dask]'``; Dask is imported only when used).

Models travel as ``.ohr`` bytes (``Hierarchy(buffer=...)`` /
``serialize_to_buffer()``), data as :class:`Source` (a name and the file's
bytes), so a remote worker needs neither the driver's files nor shared disk.

Operations: :func:`train_many` (one model per source, each identical to a plain
``training.train`` on it), :func:`evaluate_many`, :func:`sweep` (one model per
grid point, scored on held-out data) and :func:`train_data_parallel` (K shards
of one stream trained from the same weights and averaged every N steps with
:mod:`neocli.merging`).
"""
from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import os
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from . import merging
from .errors import NamedError, NeoError, OptionError, Param

__all__ = [
    "Source", "Outcome", "SerialEngine", "DaskEngine", "open_engine",
    "train_many", "evaluate_many", "sweep", "expand_grid", "fit_codec",
    "encode_stream", "EncodedStream", "train_data_parallel", "DataParallelResult",
    "train_span", "ohr_weights", "with_options", "parse_grid", "SWEEP_KEYS",
    "DetectJob", "ScoreJob", "detect_many", "score_many", "write_outputs",
]


# --------------------------------------------------------------------------- data and outcomes
@dataclass(frozen=True)
class Source:
    """A data file moved to a worker: its name (what reports and ``<stem>.ohr`` use) and bytes."""

    name: str
    data: bytes

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Source":
        """Read a file into a Source named after its path."""
        with open(path, "rb") as f:
            return cls(os.fspath(path), f.read())

    @property
    def stem(self) -> str:
        """The file name without directory and last extension (``logs/a.txt`` -> ``a``)."""
        base = os.path.basename(self.name.rstrip("/")) or "data"
        stem = os.path.splitext(base)[0]
        return stem or base


def _as_source(s: Any) -> Source:
    if isinstance(s, Source):
        return s
    if isinstance(s, (str, os.PathLike)):
        return Source.read(s)
    raise TypeError(f"a source must be a path or a Source, got {type(s).__name__}")


@dataclass
class Outcome:
    """The result of one task: ``value`` on success, else ``error`` (a one-line message)."""

    key: str
    value: Any = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        """Whether the task succeeded."""
        return self.error is None


@dataclass(frozen=True)
class _Failed:
    """A user-level failure (bad data, bad option) returned rather than raised, so the
    engine does not retry a task that would fail the same way again."""

    message: str


def _guard(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a task function with one kernel thread; a NeoError/OSError becomes _Failed."""
    from . import set_num_threads

    set_num_threads(1)  # one task per worker thread; results do not depend on it anyway
    try:
        return fn(*args)
    except (NeoError, OSError, ValueError, UnicodeDecodeError) as e:
        return _Failed(str(e) or type(e).__name__)


# --------------------------------------------------------------------------- engines
Progress = Optional[Callable[[int, int, Outcome], None]]


class SerialEngine:
    """Runs tasks one after the other in this process (the reference the others must match)."""

    def map(self, fn: Callable[..., Any], args: Sequence[tuple], keys: Sequence[str],
            progress: Progress = None) -> list[Outcome]:
        """``fn(*a)`` for each ``a`` in ``args``, as Outcomes in input order."""
        out = []
        for i, (a, k) in enumerate(zip(args, keys)):
            try:
                v = _guard(fn, *a)
                o = Outcome(k, error=v.message) if isinstance(v, _Failed) else Outcome(k, v)
            except Exception as e:  # noqa: BLE001 - one task's crash must not lose the others
                o = Outcome(k, error=f"{type(e).__name__}: {e}")
            out.append(o)
            if progress:
                progress(i + 1, len(args), o)
        return out

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> "SerialEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def describe(self) -> str:
        """Where the tasks run, for "running ..." log lines."""
        return "in this process, one task after another"


def _import_distributed():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise NamedError(Param("workers"), " and ", Param("scheduler"), " need Dask: pip install 'neocli[dask]'") from None
    return distributed


class DaskEngine:
    """Runs tasks on Dask's distributed scheduler.

    ``workers=N`` starts a ``LocalCluster`` of N single-threaded worker processes
    (closed with the engine); ``scheduler="tcp://host:8786"`` connects to a running
    cluster; ``client`` uses an existing ``distributed.Client``. A task whose worker
    dies is re-run elsewhere by the scheduler; ``retries`` more attempts are allowed
    for tasks that raise unexpectedly.
    """

    def __init__(self, workers: Optional[int] = None, scheduler: Optional[str] = None,
                 client: Any = None, retries: int = 2) -> None:
        given = sum(x is not None for x in (workers, scheduler, client))
        if given != 1:
            raise NeoError("give exactly one of workers, scheduler or client")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise NeoError(f"workers must be an integer >= 1, got {workers!r}")
        self.retries = int(retries)
        self._cluster = None
        self._own_client = client is None
        if client is not None:
            self.client = client
            return
        distributed = _import_distributed()
        if workers is not None:
            self._cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=":0", silence_logs=logging.CRITICAL)
            self.client = distributed.Client(self._cluster)
        else:
            try:
                self.client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as e:
                raise NeoError(f"cannot connect to the Dask scheduler at {scheduler!r}: {e}") from None

    def map(self, fn: Callable[..., Any], args: Sequence[tuple], keys: Sequence[str],
            progress: Progress = None) -> list[Outcome]:
        """``fn(*a)`` for each ``a`` on the cluster; Outcomes in input order, progress as they complete."""
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]  # keys must be unique per run, results never depend on them
        if not args:
            return []
        columns = [list(c) for c in zip(*args)]  # client.map takes one iterable per parameter
        with warnings.catch_warnings():
            # The inputs (data, .ohr bytes) travel inside the graph on purpose: the
            # scheduler then holds them and can re-run a task whose worker died;
            # scattered data would die with its worker.
            warnings.filterwarnings("ignore", message="Sending large graph")
            futs = self.client.map(_guard, [fn] * len(args), *columns, key=[f"{k}-{run}" for k in keys],
                                   pure=False, retries=self.retries)
        index = {f.key: i for i, f in enumerate(futs)}
        out: list[Optional[Outcome]] = [None] * len(futs)
        done = 0
        for fut in as_completed(futs):
            i = index[fut.key]
            try:
                v = fut.result()
                o = Outcome(keys[i], error=v.message) if isinstance(v, _Failed) else Outcome(keys[i], v)
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker after too many deaths
                o = Outcome(keys[i], error=f"{type(e).__name__}: {e}")
            out[i] = o
            fut.release()
            done += 1
            if progress:
                progress(done, len(futs), o)
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Close the client, and the LocalCluster if this engine started it."""
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> "DaskEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def describe(self) -> str:
        """Where the tasks run, for "running ..." log lines: the scheduler address and worker count."""
        try:
            info = self.client.scheduler_info(n_workers=-1)  # newer Dask lists only 5 by default
        except TypeError:
            info = self.client.scheduler_info()
        n = len(info.get("workers", {}))
        return f"on Dask scheduler {self.client.scheduler.address} with {n} worker(s)"


def open_engine(workers: Optional[int] = None, scheduler: Optional[str] = None):
    """The engine for ``--workers N`` / ``--scheduler ADDR``; neither gives a SerialEngine."""
    if workers is not None and scheduler is not None:
        raise NeoError("give workers or scheduler, not both")
    if workers is None and scheduler is None:
        return SerialEngine()
    return DaskEngine(workers=workers, scheduler=scheduler)


# --------------------------------------------------------------------------- task functions
def _write_sources(tmp: str, sources: Sequence[Source], prefix: str = "src") -> list[str]:
    """Materialise sources in ``tmp`` under their own base names (one directory each,
    so two sources with one base name do not collide)."""
    paths = []
    for i, s in enumerate(sources):
        d = os.path.join(tmp, f"{prefix}{i}")
        os.makedirs(d)
        p = os.path.join(d, os.path.basename(s.name.rstrip("/")) or "data")
        with open(p, "wb") as f:
            f.write(s.data)
        paths.append(p)
    return paths


def _train_task(sources: tuple[Source, ...], opts: Any) -> bytes:
    """Train one model on ``sources`` with ``opts`` (TrainOptions); the ``.ohr`` bytes."""
    from . import training

    opts = dataclasses.replace(opts, threads=1)
    with tempfile.TemporaryDirectory(prefix="neocli-task-") as tmp:
        paths = _write_sources(tmp, sources)
        out = os.path.join(tmp, "model.ohr")
        training.train(paths, opts, output=out)
        with open(out, "rb") as f:
            return f.read()


def _load_bytes(tmp: str, model: bytes):
    from . import training

    p = os.path.join(tmp, "model.ohr")
    with open(p, "wb") as f:
        f.write(model)
    return training.load_model(p)


def _evaluate_task(model: bytes, sources: tuple[Source, ...], reset_on: str = "file") -> dict:
    """Score ``model`` (``.ohr`` bytes) on ``sources`` without learning: Metrics.to_dict()."""
    from . import training

    with tempfile.TemporaryDirectory(prefix="neocli-task-") as tmp:
        m = _load_bytes(tmp, model)
        paths = _write_sources(tmp, sources)
        return training.evaluate(m, paths, reset_on=reset_on).to_dict()


def _sweep_task(train: tuple[Source, ...], valid: tuple[Source, ...], opts: Any) -> dict:
    """Train with ``opts`` on ``train``, score on ``valid``: the validation metrics."""
    from . import training

    opts = dataclasses.replace(opts, threads=1)
    with tempfile.TemporaryDirectory(prefix="neocli-task-") as tmp:
        out = os.path.join(tmp, "model.ohr")
        training.train(_write_sources(tmp, train), opts, output=out)
        m = training.load_model(out)
        return training.evaluate(m, _write_sources(tmp, valid, "valid")).to_dict()


# --------------------------------------------------------------------------- many models
def train_many(sources: Iterable[Any], opts: Any, engine: Any = None,
               progress: Progress = None) -> list[Outcome]:
    """One model per source, trained with ``opts`` (``training.TrainOptions``).

    Returns one Outcome per source, in order: ``value`` is the model's ``.ohr``
    bytes, identical in weights and state to ``training.train([source], opts)``;
    a failing source gives an Outcome with ``error`` and costs no other model.
    """
    engine = engine or SerialEngine()
    out: list[Optional[Outcome]] = []
    todo: list[tuple[int, Source]] = []
    for i, s in enumerate(sources):
        try:
            src = _as_source(s)
        except OSError as e:  # unreadable here: report it, train the others
            out.append(Outcome(f"train-{i}", error=f"{e.strerror or e}"))
            continue
        out.append(None)
        todo.append((i, src))
    keys = [f"train-{i}-{s.stem}" for i, s in todo]
    done = engine.map(_train_task, [((s,), opts) for _, s in todo], keys, progress)
    for (i, _), o in zip(todo, done):
        out[i] = o
    return out  # type: ignore[return-value]


def evaluate_many(models: Sequence[bytes], sources: Sequence[Any], engine: Any = None,
                  progress: Progress = None, reset_on: str = "file") -> list[Outcome]:
    """Score ``models[i]`` (``.ohr`` bytes) on ``sources[i]`` with learning off, each
    from the model's saved state; ``value`` is Metrics.to_dict(). An unreadable or
    failing source gives an Outcome with ``error``."""
    if len(models) != len(sources):
        raise NeoError(f"models and sources must have the same length, got {len(models)} and {len(sources)}")
    engine = engine or SerialEngine()
    out: list[Optional[Outcome]] = []
    todo: list[tuple[int, bytes, Source]] = []
    for i, (m, s) in enumerate(zip(models, sources)):
        try:
            todo.append((i, bytes(m), _as_source(s)))
            out.append(None)
        except OSError as e:
            out.append(Outcome(f"eval-{i}", error=f"{e.strerror or e}"))
    keys = [f"eval-{i}-{s.stem}" for i, _, s in todo]
    done = engine.map(_evaluate_task, [(m, (s,), reset_on) for _, m, s in todo], keys, progress)
    for (i, _, _), o in zip(todo, done):
        out[i] = o
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- many streams (detect, score)
@dataclass(frozen=True)
class DetectJob:
    """The options of ``neocli detect`` for one stream (a fresh detector per stream):
    ``columns`` and ``time_column`` as header names or 1-based numbers, ``ranges``
    one ``(lo, hi)`` per column or None (scanned from each file, as ``detect`` does)."""

    columns: tuple[str, ...]
    time_column: Optional[str] = None
    ranges: Optional[tuple[tuple[float, float], ...]] = None
    seed: int = 0
    calendar: bool = True
    on_bad_row: str = "skip"


@dataclass(frozen=True)
class ScoreJob:
    """The options of ``neocli score`` for one file: the model (``.ohr`` bytes, each
    file starts from its saved state), the unit (``per``), the format and ``learn``."""

    model: bytes
    per: str = "line"
    fmt: str = "tsv"
    learn: bool = False


def _text(data: bytes) -> io.TextIOWrapper:
    """The bytes as ``detect`` reads a file: UTF-8, newlines left to the CSV reader."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")


def _detect_task(src: Source, job: DetectJob) -> dict:
    """One fresh detector over one CSV source: its output CSV (bytes) and counts."""
    from . import streaming

    cols = list(job.columns)
    ranges = job.ranges
    if ranges is None:
        ranges = streaming.scan_ranges(_text(src.data), cols, job.time_column, where=src.name)
    opts = streaming.DetectorOptions(calendar=job.calendar and job.time_column is not None)
    det = streaming.open_detector(None, cols, job.time_column, ranges, None, job.seed, opts)
    run = streaming.DetectRun(det, job.time_column, job.on_bad_row, where=src.name)
    out = io.StringIO(newline="")
    n = streaming.detect_csv(run, _text(src.data), out, flush=False)
    return {"output": out.getvalue().encode("utf-8"), "rows": n, "skipped": run.skipped,
            "first_bad": run.first_bad}


def _score_task(src: Source, job: ScoreJob) -> dict:
    """Score one source from the model's saved state: its ``neocli score`` output (bytes)."""
    from . import streaming, training

    with tempfile.TemporaryDirectory(prefix="neocli-task-") as tmp:
        m = _load_bytes(tmp, job.model)
    scorer = streaming.Scorer(m.hierarchy, m.codec, job.learn, training.predictive_of(m))
    parts: list[str] = []

    def emit(i: int, row: Any) -> None:
        parts.append(streaming.format_row(job.fmt, src.name, i, row, not parts))

    n = streaming.score_source(scorer, io.BytesIO(src.data), job.per, src.name, emit)
    return {"output": "".join(parts).encode("utf-8"), "units": n}


def _many_streams(kind: str, fn: Callable[..., Any], sources: Iterable[Any], job: Any, engine: Any,
                  progress: Progress, out_dir: Any, suffix: str) -> list[Outcome]:
    """Run ``fn(source, job)`` per source; with ``out_dir``, each successful output is
    written as soon as its task completes (an interrupted run keeps the finished files)."""
    engine = engine or SerialEngine()
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    out: list[Optional[Outcome]] = []
    todo: list[tuple[int, Source]] = []
    for i, s in enumerate(sources):
        try:
            todo.append((i, _as_source(s)))
            out.append(None)
        except OSError as e:  # unreadable here: report it, run the others
            out.append(Outcome(f"{kind}-{i}-{os.fspath(s)}", error=f"{e.strerror or e}"))
    keys = [f"{kind}-{i}-{s.stem}" for i, s in todo]
    names = dict(zip(keys, (s.name for _, s in todo)))

    def done_one(n: int, total: int, o: Outcome) -> None:
        if out_dir is not None and o.ok:
            try:
                o.value["path"] = write_outputs([o], [names[o.key]], out_dir, suffix)[0]
            except (NeoError, OSError) as e:  # this output is lost, not the others
                o.value, o.error = None, str(e)
        if progress:
            progress(n, total, o)

    done = engine.map(fn, [(s, job) for _, s in todo], keys, done_one)
    for (i, _), o in zip(todo, done):
        out[i] = o
    return out  # type: ignore[return-value]


def write_outputs(outcomes: Sequence[Outcome], names: Sequence[str], out_dir: str | os.PathLike,
                  suffix: str) -> list[Optional[str]]:
    """Write each successful outcome's ``value["output"]`` atomically to
    ``out_dir/<stem of name><suffix>``; the paths written (None for a failed task)."""
    from . import ohr

    os.makedirs(out_dir, exist_ok=True)
    paths: list[Optional[str]] = []
    for o, name in zip(outcomes, names):
        if not o.ok:
            paths.append(None)
            continue
        path = os.path.join(os.fspath(out_dir), Source(os.fspath(name), b"").stem + suffix)
        ohr.atomic_write(path, o.value["output"])
        paths.append(path)
    return paths


def _check_stems(sources: Sequence[Any]) -> None:
    stems = [Source(os.fspath(s.name if isinstance(s, Source) else s), b"").stem for s in sources]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise NeoError(f"several files would write {clash[0]}: give files with distinct names")


def detect_many(sources: Sequence[Any], job: DetectJob, engine: Any = None, out_dir: Any = None,
                progress: Progress = None) -> list[Outcome]:
    """One fresh detector per source (paths or Sources), each run as one pure task.

    ``value`` is ``{"output": bytes, "rows", "skipped", "first_bad"}``: ``output``
    is byte for byte what ``neocli detect FILE -o X.csv`` with the same options
    writes. With ``out_dir``, the client writes ``out_dir/<stem>.csv`` atomically
    as each task completes and sets ``value["path"]``. A failing source gives an Outcome
    with ``error`` and costs no other output.
    """
    if job.on_bad_row not in ("skip", "error"):
        raise OptionError("on_bad_row", f"must be skip or error, got {job.on_bad_row!r}")
    if not job.columns:
        raise OptionError("columns", "give at least one column")
    if out_dir is not None:
        _check_stems(sources)
    return _many_streams("detect", _detect_task, sources, job, engine, progress, out_dir, ".csv")


def score_many(sources: Sequence[Any], job: ScoreJob, engine: Any = None, out_dir: Any = None,
               progress: Progress = None) -> list[Outcome]:
    """Score each source apart with ``job.model`` (from its saved state each time).

    ``value`` is ``{"output": bytes, "units"}``, byte for byte what ``neocli score
    MODEL FILE -o X`` with the same options writes. With ``out_dir``, the client
    writes ``out_dir/<stem>.<fmt>`` atomically as each task completes and sets
    ``value["path"]``. A
    failing source gives an Outcome with ``error`` and costs no other output.
    """
    if job.per not in ("line", "record", "symbol", "file"):
        raise OptionError("per", f"must be line, record, symbol or file, got {job.per!r}")
    if job.fmt not in ("tsv", "csv", "jsonl"):
        raise OptionError("fmt", f"must be tsv, csv or jsonl, got {job.fmt!r}")
    if out_dir is not None:
        _check_stems(sources)
    return _many_streams("score", _score_task, sources, job, engine, progress, out_dir, "." + job.fmt)


# Sweepable ``train`` options (names as on the command line, without dashes) and
# where they live in ``training.TrainOptions``.
SWEEP_KEYS = {
    "codec": ("codec", "kind", str), "byte-layout": ("codec", "byte_layout", str),
    "bins": ("codec", "bins", int), "max-vocab": ("codec", "max_vocab", int),
    "csv-columns": ("codec", "csv_columns", str), "csv-range": ("codec", "csv_range", str),
    "csv-header": ("codec", "csv_header", bool),
    "layers": ("architecture", "layers", int), "hidden": ("architecture", "hidden", str),
    "up-radius": ("architecture", "up_radius", int), "down-radius": ("architecture", "down_radius", int),
    "recurrent-radius": ("architecture", "recurrent_radius", int),
    "dendrites": ("architecture", "dendrites", int),
    "epochs": ("schedule", "epochs", int), "reset-on": ("schedule", "reset_on", str),
    "seed": (None, "seed", int),
}


def _convert(key: str, text: Any, kind: type) -> Any:
    if not isinstance(text, str):
        return text
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise NeoError(f"grid {key} expects integers, got {text!r}") from None
    if kind is bool:
        t = text.strip().lower()
        if t in ("true", "yes", "1", "on"):
            return True
        if t in ("false", "no", "0", "off"):
            return False
        raise NeoError(f"grid {key} expects true or false, got {text!r}")
    return text


def with_options(opts: Any, row: dict[str, Any]) -> Any:
    """``opts`` (TrainOptions) with the grid row's values set: keys are ``train``
    option names without dashes (``layers``, ``hidden``, ``byte-layout``; ``_``
    works as ``-``), values strings as typed or already-typed values."""
    for key, text in row.items():
        k = key.strip().lower().replace("_", "-")
        if k not in SWEEP_KEYS:
            raise NeoError(f"grid key {key!r} is not a train option that can be swept; "
                           f"use one of: {', '.join(SWEEP_KEYS)}")
        part, name, kind = SWEEP_KEYS[k]
        value = _convert(k, text, kind)
        if part is None:
            opts = dataclasses.replace(opts, **{name: value})
        else:
            opts = dataclasses.replace(opts, **{part: dataclasses.replace(getattr(opts, part), **{name: value})})
    return opts


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["layers=1,2", "hidden=4x4x16,8x8x32"]`` -> ``{"layers": ["1", "2"], ...}``.
    Values are split on ``;`` when there is one (``hidden=5x5x32,4x4x16;8x8x32``: two
    values, the first with one size per layer), else on ``,``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise NeoError(f"grid expects KEY=V1,V2,..., got {item!r}")
        vals = [v.strip() for v in values.split(";" if ";" in values else ",")]
        if not all(vals):
            raise NeoError(f"grid {key}: empty value in {item!r}")
        if key in grid:
            raise NeoError(f"grid key {key!r} given twice")
        grid[key] = vals
    return grid


def expand_grid(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """All combinations of a grid ``{key: [values]}``, in a stable order (last key fastest)."""
    if not grid:
        return [{}]
    keys = list(grid)
    for k in keys:
        if not list(grid[k]):
            raise NeoError(f"grid key {k!r} has no values")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(list(grid[k]) for k in keys))]


def sweep(train: Sequence[Any], valid: Sequence[Any], points: Sequence[tuple[dict, Any]],
          engine: Any = None, progress: Progress = None) -> list[dict]:
    """Train one model per grid point and score it on held-out data.

    ``points``: ``(row, opts)`` pairs, ``row`` the grid values shown to the user and
    ``opts`` the TrainOptions they make. Returns rows ``{"options": row,
    "bits_per_symbol": ..., "accuracy": ..., "metrics": {...}}`` (or ``"error"``),
    best (fewest held-out bits) first; each equals a separate train + evaluate.
    """
    tr = tuple(_as_source(s) for s in train)
    va = tuple(_as_source(s) for s in valid)
    engine = engine or SerialEngine()
    keys = [f"sweep-{i}" for i in range(len(points))]
    outs = engine.map(_sweep_task, [(tr, va, o) for _, o in points], keys, progress)
    rows = []
    for (row, _), o in zip(points, outs):
        if o.ok:
            rows.append({"options": row, "bits_per_symbol": o.value.get("bits_per_symbol"),
                         "accuracy": o.value.get("accuracy"), "metrics": o.value})
        else:
            rows.append({"options": row, "bits_per_symbol": None, "error": o.error})

    def rank(r: dict) -> tuple:
        b = r["bits_per_symbol"]
        return (b is None, b if b is not None else 0.0)

    return sorted(rows, key=rank)


# --------------------------------------------------------------------------- codec fitting
def fit_codec(sources: Sequence[Any], codec_opts: Any):
    """A codec fitted once over all ``sources`` (paths or Sources), e.g. one vocabulary
    for every shard of a data-parallel run: shards fitted separately would disagree."""
    from . import training

    srcs = [s for s in sources]
    if all(isinstance(s, (str, os.PathLike)) for s in srcs):
        return training.fit_codec(list(srcs), codec_opts)
    with tempfile.TemporaryDirectory(prefix="neocli-fit-") as tmp:
        return training.fit_codec(_write_sources(tmp, [_as_source(s) for s in srcs]), codec_opts)


# --------------------------------------------------------------------------- data-parallel training
@dataclass
class EncodedStream:
    """A symbol stream as the model sees it: ``cis[i]`` is step i's CSDR and
    ``clear[i]`` says whether the state is cleared before step i (``clear[n]``:
    after the last step). One pass of plain training is exactly this sequence."""

    cis: np.ndarray
    clear: np.ndarray

    @property
    def steps(self) -> int:
        """Number of steps (symbols)."""
        return int(self.cis.shape[0])


def encode_stream(paths: Sequence[str | os.PathLike], codec: Any, reset_on: str = "file",
                  decompress: bool = True) -> EncodedStream:
    """Encode files as plain training streams them: decompressed by extension (``.gz``,
    ``.bz2``, ``.xz``, ``.zst``; as they are with ``decompress=False``), a state clear at each
    file start (``reset_on="file"``) and at blank lines (``"blank"``; file starts too), none
    for ``"none"``."""
    from .codecs import RESET
    from .compression import open_input

    if reset_on not in ("file", "blank", "none"):
        raise NeoError(f"reset_on must be file, blank or none, got {reset_on!r}")
    cols = codec.io_size[1]
    rows: list[np.ndarray] = []
    clear: list[bool] = []
    pending = False
    for p in paths:
        if reset_on != "none":
            pending = True
        with open_input(p, decompress) as f:
            for sym in codec.symbols(f, reset_on == "blank", where=os.fspath(p)):
                if sym is RESET:
                    pending = True
                    continue
                rows.append(np.asarray(codec.encode(sym), dtype=np.int32).reshape(cols))
                clear.append(pending)
                pending = False
    clear.append(pending)
    cis = np.stack(rows) if rows else np.zeros((0, cols), dtype=np.int32)
    return EncodedStream(cis, np.array(clear, dtype=bool))


def ohr_weights(model: bytes) -> np.ndarray:
    """The weights buffer (``serialize_weights_to_buffer``) of ``.ohr`` bytes, without
    building the model: the file's weights section concatenated in order."""
    from . import ohr

    _, arrays = ohr.decode(model, verify=False)
    parts = [np.ascontiguousarray(a).reshape(-1).view(np.uint8) for a in arrays["weights"].values()]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)


def train_span(model: bytes, weights: Optional[bytes], cis: np.ndarray, clear: np.ndarray) -> bytes:
    """Load ``model`` (``.ohr`` bytes, weights and state), replace its weights with
    ``weights`` if given, learn ``cis`` (``clear[j]``: clear the state before step j;
    ``clear[len(cis)]``: after the last) and return the new ``.ohr`` bytes."""
    from .hierarchy import Hierarchy

    h = Hierarchy(buffer=model)
    if weights is not None:
        h.set_weights_from_buffer(weights)
    for j in range(cis.shape[0]):
        if clear[j]:
            h.clear_state()
        h.step([cis[j]], True)
    if clear[cis.shape[0]]:
        h.clear_state()
    return bytes(h.serialize_to_buffer())


def _merge_task(models: Sequence[bytes], factors: Sequence[float], rounding: str, seed: Optional[int]) -> bytes:
    layout = merging.weights_layout(models[0])
    return bytes(merging.average_weights([ohr_weights(m) for m in models], layout, factors, rounding, seed))


@dataclass
class DataParallelResult:
    """The data-parallel model (``.ohr`` bytes: merged weights, the last shard's state)
    and how it was made."""

    model: bytes
    shards: int
    sync_every: int
    rounds: int
    steps: int
    seconds: float
    sync_seconds: float
    record: dict = field(default_factory=dict)


def _shard_bounds(n: int, k: int) -> list[tuple[int, int]]:
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


def _round_slice(stream: EncodedStream, lo: int, hi: int, first: bool, p0: int, p1: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Steps ``p0..p1`` of a shard's step sequence (its span ``lo..hi`` repeated once per
    epoch) with their clear flags. ``first``: the shard starts the stream, so its pass
    starts follow the data's own clears; later shards start mid-stream and clear."""
    m = hi - lo
    idx = np.arange(p0, p1)
    local = idx % m
    cis = stream.cis[lo + local]
    clear = stream.clear[lo + local].copy()
    if not first:
        clear[local == 0] = True
    # A pass that ends at the stream's end clears after its last step if the data says
    # so; the flag then belongs before the next pass's first step (or after this slice).
    tail = np.zeros(p1 - p0 + 1, dtype=bool)
    if hi == stream.steps and stream.clear[stream.steps]:
        ends = np.nonzero(local == m - 1)[0]
        tail[ends + 1] = True
    out = np.zeros(p1 - p0 + 1, dtype=bool)
    out[:-1] = clear
    return cis, out | tail


def train_data_parallel(stream: EncodedStream, init: bytes, shards: int, sync_every: int,
                        epochs: int = 1, engine: Any = None, rounding: str = "even",
                        seed: int = 0, progress: Optional[Callable[[int, int], None]] = None
                        ) -> DataParallelResult:
    """Train one model on ``stream`` with ``shards`` copies in parallel (experimental).

    The stream is cut into ``shards`` contiguous spans. Every copy starts from
    ``init`` (``.ohr`` bytes), learns ``sync_every`` steps of its span, then all
    copies take the weighted average of their weights (:func:`merging.average_weights`,
    weighted by steps learned in the round; ``rounding="stochastic"`` draws from
    ``seed`` + the round number), keep their own state, and go on. The result has
    the averaged weights and the state of the last span's copy (the context at the
    stream's end). ``shards=1`` is exactly plain training: the average of one
    model is that model.
    """
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise NeoError(f"shards must be an integer >= 1, got {shards!r}")
    if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
        raise OptionError("sync_every", f"must be an integer >= 1, got {sync_every!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise OptionError("epochs", f"must be an integer >= 1, got {epochs!r}")
    if rounding not in merging.ROUNDINGS:
        raise NeoError(f"rounding must be one of {', '.join(merging.ROUNDINGS)}, got {rounding!r}")
    n = stream.steps
    if n < shards:
        raise NeoError(f"the data has {n} symbols: too few for {shards} shards")
    engine = engine or SerialEngine()
    bounds = _shard_bounds(n, shards)
    lengths = [(hi - lo) * epochs for lo, hi in bounds]
    models = [bytes(init)] * shards
    weights: Optional[bytes] = None
    rounds = (max(lengths) + sync_every - 1) // sync_every
    t0 = time.perf_counter()
    sync_s = 0.0
    for r in range(rounds):
        args, active = [], []
        for k, (lo, hi) in enumerate(bounds):
            p0, p1 = r * sync_every, min((r + 1) * sync_every, lengths[k])
            if p0 >= p1:
                continue
            cis, clear = _round_slice(stream, lo, hi, k == 0, p0, p1)
            args.append((models[k], weights, cis, clear))
            active.append((k, p1 - p0))
        outs = engine.map(train_span, args, [f"span-r{r}-s{k}" for k, _ in active])
        for (k, _), o in zip(active, outs):
            if not o.ok:
                raise NeoError(f"shard {k}, round {r + 1}: {o.error}")
            models[k] = o.value
        ts = time.perf_counter()
        if shards > 1:
            # Copies that had nothing left to learn this round keep their weights at the
            # last average, so they take no part in it.
            merged = _merge_task([models[k] for k, _ in active], [s for _, s in active], rounding,
                                 None if rounding == "even" else seed + r)
            weights = merged
        sync_s += time.perf_counter() - ts
        if progress:
            progress(r + 1, rounds)
    final = models[-1]
    if weights is not None and not np.array_equal(ohr_weights(final), np.frombuffer(weights, np.uint8)):
        final = _set_weights(final, weights)
    secs = time.perf_counter() - t0
    record = {"data_parallel": {"shards": shards, "sync_every": sync_every, "rounds": rounds,
                                "rounding": rounding, "merge": "average",
                                **({"seed": seed} if rounding == "stochastic" else {})}}
    return DataParallelResult(final, shards, sync_every, rounds, n * epochs, secs, sync_s, record)


def _set_weights(model: bytes, weights: bytes) -> bytes:
    from .hierarchy import Hierarchy

    h = Hierarchy(buffer=model)
    h.set_weights_from_buffer(weights)
    return bytes(h.serialize_to_buffer())
