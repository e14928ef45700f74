"""Peak memory of a fit over data bigger than memory should be: ``.npy`` files
memory-mapped, a Parquet file streamed, against the ``.npy`` files loaded whole.

Writes a features file of about ``--gigabytes`` GB (float32, 32 columns) and its
targets, and the same rows as a Parquet file (row groups of 131,072 rows; with pyarrow,
the ``parquet`` extra), then fits ``LinearRegression`` for one epoch of minibatches of
4096 through ``TabularDataModule``: with ``memory_map: true`` on the ``.npy`` files and
on the Parquet file, and loading the arrays, each in a fresh process. Reported per run:
the peak of the process's own (anonymous) memory, sampled every 5 ms from
``/proc/self/status``, which is what the data costs; and the peak resident size, which
also counts pages of the mapped file the operating system holds in its cache and may
drop at any time.

    python benchmarks/memory.py                  # about 3 GB
    python benchmarks/memory.py --gigabytes 0.05 # a quick look
"""

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = 32
BATCH = 4096


def write_data(folder: Path, gigabytes: float, parquet: Any) -> int:
    """``x.npy`` (rows, 32) and ``y.npy`` (rows, 1), and with ``parquet``
    (``pyarrow.parquet``) the same rows as ``data.parquet``, written a block at a time;
    rows."""
    rows = int(gigabytes * 1e9 / (FEATURES * 4))
    x = np.lib.format.open_memmap(folder / "x.npy", "w+", np.float32, (rows, FEATURES))
    y = np.lib.format.open_memmap(folder / "y.npy", "w+", np.float32, (rows, 1))
    generator = np.random.default_rng(0)
    weights = generator.normal(size=(FEATURES, 1)).astype(np.float32)
    names = [f"x{i}" for i in range(FEATURES)] + ["y"]
    writer = None
    for start in range(0, rows, 1 << 20):
        block = generator.normal(size=(min(1 << 20, rows - start), FEATURES)).astype(np.float32)
        x[start : start + len(block)] = block
        y[start : start + len(block)] = targets = block @ weights + 0.5
        if parquet is not None:
            columns = dict(zip(names, [*block.T, targets[:, 0]], strict=True))
            table = importlib.import_module("pyarrow").table(columns)
            writer = writer or parquet.ParquetWriter(folder / "data.parquet", table.schema)
            writer.write_table(table, row_group_size=1 << 17)
    if writer is not None:
        writer.close()
    x.flush()
    y.flush()
    del x, y
    return rows


def memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


@contextmanager
def peak_memory() -> Iterator[dict[str, float]]:
    """Sample the process's own (anonymous) memory every 5 ms while the block runs; the
    dict yielded then holds its peak above the start (``anon_mib``) and the process's
    peak resident size (``rss_peak_mib``)."""
    peak = [memory_kib("RssAnon")]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], memory_kib("RssAnon"))

    threading.Thread(target=sample, daemon=True).start()
    baseline = memory_kib("RssAnon")
    found: dict[str, float] = {}
    try:
        yield found
    finally:
        done.set()
        found["anon_mib"] = (max(peak[0], memory_kib("RssAnon")) - baseline) / 1024
        found["rss_peak_mib"] = memory_kib("VmHWM") / 1024


def child(folder: str, mode: str) -> None:
    """One fit in this process (``mode``: mapped, streamed or loaded); prints its peaks
    as JSON."""
    warnings.filterwarnings("ignore")
    from lightning.pytorch import Trainer  # imported here: the parent needs none of it

    from gd_lightning import LinearRegression, TabularDataModule

    with peak_memory() as peaks:
        start = time.perf_counter()
        if mode == "streamed":
            names = [f"x{i}" for i in range(FEATURES)]
            data = TabularDataModule(parquet_path=f"{folder}/data.parquet", features=names,
                                     targets=["y"], batch_size=BATCH, memory_map=True)  # fmt: skip
        else:
            data = TabularDataModule(features_path=f"{folder}/x.npy",
                                     targets_path=f"{folder}/y.npy", batch_size=BATCH,
                                     memory_map=mode == "mapped")  # fmt: skip
        model = LinearRegression(FEATURES, 1, lr=0.01, optimization="manual")
        trainer = Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                          enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False)  # fmt: skip
        trainer.fit(model, datamodule=data)
    print(json.dumps({**peaks, "seconds": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=3.0)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    try:
        parquet = importlib.import_module("pyarrow.parquet")
    except ImportError:
        parquet = None
        print("pyarrow is not installed: no Parquet run (pip install 'gd-lightning[parquet]')")
    folder = Path(tempfile.mkdtemp())
    rows = write_data(folder, options.gigabytes, parquet)
    size_mib = sum(p.stat().st_size for p in folder.glob("*.npy")) / 2**20
    print(f"{rows:,} rows x {FEATURES} float32 columns: {size_mib:,.0f} MiB of .npy files")
    print("| run | peak own memory | peak resident (with cached file pages) | time |")
    print("|---|---|---|---|")
    for mode in ("mapped", "streamed", "loaded")[:: 1 if parquet else 2]:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(folder), mode],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        peaks = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {mode} | {peaks['anon_mib']:,.0f} MiB | {peaks['rss_peak_mib']:,.0f} MiB "
              f"| {peaks['seconds']:.1f} s |")  # fmt: skip
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()
