"""``neocli eval``: next-symbol accuracy and bits/symbol on held-out data (``training.evaluate``)."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from .. import training
from ._common import ProgressBar, apply_threads, check_paths, fmt_metrics, load_model
from .app import UsageError, app, command, echo_err


@app.command("eval")
@command
def evaluate(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model file (.ohr).", show_default=False)],
    data: Annotated[Optional[list[str]], typer.Argument(metavar="DATA...", help="Data files, or - for stdin.", show_default=False)] = None,
    reset_on: Annotated[str, typer.Option("--reset-on", metavar="WHEN", help="clear_state() at: file | blank | none.")] = "file",
    learn: Annotated[bool, typer.Option("--learn", help="Keep learning while scoring (the online-learner measure).")] = False,
    save: Annotated[Optional[str], typer.Option("--save", metavar="PATH", help="With --learn: write the updated model here.")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", min=1, metavar="N", help="Maximum threads.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON to stdout.")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", min=1, metavar="N", help="Score each file apart on a local Dask cluster of N processes: one row per file.", rich_help_panel="Cluster")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDR", help="As --workers, on a running Dask cluster.", rich_help_panel="Cluster")] = None,
) -> None:
    """Score MODEL on DATA: accuracy and bits per symbol, learning off (or on with --learn)."""
    if workers is not None or scheduler is not None:
        from .distributed import eval_many  # neocli/cli/distributed.py

        return eval_many(dict(locals()))
    if not data:
        raise UsageError("missing DATA: give data files (or - for stdin)")
    if reset_on not in training.RESET_MODES:
        raise UsageError(f"--reset-on must be file, blank or none, got {reset_on!r}")
    if save is not None and not learn:
        raise UsageError("--save applies with --learn only (without it the model does not change)")
    check_paths(inputs=[(model, "model")], outputs=[save])
    apply_threads(threads)
    m = load_model(model)
    with ProgressBar(json_out, desc="eval", lines=False) as bar:
        metrics = training.evaluate(m, data, learn=learn, progress=bar, reset_on=reset_on)
    if save is not None:
        training.save_model(save, m.hierarchy, m.codec, m.record or None, m.header.get("user"), m.predictive)
        echo_err(f"saved '{save}'")
    summary = metrics.to_dict()
    if json_out:
        print(json.dumps({"model": model, "data": list(data), "learn": learn, **summary}, indent=2))
    else:
        print(fmt_metrics(summary))
