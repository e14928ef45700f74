"""The ``gd-lightning`` command: LightningCLI over this package's models and data.

- `app`: the command line itself (`GDLightningCLI`,
  `cli`): the data's shape and column names linked into the model, the data
  checked before the Trainer writes anything, the callbacks every run gets;
- `checkpoints`: checkpoints read safely, and found for a resume;
- `config_files`: ``--config`` (a file, bounded before it is
  parsed, or a tutorial's name);
- `tutorials`: the tutorials' ready configs, packaged, by name;
- `checks`: settings Lightning would fail on later;
- `notices`: Lightning's notices that do not concern the fit;
- `exits`: how the command ends (one line, exit codes), through
  `main` (a module of another name than ``main``: importing it cannot shadow the
  function);
- `entry`: the installed command's entry point, light on
  purpose (the rest loads inside it).
"""

from typing import TYPE_CHECKING

from gd_lightning.lazy import lazy_exports

#: where each public name lives, imported on first use (the entry point stays light)
_EXPORTS = {
    "CONFIG_MAX_BYTES": "gd_lightning.cli.config_files",
    "CONFIG_MAX_NODES": "gd_lightning.cli.config_files",
    "GDLightningCLI": "gd_lightning.cli.app",
    "cli": "gd_lightning.cli.app",
    "command": "gd_lightning.cli.entry",
    "main": "gd_lightning.cli.exits",
}

if TYPE_CHECKING:
    from gd_lightning.cli.app import GDLightningCLI, cli
    from gd_lightning.cli.config_files import CONFIG_MAX_BYTES, CONFIG_MAX_NODES
    from gd_lightning.cli.entry import command
    from gd_lightning.cli.exits import main


__getattr__ = lazy_exports("gd_lightning.cli", globals(), _EXPORTS)


__all__ = ["CONFIG_MAX_BYTES", "CONFIG_MAX_NODES", "GDLightningCLI", "cli", "command", "main"]
