"""A shuffling sampler whose order depends only on (seed, epoch)."""

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


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

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.num_rows, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_rows
