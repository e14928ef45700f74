"""Predictions to a CSV file, with the inputs they were made from."""

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from gd_lightning.callbacks._common import column_names, run_folder
from gd_lightning.io import shortest_float32, write_csv_atomic


class PredictionWriter(BasePredictionWriter):
    """Write ``predict``'s results as CSV: the input columns, then one column per target.

    Input columns keep the data's names; predicted columns are called
    ``predicted_<target>``. Rows come in the order of the predict loader (every row
    of the data, in file order, for this package's DataModules). The file is
    written once, at the end, atomically: an interrupted run leaves no half-written
    file (and an earlier file of the same name stays as it was).

    Args:
        path: the CSV file to write. By default ``predictions.csv`` in the run
            folder of the checkpoint being used (the folder holding
            ``checkpoints/``), or in the log folder when there is no checkpoint.
    """

    def __init__(self, path: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.path = path
        self._inputs: list[Tensor] = []
        self._predictions: list[Tensor] = []
        self.written: Path | None = None

    def on_predict_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._inputs, self._predictions, self.written = [], [], None

    def write_on_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        inputs = batch[0] if isinstance(batch, list | tuple) else batch
        self._inputs.append(inputs.detach().cpu())
        self._predictions.append(prediction.detach().cpu())

    def on_predict_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.is_global_zero or not self._predictions:
            return
        inputs, predictions = torch.cat(self._inputs), torch.cat(self._predictions)
        features, targets = column_names(trainer, inputs.shape[1], predictions.shape[1])
        header = features + [f"predicted_{name}" for name in targets]
        table = torch.cat([inputs.float(), predictions.float()], dim=1).tolist()
        rows = [[shortest_float32(v) for v in row] for row in table]
        self.written = write_csv_atomic(self._target(trainer), header, rows)
        print(f"wrote {len(table)} predictions to {self.written}")

    def _target(self, trainer: "pl.Trainer") -> Path:
        if self.path is not None:
            return Path(self.path)
        if trainer.ckpt_path:
            checkpoint = Path(trainer.ckpt_path)
            folder = checkpoint.parent
            if folder.name == "checkpoints":
                folder = folder.parent
            return folder / "predictions.csv"
        return run_folder(trainer) / "predictions.csv"
