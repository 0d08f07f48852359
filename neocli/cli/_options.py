"""The option declarations ``neocli train`` shares with ``train-many``, ``sweep`` and ``rl train``
(one declaration, one help text, one default; ``rl train`` keeps its own architecture defaults
through the ``*_option`` factories), the cluster options of the commands that can run on
Dask, and :func:`build_options`, which turns the flags into a ``training.TrainOptions``.

Declarations only: importing this module loads no library code (``neocli detect`` and
``neocli score`` use the cluster options and start faster without the training code)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import NeoError
from .app import UsageError

if TYPE_CHECKING:
    from .. import training

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


# The architecture flags mean the same for sequence models and RL agents; only the defaults
# differ (agents keep 2 x 5x5x32 with radius 2), so each command names its own default.
def layers_option(default: int) -> Any:
    """``--layers`` with ``default`` in its help."""
    return Annotated[Optional[int], typer.Option("--layers", "-l", metavar="N", help=f"Number of layers (default {default}).", rich_help_panel=ARCH)]


def hidden_option(default: str) -> Any:
    """``--hidden`` with ``default`` in its help."""
    return Annotated[Optional[str], typer.Option("--hidden", metavar="WxHxZ", help=f"Layer size WxHxZ, or one size per layer: A,B,C (default {default}).", rich_help_panel=ARCH)]


def down_radius_option(default: str) -> Any:
    """``--down-radius`` with ``default`` in its help."""
    return Annotated[Optional[int], typer.Option("--down-radius", metavar="N", help=f"Decoder field radius (default {default}).", rich_help_panel=ARCH)]


Layers = layers_option(1)
Hidden = hidden_option("8x8x32")
UpRadius = Annotated[Optional[int], typer.Option("--up-radius", metavar="N", help="Encoder field radius (default 2).", rich_help_panel=ARCH)]
DownRadius = down_radius_option("4: the 8x8 layer's whole width")
RecRadius = Annotated[Optional[int], typer.Option("--recurrent-radius", metavar="N", help="Recurrent radius; -1 disables recurrence (default 0).", rich_help_panel=ARCH)]
Dendrites = Annotated[Optional[int], typer.Option("--dendrites", metavar="N", help="Dendrites per decoder cell (default 4).", rich_help_panel=ARCH)]
# None when not given, so that --resume can tell "--seed 0" from nothing (and compare it).
Seed = Annotated[Optional[int], typer.Option("--seed", "-s", metavar="N", help="Seed of the initial weights (0 to 2**64-1; default 0, or the model's with --resume, which a given seed must equal).", rich_help_panel=RUN, show_default=False)]
Meta = Annotated[Optional[list[str]], typer.Option("--meta", "-m", metavar="KEY=VALUE", help="Stored in the model header (repeatable).", rich_help_panel=RUN)]
Threads = Annotated[Optional[int], typer.Option("--threads", "-t", min=1, metavar="N", help="Maximum threads (default: OMP_NUM_THREADS or all cores).", rich_help_panel=RUN)]
CheckpointDir = Annotated[Optional[str], typer.Option("--checkpoint-dir", metavar="PATH", help="Directory for checkpoints.", rich_help_panel=CKPT)]
Keep = Annotated[Optional[int], typer.Option("--keep", metavar="N", help="Keep only the N newest checkpoints.", rich_help_panel=CKPT)]
JsonSummary = Annotated[bool, typer.Option("--json", help="Print a JSON summary to stdout.", rich_help_panel=RUN)]


def build_options(*, codec: str | None = None, byte_layout: str | None = None, bins: int | None = None,
                  max_vocab: int | None = None, csv_range: str | None = None, csv_header: bool | None = None,
                  csv_columns: str | None = None, csv_delimiter: str | None = None,
                  csv_missing: str | None = None, encoding: str | None = None, layers: int | None = None, hidden: str | None = None,
                  up_radius: int | None = None, down_radius: int | None = None,
                  recurrent_radius: int | None = None, dendrites: int | None = None, epochs: int = 1,
                  reset_on: str | None = None, checkpoint_dir: str | None = None, checkpoint_every: str | None = None,
                  keep: int | None = None, seed: int | None = None, threads: int | None = None,
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
