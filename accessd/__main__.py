"""``python -m accessd`` runs the command line."""

from accessd.cli import main

main()
