"""The ``gd-lightning`` command: LightningCLI over this package's models and data.

- :mod:`~gd_lightning.cli.app`: the command line itself (:class:`GDLightningCLI`,
  :func:`cli`): the data's shape and column names linked into the model, the data
  checked before the Trainer writes anything, the callbacks every run gets;
- :mod:`~gd_lightning.cli.checkpoints`: checkpoints read safely, and found for a resume;
- :mod:`~gd_lightning.cli.config_files`: ``--config`` (a file, bounded before it is
  parsed, or a tutorial's name);
- :mod:`~gd_lightning.cli.tutorials`: the tutorials' ready configs, packaged, by name;
- :mod:`~gd_lightning.cli.checks`: settings Lightning would fail on later;
- :mod:`~gd_lightning.cli.notices`: Lightning's notices that do not concern the fit;
- :mod:`~gd_lightning.cli.main`: how the command ends (one line, exit codes).
"""

from gd_lightning.cli.app import GDLightningCLI, cli
from gd_lightning.cli.config_files import CONFIG_MAX_BYTES, CONFIG_MAX_NODES
from gd_lightning.cli.main import command, main

__all__ = ["CONFIG_MAX_BYTES", "CONFIG_MAX_NODES", "GDLightningCLI", "cli", "command", "main"]
