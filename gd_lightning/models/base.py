"""What every regression module here shares: loss, metrics, both optimization modes."""

from typing import Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor
from torch.optim import Optimizer
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from gd_lightning.errors import InputError
from gd_lightning.functional import mse
from gd_lightning.optim import GradientDescent

Optimization = Literal["automatic", "manual"]
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

    Subclasses define their parameters and ``forward``; everything else is here.
    Both modes share :meth:`_shared_step`, so they log the same keys and differ
    only in how the update is taken:

    - ``"automatic"``: Lightning drives ``optimizer`` (plain SGD at ``lr`` unless
      another is configured).
    - ``"manual"``: each step computes the loss, calls ``manual_backward``, then
      :class:`~gd_lightning.optim.GradientDescent` performs ``p -= lr * p.grad``
      and the gradient is reset, as the tutorials write it by hand.

    Logged: ``train/loss`` and ``train/rmse`` every step (the RMSE is the square
    root of that step's loss, taken before the update, as tutorial 1 prints it);
    ``train/epoch_{mse,rmse,mae,r2}`` over each epoch's batches;
    ``{val,test}/{loss,mse,rmse,mae,r2}`` per epoch.

    Args:
        lr: the learning rate, a positive number.
        optimization: ``"automatic"`` (Lightning drives ``optimizer``) or ``"manual"``
            (the hand-written step).
        optimizer: automatic mode only: builds the optimizer from the parameters and
            ``lr=lr``; other settings (momentum, betas) come from the config. ``None``
            means ``torch.optim.SGD``.
    """

    def __init__(
        self,
        lr: float,
        optimization: Optimization = "automatic",
        optimizer: OptimizerCallable | None = None,
    ) -> None:
        super().__init__()
        # records the whole class hierarchy's arguments, the subclass's included
        self.save_hyperparameters()
        if callable(self.hparams.get("optimizer")):
            # a live object (a class, a partial) cannot go into a checkpoint that loads with
            # weights_only=True; the command line stores its config there instead
            del self.hparams["optimizer"]
        if not (isinstance(lr, int | float) and lr > 0 and lr != float("inf")):
            raise InputError(f"lr must be a positive finite number, got {lr!r}: set model.lr")
        if optimization not in ("automatic", "manual"):
            raise InputError(f"optimization must be 'automatic' or 'manual', got {optimization!r}")
        if optimization == "manual" and optimizer is not None:
            raise InputError(
                "manual optimization always steps p -= lr * p.grad, so it takes no optimizer: "
                "remove model.optimizer or set model.optimization to 'automatic'"
            )
        self.automatic_optimization = optimization == "automatic"
        self.optimizer_factory = optimizer
        self.train_metrics = _metric_collection("train/epoch_")
        self.val_metrics = _metric_collection("val/")
        self.test_metrics = _metric_collection("test/")

    def coefficients(
        self, feature_names: list[str] | None = None, target_names: list[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """The learned parameters by name: ``{target: {parameter: value}}``."""
        raise NotImplementedError(f"{type(self).__name__} must implement coefficients()")

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: Stage) -> Tensor:
        """Predict, measure the MSE, update and log the stage's metrics."""
        x, y = batch  # (batch, in_features), (batch, out_features)
        preds = self(x)  # (batch, out_features)
        loss = mse(preds, y)
        metrics: MetricCollection = getattr(self, f"{stage}_metrics")
        metrics.update(preds.detach(), y)
        batch_size = len(x)
        if stage == "train":
            self.log(
                "train/loss",
                loss,
                on_step=True,
                on_epoch=False,
                prog_bar=True,
                batch_size=batch_size,
            )
            self.log(
                "train/rmse",
                loss.detach().sqrt(),
                on_step=True,
                on_epoch=False,
                batch_size=batch_size,
            )
        else:
            self.log(
                f"{stage}/loss",
                loss,
                on_step=False,
                on_epoch=True,
                prog_bar=True,
                batch_size=batch_size,
            )
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, "train")
        if not self.automatic_optimization:
            optimizer = self.optimizers()
            self.manual_backward(loss)
            optimizer.step()  # type: ignore[union-attr]
            # PyTorch accumulates gradients: reset before the next backward
            optimizer.zero_grad()  # type: ignore[union-attr]
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """Predictions of shape (batch, out_features) for the batch's inputs."""
        return self(batch[0])

    def configure_optimizers(self) -> Optimizer:
        lr = self.hparams["lr"]
        if not self.automatic_optimization:
            return GradientDescent(self.parameters(), lr=lr)
        if self.optimizer_factory is None:
            return torch.optim.SGD(self.parameters(), lr=lr)
        return self.optimizer_factory(self.parameters(), lr=lr)  # type: ignore[call-arg]
