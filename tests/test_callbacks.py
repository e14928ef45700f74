"""Figures, the fit animation, the parameter report and the predictions file."""

import csv
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import CONFIGS, QUIET, fit, quiet_trainer
from lightning.pytorch import seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gd_lightning import (
    ConvergenceMonitor,
    CropYieldsDataModule,
    FitFigures,
    LinearRegression,
    LossHistory,
    NoisyLineDataModule,
    ParameterReport,
    PredictionWriter,
    QuadraticRegression,
    SpeedDataModule,
)
from gd_lightning.cli import cli
from gd_lightning.io import atomic_path

pytestmark = pytest.mark.usefixtures("plain_argv")


def images(folder: Path) -> dict[str, list[int]]:
    events = EventAccumulator(str(folder), size_guidance={"images": 0})
    events.Reload()
    return {tag: [e.step for e in events.Images(tag)] for tag in events.Tags()["images"]}


def test_line_config_logs_figures_and_writes_the_animation() -> None:
    cli(["fit", "--config", str(CONFIGS / "line_fit.yaml"), "--trainer.max_epochs", "6",
         "--trainer.callbacks.every_n_epochs", "3", *QUIET])  # fmt: skip
    (folder,) = Path("lightning_logs/line_fit").glob("version_*")
    # every 3 epochs (one step each), and the end, which falls on step 6 too; the
    # landscape with the whole path at the end
    assert images(folder) == {"figures/fit": [3, 6], "figures/predictions": [3, 6],
                              "figures/landscape": [6]}  # fmt: skip
    for name in ("fit.png", "predictions.png", "landscape.png"):
        with Image.open(folder / name) as png:
            assert png.format == "PNG" and png.width > 200
    with Image.open(folder / "fit.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 4  # before training, epochs 2, 4, 6
    with Image.open(folder / "landscape.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 7  # the start and each of 6 steps
    assert not list(folder.glob(".*tmp*"))  # no temporary files left behind


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        # 2 updates an epoch: a figure every epoch, and the end's
        ({"max_epochs": 3}, ["after 2 updates (1 epoch)", "after 4 updates (2 epochs)",
                             "after 6 updates (3 epochs)", "after 6 updates (3 epochs)"]),
        # stopped in the second epoch: it ends there, and counts as done
        ({"max_steps": 3}, ["after 2 updates (1 epoch)", "after 3 updates (2 epochs)",
                            "after 3 updates (2 epochs)"]),
    ],
)  # fmt: skip
def test_figure_captions_count_the_updates_and_epochs_done(
    limits: dict[str, int], expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gd_lightning import plots

    captions: list[str] = []
    drawn = plots.predictions_figure

    def spy(y: Any, preds: Any, names: Any, title: str) -> Any:
        captions.append(title.splitlines()[0])
        return drawn(y, preds, names, title)

    monkeypatch.setattr(plots, "predictions_figure", spy)
    data = NoisyLineDataModule(num_points=20, batch_size=10, shuffle=False)
    fit(LinearRegression(2, 1, lr=0.01), data, callbacks=[FitFigures(every_n_epochs=1)],
        default_root_dir=".", **limits)  # fmt: skip
    assert captions == expected


def test_a_long_run_spreads_its_figures_to_at_most_max_logged(monkeypatch) -> None:
    """30 epochs, figures asked for every epoch, at most 4 of them: every 8th epoch
    (8, 16, 24), and the end's; every epoch when the bound is lifted."""
    from gd_lightning import plots

    drawn = plots.predictions_figure
    for max_logged, expected in ((4, [8, 16, 24, 30]), (None, [*range(1, 31), 30])):
        epochs: list[int] = []

        def spy(y: Any, preds: Any, names: Any, title: str, seen: list[int] = epochs) -> Any:
            seen.append(int(title.splitlines()[0].split("(")[1].split()[0]))
            return drawn(y, preds, names, title)

        monkeypatch.setattr(plots, "predictions_figure", spy)
        figures = FitFigures(every_n_epochs=1, max_logged=max_logged, landscape=False)
        fit(LinearRegression(2, 1, lr=0.01), NoisyLineDataModule(num_points=10),
            callbacks=[figures], max_epochs=30, default_root_dir=".")  # fmt: skip
        assert epochs == expected
        assert figures.cadence == (8 if max_logged else 1)


def test_the_landscape_at_each_point_of_the_path_is_the_logged_loss() -> None:
    """Tutorial 2 has two parameters, so its landscape is drawn over the parameters
    themselves: the loss it shows at each point of the path (the start, every logged
    step, the end) is the loss the run logged for those parameters."""
    seed_everything(0)
    history = LossHistory()
    figures, monitor = FitFigures(every_n_epochs=0), ConvergenceMonitor()
    data = NoisyLineDataModule(num_points=100, coefficients=(3.0, 2.0), seed=42)
    model = LinearRegression(2, 1, bias=False, lr=0.1, optimization="manual",
                             init_weight=[[-1.0, 1.0]])  # fmt: skip
    fit(model, data, max_epochs=30, log_every_n_steps=1, default_root_dir=".",
        callbacks=[monitor, figures, history])  # fmt: skip
    landscape = figures.drawn_landscape
    assert landscape is not None and landscape.in_parameters
    assert landscape.plane.axes == ("x", "one")
    # the start (-1, 1), one point a step, and the end: 31 points
    assert landscape.path.shape == (31, 2)
    assert landscape.path[0].tolist() == [-1.0, 1.0]
    reference = monitor.reference
    assert reference is not None
    shown = [
        reference.landscape(landscape.plane, a[None], b[None]).item() for a, b in landscape.path
    ]
    # the logged loss of step s was measured at the parameters after s updates
    assert shown[:30] == pytest.approx(history.losses, rel=1e-5)
    assert shown[-1] == pytest.approx(reference.loss(model.theta()), rel=1e-9)
    # the contour levels lie between the path's losses and the optimum's
    assert landscape.loss.min() >= reference.optimum_loss - 1e-9
    assert (Path("landscape.png")).is_file()


def test_the_landscape_says_when_its_parameters_are_in_standardized_units() -> None:
    figures = FitFigures(every_n_epochs=0)
    data = NoisyLineDataModule(num_points=20, standardize_features=True)
    fit(LinearRegression(2, 1, bias=False, lr=0.1, optimization="manual"), data, max_epochs=2,
        callbacks=[ConvergenceMonitor(), figures], default_root_dir=".")  # fmt: skip
    assert figures.drawn_landscape is not None
    assert figures.drawn_landscape.plane.axes == ("x, standardized", "one, standardized")


def test_the_landscape_of_many_parameters_is_the_plane_of_extreme_curvature() -> None:
    seed_everything(0)
    figures = FitFigures(every_n_epochs=0)
    monitor = ConvergenceMonitor()
    fit(LinearRegression(3, 2, lr=1e-5, optimization="manual"), CropYieldsDataModule(),
        max_epochs=5, callbacks=[monitor, figures], default_root_dir=".")  # fmt: skip
    landscape, reference = figures.drawn_landscape, monitor.reference
    assert landscape is not None and reference is not None and not landscape.in_parameters
    plane = landscape.plane
    flat_u, flat_v = plane.u.flatten(), plane.v.flatten()
    # orthonormal, through the optimum, along the Hessian's extreme eigenvectors
    assert float(flat_u @ flat_v) == pytest.approx(0.0, abs=1e-12)
    assert float(flat_u @ flat_u) == pytest.approx(1.0) == float(flat_v @ flat_v)
    assert torch.equal(plane.origin, reference.solution)
    hessian_u = 2 * reference.gram @ plane.u / 2  # the Hessian 2G/K, K = 2 targets
    assert torch.allclose(hessian_u, reference.largest_eigenvalue * plane.u, rtol=1e-9)
    assert landscape.optimum.abs().max() < 1e-9
    # along the steepest direction the loss rises as a parabola of that curvature
    rise = reference.landscape(plane, torch.tensor([0.0, 1e-3]), torch.tensor([0.0]))
    curvature = 2 * float(rise[0, 1] - rise[0, 0]) / 1e-6
    assert curvature == pytest.approx(reference.largest_eigenvalue, rel=1e-6)


def test_figures_for_many_inputs_show_predictions_only_and_no_animation() -> None:
    seed_everything(0)
    figures = FitFigures(every_n_epochs=1, animation=True)
    with pytest.warns(UserWarning, match="animation is off: .* has 3 .*temp, rainfall, humidity"):
        fit(LinearRegression(3, 2, lr=1e-6), CropYieldsDataModule(), max_epochs=2,
            callbacks=[figures], default_root_dir=".")  # fmt: skip
    assert Path("predictions.png").is_file()
    assert not Path("fit.png").exists() and not Path("fit.gif").exists()


def test_without_matplotlib_figures_say_how_to_install_and_training_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    model = QuadraticRegression(lr=1e-5, init_params=[1.0, 2.0, 3.0])
    with pytest.warns(UserWarning) as warned:
        trainer = fit(model, SpeedDataModule(), max_epochs=2, callbacks=[FitFigures(1)],
                      default_root_dir=".")  # fmt: skip
    messages = [str(w.message) for w in warned if "figures" in str(w.message)]
    assert messages == [
        "figures are off: matplotlib is not installed; to draw them: "
        "pip install 'gd-lightning[plots]'"
    ]
    assert trainer.global_step == 2 and not Path("predictions.png").exists()


def test_parameter_report_equals_the_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    seed_everything(1)
    model = LinearRegression(3, 2, lr=1e-6, optimization="manual")
    checkpoint = ModelCheckpoint(dirpath="ckpt")
    fit(model, CropYieldsDataModule(batch_size=5), max_epochs=3, enable_checkpointing=True,
        callbacks=[checkpoint, ParameterReport()])  # fmt: skip
    state = torch.load(checkpoint.best_model_path, weights_only=True)["state_dict"]

    report = json.loads(Path("ckpt/parameters.json").read_text())
    assert report["model"] == "LinearRegression"
    features = ["temp", "rainfall", "humidity"]
    for k, target in enumerate(["mangoes", "oranges"]):
        row = report["parameters"][target]
        assert list(row) == [*features, "bias"]
        as_tensor = torch.tensor([row[name] for name in features], dtype=torch.float32)
        assert torch.equal(as_tensor, state["linear.weight"][k])
        assert torch.tensor(row["bias"], dtype=torch.float32) == state["linear.bias"][k]

    with open("ckpt/parameters.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["target"], r["parameter"]) for r in rows][:4] == [
        ("mangoes", "temp"), ("mangoes", "rainfall"), ("mangoes", "humidity"), ("mangoes", "bias")
    ]  # fmt: skip
    assert float(rows[4]["value"]) == report["parameters"]["oranges"]["temp"]
    printed = capsys.readouterr().out
    assert "Learned parameters" in printed and "oranges" in printed and "humidity" in printed


def test_quadratic_report_names_a_b_c() -> None:
    model = QuadraticRegression(lr=1e-5, init_params=[1.0, 2.0, 3.0])
    fit(model, SpeedDataModule(), max_epochs=1, callbacks=[ParameterReport(print_table=False)],
        default_root_dir=".")  # fmt: skip
    report = json.loads(Path("parameters.json").read_text())
    learned = report["parameters"]["speed"]
    assert list(learned) == ["a", "b", "c"]
    assert torch.equal(torch.tensor(list(learned.values())), model.quadratic.params.detach())


def test_bias_column_line_reports_the_intercept_under_its_column_name() -> None:
    model = LinearRegression(2, 1, bias=False, lr=0.1, init_weight=[[-1.0, 1.0]])
    assert model.coefficients(["x", "one"], ["y"]) == {"y": {"x": -1.0, "one": 1.0}}


def test_predict_writes_inputs_and_predictions_exactly() -> None:
    common = ["--config", str(CONFIGS / "crop_yields.yaml"), *QUIET]
    cli(["fit", *common, "--trainer.max_epochs", "2"])
    (checkpoint,) = Path("lightning_logs/crop_yields").rglob("*.ckpt")
    cli(["predict", *common, "--ckpt_path", str(checkpoint), "--predictions.with_inputs", "true"])
    path = checkpoint.parent.parent / "predictions.csv"
    with open(path, newline="") as file:
        header = next(csv.reader(file))
    assert header == ["temp", "rainfall", "humidity", "mangoes", "oranges"]
    table = torch.from_numpy(np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32))
    x, _ = CropYieldsDataModule().load()
    model = LinearRegression.load_from_checkpoint(checkpoint)
    assert torch.equal(table[:, :3], x)
    with torch.no_grad():
        assert torch.equal(table[:, 3:], model(x))  # the same float32 numbers, row for row

    # by default the predictions alone, named after the targets
    cli(["predict", *common, "--ckpt_path", str(checkpoint), "--predictions.path", "mine.csv"])
    mine = np.loadtxt("mine.csv", delimiter=",", skiprows=1, dtype=np.float32)
    assert Path("mine.csv").read_text().splitlines()[0] == "mangoes,oranges"
    assert torch.equal(torch.from_numpy(mine), table[:, 3:])


class FailsOnSecondBatch(LinearRegression):
    def predict_step(self, batch, batch_idx):
        if batch_idx == 1:
            raise RuntimeError("interrupted")
        return super().predict_step(batch, batch_idx)


def test_an_interrupted_predict_leaves_the_old_file_untouched() -> None:
    Path("predictions.csv").write_text("an earlier run's file\n")
    model = FailsOnSecondBatch(3, 2, lr=1e-6, init_weight=[[1.0] * 3] * 2, init_bias=[0.0, 0.0])
    writer = PredictionWriter(path="predictions.csv")
    with pytest.raises(RuntimeError, match="interrupted"):
        quiet_trainer(callbacks=[writer]).predict(model, CropYieldsDataModule(batch_size=4))
    assert Path("predictions.csv").read_text() == "an earlier run's file\n"
    assert sorted(p.name for p in Path(".").iterdir()) == ["predictions.csv"]


def test_atomic_path_keeps_the_old_file_on_error() -> None:
    Path("out.txt").write_text("old")
    with pytest.raises(ValueError), atomic_path("out.txt") as tmp:
        tmp.write_text("half")
        raise ValueError("stopped")
    assert Path("out.txt").read_text() == "old" and len(list(Path(".").iterdir())) == 1


def test_loss_history_keeps_every_step() -> None:
    history = LossHistory()
    model = LinearRegression(2, 1, bias=False, lr=0.1, init_weight=[[-1.0, 1.0]])
    fit(model, NoisyLineDataModule(val_fraction=0.2), max_epochs=5, callbacks=[history])
    assert history.steps == [0, 1, 2, 3, 4]  # the updates before each batch
    assert history.losses[-1] < history.losses[0]
    assert len(history.epochs) == 5 and "val/rmse" in history.epochs[-1]


def test_atomic_files_get_the_usual_permissions() -> None:
    with atomic_path("new.txt") as tmp:
        tmp.write_text("x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(Path("new.txt").stat().st_mode) == 0o666 & ~mask
