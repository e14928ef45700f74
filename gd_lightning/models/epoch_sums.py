"""A training epoch's running sums, from which its metrics are worked out at its end."""

import lightning.pytorch as pl
import torch
from torch import Tensor

from gd_lightning.functional import regression_metrics, regression_sums


class EpochSums:
    """[`regression_sums`][gd_lightning.regression_sums] of an epoch's batches.

    A new epoch (of a Trainer, so a new fit starts afresh and an epoch cut short
    leaves nothing behind) starts from zero; the targets' shift is chosen once a
    fit, near the first batch's mean, the same on every process.
    """

    def __init__(self) -> None:
        self.sums = torch.zeros(0)
        self.rows = 0
        self._epoch: tuple[int, int] | None = None
        self._shift: tuple[int, Tensor] | None = None

    def add(self, trainer: "pl.Trainer", preds: Tensor, targets: Tensor) -> None:
        """Add a batch of ``preds`` and ``targets`` (batch, targets) of ``trainer``'s fit."""
        epoch = (id(trainer), trainer.current_epoch)
        if self._epoch != epoch:
            self._epoch, self.rows = epoch, 0
            if self._shift is None or self._shift[0] != id(trainer):
                shift = trainer.strategy.broadcast(targets.detach().mean(0), src=0)
                self._shift = (id(trainer), shift)
            self.sums = torch.zeros(4, targets.shape[1], dtype=targets.dtype, device=targets.device)
        assert self._shift is not None
        self.sums += regression_sums(preds, targets, self._shift[1])
        self.rows += len(targets)

    def metrics(self, trainer: "pl.Trainer") -> dict[str, Tensor]:
        """MSE, RMSE, MAE and R² of the epoch so far, over every process."""
        sums, rows = self.sums, self.rows
        if trainer.world_size > 1:
            sums = trainer.strategy.reduce(sums.clone(), reduce_op="sum")  # in place: a copy
            total = torch.tensor(float(rows), device=sums.device)
            rows = round(float(trainer.strategy.reduce(total, reduce_op="sum")))
        return regression_metrics(sums, rows)
