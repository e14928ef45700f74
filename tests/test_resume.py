"""A run killed with SIGKILL and resumed from its last checkpoint ends exactly where an
uninterrupted run does."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import QUIET

pytestmark = pytest.mark.slow

EPOCHS = 150


def command(folder: Path, optimization: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "gd_lightning", "fit",
        "--model", "LinearRegression", "--model.lr", "1e-5",
        "--model.optimization", optimization,
        "--data", "CropYieldsDataModule", "--data.batch_size", "3", "--data.seed", "5",
        "--seed_everything", "1", "--trainer.max_epochs", str(EPOCHS),
        "--checkpoint.every_n_epochs", "1", "--checkpoint.save_last", "true",
        "--trainer.default_root_dir", str(folder), "--trainer.logger", "false",
        "--convergence.verbose", "false", "--report.print_table", "false", *QUIET, *extra,
    ]  # fmt: skip


def final_state(folder: Path) -> dict[str, torch.Tensor]:
    final = folder / "checkpoints" / f"epoch={EPOCHS - 1}-step={EPOCHS * 5}.ckpt"
    return torch.load(final, weights_only=True)["state_dict"]


def kill_during_training(args: list[str], folder: Path, delay: float) -> None:
    """Start ``args``, wait until it has saved a checkpoint, then SIGKILL it ``delay`` later."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = folder / "checkpoints" / "last.ckpt"
    seen = last.stat().st_mtime_ns if last.exists() else None
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if last.exists() and last.stat().st_mtime_ns != seen:
            break
        time.sleep(0.01)
    time.sleep(delay)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("optimization", ["manual", "automatic"])
def test_killed_and_resumed_runs_end_bit_for_bit_where_an_uninterrupted_one_does(
    optimization: str, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    subprocess.run(command(reference, optimization), check=True, capture_output=True)
    interrupted = tmp_path / "interrupted"
    rng = random.Random(optimization)
    for kill in range(2):
        resume = ["--ckpt_path", "last"] if kill else []
        kill_during_training(command(interrupted, optimization, *resume), interrupted,
                             delay=rng.uniform(0.0, 0.3))  # fmt: skip
        # the last checkpoint is whole whenever the kill came, even mid-save
        torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)
    done = subprocess.run(command(interrupted, optimization, "--ckpt_path", "last"),
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    expected, resumed = final_state(reference), final_state(interrupted)
    assert all(torch.equal(resumed[name], expected[name]) for name in expected)
    assert not list((interrupted / "checkpoints").glob(".*.tmp*"))  # leftovers cleaned
