"""Shared test helpers: quiet CPU trainers and the tutorials' crop table."""

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lightning.pytorch import LightningDataModule, LightningModule, Trainer

# Tutorials 3 and 5's table, typed in again here so the package's copy is checked
# against an independent one: temp, rain, humid -> mangoes, oranges.
# fmt: off
CROP_INPUTS = np.array(
    [[73, 67, 43], [91, 88, 64], [87, 134, 58], [102, 43, 37], [69, 96, 70],
     [74, 66, 43], [91, 87, 65], [88, 134, 59], [101, 44, 37], [68, 96, 71],
     [73, 66, 44], [92, 87, 64], [87, 135, 57], [103, 43, 36], [68, 97, 70]],
    dtype="float32",
)
CROP_TARGETS = np.array(
    [[56, 70], [81, 101], [119, 133], [22, 37], [103, 119],
     [57, 69], [80, 102], [118, 132], [21, 38], [104, 118],
     [57, 69], [82, 100], [118, 134], [20, 38], [102, 120]],
    dtype="float32",
)
# fmt: on


CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# options that keep a command-line run's output short
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@pytest.fixture
def plain_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """LightningCLI is driven by ``args``; hide pytest's own command line from it."""
    monkeypatch.setattr(sys, "argv", ["gd-lightning"])


def quiet_trainer(**kwargs: Any) -> Trainer:
    """A CPU Trainer that writes nothing and prints little."""
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    options.update(kwargs)
    return Trainer(**options)


def fit(model: LightningModule, datamodule: LightningDataModule, **kwargs: Any) -> Trainer:
    """Fit ``model`` on ``datamodule`` with a quiet trainer; return the trainer."""
    trainer = quiet_trainer(**kwargs)
    trainer.fit(model, datamodule=datamodule)
    return trainer


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own folder, so no output lands in the work tree."""
    monkeypatch.chdir(tmp_path)


def refused_in_one_line(
    args: list[str], capsys: pytest.CaptureFixture[str], words: str = ""
) -> str:
    """Run ``gd-lightning args``; assert exit 2, one ``gd-lightning: error:`` line on
    stderr holding ``words``, and nothing written under the current folder; return the
    line."""
    from gd_lightning.cli import main

    before = set(Path(".").rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gd-lightning: error: "), err[-2000:]
    assert words in lines[0], lines[0]
    assert set(Path(".").rglob("*")) == before  # nothing written
    return lines[0]


def cli_in(folder: Path, args: list[str]) -> None:
    """Run the command line on ``args`` in ``folder`` (as its working folder, with no
    command line of pytest's in ``sys.argv``), then come back: for module fixtures."""
    from gd_lightning.cli import cli

    old, argv = Path.cwd(), sys.argv
    os.chdir(folder)
    sys.argv = ["gd-lightning"]
    try:
        cli(args)
    finally:
        sys.argv = argv
        os.chdir(old)
