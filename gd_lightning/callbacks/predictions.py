"""Predictions to a CSV file, one column per target, one row per input row."""

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback
from torch import Tensor

from gd_lightning.callbacks._common import column_names, run_folder
from gd_lightning.io import shortest_decimal, write_csv_atomic


class PredictionWriter(Callback):
    """Write ``predict``'s results as CSV: one column per target, named after it.

    Rows come in the order of the predict loader: every row of the data, in file
    order, for this package's DataModules. With ``with_inputs`` the model's input
    columns (under their names, the values the model read) come first. Values are
    written with every digit they hold: the shortest decimal that reads back as the
    same float32, or float64 under ``precision="64-true"``. The file is written once,
    at the end, atomically: an interrupted run leaves no half-written file (and an
    earlier file of the same name stays as it was).

    Args:
        path: the CSV file to write. By default ``predictions.csv`` in the run
            folder of the checkpoint being used (the folder holding
            ``checkpoints/``), or in the log folder when there is no checkpoint.
        with_inputs: put the input columns before the predictions.
    """

    def __init__(self, path: str | None = None, with_inputs: bool = False) -> None:
        self.path = path
        self.with_inputs = with_inputs
        self._inputs: list[Tensor] = []
        self._predictions: list[Tensor] = []
        self.written: Path | None = None

    def on_predict_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._inputs, self._predictions, self.written = [], [], None

    def on_predict_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.with_inputs:
            inputs = batch[0] if isinstance(batch, list | tuple) else batch
            self._inputs.append(inputs.detach().cpu())
        self._predictions.append(outputs.detach().cpu())

    def on_predict_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.is_global_zero or not self._predictions:
            return
        predictions = torch.cat(self._predictions)
        features, targets = column_names(trainer, pl_module)
        header, columns = list(targets), [predictions]
        if self.with_inputs:
            header, columns = features + header, [torch.cat(self._inputs), predictions]
        table = torch.cat([c.to(predictions.dtype) for c in columns], dim=1)
        digits = shortest_decimal(table.dtype)
        rows = [[digits(v) for v in row] for row in table.tolist()]
        self.written = write_csv_atomic(self.destination(trainer), header, rows)
        # a progress bar still holds its line: the message goes on a line of its own
        start = "\n" if trainer.progress_bar_callback is not None else ""
        print(f"{start}wrote {len(rows)} predictions to {self.written}")

    def destination(self, trainer: "pl.Trainer") -> Path:
        """Where the CSV goes in ``trainer``'s run: see :meth:`target`."""
        return self.target(trainer.ckpt_path, run_folder(trainer))

    def target(self, checkpoint: str | Path | None, run_folder: Path) -> Path:
        """:attr:`path`, or ``predictions.csv`` in the run folder of ``checkpoint`` (the
        folder holding its ``checkpoints/``), or in ``run_folder`` without one."""
        if self.path is not None:
            return Path(self.path)
        if checkpoint:
            folder = Path(checkpoint).parent
            if folder.name == "checkpoints":
                folder = folder.parent
            return folder / "predictions.csv"
        return run_folder / "predictions.csv"
