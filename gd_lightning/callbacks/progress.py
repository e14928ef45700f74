"""Lightning's progress bar, redrawn by the clock rather than at every step."""

import math
import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar

from gd_lightning.cadence import is_last_batch


class TimedProgressBar(TQDMProgressBar):
    """Lightning's ``TQDMProgressBar``, its training bar redrawn at most every
    ``refresh_seconds`` (and at each epoch's last batch), whatever the steps' pace.

    Lightning's own bar redraws every ``refresh_rate`` steps; at its default of 1,
    redrawing it and formatting the loss cost about 0.2 ms a step here, a sixth of a
    4,096-row step, for more redraws than an eye can follow. The command line uses this
    bar unless the Trainer is given one of its own.

    Args:
        refresh_seconds: the least time between two redraws of the training bar.
        leave: keep each epoch's finished bar on the screen.
    """

    def __init__(self, refresh_seconds: float = 0.1, leave: bool = False) -> None:
        super().__init__(refresh_rate=1, leave=leave)
        self.refresh_seconds = refresh_seconds
        self._drawn_at = -math.inf

    def on_train_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        now = time.monotonic()
        if is_last_batch(trainer, batch_idx) or now - self._drawn_at >= self.refresh_seconds:
            self._drawn_at = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_exception(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException
    ) -> None:
        # end the line the bar stands on, so that the error said next (the command line's
        # one line) starts a line of its own, in a terminal and in a file alike
        for name in ("train_progress_bar", "val_progress_bar"):
            try:
                bar = getattr(self, name)
            except TypeError:  # not shown in this run
                continue
            if not bar.disable:
                bar.fp.write("\n")
                bar.fp.flush()
                return
