"""The bad-input corpus: a user's mistakes, each run through the command line.

Every case ends with exit code 2 and one line, ``gd-lightning: error: ...``, that
names the problem and the fix; no traceback; no run folder written; the folders of
earlier runs untouched.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUIET

from gd_lightning.cli import cli, main

pytestmark = pytest.mark.usefixtures("plain_argv")

GOOD_CSV = "temp,rain,yield\n73,67,56\n91,88,81\n87,134,119\n102,43,22\n69,96,103\n"


def csv(text: str) -> dict[str, str]:
    return {"data.csv": text}


def fit_csv(*extra: str, targets: str = "[yield]") -> list[str]:
    return ["fit", "--data", "TabularDataModule", "--data.csv_path", "data.csv",
            "--data.targets", targets, "--model", "LinearRegression", "--model.lr", "1e-5",
            "--trainer.max_epochs", "2", *extra]  # fmt: skip


def fit_npy(*extra: str) -> list[str]:
    return ["fit", "--data", "TabularDataModule", "--data.features_path", "x.npy",
            "--data.targets_path", "y.npy", "--model", "LinearRegression",
            "--model.lr", "1e-3", "--trainer.max_epochs", "2", *extra]  # fmt: skip


def npy(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    return {"x.npy": x, "y.npy": y}


ROWS = np.arange(12, dtype=np.float32).reshape(6, 2)
TARGETS = np.arange(6, dtype=np.float32)

# (name, files to write, arguments, the reason's words the error line must contain: one
# phrase or a tuple of phrases, none of them a copy of the input it echoes)
CASES = [
    # --- CSV files
    ("missing file", {}, fit_csv("--data.csv_path", "nowhere.csv"), "no such file: nowhere.csv"),
    ("empty file", csv(""), fit_csv(), "empty"),
    ("header only", csv("temp,rain,yield\n"), fit_csv(), "no data rows"),
    (
        "unknown target column",
        csv(GOOD_CSV),
        fit_csv(targets="[mangoes]"),
        ("column 'mangoes' is not in", "fit needs the target column(s)"),
    ),
    (
        "unknown feature column",
        csv(GOOD_CSV),
        fit_csv("--data.features", "[temp,wind]"),
        "column 'wind' is not in",
    ),
    ("non-numeric cell", csv(GOOD_CSV.replace("88", "lots")), fit_csv(), "'lots' is not a number"),
    ("empty cell", csv(GOOD_CSV.replace(",88,", ",,")), fit_csv(), "empty is not a number"),
    ("NaN cell", csv(GOOD_CSV.replace("88", "nan")), fit_csv(), "is nan"),
    ("inf cell", csv(GOOD_CSV.replace("88", "inf")), fit_csv(), "is inf"),
    ("ragged row", csv(GOOD_CSV + "1,2\n"), fit_csv(), "2 cells where the header has 3"),
    (
        "duplicate column names",
        csv("temp,temp,yield\n1,2,3\n4,5,6\n7,8,9\n"),
        fit_csv(),
        "'temp' appears 2 times",
    ),
    (
        "target also a feature",
        csv(GOOD_CSV),
        fit_csv("--data.features", "[temp,yield]"),
        "both as features and as targets",
    ),
    ("no feature left", csv("yield\n1\n2\n3\n"), fit_csv(), "no feature columns"),
    (
        "splits leave no training rows",
        csv(GOOD_CSV),
        fit_csv("--data.val_fraction", "0.5", "--data.test_fraction", "0.5"),
        "no training rows",
    ),
    (
        "too few rows to validate",
        csv(GOOD_CSV),
        fit_csv("--data.val_fraction", "0.1"),
        "holds out 0 row(s); R² needs at least 2",
    ),
    # --- .npy files
    ("npy wrong dtype", npy(np.array(["a", "b"]), TARGETS[:2]), fit_npy(), "numbers"),
    ("npy wrong rank", npy(np.zeros((2, 2, 2)), TARGETS[:2]), fit_npy(), "features must be 1-D"),
    ("npy mismatched lengths", npy(ROWS, TARGETS[:4]), fit_npy(), "6 rows but"),
    (
        "npy not an array",
        {"x.npy": b"not numpy at all", "y.npy": TARGETS},
        fit_npy(),
        "is not a .npy file (it starts 'not numpy at all', not NumPy's header)",
    ),
    ("npy with NaN", npy(np.where(ROWS == 5, np.nan, ROWS), TARGETS), fit_npy(), "is nan"),
    (
        "memory map without batch size",
        npy(ROWS, TARGETS),
        fit_npy("--data.memory_map", "true"),
        "set data.batch_size",
    ),
    # --- the configuration
    ("zero lr", csv(GOOD_CSV), fit_csv("--model.lr", "0"), "lr must be"),
    ("negative lr", csv(GOOD_CSV), fit_csv("--model.lr", "-0.1"), "lr must be"),
    (
        "zero batch size",
        csv(GOOD_CSV),
        fit_csv("--data.batch_size", "0"),
        "must be a positive number of rows",
    ),
    (
        "unknown optimization",
        csv(GOOD_CSV),
        fit_csv("--model.optimization", "magic"),
        ("error: --model.optimization magic: ", "fit --model.help LinearRegression lists"),
    ),
    (
        "unknown model",
        csv(GOOD_CSV),
        [*fit_csv(), "--model", "NeuralNet"],
        ("error: --model NeuralNet: ", "fit --help lists the options"),
    ),
    (
        "unknown optimizer",
        csv(GOOD_CSV),
        fit_csv("--model.optimizer", "torch.optim.Magic"),
        ("error: --model.optimizer torch.optim.Magic: ", "fit --model.help LinearRegression lists"),
    ),
    (
        "optimizer in manual mode",
        csv(GOOD_CSV),
        fit_csv("--model.optimization", "manual", "--model.optimizer", "torch.optim.Adam"),
        "takes no optimizer",
    ),
    (
        "in_features contradicts the data",
        csv(GOOD_CSV),
        fit_csv("--model.in_features", "5"),
        "but the data has 2",
    ),
    (
        "unknown option",
        csv(GOOD_CSV),
        fit_csv("--model.learning_rate", "0.1"),
        (
            "error: --model.learning_rate 0.1: ",
            "did you mean --model.lr?",
            "--model.help LinearRegression",
        ),
    ),
    (
        "config file missing",
        csv(GOOD_CSV),
        ["fit", "--config", "nowhere.yaml"],
        "no such file, and no tutorial of that name",
    ),
    (
        "checkpoint missing",
        csv(GOOD_CSV),
        ["test", "--config", "run.yaml", "--ckpt_path", "missing.ckpt"],
        "no checkpoint at",
    ),
    (
        "checkpoint of another shape",
        csv(GOOD_CSV),
        ["test", "--config", "run.yaml", "--ckpt_path", "other_shape.ckpt"],
        "does not hold a LinearRegression's parameters",
    ),
    (
        "checkpoint of another model",
        csv(GOOD_CSV),
        ["test", "--config", "run.yaml", "--ckpt_path", "quadratic.ckpt"],
        "but the model given is a",
    ),
    (
        "not a checkpoint",
        {**csv(GOOD_CSV), "junk.ckpt": b"\x00junk"},
        ["test", "--config", "run.yaml", "--ckpt_path", "junk.ckpt"],
        "holds objects other than tensors and plain values",
    ),
]


def write(folder: Path, files: dict) -> None:
    for name, content in files.items():
        path = folder / name
        if isinstance(content, np.ndarray):
            np.save(path, content)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@pytest.fixture
def earlier_run(tmp_path: Path) -> tuple[Path, dict[Path, bytes]]:
    """A good run before the mistake: its config and checkpoint, and every file it wrote."""
    (tmp_path / "data.csv").write_text(GOOD_CSV)
    result = cli([*fit_csv(*QUIET), "--trainer.default_root_dir", "earlier"])
    (checkpoint,) = Path("earlier").rglob("*.ckpt")
    (config,) = Path("earlier").rglob("config.yaml")
    Path("run.yaml").write_text(config.read_text())
    Path("good.ckpt").write_bytes(checkpoint.read_bytes())
    state = torch.load(checkpoint, weights_only=True)
    state["state_dict"]["weight"] = torch.zeros(1, 3)
    torch.save(state, "other_shape.ckpt")
    quadratic = cli(["fit", "--model", "QuadraticRegression", "--model.lr", "1e-5",
                     "--data", "SpeedDataModule", "--trainer.max_epochs", "1",
                     "--trainer.default_root_dir", "earlier_quadratic", *QUIET])  # fmt: skip
    (other,) = Path("earlier_quadratic").rglob("*.ckpt")
    Path("quadratic.ckpt").write_bytes(other.read_bytes())
    del result, quadratic
    return tmp_path, {p: p.read_bytes() for p in Path("earlier").rglob("*") if p.is_file()}


@pytest.mark.parametrize(("name", "files", "args", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_mistake_ends_in_one_line_exit_2_and_writes_nothing(
    name, files, args, words, earlier_run, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, earlier = earlier_run
    write(folder, files)
    before = {p for p in folder.rglob("*")}
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *QUIET, "--trainer.default_root_dir", "runs"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("gd-lightning")]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("gd-lightning: error: "), err[-2000:]
    for phrase in (words,) if isinstance(words, str) else words:
        assert phrase.lower() in lines[0].lower(), lines[0]
    written = {p for p in folder.rglob("*")} - before
    assert not any(p.suffix == ".ckpt" or p.name.startswith("events") for p in written), written
    assert {p: p.read_bytes() for p in earlier} == earlier  # earlier runs untouched
