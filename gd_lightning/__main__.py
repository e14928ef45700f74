"""``python -m gd_lightning`` runs the ``gd-lightning`` command."""

from gd_lightning.cli import main

main()
