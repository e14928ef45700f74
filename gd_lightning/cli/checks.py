"""Checks of a run's settings that Lightning would only fail on later, with a traceback."""

import os
import tempfile
from pathlib import Path
from typing import Any, TypeGuard

from jsonargparse import Namespace
from lightning.fabric.utilities.seed import max_seed_value as MAX_SEED
from lightning.fabric.utilities.seed import min_seed_value as MIN_SEED

from gd_lightning.errors import InputError


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


def check_seed(config: Any) -> None:
    """Refuse, in one line, a ``seed_everything`` that Lightning cannot take, before it is
    used (it raises a traceback); the data's seed is checked by the data module."""
    seed = config.get("seed_everything")
    if is_int(seed) and not MIN_SEED <= seed <= MAX_SEED:
        raise InputError(
            f"seed_everything must be between {MIN_SEED} and {MAX_SEED}, got {seed}: "
            f"choose a smaller seed"
        )


def is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an integer (and not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_trainer_counts(trainer: Any) -> None:
    """Refuse, in one line, Trainer counts Lightning takes without a check and fails on
    later (a division by zero mid-run): ``accumulate_grad_batches`` below 1."""
    count = trainer.accumulate_grad_batches
    if not isinstance(count, int) or count < 1:
        raise InputError(
            f"trainer.accumulate_grad_batches must be 1 or more (batches per update), got "
            f"{count}: set --trainer.accumulate_grad_batches 1 for an update every batch"
        )


def check_groups(config: Any, groups: tuple[str, ...]) -> None:
    """Refuse, in one line, a group of options (``trainer``, ``checkpoint``, ...) given a
    single value in a config (``trainer: 0``): jsonargparse takes it in place of the
    group's options, and the run would fail far from the mistake."""
    for group in groups:
        value = config.get(group)
        if not isinstance(value, Namespace):
            raise InputError(
                f"{group} is {value!r} in the config, but it holds {group}.* options: write "
                f"them under it as a mapping ({group}: {{...}}), or leave {group} out"
            )
