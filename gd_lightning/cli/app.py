"""The ``gd-lightning`` command line: LightningCLI over this package's models and data,
with the data checked before the Trainer writes anything."""

import argparse
import difflib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch
from jsonargparse import DefaultHelpFormatter, Namespace
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import (
    ArgsType,
    LightningArgumentParser,
    LightningCLI,
    SaveConfigCallback,
)
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.plugins import CheckpointIO

from gd_lightning.callbacks import (
    ConvergenceMonitor,
    FitCheckpoint,
    ParameterReport,
    PredictionWriter,
    TimedProgressBar,
)
from gd_lightning.callbacks.checkpoint import check_fresh_folder
from gd_lightning.callbacks.predictions import inputs_of
from gd_lightning.callbacks.run_folders import (
    RemoveUnwrittenRun,
    ResumeHold,
    claim_run_folders,
)
from gd_lightning.cli.checkpoints import (
    SPECIAL_CHECKPOINTS,
    check_checkpoint,
    check_columns_known,
    check_given_settings,
    check_saved_settings,
    check_stopping,
    checkpoint_model,
    defaults_of,
    last_checkpoint,
    latest_run_with_last,
    no_checkpoint_to_predict_with,
    nothing_to_resume,
    read_checkpoint,
)
from gd_lightning.cli.checks import (
    check_groups,
    check_seed,
    check_trainer_counts,
)
from gd_lightning.cli.config_files import ConfigFileOrTutorial, register_parser_mode
from gd_lightning.cli.notices import quiet_start
from gd_lightning.cli.tutorials import tutorial_configs
from gd_lightning.data.base import TensorDataModule, dtype_for
from gd_lightning.data.tabular import check_npy_widths, npy_widths
from gd_lightning.errors import InputError, exception_chain
from gd_lightning.io import AtomicCheckpointIO, check_writable
from gd_lightning.models.base import RegressionModule
from gd_lightning.models.columns_and_checkpoints import CLASS_PATH_KEY
from gd_lightning.resume import resume_refusal

# the classes --model and --data name by their short names (LightningCLI finds the
# subclasses that are imported): every model and data module of the package
importlib.import_module("gd_lightning.models")
importlib.import_module("gd_lightning.data")

DESCRIPTION = (
    "Fit regression models by gradient descent with PyTorch Lightning. Commands: fit, "
    "validate, test and predict (each with its --help), and tutorials, which lists the "
    "tutorials by name. Start from a tutorial: gd-lightning fit --config quadratic_speed. "
    "A model's options: gd-lightning fit --model.help LinearRegression; "
    "a data module's: gd-lightning fit --data.help TabularDataModule."
)
#: what ``--help`` says of ``--config``
CONFIG_HELP = (
    "a tutorial's name (gd-lightning tutorials lists them) or a YAML file of options; "
    "options given after it override its values"
)


class PlainHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help, its docstring markup said as plain text (`plain_help`)."""

    def format_help(self) -> str:
        return plain_help(super().format_help())


def plain_help(text: str) -> str:
    """``text`` with the documentation site's markup as plain words: a cross-reference
    ``[`Name`][gd_lightning.Name]`` as ``Name``, a Sphinx role (Lightning's docstrings)
    as its target, a ````code```` span as ``code``.

    Examples:
        >>> plain_help('see [`RegressionModule`][gd_lightning.RegressionModule]: ``"auto"``')
        'see RegressionModule: "auto"'
        >>> plain_help(":class:`datetime.timedelta` or :meth:`~lightning.LightningModule.log`")
        'datetime.timedelta or log'
    """
    text = re.sub(r"\[`?([^\]`]+)`?\]\[[\w.]+\]", r"\1", text)
    # Sphinx roles, as in Lightning's own docstrings: :class:`x.Y` as x.Y, ~x.Y as Y
    text = re.sub(
        r":(?:class|func|meth|attr|mod|obj|exc|data|math):`(~?)([^`]+)`",
        lambda role: role[2].rsplit(".", 1)[-1] if role[1] else role[2],
        text,
    )
    return re.sub(r"``(.+?)``", r"\1", text, flags=re.DOTALL)


class HelpfulParser(LightningArgumentParser):
    """LightningCLI's parser, printing its help, and every ``--*.help``, as plain text
    (the help of ``--model.help`` is printed by a new parser of this class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", PlainHelpFormatter)
        super().__init__(*args, **kwargs)


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
    [`ConvergenceMonitor`][gd_lightning.ConvergenceMonitor] (options under ``convergence``)
    and ends with a [`ParameterReport`][gd_lightning.ParameterReport] (``report``); every
    predict writes its CSV through a [`PredictionWriter`][gd_lightning.PredictionWriter]
    (``predictions``). Checkpoints come from a
    [`FitCheckpoint`][gd_lightning.FitCheckpoint] (``checkpoint``): one at the end of the
    fit, and every ``checkpoint.every_n_epochs`` epochs when set; a ``ModelCheckpoint`` of your own
    in ``trainer.callbacks`` takes its place, and ``trainer.enable_checkpointing:
    false`` turns checkpoints off.
    """

    def __init__(self, *args: Any, run_starts: Callable[[], None] = lambda: None,
                 **kwargs: Any) -> None:  # fmt: skip
        #: called once every check has passed, as the run starts (cli() shows Lightning's
        #: start-up lines from then on)
        self.run_starts = run_starts
        super().__init__(*args, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """LightningCLI's parser, its ``--config`` also taking a tutorial's name and
        bounding the file before it is read (`ConfigFileOrTutorial`)."""
        kwargs.setdefault("dump_header", [f"lightning.pytorch=={lightning.pytorch.__version__}"])
        # every text the parser loads as YAML is bounded and checked first
        kwargs.setdefault("parser_mode", register_parser_mode())
        parser = self.parser_class(**kwargs)
        parser.add_argument("-c", "--config", action=ConfigFileOrTutorial, help=CONFIG_HELP)
        return parser

    def add_arguments_to_parser(self, parser) -> None:  # type: ignore[no-untyped-def]
        # always on: every fit is measured and reports its parameters, every predict
        # writes its CSV (instantiate_trainer adds them to the Trainer's callbacks)
        for name, callback in CALLBACK_OPTIONS.items():
            parser.add_class_arguments(callback, name)
        # the data's shape and column names go into the model, and so into its checkpoints
        for name in ("in_features", "out_features", "feature_names", "target_names"):
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def add_core_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """LightningCLI's trainer, model and data options, with two defaults: no model
        when ``--ckpt_path`` names a checkpoint file (LightningCLI then builds the one it
        holds, with the settings it was saved with) and a
        [`TabularDataModule`][gd_lightning.TabularDataModule] for the data, so
        ``gd-lightning predict --ckpt_path model.ckpt --data.csv_path new.csv`` is a whole
        command."""
        parser.add_lightning_class_args(self.trainer_class, "trainer")
        parser.set_defaults({f"trainer.{k}": v for k, v in self.trainer_defaults.items()
                             if k != "callbacks"})  # fmt: skip
        parser.add_lightning_class_args(RegressionModule, "model", subclass_mode=True,
                                        required=False)  # fmt: skip
        parser.add_lightning_class_args(TensorDataModule, "data", subclass_mode=True)
        parser.set_defaults({"data": {"class_path": "gd_lightning.TabularDataModule"}})

    def parse_arguments(self, parser: Any, args: ArgsType) -> None:
        """Parse, then check the settings (`_check_settings`). A checkpoint file
        named by ``--ckpt_path`` on the command line is read first, once: when it holds
        one of this package's models, its class and settings become the defaults of
        ``--model`` (options given still override them), so a command that names the
        model's class without restating its settings parses, and a different class is
        refused by name."""
        #: the checkpoint file and what it holds, read once a command
        self._checkpoint_read: tuple[Path, dict[str, Any]] | None = None
        words = sys.argv[1:] if args is None else args
        given = _checkpoint_option(words)
        if given is not None:
            subcommand, path, named = given
            self._checkpoint_read = (path, read_checkpoint(path))
            model = checkpoint_model(*self._checkpoint_read, named)
            if model is not None:
                parser.set_defaults({f"{subcommand}.model": model})
        failure = None
        try:  # LightningCLI's parse, without its notice that args were given in Python
            if isinstance(args, dict | Namespace):
                self.config = parser.parse_object(args)
            else:
                self.config = parser.parse_args(args)
        except argparse.ArgumentError as err:
            if not isinstance(words, list | tuple):
                raise
            failure, typed = err, [str(word) for word in words]
        if failure is not None:  # searched outside the handler: no implicit chaining to it
            raise refused_option(parser, typed, failure) from None
        subcommand = self.config.get("subcommand")
        self._check_settings(subcommand, self.config[subcommand] if subcommand else self.config)

    def _check_settings(self, subcommand: str | None, config: Any) -> None:
        """The preflight's first half, on the settings alone, before anything is built
        (LightningCLI reads ``--ckpt_path`` next, importing the class it names): the
        option groups and seeds; a model to run; ``fit --ckpt_path last`` resolved to its
        file; that file read once, into the record every later check uses, and vetted;
        the data pointed at the columns of the checkpoint's model."""
        check_groups(config, ("trainer", *CALLBACK_OPTIONS))
        check_seed(config)
        model = config.get("model")
        named = _named_model(model)
        init_args = getattr(model, "init_args", None) or {}
        # the shapes typed by hand, if any: the data gives them (checked in _prepare); a
        # value equal to the signature's default cannot be told from no value at all
        defaults = defaults_of(named)
        self._given_shapes = {
            name: init_args.get(name)
            for name in ("in_features", "out_features")
            if init_args.get(name) not in (None, defaults.get(name))
        }
        self._default_logger: Logger | None = None
        #: the checkpoint ``fit --ckpt_path last`` continues from, where found here
        self._last_checkpoint: Path | None = None
        path = config.get("ckpt_path") if subcommand else None
        if subcommand == "predict" and path is None:
            raise no_checkpoint_to_predict_with()
        if str(path) in SPECIAL_CHECKPOINTS and (subcommand != "fit" or str(path) == "best"):
            raise InputError(
                f"{subcommand} --ckpt_path {path} names a checkpoint of a fit run in the same "
                f"process, and each gd-lightning command runs one subcommand: pass the "
                f"checkpoint's file (lightning_logs/.../checkpoints/*.ckpt)"
            )
        if subcommand == "fit" and str(path) == "last":
            path = self._continue_last_run(config) or path
        if path is None or str(path) in SPECIAL_CHECKPOINTS:
            if named is None:
                raise InputError(
                    f"{subcommand or 'the run'} needs a model: a tutorial or config file "
                    f"with --config, a class with --model (LinearRegression, "
                    f"QuadraticRegression), or a checkpoint file with --ckpt_path"
                )
            return
        path = Path(str(path))
        if self._checkpoint_read is None or self._checkpoint_read[0] != path:
            self._checkpoint_read = (path, read_checkpoint(path))
        checkpoint = self._checkpoint_read[1]
        settings = checkpoint.get("hyper_parameters")
        if named is None and not (isinstance(settings, dict) and CLASS_PATH_KEY in settings):
            raise InputError(
                f"{path} does not name the class of the model it holds (this package's models "
                f"name it when saved; a subclass overriding on_save_checkpoint without super() "
                f"does not), so the command line cannot rebuild it: name it with --model, or "
                f"load it in Python with YourModel.load_from_checkpoint"
            )
        check_saved_settings(path, checkpoint, named)
        # LightningCLI lays the checkpoint's settings over the model's options (a resumed
        # fit too): an option that differs would be ignored without a word
        check_given_settings(path, checkpoint, init_args, resuming=subcommand == "fit")
        if subcommand in ("validate", "test", "predict"):
            check_columns_known(path, settings or {}, config.get("data"))
            _read_by_model_columns(config, settings or {})

    def _continue_last_run(self, config: Any) -> Path | None:
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
            return None  # a ModelCheckpoint of the user's own decides where its checkpoints go
        root = Path(trainer.get("default_root_dir") or os.getcwd())
        loggers = trainer.get("logger")
        first = loggers[0] if isinstance(loggers, list) and loggers else loggers
        dirpath = config["checkpoint"].get("dirpath")
        if dirpath or first is False or (isinstance(loggers, list) and not loggers):
            folder = Path(dirpath) if dirpath else root / "checkpoints"
            found = last_checkpoint(folder)
        elif first is None or first is True:
            # Lightning's default logger, as it builds it (TensorBoard when installed)
            tensorboard = bool(importlib.util.find_spec("tensorboard") or
                               importlib.util.find_spec("tensorboardX"))  # fmt: skip
            logger_class = TensorBoardLogger if tensorboard else CSVLogger
            run = latest_run_with_last(logger_class, str(root), "lightning_logs")
            if run is None:
                raise nothing_to_resume(root / "lightning_logs")
            self._default_logger = logger_class(save_dir=str(root), version=run[0])
            found = run[1]
        elif _is_class(first, TensorBoardLogger) or _is_class(first, CSVLogger):
            init_args = first.init_args
            logger_class = TensorBoardLogger if _is_class(first, TensorBoardLogger) else CSVLogger
            save_dir, name = str(init_args.get("save_dir") or "."), init_args.get("name")
            version = init_args.get("version")
            if version is None:
                run = latest_run_with_last(logger_class, save_dir, name)
                if run is None:
                    raise nothing_to_resume(Path(save_dir) / str(name or ""))
                init_args["version"], found = run
            else:
                log_dir = logger_class(save_dir=save_dir, name=name, version=version).log_dir
                folder = Path(log_dir) / "checkpoints"
                found = last_checkpoint(folder)
        else:
            return None  # another logger: Lightning finds its last checkpoint itself
        if found is None:
            raise nothing_to_resume(folder)
        # Lightning resumes the file checked here, not one it looks for again
        self._last_checkpoint = found
        config["ckpt_path"] = str(found)
        return found

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
        elif not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(TimedProgressBar())  # Lightning's bar, redrawn by the clock
        always_on = [config["report"], config["convergence"]]
        if self.subcommand == "predict":
            always_on.append(config["predictions"])
            # predicting writes its CSV and nothing else: no checkpoints, no run folder, no
            # config copy
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        if self.subcommand in ("validate", "test", "predict"):
            kwargs = {"logger": False, "enable_checkpointing": False, **kwargs}
            self.save_config_callback = None
        own_checkpoint = any(isinstance(c, ModelCheckpoint) for c in callbacks)
        if (
            self.subcommand in (None, "fit")
            and not own_checkpoint
            and (trainer.get("enable_checkpointing") is not False)
        ):
            always_on.append(config["checkpoint"])
        if self.subcommand and config.get("ckpt_path"):
            # resuming a run continues in its folder: its config is written again
            self.save_config_kwargs = {**self.save_config_kwargs, "overwrite": True}
        plugins = trainer.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, list) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(AtomicCheckpointIO())  # a kill mid-save leaves no torn file
        try:
            return super().instantiate_trainer(
                **{"callbacks": callbacks + always_on, "plugins": plugins, **kwargs}
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
        writes anything; for validate, test and predict, load the checkpoint's weights
        from the record read once, then read the data for that model."""
        # float64 data under --trainer.precision 64-true, read before the Trainer runs
        self.datamodule.dtype = dtype_for(self.trainer.precision)
        check_trainer_counts(self.trainer)
        config = self.config_init[self.subcommand]
        if self._checkpoint_read is not None and stage != "fit":
            check_checkpoint(*self._checkpoint_read, self.model)
            # the weights from the record, as Lightning's load_from_checkpoint loads
            # them; the Trainer, given no checkpoint, neither reads the file again
            # nor looks for the fit's callbacks (their states concern a fit only)
            checkpoint = self._checkpoint_read[1]
            self.model.on_load_checkpoint(checkpoint)
            self.model.load_state_dict(checkpoint["state_dict"])
        if stage != "fit":
            # the data read by the model's columns, with the digits its statistics need
            self.datamodule.read_for(self.model)
        self.datamodule.setup(stage)
        if stage in ("fit", "predict"):
            for folder in self._output_folders():
                check_writable(folder)
        dirpath = getattr(self.trainer.checkpoint_callback, "dirpath", None)
        if stage == "fit" and dirpath:
            resuming = self.config_init["fit"].get("ckpt_path") is not None
            check_fresh_folder(Path(dirpath), resuming)
        if stage == "predict":
            self._check_predictions_path()
        for name, value in self._given_shapes.items():
            actual = getattr(self.datamodule, name)
            if value is not None and value != actual:
                names = getattr(self.datamodule, "feature_names" if name == "in_features"
                                else "target_names")  # fmt: skip
                raise InputError(
                    f"model.{name} is {value} but the data has {actual} "
                    f"({', '.join(names)}): leave model.{name} out, it is taken from the data"
                )
        if self._checkpoint_read is not None and stage == "fit":
            check_checkpoint(*self._checkpoint_read, self.model, True)
        elif self._checkpoint_read is not None:
            config["ckpt_path"] = None  # the weights are loaded
        if stage == "fit":
            # the reference and lr: auto's rate, built once, now: refused (memory map, no
            # curvature) before the Trainer makes the run's folder
            if isinstance(self.datamodule, TensorDataModule):
                self.datamodule.share_columns_and_scaling(self.model)  # as the fit will
            config["convergence"].prepare(self.datamodule, self.model)
            if self._checkpoint_read is not None:
                self._check_resumed_settings(*self._checkpoint_read)
        option = {"validate": "val_fraction", "test": "test_fraction"}.get(stage)
        if option and not getattr(self.datamodule.hparams, option, 1):
            what = "validation" if stage == "validate" else "test"
            raise InputError(f"the data has no {what} rows: set data.{option} above 0")
        # never unpickle anything but tensors and plain values from a checkpoint
        if config.get("weights_only") is None:
            config["weights_only"] = True
        if stage == "fit":
            # every check passed: the run's folder is claimed now (a version of its own)
            resuming = config.get("ckpt_path") is not None
            created = claim_run_folders(self.trainer, resuming)
            self.trainer.callbacks.append(RemoveUnwrittenRun(created))  # type: ignore[attr-defined]
        if self._last_checkpoint is not None:
            folder = self._last_checkpoint.parent
            self.trainer.callbacks.append(ResumeHold(folder))  # type: ignore[attr-defined]
            print(f"continuing the run in {folder.parent} from its last checkpoint")
        self.run_starts()  # the checks passed: Lightning's start-up lines show from here

    def _check_resumed_settings(self, path: Path, checkpoint: dict[str, Any]) -> None:
        """Refuse, in one line, a fit resumed from ``path`` with other model, optimizer or
        data settings than the run's: Lightning would restore the run's optimizer state
        (its rate too) and data order, and the new settings would be recorded, not used."""
        changes = self.model.resume_changes(checkpoint)
        if changes:
            raise resume_refusal(str(path), "model", changes)
        if isinstance(self.datamodule, TensorDataModule):
            self.datamodule.check_resume(checkpoint, str(path))
        check_stopping(path, checkpoint, self.trainer, self._epoch_steps())

    def _epoch_steps(self) -> int | None:
        """The optimizer steps of one epoch of this fit (one per batch, or per
        ``accumulate_grad_batches`` batches, within ``limit_train_batches``), or ``None``
        where the loader has no length."""
        try:
            batches = len(self.datamodule.train_dataloader())
        except TypeError:
            return None
        limit = self.trainer.limit_train_batches
        if isinstance(limit, float):
            batches = int(batches * limit)
        elif isinstance(limit, int):
            batches = min(batches, limit)
        automatic = self.model.automatic_optimization  # manual: one step a batch
        accumulate = self.trainer.accumulate_grad_batches if automatic else 1
        return -(-batches // accumulate)

    def _check_predictions_path(self) -> None:
        """Refuse, in one line, a predictions file that cannot be written (a folder, under
        a file, in a folder that takes no files), before predicting rather than after."""
        writer = self.config_init[self.subcommand]["predictions"]
        checkpoint = self.config_init[self.subcommand].get("ckpt_path")
        target = writer.target(checkpoint, Path(self.trainer.default_root_dir))
        inputs = inputs_of(self.datamodule, checkpoint)
        for number, config in enumerate(self.config[self.subcommand].get("config") or [], 1):
            inputs[f"config file {number} (--config)"] = Path(str(config))
        writer.check_target(target, inputs, self.datamodule, self.model)
        writer.use_target(target)  # the file checked here (the Trainer gets no checkpoint)

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


#: the subcommands, as LightningCLI names them
SUBCOMMANDS = ("fit", "validate", "test", "predict")

#: the callbacks every run gets, by the name of their options (``--convergence.verbose``)
CALLBACK_OPTIONS = {
    "report": ParameterReport,
    "convergence": ConvergenceMonitor,
    "predictions": PredictionWriter,
    "checkpoint": FitCheckpoint,
}


def _read_by_model_columns(config: Any, model_settings: dict[str, Any]) -> None:
    """validate, test and predict read the data by the columns of the checkpoint's model
    (its names, in its order, from its settings): a CSV with its columns in another
    order, or with more columns, gives the same predictions; one missing a column is
    refused."""
    features = model_settings.get("feature_names")
    targets = model_settings.get("target_names")
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


def refused_option(parser: Any, words: list[str], err: argparse.ArgumentError) -> InputError:
    """One line for a command line jsonargparse refused, whatever its shape: the part of
    it as the user typed it that fails, with jsonargparse's most specific reason, and
    without reading its report's wording.

    The reason is the innermost exception of the chain jsonargparse raises (each level
    of its report is an exception raised from the next). A missing or unknown
    subcommand is said as such. Otherwise the words after the subcommand are cut into
    parts (an option with its values, or a word standing alone) and the command line is
    parsed again, one part more each time, until the parse fails for that same reason:
    that part is the culprit. When the subcommand alone already fails so, the reason
    lies in the environment (``PL_FIT__*`` variables); where no part does, in a config
    file.
    """
    reason = _innermost_reason(err)
    if words and words[0] not in SUBCOMMANDS and not words[0].startswith("-"):
        return _no_subcommand(words[0])
    if not any(word in SUBCOMMANDS for word in words):
        return _no_subcommand(None)
    first = 1 if words[0] in SUBCOMMANDS else 0
    subcommand = words[0] if first else "<subcommand>"
    help_line = f"gd-lightning {subcommand} --help lists the options"
    if first and _fails_for(parser, words[:first], reason):
        # the variables jsonargparse reads for this subcommand's options (PL_FIT__...);
        # Lightning's own (PL_GLOBAL_SEED) are not options
        prefix = f"PL_{subcommand.upper()}_"
        variables = sorted(name for name in os.environ if name.startswith(prefix))
        where = f"the environment ({', '.join(variables)})" if variables else "the defaults"
        named = [name for name in variables if name.endswith("CONFIG")
                 and os.environ[name].removesuffix(".yaml") in tutorial_configs()]  # fmt: skip
        hint = (f"; a tutorial's name works after --config only: gd-lightning {subcommand} "
                f"--config {os.environ[named[0]]}" if named else "")  # fmt: skip
        return InputError(f"in {where}: {reason} (fix or unset the variable{hint}; {help_line})")
    for start, end in command_parts(words, first):
        if _fails_for(parser, words[:end], reason):
            typed = " ".join(" ".join(words[start:end]).split())
            cut = typed if len(typed) <= 100 else typed[:97] + "..."
            if not words[start].startswith("-"):  # refused for standing alone, whatever
                return InputError(_stray_word(subcommand, cut))  # the parser's words
            option = words[start].split("=", 1)[0]
            ran = next(word for word in words if word in SUBCOMMANDS)  # checked above
            why = _option_reason(parser, words[:start], option, reason, ran, help_line)
            return InputError(f"{cut}: {why}")
    return InputError(f"in the config: {reason} ({help_line})")


def _option_reason(
    parser: Any, before: list[str], option: str, reason: str, subcommand: str, help_line: str
) -> str:
    """Why ``option`` was refused, pointing at the help that lists its group's options
    (``--model.help CLASS``, ``--data.help CLASS``, or ``help_line``'s ``--help``) and,
    for an option that does not exist, at the nearest one that does (``--lr``:
    ``--model.lr``). The options known are those of ``subcommand`` as the command line
    is parsed up to the option (``before``), with the classes it names."""
    try:
        config = parser.parse_args(before)[subcommand]
    except (argparse.ArgumentError, InputError, KeyError):  # no options to look at
        return f"{reason} ({help_line})"
    # a class's options by their short form (--model.lr); the class itself as --model
    keys = config.keys()  # a jsonargparse Namespace's dotted keys (iterating it differs)
    known = [key.replace(".init_args.", ".").removesuffix(".class_path") for key in keys]
    name = option.lstrip("-").replace(".init_args.", ".")
    if name == "model.lr":
        reason = "model.lr must be a positive number, or auto (chosen from the data)"
    elif name not in known:
        nearest = _nearest_option(name, known)
        reason += f"; did you mean --{nearest}?" if nearest else ""
    group = name.split(".", 1)[0]
    chosen = config.get(group) if group in ("model", "data") and "." in name else None
    class_path = getattr(chosen, "class_path", None)
    if class_path:
        return (f"{reason} (gd-lightning {subcommand} --{group}.help "
                f"{class_path.rsplit('.', 1)[-1]} lists the {group}'s options)")  # fmt: skip
    return f"{reason} ({help_line})"


#: what other libraries call an option this package names otherwise
OPTION_ALIASES = {
    "learning_rate": "lr",
    "epochs": "max_epochs",
    "n_epochs": "max_epochs",
    "num_epochs": "max_epochs",
    "steps": "max_steps",
    "seed": "seed_everything",
}


def _nearest_option(name: str, known: list[str]) -> str | None:
    """The known option nearest to the unknown ``name`` (dotted, without ``--``): one of
    its group whose last part is close (``trainer.epochs``: ``trainer.max_epochs``), or
    for a name without a group, the one option anywhere of that last part (``lr``:
    ``model.lr``).

    Examples:
        >>> known = ["trainer.max_epochs", "model.lr", "data.batch_size"]
        >>> [_nearest_option(n, known) for n in ("lr", "trainer.epochs", "data.batchsize")]
        ['model.lr', 'trainer.max_epochs', 'data.batch_size']
        >>> _nearest_option("model.colour", known) is None
        True
    """
    group, _, leaf = name.rpartition(".")
    leaf = OPTION_ALIASES.get(leaf, leaf)
    pool = [key for key in known if key.rpartition(".")[0] == group] if group else known
    same = [key for key in pool if key.rpartition(".")[2] == leaf]
    if len(same) == 1:
        return same[0]
    leaves = {key.rpartition(".")[2]: key for key in reversed(pool)}
    close = difflib.get_close_matches(leaf, list(leaves), n=1)
    return leaves[close[0]] if close else None


def command_parts(words: list[str], first: int) -> list[tuple[int, int]]:
    """The bounds of the parts of ``words`` from ``first`` on: each option with the
    values after it, and each word that stands alone before any option. A word is an
    option when it starts with ``-`` and is not a number (``--trainer.max_epochs -1``
    is one part).

    Examples:
        >>> command_parts(["fit", "line_fit", "--a", "1", "-2", "--b"], 1)
        [(1, 2), (2, 5), (5, 6)]
        >>> command_parts(["fit"], 1)
        []
    """
    starts = [i for i in range(first, len(words))
              if i == first or _is_option(words[i]) or not any(
                  _is_option(word) for word in words[first:i])]  # fmt: skip
    return list(zip(starts, [*starts[1:], len(words)][: len(starts)], strict=True))


def _is_option(word: str) -> bool:
    """Whether a word of the command line is an option (``--x``, ``-c``, ``--x=1``) rather
    than a value (``-1``, ``-0.5e-3``, ``-``)."""
    return word.startswith("-") and len(word) > 1 and not _is_number(word)


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _fails_for(parser: Any, words: list[str], reason: str) -> bool:
    """Whether parsing ``words`` fails for ``reason``."""
    try:
        parser.parse_args(words)
    except argparse.ArgumentError as again:
        return _innermost_reason(again) == reason
    except InputError as again:  # a check of this package's own, such as --config's
        return " ".join(str(again).split()) == reason
    return False


def _no_subcommand(word: str | None) -> InputError:
    """The line for a command line that does not start with a subcommand."""
    choices = [*SUBCOMMANDS, "tutorials"]
    close = difflib.get_close_matches((word or "").lower(), choices, n=1)
    said = f"{word!r} is not a subcommand" if word is not None else "no subcommand given"
    guess = f"did you mean {close[0]}? " if close else ""
    return InputError(
        f"{said}: {guess}give one of {', '.join(choices)} first (gd-lightning fit --config "
        f"quadratic_speed runs the first tutorial; gd-lightning --help says more)"
    )


def _stray_word(subcommand: str, word: str) -> str:
    """The line for a word standing alone where an option was expected (``gd-lightning
    fit line_fit``: the ``--config`` forgotten)."""
    hint = ""
    named = word.removesuffix(".yaml") in tutorial_configs()
    if named or Path(word).suffix in (".yaml", ".yml") and Path(word).is_file():
        hint = f"; to run it: gd-lightning {subcommand} --config {word}"
    return (
        f"{word}: a word on its own where an option was expected: options start with "
        f"--{hint} (gd-lightning {subcommand} --help lists the options)"
    )


def _innermost_reason(err: BaseException) -> str:
    """The message of the last exception of the chain that raised ``err`` (the most
    specific reason), on one line."""
    *_, innermost = exception_chain(err)
    return " ".join(str(innermost).split())


def _checkpoint_option(args: ArgsType) -> tuple[str, Path, str | None] | None:
    """The subcommand, the checkpoint file its ``--ckpt_path`` option names on the
    command line ``args`` and the ``--model`` given there, or ``None`` (no such option,
    or not a file: ``last``, a missing file, a path in a config file are checked after
    parsing)."""
    if not isinstance(args, list | tuple) or not args or args[0] not in SUBCOMMANDS:
        return None
    reader = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    reader.add_argument("--ckpt_path")
    reader.add_argument("--model")
    try:
        given = reader.parse_known_args([str(arg) for arg in args[1:]])[0]
    except argparse.ArgumentError:  # an option without its value: the parse proper says so
        return None
    if not given.ckpt_path or not Path(given.ckpt_path).is_file():
        return None
    return str(args[0]), Path(given.ckpt_path), given.model


def _named_model(model: Any) -> str | None:
    """The class path of the model the options name, or ``None`` where they name none:
    ``--model.lr`` alone gives its option to the base class, which jsonargparse then
    assumes (the checkpoint names the class)."""
    named = getattr(model, "class_path", None)
    return None if _imported_class(named) is RegressionModule else named


def _is_class(config: Any, cls: type) -> bool:
    """Whether ``config`` (a ``class_path`` and ``init_args`` namespace from the user's
    config, whose class jsonargparse has imported) builds a ``cls``."""
    class_path = getattr(config, "class_path", None)
    if not isinstance(class_path, str):
        return isinstance(config, cls)
    found = _imported_class(class_path)
    return isinstance(found, type) and issubclass(found, cls)


def _imported_class(class_path: str | None) -> Any:
    """What ``class_path`` names in a module already imported (jsonargparse imports the
    classes a config names), or ``None``; nothing is imported here."""
    module, _, name = str(class_path).rpartition(".")
    return getattr(sys.modules.get(module), name, None)


def cli(args: ArgsType = None, run: bool = True) -> GDLightningCLI:
    """Build the command line on ``args`` (``sys.argv`` when ``None``) and run it.

    With ``run=False`` the model, data and Trainer are only built: ``args`` then
    holds no subcommand, and the caller runs ``trainer.fit(...)`` itself.
    """
    with quiet_start() as run_starts:
        return GDLightningCLI(
            RegressionModule,
            TensorDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            # the model's own `optimizer` argument chooses the optimizer; manual mode has none
            auto_configure_optimizers=False,
            save_config_callback=_SaveConfig,
            parser_class=HelpfulParser,
            # the seed a run gets when none is given, said without Lightning's warning
            seed_everything_default=0,
            # a wrong option raises instead of printing the whole usage: main() says it in a line
            parser_kwargs={
                "prog": "gd-lightning",
                "description": DESCRIPTION,
                "exit_on_error": False,
            },
            args=args,
            run=run,
            run_starts=run_starts,
        )
