"""Files a user may hand the CSV and .npy readers by mistake: each is read correctly or
refused in one line (exit code 2) that names the file and the problem; plus a bounded
fuzz of the CSV reader against an independent parse."""

import csv
import gzip
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUIET
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gd_lightning import InputError, TabularDataModule
from gd_lightning.cli import cli, main

pytestmark = pytest.mark.usefixtures("plain_argv")

# Python 3.10's csv module refuses a NUL byte anywhere in the file; 3.11 reads it as a
# character, and the reader then names the cell or column that holds it
NUL_REFUSED = "not a readable CSV file (it holds NUL bytes)" if sys.version_info < (3, 11) else ""

GOOD = "temp,rain,yield\n73,67,56\n91,88,81\n87,134,119\n102,43,22\n69,96,103\n"


def fit_args(*extra: str) -> list[str]:
    return ["fit", "--data", "TabularDataModule", "--data.csv_path", "data.csv",
            "--data.targets", "[yield]", "--model", "LinearRegression", "--model.lr", "1e-5",
            "--trainer.max_epochs", "1", "--trainer.default_root_dir", "runs", *QUIET,
            *extra]  # fmt: skip


def npy_args(*extra: str) -> list[str]:
    return ["fit", "--data", "TabularDataModule", "--data.features_path", "x.npy",
            "--data.targets_path", "y.npy", "--model", "LinearRegression", "--model.lr",
            "1e-3", "--trainer.max_epochs", "1", "--trainer.default_root_dir", "runs", *QUIET,
            *extra]  # fmt: skip


def npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((3, 2)))
    return buffer.getvalue()


def saved(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


TARGETS = saved(np.arange(5.0))

# (name, files, arguments, words the one error line must hold)
CASES = [
    # '#' is a character like any other: a cell holding one is not a number
    ("commented-out row", {"data.csv": GOOD.replace("91,88,81", "#91,88,81")}, fit_args(),
     "line 3, column 'temp': '#91' is not a number"),
    ("hash inside a cell", {"data.csv": GOOD.replace("88,81", "88,8#1")}, fit_args(),
     "'8#1' is not a number"),
    ("trailing comment", {"data.csv": GOOD.replace("88,81", "88,81 # typo?")}, fit_args(),
     "'81 # typo?' is not a number"),
    ("latin-1 file", {"data.csv": (GOOD + "69,96,1\u00e9\n").encode("latin-1")}, fit_args(),
     "is not UTF-8 text"),
    ("UTF-16 file", {"data.csv": GOOD.encode("utf-16")}, fit_args(), "is not UTF-8 text"),
    ("gzip file", {"data.csv": gzip.compress(GOOD.encode())}, fit_args(), "is not UTF-8 text"),
    ("binary file", {"data.csv": bytes(range(256)) * 4}, fit_args(), "is not UTF-8 text"),
    ("NUL in a name", {"data.csv": GOOD.replace("rain", "ra\0in")}, fit_args(),
     NUL_REFUSED or "'ra\\x00in', with a line break or control character"),
    ("NUL in a cell", {"data.csv": GOOD.replace("67", "6\x007")}, fit_args(),
     NUL_REFUSED or "is not a number"),
    ("a 200,000-character cell", {"data.csv": GOOD + "1,2," + "9" * 200_000 + "\n"},
     fit_args(), "field larger than field limit"),
    ("an unnamed column", {"data.csv": "temp,,yield\n1,2,3\n4,5,6\n"}, fit_args(),
     "column 2 of data.csv has no name"),
    ("a line break in a name", {"data.csv": '"te\nmp",rain,yield\n1,2,3\n'}, fit_args(),
     "line break"),
    ("semicolons", {"data.csv": GOOD.replace(",", ";")}, fit_args(),
     "is the file separated by ';'? save it with commas"),
    ("too large for float32", {"data.csv": GOOD.replace("88", "1e39")}, fit_args(),
     "1e+39 is too large for float32"),
    ("a folder as the file", {"data.csv/x": "not a file"}, fit_args(), "no such file"),
    ("npz archive", {"x.npy": npz(), "y.npy": TARGETS}, npy_args(), "is an .npz archive"),
    ("empty 2-D array", {"x.npy": saved(np.zeros((0, 2))), "y.npy": saved(np.zeros(0))},
     npy_args(), "empty array"),
    ("array without columns", {"x.npy": saved(np.zeros((5, 0))), "y.npy": TARGETS},
     npy_args(), "empty array"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "files", "args", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_file_is_one_line_and_exit_2(name, files, args, words, capsys) -> None:
    for file_name, content in files.items():
        path = Path(file_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gd-lightning: error: "), err[-2000:]
    assert words in lines[0], lines[0]
    assert not Path("runs").exists() and not Path("lightning_logs").exists()


def test_a_byte_order_mark_is_not_part_of_the_first_name() -> None:
    # Excel's "CSV UTF-8" starts with a byte-order mark
    Path("data.csv").write_text("\ufeff" + GOOD, encoding="utf-8")
    result = cli([*fit_args(), "--data.features", "[temp,rain]"])
    assert result.datamodule.feature_names == ["temp", "rain"]
    x, _ = result.datamodule.full_set.tensors
    assert x[:, 0].tolist() == [73, 91, 87, 102, 69]


# cells of every kind a fuzzed CSV may hold, and the characters that break them
CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.text(alphabet="0123456789.,-+e#\"' \t\ufeff\r\nxnaifNI", max_size=6),
)
ROW = st.lists(CELL, min_size=0, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=st.lists(ROW, max_size=6), raw=st.binary(max_size=40))
def test_fuzzed_csv_is_read_exactly_or_refused_in_one_line(tmp_path, rows, raw) -> None:
    path = tmp_path / "fuzz.csv"
    text = "a,b,y\n" + "\n".join(",".join(row) for row in rows) + "\n"
    for content in (text.encode("utf-8"), b"a,b,y\n" + raw):
        path.write_bytes(content)
        try:
            data = TabularDataModule(csv_path=str(path), targets=["y"])
            data.setup("fit")
        except InputError as err:
            assert "\n" not in str(err).strip()  # one line, whatever the file holds
            continue
        # read: it must equal an independent parse of the same file, cell for cell
        with path.open(encoding="utf-8-sig", newline="") as file:
            parsed = [r for r in csv.reader(file, skipinitialspace=True)][1:]
        expected = torch.tensor([[float(c) for c in r] for r in parsed if r], dtype=torch.float64)
        x, y = data.full_set.tensors
        got = torch.cat([x, y], dim=1).double()
        assert torch.equal(got, expected.float().double())
        assert bool(torch.isfinite(got).all())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (fit_args("--data.targets", "[zz]"), "column 'zz' is not in data.csv"),
        (["predict", "--data.csv_path", "data.csv"], "predict needs --ckpt_path"),
        (fit_args("--trainer.max_epochs", "-2"), "the trainer options were refused"),
    ],
)
def test_in_a_terminal_a_mistake_is_the_only_line(args, words) -> None:
    # in a process of its own Lightning prints its start-up lines (the seed, the devices)
    # through its own handlers: they wait until the checks pass, so here none shows
    Path("data.csv").write_text(GOOD)
    done = subprocess.run([sys.executable, "-m", "gd_lightning", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gd-lightning: error: "), done.stderr
    assert words in lines[0]


@pytest.mark.slow
def test_in_a_terminal_a_warning_is_one_line_of_the_commands_own() -> None:
    """A warning (here an unstable rate) is said as the command says things: one line,
    without the path and line number of the library that raised it."""
    done = subprocess.run(
        [sys.executable, "-m", "gd_lightning", "fit", "--config", "crop_yields_5",
         "--model.lr", "1.5e-4", "--trainer.max_epochs", "2", "--trainer.logger", "false",
         "--trainer.enable_checkpointing", "false", *QUIET],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = [line for line in done.stderr.splitlines() if "at or above" in line]
    assert line.startswith("gd-lightning: warning: lr 0.00015 is at or above 0.0001117"), line
    assert "site-packages" not in done.stderr and ".py:" not in done.stderr, done.stderr


@pytest.mark.slow
def test_written_to_a_file_an_error_starts_a_line_of_its_own() -> None:
    """With the output to one file, the progress bar's last line (which a terminal would
    redraw) is ended before the error is said: the error is a line of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "gd_lightning", "fit", "--config", "line_fit", "--model.lr", "5",
         "--trainer.logger", "false", "--trainer.enable_checkpointing", "false"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    last = done.stdout.strip().split("\n")[-1]
    assert last.startswith("gd-lightning: error: training diverged at step"), last[-300:]
