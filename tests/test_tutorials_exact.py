"""Manual mode reproduces each tutorial's own hand-written loop, bit for bit.

Each reference below is the tutorial's code as written (TUTORIALS.md), run on the
same data and initial values. Where a tutorial shuffles, the reference visits
the rows in the DataModule's documented order, ``randperm`` seeded with
``seed + epoch``, so both see the same batches.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CROP_INPUTS, CROP_TARGETS, fit
from lightning.pytorch import Callback, seed_everything
from torch import nn

from gd_lightning import (
    ArangeDataModule,
    CropYieldsDataModule,
    LinearRegression,
    NoisyLineDataModule,
    QuadraticRegression,
    SpeedDataModule,
)


class RecordRMSE(Callback):
    """Collects the logged ``train/epoch_rmse`` of every epoch, as callbacks and loggers
    get it: with the full batch, each epoch is one step, measured before its update."""

    def __init__(self) -> None:
        self.values: list[torch.Tensor] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.values.append(trainer.callback_metrics["train/epoch_rmse"].clone())


def tutorial_1(steps: int) -> dict:
    """Tutorial 1 verbatim: quadratic speed over time, full batch, lr 1e-5."""
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

    lr = 1e-5
    rmses = []
    for _ in range(steps):
        preds = f(t, params)
        loss = mse(preds, speed)
        loss.backward()
        rmses.append(loss.detach().sqrt())
        params.data -= lr * params.grad.data
        params.grad = None
    return {
        "t": t,
        "speed": speed,
        "init": orig_params.detach(),
        "params": params.detach(),
        "rmse": torch.stack(rmses),
    }


def test_tutorial_1_quadratic_speed_is_bit_exact() -> None:
    ref = tutorial_1(steps=10)
    dm = SpeedDataModule()
    x, y = dm.load()
    assert torch.equal(x[:, 0], ref["t"]) and torch.equal(y[:, 0], ref["speed"])

    model = QuadraticRegression(lr=1e-5, optimization="manual", init_params=ref["init"].tolist())
    record = RecordRMSE()
    trainer = fit(model, dm, max_epochs=10, callbacks=[record])

    assert trainer.global_step == 10  # one honest optimizer step per update
    assert torch.equal(model.quadratic.params.detach(), ref["params"])
    assert not torch.equal(model.quadratic.params.detach(), ref["init"])  # it did move
    assert torch.equal(torch.stack(record.values), ref["rmse"])  # the tutorial's printout


def tutorial_2(x: torch.Tensor, y: torch.Tensor, epochs: int) -> torch.Tensor:
    """Tutorial 2 verbatim: the line through a bias column, initial guess (-1, 1)."""
    a = nn.Parameter(torch.tensor([-1.0, 1]))
    lr = 1e-1

    def mse(y_hat, y):
        return ((y_hat - y) ** 2).mean()

    for _ in range(epochs):
        y_hat = x @ a
        loss = mse(y, y_hat)
        loss.backward()
        with torch.no_grad():
            a.sub_(lr * a.grad)
            a.grad.zero_()
    return a.detach()


def test_tutorial_2_line_fit_is_bit_exact() -> None:
    torch.manual_seed(7)
    n = 100
    x = torch.ones(n, 2)
    x[:, 0].uniform_(-1.0, 1)
    a = torch.tensor([3.0, 2])
    y = x @ a + torch.rand(n)

    dm = NoisyLineDataModule(seed=7)
    features, targets = dm.load()
    assert torch.equal(features, x) and torch.equal(targets[:, 0], y)

    model = LinearRegression(
        2, 1, bias=False, lr=0.1, optimization="manual", init_weight=[[-1.0, 1.0]]
    )
    fit(model, dm, max_epochs=100)
    assert torch.equal(model.linear.weight.detach()[0], tutorial_2(x, y, epochs=100))


def crop_reference(
    rows: int, lr: float, epochs: int, batch_size: int | None, seed: int, shuffle_seed: int
) -> tuple[torch.Tensor, ...]:
    """Tutorials 3 and 5 verbatim; minibatches visit rows in the documented order."""
    inputs = torch.from_numpy(CROP_INPUTS[:rows])
    targets = torch.from_numpy(CROP_TARGETS[:rows])
    torch.manual_seed(seed)
    w = torch.randn(2, 3, requires_grad=True)
    b = torch.randn(2, requires_grad=True)
    w0, b0 = w.detach().clone(), b.detach().clone()

    def model(x):
        return x @ w.t() + b

    def mse(t1, t2):
        diff = t1 - t2
        return torch.sum(diff * diff) / diff.numel()

    for epoch in range(epochs):
        if batch_size is None:
            batches = [torch.arange(rows)]
        else:
            order = torch.randperm(
                rows, generator=torch.Generator().manual_seed(shuffle_seed + epoch)
            )
            batches = list(order.split(batch_size))
        for idx in batches:
            preds = model(inputs[idx])
            loss = mse(preds, targets[idx])
            loss.backward()
            with torch.no_grad():
                w -= w.grad * lr
                b -= b.grad * lr
                w.grad.zero_()
                b.grad.zero_()
    return w0, b0, w.detach(), b.detach()


@pytest.mark.parametrize(
    ("rows", "lr", "epochs", "batch_size"),
    [(15, 1e-6, 50, 3), (5, 1e-5, 100, None)],
    ids=["tutorial_3_minibatches", "tutorial_5_full_batch"],
)
def test_tutorials_3_and_5_crop_yields_are_bit_exact(rows, lr, epochs, batch_size) -> None:
    w0, b0, w_ref, b_ref = crop_reference(rows, lr, epochs, batch_size, seed=3, shuffle_seed=11)

    dm = CropYieldsDataModule(num_regions=rows, batch_size=batch_size, shuffle=True, seed=11)
    x, y = dm.load()
    assert np.array_equal(x.numpy(), CROP_INPUTS[:rows])
    assert np.array_equal(y.numpy(), CROP_TARGETS[:rows])

    # random initial values: the tutorials' randn(2, 3) then randn(2), under seed_everything
    seed_everything(3)
    model = LinearRegression(3, 2, lr=lr, optimization="manual")
    assert torch.equal(model.linear.weight.detach(), w0) and torch.equal(
        model.linear.bias.detach(), b0
    )

    trainer = fit(model, dm, max_epochs=epochs)
    assert trainer.global_step == epochs * (-(-rows // (batch_size or rows)))
    assert torch.equal(model.linear.weight.detach(), w_ref)
    assert torch.equal(model.linear.bias.detach(), b_ref)


def tutorial_4(init: nn.Linear, epochs: int, shuffle_seed: int, step: str) -> nn.Linear:
    """Tutorial 4 verbatim: nn.Linear, F.mse_loss, batches of one row.

    ``step="sgd"`` steps with ``torch.optim.SGD`` as the tutorial does;
    ``step="by_hand"`` with ``p -= lr * p.grad``, the manual mode's update.
    """
    inp = np.arange(58, 387, step=5.5, dtype=np.float32).reshape(10, 6)
    actual = np.arange(6000, 9000, step=320.7, dtype=np.float32).reshape(10, 1)
    inputs, targets = torch.from_numpy(inp), torch.from_numpy(actual)
    model = nn.Linear(6, 1)
    model.load_state_dict(init.state_dict())
    loss_fn = F.mse_loss
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    for epoch in range(epochs):
        order = torch.randperm(10, generator=torch.Generator().manual_seed(shuffle_seed + epoch))
        for idx in order.split(1):
            pred = model(inputs[idx])
            loss = loss_fn(pred, targets[idx])
            loss.backward()
            if step == "sgd":
                opt.step()
                opt.zero_grad()
            else:
                with torch.no_grad():
                    for p in model.parameters():
                        p -= 1e-6 * p.grad
                        p.grad = None
    return model


@pytest.mark.parametrize("optimization", ["automatic", "manual"])
def test_tutorial_4_linear_arange_is_bit_exact(optimization: str) -> None:
    torch.manual_seed(4)
    init = nn.Linear(6, 1)
    step = "sgd" if optimization == "automatic" else "by_hand"
    ref = tutorial_4(init, epochs=20, shuffle_seed=5, step=step)

    dm = ArangeDataModule(batch_size=1, shuffle=True, seed=5)
    model = LinearRegression(
        6,
        1,
        lr=1e-6,
        optimization=optimization,
        init_weight=init.weight.tolist(),
        init_bias=init.bias.tolist(),
    )
    assert torch.equal(model.linear.weight.detach(), init.weight.detach())
    trainer = fit(model, dm, max_epochs=20)
    assert trainer.global_step == 200
    assert torch.equal(model.linear.weight.detach(), ref.weight.detach())
    assert torch.equal(model.linear.bias.detach(), ref.bias.detach())


@pytest.mark.usefixtures("plain_argv")
def test_tutorial_1_config_prints_the_tutorials_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """The quadratic_speed config prints what the tutorial prints, digit for digit: the
    RMSE of each of its ten steps, as ``print(loss.sqrt().item())``."""
    from conftest import QUIET

    from gd_lightning.cli import cli

    expected = [str(value.item()) for value in tutorial_1(steps=10)["rmse"]]
    capsys.readouterr()
    cli(["fit", "--config", "quadratic_speed", *QUIET, "--report.print_table", "false"])
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line in expected] == expected
    # the numbers say what they are, once, just before the first of them
    header = "RMSE: the square root of the mean squared error of each epoch's last"
    named = [number for number, line in enumerate(printed) if line.startswith(header)]
    assert named == [printed.index(expected[0]) - 1], printed


@pytest.mark.parametrize(
    ("every", "line", "epochs", "expected"),
    [
        # tutorial 4's cadence: epochs 0, 30, 60 of 70
        (30, "epoch {epoch}, loss {loss:.4f}", 70, [0, 30, 60]),
        # tutorial 3's: every epoch, counted from 1
        (1, "Epoch {epochs_done}, loss {loss:.4f}", 3, [1, 2, 3]),
    ],
)
def test_the_printout_follows_the_tutorials_cadence(
    every: int, line: str, epochs: int, expected: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    from gd_lightning import LossHistory, LossPrintout

    seed_everything(0)
    history = LossHistory()
    data = CropYieldsDataModule(num_regions=5, batch_size=2, shuffle=False)
    model = LinearRegression(3, 2, lr=1e-5, optimization="manual")
    capsys.readouterr()
    fit(model, data, max_epochs=epochs, log_every_n_steps=1,
        callbacks=[LossPrintout(every, line), history])  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    # each line holds the loss of its epoch's last batch (3 batches an epoch), before its update
    last_of_epoch = history.losses[2::3]
    first = 0 if "{epoch}" in line else 1
    wanted = [line.format(epoch=n, epochs_done=n, loss=last_of_epoch[n - first]) for n in expected]
    assert printed == wanted
