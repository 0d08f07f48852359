"""``neocli checkpoint export-aogmaneo`` / ``import-aogmaneo``: models to and from pyaogmaneo's format.

Thin wrappers over :mod:`neocli.aogmaneo`; they register on the ``checkpoint``
sub-app (see :func:`register`).
"""
from __future__ import annotations

import datetime
import hashlib
import os
import shlex
from typing import Annotated, Optional

import typer

from .. import aogmaneo
from .app import CliError, command, echo_err

__all__ = ["register", "export_aogmaneo", "import_aogmaneo", "reference_hint", "import_command"]


def import_command(path: str) -> str:
    """The command that converts the pyaogmaneo file at ``path`` (quoted for the shell), ready to paste."""
    return f"neocli checkpoint import-aogmaneo {shlex.quote(path)} -o NEW.ohr"


def reference_hint(path: str) -> str:
    """What to tell a user who handed a pyaogmaneo model file to a command that needs ``.ohr``."""
    return (f"'{path}' is a model in pyaogmaneo's own format, not .ohr (a model trained outside the neocli "
            "CLI has no codec or agent encoding, so generate, eval and --env cannot use it even converted); "
            f"neocli inspect shows it, and this converts it: {import_command(path)}")


def _check_output(out: str) -> None:
    if os.path.isdir(out):
        raise CliError(f"cannot write '{out}': it is a directory")
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise CliError(f"cannot write '{out}': directory '{directory}' does not exist")


def _check_input(path: str) -> None:
    if os.path.isdir(path):
        raise CliError(f"'{path}' is a directory, not a model file")


@command
def export_aogmaneo(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model file to read (.ohr).", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", metavar="PATH",
                                        help="pyaogmaneo model file to write.", show_default=False)],
    buffer: Annotated[bool, typer.Option("--buffer", help="Write what pyaogmaneo's serialize_to_buffer() "
                                         "returns instead of what save_to_file writes.")] = False,
) -> None:
    """Write MODEL in pyaogmaneo 2.14.4's own format (pyaogmaneo's Hierarchy(file_name=OUT) loads it).

    Weights, state and params are written; the codec, training history and
    metadata have no place in that format and are left out.
    """
    _check_input(model)
    _check_output(output)
    m = aogmaneo.load_model(model)
    aogmaneo.export_file(m, output, kind="buffer" if buffer else "file")
    echo_err(f"wrote '{output}' in pyaogmaneo's format ({os.path.getsize(output):,} bytes)")


@command
def import_aogmaneo(
    old: Annotated[str, typer.Argument(metavar="OLD", help="pyaogmaneo model file (save_to_file, or saved "
                                       "serialize_to_buffer() bytes).", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", metavar="PATH", help="Model file to write (.ohr).",
                                        show_default=False)],
    rng_state: Annotated[Optional[int], typer.Option("--rng-state", metavar="N", min=0, max=2**64 - 1,
                                                     help="Start the model's random stream here (default: "
                                                     "neocli's process-wide default state).")] = None,
) -> None:
    """Convert a pyaogmaneo model file to .ohr, recording where it came from in the header."""
    _check_input(old)
    _check_output(output)
    with open(old, "rb") as f:
        data = f.read()
    kind = aogmaneo.kind_of(data)
    if kind is None:
        raise CliError(f"'{old}' is not a pyaogmaneo model file (it does not start with pyaogmaneo's magic number)")
    form = aogmaneo.read_header(old)["format_version"]  # "file" or "buffer"
    model = aogmaneo.read_hierarchy(data) if kind == "hierarchy" else aogmaneo.read_image_encoder(data)
    if rng_state is not None:
        model.set_rng_state(rng_state)
    provenance = {
        "imported_from": f"{aogmaneo.FORMAT_NAME} {form}",
        "source": os.path.basename(old),
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "source_bytes": len(data),
        "imported_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rng_state": model.get_rng_state(),
    }
    model.save_to_file(output, meta={"provenance": provenance})
    echo_err(f"wrote '{output}' from pyaogmaneo's {kind.replace('_', ' ')} '{old}'")


def register(checkpoint_app: typer.Typer) -> None:
    """Add the two commands to the ``checkpoint`` sub-app."""
    checkpoint_app.command("export-aogmaneo")(export_aogmaneo)
    checkpoint_app.command("import-aogmaneo")(import_aogmaneo)
