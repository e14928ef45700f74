"""Named columns held in memory (a pandas or polars DataFrame, a pyarrow Table, NumPy
arrays with their names) or in a Parquet file, read by name into one float64 table.

Every DataFrame library is reached through one path, the Arrow PyCapsule interface
(``__arrow_c_stream__``), with pyarrow as its reader: the package imports no DataFrame
library, and pyarrow (the ``parquet`` extra) only when it is handed a table or a Parquet
file. NumPy arrays need nothing more.
"""

import importlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gd_lightning.data.base import normalized_name
from gd_lightning.errors import InputError

#: the first (and last) bytes of every Parquet file
PARQUET_MAGIC = b"PAR1"
#: rows read and converted at a time: the block of the float64 table they go to (2 MiB
#: for 32 columns) stays in the processor's cache while its columns are written in
BLOCK_ROWS = 1 << 13
#: bytes of a Parquet file read at a time
PARQUET_BUFFER = 1 << 20
#: the largest integer float64 holds exactly, with every integer below it
EXACT_INTEGERS = 2**53


def pyarrow_for(what: str) -> Any:
    """The ``pyarrow`` module, imported now; one line saying how to install it when it is
    missing (``what`` is what needs it)."""
    try:
        return importlib.import_module("pyarrow")
    except ImportError:
        raise InputError(f"{what} needs pyarrow: pip install 'gd-lightning[parquet]'") from None


def kind_of(table: Any) -> str:
    """How a table is named in messages: "the pandas DataFrame", "the pyarrow Table".

    Examples:
        >>> kind_of({"a": [1.0]}), kind_of(np.zeros((2, 2)))
        ('the dict of columns', 'the NumPy array')
    """
    if isinstance(table, Mapping):
        return "the dict of columns"
    if isinstance(table, np.ndarray):
        return "the NumPy array"
    return f"the {type(table).__module__.split('.')[0]} {type(table).__name__}"


class ColumnTable:
    """Columns by name, from memory or from a Parquet file, read into one float64
    table (`read`) with every value checked: a column that is not numbers, a null, a
    NaN, an infinity, or an integer float64 does not hold exactly is refused in one
    line naming the column and row.

    Build it with `open_table` (a table in memory) or `open_parquet` (a file).

    Attributes:
        header: the column names, as `normalized_name` gives them, in the table's order.
        rows: the number of rows.
        source: what the columns come from, for messages.
    """

    def __init__(
        self, header: list[str], types: list[str], rows: int, source: str, first_row: int
    ) -> None:
        self.header = header
        #: each column's type, as its library names it ("int64", "string", ...)
        self.types = types
        self.rows = rows
        self.source = source
        #: the number of the first row in messages: 0 for tables in memory (as
        #: ``iloc`` counts), 1 for files (as the .npy files' messages count)
        self.first_row = first_row
        #: the rows of each row group, in order: a Parquet file's own, or one group of
        #: every row for a table in memory
        self.group_rows: list[int] = [rows]

    def group_start(self, group: int) -> int:
        """The first row of row group ``group``."""
        return sum(self.group_rows[:group])

    def where(self, row: int, name: str) -> str:
        """A row and column, as messages name it."""
        counting = " (counting from 0)" if self.first_row == 0 else ""
        return f"{self.source}, row {row + self.first_row}{counting}, column {name!r}"

    def check_numeric(self, names: list[str], fix: str) -> None:
        """Refuse, in one line naming the column and its first row, a column of
        ``names`` that does not hold numbers (text, dates, categories, decimals);
        ``fix`` says what to do."""
        for name in names:
            kind = self.types[self.header.index(name)]
            if not numeric_type(kind):
                first = self.first_value(name)
                raise InputError(
                    f"{self.where(0, name)}: {first!r} is {in_words(kind)}, not a number: {fix}"
                )

    def first_value(self, name: str) -> Any:
        """The column's first value, as its library gives it."""
        raise NotImplementedError

    def blocks(
        self, names: list[str], group: int | None = None
    ) -> Iterator[list[tuple[np.ndarray, np.ndarray | None]]]:
        """The columns ``names`` a block of rows at a time (of every row, or of row group
        ``group``): per column, its values as NumPy gives them and a mask of its nulls
        (``None`` without any)."""
        raise NotImplementedError

    def dtypes(self, names: list[str]) -> list[np.dtype]:
        """The NumPy dtype each of the columns ``names`` (numbers) is read in."""
        raise NotImplementedError

    def read(
        self,
        names: list[str],
        dtype: type = np.float64,
        check: Any = None,
        group: int | None = None,
    ) -> np.ndarray:
        """The columns ``names`` (each once in the header, and numbers: `check_numeric`),
        (rows, len(names)), of every row or of row group ``group``, in float64 (or in
        ``dtype``, for columns it holds exactly: see `dtypes`), each value converted
        once and checked; ``check(values, source_dtype, where)``, when given, checks each
        column's block further (``where(row)`` naming a row of it)."""
        rows = self.rows if group is None else self.group_rows[group]
        offset = 0 if group is None else self.group_start(group)
        table: np.ndarray = np.empty((rows, len(names)), dtype=dtype)
        start = 0
        for block in self.blocks(names, group):
            length = 0
            for column, (name, (values, nulls)) in enumerate(zip(names, block, strict=True)):
                length = len(values)
                if start + length > rows:
                    raise InputError(f"{self.source} changed while it was read: read it again")
                first_row = offset + start
                where = lambda row, n=name, first=first_row: self.where(first + row, n)  # noqa: E731
                converted = checked_column(values, nulls, where, dtype)
                if check is not None:
                    check(converted, values.dtype, where)
                table[start : start + length, column] = converted
            start += length
        if start != rows:
            raise InputError(f"{self.source} changed while it was read: read it again")
        return table

    def values(self, names: list[str]) -> Any:
        """The columns ``names`` as they are held (their types kept), as a pyarrow Table."""
        raise NotImplementedError

    def python_values(self, names: list[str]) -> list[list[Any]]:
        """The columns ``names`` as lists of Python values (``None`` for a null)."""
        raise NotImplementedError


def numeric_type(kind: str) -> bool:
    """Whether a column of this type (Arrow's or NumPy's name for it) is numbers.

    Examples:
        >>> [numeric_type(k) for k in ("int64", "uint8", "float", "halffloat", "bool", "string")]
        [True, True, True, True, True, False]
    """
    return kind in ("bool", "halffloat", "float", "double") or kind.startswith(
        ("int", "uint", "float")
    )


#: column types that are not numbers, by how their names start, in words
TYPES_IN_WORDS = (
    ("dictionary", "a category"),
    ("timestamp", "a date or time"),
    ("date", "a date or time"),
    ("time", "a date or time"),
    ("duration", "a duration"),
    ("decimal", "a decimal (cast it to float64 first)"),
    ("large_string", "text"),
    ("string", "text"),
    ("object", "Python objects"),
    ("null", "missing (the column is all nulls)"),
)


def in_words(kind: str) -> str:
    """A column type that is not numbers, as a message says it.

    Examples:
        >>> in_words("large_string"), in_words("timestamp[ns]"), in_words("decimal128(5, 2)")
        ('text', 'a date or time', 'a decimal (cast it to float64 first)')
    """
    for start, words in TYPES_IN_WORDS:
        if kind.startswith(start):
            return words
    return f"of type {kind}"


def checked_column(
    values: np.ndarray, nulls: np.ndarray | None, where: Any, dtype: type = np.float64
) -> np.ndarray:
    """``values`` as ``dtype`` (float64, or float32 for values it holds exactly): a
    null, NaN, infinity, or integer beyond 2⁵³ (which float64 would round) is refused in
    one line, ``where(row)`` naming it."""
    if nulls is not None and nulls.any():
        row = int(np.argmax(nulls))
        raise InputError(f"{where(row)}: the value is missing (null): fill it in, or drop that row")
    if values.dtype.kind in "iu":
        large = values > EXACT_INTEGERS  # compared as integers: float64 would round them
        if values.dtype.kind == "i":
            large |= values < -EXACT_INTEGERS
        if large.any():
            row = int(np.argmax(large))
            raise InputError(
                f"{where(row)}: {values[row]} is an integer float64 does not hold exactly "
                f"(beyond 2**53): rescale the column, or leave it out"
            )
        return values.astype(dtype)
    result: np.ndarray = np.asarray(values, dtype=dtype)
    bad = ~np.isfinite(result)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"{where(row)}: {result[row]} is not a finite number: fix or remove that row"
        )
    return result


class ArrowColumns(ColumnTable):
    """A pyarrow Table (in memory) or a Parquet file (`pyarrow.parquet.ParquetFile`)."""

    def __init__(self, arrow: Any, source: str, first_row: int) -> None:
        self.arrow = arrow
        self.parquet = hasattr(arrow, "iter_batches")
        self.schema = schema = arrow.schema_arrow if self.parquet else arrow.schema
        # a pandas index travels as columns of its own: not the user's columns
        index = (schema.pandas_metadata or {}).get("index_columns", [])
        fields = [field for field in schema if field.name not in index]
        #: each header column's position in the schema
        self.positions = [schema.get_field_index(field.name) for field in fields]
        rows = arrow.metadata.num_rows if self.parquet else arrow.num_rows
        header = [normalized_name(str(field.name)) for field in fields]
        super().__init__(header, [str(field.type) for field in fields], rows, source, first_row)
        if self.parquet:
            metadata = arrow.metadata
            self.group_rows = [
                metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)
            ]

    def _batches(self, names: list[str], group: int | None = None) -> Iterator[Any]:
        positions = [self.positions[self.header.index(name)] for name in names]
        if self.parquet:  # only these columns are read from the file
            raw = [self.schema.field(position).name for position in positions]
            groups = None if group is None else [group]
            yield from self.arrow.iter_batches(
                batch_size=BLOCK_ROWS, row_groups=groups, columns=raw
            )
        else:
            for batch in self.arrow.select(positions).to_batches():
                for start in range(0, batch.num_rows, BLOCK_ROWS):
                    yield batch.slice(start, BLOCK_ROWS)

    def dtypes(self, names: list[str]) -> list[np.dtype]:
        fields = [self.schema.field(self.positions[self.header.index(name)]) for name in names]
        return [np.dtype(field.type.to_pandas_dtype()) for field in fields]

    def first_value(self, name: str) -> Any:
        for batch in self._batches([name]):
            if batch.num_rows:
                return batch.column(0)[0].as_py()
        return None

    def blocks(
        self, names: list[str], group: int | None = None
    ) -> Iterator[list[tuple[np.ndarray, np.ndarray | None]]]:
        for batch in self._batches(names, group):
            block = []
            for array in batch.columns:
                nulls = None
                if array.null_count:
                    nulls = array.is_null().to_numpy(zero_copy_only=False)
                    array = array.fill_null(0)
                block.append((array.to_numpy(zero_copy_only=False), nulls))
            yield block

    def values(self, names: list[str]) -> Any:
        pa = pyarrow_for("keeping columns")
        schema = pa.schema([self.schema.field(self.positions[self.header.index(name)])
                            for name in names])  # fmt: skip
        return pa.Table.from_batches(list(self._batches(names)), schema).rename_columns(names)

    def python_values(self, names: list[str]) -> list[list[Any]]:
        return [column.to_pylist() for column in self.values(names).columns]


class NumpyColumns(ColumnTable):
    """NumPy columns by name: a dict of 1-D arrays, or a 2-D array with its names."""

    def __init__(self, columns: dict[str, np.ndarray], source: str) -> None:
        self.columns = columns
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise InputError(f"the columns of {source} differ in length: {sorted(lengths)}")
        types = [describe_numpy(values.dtype) for values in columns.values()]
        super().__init__(list(columns), types, lengths.pop() if lengths else 0, source, 0)

    def dtypes(self, names: list[str]) -> list[np.dtype]:
        return [self.columns[name].dtype for name in names]

    def first_value(self, name: str) -> Any:
        values = self.columns[name]
        return values[0].item() if len(values) else None

    def blocks(
        self, names: list[str], group: int | None = None
    ) -> Iterator[list[tuple[np.ndarray, np.ndarray | None]]]:
        for start in range(0, self.rows, BLOCK_ROWS):  # one group: every row
            rows = slice(start, start + BLOCK_ROWS)
            yield [(np.asarray(self.columns[name][rows]), None) for name in names]

    def values(self, names: list[str]) -> Any:
        pa = pyarrow_for("keeping columns of NumPy arrays")
        return pa.table({name: self.columns[name] for name in names})

    def python_values(self, names: list[str]) -> list[list[Any]]:
        return [self.columns[name].tolist() for name in names]


def describe_numpy(dtype: np.dtype) -> str:
    """A NumPy dtype named as Arrow names its types (``float64`` as "double"), so that
    `numeric_type` judges both alike."""
    if dtype.kind == "f":
        return {2: "halffloat", 4: "float", 8: "double"}.get(dtype.itemsize, str(dtype))
    if dtype.kind in "iub":
        return str(dtype)
    words = {"U": "string", "S": "binary", "O": "object", "M": "timestamp", "m": "duration"}
    return words.get(dtype.kind, str(dtype))


def open_table(table: Any, columns: list[str] | None = None) -> ColumnTable:
    """The named columns of ``table``: a pyarrow Table or RecordBatch, any table that
    exports Arrow data (pandas ≥ 2.2 and polars DataFrames, DuckDB results, ...: the
    ``__arrow_c_stream__`` method), a dict of 1-D arrays by name, or a 2-D NumPy array
    with ``columns`` naming its columns. Anything else is refused in one line.

    Examples:
        >>> t = open_table(np.array([[1, 2.5], [3, 4.0]]), columns=["a", "b"])
        >>> t.header, t.rows, t.read(["b"]).T
        (['a', 'b'], 2, array([[2.5, 4. ]]))
    """
    source = kind_of(table)
    if columns is not None and not isinstance(table, np.ndarray):
        raise InputError(
            f"data.columns names the columns of a 2-D NumPy array; {source} names its own: "
            f"leave data.columns out"
        )
    if isinstance(table, np.ndarray):
        if table.ndim != 2 or columns is None or len(columns) != table.shape[1]:
            got = "" if columns is None else f", got {len(columns)} name(s)"
            raise InputError(
                f"a NumPy array of shape {table.shape} needs data.columns, one name per "
                f"column of a 2-D array{got} (or give a dict of 1-D arrays by name)"
            )
        repeated = sorted({name for name in columns if columns.count(name) > 1})
        if repeated:
            raise InputError(f"data.columns names {', '.join(repeated)} more than once")
        return NumpyColumns(named({n: table[:, i] for i, n in enumerate(columns)}, source), source)
    if isinstance(table, Mapping):
        arrays = {name: np.asarray(values) for name, values in table.items()}
        shapes = [name for name, values in arrays.items() if values.ndim != 1]
        if shapes:
            raise InputError(f"column {shapes[0]!r} of {source} is not a 1-D array of values")
        return NumpyColumns(named(arrays, source), source)
    if not hasattr(table, "__arrow_c_stream__") and not _is_pyarrow(table):
        raise InputError(
            f"{source} is not a table this package reads: give a pandas (2.2 or newer) or "
            f"polars DataFrame, a pyarrow Table, any table that exports Arrow data "
            f"(__arrow_c_stream__), a dict of 1-D arrays by name, or a 2-D NumPy array "
            f"with data.columns"
        )
    pa = pyarrow_for(f"reading {source}")
    try:
        if isinstance(table, pa.RecordBatch):
            arrow = pa.Table.from_batches([table])
        elif isinstance(table, pa.Table):
            arrow = table
        else:
            arrow = pa.RecordBatchReader.from_stream(table).read_all()
    except (pa.ArrowException, TypeError, ValueError) as err:
        raise InputError(
            f"{source} could not be read as Arrow data ({err}): select the columns the "
            f"model uses first, with numbers in them"
        ) from None
    columns_table = ArrowColumns(arrow, source, first_row=0)
    named(dict.fromkeys(columns_table.header), source)
    return columns_table


def _is_pyarrow(table: Any) -> bool:
    return type(table).__module__.split(".")[0] == "pyarrow"


def named(columns: dict[Any, Any], source: str) -> dict[str, Any]:
    """``columns`` under their names as `normalized_name` gives them; one line for a name
    that is not text, or is empty."""
    result = {}
    for name, values in columns.items():
        if not isinstance(name, str) or not normalized_name(name):
            raise InputError(f"a column of {source} is named {name!r}: name every column with text")
        result[normalized_name(name)] = values
    return result


def open_parquet(path: Path) -> ColumnTable:
    """The columns of the Parquet file ``path`` (only its footer read here); one line for
    a missing file, or one that is not Parquet."""
    if not path.is_file():
        raise InputError(f"no such file: {path}; check data.parquet_path")
    try:
        with path.open("rb") as file:
            start = file.read(len(PARQUET_MAGIC) * 4)
    except OSError as err:
        raise InputError(f"cannot read {path} ({err.strerror or err})") from None
    if not start.startswith(PARQUET_MAGIC):
        shown = start.decode("utf-8", "replace")
        looks = " (a CSV file goes to --data.csv_path)" if "," in shown else ""
        raise InputError(
            f"{path} is not a Parquet file (it starts {shown!r}, not Parquet's 'PAR1'){looks}"
        )
    pa = pyarrow_for(f"reading the Parquet file {path}")
    parquet = importlib.import_module("pyarrow.parquet")
    try:
        # read as a stream, a buffer at a time, not a whole row group ahead: memory holds
        # a block of rows, not the file's column chunks (measured: a third of the memory)
        file = parquet.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER)
        return ArrowColumns(file, str(path), first_row=1)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path} is not a readable Parquet file ({err})") from None


def table_like(template: Any, columns: dict[str, np.ndarray], first_row: int = 0) -> Any:
    """``columns`` (rows ``first_row``, ``first_row + 1``, ... of ``template``) as a
    table of the kind ``template`` is: a pandas DataFrame (under those rows' index
    labels, so that it lines up with the rows it predicts), a polars DataFrame, a
    pyarrow Table (for any other Arrow table too), or a dict of NumPy arrays (for NumPy
    input). The library is the one already imported to build ``template``."""
    library = type(template).__module__.split(".")[0]
    if library in ("pandas", "polars") and library in sys.modules:
        frame = sys.modules[library].DataFrame
        if library == "polars":
            return frame(columns)
        rows = len(next(iter(columns.values()))) if columns else 0
        return frame(columns, index=template.index[first_row : first_row + rows])
    if isinstance(template, np.ndarray | Mapping):
        return columns
    return pyarrow_for("predictions as a table").table(columns)
