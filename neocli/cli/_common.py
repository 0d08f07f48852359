"""Pieces shared by the commands: the one ``--threads`` handler, the one model loader,
the one path check, metric formatting and the progress bar.

The training code and tqdm are imported where they are used, so that ``neocli detect``
(which needs only :func:`stopped_exit`) starts without them."""
from __future__ import annotations

import os
import signal
import sys
from typing import Any, Optional

import typer

from .. import Hierarchy, aogmaneo, ohr, set_num_threads
from ..errors import NeoError
from .app import CliError, UsageError, echo_err

def apply_threads(threads: int | None) -> None:
    """The one ``--threads`` handler (Typer has already checked N >= 1)."""
    if threads is not None:
        set_num_threads(threads)


def load_header(path: str) -> dict[str, Any]:
    """Read and validate the header of the model file at ``path`` (arrays are not read).

    A directory gets its own message (``open`` on a directory reports a confusing
    "Is a directory"/"Permission denied" depending on the platform).
    """
    if path == "-":  # a model piped in: `neocli train ... -o - | neocli inspect -`
        return ohr.decode_header(sys.stdin.buffer.read())
    if os.path.isdir(path):
        raise CliError(f"'{path}' is a directory, not a model file")
    if aogmaneo.is_aogmaneo_file(path):
        return aogmaneo.read_header(path)  # the whole file, validated; shown marked as pyaogmaneo's
    return ohr.read_header(path)


def load_hierarchy(path: str) -> tuple[Hierarchy, dict[str, Any]]:
    """Any hierarchy file (all array CRCs and its structure checked) with its header."""
    header = load_header(path)  # fails fast, before reading a large file of the wrong kind
    try:
        h = Hierarchy(file_name=path)
    except NeoError as e:
        text = str(e)
        raise CliError(text if f"'{path}'" in text else f"'{path}': {text}") from None
    return h, header


def load_model(path: str) -> "training.TrainedModel":
    """A sequence model with its codec and header (``training.load_model``)."""
    from .. import training

    refuse_reference(path)
    return training.load_model(path)


def refuse_reference(path: str) -> None:
    """A pyaogmaneo file where a neocli model with a codec or agent record is needed: say how
    to import it instead of a confusing format error."""
    if path != "-" and aogmaneo.is_aogmaneo_file(path):
        from .migrate import reference_hint

        raise CliError(reference_hint(path))


def check_paths(inputs: list[tuple[str, str]] = (), outputs: list[str | None] = ()) -> None:
    """The one path check, before any work: ``inputs`` are ``(path, what)`` pairs that must be
    readable files (``-`` is stdin, which at most one of them may be), ``outputs`` paths that
    can be written (None is skipped)."""
    from ..sources import check_input, check_output

    if sum(1 for p, _ in inputs if p == "-") > 1:
        raise UsageError("'-' (stdin) can be given only once: " + " and ".join(w for p, w in inputs if p == "-")
                         + " cannot both come from stdin")
    for p, what in inputs:
        if p is not None and p != "-":
            check_input(p, what)
    for p in outputs:
        if p is not None and p != "-":  # "-" is stdout where a command allows it
            check_output(p)


def fmt_metrics(s: dict[str, Any]) -> str:
    """A one-line human rendering of a metrics dict."""
    acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.4f}"
    bps = "n/a" if s["bits_per_symbol"] is None else f"{s['bits_per_symbol']:.3f}"
    sps = "n/a" if s["symbols_per_s"] is None else f"{s['symbols_per_s']:.0f}"
    extra = ""
    if s.get("perplexity") is not None:
        extra += f"  perplexity {s['perplexity']:.2f}"
    if s.get("bits_per_byte") is not None:
        extra += f"  bits/byte {s['bits_per_byte']:.3f}"
    counts = "".join(f", {s[k]} {k.replace('_', ' ')}" for k in ("unknown", "skipped_rows", "missing_cells")
                     if s.get(k))
    return f"accuracy {acc}  bits/symbol {bps}{extra}  symbols/s {sps}  ({s['symbols']} symbols{counts})"


class ProgressBar:
    """A ``training.Progress`` callback drawing one tqdm bar per epoch on stderr and, unless
    quiet, a metrics line when an epoch ends."""

    def __init__(self, quiet: bool, desc: str = "epoch", lines: bool = True) -> None:
        self.quiet, self.desc, self.lines = quiet, desc, lines
        self.bar: Any = None
        self.epoch = 0

    def __call__(self, p: "training.Progress") -> None:
        if p.validation is not None:
            v = p.validation
            if self.lines and not self.quiet:
                bps = "n/a" if v["bits_per_symbol"] is None else f"{v['bits_per_symbol']:.3f}"
                echo_err(f"validation (epoch {v['epoch']}, {v['steps']} steps): bits/symbol {bps}")
            return
        if self.bar is None or p.epoch != self.epoch:
            self.close()
            self.epoch = p.epoch
            label = f"{self.desc} {p.epoch}/{p.epochs}" if p.epochs > 1 or self.desc == "epoch" else self.desc
            from tqdm import tqdm

            self.bar = tqdm(desc=label, unit="sym", file=sys.stderr, disable=True if self.quiet else None,
                            mininterval=0.5, leave=False, initial=p.symbols, total=p.total)
        self.bar.update(p.symbols - self.bar.n)
        if p.metrics is not None:
            self.close()
            if self.lines and not self.quiet:
                echo_err(f"epoch {p.epoch}/{p.epochs}: {fmt_metrics(p.metrics)}")

    def close(self) -> None:
        """Close the current bar (also after an error)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def stopped_exit(e: KeyboardInterrupt, save: Optional[str], what: str) -> typer.Exit:
    """The exit after a stop signal, once the output is closed and ``save`` written:
    128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
    signum = getattr(e, "signum", signal.SIGINT)
    saved = f"; {what} saved to '{save}'" if save else ""
    echo_err(f"interrupted ({signal.Signals(signum).name}){saved}")
    return typer.Exit(128 + int(signum))
