"""The logged numbers of a run, kept in memory for a notebook or a script."""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch import Callback

from gd_lightning.cadence import logs_loss_at


class LossHistory(Callback):
    """Keep every logged step's ``train/loss`` and every epoch's logged metrics.

    Handy where no TensorBoard is open: a notebook plots ``history.losses``
    against ``history.steps``. It reads ``trainer.callback_metrics``, so it sees
    what the loggers see, for any LightningModule that logs ``train/loss``.

    Attributes:
        steps: the step of each training batch (0, 1, ...; for a model with
            ``loss_logging="written_steps"``, the steps written to the loggers and each
            epoch's last): the number of updates before it.
        losses: the loss of each of those batches, before its update.
        epochs: one dict per finished training epoch, of every epoch-level metric
            logged so far (``train/epoch_mse``, ``val/rmse``, ...).
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.epochs: list[dict[str, float]] = []

    def on_train_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step - 1
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None and logs_loss_at(trainer, pl_module, step, batch_idx):
            self.steps.append(step)
            self.losses.append(float(loss))

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.epochs.append(
            {
                name: float(value)
                for name, value in trainer.callback_metrics.items()
                if name not in ("train/loss", "step", "epoch") and value.numel() == 1
            }
        )
