"""The line a tutorial prints as it trains, printed by the run at the same cadence."""

import string
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback

from gd_lightning.errors import InputError


class LossPrintout(Callback):
    """Print a line of the training loss every ``every_n_epochs`` epochs, as the
    tutorials' loops do (``if epoch % 30 == 0: print(f"epoch {epoch}, loss ...")``),
    so the console can be read beside the tutorial line by line.

    The line is printed at the end of each epoch whose number (counted from 0, as the
    tutorials' loops count) is a multiple of ``every_n_epochs``. It shows the loss of
    that epoch's last training batch, measured before the batch's update: the number
    a tutorial's loop holds when it prints. Through the progress bar's own ``print``
    when there is one, so the bar is not torn.

    Args:
        every_n_epochs: epochs between lines (1: every epoch).
        line: the line, a Python format string over the fields ``epoch`` (the
            epoch's number, from 0), ``epochs_done`` (from 1), ``step`` (the updates
            done), ``loss`` (the batch's MSE, a float) and ``rmse`` (its square root,
            taken in the loss's own precision, as ``loss.sqrt().item()``). ``"{rmse}"``
            prints every digit, as ``print(loss.sqrt().item())`` does.
        header: a line printed once, before the first, saying what the numbers are;
            ``None`` (the default) writes one for a line that is a lone number
            (``"{rmse}"``, ``"{loss}"``: `header_for`), ``""`` prints none.

    Examples:
        >>> LossPrintout(line="epoch {epoch}, loss {loss:.4f}").format(30, 31, 60, 2.5)
        'epoch 30, loss 2.5000'
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        line: str = "epoch {epoch}, loss {loss:.4f}",
        header: str | None = None,
    ) -> None:
        if (
            isinstance(every_n_epochs, bool)
            or not isinstance(every_n_epochs, int)
            or every_n_epochs < 1
        ):
            raise InputError(
                f"every_n_epochs of LossPrintout must be a whole number of epochs of at least 1, "
                f"got {every_n_epochs!r}"
            )
        self.every_n_epochs = every_n_epochs
        self.line = line
        try:
            self.format(0, 1, 1, 1.0)
        except (KeyError, IndexError, ValueError, AttributeError) as err:
            raise InputError(
                f"the printout's line {line!r} is not a format string over the fields epoch, "
                f"epochs_done, step, loss and rmse ({type(err).__name__}: {err}): for example "
                f"'epoch {{epoch}}, loss {{loss:.4f}}'"
            ) from None
        self._last_loss: torch.Tensor | None = None
        self.header = header_for(line, every_n_epochs) if header is None else header
        self._header_due = False

    def format(self, epoch: int, epochs_done: int, step: int, loss: float | torch.Tensor) -> str:
        """The line for these values (``loss`` a float, or the loss tensor itself)."""
        value = torch.as_tensor(loss).detach()
        value = value if value.is_floating_point() else value.double()
        rmse = value.sqrt().item()
        return self.line.format(
            epoch=epoch, epochs_done=epochs_done, step=step, loss=value.item(), rmse=rmse
        )

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # printed with the first line: before it, a progress bar has no line to print on
        self._header_due = bool(self.header)

    def on_train_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._last_loss = None

    def on_train_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._last_loss = loss.detach()

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        epoch = trainer.current_epoch
        if self._last_loss is None or epoch % self.every_n_epochs or not trainer.is_global_zero:
            return
        line = self.format(epoch, epoch + 1, trainer.global_step, self._last_loss.cpu())
        if self._header_due:
            line, self._header_due = f"{self.header}\n{line}", False
        _print(trainer, line)


def _print(trainer: "pl.Trainer", line: str) -> None:
    bar = trainer.progress_bar_callback  # its print keeps the bar whole
    (print if bar is None else bar.print)(line)


#: what a lone field of the printout is, in words
FIELD_WORDS = {
    "loss": "MSE: the mean squared error",
    "rmse": "RMSE: the square root of the mean squared error",
}


def header_for(line: str, every_n_epochs: int) -> str:
    """The header of a printout whose ``line`` is a lone number (``"{rmse}"``), naming it;
    ``""`` for a line that names its numbers itself.

    Examples:
        >>> header_for("{loss}", 10)
        "MSE: the mean squared error of every 10th epoch's last training batch, before its update"
        >>> header_for("epoch {epoch}, loss {loss:.4f}", 30)
        ''
    """
    fields = [field for _, field, _, _ in string.Formatter().parse(line) if field]
    words = "".join(text for text, _, _, _ in string.Formatter().parse(line)).strip()
    if len(fields) != 1 or words or fields[0] not in FIELD_WORDS:
        return ""
    which = "each epoch's" if every_n_epochs == 1 else f"every {every_n_epochs}th epoch's"
    return f"{FIELD_WORDS[fields[0]]} of {which} last training batch, before its update"
