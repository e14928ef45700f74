"""Rows of a Parquet file bigger than memory: read a row group at a time, batches gathered
from the groups in memory."""

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from gd_lightning.data.tables import ColumnTable


class ParquetRows(Dataset):
    """Some or all rows of the columns ``names`` of a Parquet file, read a row group at a
    time.

    ``dataset[index_tensor]`` or ``dataset[slice]`` gathers one batch, as a features
    and a targets tensor (the first ``in_features`` of ``names``, then the rest) in
    `dtypes`, from the row groups it holds: the two it read last (shared with its
    `subset` datasets), each read whole (its columns ``names`` only) and checked as the
    whole file was when the DataModule set up. Memory holds those groups and the
    batches, not the file. A `RowGroupBatchSampler` over `group_bounds` asks for the
    rows group after group, so each group is read once an epoch. The file is opened
    lazily, so the dataset travels to ``DataLoader`` worker processes as a path and row
    numbers, not as the data; each worker then reads the groups its batches need, and
    holds two of its own.

    Args:
        path: the Parquet file.
        names: the columns read, features first.
        in_features: how many of ``names`` are features.
        read_dtype: the NumPy dtype the columns are read in (float64, or float32 where
            every column holds only values float32 holds exactly).
        dtypes: the batches' features' and targets' dtypes.
        rows: the file rows this dataset serves, in order (``None``: all of them).
        check: checks each column of a group as it is read (``ColumnTable.read``'s).
    """

    def __init__(
        self,
        path: str | Path,
        names: list[str],
        in_features: int,
        read_dtype: type,
        dtypes: tuple[torch.dtype, torch.dtype],
        rows: Tensor | None = None,
        check: Callable[..., None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.names, self.in_features = names, in_features
        self.read_dtype, self.dtypes, self.rows, self.check = read_dtype, dtypes, rows, check
        self._table: ColumnTable | None = None
        self._groups: dict[int, np.ndarray] = {}
        self._starts: np.ndarray | None = None

    @property
    def table(self) -> "ColumnTable":
        """The file's columns (its footer read once)."""
        if self._table is None:
            # imported here: the tables module builds on the DataModules' base module,
            # which serves this dataset
            tables = importlib.import_module("gd_lightning.data.tables")
            self._table = tables.open_parquet(self.path)
        return self._table

    @property
    def starts(self) -> np.ndarray:
        """The file row each row group starts at, and the number of rows after the last."""
        if self._starts is None:
            self._starts = np.cumsum([0, *self.table.group_rows])
        return self._starts

    @property
    def group_bounds(self) -> Tensor:
        """Where each row group's rows start among this dataset's, and its length at the
        end: group ``g`` holds the dataset's rows ``bounds[g]`` to ``bounds[g + 1]``."""
        if self.rows is None:
            return torch.from_numpy(self.starts)
        return torch.from_numpy(np.searchsorted(self.rows.numpy(), self.starts))

    def subset(self, rows: Tensor | None) -> "ParquetRows":
        """The dataset of the file rows ``rows`` (``None``: all), sharing this one's file."""
        subset = ParquetRows(self.path, self.names, self.in_features, self.read_dtype,
                             self.dtypes, rows, self.check)  # fmt: skip
        subset._table, subset._groups = self._table, self._groups  # one file, one cache
        return subset

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else self.table.rows

    def group(self, index: int) -> np.ndarray:
        """Row group ``index``'s columns, (rows, len(names)): read now, or kept from a
        recent read (the last two)."""
        values = self._groups.get(index)
        if values is None:
            values = self.table.read(self.names, self.read_dtype, self.check, group=index)
            if len(self._groups) >= 2:
                del self._groups[next(iter(self._groups))]
            self._groups[index] = values
        return values

    def __getitem__(self, index: Tensor | slice | int) -> tuple[Tensor, Tensor]:
        if isinstance(index, int):
            index = slice(index, index + 1)
        if self.rows is not None:
            rows = self.rows[index].numpy()
        elif isinstance(index, Tensor):
            rows = index.cpu().numpy()
        else:
            rows = np.arange(len(self))[index]
        starts = self.starts
        groups = np.searchsorted(starts, rows, side="right") - 1
        values: np.ndarray
        if not len(rows):
            values = np.empty((0, len(self.names)), dtype=self.read_dtype)
        elif (groups == groups[0]).all():  # the common case: one group
            values = self.group(int(groups[0]))[rows - starts[groups[0]]]
        else:  # a batch across groups: each group's rows from it
            values = np.empty((len(rows), len(self.names)), dtype=self.read_dtype)
            for group in np.unique(groups):
                mine = groups == group
                values[mine] = self.group(int(group))[rows[mine] - starts[group]]
        return self._tensors(values)

    def _tensors(self, values: np.ndarray) -> tuple[Tensor, Tensor]:
        table = torch.from_numpy(values)
        features, targets = table[:, : self.in_features], table[:, self.in_features :]
        return features.to(self.dtypes[0]).contiguous(), targets.to(self.dtypes[1]).contiguous()

    @property
    def dtype(self) -> torch.dtype:
        """The features' dtype."""
        return self.dtypes[0]

    def chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        """All rows in order, a row group at a time (reads the file once, in order)."""
        bounds = self.group_bounds.tolist()
        for group, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            if end > start:
                yield (
                    self[slice(start, end)]
                    if self.rows is not None
                    else self._tensors(self.group(group))
                )

    def __getstate__(self) -> dict[str, Any]:
        # a worker opens the file itself, and keeps groups of its own
        return {**self.__dict__, "_table": None, "_groups": {}}
