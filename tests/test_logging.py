"""Training values logged in bulk, and checkpoints at the end of a fit."""

from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, QUIET, fit
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

from gd_lightning import CropYieldsDataModule, LinearRegression, LossHistory
from gd_lightning.callbacks import ConvergenceMonitor, FitFigures, ParameterReport
from gd_lightning.cli import cli
from gd_lightning.events import masked_crc32c
from gd_lightning.models.base import _may_read_epoch_metrics
from gd_lightning.steplog import TrainStats, epoch_sums

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


def test_train_stats_fold_kept_batches_and_sum_many_epochs_at_once(monkeypatch) -> None:
    generator = torch.Generator().manual_seed(1)
    targets = 50 + torch.randn(40, 2, generator=generator)
    preds = targets + torch.randn(40, 2, generator=generator)
    monkeypatch.setattr(TrainStats, "FOLD_EVERY", 3)  # folds after batches 3 and 6
    stats, epochs = TrainStats(), []
    for rows in (torch.arange(40).split(5), torch.arange(40).split(7), torch.arange(12).split(4)):
        for batch in rows:
            stats.update(preds[batch], targets[batch])
        epochs.append(stats.close())
    assert [epoch.count for epoch in epochs] == [40, 40, 12] and stats.count == 0
    assert epochs[0].folded is not None and len(epochs[0].batches) == 2  # 8 batches: 6 folded
    monkeypatch.setattr(TrainStats, "FOLD_ROWS", 10)  # and rows bound what is kept
    big = TrainStats()
    for batch in torch.arange(40).split(7):
        big.update(preds[batch], targets[batch])
        assert big._kept_rows < 10 and len(big.batches) <= 1
    together = epoch_sums(epochs, epochs[0].shift)  # type: ignore[arg-type]
    for sums, rows in zip(together, (40, 40, 12), strict=True):
        d, y = preds[:rows] - targets[:rows], targets[:rows] - epochs[0].shift
        expected = torch.stack([(d * d).sum(0), d.abs().sum(0), y.sum(0), (y * y).sum(0)])
        torch.testing.assert_close(sums, expected, rtol=1e-5, atol=1e-3)


def test_event_records_carry_the_crc_tensorboard_checks() -> None:
    generator = torch.Generator().manual_seed(2)
    lengths = [1, 2, 8, 9, 100, 193, 1000, 3, 5000, 8]
    messages = [
        bytes(torch.randint(0, 256, (n,), generator=generator, dtype=torch.uint8).tolist())
        for n in lengths
    ]
    messages.append(b"\x00" * 64)
    expected = [pywrap_tensorflow.masked_crc32c(message) for message in messages]
    assert masked_crc32c(messages) == expected
    assert masked_crc32c(messages[::-1]) == expected[::-1]  # tables grown in another order
    with pytest.raises(ValueError, match="non-empty"):
        masked_crc32c([b"abc", b""])


class EpochReader(Callback):
    """Reads the last epoch's metrics as the next one starts, as a user's callback may."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:
            self.seen.append(float(trainer.callback_metrics["train/epoch_mse"]))

    def on_train_end(self, trainer, pl_module) -> None:
        self.on_train_epoch_start(trainer, pl_module)


def logged_epoch_metrics(folder: Path, **kwargs) -> tuple[list[dict[str, str]], Trainer]:
    model = LinearRegression(3, 2, lr=1e-5, optimization="manual")
    trainer = fit(model, CropYieldsDataModule(batch_size=4), max_epochs=7,
                  logger=CSVLogger(folder), **kwargs)  # fmt: skip
    lines = (Path(trainer.logger.log_dir) / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    return [row for row in rows if row["train/epoch_mse"]], trainer


def test_epoch_metrics_wait_for_the_next_write_unless_a_callback_reads_them(tmp_path) -> None:
    torch.manual_seed(0)
    waiting, trainer = logged_epoch_metrics(tmp_path / "a")
    assert not trainer.lightning_module._epoch_metrics_at_once
    reader = EpochReader()
    torch.manual_seed(0)
    at_once, trainer = logged_epoch_metrics(tmp_path / "b", callbacks=[reader])
    assert trainer.lightning_module._epoch_metrics_at_once
    assert len(waiting) == 7 and waiting == at_once  # the same values at the same steps
    logged = [float(row["train/epoch_mse"]) for row in at_once]
    assert reader.seen == pytest.approx(logged, rel=1e-6)  # in callback_metrics as float32
    assert float(trainer.callback_metrics["train/epoch_mse"]) == reader.seen[-1]


@pytest.mark.parametrize(
    ("callback", "reads"),
    [
        (EarlyStopping(monitor="train/epoch_mse"), True),
        (EarlyStopping(monitor="val/loss"), False),
        (ModelCheckpoint(), False),
        (ModelCheckpoint(monitor="train/epoch_mse"), True),
        (ModelCheckpoint(filename="{epoch}-{train/epoch_mse:.2f}"), True),
        (ConvergenceMonitor(), False),
        (ParameterReport(), False),
        (FitFigures(), False),
        (LossHistory(), True),  # it closes the epoch itself and reads at once
        (Callback(), True),  # unknown: it may read them
    ],
)
def test_which_callbacks_get_the_epoch_metrics_as_the_epoch_ends(callback, reads) -> None:
    assert _may_read_epoch_metrics(callback) is reads


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
    steps = cli([*args, "--checkpoint.every_n_train_steps", "2", "--checkpoint.save_top_k", "-1",
                 "--model.optimization", "automatic"])  # fmt: skip
    kept = sorted(p.name for p in Path(steps.trainer.log_dir, "checkpoints").glob("*.ckpt"))
    assert kept == ["epoch=1-step=2.ckpt", "epoch=3-step=4.ckpt", "epoch=5-step=6.ckpt",
                    "epoch=6-step=7.ckpt"]  # fmt: skip
    off = cli([*args, "--trainer.enable_checkpointing", "false"])
    assert not list(Path(off.trainer.log_dir).rglob("*.ckpt"))
