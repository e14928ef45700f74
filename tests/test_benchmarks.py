"""The benchmark scripts run (on tiny sizes: their figures are measured, never tested)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def table_rows(script: str, options: str) -> list[str]:
    """Run ``benchmarks/<script>`` with ``options``; the rows of the table it prints."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *options.split()],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]


def test_convergence_benchmark_runs() -> None:
    rows = table_rows("convergence.py", "--max-epochs 3 --datasets line_fit")
    assert len(rows) == 5
    assert rows[2].split("|")[3].strip() == "1"  # standardized GD: one epoch on this data
    real = table_rows("convergence.py", "--max-epochs 3 --datasets linnerud")
    assert [row.split("|")[2].strip() for row in real] == list(
        ("GD, curvature lr", "standardized GD", "Adam (lr 0.1), std.", "L-BFGS, std.")
    )  # scikit-learn's table has no tutorial recipe


def test_speed_benchmark_runs_on_small_sizes() -> None:
    rows = table_rows("speed.py", "--tiny-steps 5 --rows 9000 --repeats 1 --loader-batches 2 "
                      "--wide-rows 300 --wide-columns 20 --wide-epochs 2")  # fmt: skip
    tiny = [row for row in rows if row.startswith("| tiny")]
    large = [row for row in rows if row.startswith("| large")]
    wide = [row for row in rows if row.startswith("| wide")]
    assert len(tiny) == 4 and all("µs/step" in row for row in tiny)
    assert "the idiomatic module's time" in tiny[-1]  # the package against idiomatic Lightning
    speeds = {row.split("|")[1].strip(): row for row in large if "M rows/s" in row}
    assert len(speeds) == 10
    assert "the logging bare module's time" in speeds["large: gd-lightning fit"]
    assert "the bare module's time" in speeds["large: gd-lightning fit, written_steps"]
    assert "index_select's speed" in speeds["large 65536: gd-lightning fit"]
    assert [row.count("x the epoch") for row in large[-2:]] == [1, 1]  # default, opt-in
    assert len(wide) == 2 and "the fixed rate's time" in wide[1]


def test_configs_benchmark_runs() -> None:
    rows = table_rows("configs.py", "--pairs 1 --names quadratic_speed")
    (row,) = rows
    cells = [cell.strip() for cell in row.strip(" |").split("|")]
    assert cells[0] == "quadratic_speed" and cells[3].endswith("x") and cells[4].endswith(" s")


def test_memory_benchmark_runs_on_small_sizes() -> None:
    rows = table_rows("memory.py", "--gigabytes 0.01")
    assert [row.split("|")[1].strip() for row in rows] == ["mapped", "streamed", "loaded"]
    assert all(row.count("MiB") == 2 for row in rows)


def test_formats_benchmark_runs_on_small_sizes() -> None:
    pytest.importorskip("pyarrow")
    rows = table_rows("formats.py", "--rows 5000 --repeats 1")
    assert [row.split("|")[1].strip() for row in rows] == [
        "Parquet", "CSV", "Parquet, streamed", ".npy, loaded", ".npy, memory-mapped"
    ]  # fmt: skip
    assert all(row.count(" s |") == 2 and row.count("MiB") == 2 for row in rows)
