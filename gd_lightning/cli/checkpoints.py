"""Reading checkpoints safely: what they hold is checked before anything in them is
used, and nothing they name is imported unless it is one of this package's models."""

import importlib
import importlib.util
import inspect
import pickle
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from gd_lightning.cli.checks import is_int
from gd_lightning.errors import InputError
from gd_lightning.models.base import (
    CLASS_PATH_KEY,
    CLI_RECORDS,
    RegressionModule,
    resume_refusal,
    same_setting,
    shown_setting,
)


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
    cls = own.get(saved)
    accepted = set(defaults_of(saved, every=True)) if cls is None else set(_arguments(cls))
    for name, value in settings.items():
        if name in CLI_RECORDS:
            continue  # LightningCLI drops _instantiator; _class_path is checked above
        if name in CODE_ARGUMENTS or name not in accepted or not _plain(value):
            raise InputError(
                f"{path} holds a setting {str(name)[:40]!r} that {saved.rsplit('.', 1)[-1]} "
                f"does not take as a plain value, so it was not loaded: use a checkpoint "
                f"written by gd-lightning"
            )


def checkpoint_model(
    path: Path, checkpoint: dict[str, Any], named: str | None = None
) -> dict[str, Any] | None:
    """The model ``checkpoint`` holds, as ``--model`` takes it (``class_path`` and
    ``init_args``), where it is one of this package's models or the class ``named`` on
    the command line (by the same path), and its settings pass
    `check_saved_settings`; else ``None``, and nothing is imported for it."""
    settings = checkpoint.get("hyper_parameters")
    saved = settings.get(CLASS_PATH_KEY) if isinstance(settings, dict) else None
    if not isinstance(settings, dict) or not isinstance(saved, str):
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
    settings = checkpoint.get("hyper_parameters") or {}
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
    max_epochs: int | None = None,
) -> None:
    """Refuse, in one line, a checkpoint whose parameters are not ``model``'s (by name,
    type, shape or value: every entry a finite floating-point tensor, every scale of the
    standardization positive), or, to ``resume`` a fit, one without the training state
    (a weights-only checkpoint) or saved after more epochs than ``max_epochs``.
    ``checkpoint`` is the file's content, as `read_checkpoint` read it."""
    state = checkpoint["state_dict"]
    expected = model.state_dict()
    fix = "pass the config it was trained with (config.yaml in its run folder)"
    if not state:
        raise InputError(f"{path} holds no parameters (its state_dict is empty): use a "
                         f"checkpoint written by gd-lightning")  # fmt: skip
    if set(state) != set(expected):
        saved_class = (checkpoint.get("hyper_parameters") or {}).get(CLASS_PATH_KEY, "")
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
        # the epochs done: the Trainer's current_epoch when it saved (its "epoch" key)
        done = checkpoint["epoch"]
        if max_epochs is not None and max_epochs != -1 and is_int(done) and done > max_epochs:
            raise InputError(
                f"{path} was saved after {done} epochs, more than trainer.max_epochs "
                f"({max_epochs}): set --trainer.max_epochs above {done} to train on from it"
            )


#: what a checkpoint must hold for a fit to resume from it (what Lightning restores)
RESUME_KEYS = ("optimizer_states", "loops", "epoch", "global_step")


def defaults_of(class_path: str | None, every: bool = False) -> dict[str, Any]:
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
