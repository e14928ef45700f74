"""``python -m gd_lightning`` runs the ``gd-lightning`` command."""

from gd_lightning.cli.entry import command

if __name__ == "__main__":
    command()
