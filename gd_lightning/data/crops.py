"""Tutorials 3 and 5's data: crop yields of 15 regions against the weather."""

from typing import Any

import numpy as np
import torch
from torch import Tensor

from gd_lightning.data.base import TensorDataModule
from gd_lightning.errors import InputError

FEATURE_NAMES = ["temp", "rainfall", "humidity"]
TARGET_NAMES = ["mangoes", "oranges"]

# region: temperature (F), rainfall (mm), humidity (%) -> mangoes, oranges (tons)
CROP_TABLE = {
    "A": (73, 67, 43, 56, 70),
    "B": (91, 88, 64, 81, 101),
    "C": (87, 134, 58, 119, 133),
    "D": (102, 43, 37, 22, 37),
    "E": (69, 96, 70, 103, 119),
    "F": (74, 66, 43, 57, 69),
    "G": (91, 87, 65, 80, 102),
    "H": (88, 134, 59, 118, 132),
    "I": (101, 44, 37, 21, 38),
    "J": (68, 96, 71, 104, 118),
    "K": (73, 66, 44, 57, 69),
    "L": (92, 87, 64, 82, 100),
    "M": (87, 135, 57, 118, 134),
    "N": (103, 43, 36, 20, 38),
    "O": (68, 97, 70, 102, 120),
}


class CropYieldsDataModule(TensorDataModule):
    """Crop yields (mangoes, oranges) from temperature, rainfall and humidity.

    The first ``num_regions`` rows (regions A, B, ...) of the tutorials' table:
    15 for tutorial 3, 5 for tutorial 5. Three features, two targets, read
    through float32 NumPy arrays and ``torch.from_numpy`` as the tutorials do.

    Args:
        num_regions: how many regions, from 1 to 15, in table order.
        **kwargs: batching and splitting options of
            [`TensorDataModule`][gd_lightning.TensorDataModule].

    Examples:
        >>> x, y = CropYieldsDataModule(num_regions=5).load()
        >>> x[0], y[0]
        (tensor([73., 67., 43.]), tensor([56., 70.]))
    """

    def __init__(self, num_regions: int = 15, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 1 <= num_regions <= len(CROP_TABLE):
            raise InputError(
                f"num_regions must be between 1 and {len(CROP_TABLE)}, got {num_regions}"
            )
        self.num_regions = num_regions
        self.feature_names = list(FEATURE_NAMES)
        self.target_names = list(TARGET_NAMES)

    def load(self) -> tuple[Tensor, Tensor]:
        table = np.array(list(CROP_TABLE.values())[: self.num_regions], dtype="float32")
        inputs = np.ascontiguousarray(table[:, :3])  # (regions, 3)
        targets = np.ascontiguousarray(table[:, 3:])  # (regions, 2)
        return torch.from_numpy(inputs), torch.from_numpy(targets)
