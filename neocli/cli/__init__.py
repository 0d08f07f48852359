"""The ``neocli`` command line (Typer): train, generate, eval, inspect, checkpoint."""


def main() -> None:
    """Entry point of the ``neocli`` console script."""
    from .app import run

    run()
