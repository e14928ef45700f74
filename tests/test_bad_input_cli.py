"""The bad-input corpus, command-line half: mistakes in options, config files and
checkpoints (the data files' mistakes are in ``test_bad_input.py``).

Every case ends with exit code 2 and one line, ``gd-lightning: error: ...``, that
names the problem and the fix; no traceback; nothing at all written; nothing named
by a checkpoint imported.
"""

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import QUIET

from gd_lightning.cli import CONFIG_MAX_BYTES, cli, main

pytestmark = pytest.mark.usefixtures("plain_argv")

GOOD_CSV = "temp,rain,yield\n73,67,56\n91,88,81\n87,134,119\n102,43,22\n69,96,103\n"
# inputs that are all 0: with no bias the design matrix is all zeros
ZERO_INPUTS_CSV = "temp,rain,yield\n0,0,1\n0,0,2\n0,0,3\n"


def fit(*extra: str, csv: str = "data.csv") -> list[str]:
    return ["fit", "--data", "TabularDataModule", "--data.csv_path", csv,
            "--data.targets", "[yield]", "--model", "LinearRegression", "--model.lr", "1e-5",
            "--trainer.max_epochs", "2", *extra]  # fmt: skip


def with_run(subcommand: str, *extra: str) -> list[str]:
    """``subcommand`` with the earlier run's config."""
    return [subcommand, "--config", "run.yaml", *extra]


def bomb() -> str:
    """A 9-line YAML alias bomb: 9**9 strings once expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")

# (name, files to write, arguments, the reason's words the error line must contain: one
# phrase or a tuple of phrases, none of them a copy of the input it echoes)
CASES: list[Any] = [
    # --- Lightning's own option checks, in one line
    ("max_epochs -2", {}, fit("--trainer.max_epochs", "-2"), "the trainer options were refused"),
    ("devices 0", {}, fit("--trainer.devices", "0"), "the trainer options were refused"),
    pytest.param(
        "accelerator gpu",
        {},
        fit("--trainer.accelerator", "gpu"),
        "the trainer options were refused",
        marks=NO_GPU,
        id="accelerator gpu",
    ),
    ("strategy magic", {}, fit("--trainer.strategy", "magic"), "the trainer options were refused"),
    (
        "printout field",
        {},
        fit("--trainer.callbacks+=LossPrintout", "--trainer.callbacks.line", "loss {los}"),
        "format string over the fields",
    ),  # fmt: skip
    (
        "max_time forever",
        {},
        fit("--trainer.max_time", "forever"),
        "the trainer options were refused",
    ),
    (
        "every_n_epochs -1",
        {},
        fit("--checkpoint.every_n_epochs", "-1"),
        "the checkpoint options were refused",
    ),
    (
        "save_top_k -2",
        {},
        fit("--checkpoint.save_top_k", "-2"),
        "the checkpoint options were refused",
    ),
    (
        "seed_everything 2**40",
        {},
        fit("--seed_everything", "1099511627776"),
        "must be between 0 and 4294967295",
    ),
    ("data.seed 1e20", {}, fit("--data.seed", "100000000000000000000"), "a 64-bit seed"),
    ("--lr", {}, fit("--lr", "0.1"), "did you mean --model.lr?"),
    ("trainer.epochs", {}, fit("--trainer.epochs", "3"), "did you mean --trainer.max_epochs?"),
    (
        "data.batchsize",
        {},
        fit("--data.batchsize", "3"),
        ("did you mean --data.batch_size?", "--data.help TabularDataModule lists the data's"),
    ),
    (
        "lr nan",
        {},
        fit("--model.lr", "nan"),
        ("error: --model.lr nan: ", "a positive number, or auto", "--model.help LinearRegression"),
    ),
    (
        "lr a word",
        {},
        fit("--model.lr", "fast"),
        ("error: --model.lr fast: ", "a positive number, or auto", "--model.help LinearRegression"),
    ),
    (
        "target_gap -1",
        {},
        fit("--convergence.target_gap", "-1"),
        "must be a finite fraction of the best loss, at or above 0",
    ),
    (
        "report_gap 0",
        {},
        fit("--convergence.report_gap", "0"),
        "must be a finite fraction of the best loss, above 0",
    ),
    ("divergence_factor 0", {}, fit("--convergence.divergence_factor", "0"), "must be above 1"),
    # --- ckpt_path names Lightning resolves within one process
    (
        "test ckpt best",
        {},
        with_run("test", "--ckpt_path", "best"),
        "names a checkpoint of a fit run in the same process",
    ),
    ("predict ckpt last", {}, with_run("predict", "--ckpt_path", "last"), "checkpoint's file"),
    ("predict without ckpt", {}, with_run("predict"), "predict needs --ckpt_path"),
    ("fit ckpt last, nothing saved", {}, fit("--ckpt_path", "last"), "nothing to resume"),
    (
        "fit ckpt last, logger on, nothing saved",
        {},
        fit("--ckpt_path", "last", "--trainer.logger", "true"),
        "nothing to resume",
    ),
    # --- checkpoints that do not hold what they should
    ("empty state dict", {}, with_run("test", "--ckpt_path", "empty.ckpt"), "state_dict is empty"),
    ("standardization a list", {}, with_run("test", "--ckpt_path", "std_list.ckpt"), "a tensor"),
    (
        "standardization NaN",
        {},
        with_run("test", "--ckpt_path", "std_nan.ckpt"),
        "with NaN or infinite values",
    ),
    ("standardization scale 0", {}, with_run("test", "--ckpt_path", "std_zero.ckpt"), "positive"),
    ("standardization ints", {}, with_run("test", "--ckpt_path", "std_int.ckpt"), "floating"),
    ("standardization missing", {}, with_run("test", "--ckpt_path", "std_gone.ckpt"), "lacks"),
    ("resume weights only", {}, with_run("fit", "--ckpt_path", "weights.ckpt"), "weights only"),
    (
        "resume past max_epochs",
        {},
        with_run("fit", "--ckpt_path", "good.ckpt", "--trainer.max_epochs", "1"),
        "max_epochs above 2",
    ),
    # --- checkpoints that name code: refused before anything is imported
    (
        "class this.X",
        {},
        with_run("test", "--ckpt_path", "zen.ckpt"),
        "so it was not loaded and nothing it names was imported",
    ),
    ("class evilmod.X", {}, with_run("test", "--ckpt_path", "evil.ckpt"), "nothing it names"),
    (
        "setting optimizer",
        {},
        with_run("test", "--ckpt_path", "opt.ckpt"),
        "setting 'optimizer' that LinearRegression does not take as a plain value",
    ),
    (
        "setting a mapping",
        {},
        with_run("test", "--ckpt_path", "mapping.ckpt"),
        "setting 'lr' that LinearRegression does not take as a plain value",
    ),
    (
        "setting unknown",
        {},
        with_run("test", "--ckpt_path", "unknown.ckpt"),
        "setting 'magic' that LinearRegression does not take as a plain value",
    ),
    # --- config files
    ("config a CSV", {}, ["fit", "--config", "data.csv"], "not a YAML mapping"),
    ("config binary", {"bin.yaml": bytes(range(256))}, ["fit", "--config", "bin.yaml"], "binary"),
    (
        "config YAML error",
        {"bad.yaml": "trainer:\n  max_epochs: [1\n"},
        ["fit", "--config=bad.yaml"],
        ("bad.yaml, line 3", "(it is not valid YAML)"),
    ),
    ("config alias bomb", {"bomb.yaml": bomb()}, ["fit", "-c", "bomb.yaml"], "aliases"),
    (
        "config too large",
        {"big.yaml": "# " + "x" * CONFIG_MAX_BYTES + "\n"},
        ["fit", "--config", "big.yaml"],
        "bytes",
    ),
    # --- data the fit cannot learn from, refused up front
    (
        "lr auto on an all-zero design",
        {"zero.csv": ZERO_INPUTS_CSV},
        fit("--model.lr", "auto", "--model.bias", "false", csv="zero.csv"),
        "curvature",
    ),
    (
        "validate without a validation split",
        {},
        with_run("validate", "--ckpt_path", "good.ckpt"),
        "no validation rows",
    ),
    # --- where the predictions go, checked before predicting
    (
        "predictions under a file",
        {},
        with_run("predict", "--ckpt_path", "good.ckpt", "--predictions.path", "data.csv/p.csv"),
        "is a file",
    ),
    (
        "predictions a folder",
        {"folder/keep.txt": "x"},
        with_run("predict", "--ckpt_path", "good.ckpt", "--predictions.path", "folder"),
        "it is a folder",
    ),
    (
        "predictions in /proc",
        {},
        with_run("predict", "--ckpt_path", "good.ckpt", "--predictions.path", "/proc/p.csv"),
        ("cannot write the predictions to", "choose another file with --predictions.path"),
    ),
]


def tamper(source: Path, name: str, change: Any) -> None:
    checkpoint = torch.load(source, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, name)


@pytest.fixture
def earlier_run(tmp_path: Path) -> Path:
    """A good run (its config and checkpoint) and checkpoints made wrong from it."""
    (tmp_path / "data.csv").write_text(GOOD_CSV)
    cli([*fit(*QUIET), "--trainer.default_root_dir", "earlier"])
    (checkpoint,) = Path("earlier").rglob("*.ckpt")
    (config,) = Path("earlier").rglob("config.yaml")
    Path("run.yaml").write_text(config.read_text())
    Path("good.ckpt").write_bytes(checkpoint.read_bytes())
    state = "state_dict"
    scale = "scaling.feature_scale"
    settings = "hyper_parameters"
    changes = {
        "empty.ckpt": lambda c: c.__setitem__(state, {}),
        "std_list.ckpt": lambda c: c[state].__setitem__(scale, [1.0, 1.0]),
        "std_nan.ckpt": lambda c: c[state].__setitem__(scale, torch.tensor([float("nan"), 1.0])),
        "std_zero.ckpt": lambda c: c[state].__setitem__(scale, torch.tensor([0.0, 1.0])),
        "std_int.ckpt": lambda c: c[state].__setitem__(scale, torch.tensor([1, 1])),
        "std_gone.ckpt": lambda c: c[state].pop(scale),
        "weights.ckpt": lambda c: [c.pop(key) for key in ("optimizer_states", "loops")],
        "zen.ckpt": lambda c: c[settings].__setitem__("_class_path", "this.LinearRegression"),
        "evil.ckpt": lambda c: c[settings].__setitem__("_class_path", "evilmod.LinearRegression"),
        "opt.ckpt": lambda c: c[settings].__setitem__("optimizer", "evilmod.Optimizer"),
        "mapping.ckpt": lambda c: c[settings].__setitem__("lr", {"class_path": "evilmod.X"}),
        "unknown.ckpt": lambda c: c[settings].__setitem__("magic", 1),
    }
    for name, change in changes.items():
        tamper(checkpoint, name, change)
    return tmp_path


def write(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def names(case: Any) -> str:
    return case[0] if isinstance(case, tuple) else case.id


@pytest.mark.parametrize(("name", "files", "args", "words"), CASES, ids=[names(c) for c in CASES])
def test_a_mistake_ends_in_one_line_exit_2_and_writes_nothing(
    name, files, args, words, earlier_run, capsys: pytest.CaptureFixture[str]
) -> None:
    write(earlier_run, files)
    (earlier_run / "evilmod.py").write_text("import pathlib; pathlib.Path('ran.txt').touch()\n")
    before = {p: p.stat().st_mtime_ns for p in earlier_run.rglob("*")}
    imported_this = "this" in sys.modules
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *QUIET, "--trainer.default_root_dir", "runs"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    err = captured.err
    lines = [line for line in err.strip().splitlines() if line.startswith("gd-lightning")]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("gd-lightning: error: "), err[-2000:]
    for phrase in (words,) if isinstance(words, str) else words:
        assert phrase.lower() in lines[0].lower(), lines[0]
    after = {p: p.stat().st_mtime_ns for p in earlier_run.rglob("*")}
    assert after == before  # nothing written, nothing changed
    assert "Beautiful is better than ugly" not in captured.out  # `this` was not imported
    assert imported_this or "this" not in sys.modules
    assert "evilmod" not in sys.modules


@pytest.mark.slow
def test_a_checkpoint_naming_a_module_beside_it_imports_nothing(earlier_run: Path) -> None:
    """``python -m`` puts the current folder on ``sys.path``: a checkpoint naming a
    module there must be refused before anything imports it."""
    import subprocess

    (earlier_run / "evilmod.py").write_text("import pathlib; pathlib.Path('ran.txt').touch()\n")
    for args in (["--config", "run.yaml"], []):
        done = subprocess.run(
            [sys.executable, "-m", "gd_lightning", "test", *args, "--ckpt_path", "evil.ckpt"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1].startswith("gd-lightning: error: ")
        assert not (earlier_run / "ran.txt").exists()


def test_an_all_zero_target_fits_and_keeps_its_final_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "zero.csv").write_text(GOOD_CSV.replace(",56\n", ",0\n").replace(",81\n", ",0\n")
                                       .replace(",119\n", ",0\n").replace(",22\n", ",0\n")
                                       .replace(",103\n", ",0\n"))  # fmt: skip
    result = cli([*fit("--model.lr", "auto", csv="zero.csv"), *QUIET, "--trainer.logger", "false"])
    assert result.trainer.global_step == 2
    (checkpoint,) = Path("checkpoints").glob("epoch=1-step=2.ckpt")
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 2
    # the optimum is the zero model, so any other parameters are infinitely far from it
    assert "the data can be fitted exactly" in capsys.readouterr().out
