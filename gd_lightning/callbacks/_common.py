"""What the callbacks read from a run: its data, its names, where it writes."""

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch import Tensor
from torch.utils.data import TensorDataset

from gd_lightning.analysis import LeastSquaresReference
from gd_lightning.data.base import default_names


def run_tensors(trainer: "pl.Trainer") -> tuple[Tensor, Tensor] | None:
    """All rows of the run's data as ``(features, targets)``: the ``full_set`` of a
    [`TensorDataModule`][gd_lightning.TensorDataModule]; ``None`` for other data."""
    dataset = getattr(getattr(trainer, "datamodule", None), "full_set", None)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return dataset.tensors[0], dataset.tensors[1]
    return None


def reference_from(datamodule: Any, model: "pl.LightningModule") -> LeastSquaresReference | None:
    """The least-squares reference of ``datamodule``'s training split for ``model``, as a
    [`TensorDataModule`][gd_lightning.TensorDataModule] offers it (built once a fit,
    `least_squares_reference`); ``None`` for other data, or where none can be built."""
    offer = getattr(datamodule, "least_squares_reference", None)
    return offer(model) if offer is not None else None


def columns_of(
    trainer: "pl.Trainer", pl_module: "pl.LightningModule"
) -> tuple[list[str], list[str]]:
    """The model's feature and target names (the data's, for a model of another kind),
    or ``x0, x1, ...`` and ``y0, ...``."""
    has_names = hasattr(pl_module, "feature_names")
    named = pl_module if has_names else getattr(trainer, "datamodule", None)
    in_features = int(pl_module.hparams.get("in_features", 1))
    out_features = int(pl_module.hparams.get("out_features", 1))
    features = getattr(named, "feature_names", None) or default_names("x", in_features)
    targets = getattr(named, "target_names", None) or default_names("y", out_features)
    return list(features), list(targets)


def run_folder(trainer: "pl.Trainer") -> Path:
    """The run's log folder (``lightning_logs/.../version_N``), or the root without a logger.

    What ``trainer.log_dir`` gives, without its broadcast: with several processes
    that is a collective call, and the callbacks here write from rank 0 alone.
    """
    loggers = trainer.loggers
    if not loggers:
        return Path(trainer.default_root_dir)
    logger = loggers[0]
    folder = logger.log_dir if isinstance(logger, TensorBoardLogger | CSVLogger) else None
    return Path(folder or logger.save_dir or trainer.default_root_dir)


def checkpoint_folder(trainer: "pl.Trainer") -> Path:
    """Where the run's checkpoints go, or its log folder when it keeps none."""
    callback = trainer.checkpoint_callback
    dirpath = getattr(callback, "dirpath", None)
    return Path(dirpath) if dirpath else run_folder(trainer)


def shown_path(path: Path) -> Path:
    """``path`` as a message shows it: relative to the current folder when it lies
    inside it (as a config's relative ``save_dir`` gives it), else as it is.

    Examples:
        >>> import os
        >>> shown_path(Path(os.getcwd()) / "lightning_logs" / "version_0")
        PosixPath('lightning_logs/version_0')
        >>> shown_path(Path("/elsewhere/run"))
        PosixPath('/elsewhere/run')
    """
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
