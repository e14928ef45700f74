"""Tutorials 2 to 5's model: ``y = x @ weight.T + bias``, laid out as ``nn.Linear``."""

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from gd_lightning.data.standardize import Standardization
from gd_lightning.errors import InputError
from gd_lightning.models.base import LearningRate, Optimization, RegressionModule


class LinearRegression(RegressionModule):
    """Linear regression with any number of inputs and targets.

    Its parameters are named and shaped as in ``torch.nn.Linear`` (``weight``
    of shape (out_features, in_features), ``bias`` of shape (out_features,)),
    so ``nn.Linear(in_features, out_features).load_state_dict(model.state_dict())``
    works.

    Args:
        in_features: number of inputs; the command line links it from the data.
        out_features: number of targets; the command line links it from the data.
        bias: learn a bias; ``False`` when the data carries its own column of ones
            (tutorial 2).
        lr: the learning rate, a positive number, or ``"auto"`` to set it from the
            curvature of the loss at the start of a fit; see :class:`RegressionModule`.
        optimization: ``"automatic"`` or ``"manual"`` (the hand-written
            ``p -= lr * p.grad`` step); see :class:`RegressionModule`.
        optimizer: automatic mode only; ``None`` means SGD at ``lr``.
        scheduler: a learning-rate scheduler, stepped once per epoch.
        init_weight: the initial weight, ``out_features`` rows of ``in_features``
            numbers; ``None`` draws ``torch.randn(out_features, in_features)``.
        init_bias: the initial bias, ``out_features`` numbers; ``None`` draws
            ``torch.randn(out_features)`` (after the weight, as tutorials 3 and 5 do).
            Random draws use the global generator, so ``seed_everything`` makes them
            reproducible.

    Example:
        >>> model = LinearRegression(2, 1, lr=0.1, init_weight=[[3.0, 2.0]], init_bias=[1.0])
        >>> model(torch.tensor([[1.0, 1.0], [0.0, -1.0]]))
        tensor([[ 6.],
                [-1.]], grad_fn=<AddmmBackward0>)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int = 1,
        bias: bool = True,
        *,
        lr: LearningRate,
        optimization: Optimization = "automatic",
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
        init_weight: list[list[float]] | None = None,
        init_bias: list[float] | None = None,
    ) -> None:
        super().__init__(lr=lr, optimization=optimization, optimizer=optimizer, scheduler=scheduler)
        if in_features < 1 or out_features < 1:
            raise InputError(
                f"in_features and out_features must be at least 1, got {in_features} "
                f"and {out_features}"
            )
        self.weight = nn.Parameter(
            _initial(init_weight, (out_features, in_features), "init_weight")
        )
        if bias:
            self.bias = nn.Parameter(_initial(init_bias, (out_features,), "init_bias"))
        elif init_bias is not None:
            raise InputError("init_bias is given but bias is False: drop one of them")
        else:
            self.register_parameter("bias", None)

    def core(self, z: Tensor) -> Tensor:
        """``z @ weight.T + bias`` for ``z`` of shape (batch, in_features)."""
        return F.linear(z, self.weight, self.bias)

    def design_matrix(self, z: Tensor) -> Tensor:
        """``[z, 1]`` (or ``z`` without a bias), shape (rows, in_features [+ 1])."""
        if self.bias is None:
            return z
        return torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype, device=z.device)], dim=1)

    def flat_parameters_of(self, parameters: list[Tensor]) -> Tensor:
        """``[weight.T; bias]``: shape (..., in_features [+ 1], out_features)."""
        weight = parameters[0].transpose(-1, -2)  # (..., in_features, out_features)
        if self.bias is None:
            return weight
        return torch.cat([weight, parameters[1].unsqueeze(-2)], dim=-2)

    def set_standardization(self, standardization: Standardization | None) -> None:
        """As the base class; refuses a shift this model has no bias nor ones column for."""
        if standardization is not None and self.bias is None:
            shifts = bool((standardization.feature_shift != 0).any()) or bool(
                (standardization.target_shift != 0).any()
            )
            if shifts and bool(standardization.feature_constant.isnan().all()):
                raise InputError(
                    "standardizing shifts the data, and this model has no bias nor a constant "
                    "column to absorb the shift: set model.bias to true or add a column of ones"
                )
        super().set_standardization(standardization)

    def folded(self) -> dict[str, Tensor]:
        """``weight`` and ``bias`` in original units (the scaling folded in)."""
        weight = self.weight.detach().double().cpu()  # (out, in)
        bias = None if self.bias is None else self.bias.detach().double().cpu()
        s = self.standardization
        if s is None:
            return {"weight": weight} | ({} if bias is None else {"bias": bias})
        mx, sx = s.feature_shift.double(), s.feature_scale.double()
        my, sy = s.target_shift.double(), s.target_scale.double()
        # y = sy * (W' (x - mx) / sx + b') + my = W x + b
        folded_weight = sy[:, None] * weight / sx[None, :]
        shift = my - sy * (weight @ (mx / sx))  # (out,)
        if bias is not None:
            return {"weight": folded_weight, "bias": sy * bias + shift}
        # no bias: a constant column carries it, shift / value more of its weight
        column = int(s.feature_constant.isnan().logical_not().nonzero()[0])
        folded_weight[:, column] += shift / s.feature_constant[column].double()
        return {"weight": folded_weight}

    def coefficients(
        self, feature_names: list[str] | None = None, target_names: list[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """``{target: {feature: weight, ..., "bias": bias}}``, one entry per target, in
        original units.

        Names default to ``x0, x1, ...`` and ``y0, ...``; the bias is called
        ``(bias)`` when a feature is already called ``bias``.

        Example:
            >>> model = LinearRegression(2, 1, lr=0.1, init_weight=[[3.0, 2.0]], init_bias=[1.0])
            >>> model.coefficients(["area", "rooms"], ["price"])
            {'price': {'area': 3.0, 'rooms': 2.0, 'bias': 1.0}}
        """
        out_features, in_features = self.weight.shape
        features = feature_names or [f"x{i}" for i in range(in_features)]
        targets = target_names or [f"y{k}" for k in range(out_features)]
        if (len(features), len(targets)) != (in_features, out_features):
            raise InputError(
                f"{len(features)} feature and {len(targets)} target names for a model of "
                f"{in_features} inputs and {out_features} targets"
            )
        folded = self.folded()
        bias_name = "(bias)" if "bias" in features else "bias"
        table = {}
        for k, target in enumerate(targets):
            row = dict(zip(features, folded["weight"][k].tolist(), strict=True))
            if "bias" in folded:
                row[bias_name] = folded["bias"][k].item()
            table[target] = row
        return table


def _initial(values: list | None, shape: tuple[int, ...], name: str) -> Tensor:
    """The given initial values as float32 of ``shape``, or a standard normal draw."""
    if values is None:
        return torch.randn(shape)
    tensor = torch.tensor(values, dtype=torch.float32)
    if tensor.shape != shape:
        raise InputError(
            f"{name} has shape {tuple(tensor.shape)} but the model needs {shape} "
            f"(out_features, in_features): fix {name} or the data's columns"
        )
    return tensor
