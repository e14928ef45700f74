"""The learned parameters by name, printed and saved beside the checkpoints."""

import json
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback

from gd_lightning.callbacks._common import checkpoint_folder, columns_of, reference_from, shown_path
from gd_lightning.io import shortest_decimal, write_csv_atomic, write_text_atomic


class ParameterReport(Callback):
    """At the end of a fit, print the learned parameters and save them as JSON and CSV.

    For the quadratic model the parameters are ``a``, ``b`` and ``c``; for the
    linear model, per target, each feature's weight under the feature's column
    name, and the bias. Beside each, in the same (original) units, the least-squares
    optimum's value: the best parameters there are for the training split (from the
    [`ConvergenceMonitor`][gd_lightning.ConvergenceMonitor]'s reference, or computed
    here when the Trainer has none; left out for data or models it cannot be computed
    for). The files ``parameters.json`` (``{"parameters": {target: {parameter:
    value}}, "optimum": {target: {parameter: value}}}``) and ``parameters.csv``
    (columns ``target, parameter, value, optimum``) go next to the checkpoints, or
    into the log folder when there are none. Each learned value is written as the
    shortest decimal that reads back as the same parameter, bit for bit (float32, or
    float64 under ``precision="64-true"`` and where float32 cannot carry the data's
    shifts, as for timestamps); the optimum with float64's digits.

    Args:
        print_table: print the table to standard output as well.
    """

    def __init__(self, print_table: bool = True) -> None:
        self.print_table = print_table

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        coefficients = getattr(pl_module, "coefficients", None)
        if not trainer.is_global_zero or coefficients is None:
            return
        # every digit the parameters hold: float32's shortest decimal, or float64's (for
        # float64 parameters, and for original-unit values of data float32 cannot carry)
        scaling = getattr(pl_module, "scaling", None)
        wide = bool(getattr(scaling, "wide", False))
        digits = shortest_decimal(torch.float64 if wide else pl_module.dtype)
        names = columns_of(trainer, pl_module)
        table = {
            target: {name: digits(value) for name, value in row.items()}
            for target, row in coefficients(*names).items()
        }
        reference = reference_from(getattr(trainer, "datamodule", None), pl_module)
        optimum = None if reference is None else coefficients(*names, theta=reference.solution)
        rows = [
            (target, name, value, *([] if optimum is None else [optimum[target][name]]))
            for target, row in table.items()
            for name, value in row.items()
        ]
        folder = checkpoint_folder(trainer)
        report = {"model": type(pl_module).__name__, "parameters": table}
        header = ["target", "parameter", "value"]
        if optimum is not None:
            report["optimum"] = optimum
            header.append("optimum")
        write_text_atomic(folder / "parameters.json", json.dumps(report, indent=2) + "\n")
        write_csv_atomic(folder / "parameters.csv", header, rows)
        if self.print_table:
            print(
                format_table(
                    rows, title=f"Learned parameters ({shown_path(folder / 'parameters.json')})"
                )
            )


def format_table(rows: Sequence[tuple[Any, ...]], title: str) -> str:
    """A plain-text table of ``(target, parameter, value)`` rows, or of ``(target,
    parameter, value, optimum)`` rows with the least-squares optimum beside each value.

    Examples:
        >>> print(format_table([("y", "a", 0.5), ("y", "b", -12.25)], title="Learned"))
        Learned
        target  parameter       value
        y       a                 0.5
        y       b              -12.25
        >>> print(format_table([("y", "a", 0.5, 0.4999)], title="Learned"))
        Learned
        target  parameter       value     optimum
        y       a                 0.5      0.4999
    """
    width_t = max([len("target")] + [len(row[0]) for row in rows])
    width_p = max([len("parameter")] + [len(row[1]) for row in rows])
    best = bool(rows) and len(rows[0]) == 4
    lines = [
        title,
        f"{'target':<{width_t}}  {'parameter':<{width_p}}  {'value':>10}"
        + (f"  {'optimum':>10}" if best else ""),
    ]
    for row in rows:
        line = f"{row[0]:<{width_t}}  {row[1]:<{width_p}}  {row[2]:>10.6g}"
        lines.append(line + (f"  {row[3]:>10.6g}" if best else ""))
    return "\n".join(lines)
