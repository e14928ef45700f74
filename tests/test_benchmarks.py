"""The benchmark scripts run (on tiny sizes: their figures are measured, never tested)."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def table_rows(script: str, options: str, first_word: str) -> list[str]:
    """Run ``benchmarks/<script>`` with ``options``; its table rows about ``first_word``."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *options.split()],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith(f"| {first_word}")]


def test_convergence_benchmark_runs() -> None:
    rows = table_rows("convergence.py", "--max-epochs 3 --datasets line_fit", "line_fit")
    assert len(rows) == 5
    assert rows[2].split("|")[3].strip() == "1"  # standardized GD: one epoch on this data


def test_speed_benchmark_runs_on_small_sizes() -> None:
    options = "--tiny-steps 5 --rows 9000 --repeats 1 --loader-batches 2"
    tiny = table_rows("speed.py", options, "tiny")
    large = table_rows("speed.py", options, "large")
    assert len(tiny) == 2 and all("µs/step" in row for row in tiny)
    assert len(large) == 4 and all("M rows/s" in row for row in large)
