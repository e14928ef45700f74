"""The tutorials' hand-written update step, as a ``torch.optim.Optimizer``."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau


class GradientDescent(Optimizer):
    r"""Plain gradient descent, exactly as the tutorials write it by hand.

    ``p ← p − lr · ∇ₚL``

    ``step()`` performs ``p -= lr * p.grad`` for every parameter, without tracking
    gradients: the same floating-point operations, in the same order, as the
    tutorials' ``params.data -= lr * params.grad.data``. Being an optimizer, it
    is driven through Lightning's ``self.optimizers()``, so ``global_step``,
    ``max_steps``, step-based logging and checkpointing count these updates, and
    optimizer hooks and the profiler see it as any other.

    Args:
        params: the parameters (or parameter groups) to update.
        lr: the learning rate, a positive number.

    Examples:
        >>> p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
        >>> p.grad = torch.tensor([10.0, -10.0])
        >>> GradientDescent([p], lr=0.1).step()
        >>> p.data
        tensor([0., 3.])
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be a positive number, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Take one step ``p -= lr * p.grad``; re-evaluates ``closure`` first if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is not None:
                    p -= lr * p.grad
        return loss


def build_optimizer(
    parameters: Iterable[Tensor],
    lr: float,
    manual: bool,
    factory: Callable[..., Optimizer] | None = None,
) -> Optimizer:
    """The optimizer of a fit: [`GradientDescent`][gd_lightning.GradientDescent] in manual mode
    (the tutorials' step), else ``factory(parameters, lr=lr)``, or ``torch.optim.SGD``
    without one.

    Examples:
        >>> p = torch.nn.Parameter(torch.zeros(2))
        >>> type(build_optimizer([p], 0.1, manual=True)).__name__
        'GradientDescent'
    """
    if manual:
        return GradientDescent(parameters, lr=lr)
    if factory is None:
        return torch.optim.SGD(parameters, lr=lr)
    return factory(parameters, lr=lr)


def optimizers_config(optimizer: Optimizer, scheduler: Any | None, manual: bool) -> Any:
    """What ``configure_optimizers`` returns: the optimizer alone, or with its scheduler,
    stepped once an epoch (``ReduceLROnPlateau`` watching ``train/epoch_mse``). In manual
    mode Lightning does not step schedulers: the module does, at each epoch's end."""
    if scheduler is None:
        return optimizer
    if manual:
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
    schedule = {"scheduler": scheduler, "interval": "epoch", "monitor": "train/epoch_mse"}
    return {"optimizer": optimizer, "lr_scheduler": schedule}


def step_scheduler(scheduler: Any, metrics: Mapping[str, Tensor]) -> None:
    """Step ``scheduler`` at an epoch's end, as Lightning does in automatic mode:
    ``ReduceLROnPlateau`` on the epoch's ``train/epoch_mse`` among the logged
    ``metrics``, any other as it is (none: nothing)."""
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(metrics["train/epoch_mse"])
    elif scheduler is not None:
        scheduler.step()


def optimizer_settings(optimizer: Optimizer) -> dict[str, Any]:
    """An optimizer's class and the settings it was built with (its ``defaults`` that
    are plain values; ``None``, PyTorch's own choice, as ``False``), as a checkpoint
    records them to compare a resumed fit's with.

    Examples:
        >>> p = torch.nn.Parameter(torch.zeros(2))
        >>> optimizer_settings(torch.optim.SGD([p], lr=0.1, momentum=0.9))["momentum"]
        0.9
    """
    kind = type(optimizer)
    settings: dict[str, Any] = {"class": f"{kind.__module__}.{kind.__qualname__}"}
    for name, value in optimizer.defaults.items():
        if value is None:  # left to PyTorch (foreach, fused, ...): it may record False
            settings[name] = False
        elif isinstance(value, bool | int | float | str):
            settings[name] = value
        elif isinstance(value, tuple) and all(isinstance(v, int | float) for v in value):
            settings[name] = list(value)
    return settings
