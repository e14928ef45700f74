"""The ``gd-lightning`` command: LightningCLI over this package's models and data."""

import argparse
import gc
import importlib
import inspect
import json
import logging
import os
import pickle
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import ArgsType, LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins import CheckpointIO

from gd_lightning.callbacks import (
    ConvergenceMonitor,
    FitCheckpoint,
    ParameterReport,
    PredictionWriter,
)
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
        # LightningCLI reads --ckpt_path next, to take the model's settings from it: a
        # missing, unsafe or foreign file, or another model's, is refused here first
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path is None or str(path) in SPECIAL_CHECKPOINTS:
            return
        saved = (read_checkpoint(Path(path)).get("hyper_parameters") or {}).get("_class_path")
        configured = self.config[subcommand].get("model")
        configured = getattr(configured, "class_path", None)
        if saved and configured and saved.rsplit(".", 1)[-1] != configured.rsplit(".", 1)[-1]:
            raise InputError(
                f"{path} holds a {saved.rsplit('.', 1)[-1]}, but the model given is a "
                f"{configured.rsplit('.', 1)[-1]}: pass the config it was trained with "
                f"(config.yaml in its run folder)"
            )

    def before_instantiate_classes(self) -> None:
        """validate, test and predict read the data by the columns of the checkpoint's
        model (its names, in its order): a CSV with its columns in another order, or
        with more columns, gives the same predictions; one missing a column is refused."""
        if self.subcommand not in ("validate", "test", "predict"):
            return
        config = self.config[self.subcommand]
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
        return super().instantiate_trainer(
            **{"callbacks": callbacks + ours, "plugins": plugins, **kwargs}
        )

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
        if checkpoint is not None and str(checkpoint) not in SPECIAL_CHECKPOINTS:
            check_checkpoint(Path(checkpoint), self.model)
        option = {"validate": "val_fraction", "test": "test_fraction"}.get(stage)
        if option and not getattr(self.datamodule.hparams, option, 1):
            what = "validation" if stage == "validate" else "test"
            raise InputError(f"the data has no {what} rows: set data.{option} above 0")
        # never unpickle anything but tensors and plain values from a checkpoint
        if config.get("weights_only") is None:
            config["weights_only"] = True

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


def check_writable(folder: Path) -> None:
    """Refuse, in one line, a folder that cannot be created or written to, before any
    training rather than when the first file is due."""
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
        raise InputError(
            f"cannot write the run's files to {folder} ({problem}): choose another folder "
            f"with --trainer.default_root_dir or the logger's save_dir"
        )


#: the callbacks every run gets, by the name of their options (``--convergence.verbose``)
CALLBACK_OPTIONS = {
    "report": ParameterReport,
    "convergence": ConvergenceMonitor,
    "predictions": PredictionWriter,
    "checkpoint": FitCheckpoint,
}

#: the models a checkpoint may name, by their full class paths
OWN_MODELS = (
    "gd_lightning.LinearRegression",
    "gd_lightning.QuadraticRegression",
    "gd_lightning.models.LinearRegression",
    "gd_lightning.models.QuadraticRegression",
    "gd_lightning.models.linear.LinearRegression",
    "gd_lightning.models.quadratic.QuadraticRegression",
)


def with_checkpoint_model(args: list[str]) -> list[str]:
    """``args`` of ``validate``, ``test`` or ``predict`` with a ``--ckpt_path`` and no
    model given: with the checkpoint's model (one of :data:`OWN_MODELS`, with the
    settings it was trained with) and, when only ``--data.*`` options are given, a
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
        hparams = dict(read_checkpoint(Path(path)).get("hyper_parameters") or {})
        class_path = hparams.pop("_class_path", None)
        hparams.pop("_instantiator", None)
        if class_path not in OWN_MODELS:
            raise InputError(
                f"{path} does not hold one of gd_lightning's models "
                f"({class_path or 'it names none'}): pass the config it was trained with, "
                f"--config config.yaml of its run folder"
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


def check_checkpoint(path: Path, model: RegressionModule) -> None:
    """Refuse, in one line, a checkpoint whose parameters are not ``model``'s, by name or
    by shape."""
    checkpoint = read_checkpoint(path)
    state = checkpoint["state_dict"]
    expected = model.state_dict()
    if set(state) != set(expected):
        saved_class = (checkpoint.get("hyper_parameters") or {}).get("_class_path", "")
        shown = saved_class.rsplit(".", 1)[-1] or f"model with {', '.join(sorted(state))}"
        raise InputError(
            f"{path} holds a {shown}, not a {type(model).__name__}: pass the config it was "
            f"trained with (config.yaml in its run folder)"
        )
    for name, tensor in expected.items():
        if state[name].shape != tensor.shape:
            raise InputError(
                f"{path} holds {name} of shape {tuple(state[name].shape)} but this model's is "
                f"{tuple(tensor.shape)}: it was trained on other columns; pass the config it "
                f"was trained with (config.yaml in its run folder)"
            )


def _defaults(class_path: str | None) -> dict[str, Any]:
    """The default arguments of the class at ``class_path`` (empty when unknown)."""
    if not class_path:
        return {}
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return {}
    parameters = inspect.signature(cls).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def cli(args: ArgsType = None, run: bool = True) -> GDLightningCLI:
    """Build the command line on ``args`` (``sys.argv`` when ``None``) and run it.

    With ``run=False`` the model, data and Trainer are only built: ``args`` then
    holds no subcommand, and the caller runs ``trainer.fit(...)`` itself.
    """
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
