"""``neocli detect``: online anomaly detection on numeric CSV streams (a shell over neocli.streaming)."""
from __future__ import annotations

import io
import sys
import time
from typing import Annotated, Optional

import typer

from .. import ohr, set_num_threads, streaming
from ._common import stopped_exit
from ._options import CLUSTER, Scheduler, Workers
from .app import UsageError, app, command, echo_err, plural


@app.command("detect")
@command
def detect(
    data: Annotated[list[str], typer.Argument(metavar="DATA...", help="CSV file(s) with a header, or - for stdin. Several files need --out-dir.", show_default=False)],
    columns: Annotated[str, typer.Option("--columns", help="Numeric columns to watch, comma-separated (names or 1-based numbers).", show_default=False)],
    time_column: Annotated[Optional[str], typer.Option("--time-column", help="Timestamp column (ISO 8601 or Unix seconds).")] = None,
    csv_range: Annotated[Optional[str], typer.Option("--csv-range", help="LO:HI range of the values (default: scanned from the file; learned as it goes from stdin).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Continue a detector saved with --save (or use a csv-codec model).")] = None,
    save: Annotated[Optional[str], typer.Option("--save", help="Write the detector here at the end (and on Ctrl-C/SIGTERM).")] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the initial weights.")] = 0,
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", help="Maximum threads.")] = None,
    calendar: Annotated[bool, typer.Option("--calendar/--no-calendar", help="Feed time of day and day of week (needs --time-column).")] = True,
    on_bad_row: Annotated[str, typer.Option("--on-bad-row", help="skip (count, report at the end) | error (exit 1 naming the line).")] = "skip",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")] = False,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output CSV, - for stdout (default).")] = None,
    out_dir: Annotated[Optional[str], typer.Option("--out-dir", "-d", metavar="DIR", help="One fresh detector per file: write DIR/<stem>.csv.", rich_help_panel=CLUSTER)] = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
) -> None:
    """Score every row of DATA as it arrives: predicted value, raw_score and anomaly_score in [0,1].

    With several files (and --out-dir DIR), each file gets its own fresh detector and
    DIR/<stem>.csv equals `neocli detect FILE -o X.csv`; --workers N or --scheduler ADDR
    run the files on a Dask cluster."""
    _check(threads, on_bad_row, csv_range, model)
    cols = [c.strip() for c in columns.split(",") if c.strip()]
    if not cols:
        raise UsageError("--columns: give at least one column")
    if out_dir is not None or workers is not None or scheduler is not None or len(data) > 1:
        # Imported here: the Dask-facing code is not needed to score one file.
        from .. import distributed
        from .distributed import detect_many

        job = distributed.DetectJob(tuple(cols), time_column, _range(csv_range), seed, calendar, on_bad_row)
        return detect_many(data, job, out_dir, output, save, model, workers, scheduler, quiet)
    data, output = data[0], output or "-"
    inputs = [] if data == "-" else [data]
    for path in ([output] if output != "-" else []) + ([save] if save else []):
        ohr.check_output_path(path, allow_fifo=path == output, inputs=inputs,
                              what="output" if path == output else "model")
    opts = streaming.DetectorOptions(calendar=calendar and time_column is not None)
    det = streaming.open_detector(data, cols, time_column, _range(csv_range), model, seed, opts)
    run = streaming.DetectRun(det, time_column, on_bad_row, where="<stdin>" if data == "-" else data)
    start = time.perf_counter()
    n = _stream(run, data, output, save)
    if not quiet:
        skipped = f"; skipped {plural(run.skipped, 'bad row')} (first: {run.first_bad})" if run.skipped else ""
        echo_err(f"{plural(n, 'row')} in {time.perf_counter() - start:.1f} s{skipped}")


def _check(threads: Optional[int], on_bad_row: str, csv_range: Optional[str], model: Optional[str]) -> None:
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        set_num_threads(threads)
    if on_bad_row not in ("skip", "error"):
        raise UsageError(f"--on-bad-row must be skip or error, got {on_bad_row!r}")
    if csv_range is not None and model is not None:
        raise UsageError("--csv-range cannot be combined with --model (the model keeps its range)")


def _stream(run: streaming.DetectRun, data: str, output: str, save: Optional[str]) -> int:
    """Run the rows through the detector; save it at the end or when interrupted."""
    live = data == "-"
    text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="") if live \
        else open(data, encoding="utf-8", newline="")
    out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8", newline="")
    try:
        with streaming.SignalGuard() as guard:
            n = streaming.detect_csv(run, text, out, flush=live or output == "-", guard=guard)
    except KeyboardInterrupt as e:
        _finish(run.detector, save, out, output)
        raise stopped_exit(e, save, "detector") from None
    finally:
        if not live:
            text.close()
    _finish(run.detector, save, out, output)
    return n


def _finish(det: streaming.Detector, save: Optional[str], out, output: str) -> None:
    if output != "-":
        out.close()
    else:
        out.flush()
    if save is not None:
        det.save(save)


def _range(text: Optional[str]) -> Optional[tuple[float, float]]:
    if text is None:
        return None
    from .. import training

    return training.parse_range(text, "csv_range")
