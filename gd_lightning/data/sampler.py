"""Row orders fixed by (seed, epoch), and batches gathered with one indexing operation."""

import itertools
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, Sampler, SequentialSampler, TensorDataset


def epoch_permutation(num_rows: int, seed: int, epoch: int) -> Tensor:
    """The order of ``num_rows`` rows in ``epoch``: ``randperm`` seeded ``seed + epoch``."""
    return torch.randperm(num_rows, generator=torch.Generator().manual_seed(seed + epoch))


class EpochShuffleSampler(Sampler[int]):
    """Visit ``num_rows`` rows in a random order fixed by ``seed + epoch``.

    Lightning calls :meth:`set_epoch` before every epoch, so a run resumed from
    a checkpoint sees the same batches as an uninterrupted one, and the order
    never depends on the global random state.

    Args:
        num_rows: the number of rows to visit.
        seed: the base seed.

    Example:
        >>> sampler = EpochShuffleSampler(5, seed=0)
        >>> list(sampler) == torch.randperm(5, generator=torch.Generator().manual_seed(0)).tolist()
        True
        >>> sampler.set_epoch(1)
        >>> sorted(sampler)
        [0, 1, 2, 3, 4]
    """

    def __init__(self, num_rows: int, seed: int) -> None:
        self.num_rows = num_rows
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration yields."""
        self.epoch = epoch

    def permutation(self) -> Tensor:
        """This epoch's order, as one tensor."""
        return epoch_permutation(self.num_rows, self.seed, self.epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(self.permutation().tolist())

    def __len__(self) -> int:
        return self.num_rows


class EpochBatchSampler(BatchSampler):
    """Whole batches of row indices, for a :class:`GatherDataset` to gather in one go.

    A ``BatchSampler`` over ``sampler`` that hands out each batch as one object
    instead of a list of ``int``: from an :class:`EpochShuffleSampler`, the
    epoch's permutation cut into index tensors; from a ``SequentialSampler``,
    contiguous slices (served as views, without copying); from any other sampler
    (such as the one Lightning puts in for several processes), its indices
    batched into tensors. Lightning finds ``sampler`` here and calls its
    ``set_epoch`` before every epoch.

    Args:
        sampler: the row order.
        batch_size: rows per batch.
        drop_last: drop a last, smaller batch.

    Example:
        >>> shuffled = EpochBatchSampler(EpochShuffleSampler(5, seed=0), batch_size=2)
        >>> [b.tolist() for b in shuffled]
        [[4, 0], [1, 3], [2]]
        >>> list(EpochBatchSampler(SequentialSampler(range(5)), batch_size=2))
        [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, drop_last: bool = False) -> None:
        super().__init__(sampler, batch_size, drop_last)

    def __iter__(self) -> Iterator[Tensor | slice]:  # type: ignore[override]
        size = self.batch_size
        if isinstance(self.sampler, EpochShuffleSampler):
            batches: Iterator[Tensor | slice] = iter(self.sampler.permutation().split(size))
        elif isinstance(self.sampler, SequentialSampler):
            rows = len(self.sampler)
            batches = (slice(i, min(i + size, rows)) for i in range(0, rows, size))
        else:
            batches = (torch.tensor(chunk) for chunk in _chunks(iter(self.sampler), size))
        for batch in batches:
            if self.drop_last and _length(batch) < size:
                return
            yield batch


def _chunks(indices: Iterator[int], size: int) -> Iterator[list[int]]:
    while chunk := list(itertools.islice(indices, size)):
        yield chunk


def _length(batch: Tensor | slice) -> int:
    return len(batch) if isinstance(batch, Tensor) else batch.stop - batch.start


class GatherDataset(TensorDataset):
    """A ``TensorDataset`` that also serves a whole batch at once.

    ``dataset[index_tensor]`` gathers the rows with one ``index_select`` per tensor,
    and ``dataset[slice]`` returns views; a single ``int`` still gives one row.
    A DataLoader with an :class:`EpochBatchSampler` as ``batch_sampler`` and
    :func:`batch_as_is` as ``collate_fn`` fetches each batch through
    ``__getitems__``: one indexing operation per batch instead of one per row.

    Example:
        >>> data = GatherDataset(torch.arange(10.0).reshape(5, 2), torch.arange(5.0))
        >>> data[torch.tensor([3, 0])]
        (tensor([[6., 7.],
                [0., 1.]]), tensor([3., 0.]))
    """

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, Tensor) and index.ndim == 1:
            return tuple(tensor.index_select(0, index) for tensor in self.tensors)
        return super().__getitem__(index)

    def __getitems__(self, indices: Tensor | slice) -> tuple[Tensor, ...]:
        """The whole batch ``indices`` (an index tensor or a slice), as a tuple of tensors."""
        return self[indices]


def batch_as_is(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The ``collate_fn`` for batches a :class:`GatherDataset` already assembled."""
    return batch
