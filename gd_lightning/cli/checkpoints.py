"""Reading checkpoints safely: what they hold is checked before anything in them is
used, and nothing they name is imported unless it is one of this package's models."""

import argparse
import importlib
import importlib.util
import inspect
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentParser
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from gd_lightning.cli.checks import is_int
from gd_lightning.errors import InputError
from gd_lightning.models.base import RegressionModule
from gd_lightning.models.columns_and_checkpoints import (
    CLASS_PATH_KEY,
    CLI_RECORDS,
)
from gd_lightning.resume import resume_refusal, same_setting, shown_setting


def no_checkpoint_to_predict_with() -> InputError:
    return InputError(
        "predict needs --ckpt_path, a trained model's checkpoint (a fit saves one in "
        "lightning_logs/version_N/checkpoints/): without one it would predict with "
        "untrained, random weights"
    )


def last_checkpoint(folder: Path) -> Path | None:
    """The checkpoint ``ckpt_path="last"`` resumes from ``folder``, as Lightning chooses
    it: of the checkpoints named ``last...`` (``last.ckpt``, ``last-v1.ckpt``), the one
    written latest; ``None`` when there is none."""
    if not folder.is_dir():
        return None
    lasts = [
        path
        for path in folder.iterdir()
        if path.suffix == ModelCheckpoint.FILE_EXTENSION
        and path.stem.startswith(ModelCheckpoint.CHECKPOINT_NAME_LAST)
    ]
    return max(lasts, key=lambda path: path.stat().st_mtime_ns, default=None)


def latest_run_with_last(
    logger_class: type[TensorBoardLogger | CSVLogger], save_dir: str, name: str | None
) -> tuple[int, Path] | None:
    """The latest run of ``logger_class``'s runs in ``save_dir``/``name`` that saved a
    last checkpoint: its version and that checkpoint, or ``None``.

    The logger numbers the runs (its ``version`` is the next free number) and gives each
    its ``log_dir``, whose ``checkpoints`` folder holds the run's checkpoints.
    """
    runs = logger_class(save_dir=save_dir, name=name).version
    for version in reversed(range(runs if isinstance(runs, int) else 0)):
        log_dir = logger_class(save_dir=save_dir, name=name, version=version).log_dir
        found = last_checkpoint(Path(log_dir) / "checkpoints")
        if found is not None:
            return version, found
    return None


def nothing_to_resume(where: Path) -> InputError:
    return InputError(
        f"nothing to resume: no last.ckpt in {where} (a fit saves one with "
        f"--checkpoint.save_last true): pass a checkpoint file to --ckpt_path, or leave "
        f"--ckpt_path out to start a fresh fit"
    )


#: ckpt_path values Lightning resolves itself
SPECIAL_CHECKPOINTS = ("last", "best", "hpc", "registry")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, read with ``torch.load(weights_only=True)``; a missing,
    unreadable or foreign file, one carrying any other pickled object, or one whose saved
    settings are not a mapping (`saved_settings`), is refused in one line before anything
    in it can run."""
    if not path.is_file():
        raise InputError(f"no checkpoint at {path}: check --ckpt_path")
    # torch's notices about the file's pickle (its protocol, ...) concern torch, not the
    # user: kept back while loading, shown only for a file that loads, so a refusal is
    # the only line
    with warnings.catch_warnings(record=True) as notices:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise InputError(
                f"{path} holds objects other than tensors and plain values, so it was not "
                f"loaded and nothing in it ran: use a checkpoint written by gd-lightning"
            ) from None
        except Exception as err:  # a truncated or foreign file: zip, EOF, magic-number errors
            text = str(err).strip()
            reason = text.splitlines()[0] if text else type(err).__name__
            raise InputError(f"{path} is not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise InputError(f"{path} is not a Lightning checkpoint (it has no state_dict)")
    saved_settings(path, checkpoint)
    for notice in notices:
        warnings.warn_explicit(notice.message, notice.category, notice.filename, notice.lineno)
    return checkpoint


def saved_settings(path: Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The model settings ``checkpoint`` saved (its ``hyper_parameters``; empty where it
    saved none), refused in one line where they are not a mapping of names to values."""
    settings = checkpoint.get("hyper_parameters")
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise InputError(
            f"{path} is damaged or not a gd-lightning checkpoint: its saved model settings "
            f"(hyper_parameters) are a {type(settings).__name__}, not a mapping of setting "
            f"names to values, so it was not loaded: use a checkpoint written by gd-lightning"
        )
    return settings


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
    by its full path before anything is imported (the one the config names is imported
    then, as jsonargparse would: `model_class`); every other setting must be an argument
    of that class that names no code, holding plain values (no mapping, which could name
    a class to build) of the type the class takes (`check_setting_types`).
    """
    settings = saved_settings(path, checkpoint)
    saved = settings.get(CLASS_PATH_KEY)
    if saved is None:
        return
    own = package_models()
    if not isinstance(saved, str) or (saved not in own and saved != configured):
        named = configured or "one of " + ", ".join(sorted({c.__name__ for c in own.values()}))
        raise InputError(
            f"{path} holds a model of class {str(saved)[:80]!r}, not {named}, so it was not "
            f"loaded and nothing it names was imported: if you trust that class, name it "
            f"with --model {str(saved)[:80]}, or pass the config it was trained with"
        )
    same_class = saved in own and own[saved] is own.get(str(configured))
    if configured and saved != configured and not same_class:
        shown, wanted = saved.rsplit(".", 1)[-1], configured.rsplit(".", 1)[-1]
        if shown == wanted:
            shown, wanted = saved, configured
        raise InputError(
            f"{path} holds a {shown}, but the model given is a {wanted}: leave --model out "
            f"(the checkpoint names its model), or pass the config it was trained with"
        )
    cls = own[saved] if saved in own else model_class(path, saved)
    accepted = set(_arguments(cls))
    for name, value in settings.items():
        if name in CLI_RECORDS:
            continue  # LightningCLI drops _instantiator; _class_path is checked above
        if name in CODE_ARGUMENTS or name not in accepted or not _plain(value):
            raise InputError(
                f"{path} holds a setting {str(name)[:40]!r} that {saved.rsplit('.', 1)[-1]} "
                f"does not take as a plain value, so it was not loaded: use a checkpoint "
                f"written by gd-lightning"
            )
    check_setting_types(path, settings, cls)


def model_class(path: Path, class_path: str) -> type:
    """The class ``class_path`` names, the model ``path`` was saved from, imported: the
    user named it (``--model`` or a config), so jsonargparse imports it anyway; one that
    cannot be imported is refused in one line saying how to make it importable."""
    module, _, name = class_path.rpartition(".")
    if not module:
        raise InputError(f"{path} holds a model of class {class_path!r}, which names no module: "
                         f"use a checkpoint written by gd-lightning")  # fmt: skip
    top = module.split(".")[0]
    # the installed command does not look in the current folder for modules
    fix = (
        f"put the folder holding {top} on PYTHONPATH (PYTHONPATH=. gd-lightning ... when "
        f"it is the current folder), or pip install the package that holds it"
    )
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ModuleNotFoundError as err:
        missing = str(err.name or module)
        if module == missing or module.startswith(missing + "."):
            raise InputError(
                f"{path} holds a model of class {class_path}, which cannot be imported here "
                f"(Python finds no module {missing} on its path): {fix}"
            ) from None
        raise InputError(
            f"{path} holds a model of class {class_path}, whose module {module} cannot be "
            f"imported: it needs the module {missing}, which is not installed: install it"
        ) from None
    except ImportError as err:
        raise InputError(
            f"{path} holds a model of class {class_path}, whose module {module} cannot be "
            f"imported ({' '.join(str(err).split())[:200]}): fix that module"
        ) from None
    if not isinstance(found, type):
        raise InputError(
            f"{path} holds a model of class {class_path}, but the module {module} has no "
            f"class {name}: use the module the model was trained with ({fix})"
        )
    return found


def check_setting_types(path: Path, settings: dict[str, Any], cls: type) -> None:
    """Refuse, in one line naming the setting, a saved setting of ``path`` whose value is
    not of the type ``cls`` declares for that argument (feature names saved as numbers),
    checked as the command line will check it (jsonargparse, one argument at a time), so
    the line blames the checkpoint, not the options that were given."""
    types = _argument_types(cls)
    for name, value in settings.items():
        kind = types.get(name, inspect.Parameter.empty)
        if name in CLI_RECORDS or kind in (inspect.Parameter.empty, Any):
            continue
        checker = ArgumentParser(exit_on_error=False)
        checker.add_argument("--value", type=kind)
        try:
            checker.parse_object({"value": value})
        except argparse.ArgumentError:
            raise InputError(
                f"{path} saved the model setting {name} as {shown_setting(value)}, which "
                f"{cls.__name__} does not take for {name}, so it was not loaded (the "
                f"checkpoint's saved settings are at fault, not your options): use a "
                f"checkpoint written by gd-lightning"
            ) from None


def check_columns_known(path: Path, settings: dict[str, Any], data: Any) -> None:
    """Refuse, in one line, to validate, test or predict with a model that saved no column
    names (trained from Python on a plain ``DataLoader``) on a data module that reads its
    columns by name (``features``/``targets``, a CSV or ``.npy`` files) when the targets
    are not given: the data would then offer every column as an input and none as a
    target, and the model could not be matched to them. ``data`` is the ``--data``
    options (``class_path`` and ``init_args``)."""
    data_args = getattr(data, "init_args", None)
    if settings.get("feature_names") or data_args is None or "features" not in data_args:
        return
    arrays = bool(data_args.get("features_path"))
    if data_args.get("targets_path" if arrays else "targets"):
        return  # the columns are given: the model's shape checks them
    given = (
        "give the targets' file too, with --data.targets_path (the arrays' columns are "
        "taken in order)"
        if arrays
        else "name the columns, in the model's order, with --data.features [...] and "
        "--data.targets [...] (the file must hold the targets too)"
    )
    shown = str(settings.get(CLASS_PATH_KEY) or "YourModel").rsplit(".", 1)[-1]
    raise InputError(
        f"the model in {path} has no column names (it was trained on unnamed data, such "
        f"as a plain DataLoader), so the command line cannot match it to the data's "
        f"columns: {given}, or predict in Python with {shown}.load_from_checkpoint (a fit "
        f"on a data module that names its columns, such as TabularDataModule, saves them)"
    )


def checkpoint_model(
    path: Path, checkpoint: dict[str, Any], named: str | None = None
) -> dict[str, Any] | None:
    """The model ``checkpoint`` holds, as ``--model`` takes it (``class_path`` and
    ``init_args``), where it is one of this package's models or the class ``named`` on
    the command line (by the same path), and its settings pass
    `check_saved_settings`; else ``None``, and nothing is imported for it."""
    settings = saved_settings(path, checkpoint)
    saved = settings.get(CLASS_PATH_KEY)
    if not isinstance(saved, str):
        return None
    if saved not in package_models() and saved != named:
        return None
    check_saved_settings(path, checkpoint, configured=saved if saved == named else None)
    init_args = {k: v for k, v in settings.items() if k not in CLI_RECORDS}
    return {"class_path": saved, "init_args": init_args}


def check_given_settings(
    path: Path, checkpoint: dict[str, Any], given: Any, resuming: bool = False
) -> None:
    """Refuse, in one line, a model option that differs from the checkpoint's setting of
    the same name: the command uses the model as it was saved (LightningCLI lays the
    checkpoint's settings over the options), so the option would be ignored without a
    word; a fit ``resuming`` the run says so in the words of `resume_refusal`."""
    settings = saved_settings(path, checkpoint)
    # a value equal to the class's default cannot be told from no value at all (a config
    # records the defaults; the data's shape and names are linked in later)
    defaults = defaults_of(settings.get(CLASS_PATH_KEY))
    for name, saved in settings.items():
        value = given.get(name) if hasattr(given, "get") else None
        if name in CLI_RECORDS or value is None or same_setting(value, saved):
            continue
        if name in defaults and same_setting(value, defaults[name]):
            continue
        if resuming:
            raise resume_refusal(str(path), "model", [(name, saved, value)])
        raise InputError(
            f"model.{name} is {shown_setting(value)} but the model in {path} was saved with "
            f"{shown_setting(saved)}, and it is used as saved: leave model.{name} out"
        )


def _arguments(cls: type) -> list[str]:
    """The names of the arguments of ``cls`` and the classes it derives from (what
    ``save_hyperparameters`` records)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names += list(inspect.signature(vars(klass)["__init__"]).parameters)[1:]
    return names


def _argument_types(cls: type) -> dict[str, Any]:
    """The declared type of each argument of ``cls`` and the classes it derives from (the
    most derived class's where several declare one), as `_arguments` walks them."""
    types: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            parameters = list(inspect.signature(vars(klass)["__init__"]).parameters.values())
            for parameter in parameters[1:]:
                types.setdefault(parameter.name, parameter.annotation)
    return types


def _plain(value: Any) -> bool:
    """Whether ``value`` is plain data that names no class: numbers, text, lists of them."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list | tuple) and all(_plain(item) for item in value)


def check_checkpoint(
    path: Path,
    checkpoint: dict[str, Any],
    model: RegressionModule,
    resume: bool = False,
) -> None:
    """Refuse, in one line, a checkpoint whose parameters are not ``model``'s (by name,
    type, shape or value: every entry a finite floating-point tensor, every scale of the
    standardization positive), or, to ``resume`` a fit, one without the training state
    (a weights-only checkpoint; how far it trained is `check_stopping`'s).
    ``checkpoint`` is the file's content, as `read_checkpoint` read it."""
    state = checkpoint["state_dict"]
    expected = model.state_dict()
    fix = "pass the config it was trained with (config.yaml in its run folder)"
    if not state:
        raise InputError(f"{path} holds no parameters (its state_dict is empty): use a "
                         f"checkpoint written by gd-lightning")  # fmt: skip
    if set(state) != set(expected):
        saved_class = saved_settings(path, checkpoint).get(CLASS_PATH_KEY, "")
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


def check_stopping(
    path: Path, checkpoint: dict[str, Any], trainer: Trainer, epoch_steps: int | None
) -> None:
    """Refuse, in one line, to resume from ``path`` a fit whose stopping options would
    train nothing or less than was trained (``trainer.max_steps`` at or below the steps
    taken, ``trainer.max_epochs`` at or below the epochs done): Lightning would end at
    once and exit as a finished fit. The epochs done are the checkpoint's epoch, one
    more when its steps (``epoch_steps`` an epoch) show that epoch had ended."""
    steps, epoch = checkpoint.get("global_step"), checkpoint.get("epoch")
    if not (is_int(steps) and is_int(epoch)):
        return
    fix = "to train on from it (or leave --ckpt_path out for a new fit)"
    if trainer.max_steps != -1 and steps >= trainer.max_steps:
        raise InputError(
            f"{path} was saved after {steps} steps, and trainer.max_steps is "
            f"{trainer.max_steps}, so resuming would train nothing: set "
            f"--trainer.max_steps above {steps} {fix}"
        )
    done = epoch + 1 if epoch_steps and steps >= (epoch + 1) * epoch_steps else epoch
    max_epochs = trainer.max_epochs
    if max_epochs is not None and max_epochs != -1 and done >= max_epochs:
        raise InputError(
            f"{path} was saved after {done} epochs, and trainer.max_epochs is "
            f"{max_epochs}, so resuming would train nothing: set --trainer.max_epochs "
            f"above {done} {fix}"
        )


#: what a checkpoint must hold for a fit to resume from it (what Lightning restores)
RESUME_KEYS = ("optimizer_states", "loops", "epoch", "global_step")


def defaults_of(class_path: str | None) -> dict[str, Any]:
    """The default arguments of the class at ``class_path`` (a class the config names,
    which jsonargparse has imported already); empty when unknown."""
    if not class_path:
        return {}
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return {}
    parameters = inspect.signature(cls).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
