"""``neocli score``: the surprise of every line, record, symbol or file (a shell over neocli.streaming)."""
from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .. import ohr, streaming
from ._common import stopped_exit
from ._options import CLUSTER, Scheduler, Workers
from .app import UsageError, app, command


@app.command("score")
@command
def score(
    model: Annotated[str, typer.Argument(help="Model file (.ohr).", show_default=False)],
    data: Annotated[list[str], typer.Argument(help="Data files, or - for stdin.", show_default=False)],
    per: Annotated[str, typer.Option("--per", help="Unit of output: line | record | symbol | file.")] = "line",
    learn: Annotated[bool, typer.Option("--learn", help="Keep learning while scoring.")] = False,
    save: Annotated[Optional[str], typer.Option("--save", help="Write the updated model here at the end (and on Ctrl-C/SIGTERM).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="tsv | csv | jsonl.")] = "tsv",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output file, - for stdout (default).")] = None,
    out_dir: Annotated[Optional[str], typer.Option("--out-dir", "-d", metavar="DIR", help="Score each file apart: write DIR/<stem>.<format>.", rich_help_panel=CLUSTER)] = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary (with --out-dir).")] = False,
) -> None:
    """One row per unit of DATA: bits, bits per symbol and the model's probability of the unit.

    With --out-dir DIR, each file is scored apart from the model's saved state and
    DIR/<stem>.<format> equals `neocli score MODEL FILE -o X`; --workers N or
    --scheduler ADDR run the files on a Dask cluster."""
    if per not in ("line", "record", "symbol", "file"):
        raise UsageError(f"--per must be line, record, symbol or file, got {per!r}")
    if fmt not in ("tsv", "csv", "jsonl"):
        raise UsageError(f"--format must be tsv, csv or jsonl, got {fmt!r}")
    if data.count("-") > 1:
        raise UsageError("'-' (stdin) can be given only once")
    if out_dir is not None or workers is not None or scheduler is not None:
        from .distributed import score_many  # the Dask-facing code, only for --out-dir or a cluster

        return score_many(model, data, per, fmt, learn, out_dir, output, save, workers, scheduler, quiet)
    output = output or "-"
    inputs = [d for d in data if d != "-"]
    for path, ins in (([(output, inputs + [model])] if output != "-" else []) + ([(save, inputs)] if save else [])):
        ohr.check_output_path(path, allow_fifo=path == output, inputs=ins,
                              what="output" if path == output else "model")
    scorer, header = streaming.load_scorer(model, learn)
    out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8", newline="")
    try:
        with streaming.SignalGuard() as guard:
            _score_all(scorer, data, per, fmt, out, output == "-", guard)
    except KeyboardInterrupt as e:
        _finish(scorer, header, save, out, output)
        raise stopped_exit(e, save, "model") from None
    _finish(scorer, header, save, out, output)


def _score_all(scorer: streaming.Scorer, data: list[str], per: str, fmt: str, out, to_stdout: bool,
               guard: streaming.SignalGuard) -> None:
    """Score every source in order, writing (and, when live, flushing) each row at once."""
    first = [True]
    for name in data:
        live = name == "-"
        src = streaming.LiveReader(sys.stdin.buffer) if live else open(name, "rb")
        where = "<stdin>" if live else name

        def emit(i: int, row: streaming.Row, where: str = where, live: bool = live) -> None:
            out.write(streaming.format_row(fmt, where, i, row, first[0]))
            first[0] = False
            if live or to_stdout:
                out.flush()

        try:
            streaming.score_source(scorer, src, per, where, emit, guard)
        finally:
            if not live:
                src.close()


def _finish(scorer: streaming.Scorer, header: dict, save: Optional[str], out, output: str) -> None:
    if output != "-":
        out.close()
    else:
        out.flush()
    if save is not None:
        streaming.save_scorer(scorer, save, header)
