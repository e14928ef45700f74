"""The ``gd-lightning`` command: LightningCLI over this package's models and data."""

import argparse
import gc
import importlib
import importlib.util
import inspect
import json
import logging
import os
import pickle
import re
import signal
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeGuard

import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.seed import max_seed_value as MAX_SEED
from lightning.fabric.utilities.seed import min_seed_value as MIN_SEED
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import ArgsType, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.plugins import CheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from gd_lightning.callbacks import (
    ConvergenceMonitor,
    FitCheckpoint,
    ParameterReport,
    PredictionWriter,
)
from gd_lightning.callbacks.convergence import auto_lr, reference_of
from gd_lightning.data.base import TensorDataModule, dtype_for
from gd_lightning.data.tabular import check_npy_widths, npy_widths
from gd_lightning.errors import InputError
from gd_lightning.io import AtomicCheckpointIO
from gd_lightning.models.base import RegressionModule

DEBUG_VARIABLE = "GD_LIGHTNING_DEBUG"
DESCRIPTION = (
    "Fit regression models by gradient descent with PyTorch Lightning. "
    "Start from a ready config: gd-lightning fit --config configs/quadratic_speed.yaml"
)


class _SaveConfig(SaveConfigCallback):
    """LightningCLI's ``config.yaml`` writer, skipping the hooks it does not use, and
    refusing in one line to put a new run into an earlier run's folder."""

    def setup(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        if not self.overwrite and not self.already_saved:
            folder = Path(trainer.log_dir or trainer.default_root_dir)
            if (folder / self.config_filename).is_file():
                raise InputError(
                    f"{folder} holds an earlier run (its {self.config_filename}): choose "
                    f"another --trainer.default_root_dir, keep a logger (it gives each run a "
                    f"folder of its own), or resume that run with --ckpt_path last"
                )
        super().setup(trainer, pl_module, stage)


class GDLightningCLI(LightningCLI):
    """LightningCLI that links the data's shape into the model and checks the data first.

    ``in_features`` and ``out_features`` come from the DataModule, so nobody types
    them; the data is loaded and checked before the Trainer creates any log folder,
    so a bad file leaves no half-made run behind. Every fit is measured against the
    least-squares optimum and guarded against divergence by a
    :class:`ConvergenceMonitor` (options under ``convergence``) and ends with a
    :class:`ParameterReport` (``report``); every predict writes its CSV through a
    :class:`PredictionWriter` (``predictions``). Checkpoints come from a
    :class:`FitCheckpoint` (``checkpoint``): one at the end of the fit, and every
    ``checkpoint.every_n_epochs`` epochs when set; a ``ModelCheckpoint`` of your own
    in ``trainer.callbacks`` takes its place, and ``trainer.enable_checkpointing:
    false`` turns checkpoints off.
    """

    def add_arguments_to_parser(self, parser) -> None:  # type: ignore[no-untyped-def]
        # always on: every fit is measured and reports its parameters, every predict
        # writes its CSV (instantiate_trainer adds them to the Trainer's callbacks)
        for name, callback in CALLBACK_OPTIONS.items():
            parser.add_class_arguments(callback, name)
        # the data's shape and column names go into the model, and so into its checkpoints
        for name in ("in_features", "out_features", "feature_names", "target_names"):
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def parse_arguments(self, parser: Any, args: ArgsType) -> None:
        if args is None:
            args = sys.argv[1:]
        if isinstance(args, list):
            args = with_checkpoint_model(args)
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        model = (self.config[subcommand] if subcommand else self.config).get("model")
        init_args = getattr(model, "init_args", None) or {}
        # the shapes typed by hand, if any: the data gives them (checked in _prepare); a
        # value equal to the signature's default cannot be told from no value at all
        defaults = _defaults(getattr(model, "class_path", None))
        self._given_shapes = {
            name: init_args.get(name)
            for name in ("in_features", "out_features")
            if init_args.get(name) not in (None, defaults.get(name))
        }
        check_seeds(self.config[subcommand] if subcommand else self.config)
        # LightningCLI reads --ckpt_path next, to take the model's settings from it: a
        # missing, unsafe or foreign file, or another model's, is refused here first
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if subcommand == "predict" and path is None:
            raise InputError(
                "predict needs --ckpt_path (a trained model's checkpoint, such as "
                "lightning_logs/.../checkpoints/last.ckpt): without one it would predict with "
                "untrained, random weights"
            )
        if (
            subcommand
            and str(path) in SPECIAL_CHECKPOINTS
            and (subcommand != "fit" or str(path) == "best")
        ):
            raise InputError(
                f"{subcommand} --ckpt_path {path} names a checkpoint of a fit run in the same "
                f"process, and each gd-lightning command runs one subcommand: pass the "
                f"checkpoint's file (lightning_logs/.../checkpoints/*.ckpt)"
            )
        if path is None or str(path) in SPECIAL_CHECKPOINTS:
            return
        configured = getattr(self.config[subcommand].get("model"), "class_path", None)
        check_saved_settings(Path(path), read_checkpoint(Path(path)), configured)

    def before_instantiate_classes(self) -> None:
        self._default_logger: Logger | None = None
        #: the checkpoint ``fit --ckpt_path last`` continues from, where found here
        self._last_checkpoint: Path | None = None
        if self.subcommand == "fit" and str(self.config["fit"].get("ckpt_path")) == "last":
            self._continue_last_run(self.config["fit"])
        elif self.subcommand in ("validate", "test", "predict"):
            self._read_by_model_columns(self.config[self.subcommand])

    def _continue_last_run(self, config: Any) -> None:
        """``fit --ckpt_path last`` continues the latest run that saved a ``last.ckpt``.

        Lightning looks for ``last.ckpt`` in the checkpoint folder of *this* run, which a
        logger that gives each run a ``version_N`` folder has only just made: it would
        train a new run from scratch. So the logger is pointed at the latest earlier
        ``version_N`` folder holding a last checkpoint (its checkpoints, logs and config
        continue there); with nothing to resume the command is refused, not run afresh.
        """
        trainer = config["trainer"]
        callbacks = trainer.get("callbacks") or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        if any(_is_class(c, ModelCheckpoint) for c in callbacks):
            return  # a ModelCheckpoint of the user's own decides where its checkpoints go
        root = Path(trainer.get("default_root_dir") or os.getcwd())
        loggers = trainer.get("logger")
        first = loggers[0] if isinstance(loggers, list) and loggers else loggers
        dirpath = config["checkpoint"].get("dirpath")
        if dirpath:
            folder = Path(dirpath)
        elif first is False or (isinstance(loggers, list) and not loggers):
            folder = root / "checkpoints"
        elif first is None or first is True:
            # Lightning's default logger, as it builds it (TensorBoard when installed)
            tensorboard = bool(importlib.util.find_spec("tensorboard") or
                               importlib.util.find_spec("tensorboardX"))  # fmt: skip
            logger_class = TensorBoardLogger if tensorboard else CSVLogger
            version = _latest_version_with_last(root / "lightning_logs")
            if version is None:
                raise _nothing_to_resume(root / "lightning_logs" / "version_*" / "checkpoints")
            self._default_logger = logger_class(save_dir=str(root), version=version)
            folder = root / "lightning_logs" / f"version_{version}" / "checkpoints"
        elif _is_class(first, TensorBoardLogger) or _is_class(first, CSVLogger):
            init_args = first.init_args
            versions = Path(init_args.get("save_dir") or ".") / (init_args.get("name") or "")
            version = init_args.get("version")
            if version is None:
                version = _latest_version_with_last(versions)
                if version is None:
                    raise _nothing_to_resume(versions / "version_*" / "checkpoints")
                init_args["version"] = version
            name = version if isinstance(version, str) else f"version_{version}"
            folder = versions / name / "checkpoints"
        else:
            return  # another logger: Lightning finds its last checkpoint itself
        lasts = _last_checkpoints(folder)
        if not lasts:
            raise _nothing_to_resume(folder)
        self._last_checkpoint = max(lasts, key=lambda p: p.stat().st_mtime_ns)  # as Lightning
        print(f"continuing the run in {folder.parent} from its last checkpoint")

    def _read_by_model_columns(self, config: Any) -> None:
        """validate, test and predict read the data by the columns of the checkpoint's
        model (its names, in its order): a CSV with its columns in another order, or
        with more columns, gives the same predictions; one missing a column is refused."""
        model_args = getattr(config.get("model"), "init_args", None) or {}
        features, targets = model_args.get("feature_names"), model_args.get("target_names")
        data_args = getattr(config.get("data"), "init_args", None)
        if not features or data_args is None or "features" not in data_args:
            return
        for option, given, known in (("features", data_args.get("features"), features),
                                     ("targets", data_args.get("targets"), targets)):  # fmt: skip
            if given and known and sorted(given) != sorted(known):
                raise InputError(
                    f"data.{option} is {', '.join(given)} but the model was trained on "
                    f"{', '.join(known)}: leave data.{option} out, the checkpoint names them"
                )
        if data_args.get("features_path"):  # columns in order: only their number is known
            x_path, y_path = data_args.get("features_path"), data_args.get("targets_path")
            widths = npy_widths(Path(x_path), Path(y_path) if y_path else None)
            check_npy_widths(widths, x_path, y_path, features, targets or [])
        data_args["features"], data_args["targets"] = list(features), list(targets or [])

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        if getattr(self, "_default_logger", None) is not None:
            kwargs = {"logger": self._default_logger, **kwargs}
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer = config.get("trainer") or {}
        callbacks = trainer.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, list) else [callbacks]
        if trainer.get("enable_progress_bar") is False:
            # the flag wins over a config's progress-bar settings (Lightning refuses both)
            callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
        ours = [config["report"], config["convergence"]]
        if self.subcommand == "predict":
            ours.append(config["predictions"])
        if self.subcommand == "predict":
            # predicting writes its CSV and nothing else: no checkpoints, no run folder, no
            # config copy
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        if self.subcommand in ("validate", "test", "predict"):
            # the fit's callback states do not concern a run that only reads the weights
            warnings.filterwarnings("ignore", message=CALLBACK_STATES_WARNING)
            kwargs = {"logger": False, "enable_checkpointing": False, **kwargs}
            self.save_config_callback = None
        own_checkpoint = any(isinstance(c, ModelCheckpoint) for c in callbacks)
        if (
            self.subcommand in (None, "fit")
            and not own_checkpoint
            and (trainer.get("enable_checkpointing") is not False)
        ):
            ours.append(config["checkpoint"])
        if self.subcommand and config.get("ckpt_path"):
            # resuming a run continues in its folder: its config is written again
            self.save_config_kwargs = {**self.save_config_kwargs, "overwrite": True}
        plugins = trainer.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, list) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(AtomicCheckpointIO())  # a kill mid-save leaves no torn file
        try:
            return super().instantiate_trainer(
                **{"callbacks": callbacks + ours, "plugins": plugins, **kwargs}
            )
        except InputError:
            raise
        except (MisconfigurationException, ValueError) as err:
            # the Trainer checks its own options as it is built: its wording, in one line
            reason = " ".join(str(err).split()) or type(err).__name__
            raise InputError(
                f"the trainer options were refused: {reason} (fix the trainer.* option; "
                f"gd-lightning {self.subcommand or 'fit'} --help lists them)"
            ) from None

    # LightningCLI calls before_<subcommand>() just before the Trainer runs it
    def before_fit(self) -> None:
        self._prepare("fit")

    def before_validate(self) -> None:
        self._prepare("validate")

    def before_test(self) -> None:
        self._prepare("test")

    def before_predict(self) -> None:
        self._prepare("predict")

    def _prepare(self, stage: str) -> None:
        """Check the data, the shapes given by hand and the checkpoint before the Trainer
        writes anything."""
        # float64 data under --trainer.precision 64-true, read before the Trainer runs
        self.datamodule.dtype = dtype_for(self.trainer.precision)
        known = self.model.hparams.get("feature_names")
        if known and stage != "fit":  # read the data by the model's columns
            targets = list(self.model.hparams.get("target_names") or [])
            self.datamodule.use_model_columns(list(known), targets)
        self.datamodule.setup(stage)
        if stage in ("fit", "predict"):
            for folder in self._output_folders():
                check_writable(folder)
        if stage == "predict":
            self._check_predictions_path()
        config = self.config_init[self.subcommand]
        for name, value in self._given_shapes.items():
            actual = getattr(self.datamodule, name)
            if value is not None and value != actual:
                names = getattr(self.datamodule, "feature_names" if name == "in_features"
                                else "target_names")  # fmt: skip
                raise InputError(
                    f"model.{name} is {value} but the data has {actual} "
                    f"({', '.join(names)}): leave model.{name} out, it is taken from the data"
                )
        checkpoint = config.get("ckpt_path")
        if str(checkpoint) == "last" and stage == "fit":
            checkpoint = self._last_checkpoint  # None where Lightning finds it itself
        if checkpoint is not None and str(checkpoint) not in SPECIAL_CHECKPOINTS:
            resume = stage == "fit"
            max_epochs = self.trainer.max_epochs if resume else None
            check_checkpoint(Path(checkpoint), self.model, resume, max_epochs)
        if stage == "fit" and self.model.hparams.get("lr") == "auto":
            # what the ConvergenceMonitor will choose as the fit starts, refused (memory
            # map, no curvature) now, before the Trainer makes the run's folder
            if isinstance(self.datamodule, TensorDataModule):
                self.model.set_standardization(self.datamodule.standardization)  # as fit will
            reference = reference_of(self.datamodule, self.model)
            gap = config["convergence"].report_gap
            auto_lr(reference, self.datamodule, self.model.theta().cpu(), gap)
        option = {"validate": "val_fraction", "test": "test_fraction"}.get(stage)
        if option and not getattr(self.datamodule.hparams, option, 1):
            what = "validation" if stage == "validate" else "test"
            raise InputError(f"the data has no {what} rows: set data.{option} above 0")
        # never unpickle anything but tensors and plain values from a checkpoint
        if config.get("weights_only") is None:
            config["weights_only"] = True

    def _check_predictions_path(self) -> None:
        """Refuse, in one line, a predictions file that cannot be written (a folder, under
        a file, in a folder that takes no files), before predicting rather than after."""
        writer = self.config_init[self.subcommand]["predictions"]
        checkpoint = self.config_init[self.subcommand].get("ckpt_path")
        if writer.path is not None:
            target = Path(writer.path)
        elif checkpoint is not None:
            # PredictionWriter's default: beside the checkpoint's run folder
            folder = Path(checkpoint).parent
            target = (folder.parent if folder.name == "checkpoints" else folder) / "predictions.csv"
        else:
            return
        fix = "choose another file with --predictions.path"
        if target.is_dir():
            raise InputError(f"cannot write the predictions to {target}: it is a folder; {fix}")
        check_writable(target.parent, what="the predictions", fix=fix)

    def _output_folders(self) -> list[Path]:
        """Where this run will write: its loggers' folders, the checkpoints', the root."""
        trainer = self.trainer
        folders = [Path(trainer.default_root_dir)]
        for logger in trainer.loggers:
            root = getattr(logger, "root_dir", None) or logger.save_dir
            if root:
                folders.append(Path(root))
        dirpath = getattr(trainer.checkpoint_callback, "dirpath", None)
        if dirpath:
            folders.append(Path(dirpath))
        return folders


def check_writable(
    folder: Path,
    what: str = "the run's files",
    fix: str = "choose another folder with --trainer.default_root_dir or the logger's save_dir",
) -> None:
    """Refuse, in one line, a folder that cannot be created or written to, before any
    training rather than when the first file is due; the line names ``what`` was to go
    there and the ``fix``."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not writable"
    else:
        try:
            with tempfile.TemporaryFile(dir=existing) as probe:
                probe.write(b"\0" * 4096)  # a full disk refuses even this much
                probe.flush()
        except OSError as err:
            problem = f"{existing}: {err.strerror or err}"
    if problem:
        raise InputError(f"cannot write {what} to {folder} ({problem}): {fix}")


#: the callbacks every run gets, by the name of their options (``--convergence.verbose``)
CALLBACK_OPTIONS = {
    "report": ParameterReport,
    "convergence": ConvergenceMonitor,
    "predictions": PredictionWriter,
    "checkpoint": FitCheckpoint,
}


def with_checkpoint_model(args: list[str]) -> list[str]:
    """``args`` of ``validate``, ``test`` or ``predict`` with a ``--ckpt_path`` and no
    model given: with the checkpoint's model (one of :func:`package_models`, with the
    settings it was trained with, checked by :func:`check_saved_settings` before
    anything is imported) and, when only ``--data.*`` options are given, a
    :class:`~gd_lightning.TabularDataModule`; so ``gd-lightning predict --ckpt_path
    model.ckpt --data.csv_path new.csv`` is a whole command.

    Example:
        >>> with_checkpoint_model(["predict", "--config", "c.yaml", "--ckpt_path", "m.ckpt"])
        ['predict', '--config', 'c.yaml', '--ckpt_path', 'm.ckpt']
    """
    if not args or args[0] not in ("validate", "test", "predict"):
        return args
    options = args[1:]
    path = _option_value(options, "--ckpt_path")
    if path is None or path in SPECIAL_CHECKPOINTS:
        return args
    chosen = {name for name in ("--model", "--data", "--config", "-c")
              if _option_value(options, name) is not None}  # fmt: skip
    extra = []
    if not chosen & {"--model", "--config", "-c"}:
        checkpoint = read_checkpoint(Path(path))
        check_saved_settings(Path(path), checkpoint, configured=None)
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        class_path = hparams.pop("_class_path", None)
        hparams.pop("_instantiator", None)
        if class_path is None:
            raise InputError(
                f"{path} does not name the model it holds: pass the config it was trained "
                f"with, --config config.yaml of its run folder"
            )
        extra += ["--model", json.dumps({"class_path": class_path, "init_args": hparams})]
    if not chosen and any(option.startswith("--data.") for option in options):
        extra += ["--data", "gd_lightning.TabularDataModule"]
    return [args[0], *extra, *options]


def _option_value(options: list[str], name: str) -> str | None:
    """The value of ``name`` among command-line ``options`` (``--name value`` or
    ``--name=value``; the last one counts), or ``None``."""
    value = None
    for i, option in enumerate(options):
        if option == name and i + 1 < len(options):
            value = options[i + 1]
        elif option.startswith(name + "="):
            value = option[len(name) + 1 :]
    return value


def _is_class(config: Any, cls: type) -> bool:
    """Whether ``config`` (a ``class_path`` and ``init_args`` namespace from the user's
    config, whose class jsonargparse has imported) builds a ``cls``."""
    class_path = getattr(config, "class_path", None)
    if not isinstance(class_path, str):
        return isinstance(config, cls)
    module, _, name = class_path.rpartition(".")
    found = getattr(sys.modules.get(module), name, None)
    return isinstance(found, type) and issubclass(found, cls)


def _last_checkpoints(folder: Path) -> list[Path]:
    """The last checkpoints in ``folder`` as Lightning finds them: ``last.ckpt``,
    ``last-v1.ckpt``, ..."""
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"^{ModelCheckpoint.CHECKPOINT_NAME_LAST}(-v?\d+)?$")
    extension = ModelCheckpoint.FILE_EXTENSION
    return [p for p in folder.iterdir() if p.suffix == extension and pattern.match(p.stem)]


def _latest_version_with_last(versions: Path) -> int | None:
    """The highest ``N`` of the ``version_N`` folders in ``versions`` whose
    ``checkpoints`` folder holds a last checkpoint."""
    if not versions.is_dir():
        return None
    numbers = []
    for folder in versions.iterdir():
        match = re.fullmatch(r"version_(\d+)", folder.name)
        if match and folder.is_dir() and _last_checkpoints(folder / "checkpoints"):
            numbers.append(int(match.group(1)))
    return max(numbers, default=None)


def _nothing_to_resume(where: Path) -> InputError:
    return InputError(
        f"nothing to resume: no last.ckpt in {where} (a fit saves one with "
        f"--checkpoint.save_last true): pass a checkpoint file to --ckpt_path, or leave "
        f"--ckpt_path out to start a fresh fit"
    )


#: ckpt_path values Lightning resolves itself
SPECIAL_CHECKPOINTS = ("last", "best", "hpc", "registry")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, read with ``torch.load(weights_only=True)``; a missing,
    unreadable or foreign file, or one carrying any other pickled object, is refused in
    one line before anything in it can run."""
    if not path.is_file():
        raise InputError(f"no checkpoint at {path}: check --ckpt_path")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(
            f"{path} holds objects other than tensors and plain values, so it was not loaded "
            f"and nothing in it ran: use a checkpoint written by gd-lightning"
        ) from None
    except Exception as err:  # a truncated or foreign file: zip, EOF, magic-number errors
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path} is not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise InputError(f"{path} is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def package_models() -> dict[str, type]:
    """This package's own model classes by every full path that names them
    (``gd_lightning.LinearRegression`` and ``gd_lightning.models.linear.LinearRegression``)."""
    import gd_lightning

    models: dict[str, type] = {}
    for name in gd_lightning.__all__:
        cls = getattr(gd_lightning, name)
        concrete = cls is not RegressionModule
        if isinstance(cls, type) and issubclass(cls, RegressionModule) and concrete:
            models[f"gd_lightning.{name}"] = cls
            models[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return models


#: model arguments that name code (a class or factory to import): never taken from a checkpoint
CODE_ARGUMENTS = ("optimizer", "scheduler")


def check_saved_settings(path: Path, checkpoint: dict[str, Any], configured: str | None) -> None:
    """Refuse, in one line, a checkpoint whose saved model settings would make the command
    line import anything: LightningCLI hands ``hyper_parameters`` to jsonargparse, which
    imports the class named in ``_class_path`` (and any class path among the values).

    The class must be one of this package's models or the one the config names, compared
    by its full path before anything is imported; every other setting must be an argument
    of that class that names no code, holding plain values (no mapping, which could name
    a class to build).
    """
    settings = checkpoint.get("hyper_parameters") or {}
    if not isinstance(settings, dict):
        raise InputError(f"{path} is not a gd-lightning checkpoint (its hyper_parameters are "
                         f"not a mapping): use a checkpoint written by gd-lightning")  # fmt: skip
    saved = settings.get("_class_path")
    if saved is None:
        return
    own = package_models()
    if not isinstance(saved, str) or (saved not in own and saved != configured):
        named = configured or "one of " + ", ".join(sorted({c.__name__ for c in own.values()}))
        raise InputError(
            f"{path} holds a model of class {str(saved)[:80]!r}, not {named}, so it was not "
            f"loaded and nothing it names was imported: pass the config it was trained with "
            f"(config.yaml in its run folder)"
        )
    if configured and saved != configured:
        shown, wanted = saved.rsplit(".", 1)[-1], configured.rsplit(".", 1)[-1]
        if shown == wanted:
            shown, wanted = saved, configured
        raise InputError(
            f"{path} holds a {shown}, but the model given is a {wanted}: pass the config it "
            f"was trained with (config.yaml in its run folder)"
        )
    cls = own.get(saved)
    accepted = set(_defaults(saved, every=True)) if cls is None else set(_arguments(cls))
    for name, value in settings.items():
        if name in ("_class_path", "_instantiator"):
            continue  # LightningCLI drops _instantiator; _class_path is checked above
        if name in CODE_ARGUMENTS or name not in accepted or not _plain(value):
            raise InputError(
                f"{path} holds a setting {str(name)[:40]!r} that {saved.rsplit('.', 1)[-1]} "
                f"does not take as a plain value, so it was not loaded: use a checkpoint "
                f"written by gd-lightning"
            )


def _arguments(cls: type) -> list[str]:
    """The names of the arguments of ``cls`` and the classes it derives from (what
    ``save_hyperparameters`` records)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names += list(inspect.signature(vars(klass)["__init__"]).parameters)[1:]
    return names


def _plain(value: Any) -> bool:
    """Whether ``value`` is plain data that names no class: numbers, text, lists of them."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list | tuple) and all(_plain(item) for item in value)


def check_seeds(config: Any) -> None:
    """Refuse, in one line, a seed that Lightning or PyTorch cannot take, before it is
    used (both raise a traceback)."""
    seed = config.get("seed_everything")
    if _is_int(seed) and not MIN_SEED <= seed <= MAX_SEED:
        raise InputError(
            f"seed_everything must be between {MIN_SEED} and {MAX_SEED}, got {seed}: "
            f"choose a smaller seed"
        )
    data = config.get("data")
    init_args = getattr(data, "init_args", None) or {}
    data_seed = init_args.get("seed") if hasattr(init_args, "get") else None
    if _is_int(data_seed) and not 0 <= data_seed < 1 << 64:
        raise InputError(
            f"data.seed must be between 0 and {(1 << 64) - 1} (a 64-bit seed), got {data_seed}: "
            f"choose a smaller seed"
        )


def _is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an integer (and not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_checkpoint(
    path: Path, model: RegressionModule, resume: bool = False, max_epochs: int | None = None
) -> None:
    """Refuse, in one line, a checkpoint whose parameters are not ``model``'s (by name,
    type, shape or value: every entry a finite floating-point tensor, every scale of the
    standardization positive), or, to ``resume`` a fit, one without the training state
    (a weights-only checkpoint) or saved after more epochs than ``max_epochs``."""
    checkpoint = read_checkpoint(path)
    state = checkpoint["state_dict"]
    expected = model.state_dict()
    fix = "pass the config it was trained with (config.yaml in its run folder)"
    if not state:
        raise InputError(f"{path} holds no parameters (its state_dict is empty): use a "
                         f"checkpoint written by gd-lightning")  # fmt: skip
    if set(state) != set(expected):
        saved_class = (checkpoint.get("hyper_parameters") or {}).get("_class_path", "")
        shown = str(saved_class).rsplit(".", 1)[-1]
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if shown and shown != type(model).__name__:
            raise InputError(f"{path} holds a {shown}, not a {type(model).__name__}: {fix}")
        parts = [f"lacks {', '.join(missing)}"] if missing else []
        parts += [f"has {', '.join(map(str, unexpected))} too"] if unexpected else []
        raise InputError(
            f"{path} does not hold a {type(model).__name__}'s parameters (it "
            f"{' and '.join(parts)}): {fix}"[:400]
        )
    for name, tensor in expected.items():
        saved = state[name]
        if not isinstance(saved, torch.Tensor):
            raise InputError(f"{path} holds {name} as a {type(saved).__name__}, not a tensor: "
                             f"use a checkpoint written by gd-lightning")  # fmt: skip
        if saved.shape != tensor.shape:
            raise InputError(
                f"{path} holds {name} of shape {tuple(saved.shape)} but this model's is "
                f"{tuple(tensor.shape)}: it was trained on other columns; {fix}"
            )
        if tensor.is_floating_point() and not saved.is_floating_point():
            raise InputError(f"{path} holds {name} as {saved.dtype}, not floating-point "
                             f"numbers: use a checkpoint written by gd-lightning")  # fmt: skip
        if saved.is_floating_point() and not bool(torch.isfinite(saved).all()):
            raise InputError(f"{path} holds {name} with NaN or infinite values: use a checkpoint "
                             f"saved before the run went wrong")  # fmt: skip
        if name.endswith("_scale") and name.startswith("scaling.") and not bool((saved > 0).all()):
            raise InputError(f"{path} holds a standardization ({name}) with a scale that is not "
                             f"positive: use a checkpoint written by gd-lightning")  # fmt: skip
    if resume:
        missing = [key for key in RESUME_KEYS if key not in checkpoint]
        if missing:
            raise InputError(
                f"{path} holds the weights only (no {', '.join(missing)}), so a fit cannot "
                f"resume from it: resume from last.ckpt or an epoch=...ckpt the fit saved, "
                f"or start a fresh fit without --ckpt_path"
            )
        # the epochs the fit loop counts as done, where Lightning restores them from
        done = checkpoint["loops"]
        for key in ("fit_loop", "epoch_progress", "current", "completed"):
            done = done.get(key) if isinstance(done, dict) else None
        if max_epochs is not None and max_epochs != -1 and _is_int(done) and done > max_epochs:
            raise InputError(
                f"{path} was saved after {done} epochs, more than trainer.max_epochs "
                f"({max_epochs}): set --trainer.max_epochs above {done} to train on from it"
            )


#: what a checkpoint must hold for a fit to resume from it (what Lightning restores)
RESUME_KEYS = ("optimizer_states", "loops", "epoch", "global_step")


def _defaults(class_path: str | None, every: bool = False) -> dict[str, Any]:
    """The default arguments of the class at ``class_path`` (a class the config names,
    which jsonargparse has imported already), or with ``every`` all its arguments and
    those of the classes it derives from (``None`` where no default); empty when unknown."""
    if not class_path:
        return {}
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return {}
    if every:
        return dict.fromkeys(_arguments(cls))
    parameters = inspect.signature(cls).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def cli(args: ArgsType = None, run: bool = True) -> GDLightningCLI:
    """Build the command line on ``args`` (``sys.argv`` when ``None``) and run it.

    With ``run=False`` the model, data and Trainer are only built: ``args`` then
    holds no subcommand, and the caller runs ``trainer.fit(...)`` itself.
    """
    check_config_files(sys.argv[1:] if args is None else args)
    with framework_notices_off():
        return GDLightningCLI(
            RegressionModule,
            TensorDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            # the model's own `optimizer` argument chooses the optimizer; manual mode has none
            auto_configure_optimizers=False,
            save_config_callback=_SaveConfig,
            # the seed a run gets when none is given, said without Lightning's warning
            seed_everything_default=0,
            # these runs are short: keep every step's loss
            trainer_defaults={"log_every_n_steps": 1},
            # a wrong option raises instead of printing the whole usage: main() says it in a line
            parser_kwargs={
                "prog": "gd-lightning",
                "description": DESCRIPTION,
                "exit_on_error": False,
            },
            args=args,
            run=run,
        )


#: the largest config file read: a config is a page of options, not data
CONFIG_MAX_BYTES = 1 << 20
#: the most YAML nodes a config may stand for once its aliases are expanded: a page of
#: options is a few hundred; a "billion laughs" alias bomb is billions
CONFIG_MAX_NODES = 100_000


def check_config_files(args: ArgsType) -> None:
    """Refuse, in one line, a ``--config`` file that is too large, not text, not valid
    YAML (naming its line and the problem), not a mapping of options, or whose aliases
    expand beyond :data:`CONFIG_MAX_NODES` nodes, before jsonargparse reads it (which
    would expand an alias bomb until memory runs out)."""
    if not isinstance(args, list | tuple):
        return
    words = [str(word) for word in args]
    for index, word in enumerate(words):
        if word.startswith("--config="):
            _check_config_file(Path(word.split("=", 1)[1]))
        elif word in ("-c", "--config") and index + 1 < len(words):
            _check_config_file(Path(words[index + 1]))


def _check_config_file(path: Path) -> None:
    if not path.is_file():
        return  # jsonargparse names a missing file itself
    try:
        size = path.stat().st_size
        if size > CONFIG_MAX_BYTES:
            raise InputError(
                f"config {path} is {size:,} bytes, more than the {CONFIG_MAX_BYTES:,} a config "
                f"may have: pass a YAML file of options (fit --print_config writes one)"
            )
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read config {path} ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if "\0" in text or not text and raw:
        raise InputError(
            f"config {path} is not a text file (it holds binary data): pass a YAML file of "
            f"options (gd-lightning fit --print_config writes one)"
        )
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "not valid YAML"
        raise InputError(
            f"config {path}{where}: {problem} (it is not valid YAML): fix the file"
        ) from None
    except yaml.YAMLError as err:
        raise InputError(f"config {path} is not valid YAML ({err}): fix the file") from None
    if root is None:
        return
    if not isinstance(root, yaml.MappingNode):
        shown = text.strip().splitlines()[0][:60]
        raise InputError(
            f"config {path} is not a YAML mapping of options (it starts {shown!r}; a data file "
            f"goes to --data.csv_path): pass a config such as configs/crop_yields.yaml"
        )
    if _expanded_nodes(root) > CONFIG_MAX_NODES:
        raise InputError(
            f"config {path} uses YAML aliases that expand to more than {CONFIG_MAX_NODES:,} "
            f"values (an alias bomb?): write the options out without aliases"
        )


def _expanded_nodes(root: yaml.Node) -> int:
    """How many nodes the YAML graph ``root`` stands for with every alias expanded,
    counted without expanding it (a shared node's count is reused), capped just above
    :data:`CONFIG_MAX_NODES`; an alias inside the node it names counts as the cap."""
    cap = CONFIG_MAX_NODES + 1
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path from the root
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finishing = stack.pop()
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if finishing:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(cap, 1 + sum(sizes[id(child)] for child in children))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            return cap
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return sizes[id(root)]


#: Lightning's notices that say nothing about the user's fit: a validation_step with
#: no validation split is how this package's models meet data without one; the
#: deprecation is Lightning's own use of a PyTorch name
FRAMEWORK_WARNINGS = (
    # validate, test and predict given only a checkpoint pass LightningCLI the model it holds
    "LightningCLI's args parameter is intended to run from within Python",
    "You defined a `validation_step` but have no `val_dataloader`",
    # one batch an epoch logs its step values every log_every_n_steps steps all the same
    r"The number of training batches \(1\) is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
#: Lightning's notice, when a checkpoint's callbacks are not in the Trainer, that their
#: states are not restored: a fit's checkpoint callback, absent from predict
CALLBACK_STATES_WARNING = "Be aware that when using `ckpt_path`, callbacks used to create"
#: the advertisement Lightning prints at every start
FRAMEWORK_TIP = "💡 Tip:"


class _NoTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(FRAMEWORK_TIP)


@contextmanager
def framework_notices_off() -> Iterator[None]:
    """Leave out, while the command runs, Lightning's lines that do not concern the fit
    (:data:`FRAMEWORK_WARNINGS`, the tip); everything else it says is shown."""
    tip_filter = _NoTip()
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch.utilities.rank_zero",)]
    with warnings.catch_warnings():
        for message in FRAMEWORK_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.addFilter(tip_filter)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(tip_filter)


def main(args: ArgsType = None) -> None:
    """Entry point of ``gd-lightning``: a user's mistake ends in one line and exit code 2.

    Set the environment variable ``GD_LIGHTNING_DEBUG=1`` to see the full traceback.
    """
    try:
        cli(args)
    except (SystemExit, KeyboardInterrupt) as err:
        code = interrupted_exit_code(err)
        if code is None:
            raise
        name = "SIGTERM" if code == SIGTERM_EXIT else "SIGINT (Ctrl+C)"
        print(
            f"gd-lightning: stopped by {name}; the checkpoints saved so far are kept "
            f"(resume a fit with --ckpt_path last)",
            file=sys.stderr,
        )
        sys.exit(code)
    except Exception as err:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        cause = _input_error(err)
        if cause is not None:
            message = str(cause)
        elif isinstance(err, argparse.ArgumentError):
            message = option_error(str(err))
        else:
            raise
        print(f"gd-lightning: error: {message}", file=sys.stderr)
        sys.exit(2)


#: the exit codes of a process ended by SIGTERM and SIGINT, as a shell reports them (128 + n)
SIGTERM_EXIT = 128 + signal.SIGTERM
SIGINT_EXIT = 128 + signal.SIGINT


def interrupted_exit_code(err: BaseException) -> int | None:
    """The exit code of a run stopped by a signal, or ``None`` for any other exit.

    Lightning ends a fit that receives SIGTERM with ``SIGTERMException``, a
    ``SystemExit`` without a code (which a shell would read as success), and one
    interrupted by Ctrl+C with ``sys.exit(1)`` while it handles the
    ``KeyboardInterrupt``, which Python keeps as the exit's context.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SIGTERMException):
            return SIGTERM_EXIT
        if isinstance(current, KeyboardInterrupt):
            return SIGINT_EXIT
        current = current.__cause__ or current.__context__
    return None


def command() -> None:
    """The installed ``gd-lightning`` (and ``python -m gd_lightning``): :func:`main`, then
    a quick exit. The process ends right after, so the objects its imports made
    (torch's and Lightning's, millions) are moved out of the garbage collector's sight
    (``gc.freeze``) instead of being traversed once more on the way out, which took
    about a second."""
    try:
        main()
    finally:
        gc.freeze()


def option_error(message: str) -> str:
    """jsonargparse's nested report of a wrong option, in one line: the option's full
    name, the most specific reason, and where to look.

    Example:
        >>> report = '''Parser key "model":
        ...   Does not validate against any of the Union subtypes
        ...   Errors:
        ...     - Problem with given class_path 'gd_lightning.LinearRegression':
        ...         Parser key "optimization":
        ...           Expected a typing.Literal['automatic', 'manual']. Got value: magic
        ...     - Expected a <class 'NoneType'>'''
        >>> option_error(report).split(" (gd-lightning")[0]
        "model.optimization: Expected a typing.Literal['automatic', 'manual']. Got value: magic"
    """
    keys: list[str] = []
    reasons: list[str] = []
    for raw in message.splitlines():
        line = raw.strip().lstrip("-").strip()
        key = re.match(r'Parser key "([^"]+)":\s*(.*)', line)
        if key:
            keys.append(key.group(1))
            line = key.group(2)
        if line and not line.startswith(_NOISE):
            reasons.append(line)
    specific = [r for r in reasons if not r.startswith("Expected a path but")] or reasons
    where = ".".join(dict.fromkeys(keys))
    if where.split(".")[-1] == "lr" and "Literal['auto']" in message:
        # a learning rate that is neither a number nor auto (nan, a word): say what lr takes
        given = re.findall(r"Given value: (?!NestedArg)(.*)", message)
        got = f", got {given[0].strip()}" if given else ""
        return f"{where}: lr must be a positive finite number or auto{got}: set {where}"
    reason = specific[-1] if specific else message.strip().splitlines()[0]
    hint = "(gd-lightning <subcommand> --help lists the options)"
    return f"{where + ': ' if where else ''}{reason} {hint}"


#: lines of jsonargparse's reports that say how it searched, not what is wrong
_NOISE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Given value",
    "Expected a <class 'NoneType'>",
    "Problem with given class_path",
)


def _input_error(err: BaseException | None) -> InputError | None:
    """The user's mistake behind ``err``, which jsonargparse may have wrapped, if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, InputError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
