"""Tutorials 2 to 5's model: ``y = x @ weight.T + bias``, laid out as ``nn.Linear``."""

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from gd_lightning.data.standardize import Standardization
from gd_lightning.errors import InputError
from gd_lightning.functional import linear_design_matrix, linear_in_original_units
from gd_lightning.models.base import LearningRate, LossLogging, Optimization, RegressionModule


class LinearRegression(RegressionModule):
    """Linear regression with any number of inputs and targets.

    Its parameters are those of the ``nn.Linear`` child ``linear`` (``weight`` of
    shape (out_features, in_features), ``bias`` of shape (out_features,)), in the
    units the model is fitted in. `to_linear` gives a stand-alone
    ``nn.Linear`` in original units, with any standardization folded in: use it
    to take the model elsewhere. (``model.linear`` is the layer in fitted units, and
    the model's own ``state_dict`` also holds the standardization buffers, so
    ``nn.Linear.load_state_dict(model.state_dict())`` refuses it.) The columns the
    model reads, by name, are `feature_names`.

    Args:
        in_features: number of inputs; the command line links it from the data.
        out_features: number of targets; the command line links it from the data.
        bias: learn a bias; ``False`` when the data carries its own column of ones
            (tutorial 2).
        lr: the learning rate, a positive number, or ``"auto"`` to set it from the
            curvature of the loss at the start of a fit; see
            [`RegressionModule`][gd_lightning.RegressionModule].
        optimization: ``"automatic"`` or ``"manual"`` (the hand-written
            ``p -= lr * p.grad`` step); see [`RegressionModule`][gd_lightning.RegressionModule].
        optimizer: automatic mode only; ``None`` means SGD at ``lr``.
        scheduler: a learning-rate scheduler, stepped once per epoch.
        init_weight: the initial weight, ``out_features`` rows of ``in_features``
            numbers; ``None`` draws ``torch.randn(out_features, in_features)``.
        init_bias: the initial bias, ``out_features`` numbers; ``None`` draws
            ``torch.randn(out_features)`` (after the weight, as tutorials 3 and 5 do).
            Random draws use the global generator, so ``seed_everything`` makes them
            reproducible.
        feature_names: the inputs' names, in the order the model reads them; the
            command line and the DataModules hand them over from the data.
        target_names: the targets' names, likewise.
        loss_logging: ``"every_step"`` or ``"written_steps"``; see
            [`RegressionModule`][gd_lightning.RegressionModule].

    Examples:
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
        feature_names: list[str] | None = None,
        target_names: list[str] | None = None,
        loss_logging: LossLogging = "every_step",
    ) -> None:
        super().__init__(
            in_features,
            out_features,
            lr=lr,
            optimization=optimization,
            optimizer=optimizer,
            scheduler=scheduler,
            feature_names=feature_names,
            target_names=target_names,
            loss_logging=loss_logging,
        )
        weight = _initial(init_weight, (out_features, in_features), "init_weight")
        if not bias and init_bias is not None:
            raise InputError("init_bias is given but bias is False: drop one of them")
        initial_bias = _initial(init_bias, (out_features,), "init_bias") if bias else None
        # skip_init: nn.Linear's own initialization would draw from the global generator
        self.linear = nn.utils.skip_init(nn.Linear, in_features, out_features, bias=bias)
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            if initial_bias is not None:
                self.linear.bias.copy_(initial_bias)
        self.remember_random_start(init_weight is None or (bias and init_bias is None))

    def predict_fitted_units(self, z: Tensor) -> Tensor:
        """``z @ weight.T + bias`` for ``z`` of shape (batch, in_features)."""
        return self.linear(z)

    def design_matrix(self, z: Tensor) -> Tensor:
        """``[z, 1]`` (or ``z`` without a bias), shape (rows, in_features [+ 1])."""
        return linear_design_matrix(z, bias=self.linear.bias is not None)

    def theta(self) -> Tensor:
        """``[weight.T; bias]``: shape (in_features [+ 1], out_features)."""
        weight = self.linear.weight.detach().T  # (in_features, out_features)
        if self.linear.bias is None:
            return weight
        return torch.cat([weight, self.linear.bias.detach()[None, :]], dim=0)

    def set_standardization(self, standardization: Standardization | None) -> None:
        """As the base class; refuses a shift this model has no bias nor ones column for."""
        if standardization is not None and self.linear.bias is None:
            shifts = bool((standardization.feature_shift != 0).any()) or bool(
                (standardization.target_shift != 0).any()
            )
            if shifts and not bool(standardization.feature_constant.any()):
                raise InputError(
                    "standardizing shifts the data, and this model has no bias nor a constant "
                    "column to absorb the shift: set model.bias to true or add a column of ones"
                )
        super().set_standardization(standardization)

    def parameters_in_original_units(self, theta: Tensor | None = None) -> dict[str, Tensor]:
        """``linear.weight`` and ``linear.bias`` with the standardization folded in, float64:
        the model's own, or those of ``theta`` (in `theta`'s layout and fitted units,
        such as the least-squares optimum)."""
        if theta is None:
            weight = self.linear.weight.detach().cpu()
            bias = None if self.linear.bias is None else self.linear.bias.detach().cpu()
        else:
            weight = theta[: self.in_features].T.double().cpu()
            bias = None if self.linear.bias is None else theta[self.in_features].double().cpu()
        weight, bias = linear_in_original_units(
            weight,
            bias,
            *(self.scaling.get_buffer(name).cpu() for name in Standardization.names()),
        )
        return {"linear.weight": weight} | ({} if bias is None else {"linear.bias": bias})

    def to_linear(self) -> nn.Linear:
        """An ``nn.Linear`` that predicts what this model predicts, from raw inputs.

        The standardization, if any, is folded into its weight and bias (float64
        arithmetic, stored in this model's dtype, or in float64 where float32 cannot
        carry the inputs' shifts, as for timestamps), so it can be used or exported on
        its own. (``model.linear`` is the layer in the units it was fitted in.)

        Examples:
            >>> model = LinearRegression(2, 1, lr=0.1, init_weight=[[3.0, 2.0]], init_bias=[1.0])
            >>> model.to_linear()(torch.tensor([[1.0, 1.0]]))
            tensor([[6.]], grad_fn=<AddmmBackward0>)
        """
        values = self.parameters_in_original_units()
        layer = nn.utils.skip_init(
            nn.Linear,
            self.in_features,
            self.out_features,
            bias="linear.bias" in values,
            dtype=torch.float64 if self.scaling.wide else self.linear.weight.dtype,
        )
        with torch.no_grad():
            layer.weight.copy_(values["linear.weight"])
            if layer.bias is not None:
                layer.bias.copy_(values["linear.bias"])
        return layer

    def coefficients(
        self,
        feature_names: list[str] | None = None,
        target_names: list[str] | None = None,
        theta: Tensor | None = None,
    ) -> dict[str, dict[str, float]]:
        """``{target: {feature: weight, ..., "bias": bias}}``, one entry per target, in
        original units: the model's parameters, or those of ``theta`` (fitted units, in
        `theta`'s layout: the least-squares optimum's, for instance).

        Names default to the model's `feature_names` and `target_names`; the
        bias is called ``(bias)`` when a feature is already called ``bias`` (and
        ``((bias))`` when one is called ``(bias)`` too: every parameter keeps a name of
        its own).

        Examples:
            >>> model = LinearRegression(2, 1, lr=0.1, init_weight=[[3.0, 2.0]], init_bias=[1.0])
            >>> model.coefficients(["area", "rooms"], ["price"])
            {'price': {'area': 3.0, 'rooms': 2.0, 'bias': 1.0}}
        """
        out_features, in_features = self.linear.weight.shape
        features = feature_names or self.feature_names
        targets = target_names or self.target_names
        if (len(features), len(targets)) != (in_features, out_features):
            raise InputError(
                f"{len(features)} feature and {len(targets)} target names for a model of "
                f"{in_features} inputs and {out_features} targets"
            )
        original = self.parameters_in_original_units(theta)
        bias_name = "bias"
        while bias_name in features:
            bias_name = f"({bias_name})"
        table = {}
        for k, target in enumerate(targets):
            row = dict(zip(features, original["linear.weight"][k].tolist(), strict=True))
            if "linear.bias" in original:
                row[bias_name] = original["linear.bias"][k].item()
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
