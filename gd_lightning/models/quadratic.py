"""Tutorial 1's model: a quadratic in one input, ``a*t**2 + b*t + c``."""

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from gd_lightning.data.standardize import Standardization
from gd_lightning.errors import InputError
from gd_lightning.functional import quadratic, quadratic_design_matrix, quadratic_in_original_units
from gd_lightning.models.base import LearningRate, LossLogging, Optimization, RegressionModule


class QuadraticRegression(RegressionModule):
    """Fit ``a*t**2 + b*t + c`` to one input ``t`` and one target.

    The three coefficients live in one parameter tensor ``params = (a, b, c)``,
    as in tutorial 1, held by the child module ``quadratic``.

    Args:
        lr: the learning rate, a positive number, or ``"auto"`` to set it from the
            curvature of the loss at the start of a fit; see
            [`RegressionModule`][gd_lightning.RegressionModule].
        optimization: ``"automatic"`` or ``"manual"`` (the hand-written
            ``p -= lr * p.grad`` step); see [`RegressionModule`][gd_lightning.RegressionModule].
        optimizer: automatic mode only; ``None`` means SGD at ``lr``.
        scheduler: a learning-rate scheduler, stepped once per epoch.
        init_params: the initial ``(a, b, c)``; ``None`` draws ``torch.randn(3)``
            from the global generator, so ``seed_everything`` makes it reproducible.
        in_features: must be 1 (the input ``t``); the command line links it from the data.
        out_features: must be 1; the command line links it from the data.
        feature_names: the input's name (one); handed over from the data.
        target_names: the target's name (one); handed over from the data.
        loss_logging: ``"every_step"`` or ``"written_steps"``; see
            [`RegressionModule`][gd_lightning.RegressionModule].

    Examples:
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
        feature_names: list[str] | None = None,
        target_names: list[str] | None = None,
        loss_logging: LossLogging = "every_step",
    ) -> None:
        if (in_features, out_features) != (1, 1):
            raise InputError(
                f"QuadraticRegression fits one input to one target, but the data has "
                f"{in_features} input(s) and {out_features} target(s): use LinearRegression "
                f"or choose one feature and one target column"
            )
        super().__init__(
            1,
            1,
            lr=lr,
            optimization=optimization,
            optimizer=optimizer,
            scheduler=scheduler,
            feature_names=feature_names,
            target_names=target_names,
            loss_logging=loss_logging,
        )
        if init_params is None:
            params = torch.randn(3)
        elif len(init_params) != 3:
            raise InputError(f"init_params must hold 3 numbers (a, b, c), got {len(init_params)}")
        else:
            params = torch.tensor(init_params, dtype=torch.float32)
        self.quadratic = Quadratic(params)
        self.remember_random_start(init_params is None)

    def predict_fitted_units(self, z: Tensor) -> Tensor:
        """``a*z**2 + b*z + c`` for inputs ``z`` of shape (batch, 1)."""
        return self.quadratic(z)

    def design_matrix(self, z: Tensor) -> Tensor:
        """``[z**2, z, 1]``, shape (rows, 3)."""
        return quadratic_design_matrix(z)

    def theta(self) -> Tensor:
        """``(a, b, c)`` as a column: shape (3, 1)."""
        return self.quadratic.params.detach()[:, None]

    def parameters_in_original_units(self, theta: Tensor | None = None) -> dict[str, Tensor]:
        """``quadratic.params``: the quadratic in ``z = (t - m) / s`` expanded in ``t``; the
        model's own, or those of ``theta`` (shape (3, 1), fitted units)."""
        stats = [float(self.scaling.get_buffer(name)[0]) for name in Standardization.names()[:4]]
        params = self.quadratic.params.detach() if theta is None else theta[:, 0].double()
        return {"quadratic.params": quadratic_in_original_units(params.cpu(), *stats)}

    def coefficients(
        self,
        feature_names: list[str] | None = None,
        target_names: list[str] | None = None,
        theta: Tensor | None = None,
    ) -> dict[str, dict[str, float]]:
        """``{target: {"a": a, "b": b, "c": c}}``, in original units: the model's
        parameters, or those of ``theta`` (fitted units: the least-squares optimum's, for
        instance).

        Examples:
            >>> QuadraticRegression(lr=0.1, init_params=[0.5, -1.0, 2.0]).coefficients()
            {'y0': {'a': 0.5, 'b': -1.0, 'c': 2.0}}
        """
        a, b, c = self.parameters_in_original_units(theta)["quadratic.params"].tolist()
        return {(target_names or self.target_names)[0]: {"a": a, "b": b, "c": c}}


class Quadratic(nn.Module):
    """``a*t**2 + b*t + c`` with one parameter tensor ``params = (a, b, c)``.

    Examples:
        >>> Quadratic(torch.tensor([1.0, 0.0, -1.0]))(torch.tensor([[2.0]]))
        tensor([[3.]], grad_fn=<AddBackward0>)
    """

    def __init__(self, params: Tensor) -> None:
        super().__init__()
        self.params = nn.Parameter(params)

    def forward(self, t: Tensor) -> Tensor:
        return quadratic(t, self.params)
