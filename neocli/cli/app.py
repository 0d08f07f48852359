"""The shared Typer application and the CLI's one error boundary.

Command modules import ``app`` from here and register on it; this module imports none
of them (``neocli/cli/__init__.py`` does, in one place).

stdout carries data only; progress, metrics and messages go to stderr. Exit codes:
0 ok, 1 data/model error (``error: ...`` on stderr, no traceback unless ``--debug``),
2 usage error, 130 after Ctrl-C (128 + the signal for other stop signals). Any other
exception is a bug in neocli and surfaces with its traceback.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import os
import shlex
import signal
import sys
from typing import Any, Callable, Iterator, TypeVar

import typer
import typer.core
import typer.main

from ..errors import ConflictError, NamedError, NeedsForce, NeoError, OptionError, ParameterError

def _no_type_label(self: Any, ctx: Any) -> str | None:
    return None


def _option_label(self: Any, ctx: Any) -> str | None:
    return None if getattr(self, "is_flag", False) else _OPTION_LABEL(self, ctx)


# Typer's rich help prints a type column: "<str>" next to an argument's metavar (which the
# name column already shows) and "<bool>" next to flags. Only real metavars (PATH, N, LO:HI,
# WxHxZ) are shown, so that column is dropped for arguments and flags.
_OPTION_LABEL = typer.core.TyperOption.display_type_rich
typer.core.TyperArgument.display_type_rich = _no_type_label  # type: ignore[method-assign]
typer.core.TyperOption.display_type_rich = _option_label  # type: ignore[method-assign]


#: Set by :mod:`neocli.cli` (which imports the command modules): registers the command
#: ``name`` on ``app`` (every command for None or an unknown name); True if it registered any.
loader: Callable[[str | None], bool] | None = None


class LazyGroup(typer.core.TyperGroup):
    """The top-level group, whose commands are registered when first looked up: ``neocli
    detect ...`` imports the detect command's module only, and not the training, RL and Dask
    code the others load (most of a short command's start-up); help, completion and a
    mistyped command (for its suggestion) get every command."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command ``cmd_name``, registered first if it was not yet."""
        if cmd_name not in self.commands:
            self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command's name, in registration order."""
        self._load(None)
        return super().list_commands(ctx)

    def _load(self, name: str | None) -> None:
        if loader is not None and loader(name):
            self.commands = dict(typer.main.get_command(app).commands)


app = typer.Typer(
    name="neocli",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Sparse Predictive Hierarchies from the command line: train, generate, eval, inspect, checkpoint, rl.",
)

_DEBUG = False

F = TypeVar("F", bound=Callable[..., Any])

#: Library option fields whose flag is not ``--`` + the field with dashes.
FLAGS = {"kind": "--codec", "output": "-o", "every_steps": "--checkpoint-every", "every_epochs": "--checkpoint-every",
         "directory": "--checkpoint-dir", "options": "options", "model": "MODEL", "agent": "AGENT", "sources": "DATA",
         "env_id": "--env", "checkpoint_every": "--checkpoint-every"}


def flag_of(field_name: str) -> str:
    """The command-line flag of a library option field."""
    return FLAGS.get(field_name, "--" + field_name.replace("_", "-"))


class CliError(NeoError):
    """A user-facing failure of a command (exit code 1)."""


class UsageError(CliError):
    """A bad option value or combination (exit code 2, like click's own usage errors)."""


class OutputClosed(CliError):
    """The reader of a whole file (a model, a buffer) went away before it was written whole,
    e.g. ``-o - | head -c 100``: an error (exit 1), unlike a reader that stops reading rows."""


def is_broken_pipe(e: BaseException) -> bool:
    """True for the error of a write whose reader went away (EPIPE)."""
    return isinstance(e, BrokenPipeError) or (isinstance(e, OSError) and e.errno == errno.EPIPE)


@contextlib.contextmanager
def whole_output(target: str, what: str = "model") -> Iterator[None]:
    """Around writing one whole file to ``target`` (``-`` is stdout, else a path or FIFO): a
    reader that closes it early leaves the file truncated, which raises :class:`OutputClosed`."""
    try:
        yield
    except OSError as e:
        if not is_broken_pipe(e):
            raise
        where = "stdout" if target == "-" else f"'{target}'"
        raise OutputClosed(f"output closed early (broken pipe): the {what} written to {where} is incomplete") \
            from None


def plural(n: int, noun: str) -> str:
    """``n`` and ``noun``, with an s unless ``n`` is 1 ("1 bad row", "5 bad rows")."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def echo_err(message: str) -> None:
    """Write a message line to stderr (never to stdout, which carries data)."""
    try:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
    except Exception:  # noqa: BLE001 - stderr must work even if tqdm is unusable
        print(message, file=sys.stderr)


def _fail(message: str, code: int) -> typer.Exit:
    echo_err(f"error: {message}")
    return typer.Exit(code)


def carried_flags(pairs: list[tuple[str, Any]]) -> list[str]:
    """The command-line words of the ``(flag, value)`` pairs a resumed run must repeat to go on
    as the interrupted one would have: None, False and 0 (not given) are left out, True is
    the bare flag, a list repeats the flag for each item."""
    words: list[str] = []
    for flag, value in pairs:
        if value is None or value is False or (value == 0 and not isinstance(value, str)):
            continue
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            for v in value:
                words += [flag, str(v)]
        else:
            words += [flag, str(value)]
    return words


@contextlib.contextmanager
def carry_on_interrupt(pairs: list[tuple[str, Any]]) -> Iterator[None]:
    """Around a training run: an interrupt (``training.Interrupted``) leaving it carries the
    :func:`carried_flags` of ``pairs`` for its resume command (:func:`resume_command`)."""
    try:
        yield
    except KeyboardInterrupt as e:
        training = sys.modules.get("neocli.training")
        if training is not None and isinstance(e, training.Interrupted):
            e.carried = carried_flags(pairs)
        raise


def resume_command(e: Any) -> tuple[str, str]:
    """The command line that continues an interrupted run (a ``training.Interrupted``), ready to
    paste (paths quoted), and a note on what it needs besides ("" if nothing). The options the
    command attached as ``e.carried`` (:func:`carried_flags`: checkpoints, validation, threads)
    are repeated; what the model pins (architecture, codec, seed) is not."""
    q = shlex.quote
    out = f" -o {q(e.output)}" if e.output else ""
    rest = "".join(" " + q(w) for w in getattr(e, "carried", ()))
    if e.env is not None:
        return f"neocli rl train --env {q(e.env)} --resume {q(e.path)}{out}{rest}", ""
    data = " ".join(q(d) for d in e.data) if e.data else "DATA..."
    note = "the same data on stdin" if e.data and "-" in e.data else ""
    return f"neocli train {data} --resume {q(e.path)}{out}{rest}", note


def _interrupt_message(e: Any) -> str:
    """What an interrupted run (a ``training.Interrupted``) prints: where it stopped and,
    with a checkpoint, the command that continues it alone on the next line (a note in
    parentheses after it would not paste)."""
    if not e.path:
        return f"{_signal_name(e.signum)}: stopped at {e.where}; no checkpoint was written"
    line, note = resume_command(e)
    return (f"{_signal_name(e.signum)}: checkpoint written to '{e.path}' ({e.where}); "
            f"continue with{' ' + note if note else ''}:\n  {line}")


def _stop_exit(e: BaseException) -> typer.Exit | None:
    """The exit after a stop signal (128 + the signal), or None for anything else."""
    # Only a command that imported neocli.training can raise its stop signals; looking it up
    # instead of importing it keeps the training code out of the other commands' start-up.
    training = sys.modules.get("neocli.training")
    if training is not None and isinstance(e, training.Interrupted):
        echo_err(_interrupt_message(e))
        return typer.Exit(128 + int(e.signum))
    if training is not None and isinstance(e, training.EvalInterrupted):
        echo_err(f"{_signal_name(e.signum)}: stopped after {e.metrics.symbols} symbols")
        return typer.Exit(128 + int(e.signum))
    if isinstance(e, KeyboardInterrupt):
        echo_err("interrupted")
        return typer.Exit(130)
    return None


def _exit_for(e: BaseException) -> typer.Exit | None:
    """The exit for an expected failure, or None for a bug (which then propagates)."""
    stopped = _stop_exit(e)
    if stopped is not None:
        return stopped
    if isinstance(e, OutputClosed) or is_broken_pipe(e):
        # A reader that stopped reading rows (`| head`) has what it wanted: a quiet exit 0;
        # a whole file cut short is an error (README "Reliability").
        _silence_broken_pipe()
        return _fail(str(e), 1) if isinstance(e, OutputClosed) else typer.Exit(0)
    if _DEBUG:
        return None
    if isinstance(e, NeedsForce):
        return _fail(e.render("--force", "--resume ", "-o "), 1)
    if isinstance(e, OptionError):
        return _fail(f"{flag_of(e.field)} {e.problem}", 2)
    if isinstance(e, ParameterError):
        return _fail(f"{flag_of(e.parameter)}: {e.problem}", 1)
    if isinstance(e, ConflictError):
        return _fail(e.render(flag_of(e.source), flag_of(e.field)), 1)
    if isinstance(e, NamedError):
        return _fail(e.render(flag_of), 1)
    if isinstance(e, UsageError):
        return _fail(str(e), 2)
    if isinstance(e, NeoError):
        return _fail(str(e), 1)
    if isinstance(e, OSError):
        where = f" '{e.filename}'" if getattr(e, "filename", None) else ""
        return _fail(f"{e.strerror or e}{where}", 1)
    if isinstance(e, MemoryError):
        return _fail("out of memory (the model or data is too large for this machine)", 1)
    return None


def command(func: F) -> F:
    """The error boundary of a command: NeoError/OSError exit 1, usage errors 2, Ctrl-C 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - sorted by _exit_for
            exit_ = _exit_for(e)
            if exit_ is None:
                raise
            raise exit_ from None

    return wrapper  # type: ignore[return-value]


def _signal_name(signum: int) -> str:
    """"interrupted" for Ctrl-C, else "terminated (SIGTERM)" and the like."""
    if signum == signal.SIGINT:
        return "interrupted"
    try:
        return f"stopped by {signal.Signals(signum).name}"
    except ValueError:
        return f"stopped by signal {signum}"


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
        from .. import __version__

        typer.echo(f"neocli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
          version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Sparse Predictive Hierarchies from the command line."""
    global _DEBUG
    _DEBUG = debug


def hoist_debug(argv: list[str]) -> list[str]:
    """``argv`` with ``--debug`` moved in front of the subcommand, so it works in any position
    (``neocli --debug train ...`` and ``neocli train ... --debug``); arguments after ``--``
    are left alone."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--debug" not in argv[:end]:
        return argv
    return ["--debug"] + [a for a in argv[:end] if a != "--debug"] + argv[end:]


def run() -> None:
    """Run the app (the commands registered in ``neocli.cli``)."""
    app(args=hoist_debug(sys.argv[1:]), prog_name="neocli")
