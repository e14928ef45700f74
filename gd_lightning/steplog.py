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

import math
import os
import socket
import time
from collections.abc import Callable
from io import BufferedWriter
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter
from torch import Tensor

#: a listener gets the global steps and losses of each flush, in order
LossListener = Callable[[list[int], list[float]], None]

#: steps kept before a flush: bounds how late the divergence guard sees a loss
FLUSH_EVERY = 50


class TrainStats:
    """MSE, RMSE, MAE and R² of an epoch's training batches, from running sums.

    The same numbers as torchmetrics' ``MeanSquaredError``, ``MeanAbsoluteError``
    and ``R2Score(multioutput="uniform_average")`` over the epoch's batches, but
    accumulated with one fused update per batch: torchmetrics' own update costs
    about 100 µs per batch for the four, as much as a whole tutorial step. The
    targets are shifted by the first batch's mean before their squares are summed,
    so R² keeps its precision for targets far from zero.

    Example:
        >>> stats = TrainStats()
        >>> stats.update(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [3.0]]))
        >>> stats.update(torch.tensor([[5.0]]), torch.tensor([[5.0]]))
        >>> {name: round(float(value), 4) for name, value in stats.compute().items()}
        {'mse': 0.3333, 'rmse': 0.5774, 'mae': 0.3333, 'r2': 0.875}
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: Tensor | None = None  # (4, targets): Σd², Σ|d|, Σ(y-c), Σ(y-c)²
        self.shift: Tensor | None = None
        self.count = 0

    def update(self, preds: Tensor, targets: Tensor) -> None:
        """Add a batch: ``preds`` and ``targets`` of shape (batch, targets)."""
        if self.shift is None:
            self.shift = targets.mean(0)
        diff = preds - targets
        centred = targets - self.shift
        batch = torch.stack((diff * diff, diff.abs(), centred, centred * centred)).sum(1)
        self.sums = batch if self.sums is None else self.sums + batch
        self.count += len(targets)

    def compute(self, sums: Tensor | None = None, count: int | None = None) -> dict[str, float]:
        """The epoch's metrics, from these sums or from ``sums``/``count`` (summed over
        processes). Worked out in Python floats: a handful of numbers, fetched at once."""
        sums = self.sums if sums is None else sums
        count = self.count if count is None else count
        if sums is None or count == 0:
            return {}
        squares, absolute, centred, centred_squares = sums.double().tolist()
        mse = sum(squares) / (count * len(squares))
        scores = []
        for rss, total, total_squares in zip(squares, centred, centred_squares, strict=True):
            tss = total_squares - total * total / count
            # near-constant targets, as torchmetrics' R2Score treats them
            has_rss, has_tss = (
                not math.isclose(rss, 0, abs_tol=1e-4),
                not math.isclose(tss, 0, abs_tol=1e-4),
            )
            scores.append(1 - rss / tss if has_rss and has_tss else 0.0 if has_rss else 1.0)
        return {
            "mse": mse,
            "rmse": math.sqrt(mse),
            "mae": sum(absolute) / (count * len(absolute)),
            "r2": sum(scores) / len(scores) if count >= 2 else float("nan"),
        }


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
        self._files: dict[str, _EventFile] = {}

    def __len__(self) -> int:
        return len(self._losses)

    def add_loss(self, step: int, loss: Tensor) -> None:
        """Keep ``loss`` (a 0-dim tensor, already averaged for this process) of ``step``."""
        self._steps.append(step)
        self._losses.append(loss)

    def add(self, trainer: "pl.Trainer", step: int, values: dict[str, float]) -> None:
        """Keep ``values`` (numbers, the same on every process) to be written at ``step``;
        they are in ``trainer.callback_metrics`` at once."""
        self._values.append((step, values))
        tensors = torch.tensor(list(values.values())).unbind()  # one tensor made, not one each
        trainer.callback_metrics.update(zip(values, tensors, strict=True))

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
                    self._files[folder] = _EventFile(Path(folder))
                self._files[folder].write(rows)
            else:
                for step, values in rows:
                    logger.log_metrics(values, step=step)


class _EventFile:
    """A TensorBoard event file written directly: one event per step, all its values.

    TensorBoard reads every ``*tfevents*`` file of a run folder as one run, so these
    scalars sit beside what the logger itself writes (hyperparameters, figures).
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.steps"
        self._file: BufferedWriter = open(folder / name, "ab")  # noqa: SIM115  # kept open
        self._records = RecordWriter(self._file)
        self._records.write(
            Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
        )

    def write(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        now = time.time()
        for step, values in rows:
            summary = Summary(
                value=[Summary.Value(tag=tag, simple_value=value) for tag, value in values.items()]
            )
            self._records.write(
                Event(wall_time=now, step=step, summary=summary).SerializeToString()
            )
        self._file.flush()

    def close(self) -> None:
        self._file.close()
