"""The shared Typer application and the error/exit-code conventions of the CLI.

stdout carries data only; progress, metrics and messages go to stderr. Exit codes:
0 ok, 1 data/model error (``error: ...`` on stderr, no traceback unless ``--debug``),
2 usage error, 130 after Ctrl-C.
"""
from __future__ import annotations

import errno
import functools
import os
import sys
from typing import Any, Callable, TypeVar

import typer

from .._errors import NeoError

app = typer.Typer(
    name="neocli",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Sparse Predictive Hierarchies from the command line: train, generate, eval, inspect, checkpoint.",
)

_DEBUG = False

F = TypeVar("F", bound=Callable[..., Any])


class CliError(NeoError):
    """A user-facing failure of a command (exit code 1)."""


class UsageError(CliError):
    """A bad option value or combination (exit code 2, like click's own usage errors)."""


def echo_err(message: str) -> None:
    """Write a message line to stderr (never to stdout, which carries data)."""
    try:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
    except Exception:  # noqa: BLE001 - stderr must work even if tqdm is unusable
        print(message, file=sys.stderr)


def command(func: F) -> F:
    """Wrap a command so user errors become ``error: ...`` and exit code 1, Ctrl-C 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            echo_err("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            _silence_broken_pipe()
            raise typer.Exit(0) from None
        except OSError as e:
            if e.errno == errno.EPIPE:
                _silence_broken_pipe()
                raise typer.Exit(0) from None
            if _DEBUG:
                raise
            where = f" '{e.filename}'" if getattr(e, "filename", None) else ""
            echo_err(f"error: {e.strerror or e}{where}")
            raise typer.Exit(1) from None
        except MemoryError:
            if _DEBUG:
                raise
            echo_err("error: out of memory (the model or data is too large for this machine)")
            raise typer.Exit(1) from None
        except UsageError as e:
            if _DEBUG:
                raise
            echo_err(f"error: {e}")
            raise typer.Exit(2) from None
        except (NeoError, ValueError, UnicodeDecodeError) as e:
            if _DEBUG:
                raise
            echo_err(f"error: {e}")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _silence_broken_pipe() -> None:
    # The reader went away (e.g. `| head`): point stdout at devnull so the
    # interpreter's final flush does not print a BrokenPipeError trace.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _show_version(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"neocli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
          version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Sparse Predictive Hierarchies from the command line."""
    global _DEBUG
    _DEBUG = debug


def run() -> None:
    """Import every command module (they register on ``app``) and run the app."""
    from . import checkpoint, eval as eval_cmd, generate, inspect, train  # noqa: F401
    from . import detect, score  # noqa: F401

    app()
