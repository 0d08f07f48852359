"""The ``neocli`` command line (Typer): train, generate, eval, score, detect, inspect, checkpoint, rl.

Every command module registers on the shared ``app`` of :mod:`neocli.cli.app`; this is
the one place that imports them (the app imports none of them back). Importing this
package registers nothing: :func:`register` does, and the app itself registers a command
when it is first looked up (:class:`~neocli.cli.app.LazyGroup`), so ``neocli detect ...``
loads the detect command alone.
"""
from __future__ import annotations

import sys
from typing import Optional

from . import app as _app

#: The module of ``neocli.cli`` that registers each top-level command (or group), in the
#: order ``neocli --help`` lists them.
COMMANDS = {
    "inspect": "inspect", "checkpoint": "checkpoint", "eval": "eval", "generate": "generate", "train": "train",
    "train-many": "distributed", "sweep": "distributed", "detect": "detect", "score": "score", "rl": "rl",
}


def register(*names: str) -> bool:
    """Register the named commands on the shared app (every command when none is named);
    True if that imported a command module not imported before."""
    new = False
    for module in dict.fromkeys(COMMANDS[n] for n in names or COMMANDS):
        new = new or f"{__name__}.{module}" not in sys.modules
        _import(module)
    return new


def _import(module: str) -> None:
    # Spelled out: the package loads no module by a computed name (tests/test_fuzz.py).
    if module == "inspect":
        from . import inspect  # noqa: F401,A004
    elif module == "checkpoint":
        from . import checkpoint  # noqa: F401
    elif module == "eval":
        from . import eval  # noqa: F401,A004
    elif module == "generate":
        from . import generate  # noqa: F401
    elif module == "train":
        from . import train  # noqa: F401
    elif module == "distributed":
        from . import distributed  # noqa: F401
    elif module == "detect":
        from . import detect  # noqa: F401
    elif module == "score":
        from . import score  # noqa: F401
    elif module == "rl":
        from . import rl  # noqa: F401
    else:
        raise ValueError(f"no command module {module!r}")


def _register_for(name: Optional[str]) -> bool:
    return register(name) if name in COMMANDS else register()


_app.loader = _register_for


def main() -> None:
    """Entry point of the ``neocli`` console script."""
    _app.run()
