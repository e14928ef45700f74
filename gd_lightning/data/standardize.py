"""Feature and target standardization, with statistics from the training split."""

from collections.abc import Iterable
from dataclasses import dataclass, fields

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
            only that value (a column of ones), 0 elsewhere; a model without a bias
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

        Examples:
            >>> x = torch.tensor([[1.0, 1.0], [3.0, 1.0]])
            >>> s = Standardization.from_training(x, x[:, :1], features=True, targets=False)
            >>> s.feature_shift, s.feature_scale, s.target_scale
            (tensor([2., 0.]), tensor([1., 1.]), tensor([1.]))
        """
        return cls.from_chunks([(x, y)], features, targets)

    @classmethod
    def from_chunks(
        cls, chunks: Iterable[tuple[Tensor, Tensor]], features: bool, targets: bool
    ) -> "Standardization":
        """The same statistics from the training rows given a block at a time (data too
        big to hold whole). Sums are float64, of values shifted by the first block's
        mean, so the standard deviations keep their precision."""
        moments: list[_Moments] = []
        first_x: Tensor | None = None
        for x, y in chunks:
            if first_x is None:
                first_x = x[0].double()
                moments = [_Moments(x), _Moments(y)]
            for moment, values in zip(moments, (x, y), strict=True):
                moment.add(values)
        if first_x is None:
            raise ValueError("no training rows to standardize with")
        x_moments, y_moments = moments
        dtype = x_moments.dtype  # the data's: float64 data keeps every digit
        constant = torch.where(x_moments.constant, first_x, 0.0).to(dtype)
        return cls(*x_moments.shift_scale(features), *y_moments.shift_scale(targets), constant)

    @classmethod
    def identity(cls, in_features: int, out_features: int) -> "Standardization":
        """Statistics that change nothing: shifts 0, scales 1, no constant column (0).

        Examples:
            >>> Standardization.identity(2, 1).features
            False
        """
        return cls(
            torch.zeros(in_features),
            torch.ones(in_features),
            torch.zeros(out_features),
            torch.ones(out_features),
            torch.zeros(in_features),
        )

    @staticmethod
    def names() -> list[str]:
        """The statistics' names, as a model's buffers are called."""
        return [field.name for field in fields(Standardization)]

    def as_tensors(self) -> dict[str, Tensor]:
        """The statistics by name."""
        return {name: getattr(self, name) for name in self.names()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> "Standardization":
        """Statistics from `as_tensors`' form (a model's buffers)."""
        return cls(**{name: tensors[name] for name in cls.names()})

    @property
    def features(self) -> bool:
        """Whether any input column is changed."""
        return _changes(self.feature_shift, self.feature_scale)

    @property
    def targets(self) -> bool:
        """Whether any target column is changed."""
        return _changes(self.target_shift, self.target_scale)


class _Moments:
    """Running count, sum and sum of squares of shifted columns, and which stay constant."""

    def __init__(self, first: Tensor) -> None:
        self.dtype = first.dtype
        self.shift = first.double().mean(0)
        self.count = 0
        self.total = torch.zeros_like(self.shift)
        self.squares = torch.zeros_like(self.shift)
        self.low = first[0].double()
        self.high = first[0].double()

    def add(self, values: Tensor) -> None:
        shifted = values.double() - self.shift
        self.count += len(values)
        self.total += shifted.sum(0)
        self.squares += (shifted * shifted).sum(0)
        self.low = torch.minimum(self.low, values.double().amin(0))
        self.high = torch.maximum(self.high, values.double().amax(0))

    @property
    def constant(self) -> Tensor:
        return self.low == self.high

    def shift_scale(self, standardize: bool) -> tuple[Tensor, Tensor]:
        width = len(self.shift)
        if not standardize:
            return torch.zeros(width, dtype=self.dtype), torch.ones(width, dtype=self.dtype)
        offset = self.total / self.count
        std = (self.squares / self.count - offset * offset).clamp(min=0).sqrt()
        constant = self.constant
        return (
            torch.where(constant, 0.0, self.shift + offset).to(self.dtype),
            torch.where(constant, 1.0, std).to(self.dtype),
        )


def _changes(shift: Tensor, scale: Tensor) -> bool:
    return bool((shift != 0).any() or (scale != 1).any())
