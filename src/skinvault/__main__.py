"""``python -m skinvault`` runs the CLI (with the start-up fast path for a plain scrub)."""

from skinvault.quick import main

main()
