"""The least-squares reference of a training split: what the best fit of a model's design
to those rows is (the optimum, its loss, the curvature), built from the rows a block at a
time. The DataModule offers it (`TensorDataModule.least_squares_reference`), built once a
fit for whoever asks: the convergence monitor, the figures, the parameter report.

Rows held as tensors are read through the model's own design. Rows read from a file a
batch at a time (``memory_map``) are summed up in the one pass that checks them and
computes their standardization (`OnePass`): the triangle of the raw rows, which any
model whose design is affine in its inputs (the linear model) turns into its own
(`OnePass.reference`) without reading the rows again.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from gd_lightning.analysis import LeastSquaresReference, TriangleOfRows
from gd_lightning.data.standardize import ColumnMoments


def reference_of(datamodule: Any, model: Any) -> LeastSquaresReference | None:
    """The least-squares facts of ``datamodule``'s training split (after its
    ``setup("fit")``) for ``model``, in the units the model is fitted in (with the
    standardization it holds); ``None`` when the model is not a linear least-squares
    model of this package (one with a ``design_matrix``), or the split is read from a
    file a batch at a time and the model's design is not affine in its inputs."""
    if not hasattr(model, "design_matrix"):
        return None
    # the fit's dtype (float64 under precision="64-true"): the model turns float64 only
    # once the Trainer's precision plugin converts it, after every setup hook
    dtype = getattr(datamodule, "data_dtype", None)
    if not isinstance(dtype, torch.dtype):
        dtype = model.dtype if isinstance(model.dtype, torch.dtype) else torch.float32
    training = getattr(datamodule, "train_set", None)
    tensors = getattr(training, "tensors", None)
    if tensors is not None:
        blocks = DesignBlocks(model, lambda: _blocks(*tensors), dtype)
        with torch.no_grad():
            return LeastSquaresReference.from_blocks(blocks, model.scaling.target_scale)
    one_pass = getattr(datamodule, "training_pass", None)
    if not isinstance(one_pass, OnePass) or training is None:
        return None
    with torch.no_grad():
        reference = one_pass.reference(model, dtype)
        if reference is not None and reference.worth_refining:
            # small data, or a design so ill-conditioned that one QR keeps fewer than ten
            # digits of its optimum: two more passes over the file win them back
            blocks = DesignBlocks(model, training.chunks, dtype)
            reference = reference.refined(blocks).refined(blocks)
    return reference


def _blocks(x: Tensor, y: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    for start in range(0, len(x), REFERENCE_BLOCK_ROWS):
        rows = slice(start, start + REFERENCE_BLOCK_ROWS)
        yield x[rows], y[rows]


class DesignBlocks:
    """The model's design matrix and fitted targets of the rows ``rows()`` gives (blocks
    of raw features (n, in) and targets (n, out)), as the model computes them in its
    steps in ``dtype``: an iterable that starts over each time (so the reference can
    refine its optimum in more passes), with bounded temporaries whatever the data's size."""

    def __init__(
        self, model: Any, rows: Callable[[], Iterable[tuple[Tensor, Tensor]]], dtype: torch.dtype
    ) -> None:
        self.model, self.rows, self.dtype = model, rows, dtype

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        model, dtype = self.model, self.dtype
        for x, y in self.rows():
            inputs = model.scaling.fitted_inputs(x.to(model.device), dtype)
            yield (
                model.design_matrix(inputs),
                model.scaling.fitted_targets(y.to(model.device), dtype),
            )


class OnePass:
    """What the training rows hold, summed up as they go by once, a block at a time: the
    moments of their features and targets (`ColumnMoments`, for the standardization),
    and the triangular factor of ``[x - c, 1, y - d]`` (`TriangleOfRows`), ``c`` and
    ``d`` the first block's means (so that the values factored are about the columns'
    spread, whatever their offset). `reference` turns that triangle into the
    least-squares reference of a model's own design, standardized as the model is,
    without reading the rows again.

    Examples:
        >>> x = torch.tensor([[1.0], [2.0], [4.0]])
        >>> rows = OnePass()
        >>> rows.add(x[:2], 3 * x[:2] + 1)
        >>> rows.add(x[2:], 3 * x[2:] + 1)
        >>> rows.moments[0].mean.tolist(), rows.triangle.count
        ([2.3333333333333335], 3)
    """

    def __init__(self, factor: bool = True) -> None:
        self.moments: tuple[ColumnMoments, ColumnMoments] | None = None
        #: the rows' triangle (``None`` where ``factor`` is false: the moments alone,
        #: for a pass that needs no reference, such as predict's)
        self.triangle = TriangleOfRows() if factor else None

    def add(self, x: Tensor, y: Tensor) -> None:
        """Count the rows with features ``x`` (n, in) and targets ``y`` (n, out) in."""
        if self.moments is None and len(x):
            # the first block's means: of a block of rows, not of all ``x`` (in float64)
            first = slice(0, REFERENCE_BLOCK_ROWS)
            self.moments = (ColumnMoments(x[first]), ColumnMoments(y[first]))
        if self.moments is None:
            return
        shift_x, shift_y = (moments.shift for moments in self.moments)
        ones = torch.ones(REFERENCE_BLOCK_ROWS, 1, dtype=torch.float64)
        for x_block, y_block in _blocks(x, y):  # blocks that stay in the cache: faster
            wide = (x_block.double(), y_block.double())  # converted once, for both sums
            for moments, values in zip(self.moments, wide, strict=True):
                moments.add(values)
            if self.triangle is not None:
                rows = len(x_block)
                self.triangle.add(wide[0] - shift_x, ones[:rows], wide[1] - shift_y)

    def reference(self, model: Any, dtype: torch.dtype) -> LeastSquaresReference | None:
        """The least-squares reference of ``model``'s design of these rows, with the
        model's standardization, from the triangle alone; ``None`` for a model whose
        design is not affine in its inputs (`affine_design`).

        ``[A | ỹ] = [x - c, 1, y - d] T`` for an exact matrix ``T`` (the standardization's
        scales and the offsets ``(μ - c) / σ``, then the design's columns), so with
        ``[x - c, 1, y - d] = Q R``, ``[A | ỹ] = Q (R T)``: one QR of the small ``R T``
        gives the design's own triangle, as if its rows had been factored."""
        if self.moments is None or self.triangle is None:
            return None
        x_moments, y_moments = self.moments
        inputs, targets = len(x_moments.shift), len(y_moments.shift)
        design = affine_design(model, inputs)
        if design is None:
            return None
        stats = model.standardization
        zeros = [torch.zeros(n, dtype=torch.float64) for n in (inputs, targets)]
        ones = [torch.ones(n, dtype=torch.float64) for n in (inputs, targets)]
        mu, sigma, nu, tau = (
            (zeros[0], ones[0], zeros[1], ones[1])
            if stats is None
            else (
                stats.feature_shift,
                stats.feature_scale,
                stats.target_shift,
                stats.target_scale,
            )  # fmt: skip
        )
        mu, sigma, nu, tau = (value.detach().double().cpu() for value in (mu, sigma, nu, tau))
        # [x - c, 1] -> [z, 1] with z = (x - μ) / σ = (x - c) / σ - (μ - c) / σ
        standardize = torch.eye(inputs + 1, dtype=torch.float64)
        standardize[:inputs, :inputs] = torch.diag(1 / sigma)
        standardize[inputs, :inputs] = -(mu - x_moments.shift) / sigma
        p = design.shape[1]
        fold = torch.zeros(inputs + 1 + targets, p + targets, dtype=torch.float64)
        fold[: inputs + 1, :p] = standardize @ design
        # ỹ = (y - d) / τ - (ν - d) / τ
        fold[inputs, p:] = -(nu - y_moments.shift) / tau
        fold[inputs + 1 :, p:] = torch.diag(1 / tau)
        triangle = torch.linalg.qr(self.triangle.factor() @ fold, mode="r").R
        return LeastSquaresReference.from_triangle(
            triangle,
            self.triangle.count,
            p,
            model.scaling.target_scale,
            torch.finfo(dtype).eps,
        )


def affine_design(model: Any, inputs: int) -> Tensor | None:
    """The matrix ``D`` (inputs + 1, p) with ``model.design_matrix(z) == [z, 1] @ D`` for
    every ``z``, found from the design of the rows ``e₁ … eₙ`` and ``0`` (exact: 0s and
    1s) and checked on one more row; ``None`` where the design is not affine in ``z``
    (the quadratic model's ``[z², z, 1]``).

    Examples:
        >>> from gd_lightning import LinearRegression, QuadraticRegression
        >>> affine_design(LinearRegression(2, 1, lr=0.1), 2).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        >>> affine_design(QuadraticRegression(lr=0.1), 1) is None
        True
    """
    probes = torch.cat(
        [
            torch.eye(inputs, dtype=torch.float64),
            torch.zeros(1, inputs, dtype=torch.float64),
            torch.full((1, inputs), 3.0, dtype=torch.float64),
        ]
    )
    with torch.no_grad():
        designed = model.design_matrix(probes).double().cpu()
    base = designed[inputs]
    matrix = torch.cat([designed[:inputs] - base, base[None]])
    check = torch.cat([probes[-1], torch.ones(1, dtype=torch.float64)]) @ matrix
    return matrix if torch.equal(check, designed[-1]) else None


#: rows of the design matrix built at a time for the reference: blocks small enough to
#: stay in the processor's cache (and in memory the allocator reuses) run faster than
#: large ones
REFERENCE_BLOCK_ROWS = 1 << 13
