"""Works wherever it is installed: the tutorials run by name from any folder, one
checkpoint serves Python and the command line both ways, and predictions keep the
columns that identify their rows."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import CONFIGS, QUIET, quiet_trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from gd_lightning import (
    CropYieldsDataModule,
    LinearRegression,
    QuadraticRegression,
    SpeedDataModule,
    TabularDataModule,
)
from gd_lightning.cli import cli, main
from gd_lightning.cli.tutorials import TUTORIALS, tutorial_configs

pytestmark = pytest.mark.usefixtures("plain_argv")


def error_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """Run ``gd-lightning args``, which must fail with exit 2 and print one line."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gd-lightning: error: "), captured.err
    assert "Traceback" not in captured.out + captured.err
    return lines[0]


# --- the tutorials by name --------------------------------------------------------------


def test_the_packaged_configs_are_the_repositorys() -> None:
    configs = tutorial_configs()
    assert list(configs) == [*TUTORIALS, *(f"fast/{name}" for name in TUTORIALS)]
    for name, path in configs.items():
        assert path.read_bytes() == (CONFIGS / f"{name}.yaml").read_bytes(), name


def test_tutorials_lists_each_config_on_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    main(["tutorials"])
    lines = capsys.readouterr().out.splitlines()
    for name in tutorial_configs():
        (line,) = [line for line in lines if line.split()[:1] == [name]]
        assert "Tutorial" in line, line
    assert len(lines[0]) <= 120


def test_a_tutorial_runs_by_name_from_an_empty_folder(tmp_path: Path) -> None:
    assert not list(tmp_path.iterdir())
    result = cli(["fit", "--config", "crop_yields_5", "--trainer.max_epochs", "3", *QUIET])
    assert result.trainer.global_step == 3
    assert (tmp_path / "lightning_logs" / "crop_yields_5" / "version_0" / "config.yaml").is_file()
    # the same with the quick version, its ".yaml" written out, and a path to the file
    fast = cli(["fit", "--config", "fast/line_fit.yaml", "--trainer.max_epochs", "1", *QUIET])
    assert fast.trainer.current_epoch == 1
    by_path = cli(["fit", "--config", str(CONFIGS / "crop_yields_5.yaml"),
                   "--trainer.max_epochs", "3", *QUIET])  # fmt: skip
    assert torch.equal(by_path.model.linear.weight, result.model.linear.weight)


def test_a_file_of_the_same_name_wins_over_the_packaged_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    packaged = yaml.safe_load((CONFIGS / "crop_yields_5.yaml").read_text())
    packaged["trainer"]["max_epochs"] = 2
    Path("crop_yields_5").write_text(yaml.safe_dump(packaged))
    assert cli(["fit", "--config", "crop_yields_5", *QUIET]).trainer.global_step == 2


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("line_fits", ["no tutorial of that name", "gd-lightning tutorials"]),
        ("configs/line_fit.yaml", ["--config line_fit runs the packaged one"]),
    ],
)
def test_an_unknown_config_is_one_line(
    capsys: pytest.CaptureFixture[str], value: str, words: list[str]
) -> None:
    line = error_line(capsys, ["fit", "--config", value])
    assert all(word in line for word in words), line
    assert not Path("lightning_logs").exists()


def test_help_says_only_what_works(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "configs/" not in text
    assert "gd-lightning fit --config quadratic_speed" in text
    for command, option in (("fit --model.help LinearRegression", "--model.lr"),
                            ("fit --data.help TabularDataModule", "--data.csv_path")):  # fmt: skip
        assert f"gd-lightning {command}" in text
        with pytest.raises(SystemExit) as exit_info:
            main(command.split())
        assert exit_info.value.code in (0, None)
        assert option in capsys.readouterr().out


# --- one checkpoint, both ways ------------------------------------------------------------

ROWS = 40


@pytest.fixture(scope="module")
def houses(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV with an id and a text column beside the numbers, and a noisy linear target."""
    folder = tmp_path_factory.mktemp("houses")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 2))
    y = x @ [2.0, -1.0] + 0.5 + 0.1 * rng.normal(size=ROWS)
    path = folder / "houses.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "area", "town", "rooms", "price"])
        for i in range(ROWS):
            writer.writerow([f"H{i:03d}", x[i, 0], "Saint-Malo, Bretagne", x[i, 1], y[i]])
    return path


def saved_from_python(model: torch.nn.Module, datamodule: object, folder: Path) -> Path:
    """Fit with a plain Trainer of one's own, as a Lightning user would; its checkpoint."""
    checkpoint = ModelCheckpoint(dirpath=folder)
    trainer = quiet_trainer(max_epochs=60, callbacks=[checkpoint], enable_checkpointing=True)
    trainer.fit(model, datamodule=datamodule)  # type: ignore[arg-type]
    return Path(checkpoint.best_model_path)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_a_checkpoint_from_python_predicts_validates_and_tests_on_the_command_line(
    houses: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = TabularDataModule(csv_path=str(houses), targets=["price"], features=["area", "rooms"])
    model = LinearRegression(2, 1, lr=0.1)
    checkpoint = saved_from_python(model, data, Path("python_run"))
    assert not list(Path().rglob("*.yaml"))  # no config anywhere

    main(["predict", "--ckpt_path", str(checkpoint), "--data.csv_path", str(houses),
          "--predictions.path", "out.csv", "--predictions.keep_columns", "[id,town]",
          *QUIET])  # fmt: skip
    rows = read_rows(Path("out.csv"))
    assert list(rows[0]) == ["id", "town", "price"]
    assert [row["id"] for row in rows] == [f"H{i:03d}" for i in range(ROWS)]
    assert {row["town"] for row in rows} == {"Saint-Malo, Bretagne"}  # text, commas and all
    x, _ = TabularDataModule(
        csv_path=str(houses), features=["area", "rooms"], targets=["price"]
    ).load()
    with torch.no_grad():
        expected = LinearRegression.load_from_checkpoint(checkpoint)(x)[:, 0]
    got = torch.tensor([float(row["price"]) for row in rows])
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-6)  # CSV's shortest decimals

    for subcommand, option in (("validate", "val_fraction"), ("test", "test_fraction")):
        run = cli([subcommand, "--ckpt_path", str(checkpoint), "--data", "TabularDataModule",
                   "--data.csv_path", str(houses), f"--data.{option}", "0.25", *QUIET])  # fmt: skip
        stage = "val" if subcommand == "validate" else "test"
        assert run.trainer.callback_metrics[f"{stage}/mse"] < 0.1  # noise 0.1: mse ~0.01
        assert torch.equal(run.model.linear.weight, model.linear.weight)


def test_a_quadratic_from_python_predicts_on_the_command_line() -> None:
    model = QuadraticRegression(lr=1e-5, optimization="manual")
    checkpoint = saved_from_python(model, SpeedDataModule(), Path("python_run"))
    np.save("t.npy", np.arange(3, dtype=np.float32))
    main(["predict", "--ckpt_path", str(checkpoint), "--data.features_path", "t.npy",
          "--predictions.path", "out.csv", *QUIET])  # fmt: skip
    got = [float(row["speed"]) for row in read_rows(Path("out.csv"))]
    with torch.no_grad():
        expected = model(torch.arange(3.0)[:, None])[:, 0].tolist()
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("model_class", [LinearRegression, QuadraticRegression])
def test_a_command_line_checkpoint_loads_in_python(model_class: type) -> None:
    if model_class is LinearRegression:
        args = ["--config", "crop_yields_5"]
    else:
        args = ["--config", "quadratic_speed"]
    run = cli(["fit", *args, "--trainer.max_epochs", "3", *QUIET])
    (checkpoint,) = Path("lightning_logs").rglob("*.ckpt")
    loaded = model_class.load_from_checkpoint(checkpoint)
    assert type(loaded) is model_class
    for (name, value), (_, saved) in zip(loaded.state_dict().items(),
                                         run.model.state_dict().items(), strict=True):  # fmt: skip
        assert torch.equal(value, saved), name
    assert loaded.feature_names == run.model.feature_names


def test_a_wrong_model_class_is_one_line_naming_both(
    houses: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = TabularDataModule(csv_path=str(houses), targets=["price"], features=["area", "rooms"])
    checkpoint = saved_from_python(LinearRegression(2, 1, lr=0.1), data, Path("run"))
    line = error_line(capsys, ["predict", "--ckpt_path", str(checkpoint), "--model",
                               "QuadraticRegression", "--data.csv_path", str(houses)])  # fmt: skip
    assert "holds a LinearRegression" in line and "QuadraticRegression" in line
    # the same class, named by its short or its full path, is the same class
    for name in ("LinearRegression", "gd_lightning.models.linear.LinearRegression"):
        main(["predict", "--ckpt_path", str(checkpoint), "--model", name, "--data.csv_path",
              str(houses), "--predictions.path", f"{name}.csv", *QUIET])  # fmt: skip
        assert len(read_rows(Path(f"{name}.csv"))) == ROWS


class Unnamed(LinearRegression):
    """A subclass whose own checkpoint hook leaves out ``super()``."""

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mine"] = 1


def test_a_checkpoint_that_names_no_class_is_one_line(
    houses: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = TabularDataModule(csv_path=str(houses), targets=["price"], features=["area", "rooms"])
    checkpoint = saved_from_python(Unnamed(2, 1, lr=0.1), data, Path("run"))
    line = error_line(capsys, ["predict", "--ckpt_path", str(checkpoint),
                               "--data.csv_path", str(houses)])  # fmt: skip
    assert "does not name the class" in line and "load_from_checkpoint" in line
    assert "Unnamed" not in sys.modules.get("gd_lightning", sys).__dict__


# --- predictions keep the columns that identify the rows ------------------------------


@pytest.fixture(scope="module")
def houses_checkpoint(houses: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = TabularDataModule(csv_path=str(houses), targets=["price"], features=["area", "rooms"])
    folder = tmp_path_factory.mktemp("fit")
    return saved_from_python(LinearRegression(2, 1, lr=0.1), data, folder)


def test_kept_columns_come_first_then_inputs_then_predictions(
    houses: Path, houses_checkpoint: Path
) -> None:
    main(["predict", "--ckpt_path", str(houses_checkpoint), "--data.csv_path", str(houses),
          "--predictions.keep_columns", "[town,id]", "--predictions.with_inputs", "true",
          "--predictions.path", "out.csv", *QUIET])  # fmt: skip
    rows = read_rows(Path("out.csv"))
    assert list(rows[0]) == ["town", "id", "area", "rooms", "price"]
    source = read_rows(houses)
    assert [row["id"] for row in rows] == [row["id"] for row in source]


@pytest.mark.parametrize(
    ("keep", "extra", "words"),
    [
        ("[row]", [], ["'row' is not in", "id, area, town, rooms, price"]),
        ("[id,id]", [], ["more than once"]),
        ("[price]", [], ["'price'", "output has a column of that name"]),
        ("[area]", ["--predictions.with_inputs", "true"], ["'area'", "column of that name"]),
    ],
)
def test_a_wrong_kept_column_is_one_line_and_writes_nothing(
    houses: Path,
    houses_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
    keep: str,
    extra: list[str],
    words: list[str],
) -> None:
    line = error_line(capsys, ["predict", "--ckpt_path", str(houses_checkpoint),
                               "--data.csv_path", str(houses), "--predictions.keep_columns", keep,
                               "--predictions.path", "out.csv", *extra])  # fmt: skip
    assert all(word in line for word in words), line
    assert not Path("out.csv").exists()


def test_kept_columns_need_a_csv(
    houses_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save("x.npy", np.zeros((3, 2), dtype=np.float32))
    line = error_line(capsys, ["predict", "--ckpt_path", str(houses_checkpoint),
                               "--data.features_path", "x.npy", "--predictions.keep_columns",
                               "[id]", "--predictions.path", "out.csv"])  # fmt: skip
    assert ".npy array" in line and "keep_columns" in line
    assert not Path("out.csv").exists()


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--model.bias", "false", ["model.bias is false", "saved with true"]),
        ("--model.feature_names", "[area,town]", ["model.feature_names", "[area, rooms]"]),
        ("--model.lr", "7", ["model.lr is 7", "saved with 0.1"]),
    ],
)
def test_an_option_the_checkpoint_overrides_is_one_line(
    houses: Path,
    houses_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    words: list[str],
) -> None:
    line = error_line(capsys, ["predict", "--ckpt_path", str(houses_checkpoint),
                               "--data.csv_path", str(houses), option, value,
                               "--predictions.path", "out.csv"])  # fmt: skip
    assert all(word in line for word in words) and "leave" in line, line
    assert not Path("out.csv").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--help"],
        ["predict", "-h"],
        ["validate", "--help"],
        ["predict", "--ckpt_path", "missing.ckpt", "--help"],
    ],  # fmt: skip
)
def test_help_needs_no_checkpoint(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code in (0, None)
    assert "--ckpt_path" in capsys.readouterr().out


class TwoTargets(LinearRegression):
    """A user's own subclass, in their own module (here, this one)."""


def test_a_users_own_class_is_used_once_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from conftest import CROP_INPUTS

    data = CropYieldsDataModule()
    model = TwoTargets(3, 2, lr=1e-5, optimization="manual")
    checkpoint = saved_from_python(model, data, Path("run"))
    rows = ["temp,rainfall,humidity"] + [",".join(map(str, row)) for row in CROP_INPUTS]
    Path("new.csv").write_text("\n".join(rows) + "\n")
    line = error_line(capsys, ["predict", "--ckpt_path", str(checkpoint),
                               "--data.csv_path", "new.csv"])  # fmt: skip
    assert "'test_portable.TwoTargets'" in line and "--model test_portable.TwoTargets" in line
    main(["predict", "--ckpt_path", str(checkpoint), "--model", "test_portable.TwoTargets",
          "--data.csv_path", "new.csv", "--predictions.path", "out.csv", *QUIET])  # fmt: skip
    got = torch.tensor([[float(row["mangoes"]), float(row["oranges"])]
                        for row in read_rows(Path("out.csv"))])  # fmt: skip
    with torch.no_grad():
        expected = model(torch.from_numpy(CROP_INPUTS))
    assert torch.allclose(got, expected, rtol=1e-6)


def test_every_lazy_name_is_what_it_names_whatever_was_imported_first() -> None:
    # the packages export their names on first use; importing every module first (as a
    # doctest run does) must not put a module where a function or class is expected
    import importlib
    import pkgutil
    import types

    import gd_lightning
    import gd_lightning.cli

    for info in pkgutil.walk_packages(gd_lightning.__path__, "gd_lightning."):
        importlib.import_module(info.name)
    for package in (gd_lightning, gd_lightning.cli):
        for name in package.__all__:
            value = getattr(package, name)
            assert not isinstance(value, types.ModuleType), f"{package.__name__}.{name}"
    assert callable(gd_lightning.cli.main) and callable(gd_lightning.cli.command)
