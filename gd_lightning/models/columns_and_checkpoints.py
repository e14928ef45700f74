"""What a regression model records of its data and its run, apart from the lesson: the
columns' names, the precision it computes in, and what its checkpoints hold (its class,
its optimizer's settings) and refuse (a resumed fit with other settings)."""

from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from gd_lightning.data.base import default_names, dtype_for, normalized_name
from gd_lightning.errors import InputError
from gd_lightning.models.scaling import Scaling
from gd_lightning.optim import build_optimizer, optimizer_settings
from gd_lightning.resume import changed_settings, resume_refusal, same_setting


class ColumnsAndCheckpoints(LightningModule):
    """The base of [`RegressionModule`][gd_lightning.RegressionModule] that keeps its
    records: the data's column names (in the hyperparameters, so in every checkpoint),
    the precision it computes in, and its checkpoint hooks."""

    #: set by the regression module: its standardization, the rate ``lr: auto`` stands
    #: for once chosen, and the factory of its optimizer
    scaling: Scaling
    auto_lr: float | None
    optimizer_factory: OptimizerCallable | None

    @property
    def learning_rate(self) -> float:
        raise NotImplementedError

    # --- what the model knows of its data ----------------------------------------------

    @property
    def in_features(self) -> int:
        return int(self.hparams["in_features"])

    @property
    def out_features(self) -> int:
        return int(self.hparams["out_features"])

    @property
    def feature_names(self) -> list[str]:
        """The input columns' names, in the order `forward` reads them (``x0, x1,
        ...`` until the model has met named data)."""
        names = self.hparams.get("feature_names")
        return list(names) if names else default_names("x", self.in_features)

    @property
    def target_names(self) -> list[str]:
        """The targets' names, in the order of the prediction's columns (``y0, ...``)."""
        names = self.hparams.get("target_names")
        return list(names) if names else default_names("y", self.out_features)

    def use_columns(self, features: list[str] | None, targets: list[str] | None) -> None:
        """Name the columns (kept in the hyperparameters, so in checkpoints); a model that
        has names already refuses other ones: it was trained on other columns."""
        for kind, names, count in (("feature", features, self.in_features),
                                   ("target", targets, self.out_features)):  # fmt: skip
            if names is not None:
                names = [normalized_name(name) for name in names]  # one name, one column
                known = self.hparams.get(f"{kind}_names")
                known = None if known is None else [normalized_name(name) for name in known]
                self.hparams[f"{kind}_names"] = checked_columns(kind, names, count, known)

    # --- checkpoints -------------------------------------------------------------------

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint whose parameters are float64 (saved under ``precision="64-true"``)
        makes this model float64 before its weights are loaded, so every digit arrives
        (``load_from_checkpoint``, the command line, a Trainer's ``ckpt_path``); a Trainer
        of another precision rounds them to float32 as its run starts, and says so in one
        line (`follow_trainer_precision`).

        A fit resumed from ``checkpoint`` (``trainer.fit(model, ckpt_path=...)``) with
        settings other than the ones it was saved with is refused in one line: Lightning
        would restore the optimizer's state, its learning rate included, and the run would
        record one rate and train at another. (``load_from_checkpoint`` outside a fit
        takes the settings it is given, as Lightning documents.)"""
        if saved_dtype(checkpoint, self) == torch.float64 and self.dtype != torch.float64:
            self.compute_in(torch.float64)
        try:
            fitting = self.trainer.state.fn == TrainerFn.FITTING
        except RuntimeError:  # not attached to a Trainer: load_from_checkpoint
            return
        changes = self.resume_changes(checkpoint) if fitting else []
        if changes:
            raise resume_refusal("the checkpoint", "model", changes)

    def resume_changes(self, checkpoint: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        """The settings of this model, and of the optimizer it builds, that differ from
        those ``checkpoint`` was saved with (name, saved, current): what a fit resumed
        from it would record but not train with."""
        saved = checkpoint.get("hyper_parameters")
        changes = (
            changed_settings(saved, dict(self.hparams), RESUMABLE_CHANGES)
            if isinstance(saved, dict)
            else []
        )
        recorded = checkpoint.get(OPTIMIZER_SETTINGS_KEY)
        if changes or not isinstance(recorded, list) or len(recorded) != 1:
            return changes
        if self.hparams["lr"] == "auto" and self.auto_lr is None:
            return changes  # the rate is chosen from the data later, as it was then
        manual = not self.automatic_optimization
        probe = [torch.nn.Parameter(torch.zeros(1))]
        built = build_optimizer(probe, self.learning_rate, manual, self.optimizer_factory)
        current = optimizer_settings(built)
        # a setting one PyTorch version has and another lacks is not a change
        return [
            (f"optimizer.{name}", old, current[name])
            for name, old in recorded[0].items()
            if name in current and not same_setting(old, current[name])
        ]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Name the model's class among the checkpoint's settings, as ``LightningCLI``
        names it (``hyper_parameters["_class_path"]``, the key it reads back from
        ``--ckpt_path``), so a checkpoint saved by any Trainer, from Python too, works with
        ``gd-lightning validate``, ``test`` and ``predict``. The command line checks the
        name against this package's own classes before it uses anything in the file. (A
        subclass that overrides this hook without ``super()`` saves no name: its
        checkpoints load from Python, with ``YourClass.load_from_checkpoint``.)"""
        settings = checkpoint.get("hyper_parameters")
        if isinstance(settings, dict):
            settings.setdefault(CLASS_PATH_KEY, class_path_of(type(self)))
        try:
            optimizers = self.trainer.optimizers
        except RuntimeError:  # saved outside a Trainer
            return
        checkpoint[OPTIMIZER_SETTINGS_KEY] = [optimizer_settings(o) for o in optimizers]

    # --- precision --------------------------------------------------------------------

    def compute_in(self, dtype: torch.dtype) -> None:
        """Convert the parameters (and everything that follows the model's dtype, as
        ``double()`` and ``float()`` do) to ``dtype``, float32 or float64; the
        standardization's statistics stay float64."""
        kept = self.scaling.standardization
        if dtype == torch.float64:
            self.double()
        else:
            self.float()
        self.scaling.set(kept)

    def follow_trainer_precision(self) -> None:
        """Round float64 parameters (a float64 checkpoint's) to float32 when the Trainer
        computes in another precision than ``"64-true"``, in one line saying so: its data
        and steps are float32."""
        if self.dtype != torch.float64 or dtype_for(self.trainer.precision) == torch.float64:
            return
        rank_zero_warn(
            f"the parameters are float64 (a checkpoint saved under --trainer.precision "
            f"64-true) and this run computes in {self.trainer.precision}: they are rounded "
            f"to float32; --trainer.precision 64-true keeps every digit"
        )
        self.compute_in(torch.float32)

    def on_fit_start(self) -> None:
        self.follow_trainer_precision()

    def on_validation_start(self) -> None:
        self.follow_trainer_precision()

    def on_test_start(self) -> None:
        self.follow_trainer_precision()

    def on_predict_start(self) -> None:
        self.follow_trainer_precision()


#: the checkpoint setting that names the model's class (``LightningCLI``'s own record)
CLASS_PATH_KEY = "_class_path"
#: the checkpoint entry recording the optimizers' classes and settings
OPTIMIZER_SETTINGS_KEY = "optimizer_settings"
#: the entries LightningCLI adds to a model's hyperparameters, which are no settings of it
CLI_RECORDS = frozenset({CLASS_PATH_KEY, "_instantiator"})
#: settings a resumed fit may change: they decide what is logged, not what is learned
RESUMABLE_CHANGES = CLI_RECORDS | {"loss_logging"}


def saved_dtype(checkpoint: dict[str, Any], model: torch.nn.Module) -> torch.dtype | None:
    """The dtype of ``model``'s parameters as ``checkpoint`` holds them (float64 when any
    is), or ``None`` where it holds none of them.

    Examples:
        >>> layer = torch.nn.Linear(1, 1)
        >>> saved_dtype({"state_dict": layer.double().state_dict()}, layer)
        torch.float64
    """
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        return None
    saved = [state.get(name) for name, _ in model.named_parameters()]
    dtypes = {value.dtype for value in saved if isinstance(value, Tensor)}
    if not dtypes:
        return None
    return torch.float64 if torch.float64 in dtypes else dtypes.pop()


def class_path_of(cls: type) -> str:
    """The full import path of ``cls``: ``gd_lightning.models.linear.LinearRegression``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def checked_columns(kind: str, names: list[str], count: int, known: list[str] | None) -> list[str]:
    """``names`` for the model's ``count`` columns of ``kind``, if they are the ``known``
    ones (or none are known yet); else one line saying the data has other columns."""
    if len(names) != count or (known and list(known) != list(names)):
        expected = ", ".join(known) if known else f"{count} column(s)"
        raise InputError(
            f"the model's {kind}s are {expected} but the data's are {', '.join(names)}: "
            f"give the data the model's columns, in that order"
        )
    return list(names)
