"""``neocli train-many``, ``neocli sweep`` and data-parallel ``neocli train --workers K``.

Thin shells over :mod:`neocli.distributed` (Dask's distributed scheduler):
``--workers N`` starts a LocalCluster of N single-threaded processes, ``--scheduler
ADDR`` uses a running cluster; without either, the work runs in this process.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any, Optional

import typer
from tqdm import tqdm

from .. import Hierarchy, NeoError, distributed, ohr, training
from .app import UsageError, app, command, echo_err, plural
# The model options are ``neocli train``'s own declarations (same flags, help and defaults).
from ._options import (Bins, ByteLayout, Codec, CsvColumns, CsvHeader, CsvRange, Dendrites, DownRadius, Epochs,
                       Hidden, Layers, MaxVocab, Meta, RecRadius, ResetOn, Scheduler, Seed, UpRadius, Workers,
                       build_options)

_O = typer.Option
Quiet = Annotated[bool, _O("--quiet", "-q", help="No progress bar.")]
JsonOut = Annotated[bool, _O("--json", help="Print the results as JSON to stdout.")]
_options = build_options  # the option record of the model flags, as ``neocli train`` builds it


def _engine(workers: Optional[int], scheduler: Optional[str], quiet: bool = True):
    if workers is not None and scheduler is not None:
        raise UsageError("--workers and --scheduler cannot be used together")
    eng = distributed.open_engine(workers, scheduler)
    if not quiet:
        echo_err(f"running {eng.describe()}")
    return eng


class _Bar:
    """A progress callback: one tqdm bar on stderr advanced as tasks complete."""

    def __init__(self, total: int, unit: str, quiet: bool) -> None:
        self.bar = tqdm(total=total, unit=unit, file=sys.stderr, disable=True if quiet else None, leave=False)

    def __call__(self, done: int, total: int, outcome: Any = None) -> None:
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> "_Bar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()


@app.command("train-many")
@command
def train_many(
    files: Annotated[list[str], typer.Argument(metavar="FILE...", help="Data files: one model each.", show_default=False)],
    out_dir: Annotated[str, _O("--out-dir", "-d", metavar="DIR", help="Write DIR/<stem of FILE>.ohr.", show_default=False)],
    workers: Workers = None, scheduler: Scheduler = None, codec: Codec = None, byte_layout: ByteLayout = None,
    bins: Bins = None, max_vocab: MaxVocab = None, csv_range: CsvRange = None, csv_header: CsvHeader = None,
    csv_columns: CsvColumns = None, reset_on: ResetOn = None, epochs: Epochs = 1, layers: Layers = None,
    hidden: Hidden = None, up_radius: UpRadius = None, down_radius: DownRadius = None,
    recurrent_radius: RecRadius = None, dendrites: Dendrites = None, seed: Seed = None, meta: Meta = None,
    quiet: Quiet = False, json_out: JsonOut = False,
) -> None:
    """Train one model per FILE (each as `neocli train FILE` with the same options) into DIR/<stem>.ohr."""
    opts = _options(codec=codec, byte_layout=byte_layout, bins=bins, max_vocab=max_vocab, csv_range=csv_range,
                    csv_header=csv_header, csv_columns=csv_columns, reset_on=reset_on, epochs=epochs, layers=layers,
                    hidden=hidden, up_radius=up_radius, down_radius=down_radius, recurrent_radius=recurrent_radius,
                    dendrites=dendrites, seed=seed, meta=meta)
    stems = [distributed.Source(f, b"").stem for f in files]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise UsageError(f"several files would write {clash[0]}.ohr: give files with distinct names")
    os.makedirs(out_dir, exist_ok=True)
    with _engine(workers, scheduler, quiet) as eng, _Bar(len(files), "model", quiet) as bar:
        outs = distributed.train_many(files, opts, eng, progress=bar)
    rows = []
    for f, stem, o in zip(files, stems, outs):
        path = os.path.join(out_dir, stem + ".ohr")
        if o.ok:
            ohr.atomic_write(path, o.value)
        else:
            echo_err(f"error: {f}: {o.error}")
        rows.append({"file": f, "model": path if o.ok else None, "error": o.error})
    failed = sum(r["error"] is not None for r in rows)
    if json_out:
        print(json.dumps(rows, indent=2))
    if not quiet:
        echo_err(f"{len(files) - failed} model(s) written to '{out_dir}', {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command("sweep")
@command
def sweep(
    train: Annotated[list[str], typer.Argument(metavar="TRAIN...", help="Training data files.", show_default=False)],
    valid: Annotated[list[str], _O("--valid", "-v", metavar="FILE", help="Held-out data (repeatable).", show_default=False)],
    grid: Annotated[list[str], _O("--grid", "-g", metavar="KEY=V1,V2", help="A train option (without dashes) and its values; repeat for more keys.", show_default=False)],
    workers: Workers = None, scheduler: Scheduler = None, codec: Codec = None, byte_layout: ByteLayout = None,
    bins: Bins = None, max_vocab: MaxVocab = None, csv_range: CsvRange = None, csv_header: CsvHeader = None,
    csv_columns: CsvColumns = None, reset_on: ResetOn = None, epochs: Epochs = 1, layers: Layers = None,
    hidden: Hidden = None, up_radius: UpRadius = None, down_radius: DownRadius = None,
    recurrent_radius: RecRadius = None, dendrites: Dendrites = None, seed: Seed = None,
    quiet: Quiet = False, json_out: JsonOut = False,
) -> None:
    """One model per grid point trained on TRAIN, scored on --valid: held-out bits/symbol, best first."""
    base = _options(codec=codec, byte_layout=byte_layout, bins=bins, max_vocab=max_vocab, csv_range=csv_range,
                    csv_header=csv_header, csv_columns=csv_columns, reset_on=reset_on, epochs=epochs, layers=layers,
                    hidden=hidden, up_radius=up_radius, down_radius=down_radius, recurrent_radius=recurrent_radius,
                    dendrites=dendrites, seed=seed)
    try:
        points = [(row, distributed.with_options(base, row)) for row in distributed.expand_grid(distributed.parse_grid(grid))]
    except NeoError as e:
        raise UsageError(str(e)) from None
    with _engine(workers, scheduler, quiet) as eng, _Bar(len(points), "model", quiet) as bar:
        rows = distributed.sweep(train, valid, points, eng, progress=bar)
    if json_out:
        print(json.dumps([{"options": r["options"], "bits_per_symbol": r["bits_per_symbol"],
                           "accuracy": r.get("accuracy"), **({"error": r["error"]} if "error" in r else {})}
                          for r in rows], indent=2))
    else:
        _print_table(rows)
    if any("error" in r for r in rows):
        raise typer.Exit(1)


def _print_table(rows: list[dict[str, Any]]) -> None:
    keys = list(rows[0]["options"]) if rows else []
    head = keys + ["bits/symbol", "accuracy"]
    body = [[str(r["options"][k]) for k in keys]
            + ([f"{r['bits_per_symbol']:.4f}", f"{r['accuracy']:.4f}"] if "error" not in r else ["error", r["error"]])
            for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    for line in [head] + body:
        print("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip())


def check_data_parallel(opts: training.TrainOptions, given: dict[str, Any]) -> None:
    """Refuse, as a usage error, what data-parallel training does not do: ``given`` maps the
    plain-train flags that have no meaning there to their values (set = given), and the
    validation and checkpoint fields of ``opts`` must be unset."""
    c = opts.checkpoints
    given = {**given, "--valid": opts.valid, "--valid-every": opts.valid_every, "--patience": opts.patience,
             "--checkpoint-dir": c.directory, "--checkpoint-every": c.every_steps or c.every_epochs,
             "--keep": c.keep, "--threads": opts.threads}
    for flag, value in given.items():
        if value:
            raise UsageError(f"{flag} is not supported with --workers (data-parallel training)")


def train_data_parallel(data: list[str], output: str, opts: training.TrainOptions, *, workers: int | None,
                        sync_every: int | None, merge: str | None, scheduler: str | None, quiet: bool,
                        json_out: bool, decompress: bool = True) -> None:
    """``neocli train DATA -o M.ohr --workers K --sync-every N`` with ``opts`` as plain train
    builds them (:func:`check_data_parallel` has refused what does not apply)."""
    if workers is None:
        raise UsageError("--sync-every, --merge and --scheduler need --workers K (the number of shards)")
    merge = merge or "average"
    if not data or "-" in data:
        raise UsageError("data-parallel training needs data files (not stdin)")
    if merge not in ("average", "stochastic"):
        raise UsageError(f"--merge must be average or stochastic, got {merge!r}")
    reset_on = opts.schedule.reset_on or "file"
    codec = training.fit_codec(data, opts.codec, decompress=decompress)  # once over all shards: they must agree
    init = training.build_model(codec, opts).serialize_to_buffer()
    stream = distributed.encode_stream(data, codec, reset_on, decompress=decompress)
    sync = sync_every or 5000
    with _engine(None if scheduler else workers, scheduler, quiet) as eng, _Bar(0, "round", quiet) as bar:
        r = distributed.train_data_parallel(stream, init, workers, sync, opts.schedule.epochs, eng,
                                            "even" if merge == "average" else "stochastic", opts.initial_seed, progress=bar)
    record = {"epoch": opts.schedule.epochs, "epochs": opts.schedule.epochs, "steps": r.steps, "complete": True,
              "seed": opts.initial_seed, "data_files": list(data), "metrics": [],
              "options": {"codec": codec.kind, **opts.codec.given(), **opts.architecture.given(),
                          "reset_on": reset_on, **({"params": dict(opts.params)} if opts.params else {})},
              **r.record}
    training.save_model(output, Hierarchy(buffer=r.model), codec, record, meta=opts.meta)
    if json_out:
        print(json.dumps({"model": output, "steps": r.steps, "shards": workers, "sync_every": sync,
                          "rounds": r.rounds, "seconds": r.seconds, "sync_seconds": r.sync_seconds}, indent=2))
    if not quiet:
        echo_err(f"saved '{output}' ({workers} shards, {r.rounds} sync rounds, {r.steps} steps, {r.seconds:.1f} s)")


def _fmt_metrics(m: dict[str, Any]) -> str:
    acc, bps = m.get("accuracy"), m.get("bits_per_symbol")
    return (f"accuracy {'n/a' if acc is None else f'{acc:.4f}'}  bits/symbol {'n/a' if bps is None else f'{bps:.3f}'}"
            f"  ({m.get('symbols', 0)} symbols)")


def eval_many(model: str, data: list[str], *, workers: int | None, scheduler: str | None, reset_on: str,
              json_out: bool, quiet: bool = False) -> None:
    """``neocli eval MODEL F1 F2 ... --workers N``: each file scored apart, one row per file
    (``eval`` has refused --learn, --save and the options that need one sequential pass)."""
    if not data or "-" in data:
        raise UsageError("--workers/--scheduler score data files (not stdin)")
    if reset_on == "none":
        raise UsageError("--reset-on none joins the files into one stream: not with --workers/--scheduler")
    training.load_model(model)  # a bad model is one error, not one per file
    with open(model, "rb") as f:
        blob = f.read()
    with _engine(workers, scheduler, quiet or json_out) as eng, _Bar(len(data), "file", quiet or json_out) as bar:
        outs = distributed.evaluate_many([blob] * len(data), data, eng, bar, reset_on or "file")
    rows = [{"data": f, **(o.value if o.ok else {"error": o.error})} for f, o in zip(data, outs)]
    if json_out:
        print(json.dumps({"model": model, "files": rows}, indent=2))
    else:
        for r in rows:
            print(f"{r['data']}: " + (f"error: {r['error']}" if "error" in r else _fmt_metrics(r)))
    if any("error" in r for r in rows):
        raise typer.Exit(1)


def _many_checks(files: list[str], out_dir: Optional[str], output: Optional[str], save: Optional[str],
                 suffix: str) -> None:
    """Usage errors of ``detect``/``score`` with several files, --workers or --scheduler."""
    if out_dir is None:
        raise UsageError("several files, --workers or --scheduler need --out-dir DIR (one output per file)")
    if output is not None:
        raise UsageError(f"--output cannot be combined with --out-dir (each file writes DIR/<stem>{suffix})")
    if save is not None:
        raise UsageError("--save keeps one model: not with --out-dir")
    if "-" in files:
        raise UsageError("--out-dir, --workers and --scheduler read data files (not stdin)")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError(f"--out-dir: '{out_dir}' exists and is not a directory")
    stems = [distributed.Source(f, b"").stem for f in files]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise UsageError(f"several files would write {clash[0]}{suffix}: give files with distinct names")


def _report(files: list[str], outs: list[distributed.Outcome], out_dir: str, quiet: bool) -> None:
    """One error line per failed file, a summary; exit 1 if any failed."""
    for f, o in zip(files, outs):
        if not o.ok:  # most data errors already name the file
            echo_err(f"error: {o.error}" if o.error.startswith(f"{f}:") else f"error: {f}: {o.error}")
        elif o.value.get("skipped") and not quiet:
            echo_err(f"{f}: skipped {plural(o.value['skipped'], 'bad row')} (first: {o.value['first_bad']})")
    failed = sum(not o.ok for o in outs)
    if not quiet:
        echo_err(f"{len(files) - failed} output(s) written to '{out_dir}', {failed} failed")
    if failed:
        raise typer.Exit(1)


def detect_many(files: list[str], job: distributed.DetectJob, out_dir: Optional[str], output: Optional[str],
                save: Optional[str], model: Optional[str], workers: Optional[int], scheduler: Optional[str],
                quiet: bool) -> None:
    """``neocli detect F1 F2 ... --out-dir DIR [--workers N | --scheduler ADDR]``: one fresh
    detector per file, DIR/<stem>.csv each as ``neocli detect F -o X.csv`` writes it."""
    _many_checks(files, out_dir, output, save, ".csv")
    if model is not None:
        raise UsageError("--model continues one detector: not with --out-dir (each file gets a fresh one)")
    with _engine(workers, scheduler, quiet) as eng, _Bar(len(files), "file", quiet) as bar:
        outs = distributed.detect_many(files, job, eng, out_dir, progress=bar)
    _report(files, outs, out_dir, quiet)


def score_many(model: str, files: list[str], per: str, fmt: str, learn: bool, out_dir: Optional[str],
               output: Optional[str], save: Optional[str], workers: Optional[int], scheduler: Optional[str],
               quiet: bool) -> None:
    """``neocli score MODEL F1 F2 ... --out-dir DIR [--workers N | --scheduler ADDR]``: each
    file scored apart from the model's saved state into DIR/<stem>.<format>."""
    _many_checks(files, out_dir, output, save, "." + fmt)
    training.load_model(model)  # a bad model is one error, not one per file
    with open(model, "rb") as f:
        job = distributed.ScoreJob(f.read(), per, fmt, learn)
    with _engine(workers, scheduler, quiet) as eng, _Bar(len(files), "file", quiet) as bar:
        outs = distributed.score_many(files, job, eng, out_dir, progress=bar)
    _report(files, outs, out_dir, quiet)
