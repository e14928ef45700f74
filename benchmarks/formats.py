"""Reading one table from Parquet, CSV and ``.npy`` files: load time, one epoch, memory.

Writes one table of ``--rows`` rows (2,000,000 by default) of 32 float32 features and
a target as a Parquet file, a CSV file and a ``.npy`` pair, then, for each (and for
the Parquet file streamed and the ``.npy`` pair memory-mapped, ``memory_map=True``), in a
fresh process: builds the ``TabularDataModule``
and reads, checks and splits the data (``setup("fit")``: the load time), then fits
``LinearRegression`` for one epoch of minibatches of 4096. Reported per run: the load
time, the epoch's time (``trainer.fit`` for one epoch, the data already read), and the
peaks of the process's own memory and of its resident size, as
``benchmarks/memory.py`` measures them; the medians of ``--repeats`` runs of each,
interleaved (round after round of the five), since a fresh process's first writes to
new memory cost this virtual machine anywhere from 0.2 to 1 s a 264 MB table. Needs
pyarrow (the ``parquet`` extra).

    python benchmarks/formats.py                 # 2,000,000 rows, 3 rounds
    python benchmarks/formats.py --rows 20000 --repeats 1   # a quick look
    python benchmarks/formats.py --sources "Parquet, streamed" ".npy, memory-mapped"
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from memory import peak_memory

FEATURES = 32
BATCH = 4096
ROW_GROUP = 1 << 17
NAMES = [f"x{i}" for i in range(FEATURES)] + ["y"]


def write_data(folder: Path, rows: int) -> None:
    """The same table as ``data.parquet``, ``data.csv`` and ``x.npy`` + ``y.npy``."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    generator = np.random.default_rng(0)
    x = generator.normal(size=(rows, FEATURES)).astype(np.float32)
    weights = generator.normal(size=(FEATURES, 1)).astype(np.float32)
    y = x @ weights + np.float32(0.5)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    table = pa.table(dict(zip(NAMES, [*x.T, y[:, 0]], strict=True)))
    # row groups of 131,072 rows (16 MiB of values here): what a streamed epoch holds
    pq.write_table(table, folder / "data.parquet", row_group_size=ROW_GROUP)
    pa_csv.write_csv(table, folder / "data.csv")


SOURCES = {
    "Parquet": lambda folder: {"parquet_path": f"{folder}/data.parquet",
                               "features": NAMES[:-1], "targets": ["y"]},
    "CSV": lambda folder: {"csv_path": f"{folder}/data.csv", "targets": ["y"]},
    "Parquet, streamed": lambda folder: {"parquet_path": f"{folder}/data.parquet",
                                         "features": NAMES[:-1], "targets": ["y"],
                                         "memory_map": True},
    ".npy, loaded": lambda folder: {"features_path": f"{folder}/x.npy",
                                    "targets_path": f"{folder}/y.npy"},
    ".npy, memory-mapped": lambda folder: {"features_path": f"{folder}/x.npy",
                                           "targets_path": f"{folder}/y.npy",
                                           "memory_map": True},
}  # fmt: skip


def child(folder: str, source: str) -> None:
    """Read and fit in this process; prints the times and peaks as JSON."""
    warnings.filterwarnings("ignore")
    from lightning.pytorch import Trainer  # imported here: the parent needs none of it

    from gd_lightning import LinearRegression, TabularDataModule

    with peak_memory() as peaks:
        start = time.perf_counter()
        data = TabularDataModule(batch_size=BATCH, **SOURCES[source](folder))
        data.setup("fit")
        loaded = time.perf_counter()
        model = LinearRegression(FEATURES, 1, lr=0.01, optimization="manual")
        trainer = Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                          enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False)  # fmt: skip
        trainer.fit(model, datamodule=data)
        fitted = time.perf_counter()
    print(json.dumps({"load_s": loaded - start, "epoch_s": fitted - loaded, **peaks}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sources", nargs="+", choices=list(SOURCES), default=list(SOURCES),
                        help="the sources to run (all by default)")  # fmt: skip
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        write_data(Path(folder), options.rows)
        sizes = {name: (Path(folder) / name).stat().st_size / 2**20
                 for name in ("data.parquet", "data.csv", "x.npy", "y.npy")}  # fmt: skip
        print(f"{options.rows:,} rows x {FEATURES} float32 features and a target: "
              f"Parquet {sizes['data.parquet']:,.0f} MiB, CSV {sizes['data.csv']:,.0f} MiB, "
              f".npy {sizes['x.npy'] + sizes['y.npy']:,.0f} MiB")  # fmt: skip
        print(
            "| source | load (read, check, split) | one epoch | peak own memory | peak resident |"
        )
        print("|---|---|---|---|---|")
        runs: dict[str, list[dict[str, float]]] = {source: [] for source in options.sources}
        for _ in range(options.repeats):
            for source in options.sources:
                done = subprocess.run(
                    [sys.executable, __file__, "--child", folder, source],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs[source].append(json.loads(done.stdout.strip().splitlines()[-1]))
        medians = {source: {key: statistics.median(run[key] for run in found)
                            for key in found[0]} for source, found in runs.items()}  # fmt: skip
        for source, found in medians.items():
            print(f"| {source} | {found['load_s']:.2f} s | {found['epoch_s']:.2f} s | "
                  f"{found['anon_mib']:,.0f} MiB | {found['rss_peak_mib']:,.0f} MiB |")  # fmt: skip
        if "CSV" in medians and "Parquet" in medians:
            ratio = medians["CSV"]["load_s"] / medians["Parquet"]["load_s"]
            print(f"Parquet loads {ratio:.1f}x as fast as CSV (medians of {options.repeats})")


if __name__ == "__main__":
    main()
