"""What a fit says on hard data, checked against NIST's certified values: raw designs of
condition number up to 1e26 (Pontius' quadratic, Longley's six columns), the optimum
beside the learned parameters, gaps that are true to their digits, and ``lr: auto``
aiming at the gap asked for."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUIET
from strd import DATA, digits, info, load

from gd_lightning import LeastSquaresReference
from gd_lightning.cli import cli

pytestmark = pytest.mark.usefixtures("plain_argv")


def certified_loss(name: str) -> float:
    """The mean squared error at NIST's certified optimum: sd² (n - p) / n."""
    entry = info(name)
    n, p = entry["observations"], len(entry["columns"])
    return float(entry["residual_standard_deviation"]) ** 2 * (n - p) / n


def run(name: str, model: str, *options: str) -> dict:
    """``gd-lightning fit`` on NIST problem ``name``'s CSV; its parameters.json."""
    args = ["fit", "--model", model, "--data", "TabularDataModule", "--data.csv_path",
            str(DATA / f"{name}.csv"), "--data.targets", "[y]", *QUIET, *options]  # fmt: skip
    cli(args)
    report = json.loads(Path("lightning_logs/version_0/checkpoints/parameters.json").read_text())
    return report


def certified_in_report_order(name: str, report: dict) -> tuple[np.ndarray, np.ndarray]:
    """The report's optimum and NIST's certified coefficients, parameter by parameter."""
    _, _, certified, _ = load(name)
    optimum = np.array(list(report["optimum"]["y"].values()))
    if report["model"] == "QuadraticRegression":  # a, b, c: x², x, 1; NIST's order: x, x², 1
        certified = certified[[1, 0, 2]]
    return optimum, certified


def test_raw_pontius_gets_the_truth_and_the_advice(capsys: pytest.CaptureFixture[str]) -> None:
    """x up to 3e6 and its square: the curvature's condition number is 2e26, not 1; the
    rank is full; the best loss is NIST's; the rate is the stable one with its honest count
    of epochs; and standardizing is named as the fix."""
    report = run("Pontius", "QuadraticRegression", "--model.lr", "auto",
                    "--trainer.precision", "64-true", "--trainer.max_epochs", "3")  # fmt: skip
    out = capsys.readouterr().out
    x, y, _, _ = load("Pontius")
    design = np.column_stack([x[:, 0] ** 2, x[:, 0], np.ones(len(x))])
    condition = np.linalg.cond(design) ** 2  # the Hessian's: the design's, squared
    shown = float(out.split("condition number ")[1].split("\n")[0])
    assert shown == pytest.approx(condition, rel=1e-3)  # 4 digits printed
    assert "rank" not in out  # full rank: no collinearity claimed
    best = float(out.split("best possible loss ")[1].split(" ")[0])
    assert best == pytest.approx(certified_loss("Pontius"), rel=1e-5)  # 6 digits printed
    assert "badly scaled" in out and "--data.standardize_features true" in out
    assert "epochs to within 1% of the optimum: about 10^" in out
    lr = float(out.split("learning rate: ")[1].split(";")[0])
    stable = float(out.split("stable below ")[1].split(";")[0])
    assert 0 < lr < stable
    optimum, certified = certified_in_report_order("Pontius", report)
    assert digits(optimum, certified) >= 9


def test_raw_longley_has_full_rank_and_the_certified_optimum(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = run("Longley", "LinearRegression", "--model.lr", "auto",
                    "--trainer.precision", "64-true", "--trainer.max_epochs", "1")  # fmt: skip
    out = capsys.readouterr().out
    assert "rank" not in out
    best = float(out.split("best possible loss ")[1].split(" ")[0])
    assert best == pytest.approx(certified_loss("Longley"), rel=1e-5)
    optimum, certified = certified_in_report_order("Longley", report)
    # the report lists x1..x6 then the bias; NIST's order is the same with B0 last here
    assert digits(optimum, certified) >= 9
    with open("lightning_logs/version_0/checkpoints/parameters.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["parameter"] for row in rows] == ["x1", "x2", "x3", "x4", "x5", "x6", "bias"]
    assert [float(row["optimum"]) for row in rows] == list(optimum)


def test_standardized_pontius_stops_within_the_gap_it_says(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """In float64 a gap of 1e-9 is reachable: ``lr: auto`` aims at it, the predicted epochs
    are the epochs run, and the loss at the learned parameters (computed here, in float64,
    from parameters.json) is within 1e-9 of NIST's optimum."""
    report = run("Pontius", "QuadraticRegression", "--model.lr", "auto",
                    "--data.standardize_features", "true", "--trainer.precision", "64-true",
                    "--trainer.max_epochs", "1000", "--convergence.target_gap", "1e-9")  # fmt: skip
    out = capsys.readouterr().out
    predicted = int(out.split("epochs to within 1e-09 of the optimum: ")[1].split(" ")[0])
    # full batches in float64: the run stops where the curvature said it would
    assert f"after {predicted} steps (the target: 1e-09): stopping" in caplog.text
    assert "0%" not in out + caplog.text
    x, y, _, _ = load("Pontius")
    a, b, c = report["parameters"]["y"].values()
    loss = float(np.mean((a * x[:, 0] ** 2 + b * x[:, 0] + c - y) ** 2))
    assert (loss - certified_loss("Pontius")) / certified_loss("Pontius") <= 1e-9
    optimum, certified = certified_in_report_order("Pontius", report)
    assert digits(optimum, certified) >= 9  # folded back from standardized units


def test_a_gap_below_float32s_resolution_is_said_and_met(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In float32 the same gap is rounding: the run says so, aims at the smallest gap
    float32 resolves, and its end line does not claim less."""
    run("Pontius", "QuadraticRegression", "--model.lr", "auto",
        "--data.standardize_features", "true", "--trainer.max_epochs", "1000",
        "--convergence.target_gap", "1e-9")  # fmt: skip
    out = capsys.readouterr().out
    assert "convergence.target_gap 1e-09 is below what float32 resolves" in out
    assert "--trainer.precision 64-true resolves smaller gaps" in out


def test_an_exact_fit_measures_gaps_absolutely() -> None:
    """y = 2x + 5 exactly: the optimum's loss is rounding, said so, and a gap is the loss
    above it itself (a fraction of 0 would make every gap infinite)."""
    t = torch.arange(10, dtype=torch.float64)
    design = torch.stack([t, torch.ones(10, dtype=torch.float64)], 1)
    reference = LeastSquaresReference.from_data(design, (2 * t + 5)[:, None])
    assert reference.exact_fit and reference.gap_scale == 1
    described = reference.describe(0.01, torch.zeros(2, 1))
    assert "the data can be fitted exactly" in described and "gaps are absolute" in described
    assert "epochs to within 0.01 of the optimum (absolute)" in described
    theta = torch.tensor([[2.0], [5.0 + 1e-6]], dtype=torch.float64)
    assert reference.gap(theta) == pytest.approx(1e-12, rel=1e-6)
    assert reference.in_words(reference.gap(theta)) == "1e-12"


def test_the_excess_loss_has_its_digits_where_the_loss_does_not() -> None:
    """Near the optimum, loss(θ) - loss(θ*) cancels; ‖R(θ - θ*)‖² does not."""
    x, y, _, _ = load("Pontius")
    z = (x[:, 0] - x[:, 0].mean()) / x[:, 0].std()
    design = torch.tensor(np.column_stack([z**2, z, np.ones(len(z))]))
    reference = LeastSquaresReference.from_data(design, torch.tensor(y)[:, None])
    step = torch.tensor([[1e-12], [0.0], [0.0]], dtype=torch.float64)
    expected = float((design @ step).pow(2).mean())
    assert reference.excess(reference.solution + step) == pytest.approx(expected, rel=1e-9)
