"""What every regression module here shares: loss, metrics, logging, both optimization modes.

Everything is logged with ``self.log``, in original units: ``train/loss`` (the batch's
MSE before its update; in the progress bar) on every training step (with
``loss_logging="written_steps"``, only on the steps the Trainer writes to its loggers
and each epoch's last: `is_logged_step`);
``train/epoch_{mse,rmse,mae,r2}`` over each
epoch's batches, each measured before its update (running sums,
[`regression_sums`][gd_lightning.regression_sums], logged ``on_epoch`` at the epoch's
last batch: its loader needs a length); ``{val,test}/{loss,mse,rmse,mae,r2}`` per
epoch (torchmetrics). Lightning writes ``train/loss`` of step ``s`` at step ``s`` (the
parameters after ``s`` updates), and an epoch's values at the step of its last batch.
"""

import copy
from collections.abc import Mapping
from numbers import Integral
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from gd_lightning.cadence import is_last_batch, logs_loss_at
from gd_lightning.data.base import dtype_for
from gd_lightning.data.standardize import Standardization
from gd_lightning.errors import InputError, check_argument
from gd_lightning.functional import mse
from gd_lightning.models.epoch_sums import EpochSums
from gd_lightning.models.scaling import Scaling
from gd_lightning.optim import (
    build_optimizer,
    optimizer_settings,
    optimizers_config,
    step_scheduler,
)

Optimization = Literal["automatic", "manual"]
LossLogging = Literal["every_step", "written_steps"]
LearningRate = float | Literal["auto"]
Stage = Literal["train", "val", "test"]


def metric_collection(prefix: str) -> MetricCollection:
    """MSE, RMSE, MAE and R² (averaged over targets), each key prefixed."""
    return MetricCollection(
        {
            "mse": MeanSquaredError(),
            "rmse": MeanSquaredError(squared=False),
            "mae": MeanAbsoluteError(),
            "r2": R2Score(multioutput="uniform_average"),
        },
        prefix=prefix,
    )


class RegressionModule(LightningModule):
    """Base class of the regression models: MSE loss, metrics, and the two ways to step.

    A subclass defines its parameters as a linear model: `predict_fitted_units`,
    `design_matrix`, `theta`, `parameters_in_original_units`. Both
    modes share one step and log the same keys (see the module's docstring):
    ``"automatic"``, Lightning drives ``optimizer``; ``"manual"``, ``manual_backward``
    then [`GradientDescent`][gd_lightning.GradientDescent]'s ``p -= lr * p.grad``.

    The data's column names and standardization are part of the model (and of every
    checkpoint): a [`TensorDataModule`][gd_lightning.TensorDataModule] hands them over at the start
    of each fit. `forward` maps raw inputs, in the order of `feature_names`,
    to predictions in original units.

    Args:
        in_features: number of inputs.
        out_features: number of targets.
        lr: the learning rate, a positive number, or ``"auto"``: the rate a
            [`ConvergenceMonitor`][gd_lightning.ConvergenceMonitor] predicts reaches its
            ``target_gap`` (or ``report_gap``) soonest, chosen at the start of a fit (the
            command line always adds one).
        optimization: ``"automatic"`` or ``"manual"`` (the hand-written step).
        optimizer: automatic mode only; ``None`` means ``torch.optim.SGD`` at ``lr``.
        scheduler: a learning-rate scheduler, stepped once per epoch
            (``ReduceLROnPlateau`` watches ``train/epoch_mse``).
        feature_names: the inputs' names, in the order the model reads them.
        target_names: the targets' names.
        loss_logging: ``"every_step"`` (the default) logs ``train/loss`` through
            ``self.log`` on every training step, so every callback sees the current
            step's loss and Lightning decides which steps reach the loggers
            (``log_every_n_steps``); ``"written_steps"`` logs it only on the steps the
            loggers write and on each epoch's last, which saves Lightning's cost of a
            ``self.log`` call (about 0.3 ms) on the other steps, but then
            ``trainer.callback_metrics["train/loss"]`` (and a callback monitoring it)
            is current only on those steps.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        lr: LearningRate,
        optimization: Optimization = "automatic",
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
        feature_names: list[str] | None = None,
        target_names: list[str] | None = None,
        loss_logging: LossLogging = "every_step",
    ) -> None:
        super().__init__()
        # records the whole class hierarchy's arguments; a live optimizer or scheduler
        # factory cannot go into a checkpoint that loads with weights_only=True (the
        # command line stores its config there instead)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        check_settings(in_features, out_features, lr, optimization, optimizer)
        self.use_columns(feature_names, target_names)
        self.automatic_optimization = optimization == "automatic"
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        #: the rate ``lr: auto`` stands for, once a ConvergenceMonitor has chosen it
        self.auto_lr: float | None = None
        #: the standardization the model fits in (identity until a DataModule sets one)
        self.scaling = Scaling(in_features, out_features)
        self.val_metrics = metric_collection("val/")
        self.test_metrics = metric_collection("test/")
        #: the training epoch's sums, for train/epoch_*
        self.epoch_sums = EpochSums()
        #: the parameters as randomly drawn at construction (None: given, not drawn)
        self._random_start: list[Tensor] | None = None

    def remember_random_start(self, drawn: bool) -> None:
        """Subclasses call this once their parameters exist: ``drawn`` when any of them
        were drawn at random rather than given, so that predicting with them unchanged
        (never fitted, nothing loaded) is refused instead of answered."""
        self._random_start = [p.detach().clone() for p in self.parameters()] if drawn else None

    @property
    def fitted(self) -> bool:
        """Whether the parameters are more than a random draw: given at construction,
        changed by a fit, or loaded from a checkpoint or state dict."""
        if self._random_start is None:
            return True
        now = [p.detach().cpu() for p in self.parameters()]
        return len(now) != len(self._random_start) or any(
            not torch.equal(p, q) for p, q in zip(now, self._random_start, strict=True)
        )

    # --- the model as a linear least-squares problem (subclasses) ---------------------

    def predict_fitted_units(self, z: Tensor) -> Tensor:
        """Predictions in fitted units from inputs in fitted units (standardized or raw)."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict_fitted_units()")

    def design_matrix(self, z: Tensor) -> Tensor:
        """``A`` with ``predict_fitted_units(z) == A @ theta()``: (rows, parameters per target)."""
        raise NotImplementedError(f"{type(self).__name__} must implement design_matrix()")

    def theta(self) -> Tensor:
        """The parameters as ``theta`` of shape (parameters per target, targets), detached."""
        raise NotImplementedError(f"{type(self).__name__} must implement theta()")

    def parameters_in_original_units(self, theta: Tensor | None = None) -> dict[str, Tensor]:
        """The parameters with the standardization folded in, by ``state_dict`` name, float64:
        the model's own, or those of ``theta`` (in `theta`'s layout and fitted units)."""
        raise NotImplementedError(f"{type(self).__name__} must implement parameters_in_...()")

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
        return list(names) if names else [f"x{i}" for i in range(self.in_features)]

    @property
    def target_names(self) -> list[str]:
        """The targets' names, in the order of the prediction's columns (``y0, ...``)."""
        names = self.hparams.get("target_names")
        return list(names) if names else [f"y{k}" for k in range(self.out_features)]

    def use_columns(self, features: list[str] | None, targets: list[str] | None) -> None:
        """Name the columns (kept in the hyperparameters, so in checkpoints); a model that
        has names already refuses other ones: it was trained on other columns."""
        for kind, names, count in (("feature", features, self.in_features),
                                   ("target", targets, self.out_features)):  # fmt: skip
            if names is not None:
                known = self.hparams.get(f"{kind}_names")
                self.hparams[f"{kind}_names"] = checked_columns(kind, names, count, known)

    def set_standardization(self, standardization: Standardization | None) -> None:
        """Fit in standardized units from now on (``None``: raw units)."""
        self.scaling.set(standardization)

    @property
    def standardization(self) -> Standardization | None:
        """The statistics in use, or ``None`` when the model fits raw units."""
        return self.scaling.standardization

    def forward(self, x: Tensor) -> Tensor:
        """Predictions in original units, shape (batch, out_features), from raw inputs,
        float32 or float64. Give float64 inputs where float32 cannot carry them (see
        [`float32_carries`][gd_lightning.data.standardize.float32_carries]), such as
        timestamps: the model standardizes float64 inputs in float64 and rounds only the
        standardized values to its own dtype."""
        return self.scaling.original_targets(
            self.predict_fitted_units(self.scaling.fitted_inputs(x))
        )

    def unstandardized(self) -> "RegressionModule":
        """A copy whose parameters are in original units and that applies no scaling;
        its predictions equal this model's (up to float rounding). Float64 where float32
        cannot carry the inputs' or targets' shifts (timestamps): original-unit
        parameters of such data need float64's digits."""
        twin = copy.deepcopy(self)
        if self.scaling.wide:
            twin.compute_in(torch.float64)
        with torch.no_grad():
            for name, value in self.parameters_in_original_units().items():
                twin.get_parameter(name).copy_(value)
        twin.set_standardization(None)
        return twin

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
        changes = changed_settings(saved, dict(self.hparams)) if isinstance(saved, dict) else []
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

    # --- steps ------------------------------------------------------------------------

    @property
    def learning_rate(self) -> float:
        """The learning rate in use: ``lr``, or the rate chosen for ``lr: auto``."""
        lr = self.hparams["lr"]
        if lr != "auto":
            return float(lr)
        if self.auto_lr is None:
            raise InputError(
                "lr: auto is chosen from the training data by a ConvergenceMonitor callback: "
                "add gd_lightning.ConvergenceMonitor() to the Trainer's callbacks, or give "
                "model.lr a number"
            )
        return self.auto_lr

    def _shared_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, stage: Stage) -> Tensor:
        """Predict, measure the MSE, update and log the stage's metrics; return the loss
        that gradient descent minimizes (in standardized units when targets are)."""
        x, y = batch  # (batch, in_features), (batch, out_features)
        out = self.predict_fitted_units(self.scaling.fitted_inputs(x))  # fitted units
        loss = mse(out, self.scaling.fitted_targets(y))
        preds = self.scaling.original_targets(out.detach())  # logged in original units
        # the loss in original units (the same tensor's when the targets are not scaled)
        shown = mse(preds, y) if self.scaling.targets else loss.detach()
        many = self.trainer.world_size > 1
        if stage != "train":
            self.log(f"{stage}/loss", shown, on_epoch=True, prog_bar=True,
                     batch_size=len(x), sync_dist=many)  # fmt: skip
            metrics = self.val_metrics if stage == "val" else self.test_metrics
            metrics.update(preds, y)
            if batch_idx == 0:  # torchmetrics objects: Lightning computes and resets them
                self.log_dict(metrics, on_step=False, on_epoch=True)
            return loss
        weight = process_weight(self.trainer, len(x), self.device) if many else None
        if logs_loss_at(self.trainer, self, self.global_step, batch_idx):
            self.log("train/loss", shown if weight is None else shown * weight,
                     prog_bar=True, sync_dist=many)  # fmt: skip
        self.epoch_sums.add(self.trainer, preds, y)
        if is_last_batch(self.trainer, batch_idx):  # over the whole epoch
            epoch = self.epoch_sums.metrics(self.trainer)
            epoch = {f"train/epoch_{name}": value for name, value in epoch.items()}
            self.log_dict(epoch, on_step=False, on_epoch=True)
        return loss if weight is None else loss * weight

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, batch_idx, "train")
        if not self.automatic_optimization:
            optimizer = self.optimizers()
            self.manual_backward(loss)
            optimizer.step()  # type: ignore[union-attr]
            # PyTorch accumulates gradients: reset before the next backward
            optimizer.zero_grad()  # type: ignore[union-attr]
        return loss

    def on_train_epoch_end(self) -> None:
        # Lightning steps schedulers itself only in automatic mode
        if self.automatic_optimization or not self.trainer.lr_scheduler_configs:
            return
        step_scheduler(self.lr_schedulers(), self.trainer.callback_metrics)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, batch_idx, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, batch_idx, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """Predictions of shape (batch, out_features), in original units, for raw inputs;
        refused in one line for a model that was never fitted (its parameters still the
        random draw it was built with)."""
        if batch_idx == 0 and not self.fitted:
            name = type(self).__name__
            raise InputError(
                f"this {name} was never fitted (its parameters are still the random ones "
                f"it was built with), so its predictions would mean nothing: fit it first, "
                f"load a checkpoint ({name}.load_from_checkpoint), or give its initial "
                f"parameters"
            )
        return self(batch[0])

    def configure_optimizers(self) -> Any:
        manual = not self.automatic_optimization
        optimizer = build_optimizer(self.parameters(), self.learning_rate, manual,
                                    self.optimizer_factory)  # fmt: skip
        scheduler = self.scheduler_factory(optimizer) if self.scheduler_factory else None
        return optimizers_config(optimizer, scheduler, manual)


#: the checkpoint setting that names the model's class (``LightningCLI``'s own record)
CLASS_PATH_KEY = "_class_path"
#: the checkpoint entry recording the optimizers' classes and settings
OPTIMIZER_SETTINGS_KEY = "optimizer_settings"
#: the entries LightningCLI adds to a model's hyperparameters, which are no settings of it
CLI_RECORDS = frozenset({CLASS_PATH_KEY, "_instantiator"})
#: settings a resumed fit may change: they decide what is logged, not what is learned
RESUMABLE_CHANGES = CLI_RECORDS | {"loss_logging"}


def same_setting(value: Any, saved: Any) -> bool:
    """Whether a setting's ``value`` equals a checkpoint's ``saved`` plain value (a list
    and a tuple of equal items are the same; so are 1 and 1.0).

    Examples:
        >>> same_setting([1, 2.0], (1.0, 2)), same_setting(0.1, 0.01)
        (True, False)
    """
    if isinstance(value, list | tuple) and isinstance(saved, list | tuple):
        return len(value) == len(saved) and all(map(same_setting, value, saved))
    return bool(value == saved)


def changed_settings(
    saved: Mapping[str, Any], current: Mapping[str, Any], free: frozenset[str] = RESUMABLE_CHANGES
) -> list[tuple[str, Any, Any]]:
    """The settings (name, saved value, current value) that differ between a checkpoint's
    ``saved`` ones and the ``current`` ones, leaving out the ``free`` names.

    Examples:
        >>> changed_settings({"lr": 0.01, "bias": True}, {"lr": 0.1, "bias": True})
        [('lr', 0.01, 0.1)]
    """
    names = [name for name in {**saved, **current} if name not in free]
    return [
        (name, saved.get(name), current.get(name))
        for name in names
        if not same_setting(current.get(name), saved.get(name))
    ]


def resume_refusal(where: str, what: str, changes: list[tuple[str, Any, Any]]) -> InputError:
    """The one-line refusal of a fit resumed from ``where`` with other ``what`` settings."""
    name, saved, current = changes[0]
    more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
    return InputError(
        f"{what}.{name} is {shown_setting(current)} but the run in {where} was trained with "
        f"{shown_setting(saved)}{more}, and a resumed fit continues with its settings (its "
        f"optimizer's too): resume with the run's own config (config.yaml in its folder), or "
        f"start a new fit to change them"
    )


def shown_setting(value: Any) -> str:
    """``value`` as an option would be typed (``false``, ``[a, b]``), cut to a line."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        text = "[" + ", ".join(map(shown_setting, value)) + "]"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


def process_weight(trainer: Any, batch_size: int, device: torch.device) -> Tensor:
    """Under several processes, this process's share of the global batch times the number
    of processes: DDP averages the processes' gradients, so weighting each process's mean
    loss by it gives the global batch's mean gradient, whatever each process holds."""
    rows = float(batch_size)
    # reduce() sums in place: hand it a tensor of its own
    total = trainer.strategy.reduce(torch.tensor(rows, device=device), reduce_op="sum")
    return trainer.world_size * rows / total


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


def check_settings(
    in_features: int, out_features: int, lr: Any, optimization: str, optimizer: Any
) -> None:
    """Refuse, in one line each, settings no regression module can fit with."""
    check_argument("in_features", in_features, Integral, "a whole number of input columns")
    check_argument("out_features", out_features, Integral, "a whole number of target columns")
    if lr != "auto" and not (isinstance(lr, int | float) and 0 < lr < float("inf")):
        raise InputError(f"lr must be a positive finite number or 'auto', got {lr!r}: set model.lr")
    if optimization not in ("automatic", "manual"):
        raise InputError(f"optimization must be 'automatic' or 'manual', got {optimization!r}")
    if optimization == "manual" and optimizer is not None:
        raise InputError(
            "manual optimization always steps p -= lr * p.grad, so it takes no optimizer: "
            "remove model.optimizer or set model.optimization to 'automatic'"
        )
    if in_features < 1 or out_features < 1:
        raise InputError(
            f"in_features and out_features must be at least 1, got {in_features} and {out_features}"
        )
