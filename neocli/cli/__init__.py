"""The ``neocli`` command line (Typer)."""


def main() -> None:
    """Entry point of the ``neocli`` console script."""
    from .app import app

    app()
