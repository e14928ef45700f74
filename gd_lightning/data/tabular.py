"""Your own data: a CSV or Parquet file, a table in memory (a pandas or polars
DataFrame, a pyarrow Table, NumPy arrays with names), or a pair of ``.npy`` arrays."""

import csv
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gd_lightning.data.base import TensorDataModule, default_names, normalized_name
from gd_lightning.data.mapped import MappedDataset
from gd_lightning.data.reference import OnePass
from gd_lightning.data.standardize import ColumnMoments
from gd_lightning.data.streamed import ParquetRows
from gd_lightning.data.tables import (
    PARQUET_MAGIC,
    ColumnTable,
    kind_of,
    open_parquet,
    open_table,
    pyarrow_for,
    table_like,
)
from gd_lightning.errors import InputError


class TabularDataModule(TensorDataModule):
    """Features and targets from a CSV or Parquet file, a table in memory, or ``.npy``
    files.

    Give one source:

    - ``csv_path``: a comma-separated UTF-8 file whose first line names the columns;
    - ``parquet_path``: a Parquet file (needs pyarrow: ``pip install
      'gd-lightning[parquet]'``), of which only the columns used are read;
    - ``table``, from Python: a pandas (2.2 or newer) or polars DataFrame, a pyarrow
      Table, any table that exports Arrow data (``__arrow_c_stream__``), a dict of
      1-D NumPy arrays by name, or a 2-D NumPy array with ``columns`` naming its
      columns. DataFrames are read through Arrow, with pyarrow (the same extra); the
      package imports no DataFrame library, and pyarrow only when it is handed one. A
      pandas index is not a column. Predicting on such a table returns a table of the
      same kind (a dict of arrays for NumPy; a pandas one under the index labels of
      the rows it predicts) with one column per target, named after it: see
      `predictions_table`. The table is not saved in checkpoints;
    - ``features_path``: a NumPy array of one row per sample (a 1-D array is one
      column), with ``targets_path`` for the targets.

    Columns are matched by name, never by position. For a CSV or Parquet file or a
    table, ``targets`` names the target columns and ``features`` the input columns
    (all the other columns when left out); other columns are ignored (whatever they
    hold: text, dates, categories, missing values), and the order of the columns
    does not matter. For ``.npy`` files the two lists name the arrays' columns
    (``x0, x1, ...`` and ``y0, ...`` otherwise), which are taken in order.

    A used column of a Parquet file or a table must hold numbers: integers (up to
    2⁵³, which float64 holds exactly), floats or booleans; each value is converted
    once, exactly, to float64 (or kept in float32 when every used column is float32
    or narrower, as for ``.npy`` arrays), and a column of text, dates or categories, a
    missing value (null), NaN or an infinity is refused in one line naming its column
    and row (rows of a table in memory counted from 0, as ``iloc`` counts; a file's
    from 1).

    Data without its targets (a CSV lacking the target columns, or ``features_path``
    alone) can be predicted on, not fitted: a model that knows its columns (every
    model fitted here does) then reads the file by its own feature names, whatever
    ``features`` says, and refuses a file missing one of them.

    The file's header or array shapes are read at construction, so mistakes
    (a missing file, an unknown column) surface at once and ``in_features`` and
    ``out_features`` are known; the values are read in `setup`, in float64 (a
    float32 array in float32), and kept as float64 under
    ``Trainer(precision="64-true")`` and as float32 otherwise (see `dtype`), but for
    the columns float32 cannot carry: see
    [`TensorDataModule`][gd_lightning.TensorDataModule]. A cell that is not a number
    (``#`` is an ordinary character, not a comment), an empty cell, NaN or an infinity
    is refused in one line naming its row and column.

    With ``memory_map=True`` the data is never loaded whole, for files bigger than
    memory; it needs a ``batch_size``. ``.npy`` files stay memory-mapped (NumPy's
    ``mmap_mode="r"``) and each batch is gathered from the maps (see `MappedDataset`).
    A Parquet file is read a row group at a time (see `ParquetRows`): a shuffled
    epoch takes the row groups in a random order and the rows of each in a random
    order, so memory holds two row groups of the used columns and the batches (write
    the file in row groups of a size that fits, such as pyarrow's default of about a
    million rows). One pass over the file, in order, checks every value, computes the
    standardization statistics (in float64), and sums up the training rows for the
    least-squares reference (`OnePass`), so the convergence monitor, ``lr: auto`` and
    the report have it for a linear model (two more passes refine its
    optimum where the design is so ill-conditioned that one QR keeps fewer than ten
    digits of it); the quadratic model's reference needs the data in memory.

    Args:
        csv_path: a CSV file with a header line.
        features_path: a ``.npy`` array of features, shape (rows,) or (rows, in_features).
        targets_path: a ``.npy`` array of targets, shape (rows,) or (rows, out_features).
        features: input column names.
        targets: target column names (a fit needs them; predict does not).
        memory_map: read the data a batch at a time instead of loading it: the
            ``.npy`` files memory-mapped, the Parquet file a row group at a time.
        parquet_path: a Parquet file (read through pyarrow: the ``parquet`` extra).
        table: a table held in memory, given from Python, not from the command line: a
            pandas or polars DataFrame, a pyarrow Table, a dict of NumPy columns by
            name, or a 2-D NumPy array (with ``columns``).
        columns: when ``table`` is a 2-D NumPy array, the names of its columns.
        **kwargs: batching and splitting options of
            [`TensorDataModule`][gd_lightning.TensorDataModule].

    Examples:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "houses.csv"
        >>> _ = path.write_text("area,rooms,price\\n50,2,100\\n80,3,160\\n120,4,230\\n")
        >>> dm = TabularDataModule(csv_path=str(path), targets=["price"])
        >>> dm.feature_names, dm.in_features, dm.out_features
        (['area', 'rooms'], 2, 1)
        >>> dm.load()[1].T  # read with every digit the file holds
        tensor([[100., 160., 230.]], dtype=torch.float64)
        >>> dm.setup("fit")  # held in float32, which carries these columns
        >>> dm.full_set.tensors[1].dtype
        torch.float32

        A table in memory, here NumPy columns by name:

        >>> import numpy as np
        >>> columns = {"area": np.array([50, 80, 120]), "price": np.array([100.0, 160, 230])}
        >>> TabularDataModule(table=columns, targets=["price"]).feature_names
        ['area']
    """

    FILE_OPTIONS = frozenset({"csv_path", "parquet_path", "features_path", "targets_path"})
    NOT_SAVED = frozenset({"table"})

    def __init__(
        self,
        csv_path: str | None = None,
        features_path: str | None = None,
        targets_path: str | None = None,
        features: list[str] | None = None,
        targets: list[str] | None = None,
        memory_map: bool = False,
        parquet_path: str | None = None,
        table: Any = None,
        columns: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for option, value in (("features", features), ("targets", targets),
                              ("columns", columns)):  # fmt: skip
            check_names(value, f"data.{option}")
        self.memory_map = memory_map
        if memory_map and parquet_path is None and (features_path is None or targets_path is None):
            raise InputError(
                "data.memory_map reads a Parquet file (data.parquet_path) or a pair of .npy "
                "files (data.features_path and data.targets_path) a batch at a time; CSV "
                "files and tables in memory are read into memory: write the table to "
                "Parquet to stream it"
            )
        if memory_map and self.batch_size is None:
            raise InputError(
                "data.memory_map reads the data a batch at a time: set data.batch_size "
                "(a full batch would load the whole file)"
            )
        if isinstance(table, str):
            raise InputError(
                "data.table is a table held in memory, given from Python: from the command "
                "line, read a file with data.csv_path or data.parquet_path"
            )
        self.csv_path = csv_path
        self.parquet_path = parquet_path
        self.features_path = features_path
        self.targets_path = targets_path
        self.table = table
        self.header: list[str] = []
        #: the named columns of a Parquet file or of a table in memory (`ColumnTable`)
        self.columns_table: ColumnTable | None = None
        self._has_targets = self._labeled = True
        sources = [name for name, value in (("data.csv_path", csv_path),
                   ("data.parquet_path", parquet_path), ("data.table", table),
                   ("data.features_path", features_path)) if value is not None]  # fmt: skip
        if len(sources) != 1 or (targets_path is not None and features_path is None):
            raise InputError(
                "give one source of data: data.csv_path, data.parquet_path, a table in "
                "memory (data.table, from Python), or data.features_path (with "
                "data.targets_path to fit)" + (f"; got {' and '.join(sources)}" if sources else "")
            )
        if csv_path is not None:
            self.header = read_header(Path(csv_path))
        elif parquet_path is not None or table is not None:
            self.columns_table = (open_parquet(Path(parquet_path)) if parquet_path is not None
                                  else open_table(table, columns))  # fmt: skip
            self.header = self.columns_table.header
            if not self.header:
                raise InputError(f"{self.source} has no columns")
            if not self.columns_table.rows:
                raise InputError(f"{self.source} has no rows")
        else:
            y_path = Path(targets_path) if targets_path else None
            self._widths = npy_widths(Path(str(features_path)), y_path)
        if columns is not None and table is None:
            raise InputError("data.columns names the columns of a NumPy array given as data.table")
        self.use_columns(features, targets)

    @property
    def source(self) -> str:
        """The file the data comes from, as the user gave it, or the table in memory (as
        "the pandas DataFrame")."""
        if self.table is not None:
            return kind_of(self.table)
        return str(self.csv_path or self.parquet_path or self.features_path)

    def data_files(self) -> dict[str, Path]:
        """The files read, by option: the CSV or Parquet file, or the ``.npy`` features
        (and the targets, where read); none for a table in memory."""
        options = {"csv_path": self.csv_path, "parquet_path": self.parquet_path,
                   "features_path": self.features_path,
                   "targets_path": self.targets_path if self.labeled else None}  # fmt: skip
        return {option: Path(str(value)) for option, value in options.items() if value}

    @property
    def labeled(self) -> bool:
        """Whether the data holds its targets (a fit needs them, predict does not)."""
        return self._labeled

    def use_columns(self, features: list[str] | None, targets: list[str] | None) -> None:
        """Read these columns (by name from a CSV; in order from ``.npy`` files) from now
        on; one line for a name that is missing, repeated, or both feature and target.
        Names are compared as `normalized_name` gives them."""
        features = None if features is None else [normalized_name(name) for name in features]
        targets = None if targets is None else [normalized_name(name) for name in targets]
        for names, what in ((features, "features"), (targets, "targets")):
            repeated = sorted({name for name in names or [] if (names or []).count(name) > 1})
            if repeated:
                raise InputError(f"data.{what} lists {', '.join(repeated)} more than once")
        both = [name for name in features or [] if name in (targets or [])]
        if both:
            raise InputError(
                f"column(s) {', '.join(both)} are listed both as features and as targets: "
                f"a model must not see its own target"
            )
        if self.features_path is not None:
            x_width, y_width = self._widths
            self._has_targets = self._labeled = y_width is not None
            self.feature_names = _columns_or_defaults(features, x_width, "x", "features")
            if y_width is not None:
                self.target_names = _columns_or_defaults(targets, y_width, "y", "targets")
            else:
                self.target_names = list(targets or [])
            self.full_set = None
            return
        targets = list(targets or [])
        given_features = features
        self._default_features = features is None
        present = [name for name in targets if name in self.header]
        if present and len(present) < len(targets):
            missing = next(name for name in targets if name not in self.header)
            raise InputError(self._not_in_file(missing))
        if features is None:
            features = [name for name in self.header if name not in targets]
        for name in features + present:
            self._column_index(name)
        if not features:
            raise InputError(f"{self.source} has no feature columns left besides the targets")
        if self.columns_table is not None and given_features is not None:
            # named columns are checked now; the default ones as they are read (`load`),
            # since a model's own names may replace them (predict)
            self.columns_table.check_numeric(features + present, self._numbers_fix())
        self.feature_names, self.target_names = list(features), targets
        self._has_targets = self._labeled = bool(present)
        self.full_set = None  # read again, with these columns

    def _numbers_fix(self) -> str:
        """What to do about a used column that is not numbers."""
        if self._default_features:
            return (
                "name the feature columns with data.features (left out, every column but "
                "the targets is one)"
            )
        return "leave it out of data.features, or turn it into numbers first"

    def check_labeled(self, stage: str) -> None:
        """Refuse to fit, validate or test on data without its targets."""
        if self.labeled:
            return
        need = f"{stage} needs the target column(s) (predict does not)"
        if self.features_path is not None:
            raise InputError(f"{self.source} comes without targets: {need}: give data.targets_path")
        if not self.target_names:
            raise InputError(
                f"name the target column(s) of {self.source} with data.targets; its columns "
                f"are: {', '.join(self.header)}"
            )
        raise InputError(f"{self._not_in_file(self.target_names[0])}: {need}")

    def _not_in_file(self, name: str) -> str:
        message = (
            f"column {name!r} is not in {self.source}; its columns are: {', '.join(self.header)}"
        )
        other = [sep for sep in (";", "\t", "|") if len(self.header) == 1 and sep in self.header[0]]
        if other:
            message += f" (one column: is the file separated by {other[0]!r}? save it with commas)"
        return message

    def _column_index(self, name: str, option: str = "") -> int:
        """Where the column ``name`` (compared as `normalized_name` gives it) is in the CSV
        file's header; one line, starting with ``option`` when given, for a name the
        header lacks or holds more than once (which of the two would be a guess)."""
        prefix = f"{option}: " if option else ""
        name = normalized_name(name)
        count = self.header.count(name)
        if count == 0:
            raise InputError(prefix + self._not_in_file(name))
        if count > 1:
            raise InputError(
                f"{prefix}column {name!r} appears {count} times in the header of "
                f"{self.source}: give each column a unique name"
            )
        return self.header.index(name)

    def text_columns(self, names: list[str]) -> list[list[str]]:
        """The CSV file's columns ``names``, by name, as the text of their cells: one
        list per data row, in file order (the order predictions come in), each cell
        exactly as the file holds it (an id, a date, a word), as `cells_as_written`
        reads it: quotes decoded, spaces and leading zeros kept.

        Examples:
            >>> import tempfile, pathlib
            >>> path = pathlib.Path(tempfile.mkdtemp()) / "new.csv"
            >>> _ = path.write_text('id,area,note\\nA17,50,  007\\nB02,80,"a, b"\\n')
            >>> TabularDataModule(csv_path=str(path), features=["area"]).text_columns(
            ...     ["id", "note"])
            [['A17', '  007'], ['B02', 'a, b']]
        """
        self.check_columns(names, "predictions.keep_columns")
        names = [normalized_name(name) for name in names]
        if self.columns_table is not None:  # typed values, written as Python writes them
            cells = [["" if value is None else str(value) for value in column]
                     for column in self.columns_table.python_values(names)]  # fmt: skip
            return [list(row) for row in zip(*cells, strict=True)]
        columns = [self._column_index(name) for name in names]
        path = Path(str(self.csv_path))
        return [[row[column] for column in columns] for row in cells_as_written(path, self.header)]

    def typed_columns(self, names: list[str]) -> Any:
        """The columns ``names`` as a pyarrow Table, with their types: a Parquet file's
        or a table's as they are held, a CSV file's as text (`text_columns`)."""
        self.check_columns(names, "predictions.keep_columns")
        names = [normalized_name(name) for name in names]
        if self.columns_table is not None:
            return self.columns_table.values(names)
        pa = pyarrow_for("writing predictions as Parquet")
        rows = self.text_columns(names)
        return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)},
                        schema=pa.schema([(name, pa.string()) for name in names]))  # fmt: skip

    def predictions_table(self, predictions: Tensor, batch_idx: int = 0) -> Any:
        """``predictions`` (rows, out_features) of the predict loader's batch
        ``batch_idx`` as a table of the kind the data was given as (a pandas DataFrame,
        under the index labels of the rows it predicts; a polars DataFrame; a pyarrow
        Table; a dict of NumPy arrays), one column per target, named after it;
        ``predictions`` as they are for data read from files."""
        if self.table is None:
            return predictions
        values = predictions.detach().cpu().numpy()
        rows = self.columns_table.rows if self.columns_table is not None else len(values)
        first = batch_idx * self.rows_per_batch(rows)  # predict's batches come in order
        columns = {name: values[:, i] for i, name in enumerate(self.target_names)}
        return table_like(self.table, columns, first)

    def check_columns(self, names: list[str], option: str) -> None:
        """Refuse in one line, naming ``option``, a column the data lacks or names more
        than once, or data without named columns (``.npy`` arrays)."""
        if self.features_path is not None:
            raise InputError(
                f"{option} names columns of a table, and {self.source} is a .npy array: "
                f"leave {option} out"
            )
        for name in names:
            self._column_index(name, option)

    def _load_and_split(self, stage: str | None = None) -> None:
        """As [`TensorDataModule`][gd_lightning.TensorDataModule]'s, or, with
        ``memory_map``, the splits read a batch at a time: from memory-mapped ``.npy``
        files (`_setup_mapped`) or from a Parquet file (`_setup_streamed`)."""
        self.training_pass = None
        if self.memory_map and self.parquet_path is not None:
            self._setup_streamed(stage)
        elif self.memory_map:
            self._setup_mapped(stage)
        else:
            super()._load_and_split(stage)

    def _setup_mapped(self, stage: str | None) -> None:
        """The memory-mapped splits: row numbers into the files, checked block by block,
        served in the data's dtype (features in float64 where `_load_and_split`'s rule
        keeps them so)."""
        narrow = np.float64 if self.data_dtype == torch.float64 else np.float32
        paths = (self.features_path, self.targets_path)
        full = MappedDataset(str(self.features_path), str(self.targets_path), self.data_dtype)
        # arrays holding more digits than the data's dtype are read in float64 to judge them
        wide = [not np.can_cast(array.dtype, narrow) for array in full.maps]
        full.dtypes = (torch.float64,) * 2 if any(wide) else full.dtypes
        for path, array in zip(paths, full.maps, strict=True):
            for start in range(0, len(array), MappedDataset.block_rows):
                block = array[start : start + MappedDataset.block_rows]
                check_block_fits(block, narrow, path, start)
        first = 0
        magnitudes: list[list[Tensor]] = [[], []]
        for x, y in full.chunks():
            self._check(x, y, first_row=first)
            first += len(x)
            for found, values, is_wide in zip(magnitudes, (x, y), wide, strict=True):
                if is_wide:
                    found.append(values.abs().amax(0).double())
        train_rows, val_rows, test_rows = self._split(len(full))
        training = full.subset(train_rows)
        x_magnitude, y_magnitude = (torch.stack(found).amax(0) if found else None
                                    for found in magnitudes)  # fmt: skip
        dtypes = [torch.float64 if is_wide else self.data_dtype for is_wide in wide]
        training_pass = OnePass(factor=stage != "predict")
        for x, y in training.chunks():
            training_pass.add(x, y)
        self._judge_moments(lambda: _moments(training_pass), x_magnitude, y_magnitude, *dtypes)
        self.training_pass = training_pass
        full.dtypes = (torch.float64 if self._features_in_float64(stage) else self.data_dtype,
                       self.data_dtype)  # fmt: skip
        self.full_set = full
        self.train_set = full.subset(train_rows)
        self.val_set = full.subset(val_rows)
        self.test_set = full.subset(test_rows)

    def _setup_streamed(self, stage: str | None) -> None:
        """The splits of a Parquet file, read a row group at a time (`ParquetRows`): one
        pass over the file in order checks every value (as `load` does), finds every
        column's largest magnitude, and sums up the training rows (`OnePass`: their
        standardization, and the least-squares reference)."""
        table = self.columns_table
        assert table is not None
        names = self.feature_names + (self.target_names if self.labeled else [])
        table.check_numeric(names, self._numbers_fix())
        narrow = np.float64 if self.data_dtype == torch.float64 else np.float32
        # float32 for columns it holds exactly (float32 and narrower), as for .npy
        wide = not all(np.can_cast(kind, narrow) for kind in table.dtypes(names))
        read_dtype = np.float64 if wide else narrow
        fits = FitsIn(narrow)
        train_rows, val_rows, test_rows = self._split(table.rows)
        training = None
        if train_rows is not None:
            training = np.zeros(table.rows, dtype=bool)  # a byte a row
            training[train_rows.numpy()] = True
        training_pass = OnePass(factor=stage != "predict")  # no reference to predict
        magnitude: Tensor | None = None
        start = 0
        for group, rows in enumerate(table.group_rows):
            values = torch.from_numpy(table.read(names, read_dtype, fits, group=group))
            if rows:
                found = values.abs().amax(0).double()
                magnitude = found if magnitude is None else torch.maximum(magnitude, found)
            if training is not None:
                values = values[torch.from_numpy(training[start : start + rows])]
            training_pass.add(values[:, : self.in_features], values[:, self.in_features :])
            start += rows
        assert magnitude is not None  # the file has rows (checked as it was opened)
        x_magnitude, y_magnitude = magnitude[: self.in_features], magnitude[self.in_features :]
        dtype = torch.float64 if wide else self.data_dtype
        self._judge_moments(
            lambda: _moments(training_pass),
            x_magnitude if wide else None,
            y_magnitude if wide and self.labeled else None,
            dtype,
            dtype,
        )
        self.training_pass = training_pass
        features = torch.float64 if self._features_in_float64(stage) else self.data_dtype
        full = ParquetRows(str(self.parquet_path), names, self.in_features, read_dtype,
                           (features, self.data_dtype), check=fits)  # fmt: skip
        self.full_set = full
        self.train_set = full.subset(train_rows)
        self.val_set = full.subset(val_rows)
        self.test_set = full.subset(test_rows)

    def setup(self, stage: str | None = None) -> None:
        """As [`TensorDataModule.setup`][gd_lightning.TensorDataModule.setup]; predicting
        reads the features alone (the targets, present or not, filled in or blank, are not
        read)."""
        # memory-mapped .npy targets are mapped to predict too (a Parquet file's are not read)
        mapped = self.memory_map and self.parquet_path is None
        reads_targets = self._has_targets and (stage != "predict" or mapped)
        if reads_targets != self._labeled:
            self._labeled = reads_targets
            self.full_set = None  # read again, with or without the targets
        super().setup(stage)

    def load(self) -> tuple[Tensor, Tensor]:
        """The features and targets (rows, 0 columns when the data has none), as the
        column blocks of one table (so the dataset built on them needs no copy of its
        own): float64 from a CSV file, or from arrays or columns float32 does not hold
        exactly (float64, 32- and 64-bit integers), float32 otherwise. Every value must
        fit the data's dtype (`data_dtype`)."""
        dtype = np.float64 if self.data_dtype == torch.float64 else np.float32
        names = self.feature_names + (self.target_names if self.labeled else [])
        if self.csv_path is not None:
            table = read_csv_columns(Path(self.csv_path), self.header, names, dtype)
        elif self.columns_table is not None:
            self.columns_table.check_numeric(names, self._numbers_fix())

            fits = FitsIn(dtype)
            # float32 for columns it holds exactly (float32 and narrower), as for .npy
            exact = all(np.can_cast(kind, dtype) for kind in self.columns_table.dtypes(names))
            table = self.columns_table.read(names, dtype if exact else np.float64, fits)
        else:
            table = self._load_npy_table(dtype)
        table_tensor = torch.from_numpy(table)
        return table_tensor[:, : self.in_features], table_tensor[:, self.in_features :]

    def _load_npy_table(self, dtype: type) -> np.ndarray:
        """The ``.npy`` arrays side by side (rows, in_features [+ out_features]), copied a
        block at a time from their memory maps straight into the table: float64 where
        an array holds values ``dtype`` does not hold exactly, else ``dtype``; every value
        checked to fit ``dtype``."""
        paths = [self.features_path] + ([self.targets_path] if self.labeled else [])
        arrays = [_open_npy(Path(str(path))) for path in paths]
        rows = len(arrays[0])
        widths = [self.in_features, self.out_features][: len(arrays)]
        exact = all(np.can_cast(array.dtype, dtype) for array in arrays)
        table: np.ndarray = np.empty((rows, sum(widths)), dtype=dtype if exact else np.float64)
        for start in range(0, rows, NPY_BLOCK_ROWS):
            block = slice(start, start + NPY_BLOCK_ROWS)
            first = 0
            for path, array, width in zip(paths, arrays, widths, strict=True):
                values = array[block].reshape(-1, width)
                check_block_fits(values, dtype, path, start)
                table[block, first : first + width] = values
                first += width
        return table


#: the first bytes of every .npy file
NPY_MAGIC = b"\x93NUMPY"
#: rows copied from a memory map at a time
NPY_BLOCK_ROWS = 1 << 16


def _check_file(path: Path, option: str) -> None:
    if not path.is_file():
        raise InputError(f"no such file: {path}; check {option}")


def _starts_with(path: Path, magic: bytes) -> bool:
    """Whether the file ``path`` starts with the bytes ``magic``."""
    try:
        with path.open("rb") as file:
            return file.read(len(magic)) == magic
    except OSError:
        return False


@contextmanager
def open_text(path: Path) -> Iterator[Any]:
    """``path`` opened as UTF-8 text (a byte-order mark, as Excel's "CSV UTF-8" writes,
    is dropped); a file that cannot be read, or is not UTF-8 text, or is not a CSV file
    at all, is refused in one line."""
    _check_file(path, "data.csv_path")
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            yield file
    except UnicodeDecodeError as err:
        if _starts_with(path, PARQUET_MAGIC):
            raise InputError(
                f"{path} is a Parquet file, not a CSV file: give it with --data.parquet_path"
            ) from None
        raise InputError(
            f"{path} is not UTF-8 text (byte {err.object[err.start]:#04x} at position "
            f"{err.start}): save it as CSV UTF-8, or check that it is a CSV file"
        ) from None
    except OSError as err:
        raise InputError(f"cannot read {path} ({err.strerror or err})") from None


def read_header(path: Path) -> list[str]:
    """The column names on the first line of the CSV file ``path``, checked."""
    with open_text(path) as file:
        reader = csv.reader(file, skipinitialspace=True, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as err:
            raise csv_error(path, reader.line_num, err, " in the header") from None
    if not header or not any(name.strip() for name in header):
        raise InputError(f"{path} is empty: it needs a header line naming the columns")
    names = [normalized_name(name) for name in header]
    for position, name in enumerate(names, start=1):
        if not name.isprintable():
            raise InputError(
                f"column {position} of {path} is named {name!r}, with a line break or "
                f"control character: give every column a plain name"
            )
        if not name:
            raise InputError(f"column {position} of {path} has no name: name every column")
    return names


def check_names(value: Any, option: str) -> None:
    """Refuse, in one line naming ``option``, column names that are not a list of strings
    (a lone string would otherwise be read as a list of its letters)."""
    if value is None:
        return
    if isinstance(value, str):
        raise InputError(
            f"{option} must be a list of column names, got the string {value!r}: write "
            f"[{value!r}] (in YAML: [{value}])"
        )
    if not isinstance(value, list | tuple) or not all(isinstance(n, str) for n in value):
        raise InputError(f"{option} must be a list of column names, got {value!r}")


def csv_error(path: Path, line: int, err: csv.Error, where: str = "") -> InputError:
    """The one-line refusal of a file the ``csv`` module could not read at ``line``: one
    holding NUL bytes (Python 3.10's reader refuses them), or a quote left open."""
    with open_text(path) as file:
        if "\0" in file.read():
            return InputError(f"{path} is not a readable CSV file (it holds NUL bytes)")
    return InputError(
        f"{path}, line {line}: {err}{where} (a quote opened and never closed?): close the "
        f"quote, or remove it"
    )


def data_rows(
    path: Path, header: list[str], text: str | None = None
) -> Iterator[tuple[int, list[str]]]:
    """The data rows of the CSV file ``path`` (under its ``header``), each with the line
    it ends on, read by the ``csv`` module as it quotes (blank lines skipped); one line
    for a row of the wrong length or a quote left open (which would swallow the rows
    after it). ``text``: the file's text when it was read already."""
    with open_text(path) if text is None else io.StringIO(text, newline="") as file:
        reader = csv.reader(file, skipinitialspace=True, strict=True)
        try:
            next(reader)  # the header, read and checked already
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise InputError(
                        f"{path}, line {reader.line_num}: {len(row)} cells where the header "
                        f"has {len(header)}: every row needs one cell per column"
                    )
                yield reader.line_num, row
        except csv.Error as err:
            raise csv_error(path, reader.line_num, err) from None


def cells_as_written(path: Path, header: list[str]) -> list[list[str]]:
    """The data rows of the CSV file ``path`` as the text of their cells, split into
    rows and cells exactly as `data_rows` splits them (so row for row the rows the
    data was read from), each cell as the file holds it: a quoted cell decoded as
    the ``csv`` module decodes it (spaces before its opening quote are not part of
    it, as in `data_rows`), an unquoted one whole, spaces included.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text('a,b,c\\n  007, "x, y",""\\n')
        >>> cells_as_written(path, ["a", "b", "c"])
        [['  007', 'x, y', '']]
    """
    with open_text(path) as file:
        text = file.read()
    # data_rows reads with skipinitialspace, which drops the spaces that open a cell so
    # that a quote after them still opens a quoted cell; here such spaces are kept by
    # writing them as a character the text lacks (a plain character to the csv module,
    # which it keeps), all but those just before a quote, and turning them back after
    space = next(chr(c) for c in range(0xE000, 0x110000) if chr(c) not in text)
    marked = re.sub(r' +(?![ "])', lambda run: space * len(run[0]), text)
    rows = data_rows(path, header, marked)
    return [[cell.replace(space, " ") for cell in row] for _, row in rows]


def read_csv_columns(path: Path, header: list[str], names: list[str], dtype: type) -> np.ndarray:
    """The columns ``names`` of the CSV file ``path`` (by name), (rows, len(names)), read
    as the ``csv`` module reads it (quoting in every column, used or not): one line for a
    row of the wrong length, a quote left open, or the first cell that is not a plain
    finite number ``dtype`` holds.

    The values are returned in float64, with every digit the file holds, checked
    against ``dtype``, the precision they will be computed in. The file is read once.
    A plain table (no quotes, no carriage returns, every row of the header's length,
    every cell a plain number) is parsed by NumPy's C reader, which splits it as the
    ``csv`` module would; anything else goes through the ``csv`` module itself, which
    also names the first problem and its line."""
    columns = [header.index(name) for name in names]
    with open_text(path) as file:
        text = file.read()
    table = plain_table(text, len(header), columns)
    if table is None or unfit_cell(table, dtype) is not None:
        table = _read_by_csv_module(path, header, names, columns, dtype, text)
    return table


def plain_table(text: str, width: int, columns: list[int]) -> np.ndarray | None:
    """The ``columns`` of the CSV ``text`` (a header line and rows of ``width`` cells) as
    float64, parsed by ``numpy.loadtxt``, when the ``csv`` module would split it the same
    way and every cell read is a plain number; ``None`` otherwise (then the ``csv``
    module reads it).

    Examples:
        >>> plain_table("a,b\\n1,2\\n3,4\\n", 2, [1]).T
        array([[2., 4.]])
        >>> plain_table('a,b\\n"1",2\\n', 2, [1]) is None  # quoted: the csv module's
        True
    """
    if '"' in text or "\r" in text:
        return None
    rows = [line for line in text.split("\n")[1:] if line]  # blank lines: skipped, as csv
    limit = csv.field_size_limit()  # the csv module refuses longer cells
    if not rows or any(
        row.count(",") != width - 1 or not row.strip() or len(row) > limit for row in rows
    ):
        return None
    try:
        table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, usecols=columns,
                           dtype=np.float64, ndmin=2, comments=None)  # fmt: skip
    except ValueError:  # a cell that is not a plain number: the csv module names it
        return None
    return table if len(table) == len(rows) else None


def _read_by_csv_module(
    path: Path, header: list[str], names: list[str], columns: list[int], dtype: type, text: str
) -> np.ndarray:
    """`read_csv_columns` through the ``csv`` module, cell by cell, over the file's
    ``text``, naming the line of the first problem."""
    picked: list[list[str]] = []
    lines: list[int] = []  # the file line each data row ends on
    for line, row in data_rows(path, header, text):
        picked.append([row[column] for column in columns])
        lines.append(line)
    if not lines:
        raise InputError(f"{path} has a header but no data rows")
    plain = "".join(cell for row in picked for cell in row)
    try:
        if not plain.isascii() or "_" in plain:
            raise ValueError("digits other than 0-9, or '_'")
        by_column = zip(*picked, strict=True)
        table = np.array([np.fromiter(map(float, cells), np.float64, len(lines))
                          for cells in by_column]).T  # fmt: skip
    except ValueError:
        raise _first_bad_cell(path, picked, lines, names) from None
    check_fits(table, dtype, lambda row, column: (
        f"{path}, line {lines[row]}, column {names[column]!r}"))  # fmt: skip
    return table


#: a number as the CSV files this package reads write it: ASCII digits, an optional
#: sign, decimal point and exponent (what ``float`` takes besides, such as "1_000" or
#: other scripts' digits, is refused rather than guessed at)
PLAIN_NUMBER = re.compile(
    r"\s*[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|nan|inf|infinity)\s*", re.IGNORECASE | re.ASCII
)


def _first_bad_cell(
    path: Path, picked: list[list[str]], lines: list[int], names: list[str]
) -> Exception:
    """The one-line error for the first cell of ``picked`` that is not a plain number."""
    for row, cells in enumerate(picked):
        for column, cell in enumerate(cells):
            if PLAIN_NUMBER.fullmatch(cell):
                continue
            where = f"{path}, line {lines[row]}, column {names[column]!r}"
            if not cell.strip():
                return InputError(f"{where}: empty is not a number: fill it in, or remove that row")
            if not cell.isascii() or "_" in cell:
                return InputError(
                    f"{where}: {cell!r} is not written with the digits 0-9 alone: write it as "
                    f"a plain number such as 1000 or 2.5e-3 (no '_', no other digits)"
                )
            return InputError(f"{where}: {cell!r} is not a number: fix or remove that row")
    return InputError(f"{path} could not be read as numbers: check its cells")


class FitsIn:
    """The check `ColumnTable.read` gives each column: that its values fit ``dtype``
    (float32's range). An object, not a closure, so that the datasets carrying it
    travel to ``DataLoader`` worker processes, whatever their start method."""

    def __init__(self, dtype: type) -> None:
        self.dtype = dtype

    def __call__(self, values: np.ndarray, source: np.dtype, where: Callable[[int], str]) -> None:
        # only a wider floating-point column can hold values ``dtype`` cannot
        if source.kind == "f" and source.itemsize > np.dtype(self.dtype).itemsize:
            check_fits(values[:, None], self.dtype, lambda row, _: where(row))


def _moments(training_pass: OnePass) -> tuple[ColumnMoments, ColumnMoments]:
    """The training rows' moments a pass summed up; one line where it saw no rows."""
    if training_pass.moments is None:
        raise ValueError("no training rows to standardize with")
    return training_pass.moments


def check_block_fits(block: np.ndarray, dtype: type, path: Any, first_row: int) -> None:
    """Refuse, naming the file, row and column, the first value of ``block`` (2-D rows
    of an array, from its row ``first_row``) that ``dtype`` cannot hold; only a wider
    floating-point array can hold such values, so other blocks pass unlooked at."""
    if block.dtype.kind != "f" or block.dtype.itemsize <= np.dtype(dtype).itemsize:
        return
    check_fits(np.asarray(block, np.float64), dtype, lambda row, column: (
        f"{path}, row {first_row + row + 1}, column {column + 1}"))  # fmt: skip


def unfit_cell(table: np.ndarray, dtype: type) -> tuple[int, int, str] | None:
    """The first finite value of the float64 ``table`` that ``dtype`` cannot hold, as
    (row, column, why), or ``None``: too large (it would become infinite) or too small
    and not zero (it would become 0 or lose its digits)."""
    info = np.finfo(dtype)
    if info.bits == 64:
        return None
    magnitude = np.abs(table)
    large = np.isfinite(table) & (magnitude > info.max)
    small = (magnitude > 0) & (magnitude < info.smallest_normal)
    tiny = f"too small (not 0, but nearer 0 than {info.smallest_normal:g})"
    for bad, why in ((large, "too large"), (small, tiny)):
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            return row, column, why
    return None


def check_fits(table: np.ndarray, dtype: type, where: Callable[[int, int], str]) -> None:
    """Refuse, naming the cell (``where(row, column)``), the first value of the float64
    ``table`` that ``dtype`` cannot hold (`unfit_cell`)."""
    found = unfit_cell(table, dtype)
    if found is not None:
        row, column, why = found
        bits = np.finfo(dtype).bits
        raise InputError(
            f"{where(row, column)}: {table[row, column]:g} is {why} for float{bits}: rescale "
            f"the column, or train with --trainer.precision 64-true"
        )


def npy_widths(features_path: Path, targets_path: Path | None) -> tuple[int, int | None]:
    """The columns of the features array and of the targets array (``None`` without
    one), checked from their headers: numbers, 1-D or 2-D, some rows, as many each."""
    widths: list[int | None] = []
    rows = []
    for path, what in ((features_path, "features"), (targets_path, "targets")):
        if path is None:
            widths.append(None)
            continue
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
        width = array.shape[1] if array.ndim == 2 else 1
        if len(array) == 0 or width == 0:
            raise InputError(f"{path} holds an empty array, of shape {array.shape}")
        widths.append(width)
        rows.append(len(array))
    if len(rows) == 2 and rows[0] != rows[1]:
        raise InputError(
            f"{features_path} has {rows[0]} rows but {targets_path} has {rows[1]}: "
            f"features and targets need one row each per sample"
        )
    x_width, y_width = widths
    assert x_width is not None
    return x_width, y_width


def check_npy_widths(
    widths: tuple[int, int | None],
    features_path: str | None,
    targets_path: str | None,
    features: list[str],
    targets: list[str],
) -> None:
    """Refuse ``.npy`` arrays (of these column ``widths``) that do not hold a model's
    ``features`` and ``targets``: their columns are taken in order, so only the width
    can be checked."""
    x_width, y_width = widths
    if x_width != len(features):
        raise InputError(
            f"{features_path} has {x_width} column(s) but the model reads {len(features)} "
            f"({', '.join(features)}): give it those columns, in that order"
        )
    if y_width is not None and y_width != len(targets):
        raise InputError(
            f"{targets_path} has {y_width} column(s) but the model predicts {len(targets)} "
            f"({', '.join(targets)})"
        )


def _open_npy(path: Path) -> np.ndarray:
    """The array in ``path``, memory-mapped: only its header is read here."""
    _check_file(path, "data.features_path and data.targets_path")
    try:
        with path.open("rb") as file:
            start = file.read(24)
    except OSError as err:
        raise InputError(f"cannot read {path} ({err.strerror or err})") from None
    # an .npz archive starts b"PK": it is named as such below
    if not start.startswith((NPY_MAGIC, b"PK")):
        shown = start.decode("utf-8", "replace")
        looks = "a CSV file goes to --data.csv_path; " if "," in shown else ""
        if start.startswith(PARQUET_MAGIC):
            looks = "a Parquet file goes to --data.parquet_path; "
        raise InputError(
            f"{path} is not a .npy file (it starts {shown!r}, not NumPy's header): {looks}"
            f"save arrays with numpy.save"
        )
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise InputError(f"{path} is not a plain .npy array of numbers ({err})") from None
    except OSError as err:
        raise InputError(f"{path} is not a readable .npy file ({err})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive of several arrays
        array.close()
        raise InputError(
            f"{path} is an .npz archive, not a .npy array: save each array on its own "
            f"with numpy.save"
        )
    return array


def _columns_or_defaults(names: list[str] | None, count: int, stem: str, what: str) -> list[str]:
    if names is None:
        return default_names(stem, count)
    if len(names) != count:
        raise InputError(
            f"data.{what} names {len(names)} column(s) but the array has {count}: "
            f"give one name per column"
        )
    return list(names)
