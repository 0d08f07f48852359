"""The option declarations ``neocli train`` shares with ``train-many`` and ``sweep`` (one
declaration, one help text, one default), the cluster options of the commands that can run
on Dask, and :func:`build_options`, which turns the flags into a ``training.TrainOptions``.

Declarations only: importing this module loads no library code (``neocli detect`` and
``neocli score`` use the cluster options and start faster without the training code)."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import NeoError
from .app import UsageError

DATA = "Data and codec"
ARCH = "Architecture"
RUN = "Run"
CKPT = "Checkpoints"
CLUSTER = "Cluster"

# The cluster options of train-many, sweep, score and detect.
Workers = Annotated[Optional[int], typer.Option("--workers", "-w", metavar="N", min=1, help="Start a local Dask cluster of N single-threaded processes.", rich_help_panel=CLUSTER)]
Scheduler = Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDR", help="Use a running Dask cluster, e.g. tcp://10.0.0.5:8786.", rich_help_panel=CLUSTER)]


# Flags shared with train-many and sweep (neocli/cli/distributed.py imports them).
Codec = Annotated[Optional[str], typer.Option("--codec", "-c", metavar="KIND", help="bytes | chars | words | tokens | csv (default bytes).", rich_help_panel=DATA)]
ByteLayout = Annotated[Optional[str], typer.Option("--byte-layout", metavar="LAYOUT", help="bytes codec: byte (one 256-cell column, the default) or nibbles (two 16-cell columns).", rich_help_panel=DATA)]
Bins = Annotated[Optional[int], typer.Option("--bins", metavar="N", help="csv codec: cells (bins) per numeric column.", rich_help_panel=DATA)]
MaxVocab = Annotated[Optional[int], typer.Option("--max-vocab", metavar="N", help="chars/words codec: largest vocabulary kept.", rich_help_panel=DATA)]
CsvRange = Annotated[Optional[str], typer.Option("--csv-range", metavar="LO:HI", help="csv codec: value range for every column (default: learned from the data).", rich_help_panel=DATA)]
CsvHeader = Annotated[Optional[bool], typer.Option("--csv-header/--no-csv-header", help="csv codec: the first row is (not) a header (default: detected).", rich_help_panel=DATA)]
CsvColumns = Annotated[Optional[str], typer.Option("--csv-columns", metavar="COLS", help="csv codec: the columns to model, by header name or 1-based number, comma-separated (default: all).", rich_help_panel=DATA)]
ResetOn = Annotated[Optional[str], typer.Option("--reset-on", metavar="WHEN", help="clear_state() at: file (default) | blank (blank lines) | none.", rich_help_panel=DATA, show_default=False)]
Epochs = Annotated[int, typer.Option("--epochs", "-e", metavar="N", help="Passes over the data.", rich_help_panel=RUN)]
Layers = Annotated[Optional[int], typer.Option("--layers", "-l", metavar="N", help="Number of layers (default 1).", rich_help_panel=ARCH)]
Hidden = Annotated[Optional[str], typer.Option("--hidden", metavar="WxHxZ", help="Layer size WxHxZ, or one size per layer: A,B,C (default 8x8x32).", rich_help_panel=ARCH)]
UpRadius = Annotated[Optional[int], typer.Option("--up-radius", metavar="N", help="Encoder field radius (default 2).", rich_help_panel=ARCH)]
DownRadius = Annotated[Optional[int], typer.Option("--down-radius", metavar="N", help="Decoder field radius (default 4: the 8x8 layer's whole width).", rich_help_panel=ARCH)]
RecRadius = Annotated[Optional[int], typer.Option("--recurrent-radius", metavar="N", help="Recurrent radius; -1 disables recurrence (default 0).", rich_help_panel=ARCH)]
Dendrites = Annotated[Optional[int], typer.Option("--dendrites", metavar="N", help="Dendrites per decoder cell (default 4).", rich_help_panel=ARCH)]
Seed = Annotated[int, typer.Option("--seed", "-s", metavar="N", help="Seed of the initial weights (0 to 2**64-1).", rich_help_panel=RUN)]
Meta = Annotated[Optional[list[str]], typer.Option("--meta", "-m", metavar="KEY=VALUE", help="Stored in the model header (repeatable).", rich_help_panel=RUN)]


def build_options(*, codec: str | None = None, byte_layout: str | None = None, bins: int | None = None,
                  max_vocab: int | None = None, csv_range: str | None = None, csv_header: bool | None = None,
                  csv_columns: str | None = None, csv_delimiter: str | None = None,
                  csv_missing: str | None = None, encoding: str | None = None, layers: int | None = None, hidden: str | None = None,
                  up_radius: int | None = None, down_radius: int | None = None,
                  recurrent_radius: int | None = None, dendrites: int | None = None, epochs: int = 1,
                  reset_on: str | None = None, checkpoint_dir: str | None = None, checkpoint_every: str | None = None,
                  keep: int | None = None, seed: int = 0, threads: int | None = None,
                  meta: list[str] | None = None, params: list[str] | None = None,
                  valid: list[str] | None = None, valid_every: int = 0,
                  patience: int | None = None) -> "training.TrainOptions":
    """The option record of ``neocli train``'s flags (validated by the library)."""
    from .. import presets, training

    every_steps, every_epochs = training.parse_every(checkpoint_every)
    try:
        parsed = dict(presets.parse_param(p) for p in params or [])
    except NeoError as e:
        raise UsageError(f"--param: {e}") from None
    return training.TrainOptions(
        codec=training.CodecOptions(kind=codec, byte_layout=byte_layout, bins=bins, max_vocab=max_vocab,
                                    csv_columns=csv_columns, csv_range=csv_range, csv_header=csv_header,
                                    csv_delimiter=csv_delimiter, csv_missing=csv_missing, encoding=encoding),
        architecture=training.Architecture(layers=layers, hidden=hidden, up_radius=up_radius,
                                           down_radius=down_radius, recurrent_radius=recurrent_radius,
                                           dendrites=dendrites),
        schedule=training.Schedule(epochs=epochs, reset_on=reset_on),
        checkpoints=training.CheckpointPolicy(directory=checkpoint_dir, every_steps=every_steps,
                                              every_epochs=every_epochs, keep=keep),
        seed=seed, threads=threads, meta=training.parse_meta(meta), params=parsed,
        valid=tuple(valid) if valid else None, valid_every=valid_every, patience=patience)
