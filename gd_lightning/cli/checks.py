"""Checks of a run's settings that Lightning would only fail on later, with a traceback."""

from typing import Any, TypeGuard

from jsonargparse import Namespace
from lightning.fabric.utilities.seed import max_seed_value as MAX_SEED
from lightning.fabric.utilities.seed import min_seed_value as MIN_SEED

from gd_lightning.errors import InputError


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
