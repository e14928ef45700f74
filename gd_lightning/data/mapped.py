"""Rows of ``.npy`` files bigger than memory: memory-mapped, gathered a batch at a time."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset


class MappedDataset(Dataset):
    """Some or all rows of a features and a targets ``.npy`` file, read through
    ``numpy.load(mmap_mode="r")``.

    Nothing is loaded whole: ``dataset[index_tensor]`` or ``dataset[slice]`` gathers
    one batch from the maps (one NumPy fancy-indexing operation per file), as
    tensors of shape (batch, columns) in `dtypes` (float32 unless asked otherwise).
    The operating system pages the rows in as they are read and may drop them again,
    so memory holds the batches, not the file. The maps are opened lazily, so the
    dataset travels to ``DataLoader`` worker processes as two paths and row numbers,
    not as the data.

    Args:
        features_path: the features array, shape (rows,) or (rows, columns).
        targets_path: the targets array, with as many rows.
        dtype: the batches' dtype, float32 or float64.
        rows: the file rows this dataset serves, in order (``None``: all of them).
        target_dtype: the targets' dtype, when it differs from the features' (``dtype``).

    Examples:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> np.save(folder / "x.npy", np.arange(10.0).reshape(5, 2))
        >>> np.save(folder / "y.npy", np.arange(5.0))
        >>> data = MappedDataset(folder / "x.npy", folder / "y.npy", rows=torch.tensor([1, 3, 4]))
        >>> len(data), data[torch.tensor([2, 0])]
        (3, (tensor([[8., 9.],
                [2., 3.]]), tensor([[4.],
                [1.]])))
    """

    #: rows per block when the data is read through in order
    block_rows = 1 << 20

    def __init__(
        self,
        features_path: str | Path,
        targets_path: str | Path,
        dtype: torch.dtype = torch.float32,
        rows: Tensor | None = None,
        target_dtype: torch.dtype | None = None,
    ) -> None:
        self.paths = (Path(features_path), Path(targets_path))
        #: the features' and the targets' dtype
        self.dtypes = (dtype, target_dtype or dtype)
        self.rows = rows
        self._maps: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def maps(self) -> tuple[np.ndarray, np.ndarray]:
        """The two arrays, memory-mapped, as 2-D (rows, columns)."""
        if self._maps is None:
            x, y = (np.load(path, mmap_mode="r", allow_pickle=False) for path in self.paths)
            self._maps = (x.reshape(len(x), -1), y.reshape(len(y), -1))
        return self._maps

    def subset(self, rows: Tensor | None) -> "MappedDataset":
        """The dataset of ``rows`` (``None``: all), sharing this one's maps: one mapping
        of each file, however many splits read it."""
        subset = MappedDataset(*self.paths, self.dtypes[0], rows, self.dtypes[1])
        subset._maps = self._maps
        return subset

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.maps[0])

    def __getitem__(self, index: Tensor | slice | int) -> tuple[Tensor, Tensor]:
        if isinstance(index, int):
            index = slice(index, index + 1)
        if self.rows is not None:
            positions: Any = self.rows[index].numpy()
        elif isinstance(index, Tensor):
            positions = index.cpu().numpy()
        else:
            positions = index
        return tuple(  # type: ignore[return-value]
            # a run of rows is a read-only view of the map: copied (requirements "W")
            torch.from_numpy(np.require(array[positions], _numpy(dtype), requirements="W"))
            for array, dtype in zip(self.maps, self.dtypes, strict=True)
        )

    @property
    def dtype(self) -> torch.dtype:
        """The features' dtype."""
        return self.dtypes[0]

    def chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        """All rows in order, `block_rows` at a time (reads the files once, in order)."""
        size = self.block_rows
        for start in range(0, len(self), size):
            yield self[slice(start, min(start + size, len(self)))]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maps": None}  # a worker opens its own maps


def _numpy(dtype: torch.dtype) -> type:
    return np.float64 if dtype == torch.float64 else np.float32
