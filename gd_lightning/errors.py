"""The one exception type for a user's mistake in data or configuration."""

from collections.abc import Iterator


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

    Examples:
        >>> check_argument("batch_size", 2.5, int, "a whole number of rows")
        Traceback (most recent call last):
        ...
        gd_lightning.errors.InputError: batch_size must be a whole number of rows, got 2.5 (float)
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    is_bool = isinstance(value, bool) and bool not in kinds
    if is_bool or not isinstance(value, kinds):
        raise InputError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")


def exception_chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from or while handling, outermost first
    (each once, even where the chain loops).

    Examples:
        >>> try:
        ...     try:
        ...         raise KeyError("inner")
        ...     except KeyError as cause:
        ...         raise ValueError("outer") from cause
        ... except ValueError as err:
        ...     [type(e).__name__ for e in exception_chain(err)]
        ['ValueError', 'KeyError']
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
