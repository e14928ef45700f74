"""Precision is never lost silently: a column float32 cannot carry (timestamps, 1.7e9 apart
by 1) is standardized in float64 or refused in one line, and a float64 checkpoint keeps
every digit from Python and from the command line (or says in one line that it rounds)."""

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUIET, quiet_trainer
from strd import DATA

from gd_lightning import ConvergenceMonitor, InputError, LinearRegression, TabularDataModule
from gd_lightning.cli import cli, main

pytestmark = pytest.mark.usefixtures("plain_argv")

START = 1_700_000_000  # float32's spacing here is 128: 40 rows 1 apart round to one value


@pytest.fixture
def stamps(tmp_path: Path) -> Path:
    """ts.csv: t = 1.7e9 + i (i = 0..39) and y = 2 (t - 1.7e9) + 5, exactly."""
    path = tmp_path / "ts.csv"
    rows = "".join(f"{START + i},{2 * i + 5}\n" for i in range(40))
    path.write_text("t,y\n" + rows)
    return path


@pytest.fixture
def new_stamps(tmp_path: Path) -> Path:
    """Timestamps the fit never saw: t = 1.7e9 + 50 (y = 105) and 1.7e9 + 0.5 (y = 6)."""
    path = tmp_path / "new.csv"
    path.write_text(f"t\n{START + 50}\n{START}.5\n")
    return path


# The model sees the standardized timestamps z = (t - mean) / std rounded to float32:
# |z| <= 2.7 here, off by at most 2.7 * 2**-24 = 1.6e-7, times the slope in standardized
# units (2 * std = 23): 4e-6 in y. The bound below leaves 25 times that for the float32
# arithmetic of the step and of the fold. Timestamps read in float32 fail it by far: the 40
# rows collapse onto one value, and their float32 mean alone is off by up to 64.
Y_TOLERANCE = 1e-4


def fit_stamps(path: Path, *extra: str):  # type: ignore[no-untyped-def]
    return cli(["fit", "--model", "LinearRegression", "--model.lr", "auto",
                "--data", "TabularDataModule", "--data.csv_path", str(path),
                "--data.targets", "[y]", "--trainer.max_epochs", "60",
                "--trainer.logger", "false", "--trainer.default_root_dir", "run",
                "--report.print_table", "false", *QUIET, *extra])  # fmt: skip


def read_predictions(path: Path) -> list[float]:
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    return [float(row[-1]) for row in rows[1:]]


def test_timestamps_standardized_in_python_reach_the_optimum(stamps, new_stamps) -> None:
    data = TabularDataModule(csv_path=str(stamps), targets=["y"], standardize_features=True)
    model = LinearRegression(1, 1, lr="auto", init_weight=[[0.0]], init_bias=[0.0])
    monitor = ConvergenceMonitor(verbose=False)
    quiet_trainer(max_epochs=60, callbacks=[monitor]).fit(model, datamodule=data)
    x, y = data.full_set.tensors
    # the timestamps kept with every digit; the targets, which float32 carries, not
    assert x.dtype == torch.float64 and y.dtype == torch.float32
    assert torch.equal(x[:, 0], torch.arange(40, dtype=torch.float64) + START)
    assert model.scaling.feature_shift.item() == START + 19.5  # float64 statistics
    # the reference sees what the fit sees: an exact fit, not 533 (the loss of a line
    # through rows collapsed onto one timestamp)
    reference = monitor.reference
    assert reference is not None and reference.rank == 2
    assert reference.optimum_loss < 1e-9
    with torch.no_grad():
        residual = model(x).double() - y.double()
    assert residual.abs().max() < Y_TOLERANCE
    trainer = quiet_trainer()
    (predicted,) = trainer.predict(model, datamodule=TabularDataModule(csv_path=str(new_stamps)))
    torch.testing.assert_close(predicted[:, 0], torch.tensor([105.0, 6.0]), rtol=0,
                               atol=Y_TOLERANCE)  # fmt: skip
    with torch.no_grad():  # float64 inputs from Python too
        alone = model(torch.tensor([[START + 50.0]], dtype=torch.float64))
    assert abs(alone.item() - 105) < Y_TOLERANCE


def test_timestamps_from_the_command_line_reach_the_optimum_and_predict(
    stamps, new_stamps, capsys: pytest.CaptureFixture[str]
) -> None:
    result = fit_stamps(stamps, "--data.standardize_features", "true")
    out = capsys.readouterr().out
    assert "rank 1 of 2" not in out and "best possible loss 533" not in out
    assert result.datamodule.full_set.tensors[0].dtype == torch.float64
    (monitor,) = [c for c in result.trainer.callbacks if isinstance(c, ConvergenceMonitor)]
    assert monitor.reference.optimum_loss < 1e-9  # an exact fit, as the file holds it
    x, y = result.datamodule.full_set.tensors
    with torch.no_grad():
        assert (result.model(x).double() - y.double()).abs().max() < Y_TOLERANCE
    (checkpoint,) = Path("run/checkpoints").glob("*.ckpt")
    cli(["predict", "--ckpt_path", str(checkpoint), "--data.csv_path", str(new_stamps),
         "--predictions.path", "out.csv", "--predictions.with_inputs", "true", *QUIET])  # fmt: skip
    got = read_predictions(Path("out.csv"))
    assert got == pytest.approx([105.0, 6.0], rel=0, abs=Y_TOLERANCE)
    with Path("out.csv").open(newline="") as file:  # the inputs as read, every digit
        assert [row[0] for row in csv.reader(file)] == ["t", "1700000050.0", "1700000000.5"]


def test_a_python_predict_from_ckpt_path_reads_what_the_restored_model_needs(
    stamps, new_stamps
) -> None:
    # Lightning sets the data up before it loads ckpt_path's weights: the loaders read the
    # timestamps again, in float64, for the standardization the checkpoint brings
    data = TabularDataModule(csv_path=str(stamps), targets=["y"], standardize_features=True)
    model = LinearRegression(1, 1, lr="auto", init_weight=[[0.0]], init_bias=[0.0])
    trainer = quiet_trainer(max_epochs=60, callbacks=[ConvergenceMonitor(verbose=False)],
                            enable_checkpointing=True, default_root_dir="run")  # fmt: skip
    trainer.fit(model, datamodule=data)
    checkpoint = trainer.checkpoint_callback.best_model_path  # type: ignore[union-attr]
    fresh = LinearRegression(1, 1, lr=0.1)
    new_data = TabularDataModule(csv_path=str(new_stamps))
    (predicted,) = quiet_trainer().predict(fresh, datamodule=new_data, ckpt_path=checkpoint)
    assert new_data.full_set.tensors[0].dtype == torch.float64
    torch.testing.assert_close(predicted[:, 0], torch.tensor([105.0, 6.0]), rtol=0,
                               atol=Y_TOLERANCE)  # fmt: skip


def test_unstandardized_timestamps_in_float32_are_refused_in_one_line(
    stamps, capsys: pytest.CaptureFixture[str]
) -> None:
    data = TabularDataModule(csv_path=str(stamps), targets=["y"])
    with pytest.raises(InputError, match="column 't' varies by 11.5"):
        data.setup("fit")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", "LinearRegression", "--model.lr", "auto", "--data.csv_path",
              str(stamps), "--data.targets", "[y]", "--trainer.default_root_dir", "run",
              *QUIET])  # fmt: skip
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "gd-lightning: error: column 't' varies by 11.5 (its standard deviation) at values "
        "up to 1700000039, where float32 rounds by up to 64: float32 cannot carry it; "
        "standardize it (--data.standardize_features true), or train with "
        "--trainer.precision 64-true"
    ]
    assert not Path("run").exists()


def test_a_target_float32_cannot_carry_is_refused_and_64_true_fits_it(tmp_path) -> None:
    path = tmp_path / "flip.csv"  # the timestamps as the target
    path.write_text("x,t\n" + "".join(f"{i},{START + i}\n" for i in range(40)))
    data = TabularDataModule(csv_path=str(path), targets=["t"], standardize_targets=True)
    with pytest.raises(InputError, match="target column 't' .* --trainer.precision 64-true"):
        data.setup("fit")
    wide = TabularDataModule(csv_path=str(path), targets=["t"], standardize_targets=True)
    wide.dtype = torch.float64  # what --trainer.precision 64-true sets
    wide.setup("fit")
    assert torch.equal(wide.full_set.tensors[1][:, 0], torch.arange(40.0).double() + START)


def test_ordinary_data_stays_float32(tmp_path) -> None:
    path = tmp_path / "houses.csv"
    path.write_text("area,rooms,price\n50,2,171\n80,3,331\n120,4,484\n65.3,2,193\n")
    data = TabularDataModule(csv_path=str(path), targets=["price"], standardize_features=True)
    data.setup("fit")
    assert all(t.dtype == torch.float32 for t in data.full_set.tensors)
    assert data.standardization is not None
    assert data.standardization.feature_shift.dtype == torch.float64
    data.dtype = torch.float64  # the same data for a run in 64-true: read again, not widened
    data.setup("fit")
    assert data.full_set.tensors[0][3, 0].item() == 65.3  # not float32(65.3) widened
    assert all(t.dtype == torch.float64 for t in data.full_set.tensors)


def test_timestamps_memory_mapped_are_served_in_float64(tmp_path) -> None:
    t = START + np.arange(40.0)
    np.save(tmp_path / "x.npy", t)
    np.save(tmp_path / "y.npy", 2 * (t - START) + 5)
    data = TabularDataModule(features_path=str(tmp_path / "x.npy"),
                             targets_path=str(tmp_path / "y.npy"), memory_map=True,
                             batch_size=8, standardize_features=True)  # fmt: skip
    data.setup("fit")
    assert data.full_set.dtypes == (torch.float64, torch.float32)
    assert data.standardization is not None
    assert data.standardization.feature_shift.item() == START + 19.5
    x, _ = data.train_set[slice(0, 2)]
    assert x[:, 0].tolist() == [START, START + 1]
    unstandardized = TabularDataModule(features_path=str(tmp_path / "x.npy"),
                                       targets_path=str(tmp_path / "y.npy"), memory_map=True,
                                       batch_size=8)  # fmt: skip
    with pytest.raises(InputError, match="column 'x0' varies by 11.5"):
        unstandardized.setup("fit")


@pytest.fixture
def norris_64(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A fit of NIST's Norris line under 64-true, unstandardized (so that the model's
    predictions are ``x * w + b`` with the reported parameters themselves): its checkpoint,
    its parameters.json, and the data's x."""
    cli(["fit", "--model", "LinearRegression", "--model.lr", "auto",
         "--data.csv_path", str(DATA / "Norris.csv"), "--data.targets", "[y]",
         "--trainer.precision", "64-true", "--trainer.max_epochs", "20",
         "--trainer.logger", "false", "--trainer.default_root_dir", "norris",
         "--convergence.verbose", "false", "--report.print_table", "false", *QUIET])  # fmt: skip
    (checkpoint,) = Path("norris/checkpoints").glob("*.ckpt")
    x = np.loadtxt(DATA / "Norris.csv", delimiter=",", skiprows=1)[:, 1]
    return checkpoint, Path("norris/checkpoints/parameters.json"), x


def test_a_float64_checkpoint_loads_as_float64_from_python(norris_64) -> None:
    checkpoint, report, _ = norris_64
    model = LinearRegression.load_from_checkpoint(checkpoint)
    saved = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert model.dtype == torch.float64
    for name, value in model.state_dict().items():
        assert value.dtype == saved[name].dtype == torch.float64
        assert torch.equal(value, saved[name]), name  # bit for bit
    parameters = json.loads(report.read_text())["parameters"]["y"]
    assert model.coefficients()["y"] == {"x": parameters["x"], "bias": parameters["bias"]}


def test_predict_in_64_true_keeps_every_digit_of_the_parameters(norris_64) -> None:
    checkpoint, report, x = norris_64
    parameters = json.loads(report.read_text())["parameters"]["y"]
    w, b = parameters["x"], parameters["bias"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli(["predict", "--ckpt_path", str(checkpoint), "--data.csv_path",
             str(DATA / "Norris.csv"), "--trainer.precision", "64-true",
             "--predictions.path", "p64.csv", *QUIET])  # fmt: skip
    assert not [w for w in caught if "rounded" in str(w.message)]  # nothing is, in 64-true
    got = np.array(read_predictions(Path("p64.csv")))
    # x * w + b computed once more in float64: two roundings (the product, the sum), each
    # at most half an ulp of |x w| + |b|; the float32 prediction is 5e-5 of that off
    size = np.abs(x * w) + abs(b)
    assert np.all(np.abs(got - (x * w + b)) <= 2 * np.finfo(np.float64).eps * size)
    # in 32-bit: one line says the parameters are rounded, and the predictions come
    with pytest.warns(UserWarning, match="rounded to float32") as caught:
        cli(["predict", "--ckpt_path", str(checkpoint), "--data.csv_path",
             str(DATA / "Norris.csv"), "--predictions.path", "p32.csv", *QUIET])  # fmt: skip
    (note,) = [str(w.message) for w in caught if "rounded" in str(w.message)]
    assert "\n" not in note and note.endswith("--trainer.precision 64-true keeps every digit")
    rounded = np.array(read_predictions(Path("p32.csv")))
    assert np.all(np.abs(rounded - (x * w + b)) <= 1e-6 * size)  # float32's digits


def test_a_float64_checkpoint_in_a_32_bit_trainer_from_python(norris_64) -> None:
    checkpoint, _, x = norris_64
    model = LinearRegression.load_from_checkpoint(checkpoint)
    data = TabularDataModule(csv_path=str(DATA / "Norris.csv"))
    with pytest.warns(UserWarning, match="rounded to float32"):
        (predicted,) = quiet_trainer().predict(model, datamodule=data)
    assert predicted.dtype == torch.float32 and model.dtype == torch.float32
    assert model.scaling.feature_shift.dtype == torch.float64  # the statistics keep theirs
    (again,) = quiet_trainer(precision="64-true").predict(
        LinearRegression(1, 1, lr=0.1), datamodule=data, ckpt_path=str(checkpoint)
    )
    assert again.dtype == torch.float64
    expected = LinearRegression.load_from_checkpoint(checkpoint)(torch.from_numpy(x)[:, None])
    assert torch.equal(again, expected.detach())
