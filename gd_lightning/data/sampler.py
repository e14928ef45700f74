"""Row orders fixed by (seed, epoch), and batches gathered with one indexing operation."""

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler, TensorDataset


def epoch_permutation(num_rows: int, seed: int, epoch: int) -> Tensor:
    """The order of ``num_rows`` rows in ``epoch``: ``randperm`` seeded ``seed + epoch``."""
    return torch.randperm(num_rows, generator=torch.Generator().manual_seed(seed + epoch))


class EpochBatchSampler(DistributedSampler):
    """Whole batches of row indices for a [`GatherDataset`][gd_lightning.GatherDataset], one
    process's share of each.

    Each element is one batch: from a shuffled epoch, a tensor of row indices (the
    epoch's `epoch_permutation` cut into batches, moved to ``device`` once per
    epoch); in order, a ``slice`` (served as views, without copying). Used as a
    ``DataLoader``'s ``sampler`` with ``batch_size=None``, so the dataset gathers a
    batch with one indexing operation instead of one ``__getitem__`` per row.

    With several processes, ``batch_size`` is the global batch: batch ``k`` is the
    same rows as with one process, split into ``num_replicas`` nearly equal,
    contiguous shares, of which this process takes share ``rank``. Being a
    ``DistributedSampler``, Lightning leaves it in place instead of putting in its
    own, and calls `set_epoch` before every epoch, so the order depends only
    on ``(seed, epoch)``: a resumed run sees the same batches as an uninterrupted one.

    Args:
        num_rows: rows in the split.
        batch_size: rows per (global) batch.
        shuffle: a new order every epoch; else the rows in order.
        seed: the base seed of the orders.
        num_replicas: the number of processes.
        rank: this process's index among them.
        device: where the index tensors go (where the data is).

    Examples:
        >>> [b.tolist() for b in EpochBatchSampler(5, batch_size=2, shuffle=True, seed=0)]
        [[4, 0], [1, 3], [2]]
        >>> list(EpochBatchSampler(5, batch_size=2, shuffle=False))
        [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
        >>> list(EpochBatchSampler(5, batch_size=4, shuffle=False, num_replicas=2, rank=1))
        [slice(2, 4, None), slice(4, 5, None)]
    """

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(
            range(num_rows),  # type: ignore[arg-type]  # only its length is used
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
        )
        self.num_rows = num_rows
        self.batch_size = batch_size
        self.device = torch.device(device)

    def permutation(self) -> Tensor:
        """This epoch's order of all rows (every process computes the same one)."""
        return epoch_permutation(self.num_rows, self.seed, self.epoch)

    def __iter__(self) -> Iterator[Tensor | slice]:  # type: ignore[override]
        size, replicas, rank = self.batch_size, self.num_replicas, self.rank
        if self.shuffle:
            order = self.permutation().to(self.device)
            for batch in order.split(size):
                yield batch if replicas == 1 else batch.tensor_split(replicas)[rank]
            return
        for start in range(0, self.num_rows, size):
            rows = min(size, self.num_rows - start)
            yield slice(start + rows * rank // replicas, start + rows * (rank + 1) // replicas)

    def __len__(self) -> int:
        return math.ceil(self.num_rows / self.batch_size)


class RowGroupBatchSampler(EpochBatchSampler):
    """An [`EpochBatchSampler`][gd_lightning.EpochBatchSampler] for rows read a group at a
    time (a Parquet file's row groups, `ParquetRows`): a shuffled epoch takes the
    groups in an order of its own and each group's rows in an order of their own,
    group after group, so that each group is read once an epoch; in order, the rows in
    order. Orders depend only on ``(seed, epoch)``, as the base class's.

    Args:
        bounds: where each group's rows start among the split's, then the split's
            length (group ``g`` holds rows ``bounds[g]`` to ``bounds[g + 1]``).
        batch_size, shuffle, seed, num_replicas, rank: as the base class's.

    Examples:
        >>> sampler = RowGroupBatchSampler(torch.tensor([0, 3, 5]), 2, shuffle=True, seed=0)
        >>> [batch.tolist() for batch in sampler]
        [[0, 2], [1, 3], [4]]
    """

    def __init__(
        self,
        bounds: Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        super().__init__(int(bounds[-1]), batch_size, shuffle, seed, num_replicas, rank)
        self.bounds = bounds

    def permutation(self) -> Tensor:
        """This epoch's order: the groups shuffled, then the rows within each group."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        bounds = self.bounds.tolist()
        groups = torch.randperm(len(bounds) - 1, generator=generator).tolist()
        parts = [bounds[g] + torch.randperm(bounds[g + 1] - bounds[g], generator=generator)
                 for g in groups]  # fmt: skip
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


class GatherDataset(TensorDataset):
    """A ``TensorDataset`` that also serves a whole batch at once.

    The tensors (of 2 dimensions, as the DataModules hold them) are kept side by
    side in one table when they share a dtype (features kept in float64 beside float32
    targets are gathered each on their own), so ``dataset[index_tensor]`` gathers a
    batch's features and targets with a single ``index_select``: gathering random rows
    costs about the same for one column as for 32 (each row is a cache miss), so one
    gather instead of two halves the time. ``dataset[slice]`` serves a run of rows; a
    single ``int`` still gives one row. ``tensors`` are views of the table. A batch's
    features are a view of the block gathered for it (copying them out would cost more
    than the gather itself), its other tensors are copied out (they are narrow, and
    metrics such as torchmetrics' ``view`` them): ``reshape`` the features rather than
    ``view`` them, or call ``.contiguous()``.

    A DataLoader with a [`EpochBatchSampler`][gd_lightning.EpochBatchSampler] as ``sampler``,
    ``batch_size=None`` and `batch_as_is` as ``collate_fn`` fetches each batch with one
    indexing operation instead of one ``__getitem__`` per row.

    Examples:
        >>> data = GatherDataset(torch.arange(10.0).reshape(5, 2), torch.arange(5.0)[:, None])
        >>> data[torch.tensor([3, 0])]
        (tensor([[6., 7.],
                [0., 1.]]), tensor([[3.],
                [0.]]))
    """

    def __init__(self, *tensors: Tensor) -> None:
        self.widths: list[int] | None = None
        same_dtype = all(t.dtype == tensors[0].dtype for t in tensors)
        if len(tensors) > 1 and same_dtype and all(t.ndim == 2 for t in tensors):
            self.widths = [t.shape[1] for t in tensors]
            # already side by side (a DataModule's load() may return the columns of one
            # table): that table, without a copy of the whole data
            self.table = side_by_side(tensors)
            if self.table is None:
                self.table = torch.cat(tensors, dim=1)
                tensors = tuple(self.table.split(self.widths, dim=1))
        super().__init__(*tensors)

    def subset(self, rows: Tensor) -> "GatherDataset":
        """The rows ``rows`` (indices), gathered once into a table of their own."""
        if self.widths is None or self.table is None:
            return GatherDataset(*(tensor.index_select(0, rows) for tensor in self.tensors))
        return GatherDataset(*self.table.index_select(0, rows).split(self.widths, dim=1))

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, int):
            return super().__getitem__(index)
        if self.widths is None:
            if isinstance(index, Tensor):
                return tuple(tensor.index_select(0, index) for tensor in self.tensors)
            return tuple(tensor[index] for tensor in self.tensors)
        rows = self.table.index_select(0, index) if isinstance(index, Tensor) else self.table[index]
        features, *others = rows.split(self.widths, dim=1)
        return (features, *(part.contiguous() for part in others))


def side_by_side(tensors: tuple[Tensor, ...]) -> Tensor | None:
    """The row-major table whose consecutive column blocks ``tensors`` (2-D, same rows,
    dtype and device) are, or ``None`` when they are not laid out so.

    Examples:
        >>> table = torch.arange(6.0).reshape(2, 3)
        >>> side_by_side((table[:, :2], table[:, 2:])).data_ptr() == table.data_ptr()
        True
        >>> side_by_side((table[:, 1:], table[:, :1])) is None
        True
    """
    first = tensors[0]
    width = sum(t.shape[1] for t in tensors)
    offset = 0
    for tensor in tensors:
        laid_out = (
            tensor.shape[0] == first.shape[0]
            and tensor.dtype == first.dtype
            and tensor.device == first.device
            and (tensor.shape[0] < 2 or tensor.stride(0) == width)
            and (tensor.shape[1] < 2 or tensor.stride(1) == 1)
            and tensor.data_ptr() == first.data_ptr() + offset * first.element_size()
        )
        if not laid_out:
            return None
        offset += tensor.shape[1]
    return first.as_strided((first.shape[0], width), (width, 1))


def batch_as_is(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The ``collate_fn`` for batches a [`GatherDataset`][gd_lightning.GatherDataset] already
    assembled."""
    return batch


class FullBatch:
    """The loader of full-batch gradient descent: every epoch, the whole split as one batch.

    A plain re-iterable instead of a ``DataLoader``, which would build a fresh
    iterator, sampler pass and fetcher each epoch: for a tutorial whose epoch is
    one 100 µs step, that alone cost as much as the step. Used with one process
    and no worker processes; otherwise the ``DataLoader`` serves.

    Examples:
        >>> loader = FullBatch(torch.zeros(3, 2), torch.ones(3, 1))
        >>> len(loader), [[list(t.shape) for t in batch] for batch in loader]
        (1, [[[3, 2], [3, 1]]])
    """

    def __init__(self, *tensors: Tensor) -> None:
        self.batch = tensors

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        yield self.batch

    def __len__(self) -> int:
        return 1
