"""Tutorial 2's data: points around a straight line, with a column of ones for the bias."""

from typing import Any

import torch
from torch import Tensor

from gd_lightning.data.base import TensorDataModule
from gd_lightning.errors import InputError


class NoisyLineDataModule(TensorDataModule):
    """Points ``y = slope * x + intercept + noise`` with ``x`` uniform in [-1, 1).

    Drawn as tutorial 2 draws it, from a generator seeded with ``seed``::

        x = torch.ones(n, 2); x[:, 0].uniform_(-1., 1)
        y = x @ a + torch.rand(n)          # a = (slope, intercept)

    The noise is uniform in ``[0, noise)`` (mean ``noise / 2``), as in the tutorial.
    With ``bias_column=True`` the features are both columns (``x`` and the ones),
    the tutorial's layout for a model without a bias of its own
    (``LinearRegression(bias=False)``); with ``False``, only ``x``.

    Args:
        num_points: the number of points ``n``.
        coefficients: the true ``(slope, intercept)``.
        noise: the width of the uniform noise; 0 gives points exactly on the line.
        bias_column: include the column of ones as a second feature.
        seed: seeds the draws, the split and the shuffling.
        **kwargs: batching and splitting options of
            [`TensorDataModule`][gd_lightning.TensorDataModule].

    Examples:
        >>> x, y = NoisyLineDataModule(num_points=4, noise=0.0, seed=0).load()
        >>> torch.equal(y, 3 * x[:, :1] + 2 * x[:, 1:])
        True
    """

    def __init__(
        self,
        num_points: int = 100,
        coefficients: tuple[float, float] = (3.0, 2.0),
        noise: float = 1.0,
        bias_column: bool = True,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if num_points < 2:
            raise InputError(f"num_points must be at least 2, got {num_points}")
        if noise < 0:
            raise InputError(f"noise must be 0 or more, got {noise}")
        self.num_points = num_points
        self.coefficients = tuple(coefficients)
        self.noise = noise
        self.bias_column = bias_column
        self.feature_names = ["x", "one"] if bias_column else ["x"]
        self.target_names = ["y"]

    def load(self) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(self.seed)
        x = torch.ones(self.num_points, 2)
        x[:, 0].uniform_(-1.0, 1, generator=generator)
        a = torch.tensor(self.coefficients)
        y = x @ a + self.noise * torch.rand(self.num_points, generator=generator)
        features = x if self.bias_column else x[:, :1].clone()
        return features, y[:, None]
