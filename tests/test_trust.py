"""Untrusted checkpoints, unwritable folders, and runs that repeat themselves exactly."""

import os
import pickle
import stat
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, QUIET
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gd_lightning import LinearRegression
from gd_lightning.cli import cli, main

pytestmark = pytest.mark.usefixtures("plain_argv")


class Planted:
    """Unpickling this object would run ``open(path, "w")``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


def plant(checkpoint: Path, evil: Path) -> Path:
    """A copy of ``checkpoint`` that also carries a :class:`Planted` object."""
    state = torch.load(checkpoint, weights_only=True)
    state["extra"] = Planted(str(evil))
    planted = checkpoint.with_name("planted.ckpt")
    torch.save(state, planted, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    return planted


def test_a_checkpoint_carrying_code_is_refused_and_nothing_in_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(CONFIGS / "crop_yields_5.yaml"), "--trainer.max_epochs", "3",
              "--trainer.callbacks=[]", *QUIET]  # fmt: skip
    cli(["fit", *config])
    (checkpoint,) = Path("lightning_logs").rglob("*.ckpt")
    evil = tmp_path / "ran.txt"
    planted = plant(checkpoint, evil)
    for subcommand in ("validate", "test", "predict", "fit"):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([subcommand, *config, "--ckpt_path", str(planted)])
        assert exit_info.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
        assert line.startswith("gd-lightning: error: ") and "nothing in it ran" in line
    with pytest.raises(pickle.UnpicklingError):  # the Python API loads weights only too
        LinearRegression.load_from_checkpoint(planted)
    assert not evil.exists()
    LinearRegression.load_from_checkpoint(checkpoint)  # the honest one loads


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder no run can write into: read-only, or (as root, whom permissions do not
    stop) one whose parent is a file."""
    if os.geteuid() == 0:
        blocker = tmp_path / "a_file"
        blocker.write_text("")
        return blocker / "logs"
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return folder / "logs"


def test_an_unwritable_log_folder_is_reported_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = unwritable_folder(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "crop_yields_5.yaml"),
              "--trainer.logger.init_args.save_dir", str(folder), *QUIET])  # fmt: skip
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    line = out.err.strip().splitlines()[-1]
    assert line.startswith("gd-lightning: error: cannot write") and str(folder) in line
    assert "curvature" not in out.out  # refused before the fit began
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(CONFIGS / "crop_yields_5.yaml"), "--trainer.logger",
              "false", "--trainer.default_root_dir", str(folder), *QUIET])  # fmt: skip
    assert "cannot write" in capsys.readouterr().err


def test_the_same_config_and_seed_repeat_exactly() -> None:
    runs = []
    for _ in range(2):
        result = cli(["fit", "--config", str(CONFIGS / "crop_yields.yaml"),
                      "--trainer.max_epochs", "5", "--data.val_fraction", "0.2",
                      "--trainer.callbacks=[]", *QUIET])  # fmt: skip
        events = EventAccumulator(result.trainer.log_dir, size_guidance={"scalars": 0})
        events.Reload()
        scalars = {
            tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]
        }
        runs.append((result.model.state_dict(), scalars))
    (first, first_scalars), (second, second_scalars) = runs
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert "train/loss" in first_scalars and "val/rmse" in first_scalars
    assert first_scalars == second_scalars
