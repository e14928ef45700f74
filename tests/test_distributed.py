"""Several processes through Lightning's DDP give the fit of one process."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import QUIET

pytestmark = pytest.mark.slow


def fit_in_processes(
    processes: int, optimization: str, folder: Path
) -> tuple[dict[str, torch.Tensor], list[dict[str, str]]]:
    """``gd-lightning fit`` of the crop table in ``processes`` CPU processes; the final
    state and the rows of the CSV log."""
    command = [
        sys.executable, "-m", "gd_lightning", "fit",
        "--model", "LinearRegression", "--model.lr", "2e-5", "--model.optimization", optimization,
        "--data", "CropYieldsDataModule", "--data.batch_size", "4", "--data.seed", "3",
        "--seed_everything", "7", "--trainer.max_epochs", "6", "--trainer.logger", "CSVLogger",
        "--trainer.logger.save_dir", str(folder),
        "--trainer.default_root_dir", str(folder), "--convergence.verbose", "false",
        "--report.print_table", "false", "--trainer.accelerator", "cpu",
        "--trainer.log_every_n_steps", "1",
        "--trainer.devices", str(processes),
        *(["--trainer.strategy", "ddp"] if processes > 1 else []),
        *QUIET,
    ]  # fmt: skip
    folder.mkdir()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (checkpoint,) = folder.rglob("*.ckpt")
    (log,) = folder.rglob("metrics.csv")
    with log.open() as lines:
        rows = list(csv.DictReader(lines))
    return torch.load(checkpoint, weights_only=True)["state_dict"], rows


@pytest.mark.parametrize("optimization", ["manual", "automatic"])
def test_two_ddp_processes_reach_the_parameters_of_one(optimization: str, tmp_path) -> None:
    # 15 rows in global batches of 4: the last batch of 3 splits 1 + 2 between the
    # processes, so each process's loss must be weighted by its share to match
    one, one_log = fit_in_processes(1, optimization, tmp_path / "one")
    two, two_log = fit_in_processes(2, optimization, tmp_path / "two")
    assert one.keys() == two.keys() and "linear.weight" in one
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=0)
    assert not torch.equal(one["linear.weight"], torch.zeros_like(one["linear.weight"]))
    # the logged values are the global batch's and the whole epoch's, every process's
    # rows together (R² needs the targets' sums taken about one shift on every process)
    names = ["train/loss", "train/epoch_mse", "train/epoch_mae", "train/epoch_r2"]
    logged = {name: [float(row[name]) for row in one_log if row.get(name)] for name in names}
    assert len(logged["train/loss"]) == 24 and len(logged["train/epoch_r2"]) == 6
    for name in names:
        got = [float(row[name]) for row in two_log if row.get(name)]
        assert got == pytest.approx(logged[name], rel=1e-5), name
