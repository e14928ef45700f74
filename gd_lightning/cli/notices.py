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
    # one batch an epoch logs its step values every log_every_n_steps steps all the same
    r"The number of training batches \(1\) is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
#: Lightning's notice, when a checkpoint's callbacks are not in the Trainer, that their
#: states are not restored: a fit's checkpoint callback, absent from predict
CALLBACK_STATES_WARNING = "Be aware that when using `ckpt_path`, callbacks used to create"
#: the advertisement Lightning prints at every start
FRAMEWORK_TIP = "💡 Tip:"


class _NoTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(FRAMEWORK_TIP)


@contextmanager
def framework_notices_off() -> Iterator[None]:
    """Leave out, while the command runs, Lightning's lines that do not concern the fit
    (:data:`FRAMEWORK_WARNINGS`, the tip); everything else it says is shown."""
    tip_filter = _NoTip()
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch.utilities.rank_zero",)]
    with warnings.catch_warnings():
        for message in FRAMEWORK_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.addFilter(tip_filter)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(tip_filter)
