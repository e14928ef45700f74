"""A checkpoint at the end of every fit, and every N epochs on request."""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from gd_lightning.callbacks._common import skip_unused_hooks


class FitCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, saving when a fit ends rather than after every epoch.

    A tutorial epoch is one step of about 100 µs, and writing a checkpoint takes
    about 2 ms: saving after each of 900 epochs would cost 20 times the training.
    This callback saves once when the fit ends (``epoch=E-step=S.ckpt``, the name
    Lightning gives it), and also every ``every_n_epochs`` epochs when that is
    above 0, so a long run can be resumed from where it was. Every other option
    (``monitor``, ``save_top_k``, ``save_last``, ``dirpath``, ...) is
    ``ModelCheckpoint``'s. A run stopped by an error (a diverged loss) saves
    nothing more: the checkpoints from before stay as they were.

    Args:
        every_n_epochs: epochs between checkpoints during the fit; 0 saves only at
            its end.
        **kwargs: any other ``ModelCheckpoint`` argument.
    """

    def __init__(self, every_n_epochs: int = 0, **kwargs: Any) -> None:
        super().__init__(every_n_epochs=every_n_epochs, **kwargs)
        # Lightning formats this key anew for every hook it calls, ten times an epoch
        self._state_key = super().state_key
        skip_unused_hooks(self)
        if not self._every_n_train_steps and self._train_time_interval is None:
            # nothing to save after a batch; ModelCheckpoint still checks the run's
            # state after every one
            self.on_train_batch_end = None  # type: ignore[assignment,method-assign]

    @property
    def state_key(self) -> str:
        return self._state_key

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._due(trainer):  # else skip even the copy of every metric Lightning makes
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._due(trainer):
            super().on_validation_end(trainer, pl_module)

    def _due(self, trainer: "pl.Trainer") -> bool:
        n = self.every_n_epochs or 0
        return (n >= 1 and (trainer.current_epoch + 1) % n == 0) or self.save_last == "link"

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            candidates = self._monitor_candidates(trainer)
            # the last epoch run, as a checkpoint saved at that epoch's end names it
            candidates["epoch"] = candidates["epoch"].clamp(min=1) - 1
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
        super().on_train_end(trainer, pl_module)
