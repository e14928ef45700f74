"""How fast each way of fitting comes within 1% of the least-squares optimum.

For each tutorial's data: the tutorial's own recipe, plain gradient descent at the
learning rate the curvature allows, the same on standardized data, Adam, and
L-BFGS. Every run goes through the package's own configs and Trainer, stopped by
``ConvergenceMonitor(target_gap=0.01)`` or by the epoch cap. Prints epochs, the
full-batch prediction from the curvature where it applies, and wall time.

    python benchmarks/convergence.py                 # all five datasets, cap 2000 epochs
    python benchmarks/convergence.py --max-epochs 5 --datasets crop_yields_5
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
DATASETS = ["quadratic_speed", "line_fit", "crop_yields", "linear_arange", "crop_yields_5"]
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
        "--model.optimizer.max_iter 1 --model.optimizer.line_search_fn strong_wolfe",
    ),
}
QUIET = (
    "--trainer.logger false --trainer.enable_checkpointing false --trainer.callbacks [] "
    "--trainer.enable_progress_bar false --trainer.enable_model_summary false "
    "--convergence.target_gap 0.01 --convergence.verbose false --report.print_table false"
)


def run(dataset: str, recipe: str, max_epochs: int, max_steps: int) -> dict:
    folder, extra = RECIPES[recipe]
    config = CONFIGS / folder / f"{dataset}.yaml"
    limits = f"--trainer.max_epochs {max_epochs} --trainer.max_steps {max_steps}"
    os.chdir(tempfile.mkdtemp())  # each run's config, report and figures land out of the way
    built = cli(
        ["--config", str(config), *extra.split(), *QUIET.split(), *limits.split()], run=False
    )
    start = time.perf_counter()
    built.trainer.fit(built.model, datamodule=built.datamodule)
    seconds = time.perf_counter() - start
    monitor = next(c for c in built.trainer.callbacks if isinstance(c, ConvergenceMonitor))
    # the parameters the fit ended with (the logged gaps are each epoch's last step's)
    gap = monitor.reference.gap(built.model.theta())
    # the prediction is for full-batch gradient descent; tutorials 3 and 4 use minibatches
    minibatch_tutorial = recipe == "tutorial recipe" and dataset in ("crop_yields", "linear_arange")
    plain = recipe in ("tutorial recipe", "GD, curvature lr") and not minibatch_tutorial
    return {
        "epochs": built.trainer.current_epoch,
        "steps": built.trainer.global_step,
        "reached": gap <= 0.01,
        "gap": gap,
        "predicted": monitor.predicted_epochs if plain or recipe == "standardized GD" else None,
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
