"""The rule of a resumed fit: it continues with the settings it was saved with (Lightning
restores the optimizer's state, its rate too, and the data's order), so a setting given
otherwise is refused in one line, not recorded and ignored. The model
(``resume_changes``) and the DataModule (``check_resume``) each apply it to their own
settings; these functions compare and word it."""

from collections.abc import Mapping
from typing import Any

from gd_lightning.errors import InputError


def same_setting(value: Any, saved: Any) -> bool:
    """Whether a setting's ``value`` equals a checkpoint's ``saved`` plain value (a list
    and a tuple of equal items are the same; so are 1 and 1.0).

    Examples:
        >>> same_setting([1, 2.0], (1.0, 2)), same_setting(0.1, 0.01)
        (True, False)
    """
    if isinstance(value, list | tuple) and isinstance(saved, list | tuple):
        return len(value) == len(saved) and all(map(same_setting, value, saved))
    return bool(value == saved)


def changed_settings(
    saved: Mapping[str, Any], current: Mapping[str, Any], free: frozenset[str] = frozenset()
) -> list[tuple[str, Any, Any]]:
    """The settings (name, saved value, current value) that differ between a checkpoint's
    ``saved`` ones and the ``current`` ones, leaving out the ``free`` names.

    Examples:
        >>> changed_settings({"lr": 0.01, "bias": True}, {"lr": 0.1, "bias": True})
        [('lr', 0.01, 0.1)]
    """
    names = [name for name in {**saved, **current} if name not in free]
    return [
        (name, saved.get(name), current.get(name))
        for name in names
        if not same_setting(current.get(name), saved.get(name))
    ]


def resume_refusal(where: str, what: str, changes: list[tuple[str, Any, Any]]) -> InputError:
    """The one-line refusal of a fit resumed from ``where`` with other ``what`` settings."""
    name, saved, current = changes[0]
    more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
    return InputError(
        f"{what}.{name} is {shown_setting(current)} but the run in {where} was trained with "
        f"{shown_setting(saved)}{more}, and a resumed fit continues with its settings (its "
        f"optimizer's too): resume with the run's own config (config.yaml in its folder), or "
        f"start a new fit to change them"
    )


def shown_setting(value: Any) -> str:
    """``value`` as an option would be typed (``false``, ``[a, b]``), cut to a line."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        text = "[" + ", ".join(map(shown_setting, value)) + "]"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
