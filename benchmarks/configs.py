"""Whole-process time of each shipped config against the tutorial written by hand.

For each tutorial: ``gd-lightning fit --config <name>``, the config as shipped (all it
does: TensorBoard logging, figures, checkpoint, the convergence block and the
parameter report) and ``python benchmarks/tutorials/<name>.py`` (the tutorial's own
code, printing and drawing what it prints and draws), run in turn, A B A B, each
in a fresh process and folder. Prints the median seconds of each and the median of
the pairwise ratios; and, run in the same turns, the config without its landscape
figure (``--trainer.callbacks.landscape false``: FitFigures is each config's last
callback), whose median difference is what the landscape costs.

    python benchmarks/configs.py                       # 3 pairs each
    python benchmarks/configs.py --pairs 1 --names quadratic_speed
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["quadratic_speed", "line_fit", "crop_yields", "linear_arange", "crop_yields_5"]


def seconds(command: list[str]) -> float:
    """Wall time of ``command`` run to its end in a new empty folder."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--names", nargs="*", default=NAMES)
    options = parser.parse_args()
    print(f"medians of {options.pairs} pairs, run in turn")
    print("| config | gd-lightning fit | by hand | ratio | the landscape's cost |")
    print("|---|---|---|---|---|")
    for name in options.names:
        package = [sys.executable, "-m", "gd_lightning", "fit", "--config", name]
        flat = [*package, "--trainer.callbacks.landscape", "false"]
        by_hand = [sys.executable, str(ROOT / "benchmarks" / "tutorials" / f"{name}.py")]
        times = [(seconds(package), seconds(by_hand), seconds(flat)) for _ in range(options.pairs)]
        ours, hand, without = zip(*times, strict=True)
        ratio = statistics.median(a / b for a, b, _ in times)
        cost = statistics.median(a - c for a, _, c in times)
        ours_s, hand_s = statistics.median(ours), statistics.median(hand)
        print(f"| {name} | {ours_s:.1f} s | {hand_s:.1f} s | {ratio:.2f}x | {cost:+.2f} s |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
