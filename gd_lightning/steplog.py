"""Cheap per-step logging: losses kept on the device, written to the loggers in bulk.

A tutorial step costs about 110 µs by hand. ``LightningModule.log`` costs about as much
per call, and TensorBoard's ``SummaryWriter.add_scalar`` about 60 µs per value (it hands
each value to a writer thread). So the training loss and metrics do not go through
either: :class:`StepLog` keeps each step's loss as a tensor (no device sync), and every
few steps and at the end of each epoch writes them all at once, straight into an event
file in the TensorBoard logger's folder, and through ``log_metrics`` for other loggers.
The written values also land in ``trainer.callback_metrics`` (for ``EarlyStopping``,
``ModelCheckpoint(monitor=...)``, schedulers) and the progress bar.
"""

from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

from gd_lightning.events import EventFile

#: a listener gets the global steps and losses of each flush, in order
LossListener = Callable[[list[int], list[float]], None]

#: steps kept before a flush: bounds how late the divergence guard sees a loss
FLUSH_EVERY = 50


class TrainStats:
    """MSE, RMSE, MAE and R² of an epoch's training batches, worked out in bulk.

    The same numbers as torchmetrics' ``MeanSquaredError``, ``MeanAbsoluteError``
    and ``R2Score(multioutput="uniform_average")`` over the epoch's batches.
    torchmetrics' own update costs about 100 µs per batch for the four, as much as a
    whole tutorial step; here a batch's predictions and targets are only kept, and
    summed with those of other batches (and other epochs: :func:`epoch_sums`) a few
    operations at a time: when the epoch's metrics are wanted, or every
    :attr:`FOLD_EVERY` batches or :attr:`FOLD_ROWS` rows. The targets are shifted by
    the fit's first batch's mean before their squares are summed, so R² keeps its
    precision for targets far from zero.

    Example:
        >>> stats = TrainStats()
        >>> stats.update(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [3.0]]))
        >>> stats.update(torch.tensor([[5.0]]), torch.tensor([[5.0]]))
        >>> {name: round(float(value), 4) for name, value in stats.compute().items()}
        {'mse': 0.3333, 'rmse': 0.5774, 'mae': 0.3333, 'r2': 0.875}
    """

    #: batches, and rows, kept before they are summed (bounds the memory they hold)
    FOLD_EVERY = 64
    FOLD_ROWS = 1 << 16

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Start a new fit: the targets' shift is chosen again from its first batch."""
        self.shift: Tensor | None = None
        self.reset()

    def reset(self) -> None:
        """Start a new epoch (the shift is kept: any constant serves)."""
        #: the epoch's sums of the batches folded so far, shape (4, targets)
        self.folded: Tensor | None = None
        #: (predictions, targets) of the batches not yet summed
        self.batches: list[tuple[Tensor, Tensor]] = []
        self.count = 0
        self._kept_rows = 0

    def update(self, preds: Tensor, targets: Tensor) -> None:
        """Add a batch: ``preds`` and ``targets`` of shape (batch, targets), detached."""
        if self.shift is None:
            self.shift = targets.mean(0)
        self.batches.append((preds, targets))
        self.count += len(targets)
        self._kept_rows += len(targets)
        if len(self.batches) >= self.FOLD_EVERY or self._kept_rows >= self.FOLD_ROWS:
            self.folded = self.sums

    def close(self) -> "TrainStats":
        """The finished epoch, as stats of its own; these start the next epoch."""
        done = TrainStats()
        done.shift, done.folded, done.batches = self.shift, self.folded, self.batches
        done.count, done._kept_rows = self.count, self._kept_rows
        self.reset()
        return done

    @property
    def sums(self) -> Tensor | None:
        """The epoch's sums so far, shape (4, targets): Σd², Σ|d|, Σ(y-c), Σ(y-c)²."""
        if self.count == 0:
            return None
        if self.batches:
            self.folded = epoch_sums([self], self.shift)[0]  # type: ignore[arg-type]
            self.batches, self._kept_rows = [], 0
        return self.folded

    def compute(self) -> dict[str, float]:
        """The epoch's metrics so far (``{}`` before its first batch)."""
        sums = self.sums
        return {} if sums is None else epoch_metrics(sums[None], [self.count])[0]


def epoch_sums(epochs: list[TrainStats], shift: Tensor) -> Tensor:
    """:attr:`TrainStats.sums` of several epochs at once, shape (epochs, 4, targets).

    Each epoch's kept batches are summed in one pass over all of them, its folded
    sums added; ``shift`` is subtracted from the targets.
    """
    batches = [batch for epoch in epochs for batch in epoch.batches]
    if not batches:
        return torch.stack([epoch.folded for epoch in epochs])  # type: ignore[misc]
    preds = torch.cat([p for p, _ in batches])
    targets = torch.cat([y for _, y in batches])
    diff = preds - targets
    centred = targets - shift
    rows = torch.stack((diff * diff, diff.abs(), centred, centred * centred), 1)  # (R, 4, T)
    sizes = [sum(len(y) for _, y in epoch.batches) for epoch in epochs]
    if all(size == sizes[0] for size in sizes):  # every epoch the same rows: one sum
        sums = rows.view(len(epochs), sizes[0], *rows.shape[1:]).sum(1)
    else:  # a sum per epoch, in row order (no atomics: the same numbers on any device)
        sums = torch.stack([part.sum(0) for part in rows.split(sizes)])
    for i, epoch in enumerate(epochs):
        if epoch.folded is not None:
            sums[i] += epoch.folded
    return sums


def epoch_metrics(sums: Tensor, counts: list[int]) -> list[dict[str, float]]:
    """MSE, RMSE, MAE and R² of each epoch from its :attr:`TrainStats.sums`.

    ``sums`` has shape (epochs, 4, targets), ``counts`` the epochs' numbers of rows.
    Worked out for all epochs at once in float64, fetched from the device in one go.
    R² is averaged over targets; near-constant targets count as torchmetrics'
    ``R2Score`` counts them.

    Example:
        >>> sums = torch.tensor([[[2.0], [2.0], [0.0], [8.0]]])  # Σd², Σ|d|, Σ(y-c), Σ(y-c)²
        >>> epoch_metrics(sums, [4])
        [{'mse': 0.5, 'rmse': 0.7071067811865476, 'mae': 0.5, 'r2': 0.75}]
    """
    # a few dozen numbers: numpy on the host does them faster than torch ops would
    squares, absolute, centred, centred_squares = sums.double().cpu().numpy().transpose(1, 0, 2)
    rows = np.asarray(counts, dtype=np.float64)[:, None]  # (epochs, 1)
    values = squares.shape[-1] * rows[:, 0]
    mse = squares.sum(-1) / values
    tss = centred_squares - centred * centred / rows
    has_rss, has_tss = np.abs(squares) > 1e-4, np.abs(tss) > 1e-4
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(has_rss & has_tss, 1 - squares / tss, (~has_rss).astype(np.float64))
    r2 = np.where(rows[:, 0] >= 2, scores.mean(-1), np.nan)
    table = np.stack((mse, np.sqrt(mse), absolute.sum(-1) / values, r2), 1).tolist()
    return [dict(zip(("mse", "rmse", "mae", "r2"), row, strict=True)) for row in table]


class StepLog:
    """What a training run logs, buffered, and written to the Trainer's loggers in bulk.

    :meth:`add_loss` keeps one step's loss (a tensor, never synced); :meth:`add` keeps
    other values at a step; :meth:`flush` averages the losses over processes (one
    collective for the whole buffer), converts everything to numbers at once, and
    writes it. ``train/rmse`` is written beside every ``train/loss``; per-step values
    are written every ``trainer.log_every_n_steps`` steps, as Lightning would.

    Attributes:
        listeners: called with ``(steps, losses)`` at each flush, in step order.
        producers: called at the start of each flush, to :meth:`add` values worked
            out in bulk (the convergence monitor's gaps).
    """

    def __init__(self) -> None:
        self.listeners: list[LossListener] = []
        self.producers: list[Callable[[], None]] = []
        self._steps: list[int] = []
        self._losses: list[Tensor] = []
        self._values: list[tuple[int, dict[str, float]]] = []
        self._files: dict[str, EventFile] = {}

    def __len__(self) -> int:
        return len(self._losses)

    def add_loss(self, step: int, loss: Tensor) -> None:
        """Keep ``loss`` (a 0-dim tensor, already averaged for this process) of ``step``."""
        self._steps.append(step)
        self._losses.append(loss)

    def add(self, trainer: "pl.Trainer", step: int, values: dict[str, float]) -> None:
        """Keep ``values`` (numbers, the same on every process) to be written at ``step``;
        they are in ``trainer.callback_metrics`` at once."""
        self.add_rows(trainer, [(step, values)])

    def add_rows(self, trainer: "pl.Trainer", rows: list[tuple[int, dict[str, float]]]) -> None:
        """Keep several steps' values at once, in step order; ``callback_metrics`` gets
        the last of each name, as if they had been added one by one."""
        if not rows:
            return
        self._values.extend(rows)
        latest: dict[str, float] = {}
        for _, values in rows:
            latest.update(values)
        tensors = torch.tensor(list(latest.values())).unbind()  # one tensor made, not one each
        trainer.callback_metrics.update(zip(latest, tensors, strict=True))

    def flush(self, trainer: "pl.Trainer") -> None:
        """Write everything kept so far; every process must call it at the same point."""
        for producer in list(self.producers):
            producer()
        rows: dict[int, dict[str, float]] = {}
        steps, losses, rmses = self._steps, [], []
        if self._losses:
            stacked = torch.stack(self._losses)
            # the global loss of a step: the mean of the processes' (weighted) losses
            reduced = trainer.strategy.reduce(stacked, reduce_op="mean")
            losses, rmses = torch.stack((reduced, reduced.sqrt())).tolist()  # one sync
            every = getattr(trainer, "log_every_n_steps", 1)  # set by the Trainer, untyped
            for step, loss, rmse in zip(steps, losses, rmses, strict=True):
                if every > 0 and (step + 1) % every == 0:  # Lightning's step-logging rule
                    rows.setdefault(step, {}).update({"train/loss": loss, "train/rmse": rmse})
        for step, values in self._values:
            rows.setdefault(step, {}).update(values)
        self._steps, self._losses, self._values = [], [], []
        if losses:
            trainer.callback_metrics["train/loss"] = torch.tensor(losses[-1])
            trainer.callback_metrics["train/rmse"] = torch.tensor(rmses[-1])
            trainer.progress_bar_metrics["train/loss"] = losses[-1]
        if rows and trainer.is_global_zero:
            self._write(trainer, sorted(rows.items()))
        if steps:
            try:
                for listener in list(self.listeners):
                    listener(steps, losses)
            except BaseException:
                self.close()  # a listener stopping the run: the file is complete as it is
                raise

    def close(self) -> None:
        """Close the event files (a later :meth:`flush` opens new ones)."""
        for file in self._files.values():
            file.close()
        self._files = {}

    def _write(self, trainer: "pl.Trainer", rows: list[tuple[int, dict[str, float]]]) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                folder = logger.log_dir
                if folder not in self._files:
                    self._files[folder] = EventFile(Path(folder), suffix=".steps")
                self._files[folder].write(rows)
            else:
                for step, values in rows:
                    logger.log_metrics(values, step=step)
