"""Runs as the configs make them (a TensorBoard logger giving each run a ``version_N``
folder): killed with SIGKILL and resumed with ``--ckpt_path last`` they end exactly
where an uninterrupted run does; stopped with SIGTERM or SIGINT they exit 143 or 130
and keep their last whole checkpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS

pytestmark = pytest.mark.slow

EPOCHS = 150
RUN = Path("lightning_logs") / "crop_yields_5"


def command(epochs: int, *extra: str) -> list[str]:
    """``configs/crop_yields_5.yaml`` (logger on) with a checkpoint every epoch."""
    return [
        sys.executable, "-m", "gd_lightning", "fit",
        "--config", str(CONFIGS / "crop_yields_5.yaml"), "--trainer.callbacks=[]",
        "--trainer.max_epochs", str(epochs),
        "--checkpoint.every_n_epochs", "1", "--checkpoint.save_last", "true",
        "--convergence.verbose", "false", "--report.print_table", "false", *extra,
    ]  # fmt: skip


def start_and_wait_for_a_checkpoint(args: list[str], folder: Path) -> subprocess.Popen[str]:
    """Start ``args`` in ``folder``; return once it has saved a new last checkpoint."""
    lasts = list(folder.rglob("last.ckpt"))
    seen = {p: p.stat().st_mtime_ns for p in lasts}
    process = subprocess.Popen(
        args, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        fresh = [p for p in folder.rglob("last.ckpt") if seen.get(p) != p.stat().st_mtime_ns]
        if fresh:
            return process
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint saved: {process.communicate()[1][-2000:]}")


def test_a_killed_logged_run_resumes_in_its_own_folder_bit_for_bit(tmp_path: Path) -> None:
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    reference.mkdir()
    interrupted.mkdir()
    subprocess.run(command(EPOCHS), cwd=reference, check=True, capture_output=True)
    for kill, delay in enumerate((0.05, 0.2)):
        resume = ["--ckpt_path", "last"] if kill else []
        process = start_and_wait_for_a_checkpoint(command(EPOCHS, *resume), interrupted)
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
    killed_at = torch.load(next(interrupted.rglob("last.ckpt")), weights_only=True)
    assert 0 < killed_at["global_step"] < EPOCHS  # it was stopped mid-run
    done = subprocess.run(command(EPOCHS, "--ckpt_path", "last"), cwd=interrupted,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "continuing the run in" in done.stdout
    # every part went into the first run's folder, none into a fresh version_N
    assert [p.name for p in (interrupted / RUN).iterdir()] == ["version_0"]
    final = f"checkpoints/epoch={EPOCHS - 1}-step={EPOCHS}.ckpt"
    expected = torch.load(reference / RUN / "version_0" / final, weights_only=True)
    resumed = torch.load(interrupted / RUN / "version_0" / final, weights_only=True)
    assert resumed["global_step"] == expected["global_step"] == EPOCHS
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], tensor), name


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_a_fit_with_its_exit_code_and_a_whole_checkpoint(
    signum: int, code: int, tmp_path: Path
) -> None:
    process = start_and_wait_for_a_checkpoint(command(100_000), tmp_path)
    time.sleep(0.1)
    os.kill(process.pid, signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("gd-lightning: stopped by")
    (last,) = tmp_path.rglob("last.ckpt")
    steps = torch.load(last, weights_only=True)["global_step"]  # one step an epoch
    assert steps > 0  # whole, and from this run
    # the run it left resumes, but not with fewer epochs than it has done
    fewer = subprocess.run(command(1, "--ckpt_path", "last"), cwd=tmp_path, capture_output=True,
                           text=True)  # fmt: skip
    assert fewer.returncode == 2 and "set --trainer.max_epochs above" in fewer.stderr
    more = subprocess.run(command(steps + 2, "--ckpt_path", "last"), cwd=tmp_path,
                          capture_output=True, text=True)  # fmt: skip
    assert more.returncode == 0, more.stderr[-2000:]
    assert torch.load(last, weights_only=True)["global_step"] == steps + 2
