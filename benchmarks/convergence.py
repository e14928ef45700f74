"""How fast each way of fitting comes within 1% of the least-squares optimum.

For each tutorial's data: the tutorial's own recipe, plain gradient descent at the
learning rate the curvature allows (``lr: auto``), the same on standardized data,
Adam, and L-BFGS; and the same (but the tutorial recipe) on two real tables that
scikit-learn ships (``diabetes``: 442 rows, 10 features; ``linnerud``: 20 rows, 3
features, 3 targets; needs the ``test`` extra), written to CSV files and read by
``TabularDataModule``. Every run goes through the package's own configs or command
line and Trainer, stopped by ``ConvergenceMonitor(target_gap=0.01)`` or by the
epoch cap. Prints epochs, the full-batch prediction from the curvature where it
applies, and wall time.

    python benchmarks/convergence.py                 # all datasets, cap 2000 epochs
    python benchmarks/convergence.py --max-epochs 5 --datasets crop_yields_5 diabetes
"""

import argparse
import logging
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

from lightning.pytorch.utilities import disable_possible_user_warnings

from gd_lightning import ConvergenceMonitor
from gd_lightning.cli import cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TUTORIALS = ["quadratic_speed", "line_fit", "crop_yields", "linear_arange", "crop_yields_5"]
#: scikit-learn's tables: the targets, then what the fast configs do (standardize)
REAL = {"diabetes": ["target"], "linnerud": ["Weight", "Waist", "Pulse"]}
DATASETS = TUTORIALS + list(REAL)
STANDARDIZED = "--data.standardize_features true --model.lr auto --model.optimization manual"
# recipe -> (config folder, extra options); full_batch_gd marks where the prediction applies
RECIPES = {
    "tutorial recipe": ("", ""),
    "GD, curvature lr": (
        "",
        "--model.lr auto --model.optimization manual --model.optimizer null --data.batch_size null",
    ),
    "standardized GD": ("fast", ""),
    "Adam (lr 0.1), std.": (
        "fast",
        "--model.optimization automatic --model.optimizer torch.optim.Adam --model.lr 0.1",
    ),
    "L-BFGS, std.": (
        "fast",
        "--model.optimization automatic --model.optimizer torch.optim.LBFGS --model.lr 1 "
        "--model.optimizer.max_iter 1 --model.optimizer.max_eval 25 "
        "--model.optimizer.line_search_fn strong_wolfe",
    ),
}
QUIET = (
    "--trainer.logger false --trainer.enable_checkpointing false --trainer.callbacks [] "
    "--trainer.enable_progress_bar false --trainer.enable_model_summary false "
    "--convergence.target_gap 0.01 --convergence.verbose false --report.print_table false"
)


def real_table(dataset: str, folder: Path) -> Path:
    """scikit-learn's ``dataset`` as a CSV file with a header, every digit kept."""
    import numpy as np
    from sklearn import datasets

    table = getattr(datasets, f"load_{dataset}")()
    names = [*table.feature_names, *REAL[dataset]]
    path = folder / f"{dataset}.csv"
    values = np.column_stack([table.data, table.target])
    np.savetxt(path, values, delimiter=",", header=",".join(names), comments="", fmt="%.17g")
    return path


def data_options(dataset: str, recipe: str) -> list[str] | None:
    """The options that choose ``dataset`` for ``recipe`` (``None``: no such run)."""
    folder, extra = RECIPES[recipe]
    if dataset in TUTORIALS:
        return ["--config", str(CONFIGS / folder / f"{dataset}.yaml"), *extra.split()]
    if recipe == "tutorial recipe":
        return None
    path = real_table(dataset, Path(tempfile.mkdtemp()))
    targets = "[" + ",".join(REAL[dataset]) + "]"
    options = ["--model", "LinearRegression", "--data", "TabularDataModule",
               "--data.csv_path", str(path), "--data.targets", targets]  # fmt: skip
    return options + (STANDARDIZED.split() if folder == "fast" else []) + extra.split()


def run(dataset: str, recipe: str, max_epochs: int, max_steps: int) -> dict | None:
    options = data_options(dataset, recipe)
    if options is None:
        return None
    limits = f"--trainer.max_epochs {max_epochs} --trainer.max_steps {max_steps}"
    os.chdir(tempfile.mkdtemp())  # each run's config, report and figures land out of the way
    built = cli([*options, *QUIET.split(), *limits.split()], run=False)
    start = time.perf_counter()
    built.trainer.fit(built.model, datamodule=built.datamodule)
    seconds = time.perf_counter() - start
    monitor = next(c for c in built.trainer.callbacks if isinstance(c, ConvergenceMonitor))
    # the parameters the fit ended with (the logged gaps are each epoch's last step's)
    gap = monitor.reference.gap(built.model.theta())
    return {
        "epochs": built.trainer.current_epoch,
        "steps": built.trainer.global_step,
        "reached": gap <= 0.01,
        "gap": gap,
        # the prediction is for plain full-batch gradient descent (tutorials 3 and 4 use
        # minibatches)
        "predicted": monitor.predicted_epochs if built.datamodule.batch_size is None else None,
        "seconds": seconds,
    }


def show_count(value: float | None) -> str:
    if value is None:
        return "-"
    return "never" if math.isinf(value) else f"{int(value):,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-epochs", type=int, default=2000)
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    options = parser.parse_args()
    disable_possible_user_warnings()
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    print("| data | recipe | epochs to 1% | predicted (full-batch GD) | wall time | final gap |")
    print("|---|---|---|---|---|---|")
    for dataset in options.datasets:
        for recipe in RECIPES:
            result = run(dataset, recipe, options.max_epochs, options.max_steps)
            if result is None:
                continue
            epochs = (
                f"{result['epochs']:,}"
                if result["reached"]
                else f"not within {result['epochs']:,} ({result['steps']:,} steps)"
            )
            print(
                f"| {dataset} | {recipe} | {epochs} | {show_count(result['predicted'])} "
                f"| {result['seconds']:.2f} s | {result['gap']:.3g} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
