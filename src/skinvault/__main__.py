"""``python -m skinvault`` runs the CLI."""

from skinvault.cli import main

main()
