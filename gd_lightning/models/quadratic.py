"""Tutorial 1's model: a quadratic in one input, ``a*t**2 + b*t + c``."""

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from gd_lightning.errors import InputError
from gd_lightning.functional import quadratic
from gd_lightning.models.base import LearningRate, Optimization, RegressionModule


class QuadraticRegression(RegressionModule):
    """Fit ``a*t**2 + b*t + c`` to one input ``t`` and one target.

    The three coefficients live in one parameter tensor ``params = (a, b, c)``,
    as in tutorial 1.

    Args:
        lr: the learning rate, a positive number, or ``"auto"`` to set it from the
            curvature of the loss at the start of a fit; see :class:`RegressionModule`.
        optimization: ``"automatic"`` or ``"manual"`` (the hand-written
            ``p -= lr * p.grad`` step); see :class:`RegressionModule`.
        optimizer: automatic mode only; ``None`` means SGD at ``lr``.
        scheduler: a learning-rate scheduler, stepped once per epoch.
        init_params: the initial ``(a, b, c)``; ``None`` draws ``torch.randn(3)``
            from the global generator, so ``seed_everything`` makes it reproducible.
        in_features: must be 1 (the input ``t``); the command line links it from the data.
        out_features: must be 1; the command line links it from the data.

    Example:
        >>> model = QuadraticRegression(lr=1e-5, init_params=[1.0, -2.0, 3.0])
        >>> model(torch.tensor([[0.0], [1.0], [2.0]]))
        tensor([[3.],
                [2.],
                [3.]], grad_fn=<AddBackward0>)
    """

    def __init__(
        self,
        lr: LearningRate,
        optimization: Optimization = "automatic",
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
        init_params: list[float] | None = None,
        in_features: int = 1,
        out_features: int = 1,
    ) -> None:
        super().__init__(lr=lr, optimization=optimization, optimizer=optimizer, scheduler=scheduler)
        if (in_features, out_features) != (1, 1):
            raise InputError(
                f"QuadraticRegression fits one input to one target, but the data has "
                f"{in_features} input(s) and {out_features} target(s): use LinearRegression "
                f"or choose one feature and one target column"
            )
        if init_params is None:
            params = torch.randn(3)
        elif len(init_params) != 3:
            raise InputError(f"init_params must hold 3 numbers (a, b, c), got {len(init_params)}")
        else:
            params = torch.tensor(init_params, dtype=torch.float32)
        self.params = nn.Parameter(params)

    def core(self, z: Tensor) -> Tensor:
        """``a*z**2 + b*z + c`` for inputs ``z`` of shape (batch, 1)."""
        return quadratic(z, self.params)

    def design_matrix(self, z: Tensor) -> Tensor:
        """``[z**2, z, 1]``, shape (rows, 3)."""
        return torch.cat([z**2, z, torch.ones_like(z)], dim=1)

    def flat_parameters_of(self, parameters: list[Tensor]) -> Tensor:
        """``(a, b, c)`` as a column: shape (..., 3, 1)."""
        return parameters[0].unsqueeze(-1)

    def folded(self) -> dict[str, Tensor]:
        """``params`` in original units: the quadratic in ``z = (t - m) / s`` expanded in ``t``."""
        a, b, c = self.params.detach().double().cpu()
        s = self.standardization
        if s is None:
            return {"params": torch.stack([a, b, c])}
        m, w = s.feature_shift[0].double(), s.feature_scale[0].double()
        my, sy = s.target_shift[0].double(), s.target_scale[0].double()
        return {
            "params": torch.stack(
                [
                    sy * a / w**2,
                    sy * (b / w - 2 * a * m / w**2),
                    sy * (a * m**2 / w**2 - b * m / w + c) + my,
                ]
            )
        }

    def coefficients(
        self, feature_names: list[str] | None = None, target_names: list[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """``{target: {"a": a, "b": b, "c": c}}``, in original units.

        Example:
            >>> QuadraticRegression(lr=0.1, init_params=[0.5, -1.0, 2.0]).coefficients()
            {'y': {'a': 0.5, 'b': -1.0, 'c': 2.0}}
        """
        a, b, c = self.folded()["params"].tolist()
        return {(target_names or ["y"])[0]: {"a": a, "b": b, "c": c}}
