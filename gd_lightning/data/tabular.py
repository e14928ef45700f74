"""Your own data: a CSV file with a header, or a pair of ``.npy`` arrays."""

import csv
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gd_lightning.data.base import TensorDataModule
from gd_lightning.data.mapped import MappedDataset
from gd_lightning.data.standardize import Standardization
from gd_lightning.errors import InputError


class TabularDataModule(TensorDataModule):
    """Features and targets from a CSV file, or from two ``.npy`` files.

    Give either ``csv_path`` (a comma-separated file whose first line names the
    columns) or both ``features_path`` and ``targets_path`` (NumPy arrays of one
    row per sample; a 1-D array is one column).

    For a CSV, ``targets`` names the target columns and ``features`` the input
    columns (all the other columns when left out). For ``.npy`` files the two
    lists are optional names for the arrays' columns (``x0, x1, ...`` and
    ``y0, ...`` otherwise).

    The file's header or array shapes are read at construction, so mistakes
    (a missing file, an unknown column) surface at once and ``in_features`` and
    ``out_features`` are known; the values are read in :meth:`setup`.

    With ``memory_map=True`` the ``.npy`` files are never loaded whole: they stay
    memory-mapped (NumPy's ``mmap_mode="r"``), each batch is gathered from the maps
    (see :class:`~gd_lightning.data.mapped.MappedDataset`), and the checks for
    missing values and the standardization statistics read the files a block at a
    time. Memory then holds batches, not the data, for files bigger than memory.
    It needs a ``batch_size``. The least-squares reference of the convergence
    monitor, ``lr: auto`` and the figures need the data in memory and are off.

    Args:
        csv_path: a CSV file with a header line.
        features_path: a ``.npy`` array of features, shape (rows,) or (rows, in_features).
        targets_path: a ``.npy`` array of targets, shape (rows,) or (rows, out_features).
        features: input column names.
        targets: target column names (required with ``csv_path``).
        memory_map: keep the ``.npy`` files memory-mapped instead of loading them.
        **kwargs: batching and splitting options of :class:`TensorDataModule`.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "houses.csv"
        >>> _ = path.write_text("area,rooms,price\\n50,2,100\\n80,3,160\\n120,4,230\\n")
        >>> dm = TabularDataModule(csv_path=str(path), targets=["price"])
        >>> dm.feature_names, dm.in_features, dm.out_features
        (['area', 'rooms'], 2, 1)
        >>> dm.load()[1].T
        tensor([[100., 160., 230.]])
    """

    def __init__(
        self,
        csv_path: str | None = None,
        features_path: str | None = None,
        targets_path: str | None = None,
        features: list[str] | None = None,
        targets: list[str] | None = None,
        memory_map: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.memory_map = memory_map
        if memory_map and features_path is None:
            raise InputError("data.memory_map works with .npy files: give data.features_path")
        if memory_map and self.batch_size is None:
            raise InputError(
                "data.memory_map reads the data a batch at a time: set data.batch_size "
                "(a full batch would load the whole file)"
            )
        self.csv_path = csv_path
        self.features_path = features_path
        self.targets_path = targets_path
        if csv_path is not None and features_path is None and targets_path is None:
            self._columns = self._read_csv_header(Path(csv_path), features, targets)
        elif csv_path is None and features_path is not None and targets_path is not None:
            self._read_npy_shapes(Path(features_path), Path(targets_path), features, targets)
        else:
            raise InputError(
                "give either data.csv_path, or both data.features_path and data.targets_path"
            )

    # --- CSV -------------------------------------------------------------------------

    def _read_csv_header(
        self, path: Path, features: list[str] | None, targets: list[str] | None
    ) -> list[int]:
        """Check the header against the chosen columns; return their positions."""
        _check_file(path)
        with path.open(newline="") as file:
            header = next(csv.reader(file, skipinitialspace=True), None)
        if not header or not any(name.strip() for name in header):
            raise InputError(f"{path} is empty: it needs a header line naming the columns")
        header = [name.strip() for name in header]
        if not targets:
            raise InputError(
                f"name the target column(s) of {path} with data.targets; its columns are: "
                f"{', '.join(header)}"
            )
        if features is None:
            features = [name for name in header if name not in targets]
        for name in features + targets:
            if name not in header:
                raise InputError(
                    f"column {name!r} is not in {path}; its columns are: {', '.join(header)}"
                )
            if header.count(name) > 1:
                raise InputError(
                    f"column {name!r} appears {header.count(name)} times in the header of "
                    f"{path}: give each column a unique name"
                )
        for names, what in ((features, "features"), (targets, "targets")):
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise InputError(f"data.{what} lists {', '.join(repeated)} more than once")
        both = [name for name in features if name in targets]
        if both:
            raise InputError(
                f"column(s) {', '.join(both)} are listed both as features and as targets: "
                f"a model must not see its own target"
            )
        if not features:
            raise InputError(f"{path} has no feature columns left besides the targets")
        self.feature_names = list(features)
        self.target_names = list(targets)
        self._header = header
        return [header.index(name) for name in features + targets]

    def _load_csv(self, path: Path) -> np.ndarray:
        """The chosen columns as float32, (rows, in_features + out_features)."""
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "loadtxt: input contained no data")
                table = np.loadtxt(
                    path,
                    delimiter=",",
                    skiprows=1,
                    usecols=self._columns,
                    dtype=np.float32,
                    ndmin=2,
                    quotechar='"',
                )
        except ValueError as err:
            _check_rows(path, self._header, self._columns)
            raise InputError(f"{path} could not be read as numbers: {err}") from None
        # NumPy reads the chosen columns only: a row with extra cells passes unseen
        _check_rows(path, self._header, columns=[])
        if len(table) == 0:
            raise InputError(f"{path} has a header but no data rows")
        return table

    # --- NumPy -----------------------------------------------------------------------

    def _read_npy_shapes(
        self,
        features_path: Path,
        targets_path: Path,
        features: list[str] | None,
        targets: list[str] | None,
    ) -> None:
        """Check both arrays' dtype and shape from their headers; name their columns."""
        shapes = []
        for path, what in ((features_path, "features"), (targets_path, "targets")):
            array = _open_npy(path)
            if array.ndim not in (1, 2):
                raise InputError(
                    f"{path} holds an array of shape {array.shape}; {what} must be 1-D "
                    f"(one column) or 2-D (rows, columns)"
                )
            if np.issubdtype(array.dtype, np.complexfloating):
                raise InputError(
                    f"{path} holds complex numbers ({array.dtype}); {what} must be real: save "
                    f"the real and imaginary parts as columns of their own"
                )
            if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
                raise InputError(
                    f"{path} holds {array.dtype} values; {what} must be numbers: save it "
                    f"with a numeric dtype such as float32"
                )
            shapes.append(array.shape)
        (num_x, *x_cols), (num_y, *y_cols) = shapes
        if num_x != num_y:
            raise InputError(
                f"{features_path} has {num_x} rows but {targets_path} has {num_y}: "
                f"features and targets need one row each per sample"
            )
        self.feature_names = _column_names(features, x_cols[0] if x_cols else 1, "x", "features")
        self.target_names = _column_names(targets, y_cols[0] if y_cols else 1, "y", "targets")

    def _setup_mapped(self) -> None:
        """The memory-mapped splits: row numbers into the files, checked block by block."""
        full = MappedDataset(str(self.features_path), str(self.targets_path))
        first = 0
        for x, y in full.chunks():
            self._check(x, y, first_row=first)
            first += len(x)
        train_rows, val_rows, test_rows = self._split(len(full))
        self.full_set = full
        self.train_set = full.subset(train_rows)
        self.val_set = full.subset(val_rows)
        self.test_set = full.subset(test_rows)
        if self.standardize_features or self.standardize_targets:
            self.standardization = Standardization.from_chunks(
                self.train_set.chunks(), self.standardize_features, self.standardize_targets
            )

    # --- both ------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.memory_map and self.full_set is None:
            self._setup_mapped()
        super().setup(stage)

    def load(self) -> tuple[Tensor, Tensor]:
        """The features and targets, as the column blocks of one table (so the dataset
        built on them needs no copy of its own)."""
        if self.csv_path is not None:
            table = self._load_csv(Path(self.csv_path))  # the chosen columns, in order
        else:
            table = self._load_npy_table()
        table_tensor = torch.from_numpy(table)
        return table_tensor[:, : self.in_features], table_tensor[:, self.in_features :]

    def _load_npy_table(self) -> np.ndarray:
        """Both ``.npy`` arrays side by side, float32 (rows, in_features + out_features),
        copied a block at a time from their memory maps straight into the table."""
        x, y = (_open_npy(Path(str(path))) for path in (self.features_path, self.targets_path))
        rows = len(x)
        table = np.empty((rows, self.in_features + self.out_features), dtype=np.float32)
        for start in range(0, rows, NPY_BLOCK_ROWS):
            block = slice(start, start + NPY_BLOCK_ROWS)
            table[block, : self.in_features] = x[block].reshape(-1, self.in_features)
            table[block, self.in_features :] = y[block].reshape(-1, self.out_features)
        return table


#: rows copied from a memory map at a time
NPY_BLOCK_ROWS = 1 << 16


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"no such file: {path}; check the path in the config")


def _open_npy(path: Path) -> np.ndarray:
    """The array in ``path``, memory-mapped: only its header is read here."""
    _check_file(path)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise InputError(f"{path} is not a plain .npy array of numbers ({err})") from None
    except OSError as err:
        raise InputError(f"{path} is not a readable .npy file ({err})") from None


def _column_names(names: list[str] | None, count: int, stem: str, what: str) -> list[str]:
    if names is None:
        return [f"{stem}{i}" for i in range(count)]
    if len(names) != count:
        raise InputError(
            f"data.{what} names {len(names)} column(s) but the array has {count}: "
            f"give one name per column"
        )
    return list(names)


def _check_rows(path: Path, header: list[str], columns: list[int]) -> None:
    """Refuse the first row whose length differs from the header's, or whose cell in
    one of ``columns`` is not a number."""
    with path.open(newline="") as file:
        reader = csv.reader(file, skipinitialspace=True)
        next(reader)
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{path}, line {line}: {len(row)} cells where the header has "
                    f"{len(header)}: every row needs one cell per column"
                )
            for column in columns:
                cell = row[column].strip()
                try:
                    float(cell)
                except ValueError:
                    shown = repr(cell) if cell else "empty"
                    raise InputError(
                        f"{path}, line {line}, column {header[column]!r}: {shown} is not a "
                        f"number: fix or remove that row"
                    ) from None
