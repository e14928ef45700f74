"""The least-squares reference, curvature, standardization, optimizers and stopping rules."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIGS, QUIET, fit
from lightning.pytorch import seed_everything
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from gd_lightning import (
    ArangeDataModule,
    ConvergenceMonitor,
    CropYieldsDataModule,
    DivergenceError,
    FitCheckpoint,
    InputError,
    LeastSquaresReference,
    LinearRegression,
    QuadraticRegression,
    SpeedDataModule,
    TabularDataModule,
)
from gd_lightning.cli import cli, main

pytestmark = pytest.mark.usefixtures("plain_argv")


def crop5_design() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = CropYieldsDataModule(num_regions=5).load()
    return torch.cat([x, torch.ones(5, 1)], dim=1), y


# --- the reference, checked against independent computations ----------------------------


def test_optimum_matches_numpy_least_squares() -> None:
    design, y = crop5_design()
    reference = LeastSquaresReference.from_data(design, y)
    solution, *_ = np.linalg.lstsq(design.double().numpy(), y.double().numpy(), rcond=None)
    np.testing.assert_allclose(reference.solution.numpy(), solution, rtol=1e-9)
    residual = design.double().numpy() @ solution - y.double().numpy()
    assert reference.optimum_loss == pytest.approx(float((residual**2).mean()), rel=1e-9)
    assert reference.optimum_loss == pytest.approx(0.4831, abs=1e-4)  # issue 4's figure
    assert reference.rank == 4 and not reference.rank_deficient


def test_curvature_matches_the_hessian_autograd_computes() -> None:
    design, y = crop5_design()
    reference = LeastSquaresReference.from_data(design, y)
    a, t = design.double(), y.double()

    def loss_of_first_target(theta: torch.Tensor) -> torch.Tensor:
        # the MSE over both targets, as a function of target 0's parameters
        preds = torch.stack([a @ theta, a @ reference.solution[:, 1]], dim=1)
        return ((preds - t) ** 2).mean()

    hessian = torch.autograd.functional.hessian(loss_of_first_target, torch.zeros(4).double())
    eigenvalues = torch.linalg.eigvalsh(hessian)
    torch.testing.assert_close(reference.eigenvalues, eigenvalues, rtol=1e-9, atol=1e-12)
    assert reference.condition_number == pytest.approx(2.2e6, rel=0.01)  # issue 4's figure
    assert reference.stable_lr == pytest.approx(1.12e-4, rel=0.01)


def gradient_descent_epochs(reference: LeastSquaresReference, a, y, theta, lr, gap, limit=10_000):
    """Full-batch gradient descent in float64, counting steps until within ``gap``."""
    for step in range(limit):
        if reference.gap(theta) <= gap:
            return step
        theta = theta - lr * 2 * a.T @ (a @ theta - y) / y.numel()
        if not torch.isfinite(theta).all():
            return math.inf
    return math.inf


def test_stable_bound_and_predicted_epochs_match_gradient_descent() -> None:
    x, y = CropYieldsDataModule(num_regions=5).load()
    z = (x - x.mean(0)) / x.std(0, correction=0)
    a = torch.cat([z, torch.ones(5, 1)], dim=1).double()
    t = y.double()
    reference = LeastSquaresReference.from_data(a, t)
    start = torch.zeros(4, 2, dtype=torch.float64)
    for lr in (reference.best_lr, 0.5 * reference.best_lr):
        simulated = gradient_descent_epochs(reference, a, t, start, lr, 0.01)
        assert simulated == reference.epochs_to_gap(start, lr, 0.01)
    assert gradient_descent_epochs(reference, a, t, start, 1.01 * reference.stable_lr, 0.01) == (
        math.inf
    )
    assert reference.epochs_to_gap(start, 1.01 * reference.stable_lr, 0.01) == math.inf
    assert reference.condition_number == pytest.approx(7, rel=0.01)  # issue 4's figure


def test_rank_deficient_data_is_detected_and_gets_the_minimum_norm_optimum() -> None:
    x, y = ArangeDataModule().load()
    design = torch.cat([x, torch.ones(10, 1)], dim=1)
    reference = LeastSquaresReference.from_data(design, y)
    assert reference.rank == 2 and reference.rank_deficient
    minimum_norm = np.linalg.pinv(design.double().numpy()) @ y.double().numpy()
    np.testing.assert_allclose(reference.solution.numpy(), minimum_norm, rtol=1e-6)
    assert reference.exact_fit and math.isfinite(reference.condition_number)
    assert "rank 2 of 7" in reference.describe(1e-6, torch.zeros(7, 1))


# --- the monitor in a fit ------------------------------------------------------------------


def test_fit_logs_excess_loss_and_reports_the_gap(capsys: pytest.CaptureFixture[str]) -> None:
    seed_everything(0)
    model = LinearRegression(3, 2, lr=1e-5, optimization="manual")
    monitor = ConvergenceMonitor()
    trainer = fit(model, CropYieldsDataModule(num_regions=5), max_epochs=5, callbacks=[monitor])
    reference = monitor.reference
    design, y = crop5_design()
    assert reference.optimum_loss == pytest.approx(0.4831, abs=1e-4)
    # full batch: the last epoch's excess and its MSE describe the same parameters, those
    # of its one step before the update
    excess = float(trainer.callback_metrics["train/excess_loss"])
    epoch_mse = float(trainer.callback_metrics["train/epoch_mse"])
    assert excess == pytest.approx(epoch_mse - reference.optimum_loss, rel=1e-5)
    theta = torch.cat([model.linear.weight.detach().T, model.linear.bias.detach()[None]]).double()
    loss_now = float(((design.double() @ theta - y.double()) ** 2).mean())
    assert loss_now < epoch_mse  # the end of the fit is one update further
    out = capsys.readouterr().out
    assert "condition number 2.186e+06" in out and "stable below 0.0001117" in out
    ratio = loss_now / reference.optimum_loss
    assert f"the best possible loss is 0.4831 (least squares): {ratio:.3g} times as much" in out


def test_an_unstable_lr_is_named_and_the_guard_stops_the_run(tmp_path) -> None:
    seed_everything(0)
    model = LinearRegression(3, 2, lr=2e-4, optimization="manual")
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1)
    with (
        pytest.warns(UserWarning, match=r"lr 0.0002 is at or above 0.0001117"),
        pytest.raises(DivergenceError, match=r"diverged at step \d+: .* lr 0.0002; .* 0.0001117"),
    ):
        fit(model, CropYieldsDataModule(num_regions=5), max_epochs=100, enable_checkpointing=True,
            callbacks=[ConvergenceMonitor(), checkpoint])  # fmt: skip
    kept = sorted((tmp_path / "ckpt").glob("*.ckpt"))
    assert kept  # written before the blow-up, and finite
    state = torch.load(kept[-1], weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())


@pytest.mark.parametrize("saver", ["ModelCheckpoint", "FitCheckpoint"])
def test_no_checkpoint_saved_after_batches_holds_blown_up_parameters(tmp_path, saver) -> None:
    """Checkpoints saved after every step (batches of 3, several steps an epoch) of a run
    that blows up: the monitor checks what each save is about to write, whichever
    callback saves it, so the run stops before a blown-up one is written."""
    seed_everything(0)
    data = CropYieldsDataModule(batch_size=3)
    model = LinearRegression(3, 2, lr=1.5e-4, optimization="manual")
    kind = ModelCheckpoint if saver == "ModelCheckpoint" else FitCheckpoint
    checkpoint = kind(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1)
    monitor = ConvergenceMonitor(verbose=False, divergence_factor=10.0)
    with pytest.warns(UserWarning), pytest.raises(DivergenceError):
        fit(model, data, max_epochs=100, enable_checkpointing=True,
            callbacks=[monitor, checkpoint])  # fmt: skip
    kept = list((tmp_path / "ckpt").glob("*.ckpt"))
    assert len(kept) >= 2  # saved after steps that end no epoch, before the blow-up
    reference = monitor.reference
    assert reference is not None and monitor.loss_scale is not None
    for path in kept:
        state = torch.load(path, weights_only=True)["state_dict"]
        theta = torch.cat([state["linear.weight"].T, state["linear.bias"][None]])
        assert reference.loss(theta) <= 10.0 * monitor.loss_scale


def test_cli_divergence_exits_2_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "crop_yields_5.yaml"), "--model.lr", "3e-4",
              "--checkpoint.every_n_epochs", "2", *QUIET])  # fmt: skip
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("gd-lightning: error: training diverged at step")
    assert "lr 0.0003" in last and "0.0001117" in last
    (kept,) = Path("lightning_logs/crop_yields_5").rglob("*.ckpt")  # from before the blow-up
    assert last.endswith(f"(the last checkpoint saved before the blow-up is kept: {kept})")
    state = torch.load(kept, weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())


def test_plateau_rule_with_lightning_early_stopping() -> None:
    seed_everything(0)
    model = LinearRegression(3, 2, lr=1e-6, optimization="manual")
    # improves by less than tol=50 for 3 epochs in a row -> stop (scikit-learn's rule)
    stop = EarlyStopping(monitor="train/epoch_mse", min_delta=50.0, patience=3,
                         check_on_train_epoch_end=True)  # fmt: skip
    trainer = fit(model, CropYieldsDataModule(batch_size=3), max_epochs=500, callbacks=[stop])
    assert 3 < trainer.current_epoch < 500


# --- standardization -----------------------------------------------------------------------


@pytest.mark.parametrize("targets", [False, True])
def test_standardized_fit_predicts_in_original_units_and_folds_exactly(tmp_path, targets) -> None:
    seed_everything(0)
    dm = CropYieldsDataModule(num_regions=5, standardize_features=True,
                              standardize_targets=targets)  # fmt: skip
    model = LinearRegression(3, 2, lr="auto", optimization="manual")
    checkpoint = ModelCheckpoint(dirpath=tmp_path)
    fit(model, dm, max_epochs=40, enable_checkpointing=True,
        callbacks=[checkpoint, ConvergenceMonitor(verbose=False)])  # fmt: skip
    x, y = dm.load()
    with torch.no_grad():
        preds = model(x)  # raw inputs in, original units out
    design, _ = crop5_design()
    optimum = LeastSquaresReference.from_data(design, y)
    # 40 steps at the curvature lr on standardized data: at the optimum to float32 precision
    torch.testing.assert_close(preds.double(), design.double() @ optimum.solution, rtol=1e-4,
                               atol=1e-3)  # fmt: skip

    plain = model.unstandardized()  # parameters in original units, no scaling
    with torch.no_grad():
        torch.testing.assert_close(plain(x), preds, rtol=1e-5, atol=1e-4)
    linear = model.to_linear()
    with torch.no_grad():
        torch.testing.assert_close(linear(x), preds, rtol=1e-5, atol=1e-4)
    coefficients = model.coefficients(dm.feature_names, dm.target_names)
    assert coefficients["mangoes"]["rainfall"] == pytest.approx(
        linear.weight[0, 1].item(), rel=1e-6
    )

    loaded = LinearRegression.load_from_checkpoint(checkpoint.best_model_path)
    with torch.no_grad():
        assert torch.equal(loaded(x), preds)  # the checkpoint carries the scaling


def test_standardized_quadratic_folds_back_to_a_b_c() -> None:
    model = QuadraticRegression(lr="auto", optimization="manual")
    dm = SpeedDataModule(standardize_features=True, standardize_targets=True)
    fit(model, dm, max_epochs=60, callbacks=[ConvergenceMonitor(verbose=False)])
    t, speed = dm.load()
    assert model.feature_names == ["t"] and model.target_names == ["speed"]  # handed over
    a, b, c = model.coefficients()["speed"].values()
    with torch.no_grad():
        torch.testing.assert_close(a * t**2 + b * t + c, model(t), rtol=1e-5, atol=1e-3)
    design = torch.cat([t**2, t, torch.ones_like(t)], dim=1)
    solution = LeastSquaresReference.from_data(design, speed).solution[:, 0]
    torch.testing.assert_close(torch.tensor([a, b, c]).double(), solution, rtol=1e-3, atol=1e-3)


def test_standardizing_without_a_bias_or_ones_column_is_refused(tmp_path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,y\n1,2\n2,4\n3,7\n")
    dm = TabularDataModule(csv_path=str(path), targets=["y"], standardize_features=True)
    model = LinearRegression(1, 1, bias=False, lr=0.1)
    with pytest.raises(InputError, match="no bias nor a constant column"):
        fit(model, dm, max_epochs=1)


# --- optimizers, schedulers, ready configs ---------------------------------------------------


OPTIMIZERS = {
    # heavy-ball momentum is stable well past plain descent's bound: the curvature lr works
    "momentum": ("--model.optimizer torch.optim.SGD --model.optimizer.momentum 0.5", 60),
    # Nesterov's look-ahead is not: a smaller lr
    "nesterov": (
        "--model.optimizer torch.optim.SGD --model.optimizer.momentum 0.5 "
        "--model.optimizer.nesterov true --model.lr 0.3",
        60,
    ),
    "adam": ("--model.optimizer torch.optim.Adam --model.lr 0.1", 300),
    "lbfgs": (
        "--model.optimizer torch.optim.LBFGS --model.lr 1 --model.optimizer.max_iter 1 "
        "--model.optimizer.max_eval 25 "
        "--model.optimizer.line_search_fn strong_wolfe",
        12,
    ),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_from_the_config_reach_the_optimum(name: str) -> None:
    optimizer, epochs = OPTIMIZERS[name]
    result = cli(["fit", "--config", str(CONFIGS / "fast" / "crop_yields_5.yaml"),
                  "--model.optimization", "automatic", *optimizer.split(),
                  "--trainer.max_epochs", str(epochs), *QUIET])  # fmt: skip
    assert final_gap(result) <= 0.01
    assert result.trainer.current_epoch < epochs  # stopped by the target gap


@pytest.mark.parametrize("mode", ["manual", "automatic"])
def test_schedulers_from_the_config_change_the_lr(mode: str) -> None:
    result = cli(["fit", "--config", str(CONFIGS / "crop_yields_5.yaml"),
                  "--model.optimization", mode,
                  "--model.scheduler", "torch.optim.lr_scheduler.StepLR",
                  "--model.scheduler.step_size", "2", "--model.scheduler.gamma", "0.5",
                  "--trainer.max_epochs", "4", *QUIET])  # fmt: skip
    assert result.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-5 / 4)


def test_learning_rate_finder_is_reachable_from_the_cli() -> None:
    result = cli(["fit", "--config", str(CONFIGS / "crop_yields.yaml"),
                  "--model.optimization", "automatic", "--model.lr", "0.01",
                  "--data.standardize_features", "true", "--data.standardize_targets", "true",
                  "--trainer.callbacks+=LearningRateFinder",
                  "--trainer.callbacks.num_training_steps", "20", "--trainer.max_epochs", "8",
                  *QUIET])  # fmt: skip
    assert result.model.hparams.lr != 0.01  # the finder's suggestion replaced it


def final_gap(result) -> float:
    """The gap of the parameters the fit ended with (the logged gaps are each epoch's
    last step's, before its update)."""
    (monitor,) = [c for c in result.trainer.callbacks if isinstance(c, ConvergenceMonitor)]
    return monitor.reference.gap(result.model.theta())


FAST = {"quadratic_speed": 30, "line_fit": 5, "crop_yields": 30, "linear_arange": 40,
        "crop_yields_5": 30}  # fmt: skip


@pytest.mark.parametrize("name", list(FAST))
def test_fast_configs_reach_one_percent_within_their_promise(name: str) -> None:
    path = CONFIGS / "fast" / f"{name}.yaml"
    assert f"max_epochs: {FAST[name]}\n" in path.read_text()
    result = cli(["fit", "--config", str(path), *QUIET])
    assert final_gap(result) <= 0.01


@pytest.fixture
def eigh_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the decompositions of the curvature made (``torch.linalg.svd`` calls: the
    reference takes the Hessian's eigenvectors from the SVD of its triangular factor)."""
    calls: list[int] = []
    real = torch.linalg.svd

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.linalg, "svd", counting)
    return calls


@pytest.mark.parametrize("lr", ["auto", "1e-5"])
def test_a_fit_decomposes_the_curvature_once(eigh_calls: list[int], lr: str) -> None:
    cli(["fit", "--model", "LinearRegression", "--model.lr", lr, "--data", "CropYieldsDataModule",
         "--data.num_regions", "5", "--trainer.max_epochs", "3", "--trainer.logger", "false",
         "--trainer.enable_checkpointing", "false", *QUIET])  # fmt: skip
    assert len(eigh_calls) == 1
    # from Python too, with the monitor in one's own Trainer
    eigh_calls.clear()
    model = LinearRegression(3, 2, lr="auto")
    fit(model, CropYieldsDataModule(num_regions=5), max_epochs=2, callbacks=[ConvergenceMonitor()])
    assert len(eigh_calls) == 1 and model.auto_lr is not None
