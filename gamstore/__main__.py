"""``python -m gamstore`` runs the command line."""

from gamstore.cli import main

main()
