"""The benchmark scripts run (on tiny sizes: their figures are measured, never tested)."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_convergence_benchmark_runs() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "convergence.py"),
            "--max-epochs",
            "3",
            "--datasets",
            "line_fit",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,  # fmt: skip
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| line_fit")]
    assert len(rows) == 5
    assert rows[2].split("|")[3].strip() == "1"  # standardized GD: one epoch on this data


def test_speed_benchmark_runs_on_small_sizes() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "speed.py"),
            "--tiny-steps",
            "5",
            "--rows",
            "9000",
            "--repeats",
            "1",
            "--loader-batches",
            "2",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,  # fmt: skip
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| tiny") or
            line.startswith("| large")]  # fmt: skip
    assert len(rows) == 6 and "µs/step" in rows[1] and "M rows/s" in rows[-1]
