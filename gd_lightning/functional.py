"""The models' math as small pure functions, apart from the Lightning plumbing.

Every model here is linear in its parameters: its predictions are ``A @ theta`` for
a design matrix ``A`` built from the inputs. The functions below build those
matrices, evaluate the models, and fold a standardization of the data back into
the parameters, so that a model fitted in standardized units predicts in original
units from raw inputs.
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def quadratic(t: Tensor, params: Tensor) -> Tensor:
    r"""Evaluate ``a·t² + b·t + c`` with ``params = (a, b, c)``.

    Computed in the tutorial's order, ``a*(t**2) + (b*t) + c``, so the floating
    point result is the tutorial's to the last bit.

    Examples:
        >>> quadratic(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, -2.0, 3.0]))
        tensor([3., 2., 3.])
    """
    a, b, c = params
    return a * t**2 + b * t + c


def mse(preds: Tensor, targets: Tensor) -> Tensor:
    r"""Mean squared error over every element, the tutorials' loss.

    ``MSE = (1/N) · Σᵢ (ŷᵢ − yᵢ)²``

    Unlike ``F.mse_loss`` it refuses to broadcast: a prediction of shape (n,)
    against targets of shape (n, 1) is a bug, not an (n, n) comparison.

    Examples:
        >>> mse(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [4.0]]))
        tensor(2.)
    """
    if preds.shape != targets.shape:
        raise ValueError(
            f"predictions have shape {tuple(preds.shape)} but targets have shape "
            f"{tuple(targets.shape)}; they must match"
        )
    return F.mse_loss(preds, targets)


def linear_design_matrix(x: Tensor, bias: bool = True) -> Tensor:
    """``[x, 1]`` (or ``x`` alone without a bias): shape (rows, in_features [+ 1]).

    Examples:
        >>> linear_design_matrix(torch.tensor([[2.0], [3.0]]))
        tensor([[2., 1.],
                [3., 1.]])
    """
    if not bias:
        return x
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], dim=1)


def quadratic_design_matrix(t: Tensor) -> Tensor:
    """``[t**2, t, 1]`` for inputs of shape (rows, 1): shape (rows, 3).

    Examples:
        >>> quadratic_design_matrix(torch.tensor([[2.0]]))
        tensor([[4., 2., 1.]])
    """
    return torch.cat([t**2, t, torch.ones_like(t)], dim=1)


def linear_in_original_units(
    weight: Tensor,
    bias: Tensor | None,
    feature_shift: Tensor,
    feature_scale: Tensor,
    target_shift: Tensor,
    target_scale: Tensor,
    feature_constant: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    r"""The weight and bias that predict from raw inputs what a linear model fitted to
    standardized data predicts.

    With ``z = (x − mₓ) / sₓ`` and ``y = s_y · ẑ + m_y``,

    ``y = (s_y · W / sₓ) · x + s_y · b + m_y − s_y · W · mₓ / sₓ``.

    Without a bias, the shift goes into the weight of a constant input column (a
    column of ones): ``feature_constant`` holds each column's constant value, 0
    where it varies (a column of zeros absorbs nothing). Everything is computed in float64.

    Examples:
        >>> t = torch.tensor
        >>> w, b = linear_in_original_units(
        ...     t([[2.0]]), t([1.0]), t([10.0]), t([5.0]), t([100.0]), t([3.0]))
        >>> # 3 * (2 * (x - 10) / 5 + 1) + 100 = 1.2 x + 91
        >>> w.round(decimals=6), b.round(decimals=6)
        (tensor([[1.2000]], dtype=torch.float64), tensor([91.], dtype=torch.float64))
    """
    weight = weight.double()  # (out, in)
    mx, sx = feature_shift.double(), feature_scale.double()
    my, sy = target_shift.double(), target_scale.double()
    original = sy[:, None] * weight / sx[None, :]
    shift = my - sy * (weight @ (mx / sx))  # (out,)
    if bias is not None:
        return original, sy * bias.double() + shift
    if not bool((shift != 0).any()):
        return original, None
    if feature_constant is None or not bool(feature_constant.any()):
        raise ValueError("the standardization shifts the data and there is no bias to absorb it")
    column = int(feature_constant.nonzero()[0])
    original[:, column] += shift / feature_constant[column].double()
    return original, None


def quadratic_in_original_units(
    params: Tensor, shift: float, scale: float, target_shift: float, target_scale: float
) -> Tensor:
    r"""``(a, b, c)`` of the quadratic in raw ``t`` that equals ``s_y q(z) + m_y``, with
    ``q(z) = a·z² + b·z + c`` and ``z = (t − m) / s``; float64.

    Examples:
        >>> params = quadratic_in_original_units(torch.tensor([1.0, 0.0, 0.0]), 1.0, 2.0, 0.0, 1.0)
        >>> params.round(decimals=6)
        tensor([ 0.2500, -0.5000,  0.2500], dtype=torch.float64)
    """
    a, b, c = params.double()
    m, s = shift, scale
    return torch.stack(
        [
            target_scale * a / s**2,
            target_scale * (b / s - 2 * a * m / s**2),
            target_scale * (a * m**2 / s**2 - b * m / s + c) + target_shift,
        ]
    )


def regression_sums(preds: Tensor, targets: Tensor, shift: Tensor) -> Tensor:
    """A batch's sums for MSE, MAE and R², shape (4, targets), in the data's dtype (as
    torchmetrics sums them):
    ``Σ d²``, ``Σ |d|``, ``Σ (y - c)``, ``Σ (y - c)²`` with ``d = preds - targets`` and
    ``c = shift`` (any constant per target; one near the targets' mean keeps R²'s
    precision). Sums of batches add up to the sums of their union.

    Examples:
        >>> regression_sums(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [4.0]]),
        ...                 torch.tensor([0.0]))
        tensor([[ 4.],
                [ 2.],
                [ 5.],
                [17.]])
    """
    diff = preds - targets  # (rows, targets)
    centred = targets - shift
    return torch.stack((diff * diff, diff.abs(), centred, centred * centred)).sum(1)


def regression_metrics(sums: Tensor, rows: int) -> dict[str, Tensor]:
    """MSE, RMSE, MAE and R² (averaged over targets) from
    [`regression_sums`][gd_lightning.regression_sums] of ``rows`` rows, as torchmetrics'
    ``MeanSquaredError``, ``MeanAbsoluteError`` and
    ``R2Score(multioutput="uniform_average")`` compute them.

    Examples:
        >>> sums = torch.tensor([[2.0], [2.0], [0.0], [8.0]], dtype=torch.float64)
        >>> {k: round(float(v), 4) for k, v in regression_metrics(sums, 4).items()}
        {'mse': 0.5, 'rmse': 0.7071, 'mae': 0.5, 'r2': 0.75}
    """
    squares, absolute, centred, centred_squares = sums
    values = rows * squares.numel()
    mse = squares.sum() / values
    total = centred_squares - centred * centred / rows  # Σ (y - ȳ)² per target
    # torchmetrics' convention for a (near) constant target: 1 if also fitted exactly, else 0
    has_residual, has_total = squares.abs() > 1e-4, total.abs() > 1e-4
    scores = torch.where(has_residual & has_total, 1 - squares / total.where(has_total, 1.0),
                         (~has_residual).double())  # fmt: skip
    r2 = scores.mean() if rows >= 2 else torch.tensor(torch.nan, dtype=sums.dtype)
    return {"mse": mse, "rmse": mse.sqrt(), "mae": absolute.sum() / values, "r2": r2}
