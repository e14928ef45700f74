"""What the command shows of Lightning while it runs: not its notices that may be false
positives, nor notices addressed to its own code; its start-up lines only once the
command's checks pass."""

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from lightning.pytorch.utilities import disable_possible_user_warnings

#: Lightning's loggers of start-up lines ("Seed set to 0", "GPU available: ...", its
#: tips): quiet while the command checks its input, so that a mistake is the only line
STARTUP_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.fabric.utilities.seed",
)


@contextmanager
def quiet_start() -> Iterator[Callable[[], None]]:
    """While the command runs, leave out two kinds of warnings, by category and never by
    their wording, and keep Lightning's start-up lines quiet (its loggers' level raised
    to WARNING, Python's public way) until the call it yields is made: the checks passed
    and the run starts. Every other warning and every error shows.

    - Lightning's ``PossibleUserWarning``, its category for notices that may be false
      positives, left out with its public ``disable_possible_user_warnings``: for this
      package they are (a ``validation_step`` with no validation split is how its models
      meet data without one; tensors in memory need no loader workers; a config with
      fewer batches an epoch than ``log_every_n_steps`` still logs every
      ``log_every_n_steps`` steps, counted across epochs).
    - A ``FutureWarning`` raised at a line of Lightning's own code: a library it calls
      telling Lightning of a change ahead, which a user of this command cannot act on.
    """
    loggers = [logging.getLogger(name) for name in STARTUP_LOGGERS]
    levels = [logger.level for logger in loggers]

    def run_starts() -> None:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)

    with warnings.catch_warnings():
        disable_possible_user_warnings()
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"lightning\.")
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        try:
            yield run_starts
        finally:
            run_starts()
