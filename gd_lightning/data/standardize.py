"""Feature and target standardization, with statistics from the training split, and the
test of whether float32 carries a column at the precision a fit needs."""

from collections.abc import Iterable
from dataclasses import dataclass, fields

import torch
from torch import Tensor

#: how far float32's rounding of a column's values may reach, relative to the column's
#: standard deviation, for float32 to carry it (`float32_carries`)
FLOAT32_TOLERANCE = 1e-3


def float32_carries(magnitude: Tensor, spread: Tensor) -> Tensor:
    r"""Per column, whether float32 holds values of up to ``magnitude`` finely enough for a
    column whose standard deviation is ``spread``:

    $$ \epsilon_{32} \cdot \text{magnitude} \le 10^{-3} \cdot \text{spread} $$

    ($\epsilon_{32} \approx 1.19 \cdot 10^{-7}$ is float32's machine epsilon; a constant
    column, of spread 0, is carried: rounding it changes no difference between its rows).

    Rounding moves a value by at most $\epsilon_{32} |x| / 2$, so a carried column's
    standardized values are off by at most $5 \cdot 10^{-4}$: errors that raise the
    best possible loss by at most $2.5 \cdot 10^{-7}$ of the variance the column explains
    (a third of that for rounding errors spread evenly), below the loss the package
    counts as an exact fit (a millionth of the loss of predicting zero) and far below
    any gap a fit is stopped at. A column this test refuses has a mean more than about
    8,000 times its standard deviation: unstandardized, beside a bias, its curvature's
    condition number is beyond $10^8$, so gradient descent could not fit it in float32
    anyway.

    Examples:
        >>> magnitude, spread = torch.tensor([1.7e9, 1.7e9, 80.0]), torch.tensor([11.5, 1e6, 30.0])
        >>> float32_carries(magnitude, spread)
        tensor([False,  True,  True])
    """
    eps = torch.finfo(torch.float32).eps
    return (spread == 0) | (eps * magnitude.double() <= FLOAT32_TOLERANCE * spread.double())


def float32_rounding(magnitude: float) -> float:
    """The most float32 moves a value of size ``magnitude`` when it rounds it (half its
    spacing there).

    Examples:
        >>> float32_rounding(1.7e9)
        64.0
    """
    value = torch.tensor(abs(magnitude), dtype=torch.float32)
    return float(torch.nextafter(value, torch.tensor(float("inf"))) - value) / 2


@dataclass(frozen=True)
class Standardization:
    """Shifts and scales that map raw values to standardized ones, ``(v - shift) / scale``.

    A column left as it is has shift 0 and scale 1: every column when its kind
    (features or targets) is not standardized, and any constant column (a column of
    ones keeps carrying a bias). The statistics are float64 whatever the data's
    precision: a float32 mean of values near 1.7e9 would itself be off by up to 64.

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
            >>> s.feature_shift.tolist(), s.feature_scale.tolist(), s.target_scale.tolist()
            ([2.0, 0.0], [1.0, 1.0], [1.0])
        """
        return cls.from_chunks([(x, y)], features, targets)

    @classmethod
    def from_chunks(
        cls, chunks: Iterable[tuple[Tensor, Tensor]], features: bool, targets: bool
    ) -> "Standardization":
        """The same statistics from the training rows given a block at a time (data too
        big to hold whole). Sums are float64, of values shifted by the first block's
        mean, so the standard deviations keep their precision."""
        return cls.from_moments(*ColumnMoments.of_chunks(chunks), features, targets)

    @classmethod
    def from_moments(
        cls, x: "ColumnMoments", y: "ColumnMoments", features: bool, targets: bool
    ) -> "Standardization":
        """The statistics from the training rows' moments, features ``x`` and targets ``y``."""
        constant = torch.where(x.constant, x.first, 0.0)
        return cls(*x.shift_scale(features), *y.shift_scale(targets), constant)

    @classmethod
    def identity(cls, in_features: int, out_features: int) -> "Standardization":
        """Statistics that change nothing: shifts 0, scales 1, no constant column (0).

        Examples:
            >>> Standardization.identity(2, 1).features
            False
        """
        float64 = torch.float64
        return cls(
            torch.zeros(in_features, dtype=float64),
            torch.ones(in_features, dtype=float64),
            torch.zeros(out_features, dtype=float64),
            torch.ones(out_features, dtype=float64),
            torch.zeros(in_features, dtype=float64),
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


class ColumnMoments:
    """Per column of some rows, in float64: the count, mean, standard deviation, largest
    magnitude, and whether the column is constant; rows are added a block at a time
    (`add`), summed shifted by the first block's mean so the standard deviation keeps
    its precision.

    Examples:
        >>> moments = ColumnMoments(torch.tensor([[1.0, 5.0], [3.0, 5.0]]))
        >>> moments.add(torch.tensor([[1.0, 5.0], [3.0, 5.0]]))
        >>> moments.mean.tolist(), moments.spread.tolist(), moments.constant.tolist()
        ([2.0, 5.0], [1.0, 0.0], [False, True])
    """

    def __init__(self, first: Tensor) -> None:
        #: the first row (a constant column's value)
        self.first = first[0].double()
        self.shift = first.double().mean(0)
        self.count = 0
        self.total = torch.zeros_like(self.shift)
        self.squares = torch.zeros_like(self.shift)
        self.low = self.first.clone()
        self.high = self.first.clone()

    @classmethod
    def of_chunks(
        cls, chunks: Iterable[tuple[Tensor, Tensor]]
    ) -> tuple["ColumnMoments", "ColumnMoments"]:
        """The moments of the features and of the targets of rows given a block at a time."""
        moments: list[ColumnMoments] = []
        for x, y in chunks:
            if not moments:
                moments = [cls(x), cls(y)]
            for moment, values in zip(moments, (x, y), strict=True):
                moment.add(values)
        if not moments:
            raise ValueError("no training rows to standardize with")
        return moments[0], moments[1]

    def add(self, values: Tensor) -> None:
        """Count the rows ``values`` (rows, columns) in."""
        wide = values.double()
        shifted = wide - self.shift
        self.count += len(values)
        self.total += shifted.sum(0)
        self.squares += (shifted * shifted).sum(0)
        self.low = torch.minimum(self.low, wide.amin(0))
        self.high = torch.maximum(self.high, wide.amax(0))

    @property
    def constant(self) -> Tensor:
        """Per column, whether every row holds the same value."""
        return self.low == self.high

    @property
    def mean(self) -> Tensor:
        return self.shift + self.total / self.count

    @property
    def spread(self) -> Tensor:
        """The standard deviation (of the rows themselves, not an estimate of a population's)."""
        offset = self.total / self.count
        return (self.squares / self.count - offset * offset).clamp(min=0).sqrt()

    @property
    def magnitude(self) -> Tensor:
        """The largest absolute value."""
        return torch.maximum(self.low.abs(), self.high.abs())

    def shift_scale(self, standardize: bool) -> tuple[Tensor, Tensor]:
        """The shift and scale of each column: mean and standard deviation when
        ``standardize`` (0 and 1 for a constant column), else 0 and 1."""
        width = len(self.shift)
        zeros = torch.zeros(width, dtype=torch.float64)
        if not standardize:
            return zeros, torch.ones(width, dtype=torch.float64)
        constant = self.constant
        return torch.where(constant, 0.0, self.mean), torch.where(constant, 1.0, self.spread)


def _changes(shift: Tensor, scale: Tensor) -> bool:
    return bool((shift != 0).any() or (scale != 1).any())
