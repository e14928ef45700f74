"""What every regression module here shares: loss, metrics, both optimization modes."""

import copy
import inspect
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import (
    LearningRateMonitor,
    ModelCheckpoint,
    ModelSummary,
    ProgressBar,
)
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from gd_lightning.analysis import FitReference
from gd_lightning.data.standardize import Standardization
from gd_lightning.errors import InputError
from gd_lightning.functional import mse
from gd_lightning.optim import GradientDescent
from gd_lightning.steplog import FLUSH_EVERY, StepLog, TrainStats, epoch_metrics, epoch_sums

#: LightningModule hooks that do nothing unless overridden; Lightning calls each about
#: once a step through a dispatcher that skips an attribute that is not callable (the
#: evaluation loops' batch hooks are left out: Lightning reads their signatures)
NO_OP_HOOKS = (
    "on_after_backward", "on_before_backward", "on_before_optimizer_step",
    "on_before_zero_grad", "on_fit_end", "on_fit_start", "on_predict_end",
    "on_predict_epoch_end", "on_predict_epoch_start", "on_predict_start", "on_test_end",
    "on_test_epoch_end", "on_test_epoch_start", "on_test_start", "on_train_batch_end",
    "on_train_batch_start", "on_train_end", "on_train_epoch_end", "on_train_epoch_start",
    "on_train_start", "on_validation_end", "on_validation_epoch_end",
    "on_validation_epoch_start", "on_validation_start",
)  # fmt: skip

Optimization = Literal["automatic", "manual"]
LearningRate = float | Literal["auto"]
Stage = Literal["train", "val", "test"]


def _metric_collection(prefix: str) -> MetricCollection:
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

    Subclasses define their parameters, :meth:`core` (the prediction from the
    inputs the model is fitted to), and the parameters' layout as a linear model
    (:meth:`design_matrix`, :meth:`flat_parameters_of`, :meth:`folded`); everything
    else is here. Both modes share :meth:`_shared_step`, so they log the same keys
    and differ only in how the update is taken:

    - ``"automatic"``: Lightning drives ``optimizer`` (plain SGD at ``lr`` unless
      another is configured; L-BFGS gets Lightning's closure).
    - ``"manual"``: each step computes the loss, calls ``manual_backward``, then
      :class:`~gd_lightning.optim.GradientDescent` performs ``p -= lr * p.grad``
      and the gradient is reset, as the tutorials write it by hand.

    Logged: ``train/loss`` and ``train/rmse`` every step (the RMSE is the square
    root of that step's loss, taken before the update, as tutorial 1 prints it);
    ``train/epoch_{mse,rmse,mae,r2}`` over each epoch's batches;
    ``{val,test}/{loss,mse,rmse,mae,r2}`` per epoch. Always in original units.
    The training values go through :attr:`step_log` (kept on the device, written
    in bulk every few steps and at each epoch's end; see :mod:`gd_lightning.steplog`)
    rather than ``self.log``, whose bookkeeping costs more than a tutorial's step;
    they reach the loggers, ``trainer.callback_metrics`` and the progress bar all
    the same. Under several processes (DDP) each logged training value is the
    global batch's.

    When the DataModule standardizes features or targets, the model takes the
    training split's statistics at the start of a fit and applies them itself:
    it learns in standardized units, while :meth:`forward` maps raw inputs to
    predictions in original units, and checkpoints carry the statistics.

    Args:
        lr: the learning rate, a positive number, or ``"auto"``: set at the start of
            a fit from the curvature of the loss on the training split,
            ``2 / (λ_max + λ_min)`` for full-batch gradient descent (the fastest
            constant rate) and ``1 / λ_max`` (half the stable bound) for minibatches.
        optimization: ``"automatic"`` (Lightning drives ``optimizer``) or ``"manual"``
            (the hand-written step).
        optimizer: automatic mode only: builds the optimizer from the parameters and
            ``lr=lr``; other settings (momentum, betas) come from the config. ``None``
            means ``torch.optim.SGD``.
        scheduler: builds a learning-rate scheduler from the optimizer, stepped once
            per epoch (``ReduceLROnPlateau`` watches ``train/epoch_mse``).
    """

    def __init__(
        self,
        lr: LearningRate,
        optimization: Optimization = "automatic",
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        # records the whole class hierarchy's arguments, the subclass's included
        self.save_hyperparameters()
        for name in ("optimizer", "scheduler"):
            if callable(self.hparams.get(name)):
                # a live object (a class, a partial) cannot go into a checkpoint that loads
                # with weights_only=True; the command line stores its config there instead
                del self.hparams[name]
        if lr != "auto" and not (isinstance(lr, int | float) and lr > 0 and lr != float("inf")):
            raise InputError(
                f"lr must be a positive finite number or 'auto', got {lr!r}: set model.lr"
            )
        if optimization not in ("automatic", "manual"):
            raise InputError(f"optimization must be 'automatic' or 'manual', got {optimization!r}")
        if optimization == "manual" and optimizer is not None:
            raise InputError(
                "manual optimization always steps p -= lr * p.grad, so it takes no optimizer: "
                "remove model.optimizer or set model.optimization to 'automatic'"
            )
        self.automatic_optimization = optimization == "automatic"
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.standardization: Standardization | None = None
        self.set_standardization(None)
        self.reference: FitReference | None = None
        #: the training loss and metrics on their way to the loggers
        self.step_log = StepLog()
        self.train_stats = TrainStats()
        self._closed_epoch = -1
        #: (step, stats) of finished epochs whose metrics are not worked out yet
        self._pending_epochs: list[tuple[int, TrainStats]] = []
        self._epoch_metrics_at_once = True
        # made when first needed and kept out of the module tree: Lightning walks that
        # tree several times a step, and hashing each torchmetrics module there cost
        # more than a tutorial's arithmetic
        self._eval_metrics: dict[str, MetricCollection] = {}
        # the hooks left as LightningModule's no-ops are marked so Lightning skips them
        # (each call costs a profiler context and two attribute writes; a subclass's
        # own override, or a super() call to the no-op, is unaffected)
        for name in NO_OP_HOOKS:
            if getattr(type(self), name) is getattr(LightningModule, name):
                setattr(self, name, None)

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets _current_fx_name around every hook it calls, about 40 times a
        # step; nn.Module.__setattr__ checks for parameters, buffers and submodules
        # each time, which costs as much as the tutorial's arithmetic. A plain string
        # attribute needs none of that.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # --- the model as a linear least-squares problem ---------------------------------

    def core(self, z: Tensor) -> Tensor:
        """Predictions in fitted units from inputs in fitted units (standardized or raw)."""
        raise NotImplementedError(f"{type(self).__name__} must implement core()")

    def design_matrix(self, z: Tensor) -> Tensor:
        """``A`` with ``core(z) == A @ flat_parameters()``: shape (rows, parameters per target)."""
        raise NotImplementedError(f"{type(self).__name__} must implement design_matrix()")

    def flat_parameters(self) -> Tensor:
        """The parameters as ``theta`` of shape (parameters per target, targets), detached."""
        return self.flat_parameters_of([p.detach() for p in self.parameters()])

    def flat_parameters_of(self, parameters: list[Tensor]) -> Tensor:
        """``theta`` from parameter values given in ``parameters()`` order, each of its
        parameter's shape with any leading dimensions: (..., parameters per target, targets).

        Copies of the parameters taken at several moments, stacked, give the thetas of
        all those moments at once.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement flat_parameters_of()")

    def folded(self) -> dict[str, Tensor]:
        """The parameters in original units (standardization folded in), by name, float64."""
        raise NotImplementedError(f"{type(self).__name__} must implement folded()")

    def coefficients(
        self, feature_names: list[str] | None = None, target_names: list[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """The learned parameters by name, in original units: ``{target: {parameter: value}}``."""
        raise NotImplementedError(f"{type(self).__name__} must implement coefficients()")

    # --- standardization --------------------------------------------------------------

    def set_standardization(self, standardization: Standardization | None) -> None:
        """Fit in standardized units from now on (``None``: raw units)."""
        # decided once here, not at every step (on a GPU each check would wait for it)
        self._scales_inputs = standardization is not None and standardization.features
        self._scales_targets = standardization is not None and standardization.targets
        scales = self._scales_inputs or self._scales_targets
        device = self.device
        self.standardization = (
            standardization.apply(lambda t: t.to(device)) if standardization and scales else None
        )

    def _apply(self, fn: Any, recurse: bool = True) -> "RegressionModule":
        super()._apply(fn, recurse)
        if self.standardization is not None:
            # not buffers (there may be none), yet they go where the model goes, so a
            # step on a GPU copies nothing from the host
            self.standardization = self.standardization.apply(fn)
        for metrics in getattr(self, "_eval_metrics", {}).values():  # kept out of the tree
            metrics._apply(fn)
        return self

    def _fit_inputs(self, x: Tensor) -> Tensor:
        s = self.standardization
        if s is None or not self._scales_inputs:
            return x
        return (x - s.feature_shift.to(x.device)) / s.feature_scale.to(x.device)

    def _fit_targets(self, y: Tensor) -> Tensor:
        s = self.standardization
        if s is None or not self._scales_targets:
            return y
        return (y - s.target_shift.to(y.device)) / s.target_scale.to(y.device)

    def _original_targets(self, out: Tensor) -> Tensor:
        s = self.standardization
        if s is None or not self._scales_targets:
            return out
        return out * s.target_scale.to(out.device) + s.target_shift.to(out.device)

    def forward(self, x: Tensor) -> Tensor:
        """Predictions in original units, shape (batch, out_features), from raw inputs."""
        return self._original_targets(self.core(self._fit_inputs(x)))

    def unstandardized(self) -> "RegressionModule":
        """A copy whose parameters are in original units and that applies no scaling.

        Its predictions equal this model's (up to float rounding), and a linear
        model's ``state_dict`` then loads into ``nn.Linear``.
        """
        twin = copy.deepcopy(self)
        with torch.no_grad():
            for name, value in self.folded().items():
                getattr(twin, name).copy_(value)
        twin.standardization = None
        return twin

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self._trainer is not None and self.trainer.training:
            # the divergence guard sees every loss before a checkpoint is written
            self.step_log.flush(self.trainer)
        if self.standardization is not None:
            checkpoint["standardization"] = self.standardization.as_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("standardization")
        self.set_standardization(Standardization.from_dict(saved) if saved else None)

    # --- the training data's facts ----------------------------------------------------

    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        self.set_standardization(getattr(datamodule, "standardization", None))
        self.reference = None
        self._closed_epoch = -1
        self._pending_epochs = []
        self.train_stats.forget()

    def on_train_start(self) -> None:
        # the epoch metrics wait for the next write unless something reads them as each
        # epoch ends (EarlyStopping, a monitoring checkpoint, a scheduler, an unknown callback)
        trainer = self.trainer
        self._epoch_metrics_at_once = bool(trainer.lr_scheduler_configs) or any(
            _may_read_epoch_metrics(callback)
            for callback in trainer.callbacks  # type: ignore[attr-defined]
        )
        if self._log_epoch_metrics not in self.step_log.producers:
            self.step_log.producers.append(self._log_epoch_metrics)

    def fit_reference(self) -> FitReference | None:
        """The least-squares facts of the current fit's training split (computed once per fit).

        ``None`` when the training split is not available as tensors.
        """
        if self.reference is None:
            train_set = getattr(getattr(self.trainer, "datamodule", None), "train_set", None)
            tensors = getattr(train_set, "tensors", None)
            if tensors is None:
                return None
            x, y = tensors[0], tensors[1]
            scale = None if self.standardization is None else self.standardization.target_scale
            with torch.no_grad():
                design = self.design_matrix(self._fit_inputs(x.to(self.device)))
            self.reference = FitReference.from_data(
                design.cpu(), self._fit_targets(y.to(self.device)).cpu(), scale
            )
        return self.reference

    @property
    def learning_rate(self) -> float:
        """The learning rate in use: ``lr``, or the curvature's choice for ``lr: auto``."""
        lr = self.hparams["lr"]
        if lr != "auto":
            return float(lr)
        reference = self.fit_reference()
        if reference is None:
            raise InputError(
                "lr: auto needs the training data as tensors (a TensorDataModule); "
                "give model.lr a number"
            )
        datamodule = self.trainer.datamodule  # type: ignore[attr-defined]
        train_rows = len(datamodule.train_set)
        full_batch = (getattr(datamodule, "batch_size", None) or train_rows) >= train_rows
        return reference.best_lr if full_batch else 1.0 / reference.largest_eigenvalue

    # --- steps ------------------------------------------------------------------------

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: Stage) -> Tensor:
        """Predict, measure the MSE, update and log the stage's metrics; return the loss
        that gradient descent minimizes (in standardized units when targets are)."""
        x, y = batch  # (batch, in_features), (batch, out_features)
        out = self.core(self._fit_inputs(x))  # (batch, out_features), fitted units
        loss = mse(out, self._fit_targets(y))
        preds = self._original_targets(out)
        # what is logged is always in original units
        shown = loss.detach() if preds is out else mse(preds.detach(), y)
        batch_size = len(x)
        if stage == "train":
            weight = self._process_weight(batch_size)
            if weight is not None and self.train_stats.shift is None:
                # the targets' shift must be the same on every process for their sums to add
                shift = self.trainer.strategy.broadcast(y.mean(0).cpu(), src=0)
                self.train_stats.shift = shift.to(y.device)
            self.train_stats.update(preds.detach(), y)
            self.step_log.add_loss(self.global_step, shown if weight is None else shown * weight)
            if len(self.step_log) >= FLUSH_EVERY:
                self.step_log.flush(self.trainer)
            return loss if weight is None else loss * weight
        metrics = self._eval_metrics.get(stage)
        if metrics is None:  # moved with the model from then on (_apply)
            metrics = self._eval_metrics[stage] = _metric_collection(f"{stage}/").to(self.device)
        metrics.update(preds.detach(), y)
        self.log(f"{stage}/loss", shown, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=batch_size, sync_dist=self.trainer.world_size > 1)  # fmt: skip
        return loss

    def _log_eval_metrics(self, stage: Stage) -> None:
        """Log the epoch's ``{stage}/{mse,rmse,mae,r2}`` (over every process) and reset."""
        metrics = self._eval_metrics.get(stage)
        if metrics is None or not any(m.update_called for m in metrics.values()):
            return
        self.log_dict(metrics.compute(), on_step=False, on_epoch=True)
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_eval_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval_metrics("test")

    def _process_weight(self, batch_size: int) -> Tensor | None:
        """Under several processes, this process's share of the global batch, times the
        number of processes: DDP averages the processes' gradients, so weighting each
        process's mean loss by it gives exactly the global batch's mean gradient even
        when the processes hold different numbers of rows. ``None`` for one process."""
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1:
            return None
        rows = float(batch_size)
        # reduce() sums in place: hand it a tensor of its own
        total = trainer.strategy.reduce(torch.tensor(rows, device=self.device), reduce_op="sum")
        return trainer.world_size * rows / total

    def flush_logs(self) -> None:
        """Write the training values kept so far to the loggers and ``callback_metrics``."""
        self.step_log.flush(self.trainer)

    def close_epoch(self) -> None:
        """Finish the epoch's ``train/epoch_*`` metrics.

        Runs once per epoch, at the latest in :meth:`on_train_epoch_end`. The metrics
        are worked out and logged with the next write of the training values (every
        few steps, at each checkpoint and at the end), all the epochs since the last
        one at once. When a callback may read them (``EarlyStopping``,
        ``ModelCheckpoint(monitor=...)``, a callback this package does not know) or a
        scheduler watches them, each epoch's are in ``trainer.callback_metrics`` as soon
        as it ends: when Lightning's monitoring callbacks run (after this module's
        ``on_train_epoch_end``) and for every callback from the next epoch's start. A
        callback that needs them in its own ``on_train_epoch_end`` may call this first,
        as :class:`~gd_lightning.LossHistory` does.
        """
        trainer = self.trainer
        if self._closed_epoch == trainer.current_epoch:
            return
        self._closed_epoch = trainer.current_epoch
        if self.train_stats.count:
            step = max(trainer.global_step - 1, 0)
            self._pending_epochs.append((step, self.train_stats.close()))
            if self._epoch_metrics_at_once:
                self._log_epoch_metrics()
        if len(self.step_log) >= FLUSH_EVERY:
            self.step_log.flush(trainer)

    def _log_epoch_metrics(self) -> None:
        """Work out the finished epochs' metrics (summed over processes), all at once."""
        pending, self._pending_epochs = self._pending_epochs, []
        if not pending:
            return
        trainer = self.trainer
        steps, epochs = zip(*pending, strict=True)
        # (epochs, 4, targets), a tensor of its own
        sums = epoch_sums(list(epochs), epochs[0].shift)
        rows = [epoch.count for epoch in epochs]
        if trainer.world_size > 1:
            sums = trainer.strategy.reduce(sums, reduce_op="sum")
            total = torch.tensor(rows, dtype=torch.float64, device=sums.device)
            rows = [round(n) for n in trainer.strategy.reduce(total, reduce_op="sum").tolist()]
        names = [f"train/epoch_{name}" for name in ("mse", "rmse", "mae", "r2")]
        metrics = epoch_metrics(sums, rows)
        self.step_log.add_rows(
            trainer,
            [
                (step, dict(zip(names, values.values(), strict=True)))
                for step, values in zip(steps, metrics, strict=True)
            ],
        )

    def on_train_end(self) -> None:
        self.step_log.flush(self.trainer)
        self.step_log.close()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, "train")
        if not self.automatic_optimization:
            optimizer = self.optimizers()
            self.manual_backward(loss)
            optimizer.step()  # type: ignore[union-attr]
            # PyTorch accumulates gradients: reset before the next backward
            optimizer.zero_grad()  # type: ignore[union-attr]
        return loss

    def on_train_epoch_end(self) -> None:
        self.close_epoch()
        # Lightning steps schedulers itself only in automatic mode
        manual = not self.automatic_optimization and self.trainer.lr_scheduler_configs
        scheduler = self.lr_schedulers() if manual else None
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(self.trainer.callback_metrics["train/epoch_mse"])
        elif scheduler is not None:
            scheduler.step()  # type: ignore[union-attr]

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """Predictions of shape (batch, out_features), in original units, for raw inputs."""
        return self(batch[0])

    def configure_optimizers(self) -> Any:
        lr = self.learning_rate
        if not self.automatic_optimization:
            optimizer: Optimizer = GradientDescent(self.parameters(), lr=lr)
        elif self.optimizer_factory is None:
            optimizer = torch.optim.SGD(self.parameters(), lr=lr)
        else:
            optimizer = self.optimizer_factory(self.parameters(), lr=lr)  # type: ignore[call-arg]
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        if not self.automatic_optimization:
            return {"optimizer": optimizer, "lr_scheduler": scheduler}  # stepped by this module
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": "epoch",
                "monitor": "train/epoch_mse",
            },
        }


# Lightning reads training_step's signature before every step (does it take batch_idx?);
# a stored signature spares inspect rebuilding it from the code object each time
RegressionModule.training_step.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    RegressionModule.training_step
)


def _may_read_epoch_metrics(callback: Any) -> bool:
    """Whether ``callback`` may read ``train/*`` metrics from ``callback_metrics`` as an
    epoch ends: one that monitors them, or one not known to leave them alone."""
    monitor = getattr(callback, "monitor", None)
    if isinstance(monitor, str):
        return monitor.startswith("train/")
    if isinstance(callback, ModelCheckpoint):
        return "{" in (callback.filename or "")  # a name made from the metrics
    if isinstance(callback, ProgressBar | ModelSummary | LearningRateMonitor):
        return False
    return getattr(callback, "reads_epoch_metrics", True)
