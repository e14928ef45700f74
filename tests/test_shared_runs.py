"""Round four of bad inputs, runs that share a folder and resumes: a fit refused for a
logger version already used writes nothing (every logger the command line takes), and a
resume runs on the data it started on, reached by any path, or is refused, as is one
whose stopping options would train nothing, before anything of the run is touched."""

import os
import shutil
from pathlib import Path

import pytest
from conftest import QUIET, quiet_trainer

from gd_lightning import InputError, LinearRegression, TabularDataModule
from gd_lightning.cli import main
from gd_lightning.data.identity import file_identity, saved_identity

pytestmark = pytest.mark.usefixtures("plain_argv")

DATA = "temp,rain,yield\n73,67,56\n91,88,81\n87,134,119\n102,43,22\n69,96,103\n"
FIT = ["fit", "--model", "LinearRegression", "--model.lr", "1e-5", "--data.targets", "[yield]",
       "--convergence.verbose", "false", "--report.print_table", "false", *QUIET]  # fmt: skip


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit code of ``gd-lightning args`` and its stderr."""
    code = 0
    try:
        main(args)
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    return code, capsys.readouterr().err


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


def refused_touching_nothing(args: list[str], words: list[str], capsys) -> str:
    """Run a command that must be refused: exit 2, one line holding ``words``, and not
    one file of the folder created, changed or removed."""
    before = files_under(Path("."))
    code, err = run(args, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert files_under(Path(".")) == before
    return lines[0]


LOGGERS = {
    "tensorboard": ["--trainer.logger.class_path", "TensorBoardLogger"],
    "csv": ["--trainer.logger.class_path", "CSVLogger"],
    "tensorboard, sub_dir": [
        "--trainer.logger.class_path",
        "TensorBoardLogger",
        "--trainer.logger.init_args.sub_dir",
        "x",
    ],  # fmt: skip
}


@pytest.mark.parametrize("logger", LOGGERS)
def test_a_used_logger_version_is_refused_writing_nothing(logger, capsys) -> None:
    Path("data.csv").write_text(DATA)
    args = [*FIT, "--data.csv_path", "data.csv", "--trainer.max_epochs", "1", *LOGGERS[logger],
            "--trainer.logger.init_args.save_dir", "logs",
            "--trainer.logger.init_args.version", "0"]  # fmt: skip
    code, err = run(args, capsys)
    assert code == 0, err[-2000:]
    refused_touching_nothing(args, ["version_0 holds an earlier run", "version"], capsys)
    if logger == "tensorboard":  # the same version with a sub_dir: the same run's folder
        args += ["--trainer.logger.init_args.sub_dir", "y"]
        refused_touching_nothing(args, ["version_0 holds an earlier run"], capsys)


@pytest.fixture
def resumable(capsys) -> list[str]:
    """A fit of 3 epochs (one step each) in ``runs`` that saved ``last.ckpt``; returns the
    command line that resumes it (its data option left to the test)."""
    Path("data.csv").write_text(DATA)
    args = [*FIT, "--trainer.default_root_dir", "runs", "--checkpoint.save_last", "true"]
    code, err = run([*args, "--data.csv_path", "data.csv", "--trainer.max_epochs", "3"], capsys)
    assert code == 0, err[-2000:]
    return [*args, "--ckpt_path", "last"]


def test_the_checkpoint_identifies_the_file_it_read(resumable) -> None:
    import torch

    (path,) = Path("runs").rglob("last.ckpt")
    saved = saved_identity(torch.load(path, weights_only=True))
    assert saved == {"csv_path": file_identity(Path("data.csv"))}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda: Path("data.csv").write_text(DATA.replace("73,67,56", "73,67,57")),
         ["data.csv_path data.csv is not the data this run started on", "its size did not"]),
        (lambda: Path("data.csv").write_text(DATA + "70,70,70\n"),
         ["is not the data this run started on", "bytes"]),
    ],
)  # fmt: skip
def test_a_resume_on_a_changed_file_is_refused(resumable, change, words, capsys) -> None:
    change()
    args = [*resumable, "--data.csv_path", "data.csv", "--trainer.max_epochs", "5"]
    refused_touching_nothing(args, words, capsys)


@pytest.mark.parametrize("spelling", ["./data.csv", "copy.csv", "link.csv", "ABSOLUTE"])
def test_the_same_data_by_another_path_resumes(resumable, spelling, capsys) -> None:
    shutil.copy("data.csv", "copy.csv")
    os.symlink("data.csv", "link.csv")
    path = str(Path("data.csv").resolve()) if spelling == "ABSOLUTE" else spelling
    code, err = run([*resumable, "--data.csv_path", path, "--trainer.max_epochs", "4"], capsys)
    assert code == 0, err[-2000:]
    assert [p.name for p in Path("runs").rglob("epoch=3-*.ckpt")] == ["epoch=3-step=4.ckpt"]


@pytest.mark.parametrize(
    ("stopping", "words"),
    [
        (["--trainer.max_steps", "1"], ["after 3 steps", "max_steps is 1", "train nothing"]),
        (["--trainer.max_steps", "3"], ["after 3 steps", "max_steps is 3"]),
        (["--trainer.max_epochs", "3"], ["after 3 epochs", "max_epochs is 3"]),
        (["--trainer.max_epochs", "2"], ["after 3 epochs", "max_epochs is 2"]),
    ],
)
def test_a_resume_that_would_train_nothing_is_refused(resumable, stopping, words, capsys) -> None:
    refused_touching_nothing([*resumable, "--data.csv_path", "data.csv", *stopping], words, capsys)


def test_a_resume_from_python_on_a_changed_file_is_refused(tmp_path) -> None:
    Path("data.csv").write_text(DATA)

    def fit(epochs: int, ckpt_path: str | None = None) -> None:
        data = TabularDataModule(csv_path="data.csv", targets=["yield"])
        trainer = quiet_trainer(max_epochs=epochs, enable_checkpointing=True,
                                default_root_dir=str(tmp_path / "py"))  # fmt: skip
        trainer.fit(LinearRegression(in_features=2, lr=1e-5), data, ckpt_path=ckpt_path)
        trainer.save_checkpoint(tmp_path / "py.ckpt")

    fit(2)
    Path("data.csv").write_text(DATA.replace("102,43,22", "102,43,23"))
    with pytest.raises(InputError, match="is not the data this run started on"):
        fit(3, str(tmp_path / "py.ckpt"))


def test_a_second_resume_of_a_run_being_resumed_is_refused(resumable, capsys) -> None:
    import fcntl

    (folder,) = {path.parent for path in Path("runs").rglob("last.ckpt")}
    descriptor = os.open(folder, os.O_RDONLY)  # another process resuming it holds this lock
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        args = [*resumable, "--data.csv_path", "data.csv", "--trainer.max_epochs", "4"]
        refused_touching_nothing(args, ["is being resumed by another process"], capsys)
    finally:
        os.close(descriptor)
    code, err = run(args, capsys)  # once the other has ended, it resumes
    assert code == 0, err[-2000:]
