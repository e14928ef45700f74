"""Logging the Lightning way: what callbacks, loggers and the progress bar see, and when."""

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import CONFIGS, QUIET, fit
from lightning.pytorch import Callback, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gd_lightning import (
    ConvergenceMonitor,
    CropYieldsDataModule,
    LinearRegression,
    TabularDataModule,
)
from gd_lightning.cli import cli

pytestmark = pytest.mark.usefixtures("plain_argv")


class Witness(Callback):
    """Measures each batch's loss itself before the update, then records what
    Lightning hands a callback for that step and epoch."""

    def __init__(self) -> None:
        self.expected: list[float] = []  # the batch MSE computed here, independently
        self.seen: list[float] = []  # callback_metrics["train/loss"] after the step
        self.steps_seen: list[int] = []  # the steps where it changed
        self.seen_by_step: dict[int, float] = {}
        self.bar: list[float] = []  # the progress bar's train/loss
        self.epoch_expected: list[float] = []
        self.epoch_seen: list[dict[str, float]] = []
        self.logged: list[dict[str, float]] = []
        self._sq, self._rows = 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        x, y = batch
        with torch.no_grad():
            squares = ((pl_module(x) - y) ** 2).double()
        self.expected.append(float(squares.mean()))
        self._sq += float(squares.sum())
        self._rows += squares.numel()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step - 1
        if "train/loss" not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics["train/loss"])
        if value != (self.seen[-1] if self.seen else None):
            self.steps_seen.append(step)
            self.seen_by_step[step] = value
        self.seen.append(value)
        self.bar.append(float(trainer.progress_bar_metrics["train/loss"]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_expected.append(self._sq / self._rows)
        self._sq, self._rows = 0.0, 0
        self.epoch_seen.append({k: float(v) for k, v in trainer.callback_metrics.items()})
        self.logged.append({k: float(v) for k, v in trainer.logged_metrics.items()})


class Recorder(Logger):
    """A logger of one's own: keeps every call to ``log_metrics``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append((int(step or 0), dict(metrics)))


class RecordingTensorBoard(TensorBoardLogger):
    """TensorBoard's logger, also keeping what it is handed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rows: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append((int(step or 0), dict(metrics)))
        super().log_metrics(metrics, step)


def losses_by_step(rows: list[tuple[int, dict[str, float]]], tag: str) -> dict[int, float]:
    return {step: values[tag] for step, values in rows if tag in values}


def crop_fit(
    tmp_path: Path,
    model_class: type = LinearRegression,
    callbacks: tuple = (),
    loss_logging: str = "every_step",
    **kwargs: Any,
) -> tuple[LinearRegression, Witness, Recorder, Any]:
    seed_everything(0)
    model = model_class(3, 2, lr=1e-5, optimization="manual", loss_logging=loss_logging)
    witness, recorder = Witness(), Recorder()
    board = RecordingTensorBoard(tmp_path, name="tb", default_hp_metric=False)
    trainer = fit(model, CropYieldsDataModule(batch_size=4), max_epochs=3,
                  logger=[recorder, board, CSVLogger(tmp_path, name="csv")],
                  callbacks=[witness, *callbacks], **kwargs)  # fmt: skip
    return model, witness, recorder, trainer


def test_callbacks_see_each_steps_loss_and_each_epochs_metrics_as_they_happen(tmp_path) -> None:
    _, witness, _, trainer = crop_fit(tmp_path, log_every_n_steps=1)
    assert len(witness.seen) == 12  # 15 rows in batches of 4, 3 epochs
    # the current step's loss, before its update, the progress bar's too
    assert witness.seen == pytest.approx(witness.expected, rel=1e-5)
    assert witness.bar == pytest.approx(witness.expected, rel=1e-5)
    # the current epoch's metrics, over its batches, in on_train_epoch_end
    seen = [epoch["train/epoch_mse"] for epoch in witness.epoch_seen]
    assert seen == pytest.approx(witness.epoch_expected, rel=1e-5)
    assert len(set(seen)) == 3
    for epoch in witness.epoch_seen:
        assert epoch["train/epoch_rmse"] == pytest.approx(epoch["train/epoch_mse"] ** 0.5)
    # and what the loggers got, through trainer.logged_metrics
    assert trainer.logged_metrics["train/epoch_mse"] == pytest.approx(seen[-1], rel=1e-6)
    assert [epoch["train/loss"] for epoch in witness.logged] == pytest.approx(
        [witness.expected[i] for i in (3, 7, 11)], rel=1e-5
    )


def test_every_logger_receives_every_written_step(tmp_path) -> None:
    _, witness, recorder, trainer = crop_fit(tmp_path, log_every_n_steps=1)
    board = trainer.loggers[1]
    for rows in (recorder.rows, board.rows):
        losses = losses_by_step(rows, "train/loss")
        assert sorted(losses) == list(range(12))
        assert [losses[s] for s in range(12)] == pytest.approx(witness.expected, rel=1e-5)
        epochs = losses_by_step(rows, "train/epoch_mse")
        assert sorted(epochs) == [3, 7, 11]  # at the step of each epoch's last batch
    events = EventAccumulator(board.log_dir, size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == list(range(12))
    assert "hp_metric" not in events.Tags()["scalars"]


@pytest.mark.parametrize(
    ("loss_logging", "logged"),
    [
        ("every_step", list(range(12))),  # every step, whatever Lightning writes
        # the opt-in: the steps Lightning writes (4, 9) and each epoch's last (3, 7, 11)
        ("written_steps", [3, 4, 7, 9, 11]),
    ],
)
def test_callbacks_see_train_loss_on_every_step_unless_told_otherwise(
    tmp_path: Path, loss_logging: str, logged: list[int]
) -> None:
    _, witness, recorder, _ = crop_fit(tmp_path, log_every_n_steps=5, loss_logging=loss_logging)
    assert witness.steps_seen == logged
    assert [witness.seen_by_step[s] for s in logged] == pytest.approx(
        [witness.expected[s] for s in logged], rel=1e-5
    )
    assert sorted(losses_by_step(recorder.rows, "train/loss")) == [4, 9]  # Lightning's rule
    assert sorted(losses_by_step(recorder.rows, "train/epoch_mse")) == [3, 7, 11]


def test_the_csv_log_is_in_step_order_and_every_row_names_its_epoch(tmp_path) -> None:
    _, _, _, trainer = crop_fit(tmp_path, log_every_n_steps=1)
    (path,) = Path(tmp_path, "csv").rglob("metrics.csv")
    with path.open() as lines:
        rows = list(csv.DictReader(lines))
    steps = [int(row["step"]) for row in rows]
    assert steps == sorted(steps) and all(row["epoch"] != "" for row in rows)
    last = [row for row in rows if row["train/epoch_mse"]][-1]
    assert (int(last["step"]), float(last["epoch"])) == (11, 2)


class OwnHooks(LinearRegression):
    """A subclass in ordinary Lightning style: hooks overridden without super()."""

    def on_fit_start(self) -> None:
        self.started = True

    def on_train_start(self) -> None:
        pass

    def on_train_epoch_start(self) -> None:
        pass

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        pass

    def on_train_epoch_end(self) -> None:
        pass

    def on_train_end(self) -> None:
        pass

    def on_save_checkpoint(self, checkpoint) -> None:
        pass


def test_a_subclass_overriding_hooks_without_super_loses_no_logged_value(tmp_path) -> None:
    plain = crop_fit(tmp_path / "plain", log_every_n_steps=1)[2].rows
    own = crop_fit(tmp_path / "own", OwnHooks, log_every_n_steps=1)[2].rows
    assert own == plain
    assert any("train/epoch_r2" in values for _, values in own)


def test_full_batch_values_at_one_step_describe_the_same_parameters(tmp_path) -> None:
    seed_everything(0)
    model = LinearRegression(3, 2, lr=1e-5, optimization="manual")
    recorder = Recorder()
    monitor = ConvergenceMonitor(verbose=False)
    fit(model, CropYieldsDataModule(num_regions=5), max_epochs=4, logger=recorder,
        log_every_n_steps=1, callbacks=[monitor])  # fmt: skip
    optimum = monitor.reference.optimum_loss
    loss = losses_by_step(recorder.rows, "train/loss")
    excess = losses_by_step(recorder.rows, "train/excess_loss")
    epoch_mse = losses_by_step(recorder.rows, "train/epoch_mse")
    assert sorted(loss) == sorted(excess) == sorted(epoch_mse) == [0, 1, 2, 3]
    for step in range(4):  # the parameters after `step` updates, seen three ways
        assert epoch_mse[step] == pytest.approx(loss[step], rel=1e-6)
        assert excess[step] == pytest.approx(loss[step] - optimum, rel=1e-5)


def test_the_progress_bar_shows_the_current_loss(tmp_path) -> None:
    class Bar(TQDMProgressBar):
        shown: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            self.shown.append(float(self.get_metrics(trainer, pl_module)["train/loss"]))

    bar = Bar()
    _, witness, _, _ = crop_fit(
        tmp_path, callbacks=(bar,), enable_progress_bar=True, log_every_n_steps=1
    )
    assert bar.shown == pytest.approx(witness.expected, rel=1e-4)  # 5 significant digits


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
    last = cli([*args, "--checkpoint.save_last", "true"])
    kept = sorted(p.name for p in Path(last.trainer.log_dir, "checkpoints").glob("*.ckpt"))
    assert kept == ["epoch=6-step=7.ckpt", "last.ckpt"]
    off = cli([*args, "--trainer.enable_checkpointing", "false"])
    assert not list(Path(off.trainer.log_dir).rglob("*.ckpt"))


def test_a_step_checkpoint_on_train_loss_ranks_by_each_steps_value_in_a_default_trainer(
    tmp_path: Path,
) -> None:
    """A Lightning user's own Trainer (log_every_n_steps=50, its default) and a
    ModelCheckpoint monitoring train/loss every 5 steps: 40 steps of 20-row batches."""
    x = torch.linspace(-1, 1, 400)[:, None]
    data = TabularDataModule(features_path=_save(tmp_path / "x.npy", x),
                             targets_path=_save(tmp_path / "y.npy", 3 * x + 1),
                             batch_size=20, shuffle=False)  # fmt: skip
    seed_everything(0)
    model = LinearRegression(1, 1, lr=0.05, optimization="manual")
    witness = Witness()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="train/loss",
                                 every_n_train_steps=5, save_top_k=1)  # fmt: skip
    fit(model, data, max_epochs=2, callbacks=[witness, checkpoint], enable_checkpointing=True)
    assert len(witness.seen) == 40
    assert witness.seen == pytest.approx(witness.expected, rel=1e-5)  # current on every step
    saved_at = range(4, 40, 5)  # the steps the checkpoint callback saves after
    best = min(saved_at, key=lambda step: witness.expected[step])
    assert float(checkpoint.best_model_score) == pytest.approx(witness.expected[best], rel=1e-5)
    assert f"step={best + 1}" in Path(checkpoint.best_model_path).name


def _save(path: Path, tensor: torch.Tensor) -> str:
    np.save(path, tensor.numpy())
    return str(path)
