"""Predictions to a CSV or Parquet file, one column per target, one row per input row."""

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch import Callback
from torch import Tensor

from gd_lightning.callbacks._common import columns_of, run_folder
from gd_lightning.data.base import normalized_name
from gd_lightning.data.tables import pyarrow_for
from gd_lightning.data.tabular import check_names
from gd_lightning.errors import InputError
from gd_lightning.io import atomic_path, check_writable, shortest_decimal, write_csv_atomic
from gd_lightning.stops import raise_if_stopped


# a plain Callback, not Lightning's BasePredictionWriter: with one, Lightning asks the
# predict loader for each batch's row indices, which the full-batch loader of this
# package's DataModules has not, and warns of it on every predict (measured with 2.6)
class PredictionWriter(Callback):
    """Write ``predict``'s results as CSV, or as Parquet when `path` ends in
    ``.parquet``: one column per target, named after it.

    Rows come in the order of the predict loader: every row of the data, in file
    order, for this package's DataModules. ``keep_columns`` names columns of the input
    table to copy through unchanged, first (an id, a date, text: what identifies a row);
    with ``with_inputs`` the model's input columns (under their names, the values the
    model read) come next. Values are written with every digit they hold: in CSV the
    shortest decimal that reads back as the same float32, or float64 under
    ``precision="64-true"`` (and for inputs the data keeps in float64, such as
    timestamps the model standardizes); in Parquet as float32 or float64 values, and
    kept columns with their types (a CSV file's as text). The file is written once, at the end,
    atomically: an interrupted run leaves no half-written file (and an earlier file of
    the same name stays as it was).

    Nothing the user keeps is replaced: the predictions never go to a file this
    predict reads (the data, the checkpoint), and the default file never replaces an
    earlier one (a second predict in the same folder writes ``predictions-2.csv``,
    then ``-3``, ...). The default name is claimed as the file is written, in one
    step: predicts started together in one folder write a file each, and each
    reports the one it wrote. A file named with ``path`` is replaced, and the line
    that reports the predictions says so.

    Column names are compared as the data compares them (``normalized_name`` in
    ``gd_lightning.data.tabular``: spaces around them dropped, Unicode's composed
    form), in ``keep_columns`` as in the file's header.

    Args:
        path: the file to write (replaced if it exists): Parquet when it ends in
            ``.parquet`` (needs pyarrow, the ``parquet`` extra), CSV otherwise. By default
            ``predictions.csv`` in the run folder of the checkpoint being used (the
            folder holding ``checkpoints/``), or in the log folder when there is no
            checkpoint, numbered when that name is taken.
        with_inputs: put the input columns before the predictions.
        keep_columns: columns of the input table (any, by name, numbers or not) copied
            to the output as the data holds them (from a CSV file: quotes decoded, spaces
            and leading zeros kept, see ``cells_as_written`` in
            ``gd_lightning.data.tabular``; from a Parquet file or a table, their values,
            with their types in a Parquet output), before everything else; the data
            must be a [`TabularDataModule`][gd_lightning.TabularDataModule] reading a
            CSV or Parquet file or a table whose header names each of them once.
    """

    def __init__(
        self,
        path: str | None = None,
        with_inputs: bool = False,
        keep_columns: list[str] | None = None,
    ) -> None:
        check_names(keep_columns, "predictions.keep_columns")
        self.path = path
        self.with_inputs = with_inputs
        self.keep_columns = list(keep_columns or [])
        #: the folder the default name is claimed in, when chosen before predicting
        #: (`use_target`); else the checkpoint's run folder or the log folder
        self.folder: Path | None = None
        self._kept: list[list[str]] = []
        self._inputs: list[Tensor] = []
        self._predictions: list[Tensor] = []
        self._destination: Path | None = None
        self.written: Path | None = None

    def on_predict_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._inputs, self._predictions, self.written = [], [], None
        datamodule: Any = getattr(trainer, "datamodule", None)
        self._destination = self.destination(trainer)
        inputs = inputs_of(datamodule, trainer.ckpt_path)
        self.check_target(self._destination, inputs, datamodule, pl_module)
        self._kept = []
        if self.keep_columns:
            kept = datamodule.typed_columns if self.parquet else datamodule.text_columns
            self._kept = kept(self.keep_columns)

    def check_target(
        self, target: Path, inputs: dict[str, Path], datamodule: Any, pl_module: Any
    ) -> None:
        """Refuse, in one line, before predicting: a ``target`` file that is a folder, one
        this predict reads (``inputs``, `check_destination`), one in a folder that takes
        no files, and `keep_columns` the data cannot give (`check_keep_columns`)."""
        fix = "choose another file with --predictions.path"
        if target.is_dir():
            raise InputError(f"cannot write the predictions to {target}: it is a folder; {fix}")
        self.check_destination(target, inputs)
        check_writable(target.parent, what="the predictions", fix=fix)
        self.check_keep_columns(datamodule, pl_module)

    def check_keep_columns(self, datamodule: Any, pl_module: "pl.LightningModule") -> None:
        """Refuse `keep_columns` in one line, before predicting: for data that is not
        a CSV file, for a column the file lacks or names twice, or for a name listed
        twice or that the output already gives another column (a target, or an input
        under ``with_inputs``); names compared as the data compares them."""
        if not self.keep_columns:
            return
        names = [normalized_name(name) for name in self.keep_columns]
        repeated = sorted({name for name in names if names.count(name) > 1})
        model_columns = list(getattr(pl_module, "target_names", []))
        if self.with_inputs:
            model_columns += list(getattr(pl_module, "feature_names", []))
        model_columns = [normalized_name(name) for name in model_columns]
        taken = [name for name in names if name in model_columns]
        if repeated or taken:
            name = (repeated or taken)[0]
            why = "more than once" if repeated else "and the output has a column of that name"
            raise InputError(
                f"predictions.keep_columns lists {name!r} {why}: each output column needs a "
                f"name of its own (rename the column in the file, or leave it out)"
            )
        if not callable(getattr(datamodule, "check_columns", None)):
            raise InputError(
                "predictions.keep_columns copies columns of the input table: predict with a "
                "TabularDataModule reading a CSV or Parquet file (data.csv_path, "
                "data.parquet_path)"
            )
        datamodule.check_columns(names, "predictions.keep_columns")

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
        if not isinstance(outputs, Tensor):  # a table (data given as a table in memory)
            names = columns_of(trainer, pl_module)[1]
            outputs = torch.from_numpy(np.column_stack([np.asarray(outputs[n]) for n in names]))
        self._predictions.append(outputs.detach().cpu())
        # Lightning's predict loop never looks at SIGTERM: under the command line, stop
        # at the next batch rather than predict every row and drop the file at the end
        raise_if_stopped()

    def on_predict_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.is_global_zero or not self._predictions:
            return
        predictions = torch.cat(self._predictions)
        features, targets = columns_of(trainer, pl_module)
        header, blocks = list(targets), [predictions]
        if self.with_inputs:
            header, blocks = features + header, [torch.cat(self._inputs), predictions]
        if self.keep_columns and len(self._kept) != len(predictions):
            raise InputError(
                f"predictions.keep_columns found {len(self._kept)} rows in the data but "
                f"{len(predictions)} were predicted: the file changed while predicting, or "
                f"the data is not the file's rows in order; nothing was written"
            )
        kept_names = [normalized_name(name) for name in self.keep_columns]
        if self.parquet:
            write = parquet_writer(kept_names, self._kept, header, blocks)
        else:
            write = csv_writer(kept_names, self._kept, header, blocks)
        destination = self._destination or self.destination(trainer)
        replaced = self.path is not None and destination.exists()
        if self.path is None:
            self.written = write_unused(destination.with_name(DEFAULT_NAME), write)
        else:
            self.written = write(destination, True)
        # a progress bar still holds its line: the message goes on a line of its own
        start = "\n" if trainer.progress_bar_callback is not None else ""
        count = len(predictions)
        noun = "prediction" if count == 1 else "predictions"
        note = " (it replaced the file of that name)" if replaced else ""
        print(f"{start}wrote {count} {noun} to {self.written}{note}")

    def destination(self, trainer: "pl.Trainer") -> Path:
        """Where the CSV goes in ``trainer``'s run: see `target` (the default name in
        `folder` when `use_target` chose it)."""
        if self.path is None and self.folder is not None:
            return unused_name(self.folder / DEFAULT_NAME)
        return self.target(trainer.ckpt_path, run_folder(trainer))

    def target(self, checkpoint: str | Path | None, run_folder: Path) -> Path:
        """`path`, or the first free name of ``predictions.csv``, ``predictions-2.csv``,
        ... (`unused_name`) in the run folder of ``checkpoint`` (the folder holding its
        ``checkpoints/``), or in ``run_folder`` without one. The default name is only
        claimed as the file is written: another may be taken by then."""
        if self.path is not None:
            return Path(self.path)
        folder = run_folder
        if checkpoint:
            folder = Path(checkpoint).parent
            if folder.name == "checkpoints":
                folder = folder.parent
        return unused_name(folder / DEFAULT_NAME)

    def use_target(self, target: Path) -> None:
        """Write where `target` said before predicting (``target``, checked), whatever
        the Trainer says then: the named `path`, or for the default name ``target``'s
        folder, in which the first free name is claimed as the file is written."""
        if self.path is None:
            self.folder = target.parent

    def check_destination(self, destination: Path, inputs: dict[str, Path]) -> None:
        """Refuse, in one line, to write the predictions over a file this predict reads
        (``inputs``: what each is, and its path) or into a file whose name says it is
        no CSV file (a checkpoint, an array, a config)."""
        for what, path in inputs.items():
            if same_file(destination, path):
                raise InputError(
                    f"predictions.path {destination} is {what}, which this predict reads: "
                    f"choose another file with --predictions.path"
                )
        if destination.suffix.lower() in NOT_CSV:
            raise InputError(
                f"predictions.path {destination} names a {destination.suffix} file, not a "
                f"CSV or Parquet file: choose a .csv or .parquet file with --predictions.path"
            )
        if self.parquet:
            pyarrow_for("writing the predictions as Parquet")

    @property
    def parquet(self) -> bool:
        """Whether the predictions go to a Parquet file: `path` ends in ``.parquet``."""
        return self.path is not None and Path(self.path).suffix.lower() == ".parquet"


#: the file the predictions go to by default, numbered when taken (`unused_name`)
DEFAULT_NAME = "predictions.csv"

#: file name endings of what the package reads, which predictions never replace
NOT_CSV = (".ckpt", ".npy", ".npz", ".yaml", ".yml", ".pt", ".pth")


def inputs_of(datamodule: Any, checkpoint: str | Path | None) -> dict[str, Path]:
    """The files a predict reads, by what they are: the data's and the checkpoint."""
    inputs = {}
    for option in ("csv_path", "parquet_path", "features_path", "targets_path"):
        value = getattr(datamodule, option, None)
        if value:
            inputs[f"the data (data.{option})"] = Path(str(value))
    if checkpoint:
        inputs["the checkpoint (ckpt_path)"] = Path(str(checkpoint))
    return inputs


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (by identity when both exist, else by path)."""
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def unused_name(path: Path) -> Path:
    """``path``, or when it exists the first of ``stem-2.ext``, ``stem-3.ext``, ... that
    does not.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> unused_name(folder / "p.csv").name
        'p.csv'
        >>> _ = (folder / "p.csv").write_text("x")
        >>> unused_name(folder / "p.csv").name
        'p-2.csv'
    """
    number, candidate = 1, path
    while os.path.lexists(candidate):  # a link to nothing is a name taken too
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def write_unused(path: Path, write: "Callable[[Path, bool], Path]") -> Path:
    """Write the file to `unused_name` ``(path)`` (``write(path, overwrite)``) and return
    the name written: the name
    is claimed in the step that gives the file its name, which fails when the name was
    taken since it was chosen (another predict writing into the same folder): the next
    free name is taken then, and no file is ever replaced."""
    while True:
        candidate = unused_name(path)
        try:
            return write(candidate, False)
        except FileExistsError:
            if not os.path.lexists(candidate):  # not the name taken (its folder, say)
                raise


def csv_writer(
    kept_names: list[str], kept: list[list[str]], header: list[str], blocks: list[Tensor]
) -> Callable[[Path, bool], Path]:
    """Write the predictions as CSV (``write(path, overwrite)``): the kept columns'
    text first, then ``header``'s columns from ``blocks``, each value with every digit
    its dtype holds."""
    rows: list[list[object]] = [list(cells) for cells in kept] or [
        [] for _ in range(len(blocks[0]))
    ]
    for block in blocks:
        digits = shortest_decimal(block.dtype)
        for row, values in zip(rows, block.tolist(), strict=True):
            row.extend(digits(value) for value in values)
    return lambda path, overwrite: write_csv_atomic(
        path, kept_names + header, rows, overwrite=overwrite
    )


def parquet_writer(
    kept_names: list[str], kept: Any, header: list[str], blocks: list[Tensor]
) -> Callable[[Path, bool], Path]:
    """Write the predictions as Parquet (``write(path, overwrite)``), atomically: the
    kept columns (a pyarrow Table) with their types first, then ``header``'s columns
    from ``blocks`` in their dtype (float32, or float64)."""
    pa = pyarrow_for("writing the predictions as Parquet")
    parquet = importlib.import_module("pyarrow.parquet")
    columns = {name: kept.column(i) for i, name in enumerate(kept_names)}
    names = iter(header)
    for block in blocks:  # each column in its block's dtype
        columns.update((next(names), column) for column in block.numpy().T)
    table = pa.table(columns)

    def write(path: Path, overwrite: bool) -> Path:
        with atomic_path(path, overwrite=overwrite) as tmp:
            parquet.write_table(table, tmp)
        return path

    return write
