"""The models' math as small pure functions, apart from the Lightning plumbing."""

import torch.nn.functional as F
from torch import Tensor


def quadratic(t: Tensor, params: Tensor) -> Tensor:
    r"""Evaluate :math:`a t^2 + b t + c` with ``params = (a, b, c)``.

    Computed in the tutorial's order, ``a*(t**2) + (b*t) + c``, so the floating
    point result is the tutorial's to the last bit.

    Example:
        >>> import torch
        >>> quadratic(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, -2.0, 3.0]))
        tensor([3., 2., 3.])
    """
    a, b, c = params
    return a * t**2 + b * t + c


def mse(preds: Tensor, targets: Tensor) -> Tensor:
    r"""Mean squared error over every element, the tutorials' loss.

    .. math:: \mathrm{MSE} = \frac{1}{N} \sum_i (\hat y_i - y_i)^2

    Unlike ``F.mse_loss`` it refuses to broadcast: a prediction of shape (n,)
    against targets of shape (n, 1) is a bug, not an (n, n) comparison.

    Example:
        >>> import torch
        >>> mse(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [4.0]]))
        tensor(2.)
    """
    if preds.shape != targets.shape:
        raise ValueError(
            f"predictions have shape {tuple(preds.shape)} but targets have shape "
            f"{tuple(targets.shape)}; they must match"
        )
    return F.mse_loss(preds, targets)
