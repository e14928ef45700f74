"""The learned parameters by name, printed and saved beside the checkpoints."""

import json

import lightning.pytorch as pl
from lightning.pytorch import Callback

from gd_lightning.callbacks._common import checkpoint_folder, columns_of, shown_path
from gd_lightning.io import shortest_decimal, write_csv_atomic, write_text_atomic


class ParameterReport(Callback):
    """At the end of a fit, print the learned parameters and save them as JSON and CSV.

    For the quadratic model the parameters are ``a``, ``b`` and ``c``; for the
    linear model, per target, each feature's weight under the feature's column
    name, and the bias. The files ``parameters.json`` (``{target: {parameter:
    value}}``) and ``parameters.csv`` (columns ``target, parameter, value``) go
    next to the checkpoints, or into the log folder when there are none. Each value
    is written as the shortest decimal that reads back as the same parameter, bit for
    bit (float32, or float64 under ``precision="64-true"``).

    Args:
        print_table: print the table to standard output as well.
    """

    def __init__(self, print_table: bool = True) -> None:
        self.print_table = print_table

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        coefficients = getattr(pl_module, "coefficients", None)
        if not trainer.is_global_zero or coefficients is None:
            return
        # every digit the parameters hold: float32's shortest decimal, or float64's
        digits = shortest_decimal(pl_module.dtype)
        table = {
            target: {name: digits(value) for name, value in row.items()}
            for target, row in coefficients(*columns_of(trainer, pl_module)).items()
        }
        rows = [
            (target, name, value) for target, row in table.items() for name, value in row.items()
        ]
        folder = checkpoint_folder(trainer)
        report = {"model": type(pl_module).__name__, "parameters": table}
        write_text_atomic(folder / "parameters.json", json.dumps(report, indent=2) + "\n")
        write_csv_atomic(folder / "parameters.csv", ["target", "parameter", "value"], rows)
        if self.print_table:
            print(
                format_table(
                    rows, title=f"Learned parameters ({shown_path(folder / 'parameters.json')})"
                )
            )


def format_table(rows: list[tuple[str, str, float]], title: str) -> str:
    """A plain-text table of ``(target, parameter, value)`` rows.

    Examples:
        >>> print(format_table([("y", "a", 0.5), ("y", "b", -12.25)], title="Learned"))
        Learned
        target  parameter       value
        y       a                 0.5
        y       b              -12.25
    """
    width_t = max([len("target")] + [len(t) for t, _, _ in rows])
    width_p = max([len("parameter")] + [len(p) for _, p, _ in rows])
    lines = [title, f"{'target':<{width_t}}  {'parameter':<{width_p}}  {'value':>10}"]
    lines += [f"{t:<{width_t}}  {p:<{width_p}}  {v:>10.6g}" for t, p, v in rows]
    return "\n".join(lines)
