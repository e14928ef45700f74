"""The tutorials' hand-written update step, as a ``torch.optim.Optimizer``."""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim import optimizer as torch_optimizer


class GradientDescent(Optimizer):
    r"""Plain gradient descent, exactly as the tutorials write it by hand.

    .. math:: p \leftarrow p - \mathrm{lr} \cdot \nabla_p L

    ``step()`` performs ``p -= lr * p.grad`` for every parameter, without tracking
    gradients: the same floating-point operations, in the same order, as the
    tutorials' ``params.data -= lr * params.grad.data``. Being an optimizer, it
    is driven through Lightning's ``self.optimizers()``, so ``global_step``,
    ``max_steps``, step-based logging and checkpointing count these updates.

    Args:
        params: the parameters (or parameter groups) to update.
        lr: the learning rate, a positive number.

    Example:
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

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Take one step ``p -= lr * p.grad``; re-evaluates ``closure`` first if given.

        Optimizer step hooks (``register_step_pre_hook``, the global ones) run, and
        the PyTorch profiler records the step, as for any optimizer; when neither is in
        use the step skips the wrapper PyTorch puts around every ``step`` for them,
        which costs more than the update.
        """
        if (
            self._optimizer_step_pre_hooks
            or self._optimizer_step_post_hooks
            or _GLOBAL_PRE_HOOKS
            or _GLOBAL_POST_HOOKS
            or torch.autograd._profiler_enabled()
        ):
            return _hooked_update(self, closure)
        return self._update(closure)

    # PyTorch wraps an optimizer class's step with the hooks and profiler record unless
    # it is marked as wrapped already; this one calls that wrapper itself when needed
    step.hooked = True  # type: ignore[attr-defined]

    def _update(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                lr = group["lr"]
                for p in group["params"]:
                    if p.grad is not None:
                        p -= lr * p.grad
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every gradient (to ``None``, or to zeros with ``set_to_none=False``).

        The same as ``Optimizer.zero_grad``, without its profiler record, which costs
        as much as the tutorial's update itself.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()


#: PyTorch's registries of hooks for every optimizer (empty when none is registered;
#: a PyTorch without them gets every step through its wrapper)
_GLOBAL_PRE_HOOKS: dict = getattr(torch_optimizer, "_global_optimizer_pre_hooks", {None: None})
_GLOBAL_POST_HOOKS: dict = getattr(torch_optimizer, "_global_optimizer_post_hooks", {None: None})
#: the step as PyTorch runs any optimizer's: hooks around it, inside a profiler record
_hooked_update = Optimizer.profile_hook_step(GradientDescent._update)
