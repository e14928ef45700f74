"""Tutorial 4's data: evenly spaced numbers in a 10 x 6 table."""

from typing import Any

import numpy as np
import torch
from torch import Tensor

from gd_lightning.data.base import TensorDataModule, default_names


class ArangeDataModule(TensorDataModule):
    """Ten rows of six evenly spaced inputs and one evenly spaced target.

    Exactly tutorial 4's arrays::

        inp = np.arange(58, 387, step=5.5, dtype=np.float32).reshape(10, 6)
        actual = np.arange(6000, 9000, step=320.7, dtype=np.float32).reshape(10, 1)

    Every column is a linear function of the row number, so the design matrix
    with a bias column has rank 2 and an exact fit exists. Tutorial 4 uses
    batches of one row, shuffled.

    Args:
        **kwargs: batching and splitting options of
            [`TensorDataModule`][gd_lightning.TensorDataModule].

    Examples:
        >>> x, y = ArangeDataModule().load()
        >>> x.shape, y.shape
        (torch.Size([10, 6]), torch.Size([10, 1]))
        >>> x[0, :3], y[:2, 0]
        (tensor([58.0000, 63.5000, 69.0000]), tensor([6000.0000, 6320.7002]))
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feature_names = default_names("x", 6)
        self.target_names = ["y"]

    def load(self) -> tuple[Tensor, Tensor]:
        inp = np.arange(58, 387, step=5.5, dtype=np.float32).reshape(10, 6)
        actual = np.arange(6000, 9000, step=320.7, dtype=np.float32).reshape(10, 1)
        return torch.from_numpy(inp), torch.from_numpy(actual)
