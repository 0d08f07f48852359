"""The ``neocli`` command line (Typer): train, generate, eval, inspect, checkpoint, rl.

Every command module registers on the shared ``app`` of :mod:`neocli.cli.app`; this is
the one place that imports them (the app imports none of them back).
"""
from . import app as _app
from . import checkpoint, eval, generate, inspect, rl, train  # noqa: F401,A004  (register the commands)


def main() -> None:
    """Entry point of the ``neocli`` console script."""
    _app.run()
