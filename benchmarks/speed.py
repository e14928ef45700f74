"""Speed of the package's fit, as users run it, against hand-written PyTorch loops and
bare LightningModules, in one process.

Every ``gd-lightning fit`` here is the command a user types: the tutorial config as
shipped, or the command line's defaults with the data's options, and nothing for
speed but what the README tells users to add (``--model.loss_logging written_steps``);
what it prints goes to ``os.devnull``.

(a) Tiny: tutorial 5 (5 rows, full batch, lr 1e-5, the hand-written step) for
    ``--tiny-steps`` steps: the tutorial's own loop; the same step as the least a
    LightningModule can be, in a Trainer without logger or checkpoint (what
    Lightning's loop costs by itself); an idiomatic LightningModule for the same
    logged tags (TensorBoard every step); and ``gd-lightning fit --config
    crop_yields_5``, in microseconds per step.
(b) Large: ``--rows`` x 32 float32 rows with noise, minibatch gradient descent with
    batches of 4096 (and 65,536), one shuffled epoch: hand loops gathering each batch
    with ``X[idx]`` and with ``X.index_select(0, idx)``, the per-row
    ``DataLoader(TensorDataset, shuffle=True)`` path (timed over its first batches
    only), bare LightningModules fed the package's DataModule's batches (one that logs
    nothing, one that calls ``self.log("train/loss", loss)`` every step and nothing
    else), and ``gd-lightning fit`` reading the rows from ``.npy`` files through
    ``TabularDataModule``, by default and with ``loss_logging: written_steps``, in rows
    per second; and ``fit()``'s work outside its epoch.
(c) Wide: ``--wide-rows`` x ``--wide-columns`` rows, full batch, a few epochs of
    ``gd-lightning fit`` at ``lr: auto`` and at a fixed rate; seconds of ``fit()``.

Runs are interleaved ``--repeats`` times and medians reported.

    python benchmarks/speed.py
    python benchmarks/speed.py --tiny-steps 50 --rows 20000 --repeats 1   # a quick look
"""

import argparse
import contextlib
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import disable_possible_user_warnings
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from gd_lightning import CropYieldsDataModule, FullBatch, TabularDataModule
from gd_lightning.cli import cli

#: the benchmark's parts, selectable with --parts
PARTS = ("tiny", "large", "large 65536", "wide")
BATCH = 4096
BIG = 65536
FEATURES = 32


def fit_as_users_run(args: list[str], timer: Callback | None = None) -> tuple[Any, float]:
    """``gd-lightning fit`` with ``args``, in a fresh folder, its printing (progress bar
    included) sent to ``os.devnull``; the built command and ``fit()``'s seconds."""
    os.chdir(tempfile.mkdtemp())
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), \
            contextlib.redirect_stderr(sink):  # fmt: skip
        built = cli(args, run=False)
        if timer is not None:
            built.trainer.callbacks.append(timer)
        start = time.perf_counter()
        built.trainer.fit(built.model, datamodule=built.datamodule)
        seconds = time.perf_counter() - start
    return built, seconds


# --- (a) tiny ----------------------------------------------------------------------------


def tiny_by_hand(steps: int) -> float:
    """Tutorial 5's loop; seconds per step."""
    inputs, targets = CropYieldsDataModule(num_regions=5).load()
    torch.manual_seed(0)
    w = torch.randn(2, 3, requires_grad=True)
    b = torch.randn(2, requires_grad=True)
    start = time.perf_counter()
    for _ in range(steps):
        preds = inputs @ w.t() + b
        diff = preds - targets
        loss = torch.sum(diff * diff) / diff.numel()
        loss.backward()
        with torch.no_grad():
            w -= w.grad * 1e-5
            b -= b.grad * 1e-5
            w.grad.zero_()
            b.grad.zero_()
    return (time.perf_counter() - start) / steps


class TutorialStep(LightningModule):
    """Tutorial 5's step and nothing else, as the least any LightningModule does."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.batch = (inputs, targets)
        torch.manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(2, 3))
        self.b = torch.nn.Parameter(torch.randn(2))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        inputs, targets = batch
        diff = inputs @ self.w.t() + self.b - targets
        self.manual_backward(torch.sum(diff * diff) / diff.numel())
        with torch.no_grad():
            for p in (self.w, self.b):
                p -= p.grad * 1e-5
                p.grad = None

    def train_dataloader(self) -> FullBatch:
        return FullBatch(*self.batch)  # the one batch, every epoch

    def configure_optimizers(self) -> None:
        return None


def tiny_lightning_alone(steps: int) -> float:
    """:class:`TutorialStep` in a Trainer without logger, checkpoint or progress bar."""
    inputs, targets = CropYieldsDataModule(num_regions=5).load()
    trainer = Trainer(max_epochs=steps, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    start = time.perf_counter()
    trainer.fit(TutorialStep(inputs, targets))
    return (time.perf_counter() - start) / steps


class IdiomaticRegression(LightningModule):
    """What a Lightning engineer writes for the same logged tags: ``nn.Linear``,
    ``F.mse_loss``, ``self.log("train/loss")`` every step, a torchmetrics collection
    logged ``on_epoch``, the excess over the least-squares loss and the gap to it,
    stepped by ``torch.optim.SGD``."""

    def __init__(self, optimum: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.optimum = optimum  # the least-squares loss, for the gap to it
        self.linear = torch.nn.Linear(3, 2)
        self.metrics = MetricCollection(
            {
                "mse": MeanSquaredError(),
                "rmse": MeanSquaredError(squared=False),
                "mae": MeanAbsoluteError(),
                "r2": R2Score(multioutput="uniform_average"),
            },
            prefix="train/epoch_",
        )

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        x, y = batch
        preds = self.linear(x)
        loss = F.mse_loss(preds, y)
        self.log("train/loss", loss, prog_bar=True)
        self.metrics.update(preds.detach(), y)
        self.log_dict(self.metrics, on_step=False, on_epoch=True)
        excess = loss.detach() - self.optimum  # full batch: the whole data's loss
        self.log("train/excess_loss", excess, on_step=False, on_epoch=True)
        self.log("train/gap", excess / self.optimum, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-5)


def tiny_idiomatic(steps: int) -> float:
    """:class:`IdiomaticRegression` on tutorial 5's rows, full batch, TensorBoard every step."""
    inputs, targets = CropYieldsDataModule(num_regions=5).load()
    folder = tempfile.mkdtemp()
    trainer = Trainer(max_epochs=steps, logger=TensorBoardLogger(folder, default_hp_metric=False),
                      log_every_n_steps=1, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)  # fmt: skip
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=len(inputs))
    start = time.perf_counter()
    design = torch.cat([inputs, torch.ones(len(inputs), 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, targets.double()).solution
    optimum = float(((design @ solution - targets.double()) ** 2).mean())
    trainer.fit(IdiomaticRegression(optimum), train_dataloaders=loader)
    return (time.perf_counter() - start) / steps


def tiny_package(steps: int) -> float:
    """``gd-lightning fit --config crop_yields_5`` as shipped; seconds per step of fit()."""
    built, seconds = fit_as_users_run(
        ["--config", "crop_yields_5", "--trainer.max_epochs", str(steps)]
    )
    return seconds / built.trainer.global_step


# --- (b) large -----------------------------------------------------------------------------


def large_data(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, FEATURES, generator=generator)
    noise = torch.randn(rows, 1, generator=generator)
    y = x @ torch.randn(FEATURES, 1, generator=generator) + 0.1 + 0.5 * noise
    return x, y


def large_by_hand(x: torch.Tensor, y: torch.Tensor, gather: str, batch: int) -> float:
    """One shuffled epoch of minibatch GD, each batch gathered by ``gather``; rows per second."""
    w = torch.zeros(1, FEATURES, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    start = time.perf_counter()
    for idx in torch.randperm(len(x)).split(batch):
        if gather == "index":
            xb, yb = x[idx], y[idx]
        else:
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        loss = ((xb @ w.t() + b - yb) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for p in (w, b):
                p -= 0.01 * p.grad
                p.grad = None
    return len(x) / (time.perf_counter() - start)


def large_per_row_loader(x: torch.Tensor, y: torch.Tensor, batches: int) -> float:
    """``DataLoader(TensorDataset, batch_size=4096, shuffle=True)``, first ``batches``; rows/s."""
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    w = torch.zeros(1, FEATURES, requires_grad=True)
    seen = 0
    start = time.perf_counter()
    for i, (xb, yb) in enumerate(loader):
        loss = ((xb @ w.t() - yb) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= 0.01 * w.grad
            w.grad = None
        seen += len(xb)
        if i + 1 == batches:
            break
    return seen / (time.perf_counter() - start)


class EpochTimer(Callback):
    """Wall time of the training epoch, and of all of ``fit()``, for the work outside it."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


class BareStep(LightningModule):
    """The least a LightningModule does for the same step, in the shape of Lightning's
    own examples and in the package's default (automatic) mode: the linear model's
    forward and the MSE, returned for Lightning to step ``torch.optim.SGD`` with; no
    logging, no metrics."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(FEATURES, 1)
        torch.nn.init.zeros_(self.linear.weight)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        x, y = batch
        return F.mse_loss(self.linear(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class BareLoggingStep(BareStep):
    """:class:`BareStep` that also logs its loss, ``self.log("train/loss", loss)`` every
    step: the least a LightningModule that logs the Lightning way does."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        loss = super().training_step(batch, batch_idx)
        self.log("train/loss", loss)
        return loss


def large_data_module(folder: Path, batch: int) -> TabularDataModule:
    return TabularDataModule(features_path=str(folder / "x.npy"),
                             targets_path=str(folder / "y.npy"), batch_size=batch)  # fmt: skip


def large_bare(folder: Path, batch: int, module: type = BareStep) -> float:
    """A bare ``module`` fed the package's DataModule's batches, one epoch; rows/s."""
    timer = EpochTimer()
    trainer = Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      callbacks=[timer])  # fmt: skip
    data = large_data_module(folder, batch)
    trainer.fit(module(), datamodule=data)
    return len(data.train_set) / timer.seconds


#: what the README tells users to add to a large fit that no callback watches per step
OPT_IN = ["--model.loss_logging", "written_steps"]


def large_package(folder: Path, batch: int, *extra: str) -> tuple[float, float]:
    """``gd-lightning fit`` over the .npy files, one epoch, as a user types it (the
    command line's defaults: TensorBoard, the checkpoint, the progress bar); rows/s over
    the epoch, and ``fit()``'s seconds outside it (reading and checking the data, the
    least-squares reference, the checkpoint)."""
    options = (
        f"--model LinearRegression --model.lr 0.01 "
        f"--data TabularDataModule --data.features_path {folder / 'x.npy'} "
        f"--data.targets_path {folder / 'y.npy'} --data.batch_size {batch} "
        f"--trainer.max_epochs 1"
    )
    timer = EpochTimer()
    built, total = fit_as_users_run([*options.split(), *extra], timer)
    return len(built.datamodule.train_set) / timer.seconds, total - timer.seconds


def wide_package(folder: Path, lr: str, epochs: int) -> float:
    """``gd-lightning fit`` on the wide ``.npy`` files, full batch, at ``lr``; seconds."""
    options = (
        f"--model LinearRegression --model.lr {lr} --data TabularDataModule "
        f"--data.features_path {folder / 'wide_x.npy'} --data.targets_path "
        f"{folder / 'wide_y.npy'} --data.standardize_features true "
        f"--trainer.max_epochs {epochs}"
    )
    return fit_as_users_run(options.split())[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny-steps", type=int, default=900)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--wide-rows", type=int, default=20_000)
    parser.add_argument("--wide-columns", type=int, default=2_000)
    parser.add_argument("--wide-epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loader-batches", type=int, default=20)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="which parts to run (all by default)")  # fmt: skip
    options = parser.parse_args()
    disable_possible_user_warnings()
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)

    folder = Path(tempfile.mkdtemp())
    x, y = large_data(options.rows)
    np.save(folder / "x.npy", x.numpy())
    np.save(folder / "y.npy", y.numpy())
    generator = torch.Generator().manual_seed(1)
    wide = torch.randn(options.wide_rows, options.wide_columns, generator=generator)
    np.save(folder / "wide_x.npy", wide.numpy())
    np.save(folder / "wide_y.npy", (wide[:, :1] + wide[:, -1:]).numpy())

    load_before = f"{os.getloadavg()[0]:.2f}"
    runs: dict[str, list[float]] = {}
    outside: dict[str, list[float]] = {}

    def package(batch: int, *extra: str) -> float:
        speed, seconds = large_package(folder, batch, *extra)
        if batch == BATCH:
            epoch = options.rows / speed
            outside.setdefault("default" if not extra else "opt-in", []).append(seconds / epoch)
        return speed

    for _ in range(options.repeats):  # interleaved, so drifts in machine speed hit all alike
        for name, measure in (
            ("tiny: hand-written loop", lambda: tiny_by_hand(options.tiny_steps)),
            ("tiny: Lightning alone", lambda: tiny_lightning_alone(options.tiny_steps)),
            ("tiny: idiomatic LightningModule", lambda: tiny_idiomatic(options.tiny_steps)),
            ("tiny: gd-lightning fit", lambda: tiny_package(options.tiny_steps)),
            ("large: hand loop, X[idx]", lambda: large_by_hand(x, y, "index", BATCH)),
            ("large: hand loop, index_select", lambda: large_by_hand(x, y, "select", BATCH)),
            (
                "large: per-row DataLoader",
                lambda: large_per_row_loader(x, y, options.loader_batches),
            ),
            ("large: bare LightningModule", lambda: large_bare(folder, BATCH)),
            (
                "large: bare LightningModule, self.log every step",
                lambda: large_bare(folder, BATCH, BareLoggingStep),
            ),
            ("large: gd-lightning fit", lambda: package(BATCH)),
            ("large: gd-lightning fit, written_steps", lambda: package(BATCH, *OPT_IN)),
            ("large 65536: hand loop, index_select", lambda: large_by_hand(x, y, "select", BIG)),
            ("large 65536: bare LightningModule", lambda: large_bare(folder, BIG)),
            ("large 65536: gd-lightning fit", lambda: package(BIG)),
            (
                "wide: gd-lightning fit, lr 0.1",
                lambda: wide_package(folder, "0.1", options.wide_epochs),
            ),
            (
                "wide: gd-lightning fit, lr auto",
                lambda: wide_package(folder, "auto", options.wide_epochs),
            ),
        ):
            if name.split(":")[0] in options.parts:
                runs.setdefault(name, []).append(measure())
    median = {name: statistics.median(values) for name, values in runs.items()}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, medians of "
        f"{options.repeats}; tiny: {options.tiny_steps} steps; large: {options.rows:,} rows; "
        f"wide: {options.wide_rows:,} x {options.wide_columns:,}, {options.wide_epochs} epochs"
    )
    print(f"load average before the runs: {load_before}; after: {os.getloadavg()[0]:.2f}")
    print("| run | speed | against a hand loop | against Lightning |")
    print("|---|---|---|---|")
    for name, value in median.items():
        print(f"| {name} | {row(name, value, median)} |")
    for mode, values in outside.items():
        print(f"| large: fit() outside its epoch ({mode}) | "
              f"{statistics.median(values):.2f}x the epoch | | |")  # fmt: skip


def row(name: str, value: float, median: dict[str, float]) -> str:
    """The speed, and the ratios that matter, of the run ``name`` (its cells)."""
    if name.startswith("tiny"):
        hand, idiomatic = (
            median["tiny: hand-written loop"],
            median["tiny: idiomatic LightningModule"],
        )
        against = f"{value / idiomatic:.2f}x the idiomatic module's time" if "fit" in name else ""
        return f"{value * 1e6:.0f} µs/step | {value / hand:.2f}x its time | {against}"
    if name.startswith("wide"):
        fixed = median["wide: gd-lightning fit, lr 0.1"]
        return f"{value:.2f} s | | {value / fixed:.2f}x the fixed rate's time"
    prefix = name.split(":")[0]
    hand = median[f"{prefix}: hand loop, index_select"]
    cells = f"{value / 1e6:.2f} M rows/s | {value / hand:.2f}x index_select's speed | "
    if name.endswith("written_steps"):
        bare = median[f"{prefix}: bare LightningModule"]
        cells += f"{bare / value:.2f}x the bare module's time"
    elif "fit" in name and prefix == "large":
        bare = median[f"{prefix}: bare LightningModule, self.log every step"]
        cells += f"{bare / value:.2f}x the logging bare module's time"
    elif "fit" in name:
        cells += f"{median[f'{prefix}: bare LightningModule'] / value:.2f}x the bare module's time"
    return cells


if __name__ == "__main__":
    main()
