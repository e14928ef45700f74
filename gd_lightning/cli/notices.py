"""Lightning's notices that do not concern the user's fit, left out while the command runs."""

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Lightning's notices that say nothing about the user's fit: a validation_step with
#: no validation split is how this package's models meet data without one; the
#: deprecation is Lightning's own use of a PyTorch name
FRAMEWORK_WARNINGS = (
    # validate, test and predict given only a checkpoint pass LightningCLI the model it holds
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
#: the advertisement Lightning prints at every start
FRAMEWORK_TIP = "💡 Tip:"


#: the loggers whose handlers print Lightning's lines (when the root logger has none)
FRAMEWORK_LOGGERS = ("lightning.pytorch", "lightning.fabric")


class _NoTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(FRAMEWORK_TIP)


class HeldBack(logging.Filter):
    """Holds the lines a handler is given until :meth:`release`, then passes them on as
    they came: Lightning's start-up lines ("Seed set to 0", "GPU available: ...") wait
    until the run's data and settings have passed their checks, so that a mistake is
    the only line its command prints."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler
        self.held: list[logging.LogRecord] | None = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.held is None:
            return True
        self.held.append(record)
        return False

    def release(self) -> None:
        held, self.held = self.held or [], None
        for record in held:
            self.handler.handle(record)


#: the filters holding Lightning's lines while a command checks its input
_holding: list[HeldBack] = []


def release_notices() -> None:
    """Show the lines held back so far, and the later ones as they come: the run starts."""
    for held in _holding:
        held.release()


@contextmanager
def framework_notices_off() -> Iterator[None]:
    """Leave out, while the command runs, Lightning's lines that do not concern the fit
    (:data:`FRAMEWORK_WARNINGS`, the tip), and hold its start-up lines back until
    :func:`release_notices` (dropped if the command ends in an error before); everything
    else it says is shown."""
    tip_filter = _NoTip()
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch.utilities.rank_zero",)]
    handlers = [h for name in FRAMEWORK_LOGGERS for h in logging.getLogger(name).handlers]
    holding = [HeldBack(handler) for handler in handlers]
    with warnings.catch_warnings():
        for message in FRAMEWORK_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.addFilter(tip_filter)
        for held in holding:
            held.handler.addFilter(held)
        _holding.extend(holding)
        try:
            yield
            release_notices()  # a command that built its run without running it
        finally:
            for held in holding:
                held.handler.removeFilter(held)
                _holding.remove(held)
            for logger in loggers:
                logger.removeFilter(tip_filter)
