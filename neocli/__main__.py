"""``python -m neocli`` runs the command line."""
from neocli.cli import main

main()
