"""Lightning's notices that do not concern the user's fit, left out while the command
runs, and its start-up lines, quiet until the command's checks pass."""

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Lightning's notices that say nothing about the user's fit: a validation_step with
#: no validation split is how this package's models meet data without one; the
#: deprecation is Lightning's own use of a PyTorch name
FRAMEWORK_WARNINGS = (
    # cli(args) from Python in a process started with arguments of its own (a notebook's
    # kernel): the args given are the ones used
    "LightningCLI's args parameter is intended to run from within Python",
    "You defined a `validation_step` but have no `val_dataloader`",
    # fewer batches an epoch than log_every_n_steps: train/loss is still written every
    # log_every_n_steps steps (counted across epochs), and each epoch's values every epoch
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
#: Lightning's notice, when a checkpoint's callbacks are not in the Trainer, that their
#: states are not restored: a fit's checkpoint callback, absent from predict
CALLBACK_STATES_WARNING = "Be aware that when using `ckpt_path`, callbacks used to create"
#: ModelCheckpoint's notice that its folder holds files: a resumed run's own
RESUMED_FOLDER_WARNING = "Checkpoint directory .* exists and is not empty"
#: Lightning's loggers of start-up lines ("Seed set to 0", "GPU available: ...", its
#: tips): quiet while the command checks its input, so that a mistake is the only line
STARTUP_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.fabric.utilities.seed",
)


@contextmanager
def quiet_start() -> Iterator[Callable[[], None]]:
    """While the command runs, leave out Lightning's warnings that do not concern the fit
    (:data:`FRAMEWORK_WARNINGS`), and keep its start-up lines quiet (its loggers' level
    raised to WARNING, Python's public way) until the call it yields is made: the
    checks passed and the run starts. Warnings and errors always show."""
    loggers = [logging.getLogger(name) for name in STARTUP_LOGGERS]
    levels = [logger.level for logger in loggers]

    def run_starts() -> None:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)

    with warnings.catch_warnings():
        for message in FRAMEWORK_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        try:
            yield run_starts
        finally:
            run_starts()
