"""``neocli eval``: next-symbol accuracy and bits/symbol on held-out data, learning off."""
from __future__ import annotations

import json
import time
from typing import Annotated, Optional

import typer

from .. import set_num_threads
from ..codecs import RESET
from ._common import Score, fmt_metrics, load_model
from ._data import open_sources
from .app import CliError, UsageError, app, command


@app.command("eval")
@command
def evaluate(
    model: Annotated[str, typer.Argument(help="Model file (.ohr).", show_default=False)],
    data: Annotated[Optional[list[str]], typer.Argument(help="Data files, or - for stdin (none with --env).", show_default=False)] = None,
    reset_on: Annotated[str, typer.Option("--reset-on", help="clear_state() at: file | blank | none.")] = "file",
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", help="Maximum threads.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON to stdout.")] = False,
    env: Annotated[Optional[str], typer.Option("--env", help="Evaluate an agent in this gymnasium environment: mean/min/max return.")] = None,
    episodes: Annotated[Optional[int], typer.Option("--episodes", help="--env: episodes to play (default 20).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", "-s", help="--env: seed of the first env.reset (default 0).")] = None,
    greedy: Annotated[bool, typer.Option("--greedy", help="--env: take the most probable action instead of sampling.")] = False,
) -> None:
    """Score MODEL on DATA with learning off: accuracy and bits per symbol (decisions D14); with --env, its returns."""
    if env is not None:
        from .rl import eval_env  # reinforcement learning lives in cli/rl.py

        return eval_env(dict(locals()))
    from .rl import reject_rl_options

    reject_rl_options({"episodes": episodes, "seed": seed, "greedy": greedy}, "eval")
    if not data:
        raise UsageError("missing DATA: give data files (or - for stdin), or --env ID for an agent")
    if reset_on not in ("file", "blank", "none"):
        raise UsageError(f"--reset-on must be file, blank or none, got {reset_on!r}")
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        set_num_threads(threads)
    h, header, codec = load_model(model)
    sources = open_sources(data, need_multiple_passes=False)
    score = Score()
    start = time.perf_counter()
    fresh = True
    try:
        for src in sources.items:
            if reset_on != "none":
                h.clear_state()
                fresh = True
            with src.open() as stream:
                for sym in codec.symbols(stream, reset_on == "blank", where=src.name):
                    if sym is RESET:
                        h.clear_state()
                        fresh = True
                        continue
                    if not _known(codec, sym):
                        raise CliError(f"{src.name}: symbol {sym!r} is not in the model's vocabulary")
                    cis = codec.encode(sym)
                    if not fresh:
                        score.add(h, codec, cis)
                    h.step([cis], False)
                    fresh = False
                    score.symbols += 1
    finally:
        sources.close()
    score.seconds = time.perf_counter() - start
    if score.symbols == 0:
        raise CliError("the data is empty: nothing to evaluate")
    summary = score.summary()
    if json_out:
        print(json.dumps({"model": model, "data": [s.name for s in sources.items], **summary}, indent=2))
    else:
        print(fmt_metrics(summary))


def _known(codec, sym) -> bool:
    try:
        codec.check_known(sym, "data")
    except Exception:  # noqa: BLE001
        return False
    return True
