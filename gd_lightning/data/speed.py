"""Tutorial 1's data: a roller coaster's speed over 20 seconds."""

from typing import Any

import torch
from torch import Tensor

from gd_lightning.data.base import TensorDataModule
from gd_lightning.errors import InputError


class SpeedDataModule(TensorDataModule):
    """Noisy quadratic data: speed against time ``t = 0, 1, ..., num_points - 1``.

    Drawn as tutorial 1 draws it, from a generator seeded with ``seed``::

        t = torch.arange(0, 20).float()
        speed = torch.rand(20) * 5 + 0.8 * (t - 7.5) ** 2 + 1

    With the defaults the values are the tutorial's, bit for bit. One feature
    (``t``), one target (``speed``).

    Args:
        num_points: the number of time steps.
        seed: seeds the noise (2021, as in the tutorial), the split and the shuffling.
        **kwargs: batching and splitting options of
            [`TensorDataModule`][gd_lightning.TensorDataModule].

    Examples:
        >>> dm = SpeedDataModule()
        >>> x, y = dm.load()
        >>> x.shape, y.shape, round(y[0].item(), 4)
        (torch.Size([20, 1]), torch.Size([20, 1]), 46.6522)
    """

    def __init__(self, num_points: int = 20, seed: int = 2021, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        if num_points < 2:
            raise InputError(f"num_points must be at least 2, got {num_points}")
        self.num_points = num_points
        self.feature_names = ["t"]
        self.target_names = ["speed"]

    def load(self) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(self.seed)
        t = torch.arange(0, self.num_points).float()
        speed = torch.rand(self.num_points, generator=generator) * 5 + 0.8 * (t - 7.5) ** 2 + 1
        return t[:, None], speed[:, None]
