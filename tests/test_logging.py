"""Training values logged in bulk, and checkpoints at the end of a fit."""

from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, QUIET, fit
from lightning.pytorch.loggers import CSVLogger
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

from gd_lightning import CropYieldsDataModule, LinearRegression, LossHistory
from gd_lightning.cli import cli
from gd_lightning.steplog import TrainStats

pytestmark = pytest.mark.usefixtures("plain_argv")


def test_train_stats_match_torchmetrics_over_an_epoch() -> None:
    generator = torch.Generator().manual_seed(0)
    targets = 1e4 + torch.randn(50, 3, generator=generator)  # far from zero: R² keeps precision
    preds = targets + 0.3 * torch.randn(50, 3, generator=generator)
    stats = TrainStats()
    for rows in torch.arange(50).split(7):
        stats.update(preds[rows], targets[rows])
    got = stats.compute()
    assert got["mse"] == pytest.approx(float(mean_squared_error(preds, targets)), rel=1e-5)
    assert got["mae"] == pytest.approx(float(mean_absolute_error(preds, targets)), rel=1e-5)
    exact = r2_score(preds.double(), targets.double(), multioutput="uniform_average")
    assert got["r2"] == pytest.approx(float(exact), abs=1e-5)
    assert 0.8 < got["r2"] < 0.99


def test_every_step_reaches_any_logger_and_log_every_n_steps_thins_them(tmp_path) -> None:
    model = LinearRegression(3, 2, lr=1e-5, optimization="manual")
    history = LossHistory()
    logger = CSVLogger(tmp_path)
    trainer = fit(model, CropYieldsDataModule(batch_size=3), max_epochs=23, logger=logger,
                  log_every_n_steps=10, callbacks=[history])  # fmt: skip
    assert history.steps == list(range(1, 116))  # every step reaches the listeners
    lines = (Path(trainer.logger.log_dir) / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    logged = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    losses = [row for row in logged if row["train/loss"]]
    assert [int(row["step"]) for row in losses] == list(range(9, 115, 10))
    assert float(losses[0]["train/loss"]) == pytest.approx(history.losses[9], rel=1e-6)
    assert len([row for row in logged if row["train/epoch_mse"]]) == 23


def test_a_fit_saves_one_checkpoint_at_its_end_or_every_n_epochs() -> None:
    args = ["fit", "--config", str(CONFIGS / "crop_yields_5.yaml"), "--trainer.max_epochs", "7",
            "--trainer.callbacks=[]", *QUIET]  # fmt: skip
    cli(args)
    (only,) = Path("lightning_logs/crop_yields_5/version_0/checkpoints").glob("*.ckpt")
    assert only.name == "epoch=6-step=7.ckpt"
    result = cli([*args, "--checkpoint.every_n_epochs", "3", "--checkpoint.save_top_k", "-1"])
    kept = sorted(p.name for p in Path(result.trainer.log_dir, "checkpoints").glob("*.ckpt"))
    assert kept == ["epoch=2-step=3.ckpt", "epoch=5-step=6.ckpt", "epoch=6-step=7.ckpt"]
    off = cli([*args, "--trainer.enable_checkpointing", "false"])
    assert not list(Path(off.trainer.log_dir).rglob("*.ckpt"))
