"""Models: both optimization modes, the least-squares optimum, metrics, checkpoints."""

import functools

import pytest
import torch
from conftest import fit, quiet_trainer
from lightning.pytorch import seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from gd_lightning import (
    ArangeDataModule,
    CropYieldsDataModule,
    GradientDescent,
    InputError,
    LinearRegression,
    NoisyLineDataModule,
    QuadraticRegression,
    SpeedDataModule,
    TabularDataModule,
)

# (datamodule, model factory for a mode, epochs): each tutorial's recipe, shortened
RECIPES = {
    "speed": (
        lambda: SpeedDataModule(),
        lambda mode: QuadraticRegression(
            lr=1e-5, optimization=mode, init_params=[-0.1284052, -1.0042424, 0.5672656]
        ),
        10,
    ),
    "line": (
        lambda: NoisyLineDataModule(),
        lambda mode: LinearRegression(
            2, 1, bias=False, lr=0.1, optimization=mode, init_weight=[[-1.0, 1.0]]
        ),
        30,
    ),
    "crops_15": (
        lambda: CropYieldsDataModule(batch_size=3),
        lambda mode: LinearRegression(3, 2, lr=1e-6, optimization=mode),
        10,
    ),
    "arange": (
        lambda: ArangeDataModule(batch_size=1),
        lambda mode: LinearRegression(6, 1, lr=1e-6, optimization=mode),
        5,
    ),
    "crops_5": (
        lambda: CropYieldsDataModule(num_regions=5),
        lambda mode: LinearRegression(3, 2, lr=1e-5, optimization=mode),
        50,
    ),
}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_automatic_sgd_agrees_with_manual_mode(recipe: str) -> None:
    make_data, make_model, epochs = RECIPES[recipe]
    final = {}
    for mode in ("manual", "automatic"):
        seed_everything(0)
        model = make_model(mode)
        start = [p.detach().clone() for p in model.parameters()]
        fit(model, make_data(), max_epochs=epochs)
        final[mode] = [p.detach() for p in model.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(start, final[mode], strict=True))
    for manual, automatic in zip(final["manual"], final["automatic"], strict=True):
        # the bound: plain SGD and the hand-written step agree to 1e-6 relative
        torch.testing.assert_close(automatic, manual, rtol=1e-6, atol=0)


def test_manual_mode_counts_steps_and_honours_max_steps() -> None:
    runs = []
    for limits in ({"max_steps": 6, "max_epochs": -1}, {"max_epochs": 2}):
        seed_everything(0)
        model = LinearRegression(3, 2, lr=1e-6, optimization="manual")
        trainer = fit(model, CropYieldsDataModule(batch_size=5), **limits)
        assert trainer.global_step == 6  # 3 batches an epoch
        runs.append(model.linear.weight.detach())
    assert torch.equal(runs[0], runs[1])  # stopped after exactly 6 updates


def well_conditioned_csv(tmp_path) -> tuple[str, torch.Tensor, torch.Tensor]:
    """Three independent standard-normal features, two noisy linear targets."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    true_w = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])
    y = x @ true_w.T + torch.tensor([0.5, -1.0]) + 0.1 * torch.randn(200, 2, generator=generator)
    path = tmp_path / "well.csv"
    rows = ["a,b,c,u,v"] + [
        ",".join(f"{v:.9g}" for v in row) for row in torch.cat([x, y], 1).tolist()
    ]
    path.write_text("\n".join(rows) + "\n")
    return str(path), x, y


@pytest.mark.parametrize("mode", ["manual", "automatic"])
def test_linear_regression_reaches_the_least_squares_optimum(tmp_path, mode: str) -> None:
    path, _, _ = well_conditioned_csv(tmp_path)
    dm = TabularDataModule(csv_path=path, targets=["u", "v"])
    dm.setup("fit")
    x, y = (t.double() for t in dm.full_set.tensors)
    design = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution  # (4, 2): weights, then the bias
    seed_everything(0)
    model = LinearRegression(3, 2, lr=0.2, optimization=mode)
    fit(model, dm, max_epochs=300)
    # The Hessian's eigenvalues lie near 2, so lr 0.2 contracts the error by about 0.6
    # per step: after 300 steps only float32 rounding (~1e-6) is left.
    torch.testing.assert_close(
        model.linear.weight.detach().double(), solution[:3].T, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(model.linear.bias.detach().double(), solution[3], atol=1e-5, rtol=0)


def test_to_linear_gives_an_nn_linear_that_predicts_the_same() -> None:
    seed_everything(1)
    model = LinearRegression(3, 2, lr=1e-6)
    x = torch.randn(4, 3)
    linear = model.to_linear()
    assert isinstance(linear, nn.Linear) and torch.equal(linear(x), model(x))
    no_bias = LinearRegression(3, 1, bias=False, lr=0.1)
    assert no_bias.to_linear().bias is None
    assert [name for name, _ in no_bias.named_parameters()] == ["linear.weight"]


def test_the_model_state_does_not_load_into_nn_linear_silently() -> None:
    # the standardization buffers are part of the state: copying the layer alone
    # would drop them, so nn.Linear refuses the model's state dict
    model = LinearRegression(3, 2, lr=1e-6)
    with pytest.raises(RuntimeError, match="Unexpected key.*scaling.feature_shift"):
        nn.Linear(3, 2).load_state_dict(model.state_dict())


@pytest.mark.parametrize("mode", ["manual", "automatic"])
def test_checkpoint_round_trip(tmp_path, mode: str) -> None:
    seed_everything(2)
    model = LinearRegression(3, 2, lr=1e-6, optimization=mode)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt")
    fit(
        model,
        CropYieldsDataModule(batch_size=5),
        max_epochs=3,
        enable_checkpointing=True,
        callbacks=[checkpoint],
    )
    loaded = LinearRegression.load_from_checkpoint(checkpoint.best_model_path)
    assert torch.equal(loaded.linear.weight, model.linear.weight) and torch.equal(
        loaded.linear.bias, model.linear.bias
    )
    assert loaded.hparams == model.hparams
    assert loaded.automatic_optimization == (mode == "automatic")

    quad = QuadraticRegression(lr=1e-5, optimization=mode, init_params=[1.0, 2.0, 3.0])
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "quad")
    fit(quad, SpeedDataModule(), max_epochs=2, enable_checkpointing=True, callbacks=[checkpoint])
    assert torch.equal(
        QuadraticRegression.load_from_checkpoint(checkpoint.best_model_path).quadratic.params,
        quad.quadratic.params,
    )


def test_predict_returns_every_rows_prediction_in_order() -> None:
    seed_everything(3)
    weight = torch.randn(2, 3).tolist()  # given parameters: a model ready to predict
    model = LinearRegression(3, 2, lr=1e-6, init_weight=weight, init_bias=[0.5, -1.0])
    dm = CropYieldsDataModule(batch_size=4)
    batches = quiet_trainer().predict(model, datamodule=dm)
    x, _ = dm.full_set.tensors
    with torch.no_grad():
        assert torch.equal(torch.cat(batches), model(x))


def test_validation_and_test_metrics_match_a_hand_computation() -> None:
    seed_everything(4)
    dm = CropYieldsDataModule(batch_size=2, val_fraction=0.2, test_fraction=0.2, seed=1)
    model = LinearRegression(3, 2, lr=1e-6, optimization="manual")
    trainer = fit(model, dm, max_epochs=2)
    for stage, dataset in (("val", dm.val_set), ("test", dm.test_set)):
        run = trainer.validate if stage == "val" else trainer.test
        logged = run(model, datamodule=dm, verbose=False)[0]
        x, y = dataset.tensors
        with torch.no_grad():
            err = model(x) - y
        mse = (err**2).mean()
        r2 = (1 - (err**2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)).mean()
        expected = {"loss": mse, "mse": mse, "rmse": mse.sqrt(), "mae": err.abs().mean(), "r2": r2}
        for name, value in expected.items():
            assert logged[f"{stage}/{name}"] == pytest.approx(value.item(), rel=1e-5), name


def test_automatic_mode_takes_the_configured_optimizer_at_lr() -> None:
    model = LinearRegression(
        3, 1, lr=0.05, optimizer=functools.partial(torch.optim.Adam, betas=(0.8, 0.9))
    )
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["lr"] == 0.05 and optimizer.param_groups[0]["betas"] == (
        0.8,
        0.9,
    )
    assert "optimizer" not in model.hparams  # a live object stays out of checkpoints
    default = LinearRegression(3, 1, lr=0.05).configure_optimizers()
    assert type(default) is torch.optim.SGD and default.param_groups[0]["momentum"] == 0
    manual = LinearRegression(3, 1, lr=0.05, optimization="manual").configure_optimizers()
    assert type(manual) is GradientDescent


@pytest.mark.parametrize("mode", ["automatic", "manual"])
def test_a_plateau_scheduler_watches_each_epochs_training_mse(mode: str) -> None:
    # lr 1e-4 on the raw crop table blows the loss up epoch after epoch: every epoch
    # is worse than the best, so the rate halves each time with patience 0
    plateau = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0)
    model = LinearRegression(3, 2, lr=1e-4, optimization=mode, scheduler=plateau)
    seen: list[float] = []
    original = torch.optim.lr_scheduler.ReduceLROnPlateau.step

    def step(scheduler, metrics, *args):  # type: ignore[no-untyped-def]
        seen.append(float(metrics))
        return original(scheduler, metrics, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.optim.lr_scheduler.ReduceLROnPlateau, "step", step)
        trainer = fit(model, CropYieldsDataModule(), max_epochs=4)
    assert len(seen) == 4 and seen[-1] == pytest.approx(
        float(trainer.callback_metrics["train/epoch_mse"]), rel=1e-6
    )
    assert len(set(seen)) == 4  # each epoch's own value, not one left over


def test_gradient_descent_is_the_hand_written_step() -> None:
    p = torch.nn.Parameter(torch.randn(5))
    p.grad = torch.randn(5)
    expected = p.detach() - 0.3 * p.grad
    GradientDescent([p], lr=0.3).step()
    assert torch.equal(p.detach(), expected)
    with pytest.raises(ValueError, match="positive"):
        GradientDescent([p], lr=0.0)


def test_gradient_descent_runs_step_hooks_and_shows_in_the_profiler() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    optimizer = GradientDescent([p], lr=0.5)
    calls: list[str] = []
    handles = [
        optimizer.register_step_pre_hook(lambda *_: calls.append("pre")),
        optimizer.register_step_post_hook(lambda *_: calls.append("post")),
        register_optimizer_step_pre_hook(lambda *_: calls.append("all")),
    ]
    p.grad = torch.tensor([1.0, -2.0])
    optimizer.step()
    assert calls == ["all", "pre", "post"] and torch.equal(p.detach(), torch.tensor([-0.5, 1.0]))
    for handle in handles:
        handle.remove()
    optimizer.step()  # no hooks left: the plain update, the same arithmetic
    assert calls == ["all", "pre", "post"] and torch.equal(p.detach(), torch.tensor([-1.0, 2.0]))
    with torch.profiler.profile() as profile:
        optimizer.step()
    assert "Optimizer.step#GradientDescent.step" in {event.name for event in profile.events()}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LinearRegression(3, 1, lr=0.0), "lr must be a positive"),
        (lambda: LinearRegression(3, 1, lr=float("nan")), "lr must be a positive"),
        (lambda: LinearRegression(3, 1, lr=0.1, optimization="sometimes"), "optimization must be"),
        (
            lambda: LinearRegression(
                3, 1, lr=0.1, optimization="manual", optimizer=torch.optim.Adam
            ),
            "takes no optimizer",
        ),
        (
            lambda: LinearRegression(3, 2, lr=0.1, init_weight=[[1.0, 2.0, 3.0]]),
            r"init_weight has shape \(1, 3\) but the model needs \(2, 3\)",
        ),
        (lambda: LinearRegression(3, 1, bias=False, lr=0.1, init_bias=[1.0]), "bias is False"),
        (lambda: LinearRegression(0, 1, lr=0.1), "at least 1"),
        (lambda: QuadraticRegression(lr=0.1, init_params=[1.0]), "3 numbers"),
        (lambda: QuadraticRegression(lr=0.1, in_features=3), "use LinearRegression"),
    ],
)
def test_model_mistakes_are_named(make, message) -> None:
    with pytest.raises(InputError, match=message):
        make()


def test_random_initial_values_follow_seed_everything() -> None:
    seed_everything(5)
    a = QuadraticRegression(lr=1e-5).quadratic.params.detach()
    seed_everything(5)
    assert torch.equal(QuadraticRegression(lr=1e-5).quadratic.params.detach(), a)
    torch.manual_seed(5)
    assert torch.equal(torch.randn(3), a)
