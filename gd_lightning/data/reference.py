"""The least-squares reference of a training split: what the best fit of a model's design
to those rows is (the optimum, its loss, the curvature), built from the rows a block at a
time. The DataModule offers it (`TensorDataModule.least_squares_reference`), built once a
fit for whoever asks: the convergence monitor, the figures, the parameter report."""

from collections.abc import Iterator
from typing import Any

import torch

from gd_lightning.analysis import LeastSquaresReference


def reference_of(datamodule: Any, model: Any) -> LeastSquaresReference | None:
    """The least-squares facts of ``datamodule``'s training split (after its
    ``setup("fit")``) for ``model``, in the units the model is fitted in (with the
    standardization it holds); ``None`` when the split is not held as tensors or the model
    is not a linear least-squares model of this package (one with a ``design_matrix``)."""
    tensors = getattr(getattr(datamodule, "train_set", None), "tensors", None)
    if tensors is None or not hasattr(model, "design_matrix"):
        return None
    # the fit's dtype (float64 under precision="64-true"): the model turns float64 only
    # once the Trainer's precision plugin converts it, after every setup hook
    dtype = getattr(datamodule, "data_dtype", None)
    if not isinstance(dtype, torch.dtype):
        dtype = model.dtype if isinstance(model.dtype, torch.dtype) else torch.float32
    blocks = DesignBlocks(model, tensors[0], tensors[1], dtype)
    with torch.no_grad():
        return LeastSquaresReference.from_blocks(blocks, model.scaling.target_scale)


class DesignBlocks:
    """The model's design matrix and fitted targets of the rows ``x`` (n, in) and ``y``
    (n, out), a block of rows at a time, as the model computes them in its steps in
    ``dtype``: an iterable that starts over each time (so the reference can refine its
    optimum in a second pass), with bounded temporaries whatever the data's size."""

    def __init__(self, model: Any, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> None:
        self.model, self.x, self.y, self.dtype = model, x, y, dtype

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        model, x, y, dtype = self.model, self.x, self.y, self.dtype
        for start in range(0, len(x), REFERENCE_BLOCK_ROWS):
            rows = slice(start, start + REFERENCE_BLOCK_ROWS)
            inputs = model.scaling.fitted_inputs(x[rows].to(model.device), dtype)
            yield (
                model.design_matrix(inputs),
                model.scaling.fitted_targets(y[rows].to(model.device), dtype),
            )


#: rows of the design matrix built at a time for the reference: blocks small enough to
#: stay in the processor's cache (and in memory the allocator reuses) run faster than
#: large ones
REFERENCE_BLOCK_ROWS = 1 << 13
