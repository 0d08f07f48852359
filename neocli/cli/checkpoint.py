"""``neocli checkpoint ...``: list, verify, prune and transform model files.

Every command that writes a model or a buffer writes it atomically (a temporary
file in the same directory, renamed over the target), so an existing output is
replaced only after the new one is complete, and an output may be the input
itself. Models are rewritten with the header keys that describe how they were
made (``codec``, ``training``, ``user`` and any other non-structural key).
"""
from __future__ import annotations

import enum
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

import typer

from .. import Hierarchy, ImageEncoder, MergeMode, aogmaneo, checkpoints, ohr
from ..codecs import encoding_fields, same_encoding
from ..hierarchy import rng_state_from_seed
from ..errors import NeoError
from .app import CliError, app, command, echo_err, whole_output
from ._common import check_paths, load_header, load_hierarchy
from .inspect import human_bytes, last_metrics, training_of

__all__ = [
    "checkpoint_app",
    "list_checkpoints",
    "verify",
    "prune",
    "strip_state",
    "export_state",
    "export_weights",
    "import_state",
    "import_weights",
    "merge",
    "carry_meta",
    "scan_dir",
    "Entry",
]

checkpoint_app = typer.Typer(
    no_args_is_help=True,
    help="List, verify, prune, strip, export/import state or weights of, and merge model files.",
)
app.add_typer(checkpoint_app, name="checkpoint")

# Header keys that ``save_to_file`` (or the .ohr writer) regenerates; every other
# key describes how the model was made and is carried over to a rewritten file.
_REGENERATED = frozenset(("format", "format_version", "neocli_version", "created_utc", "sections",
                          "architecture", "params", "sizes"))


# --------------------------------------------------------------------------
# helpers


def carry_meta(header: dict[str, Any]) -> dict[str, Any]:
    """The header keys to keep when a model is rewritten (``codec``, ``training``, ``user``, ...)."""
    return {k: v for k, v in header.items() if k not in _REGENERATED}


def _message(path: str, exc: BaseException) -> str:
    """``exc`` as text without a leading "cannot read '<path>': " (the caller names the file)."""
    if isinstance(exc, OSError) and not isinstance(exc, NeoError):
        return exc.strerror or str(exc)
    text = str(exc)
    prefix = f"cannot read '{path}': "
    return text[len(prefix):] if text.startswith(prefix) else text


def _write_bytes(out: str, data: Any) -> None:
    """Write raw bytes to ``out`` atomically, or to stdout (binary) when ``out`` is ``-``."""
    view = memoryview(data).cast("B")
    if out == "-":
        if sys.stdout.isatty():
            raise CliError("refusing to write binary data to a terminal: redirect stdout or use -o FILE")
        with whole_output("-", "data"):
            sys.stdout.buffer.write(view)
            sys.stdout.buffer.flush()
        return
    ohr.atomic_write(out, view)


def _read_bytes(src: str) -> bytes:
    """All bytes of the file ``src``, or of stdin when ``src`` is ``-``."""
    if src == "-":
        return sys.stdin.buffer.read()
    if os.path.isdir(src):
        raise CliError(f"'{src}' is a directory, not a buffer file")
    with open(src, "rb") as f:
        return f.read()


def _has_state(header: dict[str, Any]) -> bool:
    return "state" in header.get("sections", {})


@dataclass
class Entry:
    """One ``*.ohr`` file of a directory: its header, or why it could not be read."""

    path: str
    name: str
    mtime: float
    size: int
    header: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch(self) -> Any:
        """Epochs completed, from the header (``None`` when unknown)."""
        return self.training.get("epoch")

    @property
    def shown_epoch(self) -> int | None:
        """The 1-based epoch shown to users: the one a resume continues, as in the file name."""
        return checkpoints.epoch_of(self.training)

    @property
    def episode(self) -> Any:
        """Episodes completed by an RL agent, from the header (``None`` when unknown)."""
        return self.training.get("episode")

    @property
    def steps(self) -> Any:
        """Total steps, from the header (``None`` when unknown)."""
        return self.training.get("steps")

    def sort_key(self) -> tuple:
        """Oldest first: (epoch or episode, steps, mtime); unknown counters sort before known ones."""
        def num(x: Any) -> float:
            return float(x) if type(x) in (int, float) else -1.0
        progress = self.epoch if self.epoch is not None else self.episode
        return (num(progress), num(self.steps), self.mtime, self.name)


def scan_dir(directory: str) -> list[Entry]:
    """Every ``*.ohr`` file directly in ``directory``, oldest first (see :meth:`Entry.sort_key`).

    Files whose header cannot be read come last, sorted by name, with ``error`` set.
    """
    if not os.path.exists(directory):
        raise CliError(f"directory '{directory}' does not exist")
    if not os.path.isdir(directory):
        raise CliError(f"'{directory}' is not a directory")
    entries = []
    with os.scandir(directory) as it:
        for d in it:
            if not d.name.endswith(".ohr"):
                continue
            path = os.path.join(directory, d.name)
            try:
                st = d.stat()
            except OSError as e:
                entries.append(Entry(path, d.name, 0.0, 0, error=_message(path, e)))
                continue
            entry = Entry(path, d.name, st.st_mtime, st.st_size)
            if d.is_dir():
                entry.error = "is a directory"
            else:
                try:
                    entry.header = ohr.read_header(path)
                    entry.training = training_of(entry.header)
                except (NeoError, OSError) as e:
                    entry.error = _message(path, e)
            entries.append(entry)
    good = sorted((e for e in entries if e.error is None), key=Entry.sort_key)
    bad = sorted((e for e in entries if e.error is not None), key=lambda e: e.name)
    return good + bad


def _num(x: Any, spec: str) -> str:
    return format(x, spec) if type(x) in (int, float) else "-"


def _table(rows: list[list[str]], right: set[int]) -> str:
    """Align ``rows`` in columns; a row with fewer cells (an error row) spills its last cell."""
    ncols = len(rows[0])
    widths = [0] * ncols
    for r in rows:
        full = len(r) == ncols
        for i, c in enumerate(r):
            if full or i < len(r) - 1:
                widths[i] = max(widths[i], len(c))
    lines = []
    for r in rows:
        cells = [(c.rjust(widths[i]) if i in right and len(r) == ncols else c.ljust(widths[i]))
                 for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# --------------------------------------------------------------------------
# commands


def _json_item(e: Entry) -> dict[str, Any]:
    """One file of ``checkpoint list --json``."""
    item: dict[str, Any] = {"file": e.path, "bytes": e.size, "mtime": e.mtime}
    if e.error is not None:
        return {**item, "error": e.error}
    m = last_metrics(e.training)
    return {
        **item,
        # "epoch" keeps its old meaning (epochs completed) for scripts; the table's 1-based
        # EPOCH column is "resume_epoch".
        "epoch": e.epoch, "resume_epoch": e.shown_epoch, "epochs_completed": e.epoch,
        "epochs": e.training.get("epochs"),
        "steps": e.steps, **({"episode": e.episode} if e.episode is not None else {}),
        "accuracy": m.get("accuracy"), "bits_per_symbol": m.get("bits_per_symbol"),
        "complete": e.training.get("complete"), "state": _has_state(e.header or {}),
    }


@checkpoint_app.command("list")
@command
def list_checkpoints(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="Directory holding .ohr files.", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", "-j", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """List the models in DIR (not recursive), oldest first, with epoch, steps and last metrics.

    EPOCH is the epoch a resume continues (a finished model's last), 1-based as in checkpoint
    names and 'inspect'; RL agents show their episode count there as 'ep N'.

    Files that cannot be read are listed with their error; the exit code stays 0.
    """
    entries = scan_dir(directory)
    if not entries:
        echo_err(f"no .ohr files in '{directory}'")
        if json_out:
            typer.echo("[]")
        return
    if json_out:
        typer.echo(json.dumps([_json_item(e) for e in entries], indent=2, ensure_ascii=False))
        return
    rows = [["FILE", "EPOCH", "STEPS", "ACCURACY", "BITS/SYM", "COMPLETE", "SIZE"]]
    for e in entries:
        if e.error is not None:
            rows.append([e.name, f"error: {e.error}"])
            continue
        m = last_metrics(e.training)
        complete = e.training.get("complete")
        rows.append([
            e.name,
            _num(e.shown_epoch, "d") if e.epoch is not None or type(e.episode) is not int else f"ep {e.episode}",
            _num(e.steps, ",d") if type(e.steps) is int else "-",
            _num(m.get("accuracy"), ".4f"),
            _num(m.get("bits_per_symbol"), ".3f"),
            "yes" if complete is True else ("no" if complete is False else "-"),
            human_bytes(e.size),
        ])
    typer.echo(_table(rows, right={1, 2, 3, 4, 6}))


@checkpoint_app.command("verify")
@command
def verify(
    files: Annotated[list[str], typer.Argument(metavar="FILE...", help="Model files to verify.", show_default=False)],
) -> None:
    """Check every array CRC of each FILE and load it (a hierarchy or an image encoder: structure check).

    Prints 'OK FILE (N arrays, BYTES)' per good file; each failure is reported on
    stderr and the others are still checked; exit code 1 if any failed.
    """
    failed = 0
    for path in files:
        try:
            if os.path.isdir(path):
                raise CliError("is a directory, not a model file")
            if aogmaneo.is_aogmaneo_file(path):  # no checksums there: a full structural load
                aogmaneo.load_model(path)
                typer.echo(f"OK {path} (pyaogmaneo's format, {os.path.getsize(path):,} bytes)")
                continue
            header, arrays = ohr.read_file(path, verify=True)
            n = sum(len(sec) for sec in arrays.values())
            nbytes = sum(a.nbytes for sec in arrays.values() for a in sec.values())
            del arrays  # free the file's bytes before the model is read again
            if header.get("kind") == "image_encoder":
                ImageEncoder(file_name=path)
            else:
                Hierarchy(file_name=path)
        except MemoryError:
            failed += 1
            echo_err(f"error: {path}: not enough memory to load the model its header describes")
            continue
        except (ValueError, OSError) as e:  # NeoError is a ValueError
            failed += 1
            echo_err(f"error: {path}: {_message(path, e)}")
            continue
        typer.echo(f"OK {path} ({n} arrays, {nbytes:,} bytes)")
    if failed:
        if len(files) > 1:
            echo_err(f"{failed} of {len(files)} files failed verification")
        raise typer.Exit(1)


@checkpoint_app.command("prune")
@command
def prune(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="Directory holding .ohr checkpoints.", show_default=False)],
    keep: Annotated[int, typer.Option("--keep", "-k", min=1, metavar="N", help="How many of the newest incomplete checkpoints of each run to keep (>= 1).", show_default=False)],
    run: Annotated[Optional[str], typer.Option("--run", metavar="RUNID", help="Prune only this run's checkpoints (8 hex digits, as in ckpt-RUNID-...).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Only show what would be deleted.")] = False,
) -> None:
    """Keep the KEEP newest incomplete checkpoints of each run in DIR; delete its older ones.

    Only checkpoint-named files (ckpt-...) whose header says the run is incomplete are
    candidates: finished models, other files, unreadable files (and other runs, with
    --run) are never deleted.
    """
    failed: list[str] = []

    def on_error(path: str, exc: OSError) -> None:
        failed.append(path)
        echo_err(f"error: cannot delete '{path}': {exc.strerror or exc}")

    res = checkpoints.prune(directory, keep, run_id=run, dry_run=dry_run, on_error=on_error)
    for path in res.deleted:
        echo_err(f"{'would delete' if dry_run else 'deleted'} {path}")
    verb = "would keep" if dry_run else "kept"
    echo_err(f"{verb} {len(res.kept)} incomplete checkpoints in '{directory}'; left alone {len(res.ignored)} "
             "other files (finished models, other names, unreadable files)")
    if failed:
        raise typer.Exit(1)


@checkpoint_app.command("strip-state")
@command
def strip_state(
    file: Annotated[str, typer.Argument(metavar="FILE", help="Model file to read.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Model file to write (may be FILE itself).", show_default=False)],
) -> None:
    """Write FILE without its state section (a deployable model that loads with a cleared state).

    Weights, params, RNG position and the codec/training/user metadata are kept.
    """
    check_paths(outputs=[output])
    h, header = load_hierarchy(file)
    h.save_to_file(output, meta=carry_meta(header), include_state=False)
    echo_err(f"wrote '{output}' without state ({human_bytes(os.path.getsize(output))})")


def _export(file: str, output: str, what: str) -> None:
    check_paths(outputs=[output])
    h, header = load_hierarchy(file)
    if what == "state":
        if not _has_state(header):
            echo_err(f"warning: '{file}' has no state section: exporting the cleared state")
        buf = h.serialize_state_to_buffer()
    else:
        buf = h.serialize_weights_to_buffer()
    _write_bytes(output, buf)
    if output != "-":
        echo_err(f"wrote {buf.nbytes:,} bytes of {what} to '{output}'")


@checkpoint_app.command("export-state")
@command
def export_state(
    file: Annotated[str, typer.Argument(metavar="FILE", help="Model file to read.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Raw state file to write, or - for stdout.", show_default=False)],
) -> None:
    """Write the raw state bytes of FILE (what serialize_state_to_buffer returns)."""
    _export(file, output, "state")


@checkpoint_app.command("export-weights")
@command
def export_weights(
    file: Annotated[str, typer.Argument(metavar="FILE", help="Model file to read.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Raw weights file to write, or - for stdout.", show_default=False)],
) -> None:
    """Write the raw weights bytes of FILE (what serialize_weights_to_buffer returns)."""
    _export(file, output, "weights")


def _import(file: str, source: str, output: str, what: str) -> None:
    check_paths(outputs=[output])
    h, header = load_hierarchy(file)
    data = _read_bytes(source)
    shown = "stdin" if source == "-" else f"'{source}'"
    try:
        if what == "state":
            h.set_state_from_buffer(data)
        else:
            h.set_weights_from_buffer(data)
    except NeoError as e:
        raise CliError(f"cannot import {what} from {shown} into '{file}': {e}") from None
    include_state = what == "state" or _has_state(header)
    h.save_to_file(output, meta=carry_meta(header), include_state=include_state)
    echo_err(f"wrote '{output}' with {len(data):,} bytes of {what} from {shown}")


@checkpoint_app.command("import-state")
@command
def import_state(
    file: Annotated[str, typer.Argument(metavar="FILE", help="Model file to read.", show_default=False)],
    state: Annotated[str, typer.Argument(metavar="STATE.bin", help="Raw state bytes (from export-state), or - for stdin.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Model file to write (may be FILE itself).", show_default=False)],
) -> None:
    """Load FILE, replace its state with STATE.bin and write the model to OUTPUT.

    The buffer must come from a model of the same structure; otherwise nothing is written.
    """
    _import(file, state, output, "state")


@checkpoint_app.command("import-weights")
@command
def import_weights(
    file: Annotated[str, typer.Argument(metavar="FILE", help="Model file to read.", show_default=False)],
    weights: Annotated[str, typer.Argument(metavar="WEIGHTS.bin", help="Raw weights bytes (from export-weights), or - for stdin.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Model file to write (may be FILE itself).", show_default=False)],
) -> None:
    """Load FILE, replace its weights with WEIGHTS.bin and write the model to OUTPUT.

    The buffer must come from a model of the same structure; otherwise nothing is written.
    """
    _import(file, weights, output, "weights")


class MergeChoice(str, enum.Enum):
    """The merge modes of ``checkpoint merge``."""

    average = "average"
    random = "random"


def _first_difference(a: Any, b: Any) -> Optional[str]:
    """Where two header ``architecture`` objects differ first, or ``None`` if they are equal."""
    if a == b:
        return None
    if not isinstance(a, dict) or not isinstance(b, dict):
        return "architecture"
    for key, label in (("io_descs", "io"), ("layer_descs", "layer")):
        la, lb = a.get(key), b.get(key)
        if la == lb:
            continue
        if not isinstance(la, list) or not isinstance(lb, list) or len(la) != len(lb):
            na = len(la) if isinstance(la, list) else "?"
            nb = len(lb) if isinstance(lb, list) else "?"
            return f"{na} vs {nb} {label}s"
        for i, (da, db) in enumerate(zip(la, lb)):
            if da == db:
                continue
            if isinstance(da, dict) and isinstance(db, dict):
                for k in sorted(set(da) | set(db)):
                    if da.get(k) != db.get(k):
                        return f"{label} {i} {k}: {da.get(k)} vs {db.get(k)}"
            return f"{label} {i}"
    return "architecture"


@checkpoint_app.command("merge")
@command
def merge(
    files: Annotated[list[str], typer.Argument(metavar="MODEL...", help="Two or more models of the same structure.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Model file to write.", show_default=False)],
    mode: Annotated[MergeChoice, typer.Option("--mode", "-m", help="average: mean of the weights; random: each weight from a random model.", case_sensitive=False)] = MergeChoice.average,
    seed: Annotated[Optional[int], typer.Option("--seed", "-s", min=0, help="Seed the random merge (default: the first model's own random stream).", show_default=False)] = None,
) -> None:
    """Merge the weights of several models of the same structure into a copy of the first.

    The output keeps the first model's state, params, codec and user metadata; its
    training record notes the merge ('merged_from', 'mode').
    """
    if len(files) < 2:
        raise typer.BadParameter("merge needs at least two models", param_hint="MODEL...")
    check_paths(outputs=[output])
    headers = [load_header(p) for p in files]
    for p, hd in zip(files[1:], headers[1:]):
        diff = _first_difference(headers[0].get("architecture"), hd.get("architecture"))
        if diff is not None:
            raise CliError(f"cannot merge '{p}' into '{files[0]}': the structures differ ({diff})")
        if not same_encoding(hd.get("codec"), headers[0].get("codec")):
            # The merged weights would decode nonsense through either model's codec.
            raise CliError(f"cannot merge '{p}' into '{files[0]}': the models encode their data differently "
                           f"(codec {encoding_fields(hd.get('codec'))} vs "
                           f"{encoding_fields(headers[0].get('codec'))})")
    models = [load_hierarchy(p)[0] for p in files]
    target = models[0]
    if seed is not None:
        if mode is MergeChoice.random:
            target.set_rng_state(rng_state_from_seed(seed))
        else:
            echo_err("warning: --seed only affects --mode random; ignored")
    lib_mode = MergeMode.merge_random if mode is MergeChoice.random else MergeMode.merge_average
    try:
        # merge() computes every merged array before writing any, so the target may be a source.
        target.merge(models, lib_mode)
    except NeoError as e:
        raise CliError(f"cannot merge: {e}") from None
    meta = carry_meta(headers[0])
    seen = [hd["codec"].get("seen") for hd in headers if isinstance(hd.get("codec"), dict)]
    if seen and all(isinstance(s, str) for s in seen):
        # The bytes any source saw in training: what the merged model may generate.
        union = 0
        for s in seen:
            union |= int(s, 16)
        meta["codec"] = {**meta["codec"], "seen": f"{union:064x}"}
    training = dict(training_of(headers[0]))
    training.update({"merged_from": [os.path.basename(p) for p in files], "mode": mode.value})
    meta["training"] = training
    target.save_to_file(output, meta=meta, include_state=_has_state(headers[0]))
    echo_err(f"wrote '{output}': {mode.value} of {len(files)} models")


# pyaogmaneo's own format: export-aogmaneo / import-aogmaneo (see migrate.py).
from . import migrate  # noqa: E402
migrate.register(checkpoint_app)
