"""The one exception type for a user's mistake in data or configuration."""


class InputError(ValueError):
    """A mistake in the user's data or configuration.

    Its message is one line that names the problem and the fix; the command line
    prints it as it is, without a traceback.
    """


class DivergenceError(InputError):
    """Training blew up: the loss became non-finite or exploded, usually from too large an lr."""


def check_argument(name: str, value: object, kind: type | tuple[type, ...], what: str) -> None:
    """Refuse, in one line naming the argument, a ``value`` of the wrong type for
    ``name`` (``what`` says what it takes); ``True`` and ``False`` are no numbers here.

    Example:
        >>> check_argument("batch_size", 2.5, int, "a whole number of rows")
        Traceback (most recent call last):
        ...
        gd_lightning.errors.InputError: batch_size must be a whole number of rows, got 2.5 (float)
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    is_bool = isinstance(value, bool) and bool not in kinds
    if is_bool or not isinstance(value, kinds):
        raise InputError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
