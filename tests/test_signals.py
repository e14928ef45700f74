"""Stop signals honoured until the command exits (issue 29, point 5): SIGTERM and
Ctrl+C at the end of a fit (the last checkpoint, the figures, the GIF) and of a
predict (the CSV) end with exit code 143 or 130 and one line, every file whole or
absent, no temporary file left.

Each in-process test delivers the signal to the process itself (``os.kill``) at an
exact moment, from inside a library function the test wraps, so Python runs the
handler there just as it would for a signal from outside."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import QUIET, cli_in

from gd_lightning.cli import main
from gd_lightning.io import atomic_path, write_csv_atomic, write_text_atomic
from gd_lightning.stops import stop_signal, stops_handled

pytestmark = pytest.mark.usefixtures("plain_argv")

GOOD = "temp,rain,yield\n73,67,56\n91,88,81\n87,134,119\n102,43,22\n69,96,103\n"
# tutorial 2's line, short: checkpoints, three figures and the GIF, all at the end
LINE_FIT = ["fit", "--config", "line_fit", "--trainer.max_epochs", "4",
            "--trainer.logger", "false", "--trainer.default_root_dir", "runs",
            "--checkpoint.save_last", "true", "--convergence.verbose", "false",
            "--report.print_table", "false", *QUIET]  # fmt: skip
PREDICT = ["predict", "--data", "TabularDataModule", "--data.csv_path", "data.csv",
           "--ckpt_path", "model.ckpt", *QUIET]  # fmt: skip
FIT_LINE = (
    "stopped by {}; the checkpoints saved so far are kept (a fit saving them with "
    "--checkpoint.save_last true resumes with --ckpt_path last)"
)
NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT (Ctrl+C)"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a fit of ``GOOD`` to predict with: made once, copied by tests."""
    folder = tmp_path_factory.mktemp("trained")
    (folder / "data.csv").write_text(GOOD)
    cli_in(folder, ["fit", "--model", "LinearRegression", "--model.lr", "1e-5", "--data",
                    "TabularDataModule", "--data.csv_path", "data.csv", "--data.targets",
                    "[yield]", "--trainer.max_epochs", "1", "--trainer.logger", "false",
                    "--trainer.default_root_dir", "runs", "--convergence.verbose", "false",
                    "--report.print_table", "false", *QUIET])  # fmt: skip
    return next((folder / "runs" / "checkpoints").glob("epoch=*.ckpt"))


def signalling(
    original: Callable[..., Any],
    signum: int,
    when: Callable[..., bool] = lambda *args, **kwargs: True,
    nth: int = 1,
    after: bool = False,
) -> Callable[..., Any]:
    """``original``, sending ``signum`` to this process in the ``nth`` call that ``when``
    accepts, before that call does its work (``after`` it with ``after=True``)."""
    calls = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        send = False
        if when(*args, **kwargs):
            calls.append(None)
            send = len(calls) == nth
        if send and not after:
            os.kill(os.getpid(), signum)
        result = original(*args, **kwargs)
        if send and after:
            os.kill(os.getpid(), signum)
        return result

    return wrapper


def stopped(args: list[str], signum: int, capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command; assert it ended as ``signum`` ends it, with one line and the
    signal handlers as they were; return the line."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 128 + signum, err[-3000:]
    # Lightning's own notices may come before ("`Trainer.fit` stopped: ..."): ours is last
    lines = err.strip().splitlines()
    ours = [line for line in lines if line.startswith("gd-lightning:")]
    assert ours == lines[-1:] and "Traceback" not in err, err[-3000:]
    assert handlers == {s: signal.getsignal(s) for s in handlers}
    return lines[-1]


def no_temporary_file() -> None:
    left = [str(p) for p in Path(".").rglob("*") if ".tmp" in p.name]
    assert not left, left


def whole_checkpoints() -> list[int]:
    """The step of each checkpoint the run kept, every one loading whole."""
    return [
        torch.load(path, weights_only=True)["global_step"]
        for path in sorted(Path("runs/checkpoints").glob("*.ckpt"))
    ]


@pytest.mark.parametrize("every_n_epochs", [0, 1])
def test_sigterm_during_the_last_checkpoint_keeps_it_and_draws_nothing(
    every_n_epochs, monkeypatch, capsys
) -> None:
    # the last step's checkpoints: after Lightning's last look at SIGTERM in the fit
    last_step = signalling(torch.save, signal.SIGTERM, lambda state, _: state["global_step"] == 4)
    monkeypatch.setattr(torch, "save", last_step)
    args = [*LINE_FIT, "--checkpoint.every_n_epochs", str(every_n_epochs)]
    line = stopped(args, signal.SIGTERM, capsys)
    assert line == "gd-lightning: " + FIT_LINE.format("SIGTERM")
    # a checkpoint begun before the signal is finished and kept (what a resume needs);
    # nothing begun after it is: no figure, no GIF
    assert whole_checkpoints() == [4, 4]
    assert not list(Path("runs").glob("*.png")) and not list(Path("runs").glob("*.gif"))
    no_temporary_file()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_the_figures_are_written_keeps_no_figure(signum, monkeypatch, capsys) -> None:
    from matplotlib.figure import Figure

    # Lightning has given SIGTERM back to the command by then (on_fit_end)
    monkeypatch.setattr(Figure, "savefig", signalling(Figure.savefig, signum))
    line = stopped(LINE_FIT, signum, capsys)
    assert line == "gd-lightning: " + FIT_LINE.format(NAMES[signum])
    assert whole_checkpoints() == [4, 4]  # the last epoch's and last.ckpt: the fit ended
    assert not list(Path("runs").glob("*.png")) and not list(Path("runs").glob("*.gif"))
    no_temporary_file()


@pytest.mark.parametrize(
    ("signum", "frame"), [(signal.SIGINT, 1), (signal.SIGINT, 3), (signal.SIGTERM, 3)]
)
def test_a_stop_while_the_gif_is_written_keeps_no_gif(signum, frame, monkeypatch, capsys) -> None:
    from matplotlib.animation import PillowWriter

    # before the first frame, matplotlib's clean-up fails on the way out (IndexError
    # while handling the KeyboardInterrupt); mid-way, the frames made are dropped
    grabbed = signalling(PillowWriter.grab_frame, signum, nth=frame)
    monkeypatch.setattr(PillowWriter, "grab_frame", grabbed)
    line = stopped(LINE_FIT, signum, capsys)
    assert line == "gd-lightning: " + FIT_LINE.format(NAMES[signum])
    assert sorted(p.name for p in Path("runs").glob("*.png")) == [
        "fit.png",
        "landscape.png",
        "predictions.png",
    ]
    assert not list(Path("runs").glob("*.gif"))
    no_temporary_file()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_the_predictions_are_written_keeps_none(
    signum, trained, monkeypatch, capsys
) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("data.csv").write_text(GOOD)
    # as the CSV's bytes go to disk, before its rename: the predict loop never looks
    monkeypatch.setattr(os, "fsync", signalling(os.fsync, signum))
    line = stopped(PREDICT, signum, capsys)
    assert line == f"gd-lightning: stopped by {NAMES[signum]}; nothing half-written was kept"
    assert sorted(p.name for p in Path(".").iterdir()) == ["data.csv", "model.ckpt"]


def test_a_predict_not_stopped_writes_every_row(trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("data.csv").write_text(GOOD)
    main(PREDICT)
    assert Path("predictions.csv").read_text().count("\n") == 1 + 5
    assert stop_signal() is None
    no_temporary_file()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("moment", ["creating", "removing"])
def test_no_temporary_file_outlives_a_stop(signum, moment, monkeypatch) -> None:
    # the few lines around the temporary file: creating it, and removing it on an error
    if moment == "creating":
        import tempfile

        created = signalling(tempfile.mkstemp, signum, after=True)  # before it is in hand
        monkeypatch.setattr(tempfile, "mkstemp", created)
    else:
        monkeypatch.setattr(Path, "unlink", signalling(Path.unlink, signum))  # before it goes
    expected = KeyboardInterrupt if signum == signal.SIGINT else SystemExit
    with stops_handled(), pytest.raises(expected), atomic_path("out.txt") as tmp:
        tmp.write_text("half")
        if moment == "removing":
            raise ValueError("a failed write")
    assert stop_signal() == signum
    assert list(Path(".").iterdir()) == []


def test_nothing_is_committed_after_a_stop_that_was_only_recorded() -> None:
    # Lightning's handler called ours (a fit running): it records, the commit refuses
    Path("out.txt").write_text("earlier")
    lightning = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with stops_handled():
            composed = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, lambda n, f: composed(n, f))  # type: ignore[misc, operator]
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop_signal() == signal.SIGTERM
            with pytest.raises(SystemExit), atomic_path("out.txt") as tmp:
                tmp.write_text("later")
    finally:
        signal.signal(signal.SIGTERM, lightning)
    assert [p.name for p in Path(".").iterdir()] == ["out.txt"]
    assert Path("out.txt").read_text() == "earlier"


def test_without_the_command_nothing_is_installed() -> None:
    # a Python user's Trainer keeps Lightning's (and Python's) handling of signals, and
    # writes files as before, even after the command ran in the process and was stopped
    with stops_handled(), pytest.raises(SystemExit):
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert write_text_atomic("out.txt", "x").read_text() == "x"


def test_overwrite_false_never_replaces_a_file() -> None:
    Path("taken.csv").write_text("someone else's\n")
    with pytest.raises(FileExistsError) as error:
        write_csv_atomic("taken.csv", ["a"], [[1]], overwrite=False)
    assert error.value.filename == "taken.csv"
    assert Path("taken.csv").read_text() == "someone else's\n"
    assert write_csv_atomic("free.csv", ["a"], [[1]], overwrite=False).read_text() == "a\n1\n"
    assert sorted(p.name for p in Path(".").iterdir()) == ["free.csv", "taken.csv"]


def test_overwrite_false_without_hard_links(monkeypatch) -> None:
    def no_links(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)  # as on FAT or some network shares
    Path("taken.txt").write_text("kept")
    with pytest.raises(FileExistsError):
        write_text_atomic("taken.txt", "new", overwrite=False)
    assert write_text_atomic("free.txt", "new", overwrite=False).read_text() == "new"
    assert Path("taken.txt").read_text() == "kept"
    assert sorted(p.name for p in Path(".").iterdir()) == ["free.txt", "taken.txt"]


@pytest.mark.slow
def test_sigterm_from_outside_while_the_gif_is_written() -> None:
    # the installed command, a real signal: sent once the GIF's temporary file appears
    args = [sys.executable, "-m", "gd_lightning", *LINE_FIT, "--trainer.max_epochs", "60"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if list(Path("runs").glob(".fit.*.tmp.gif")):
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.005)
    err = process.communicate(timeout=120)[1]
    assert process.returncode == 143 and "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == "gd-lightning: " + FIT_LINE.format("SIGTERM")
    assert not list(Path("runs").glob("*.gif"))
    assert whole_checkpoints() == [60, 60]
    no_temporary_file()
