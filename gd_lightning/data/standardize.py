"""Feature and target standardization, with statistics from the training split."""

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Standardization:
    """Shifts and scales that map raw values to standardized ones, ``(v - shift) / scale``.

    A column left as it is has shift 0 and scale 1: every column when its kind
    (features or targets) is not standardized, and any constant column (a column of
    ones keeps carrying a bias).

    Attributes:
        feature_shift: per input column, shape (in_features,).
        feature_scale: per input column, shape (in_features,).
        target_shift: per target column, shape (out_features,).
        target_scale: per target column, shape (out_features,).
        feature_constant: per input column, its value where the training split holds
            only that value (a column of ones), NaN elsewhere; a model without a bias
            of its own folds the standardization's shift into such a column.
    """

    feature_shift: Tensor
    feature_scale: Tensor
    target_shift: Tensor
    target_scale: Tensor
    feature_constant: Tensor

    @classmethod
    def from_training(
        cls, x: Tensor, y: Tensor, features: bool, targets: bool
    ) -> "Standardization":
        """Means and standard deviations of the training rows ``x`` (n, in) and ``y`` (n, out).

        Example:
            >>> x = torch.tensor([[1.0, 1.0], [3.0, 1.0]])
            >>> s = Standardization.from_training(x, x[:, :1], features=True, targets=False)
            >>> s.feature_shift, s.feature_scale, s.target_scale
            (tensor([2., 0.]), tensor([1., 1.]), tensor([1.]))
        """
        constant = torch.where((x == x[:1]).all(0), x[0], torch.nan)
        return cls(*_shift_scale(x, features), *_shift_scale(y, targets), constant)

    def as_dict(self) -> dict[str, list[float]]:
        """Plain lists, for a checkpoint that loads with ``weights_only=True``."""
        return {name: getattr(self, name).tolist() for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, values: dict[str, list[float]]) -> "Standardization":
        return cls(**{name: torch.tensor(v, dtype=torch.float32) for name, v in values.items()})

    @property
    def features(self) -> bool:
        """Whether any input column is changed."""
        return _changes(self.feature_shift, self.feature_scale)

    @property
    def targets(self) -> bool:
        """Whether any target column is changed."""
        return _changes(self.target_shift, self.target_scale)


def _shift_scale(values: Tensor, standardize: bool) -> tuple[Tensor, Tensor]:
    width = values.shape[1]
    if not standardize:
        return torch.zeros(width), torch.ones(width)
    mean = values.double().mean(0)
    std = values.double().std(0, correction=0)
    constant = std == 0
    return (
        torch.where(constant, 0.0, mean).float(),
        torch.where(constant, 1.0, std).float(),
    )


def _changes(shift: Tensor, scale: Tensor) -> bool:
    return bool((shift != 0).any() or (scale != 1).any())
