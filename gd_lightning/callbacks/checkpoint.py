"""A checkpoint at the end of every fit, and every N epochs on request."""

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint

from gd_lightning.errors import DivergenceError, InputError


class FitCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, saving when a fit ends rather than after every epoch.

    A tutorial epoch is one step of about a millisecond, and writing a checkpoint
    takes a few: saving after each of 900 epochs would cost more than the training.
    This callback saves once when the fit ends (``epoch=E-step=S.ckpt``, the name
    Lightning gives a checkpoint saved at the end of epoch ``E``, and ``last.ckpt``
    too with ``save_last``), and every ``every_n_epochs`` epochs when that is above
    0, so a long run can be resumed from where it was. Every other option
    (``monitor``, ``save_top_k``, ``save_last``, ``dirpath``, ``every_n_train_steps``,
    ...) is ``ModelCheckpoint``'s. A run stopped by an error (a diverged loss) saves
    nothing more: the checkpoints from before stay as they were (with a
    [`ConvergenceMonitor`][gd_lightning.ConvergenceMonitor], which checks the parameters
    every checkpoint is about to save, none of them holds blown-up parameters).

    Args:
        every_n_epochs: epochs between checkpoints during the fit; 0 saves only at
            its end.
        **kwargs: any other ``ModelCheckpoint`` argument.
    """

    def __init__(self, every_n_epochs: int = 0, **kwargs: Any) -> None:
        try:
            super().__init__(every_n_epochs=every_n_epochs, **kwargs)
        except MisconfigurationException as err:
            # ModelCheckpoint checks its options as it is built: its wording, in one line
            raise InputError(
                f"the checkpoint options were refused: {' '.join(str(err).split())} (fix the "
                f"checkpoint.* option)"
            ) from None
        # whether ModelCheckpoint saves after batches (every_n_train_steps, train_time_interval)
        self._saves_after_batches = bool(kwargs.get("every_n_train_steps")) or (
            kwargs.get("train_time_interval") is not None
        )

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # where the checkpoints go, and whether the fit resumes, are known now
        if self.dirpath is not None:
            check_fresh_folder(Path(self.dirpath), resuming=trainer.ckpt_path is not None)
        super().on_train_start(trainer, pl_module)

    def on_train_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._saves_after_batches:  # else ModelCheckpoint's checks find nothing to do
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._due(trainer):  # else ModelCheckpoint would only copy every metric, for nothing
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._due(trainer):
            super().on_validation_end(trainer, pl_module)

    def on_exception(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException
    ) -> None:
        if isinstance(exception, DivergenceError):
            return  # with save_on_exception, ModelCheckpoint would save the blown-up parameters
        super().on_exception(trainer, pl_module, exception)

    def _due(self, trainer: "pl.Trainer") -> bool:
        """Whether this epoch's end may save: every ``every_n_epochs``, or a monitored or
        linked checkpoint that ``ModelCheckpoint`` decides on itself."""
        n = self.every_n_epochs or 0
        due = n >= 1 and (trainer.current_epoch + 1) % n == 0
        return due or self.monitor is not None or self.save_last == "link"

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.fast_dev_run:  # type: ignore[attr-defined]
            # named as a checkpoint saved at the end of the last epoch run would be
            epoch = max(trainer.current_epoch - 1, 0)
            metrics = {
                **trainer.callback_metrics,
                "epoch": torch.tensor(epoch),
                "step": torch.tensor(trainer.global_step),
            }
            path = self.format_checkpoint_name(metrics)
            saved = path == self.best_model_path or path in self.best_k_models
            if not (saved and Path(path).is_file()):  # not saved at this very step already
                trainer.save_checkpoint(path, weights_only=False)  # every process; rank 0 writes
                self.best_model_path = self.best_model_path or path
        super().on_train_end(trainer, pl_module)  # last.ckpt, with save_last


def check_fresh_folder(folder: Path, resuming: bool) -> None:
    """Refuse, in one line, a new fit whose checkpoints would go into ``folder`` while it
    holds an earlier run's checkpoints (ModelCheckpoint would replace files of the same
    name); a resumed run (``resuming``) continues in its own folder."""
    if resuming or not folder.is_dir():
        return
    found = sorted(path.name for path in folder.glob("*.ckpt"))
    if found:
        listed = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise InputError(
            f"checkpoint.dirpath {folder} holds checkpoints of an earlier run ({listed}): "
            f"choose another folder, or resume that run with --ckpt_path"
        )
