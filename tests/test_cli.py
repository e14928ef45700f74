"""The gd-lightning command: ready configs, TensorBoard logs, subcommands, errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import CONFIGS, QUIET
from lightning.pytorch.profilers import SimpleProfiler
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_tutorials_exact import tutorial_1

from gd_lightning import LinearRegression, QuadraticRegression
from gd_lightning.cli import cli, main

CONFIG_NAMES = ["quadratic_speed", "line_fit", "crop_yields", "linear_arange", "crop_yields_5"]


pytestmark = pytest.mark.usefixtures("plain_argv")


def run_dir(name: str) -> Path:
    """The one version folder a config's run wrote under ./lightning_logs."""
    (folder,) = (Path("lightning_logs") / name).glob("version_*")
    return folder


def read_events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # keep every value
    events.Reload()
    return events


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_fits_end_to_end(name: str) -> None:
    result = cli(
        ["fit", "--config", str(CONFIGS / f"{name}.yaml"), "--trainer.max_epochs", "2", *QUIET]
    )
    steps = result.trainer.global_step
    assert steps >= 2
    folder = run_dir(name)
    (checkpoint,) = (folder / "checkpoints").glob("*.ckpt")
    assert f"step={steps}" in checkpoint.name
    assert (folder / "config.yaml").is_file() and (folder / "hparams.yaml").is_file()

    events = read_events(folder)
    config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    every = config["trainer"]["log_every_n_steps"]
    written = [s for s in range(steps) if (s + 1) % every == 0]  # Lightning's cadence
    tags = set(events.Tags()["scalars"])
    assert (
        [e.step for e in events.Scalars("train/loss")] == written
        if written
        else ("train/loss" not in tags)
    )
    epochs = [e.step for e in events.Scalars("train/epoch_mse")]
    # one value an epoch, at the step of the epoch's last batch
    assert len(epochs) == 2 and epochs[-1] == steps - 1
    assert {"train/epoch_mae", "train/epoch_r2", "train/gap", "train/excess_loss"} <= tags
    assert "hp_metric" not in tags  # no placeholder card first in TensorBoard


def test_quadratic_config_starts_where_the_tutorial_does_and_logs_its_rmse() -> None:
    ref = tutorial_1(steps=10)
    config = yaml.safe_load((CONFIGS / "quadratic_speed.yaml").read_text())
    init = torch.tensor(config["model"]["init_args"]["init_params"], dtype=torch.float32)
    assert torch.equal(init, ref["init"])

    result = cli(["fit", "--config", str(CONFIGS / "quadratic_speed.yaml"), *QUIET])
    model = result.model
    assert isinstance(model, QuadraticRegression) and result.trainer.global_step == 10
    assert torch.equal(model.quadratic.params.detach(), ref["params"])
    # one step an epoch: each epoch's RMSE is the step's, before its update
    logged = read_events(run_dir("quadratic_speed")).Scalars("train/epoch_rmse")
    assert [e.step for e in logged] == list(range(10))
    assert torch.equal(torch.tensor([e.value for e in logged]), ref["rmse"])  # as printed


def test_validation_metrics_are_logged_when_a_split_exists() -> None:
    cli(
        [
            "fit",
            "--config",
            str(CONFIGS / "crop_yields.yaml"),
            "--trainer.max_epochs",
            "3",
            "--data.val_fraction",
            "0.2",
            *QUIET,
        ]
    )
    tags = set(read_events(run_dir("crop_yields")).Tags()["scalars"])
    assert {f"val/{name}" for name in ("loss", "mse", "rmse", "mae", "r2")} <= tags


def test_models_and_data_by_class_name_then_validate_test_predict(tmp_path) -> None:
    common = [
        "--model",
        "LinearRegression",
        "--model.lr",
        "1e-6",
        "--data",
        "CropYieldsDataModule",
        "--data.batch_size",
        "5",
        "--data.val_fraction",
        "0.2",
        "--data.test_fraction",
        "0.2",
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
        *QUIET,
    ]
    fitted = cli(["fit", *common, "--trainer.max_epochs", "2"])
    assert isinstance(fitted.model, LinearRegression)
    assert fitted.model.hparams.in_features == 3  # linked from the data
    assert fitted.model.hparams.out_features == 2
    (checkpoint,) = (tmp_path / "runs").rglob("*.ckpt")

    validated = cli(["validate", *common, "--ckpt_path", str(checkpoint)])
    assert "val/mse" in validated.trainer.callback_metrics
    tested = cli(["test", *common, "--ckpt_path", str(checkpoint)])
    assert "test/r2" in tested.trainer.callback_metrics
    predicted = cli(["predict", *common, "--ckpt_path", str(checkpoint)])
    loaded = LinearRegression.load_from_checkpoint(checkpoint)
    x, _ = predicted.datamodule.full_set.tensors
    predictions = predicted.trainer.predict_loop.predictions
    with torch.no_grad():
        assert torch.equal(torch.cat(predictions), loaded(x))


def assert_contains(printed: object, written: object, where: str = "") -> None:
    """Every key and value of ``written`` is in ``printed`` (which adds the defaults)."""
    if isinstance(written, dict):
        assert isinstance(printed, dict), where
        for key, value in written.items():
            assert key in printed, f"{where}.{key} is not a real option"
            assert_contains(printed[key], value, f"{where}.{key}")
    elif isinstance(written, list):
        assert isinstance(printed, list) and len(printed) == len(written), where
        for i, (p, w) in enumerate(zip(printed, written, strict=True)):
            assert_contains(p, w, f"{where}[{i}]")
    else:
        assert printed == written, where


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_print_config_round_trips(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(["fit", "--config", str(CONFIGS / f"{name}.yaml"), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    written = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    assert_contains(printed, written)
    assert written["trainer"]["accelerator"] == "auto"


# a fit on ./data.csv, still to be told its targets
FIT_CSV = "fit --model LinearRegression --model.lr 0.01 --data TabularDataModule".split()
FIT_CSV += ["--data.csv_path", "data.csv"]


def test_a_users_mistake_ends_in_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    Path("data.csv").write_text("a,b,y\n1,2,3\n4,oops,6\n7,8,9\n")
    for extra, message in (
        (
            ["--data.targets", "[zz]"],
            "column 'zz' is not in data.csv; its columns are: a, b, y: fit needs the target "
            "column(s) (predict does not)",
        ),
        (
            ["--data.targets", "[y]"],
            "data.csv, line 3, column 'b': 'oops' is not a number: fix or remove that row",
        ),
        (
            ["--data.targets", "[y]", "--model.lr", "-1"],
            "lr must be a positive finite number or 'auto', got -1.0: set model.lr",
        ),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*FIT_CSV, *QUIET, *extra])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1] == f"gd-lightning: error: {message}"
        assert "Traceback" not in err
    assert not Path("lightning_logs").exists()  # nothing half-made


def test_the_installed_command_exits_2_and_debug_shows_the_traceback() -> None:
    Path("data.csv").write_text("a,y\n1,2\n3,x\n")
    args = [sys.executable, "-m", "gd_lightning", *FIT_CSV, "--data.targets", "[y]"]
    quiet = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines()[-1] == (
        "gd-lightning: error: data.csv, line 3, column 'y': 'x' is not a number: "
        "fix or remove that row"
    )
    assert "Traceback" not in quiet.stderr
    env = dict(os.environ, GD_LIGHTNING_DEBUG="1")
    loud = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert loud.returncode != 0 and "Traceback" in loud.stderr
    assert not Path("lightning_logs").exists()


def test_a_profiler_chosen_on_the_command_line_is_the_trainers() -> None:
    args = ["--config", str(CONFIGS / "crop_yields.yaml"), "--trainer.logger", "false", *QUIET]
    chosen = cli([*args, "--trainer.profiler", "simple"], run=False).trainer.profiler
    assert type(chosen) is SimpleProfiler


def test_the_tutorials_command_loads_neither_torch_nor_lightning() -> None:
    """``gd-lightning tutorials`` lists files: it answers before PyTorch and Lightning
    load (a few seconds each time)."""
    code = (
        "import sys; sys.argv = ['gd-lightning', 'tutorials']\n"
        "from gd_lightning.cli.entry import command; command()\n"
        "print(sorted({'torch', 'lightning', 'jsonargparse'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("quadratic_speed ") and lines[-1] == "[]", done.stdout
