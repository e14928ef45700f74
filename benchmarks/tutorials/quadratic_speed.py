"""Tutorial 1 by hand: a quadratic fitted to speed over time, 6 plotted steps, then 10 printed."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

torch.manual_seed(2021)
t = torch.arange(0, 20).float()
speed = torch.rand(20) * 5 + 0.8 * (t - 7.5) ** 2 + 1
params = torch.randn(3).requires_grad_()  # shown, then discarded
params = torch.randn(3).requires_grad_()
orig_params = params.clone()


def f(t, params):
    a, b, c = params
    return a * (t**2) + (b * t) + c


def mse(preds, targets):
    return ((preds - targets) ** 2).mean()


def apply_step(params, show=True):
    preds = f(t, params)
    loss = mse(preds, speed)
    loss.backward()
    params.data -= 1e-5 * params.grad.data
    params.grad = None
    if show:
        print(loss.sqrt().item())
    return preds


_, axs = plt.subplots(1, 6, figsize=(12, 3))
for ax in axs:
    preds = apply_step(params, False)
    ax.scatter(t, speed)
    ax.scatter(t, preds.detach(), color="red")
    ax.set_ylim(-100, 100)
plt.tight_layout()
plt.savefig("quadratic_steps.png")
params = orig_params.detach().requires_grad_()
for _ in range(10):
    apply_step(params)
