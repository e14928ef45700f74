"""Each run's folder: claimed before the run starts, removed again if the run could not
write its files."""

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch import Callback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from gd_lightning.errors import InputError

#: the errors of a write the system refused: no space, over a quota or a size limit, a
#: read-only file system
WRITE_ERRORS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS") if hasattr(errno, name)
)


def claim_run_folders(trainer: "pl.Trainer", resuming: bool = False) -> list[Path]:
    """Fix the version folder of each of ``trainer``'s TensorBoard and CSV loggers now and
    create it, under a lock on the folder of versions, so that fits started together in
    one folder each get a version of their own (Lightning picks the next free number
    when it first writes, and two fits starting at once would pick the same). A new
    (not ``resuming``) fit whose logger names a version folder that already holds
    files (``version=0`` given twice) is refused in one line before anything is
    written: the logger would write its events into the earlier run, and a CSV logger
    would replace its ``metrics.csv``. Returns the folders this call created (for a run
    without a logger, the paths it will write in its root folder that are not there
    yet). Only the first process claims; where the system has no file locks (Windows)
    the folder is created without one."""
    created: list[Path] = []
    if trainer.global_rank != 0:
        return created
    if not trainer.loggers:  # the run writes straight into its root folder
        root = Path(trainer.default_root_dir)
        created += [path for path in (root / "config.yaml", root / "checkpoints")
                    if not path.exists()]  # fmt: skip
    for logger in trainer.loggers:
        if not isinstance(logger, TensorBoardLogger | CSVLogger):
            continue
        versions = Path(logger.root_dir)
        versions.mkdir(parents=True, exist_ok=True)
        with _locked(versions):
            folder = Path(logger.log_dir)  # Lightning's next free version, seen under the lock
            version = version_folder(logger)
            if not resuming and version.is_dir() and any(version.iterdir()):
                raise InputError(
                    f"{version} holds an earlier run, and this new fit would write into it "
                    f"(its logger's version is {logger.version!r}): leave "
                    f"trainer.logger.init_args.version out (each run then gets a version "
                    f"of its own), name an unused one, or resume that run with --ckpt_path"
                )
            if not folder.exists():
                folder.mkdir(parents=True)
                created.append(folder)
    return created


def version_folder(logger: TensorBoardLogger | CSVLogger) -> Path:
    """The folder of ``logger``'s version (``.../version_0``), which holds its log folder
    (the same, or a ``sub_dir`` inside it)."""
    root, log_dir = Path(logger.root_dir), Path(logger.log_dir)
    try:
        return root / log_dir.relative_to(root).parts[0]
    except (ValueError, IndexError):  # a log folder outside its root: the log folder itself
        return log_dir


class ResumeHold(Callback):
    """Lock the checkpoint ``folder`` of the run a fit resumed with ``--ckpt_path last``
    continues, from now until the fit ends; a second resume of the same run while the
    first runs is refused in one line (both would write the same checkpoints and logs)."""

    def __init__(self, folder: Path) -> None:
        try:
            self.descriptor = lock_folder(folder, wait=False)
        except BlockingIOError:
            raise InputError(
                f"the run whose checkpoints are in {folder} is being resumed by another "
                f"process right now: wait for it to end, then resume it again (two resumes "
                f"at once would write the same files)"
            ) from None

    def release(self) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # releases the lock
            self.descriptor = None

    def teardown(self, trainer: "pl.Trainer", pl_module: Any, stage: str) -> None:
        self.release()

    def on_exception(self, trainer: "pl.Trainer", pl_module: Any, exception: BaseException) -> None:
        self.release()


def lock_folder(folder: Path, wait: bool = True) -> int | None:
    """An exclusive lock on ``folder``: the descriptor holding it (closing it releases
    the lock), or ``None`` where the system has no file locks (Windows). Without
    ``wait``, a lock held elsewhere raises ``BlockingIOError``. Written by hand rather
    than with ``filelock``: that needs a lock file, which it leaves in the user's folder
    by design, where ``flock`` on the folder itself leaves nothing."""
    try:
        import fcntl
    except ImportError:
        return None
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """`lock_folder`, waiting, for the length of a ``with`` block."""
    descriptor = lock_folder(folder)
    try:
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)  # releases the lock


class RemoveUnwrittenRun(Callback):
    """When a run fails to write its files (a full disk, a folder gone read-only), remove
    the run folders it created, unless a checkpoint was saved there: what is left of
    them is half-written (an empty ``hparams.yaml``, a config without a run)."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders

    def on_exception(self, trainer: "pl.Trainer", pl_module: Any, exception: BaseException) -> None:
        if not isinstance(exception, OSError) or exception.errno not in WRITE_ERRORS:
            return
        for path in self.folders:
            if path.is_file():
                path.unlink(missing_ok=True)
            elif path.is_dir() and not any(path.rglob("*.ckpt")):
                shutil.rmtree(path, ignore_errors=True)
