"""The one exception type for a user's mistake in data or configuration."""


class InputError(ValueError):
    """A mistake in the user's data or configuration.

    Its message is one line that names the problem and the fix; the command line
    prints it as it is, without a traceback.
    """


class DivergenceError(InputError):
    """Training blew up: the loss became non-finite or exploded, usually from too large an lr."""
