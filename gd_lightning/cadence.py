"""On which training steps the package logs its per-step values."""

import math

import lightning.pytorch as pl


def is_logged_step(trainer: "pl.Trainer", step: int, batch_idx: int) -> bool:
    """Whether training step ``step`` (the number of updates before it), batch
    ``batch_idx`` of its epoch, is one the Trainer writes to its loggers or ends an epoch.

    ``LightningModule.log`` costs about a third of a millisecond a call, as much as
    three tutorial steps by hand, so a model with ``loss_logging="written_steps"`` logs
    its per-step loss only on the steps the Trainer writes to its loggers (the step
    ``s`` with ``(s + 1) % log_every_n_steps == 0``, counting optimizer steps, as
    Lightning counts them) and on each epoch's last batch (so whatever reads it as the
    epoch ends sees that epoch's). With ``log_every_n_steps=1`` that is every step.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(log_every_n_steps=5, logger=False, enable_progress_bar=False)
        >>> [is_logged_step(trainer, step, batch_idx=step) for step in range(6)]
        [False, False, False, False, True, False]
    """
    every = trainer.log_every_n_steps  # type: ignore[attr-defined]  # set by the Trainer
    if every and (step + 1) % every == 0:
        return True
    return is_last_batch(trainer, batch_idx)


def logs_loss_at(
    trainer: "pl.Trainer", pl_module: "pl.LightningModule", step: int, batch_idx: int
) -> bool:
    """Whether ``pl_module`` logs ``train/loss`` at training step ``step``, batch
    ``batch_idx``: every step, unless its ``loss_logging`` is ``"written_steps"`` (then
    the steps of `is_logged_step`)."""
    if pl_module.hparams.get("loss_logging", "every_step") == "every_step":
        return True
    return is_logged_step(trainer, step, batch_idx)


def is_last_batch(trainer: "pl.Trainer", batch_idx: int) -> bool:
    """Whether ``batch_idx`` is its training epoch's last batch (never, for a loader
    without a length).

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> is_last_batch(Trainer(logger=False, enable_progress_bar=False), batch_idx=0)
        False
    """
    batches = trainer.num_training_batches
    return not math.isinf(batches) and batch_idx + 1 == batches
