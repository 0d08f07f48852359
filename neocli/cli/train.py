"""``neocli train``: parse the options, build a ``training.TrainOptions``, call ``training.train``."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from .. import presets, training
from ._common import ProgressBar, check_paths, refuse_reference
from ._options import (ARCH, CKPT, DATA, RUN, Bins, ByteLayout, CheckpointDir, Codec, CsvColumns, CsvHeader,
                       CsvRange, Dendrites, DownRadius, Epochs, Hidden, JsonSummary, Keep, Layers, MaxVocab, Meta,
                       RecRadius, ResetOn, Seed, Threads, UpRadius, build_options)
from .app import UsageError, app, carry_on_interrupt, command, echo_err, whole_output

def _report(result: training.TrainingResult, quiet: bool, json_out: bool) -> None:
    h, t = result.model, result.record
    if not quiet:
        where = "the model to stdout" if result.output == "-" else f"'{result.output}'"
        stop, run = t.get("stopped_early"), t.get("run")
        if isinstance(stop, dict):
            echo_err(f"stopped early at step {stop.get('steps')} (epoch {stop.get('epoch')} of {t.get('epochs')}): "
                     f"{stop.get('validations_without_improvement')} validations without improvement")
        if isinstance(run, dict) and isinstance(t.get("best"), dict):
            best = t["best"].get("bits_per_symbol")
            bps = f"{best:.3f}" if isinstance(best, (int, float)) else "n/a"
            echo_err(f"saved {where} ({h.get_weights_size()} bytes of weights): the best model, step {t['steps']}, "
                     f"validation bits/symbol {bps} (training ran to step {run.get('steps')})")
        else:
            echo_err(f"saved {where} ({h.get_weights_size()} bytes of weights, {t['steps']} steps)")
    counts = {k: v for k, v in (t["metrics"][-1] if t["metrics"] else {}).items()
              if k in ("unknown", "skipped_rows", "missing_cells") and v}
    if counts and not quiet:
        echo_err("data: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
    if json_out:
        print(json.dumps({"model": result.output, "epochs": t["epoch"], "steps": t["steps"], "metrics": t["metrics"],
                          "sizes": {"state": h.get_state_size(), "weights": h.get_weights_size(),
                                    "total": h.get_size()},
                          "codec": result.codec.describe(), "seed": t["seed"],
                          **{k: t[k] for k in ("best", "stopped_early", "run") if k in t}}, indent=2))


# Measured by benchmarks/bench_distributed.py (README "Scaling out"); \b keeps click from rewrapping.
DATA_PARALLEL_EPILOG = """\b
Data-parallel training (--workers K) is experimental. Held-out bits/symbol, 40 kB of
the bundled novel, 1 layer, on a shared 2-core VM:
  sequential 3.926 (7.5 s)   one 20 kB shard alone 4.117
  K=2, --sync-every 2000: 3.977 (14.2 s)   5000: 3.992 (12.3 s)   10000: 4.180
  K=4, --sync-every 1000: 4.052 (24.0 s)   5000: 4.486
No speed-up there: each sync costs a Dask round trip (about 0.5 s)."""


def _print_dry_run(d: dict, json_out: bool) -> None:
    if json_out:
        print(json.dumps(d, indent=2))
        return
    sps = d["expected_symbols_per_s"]
    secs = d["expected_seconds"]
    print(f"codec           {d['codec']}")
    print(f"layers          {', '.join('x'.join(map(str, s)) for s in d['layers'])}  radii {d['radii']}")
    print(f"params          {d['params']}")
    print(f"weights         {d['weights_bytes']:,} bytes   state {d['state_bytes']:,} bytes")
    print(f"memory          about {d['memory_estimate_bytes'] / 2**20:.1f} MiB")
    print(f"expected speed  {sps:,.0f} symbols/s (measured: {d['probe_steps']:,} steps in {d['probe_seconds']:.1f} s)"
          if sps else "expected speed  n/a")
    if secs:
        print(f"expected time   {secs:,.0f} s for {d['epochs']} epoch(s) of {d['data_bytes']:,} bytes")


@app.command("train", epilog=DATA_PARALLEL_EPILOG)
@command
def train(
    output: Annotated[str, typer.Option("--output", "-o", metavar="PATH", help="Model file to write (.ohr); - writes it to stdout, a FIFO receives it as a stream, a symlink is written through.", show_default=False, rich_help_panel=RUN)],
    data: Annotated[Optional[list[str]], typer.Argument(metavar="DATA...", help="Data files, or - for stdin.", show_default=False)] = None,
    codec: Codec = None,
    byte_layout: ByteLayout = None,
    bins: Bins = None,
    max_vocab: MaxVocab = None,
    csv_range: CsvRange = None,
    csv_header: CsvHeader = None,
    csv_columns: CsvColumns = None,
    csv_delimiter: Annotated[Optional[str], typer.Option("--csv-delimiter", metavar="CHAR", help="csv codec: the delimiter, one character, tab, or auto (default ,).", rich_help_panel=DATA)] = None,
    csv_missing: Annotated[Optional[str], typer.Option("--csv-missing", metavar="POLICY", help="csv codec: missing values (\"\", NA, NaN, null): skip the row (default), cell (a reserved cell), or error.", rich_help_panel=DATA)] = None,
    encoding: Annotated[Optional[str], typer.Option("--encoding", metavar="NAME", help="chars/words/csv codec: text encoding of the data (default utf-8).", rich_help_panel=DATA)] = None,
    no_decompress: Annotated[bool, typer.Option("--no-decompress", help="Read .gz/.bz2/.xz/.zst files as they are (default: decompress by extension).", rich_help_panel=DATA)] = False,
    reset_on: ResetOn = None,
    epochs: Epochs = 1,
    layers: Layers = None,
    hidden: Hidden = None,
    up_radius: UpRadius = None,
    down_radius: DownRadius = None,
    recurrent_radius: RecRadius = None,
    dendrites: Dendrites = None,
    seed: Seed = None,
    threads: Threads = None,
    meta: Meta = None,
    checkpoint_dir: CheckpointDir = None,
    checkpoint_every: Annotated[Optional[str], typer.Option("--checkpoint-every", metavar="N|Ne", help="Checkpoint every N steps, or every Ne epochs (e.g. 2e).", rich_help_panel=CKPT)] = None,
    keep: Keep = None,
    resume: Annotated[Optional[str], typer.Option("--resume", metavar="PATH", help="Continue a model or checkpoint: state, weights, RNG, epoch and position.", rich_help_panel=CKPT)] = None,
    init: Annotated[Optional[str], typer.Option("--init", metavar="PATH", help="Start from a model's weights only (fresh state).", rich_help_panel=CKPT)] = None,
    json_out: JsonSummary = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or per-epoch lines.", rich_help_panel=RUN)] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", min=1, metavar="K", help="EXPERIMENTAL data-parallel training: K shards of DATA trained in parallel on a local Dask cluster, their weights averaged every --sync-every steps (measured quality and speed: README 'Scaling out').", rich_help_panel="Data-parallel (experimental)")] = None,
    sync_every: Annotated[Optional[int], typer.Option("--sync-every", min=1, metavar="N", help="With --workers: steps each shard learns between weight averages (default 5000).", rich_help_panel="Data-parallel (experimental)")] = None,
    merge: Annotated[Optional[str], typer.Option("--merge", metavar="HOW", help="With --workers: average (round half to even) or stochastic (stochastic rounding seeded by --seed).", rich_help_panel="Data-parallel (experimental)")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDR", help="With --workers K: run the K shards on this Dask cluster instead of a local one.", rich_help_panel="Data-parallel (experimental)")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", "-P", metavar="NAME=VALUE", help="A learning parameter, e.g. layers.encoder.lr=0.3 or ios.decoder.scale=4 (repeatable; stored in the model). Names: " + ", ".join(presets.PARAM_NAMES) + ".", rich_help_panel=ARCH)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the architecture, weights size, memory estimate and expected symbols/s, then exit (it builds the model to time it, after the same memory check as training: --force to go beyond).", rich_help_panel=RUN)] = False,
    valid: Annotated[Optional[list[str]], typer.Option("--valid", metavar="PATH", help="Held-out data scored after every epoch (learning off); -o holds the best model (repeatable).", rich_help_panel=RUN)] = None,
    valid_every: Annotated[int, typer.Option("--valid-every", metavar="N", help="With --valid: also score it every N steps.", rich_help_panel=RUN)] = 0,
    patience: Annotated[Optional[int], typer.Option("--patience", metavar="K", help="With --valid: stop after K validations without a new best.", rich_help_panel=RUN)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an interrupted run at -o, and build a model larger than the memory available.", rich_help_panel=RUN)] = False,
) -> None:
    """Train a model on DATA (files or - for stdin) and write it to -o MODEL.ohr."""
    opts = build_options(codec=codec, byte_layout=byte_layout, bins=bins, max_vocab=max_vocab, csv_range=csv_range,
                         csv_header=csv_header, csv_columns=csv_columns, csv_delimiter=csv_delimiter,
                         csv_missing=csv_missing, encoding=encoding, layers=layers, hidden=hidden,
                         up_radius=up_radius, down_radius=down_radius, recurrent_radius=recurrent_radius,
                         dendrites=dendrites, epochs=epochs, reset_on=reset_on, checkpoint_dir=checkpoint_dir,
                         checkpoint_every=checkpoint_every, keep=keep, seed=seed, threads=threads, meta=meta,
                         params=param, valid=valid, valid_every=valid_every, patience=patience)
    if (workers, sync_every, merge, scheduler) != (None, None, None, None):
        from .distributed import check_data_parallel, train_data_parallel  # neocli/cli/distributed.py

        check_data_parallel(opts, {"--resume": resume, "--init": init, "--dry-run": dry_run, "--force": force,
                                   "-o -": output == "-"})
        return train_data_parallel(data or [], output, opts, workers=workers, sync_every=sync_every, merge=merge,
                                   scheduler=scheduler, quiet=quiet, json_out=json_out,
                                   decompress=not no_decompress)
    if not data:
        raise UsageError("missing DATA: --resume continues on the same data, so give it again (the model records "
                         "its sha256 and checks it)" if resume else "missing DATA: give data files (or - for stdin)")
    if resume and init:
        raise UsageError("--resume and --init cannot be used together")
    for ref in (resume, init):
        if ref:
            refuse_reference(ref)
    if json_out and output == "-":
        raise UsageError("--json and -o - both write to stdout: give -o a file")
    check_paths(inputs=[(resume, "model"), (init, "model"), *((d, "data") for d in data),
                        *((v, "validation data") for v in valid or [])], outputs=[])
    if dry_run:
        return _print_dry_run(training.dry_run(data, opts, force=force), json_out)
    # What a resume command must repeat; the model pins the codec, architecture, seed, reset
    # and params (a resume refuses other values), so those are left out.
    carried = [("--epochs", epochs if epochs != 1 else None), ("--checkpoint-dir", checkpoint_dir),
               ("--checkpoint-every", checkpoint_every), ("--keep", keep), ("--valid", valid),
               ("--valid-every", valid_every), ("--patience", patience), ("--threads", threads),
               ("--no-decompress", no_decompress), ("--quiet", quiet), ("--json", json_out)]
    with ProgressBar(quiet) as bar, whole_output(output), carry_on_interrupt(carried):
        result = training.train(data, opts, output=output, progress=bar, resume=resume, init=init, force=force,
                                 decompress=not no_decompress)
    _report(result, quiet, json_out)
