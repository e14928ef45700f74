"""The ``gd-lightning`` command: LightningCLI over this package's models and data."""

import os
import sys
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningCLI, SaveConfigCallback

from gd_lightning.callbacks import (
    ConvergenceMonitor,
    FitCheckpoint,
    ParameterReport,
    PredictionWriter,
)
from gd_lightning.callbacks._common import skip_unused_hooks
from gd_lightning.data.base import TensorDataModule
from gd_lightning.errors import InputError
from gd_lightning.models.base import RegressionModule

DEBUG_VARIABLE = "GD_LIGHTNING_DEBUG"
DESCRIPTION = (
    "Fit regression models by gradient descent with PyTorch Lightning. "
    "Start from a ready config: gd-lightning fit --config configs/quadratic_speed.yaml"
)


class _SaveConfig(SaveConfigCallback):
    """LightningCLI's ``config.yaml`` writer, skipping the hooks it does not use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        skip_unused_hooks(self)


class GDLightningCLI(LightningCLI):
    """LightningCLI that links the data's shape into the model and checks the data first.

    ``in_features`` and ``out_features`` come from the DataModule, so nobody types
    them; the data is loaded and checked before the Trainer creates any log folder,
    so a bad file leaves no half-made run behind. Every fit is measured against the
    least-squares optimum and guarded against divergence by a
    :class:`ConvergenceMonitor` (options under ``convergence``) and ends with a
    :class:`ParameterReport` (``report``); every predict writes its CSV through a
    :class:`PredictionWriter` (``predictions``). Checkpoints come from a
    :class:`FitCheckpoint` (``checkpoint``): one at the end of the fit, and every
    ``checkpoint.every_n_epochs`` epochs when set; a ``ModelCheckpoint`` of your own
    in ``trainer.callbacks`` takes its place, and ``trainer.enable_checkpointing:
    false`` turns checkpoints off.
    """

    def add_arguments_to_parser(self, parser) -> None:  # type: ignore[no-untyped-def]
        # always on: every fit is measured and reports its parameters, every predict
        # writes its CSV
        parser.add_lightning_class_args(ParameterReport, "report")
        parser.add_lightning_class_args(ConvergenceMonitor, "convergence")
        parser.add_lightning_class_args(PredictionWriter, "predictions")
        parser.add_lightning_class_args(FitCheckpoint, "checkpoint")
        for name in ("in_features", "out_features"):
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self._get(self.config_init, "trainer", default={})
        own = [c for c in config.get("callbacks") or [] if isinstance(c, ModelCheckpoint)]
        checkpoint = self._get(self.config_init, "checkpoint")
        forced = [
            self._get(self.config_init, key) for key in self._parser(self.subcommand).callback_keys
        ]
        if own or config.get("enable_checkpointing") is False:
            forced = [c for c in forced if c is not checkpoint]
        if self.subcommand != "predict":  # every callback costs each hook Lightning calls
            forced = [c for c in forced if not isinstance(c, PredictionWriter)]
        return self._instantiate_trainer({**config, **kwargs}, forced)

    # LightningCLI calls before_<subcommand>() just before the Trainer runs it
    def before_fit(self) -> None:
        self.datamodule.setup("fit")

    def before_validate(self) -> None:
        self.datamodule.setup("validate")

    def before_test(self) -> None:
        self.datamodule.setup("test")

    def before_predict(self) -> None:
        self.datamodule.setup("predict")


def cli(args: ArgsType = None, run: bool = True) -> GDLightningCLI:
    """Build the command line on ``args`` (``sys.argv`` when ``None``) and run it.

    With ``run=False`` the model, data and Trainer are only built: ``args`` then
    holds no subcommand, and the caller runs ``trainer.fit(...)`` itself.
    """
    return GDLightningCLI(
        RegressionModule,
        TensorDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        # the model's own `optimizer` argument chooses the optimizer; manual mode has none
        auto_configure_optimizers=False,
        save_config_callback=_SaveConfig,
        # these runs are short: keep every step's loss
        trainer_defaults={"log_every_n_steps": 1},
        parser_kwargs={"prog": "gd-lightning", "description": DESCRIPTION},
        args=args,
        run=run,
    )


def main(args: ArgsType = None) -> None:
    """Entry point of ``gd-lightning``: a user's mistake ends in one line and exit code 2.

    Set the environment variable ``GD_LIGHTNING_DEBUG=1`` to see the full traceback.
    """
    try:
        cli(args)
    except Exception as err:
        cause = _input_error(err)
        if cause is None or os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"gd-lightning: error: {cause}", file=sys.stderr)
        sys.exit(2)


def _input_error(err: BaseException | None) -> InputError | None:
    """The user's mistake behind ``err``, which jsonargparse may have wrapped, if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, InputError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
