"""Honest convergence: the optimum as a reference, the curvature's advice, stopping rules,
and a guard against a run that blows up."""

import math
from typing import TYPE_CHECKING, Any, cast

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from gd_lightning.callbacks._common import skip_unused_hooks
from gd_lightning.errors import DivergenceError

if TYPE_CHECKING:
    from gd_lightning.analysis import FitReference
    from gd_lightning.models.base import RegressionModule


class ConvergenceMonitor(Callback):
    """Measure a fit against the best fit possible, and stop it when it is done or broken.

    Every model here is linear in its parameters, so the least-squares optimum of
    the training split is known exactly (float64 ``torch.linalg.lstsq`` on the
    model's design matrix; the minimum-norm solution when columns are collinear).
    With it this callback:

    - prints, at the start, the curvature of the loss (largest and smallest
      eigenvalue of the Hessian, condition number), the largest stable and the
      fastest constant learning rate for full-batch gradient descent, and the
      predicted number of epochs to come within ``report_gap`` of the optimum; and
      warns in one line when the learning rate is at or above the stable bound;
    - logs ``train/excess_loss`` (the training split's loss minus the optimum's)
      and ``train/gap`` (that excess relative to the optimum) after every epoch
      (worked out in bulk when the model writes its training values, every 50 steps
      and at the end; at each epoch's end when ``target_gap`` is set);
    - stops the fit once the gap is at most ``target_gap``, if given;
    - prints at the end ``loss X; best possible Y; gap Z%``;
    - stops a run whose loss becomes NaN or infinite, or grows above
      ``divergence_factor`` times its scale (the larger of the first step's loss and
      the loss of predicting zero), by raising :class:`~gd_lightning.errors.DivergenceError`
      with one line naming the learning rate and the stable bound. Checkpoints
      written before the blow-up stay as they were.

    For a plateau rule (stop when the loss improves by less than ``tol`` for
    ``n_iter_no_change`` epochs, as scikit-learn's ``SGDRegressor`` does), add
    Lightning's ``EarlyStopping(monitor="train/epoch_mse", min_delta=tol,
    patience=n_iter_no_change)``.

    Args:
        target_gap: stop once the loss is within this fraction of the optimum (0.01
            is 1%); ``None`` never stops early.
        report_gap: the gap the start-of-fit prediction counts epochs to.
        divergence_factor: how many times its scale the loss may grow before the run
            counts as diverged.
        verbose: print the start and end blocks.
    """

    #: it leaves train/epoch_* alone as an epoch ends, so they may wait for the next write
    reads_epoch_metrics = False

    def __init__(
        self,
        target_gap: float | None = None,
        report_gap: float = 0.01,
        divergence_factor: float = 1e6,
        verbose: bool = True,
    ) -> None:
        self.target_gap = target_gap
        self.report_gap = report_gap
        self.divergence_factor = divergence_factor
        self.verbose = verbose
        self._scale: float | None = None
        #: (step, parameter snapshot) of the epochs whose gaps are still to be worked out
        self._pending: list[tuple[int, list[torch.Tensor]]] = []
        self._parameters: list[torch.Tensor] | None = None
        #: full-batch epochs to within ``report_gap`` predicted at the start of the last fit
        self.predicted_epochs: float | None = None
        skip_unused_hooks(self)

    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._scale = None
        self.predicted_epochs = None
        reference = self._reference(pl_module)
        if reference is None:
            return
        lr = self._lr(trainer)
        self.predicted_epochs = reference.epochs_to_gap(_theta(pl_module), lr, self.report_gap)
        if self.verbose and trainer.is_global_zero:
            print(reference.describe(lr, _theta(pl_module), self.report_gap))
        if lr >= reference.stable_lr and _is_plain_descent(trainer):
            rank_zero_warn(
                f"lr {lr:.4g} is at or above {reference.stable_lr:.4g}, the largest stable "
                f"learning rate for full-batch gradient descent on this data: expect the loss "
                f"to blow up; lower model.lr or set it to auto"
            )

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        step_log = getattr(pl_module, "step_log", None)
        if step_log is not None and self._check_losses not in step_log.listeners:
            step_log.listeners.append(self._check_losses)
            step_log.producers.append(self._log_gaps)
        if step_log is not None:
            # its losses come in bulk, through _check_losses: Lightning may skip the hook
            self.on_train_batch_end = None  # type: ignore[assignment,method-assign]
        else:
            self.__dict__.pop("on_train_batch_end", None)
        self._trainer, self._module = trainer, pl_module
        self._pending = []
        # with a reference and the model's step log, each epoch only copies the parameters
        # (their gaps are worked out together at the log's next write)
        bulk = step_log is not None and self.target_gap is None
        self._parameters = (
            list(pl_module.parameters())
            if bulk and self._reference(pl_module) is not None
            else None
        )

    def on_train_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            self._trainer, self._module = trainer, pl_module
            self._check_losses([trainer.global_step], [float(loss)])

    def _check_losses(self, steps: list[int], losses: list[float]) -> None:
        """Stop the run at the first step whose loss is not finite or has blown up."""
        for step, value in zip(steps, losses, strict=True):
            if self._scale is None:
                reference = self._reference(self._module)
                zero_model = (
                    reference.loss(torch.zeros_like(reference.solution)) if reference else 0
                )
                self._scale = max(value, zero_model) if math.isfinite(value) else 1.0
            if not math.isfinite(value) or value > self.divergence_factor * self._scale:
                self._diverged(self._trainer, self._module, value, step)

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        step = max(trainer.global_step - 1, 0)
        if self._parameters is not None:
            self._pending.append((step, [p.detach().clone() for p in self._parameters]))
            return
        reference = self._reference(pl_module)
        if reference is None:
            return
        step_log = getattr(pl_module, "step_log", None)
        excess = reference.excess(_theta(pl_module))
        gap = reference.relative(excess)
        if step_log is not None:
            step_log.add(trainer, step, {"train/excess_loss": excess, "train/gap": gap})
        else:
            pl_module.log("train/excess_loss", excess, on_step=False, on_epoch=True)
            pl_module.log("train/gap", gap, on_step=False, on_epoch=True)
        if self.target_gap is not None and gap <= self.target_gap:
            trainer.should_stop = True
            rank_zero_info(
                f"within {self.target_gap:.2%} of the best possible loss after "
                f"{trainer.current_epoch + 1} epochs ({trainer.global_step} steps): stopping"
            )

    def _log_gaps(self) -> None:
        """The excess losses and gaps of the epochs since the last write, computed at once."""
        if not self._pending:
            return
        reference = self._reference(self._module)
        steps, snapshots = zip(*self._pending, strict=True)
        self._pending = []
        if reference is None:
            return
        optimum = reference.optimum_loss
        module = cast("RegressionModule", self._module)
        rows = []
        stacked = [torch.stack(values) for values in zip(*snapshots, strict=True)]
        thetas = module.flat_parameters_of(stacked).cpu()  # (epochs, parameters, targets)
        for step, loss in zip(steps, reference.losses(thetas), strict=True):
            excess = loss - optimum
            rows.append(
                (step, {"train/excess_loss": excess, "train/gap": reference.relative(excess)})
            )
        module.step_log.add_rows(self._trainer, rows)

    def teardown(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        step_log = getattr(pl_module, "step_log", None)
        if step_log is not None and self._check_losses in step_log.listeners:
            step_log.listeners.remove(self._check_losses)
            step_log.producers.remove(self._log_gaps)

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        reference = self._reference(pl_module)
        if reference is None or not self.verbose or not trainer.is_global_zero:
            return
        loss = reference.loss(_theta(pl_module))
        gap = reference.relative(loss - reference.optimum_loss)
        print(summary(loss, reference.optimum_loss, gap))

    def _reference(self, pl_module: "pl.LightningModule") -> "FitReference | None":
        fit_reference = getattr(pl_module, "fit_reference", None)
        return fit_reference() if fit_reference is not None else None

    def _lr(self, trainer: "pl.Trainer") -> float:
        return float(trainer.optimizers[0].param_groups[0]["lr"])

    def _diverged(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", loss: float, step: int
    ) -> None:
        reference = self._reference(pl_module)
        bound = (
            f"; the largest stable learning rate for full-batch gradient descent on this "
            f"data is {reference.stable_lr:.4g}"
            if reference is not None
            else ""
        )
        raise DivergenceError(
            f"training diverged at step {step + 1}: the loss is {loss:.4g} with "
            f"lr {self._lr(trainer):.4g}{bound}: lower model.lr, set it to auto, or "
            f"standardize the data (checkpoints from before the blow-up are kept)"
        )


def summary(loss: float, optimum: float, gap: float) -> str:
    """``loss X; best possible Y; gap Z%``.

    Example:
        >>> summary(0.4879, 0.4831, (0.4879 - 0.4831) / 0.4831)
        'loss 0.4879; best possible 0.4831; gap 0.99%'
    """
    return f"loss {loss:.4g}; best possible {optimum:.4g}; gap {gap:.2%}"


def _is_plain_descent(trainer: "pl.Trainer") -> bool:
    """Whether the optimizer is gradient descent without momentum, where 2 / λ_max binds."""
    optimizer = trainer.optimizers[0]
    if type(optimizer).__name__ == "GradientDescent":
        return True
    return isinstance(optimizer, torch.optim.SGD) and not optimizer.param_groups[0]["momentum"]


def _theta(pl_module: "pl.LightningModule") -> torch.Tensor:
    """The model's parameters as a linear least-squares ``theta``, on the CPU (where the
    least-squares facts are)."""
    return cast("RegressionModule", pl_module).flat_parameters().cpu()
