"""The logged numbers of a run, kept in memory for a notebook or a script."""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch import Callback

from gd_lightning.callbacks._common import skip_unused_hooks


class LossHistory(Callback):
    """Keep every step's ``train/loss`` and every epoch's logged metrics.

    Handy where no TensorBoard is open: a notebook plots ``history.losses``
    against ``history.steps``.

    Attributes:
        steps: the global step after each training batch (1, 2, ...).
        losses: the loss of each training batch, before its update.
        epochs: one dict per finished training epoch, of every epoch-level metric
            logged so far (``train/epoch_mse``, ``val/rmse``, ...).
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.epochs: list[dict[str, float]] = []
        skip_unused_hooks(self)

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        step_log = getattr(pl_module, "step_log", None)
        if step_log is not None and self._keep not in step_log.listeners:
            step_log.listeners.append(self._keep)

    def _keep(self, steps: list[int], losses: list[float]) -> None:
        self.steps.extend(step + 1 for step in steps)
        self.losses.extend(losses)

    def on_train_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if hasattr(pl_module, "step_log"):
            return  # its losses come in bulk, through _keep
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            self._keep([trainer.global_step - 1], [float(loss)])

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        close_epoch = getattr(pl_module, "close_epoch", None)
        if close_epoch is not None:
            close_epoch()  # this epoch's metrics, now rather than after this hook
        self.epochs.append(
            {
                name: float(value)
                for name, value in trainer.callback_metrics.items()
                if name not in ("train/loss", "train/rmse") and value.numel() == 1
            }
        )

    def teardown(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        step_log = getattr(pl_module, "step_log", None)
        if step_log is not None and self._keep in step_log.listeners:
            step_log.listeners.remove(self._keep)
