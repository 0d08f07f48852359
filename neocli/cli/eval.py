"""``neocli eval``: next-symbol accuracy and bits/symbol on held-out data (``training.evaluate``).

The metrics are the command's result: they go to stdout in every mode (one text line, or
JSON with ``--json``), also when Ctrl-C stops it early (marked partial, exit 130); the
progress bar and messages go to stderr.
"""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from .. import training
from ._common import ProgressBar, apply_threads, check_paths, fmt_metrics, load_model
from .app import UsageError, app, command, echo_err

DATA = "Data"
RUN = "Run"
OUT = "Output"


def _print(model: str, data: list[str], learn: bool, summary: dict, json_out: bool, partial: bool) -> None:
    if json_out:
        print(json.dumps({"model": model, "data": list(data), "learn": learn, "partial": partial, **summary},
                         indent=2), flush=True)
    else:
        print(("partial (interrupted): " if partial else "") + fmt_metrics(summary), flush=True)


@app.command("eval")
@command
def evaluate(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model file (.ohr), or - for stdin.", show_default=False)],
    data: Annotated[Optional[list[str]], typer.Argument(metavar="DATA...", help="Data files, or - for stdin.", show_default=False)] = None,
    reset_on: Annotated[str, typer.Option("--reset-on", metavar="WHEN", help="clear_state() at: file | blank | none.", rich_help_panel=DATA)] = "file",
    no_decompress: Annotated[bool, typer.Option("--no-decompress", help="Read .gz/.bz2/.xz/.zst files as they are.", rich_help_panel=DATA)] = False,
    learn: Annotated[bool, typer.Option("--learn", help="Keep learning while scoring (the online-learner measure).", rich_help_panel=RUN)] = False,
    save: Annotated[Optional[str], typer.Option("--save", metavar="PATH", help="With --learn: write the updated model here.", rich_help_panel=RUN)] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", min=1, metavar="N", help="Maximum threads.", rich_help_panel=RUN)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON (stdout, like the text line).", rich_help_panel=OUT)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel=OUT)] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", min=1, metavar="N", help="Score each file apart on a local Dask cluster of N processes: one row per file.", rich_help_panel="Cluster")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDR", help="As --workers, on a running Dask cluster.", rich_help_panel="Cluster")] = None,
) -> None:
    """Score MODEL on DATA: accuracy and bits per symbol, learning off (or on with --learn).

    The metrics go to stdout (text, or JSON with --json); unknown symbols (<unk>) and
    skipped CSV rows are counted. Ctrl-C prints the metrics so far and exits 130.
    """
    if workers is not None or scheduler is not None:
        from .distributed import eval_many  # neocli/cli/distributed.py

        for flag, value in (("--learn", learn), ("--save", save), ("--no-decompress", no_decompress),
                            ("--threads", threads)):
            if value:
                raise UsageError(f"{flag} is not supported with --workers/--scheduler (each file is scored apart)")
        return eval_many(model, data or [], workers=workers, scheduler=scheduler, reset_on=reset_on,
                         json_out=json_out, quiet=quiet)
    if not data:
        raise UsageError("missing DATA: give data files (or - for stdin)")
    if reset_on not in training.RESET_MODES:
        raise UsageError(f"--reset-on must be file, blank or none, got {reset_on!r}")
    if save is not None and not learn:
        raise UsageError("--save applies with --learn only (without it the model does not change)")
    check_paths(inputs=[(model, "model"), *((d, "data") for d in data)], outputs=[save])
    apply_threads(threads)
    m = load_model(model)
    try:
        with ProgressBar(quiet, desc="eval", lines=False) as bar:
            metrics = training.evaluate(m, data, learn=learn, progress=bar, reset_on=reset_on,
                                        decompress=not no_decompress)
    except training.EvalInterrupted as e:
        _print(model, data, learn, e.metrics.to_dict(), json_out, partial=True)
        raise
    if save is not None:
        training.save_model(save, m.hierarchy, m.codec, m.record or None, m.header.get("user"), m.predictive)
        echo_err(f"saved '{save}'")
    _print(model, data, learn, metrics.to_dict(), json_out, partial=False)
