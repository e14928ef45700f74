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
from numbers import Integral
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from gd_lightning.cadence import is_last_batch, logs_loss_at
from gd_lightning.data.standardize import Standardization
from gd_lightning.errors import InputError, check_argument
from gd_lightning.functional import mse
from gd_lightning.models.columns_and_checkpoints import ColumnsAndCheckpoints
from gd_lightning.models.epoch_sums import EpochSums
from gd_lightning.models.scaling import Scaling
from gd_lightning.optim import build_optimizer, optimizers_config, step_scheduler

Optimization = Literal["automatic", "manual"]
LossLogging = Literal["every_step", "written_steps"]
LearningRate = float | Literal["auto"]
Stage = Literal["train", "val", "test"]


class RegressionModule(ColumnsAndCheckpoints):
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

    # --- one step of gradient descent: the loss, the gradient, the update ----------------

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, batch_idx, "train")
        if not self.automatic_optimization:
            optimizer = self.optimizers()
            self.manual_backward(loss)
            optimizer.step()  # type: ignore[union-attr]
            # PyTorch accumulates gradients: reset before the next backward
            optimizer.zero_grad()  # type: ignore[union-attr]
        return loss

    def _shared_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, stage: Stage) -> Tensor:
        """Predict, measure the MSE and log it; return the loss gradient descent minimizes
        (in standardized units when the targets are standardized)."""
        x, y = batch  # (batch, in_features), (batch, out_features)
        out = self.predict_fitted_units(self.scaling.fitted_inputs(x))  # fitted units
        loss = mse(out, self.scaling.fitted_targets(y))
        predictions = self.scaling.original_targets(out.detach())  # logged in original units
        if stage == "train":
            return self._log_training(loss, predictions, y, batch_idx)
        self._log_evaluation(stage, loss, predictions, y, batch_idx)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, batch_idx, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, batch_idx, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Any:
        """Predictions of shape (batch, out_features), in original units, for raw inputs
        (for data given as a table in memory, a table of that kind with one column per
        target: see `TabularDataModule.predictions_table`);
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
        predictions = self(batch[0])
        # data given as a table in memory gets its predictions back as a table
        try:
            datamodule = getattr(self.trainer, "datamodule", None)
        except RuntimeError:  # called outside a Trainer
            datamodule = None
        as_table = getattr(datamodule, "predictions_table", None)
        return predictions if as_table is None else as_table(predictions, batch_idx)

    def configure_optimizers(self) -> Any:
        manual = not self.automatic_optimization
        optimizer = build_optimizer(self.parameters(), self.learning_rate, manual,
                                    self.optimizer_factory)  # fmt: skip
        scheduler = self.scheduler_factory(optimizer) if self.scheduler_factory else None
        return optimizers_config(optimizer, scheduler, manual)

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

    def on_train_epoch_end(self) -> None:
        # Lightning steps schedulers itself only in automatic mode
        if self.automatic_optimization or not self.trainer.lr_scheduler_configs:
            return
        step_scheduler(self.lr_schedulers(), self.trainer.callback_metrics)

    # --- what the steps log --------------------------------------------------------------

    def _loss_in_original_units(self, loss: Tensor, predictions: Tensor, y: Tensor) -> Tensor:
        """The batch's MSE in the targets' own units (``loss`` itself, detached, where
        the targets are not standardized)."""
        return mse(predictions, y) if self.scaling.targets else loss.detach()

    def _log_training(self, loss: Tensor, predictions: Tensor, y: Tensor, batch_idx: int) -> Tensor:
        """Log ``train/loss`` and, at the epoch's last batch, ``train/epoch_*``; return the
        loss to step on, weighted by this process's share of the batch under several
        processes (`process_weight`)."""
        several = self.trainer.world_size > 1
        weight = process_weight(self.trainer, len(y), self.device) if several else None
        if logs_loss_at(self.trainer, self, self.global_step, batch_idx):
            original = self._loss_in_original_units(loss, predictions, y)
            self.log("train/loss", original if weight is None else original * weight,
                     prog_bar=True, sync_dist=several)  # fmt: skip
        self.epoch_sums.add(self.trainer, predictions, y)
        if is_last_batch(self.trainer, batch_idx):  # over the whole epoch
            epoch = self.epoch_sums.metrics(self.trainer)
            epoch = {f"train/epoch_{name}": value for name, value in epoch.items()}
            self.log_dict(epoch, on_step=False, on_epoch=True)
        return loss if weight is None else loss * weight

    def _log_evaluation(
        self, stage: Stage, loss: Tensor, predictions: Tensor, y: Tensor, batch_idx: int
    ) -> None:
        """Log ``{stage}/loss`` and the stage's metrics over the epoch."""
        original = self._loss_in_original_units(loss, predictions, y)
        self.log(f"{stage}/loss", original, on_epoch=True, prog_bar=True, batch_size=len(y),
                 sync_dist=self.trainer.world_size > 1)  # fmt: skip
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        metrics.update(predictions, y)
        if batch_idx == 0:  # torchmetrics objects: Lightning computes and resets them
            self.log_dict(metrics, on_step=False, on_epoch=True)

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

    # --- the data's standardization, and predictions in original units -------------------

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


def process_weight(trainer: Any, batch_size: int, device: torch.device) -> Tensor:
    """Under several processes, this process's share of the global batch times the number
    of processes: DDP averages the processes' gradients, so weighting each process's mean
    loss by it gives the global batch's mean gradient, whatever each process holds."""
    rows = float(batch_size)
    # reduce() sums in place: hand it a tensor of its own
    total = trainer.strategy.reduce(torch.tensor(rows, device=device), reduce_op="sum")
    return trainer.world_size * rows / total


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
