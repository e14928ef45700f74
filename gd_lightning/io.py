"""Writing files so that an interruption never leaves a half-written one."""

import csv
import errno
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.plugins import TorchCheckpointIO

from gd_lightning.errors import InputError
from gd_lightning.stops import raise_if_stopped, stops_held


@contextmanager
def atomic_path(
    path: str | os.PathLike[str], overwrite: bool = True, stoppable: bool = True
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it becomes ``path`` in one step.

    Whatever is written to the temporary path appears under ``path`` only when the
    block ends without an error (``os.replace`` is atomic on one file system); on an
    error or an interruption the temporary file is removed and ``path`` is untouched.
    While the command line runs, a stop signal received before that step refuses it
    (`gd_lightning.stops`): nothing is committed after Ctrl+C or SIGTERM.

    Args:
        path: the file to write.
        overwrite: with ``False``, never replace an existing ``path``: the step that
            names the file fails with ``FileExistsError`` if it exists by then (which
            makes claiming a free name race-free).
        stoppable: with ``False``, a file begun before a stop signal is still
            committed once whole (a checkpoint: the state it holds is the run's to keep).

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_path(folder / "out.txt") as tmp:
        ...     _ = tmp.write_text("done")
        >>> (folder / "out.txt").read_text(), sorted(p.name for p in folder.iterdir())
        ('done', ['out.txt'])
        >>> try:
        ...     with atomic_path(folder / "out.txt", overwrite=False) as tmp:
        ...         _ = tmp.write_text("again")
        ... except FileExistsError:
        ...     print((folder / "out.txt").read_text(), sorted(p.name for p in folder.iterdir()))
        done ['out.txt']
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        with stops_held():  # a stop between creating the file and naming it would lose it
            tmp = _new_temporary(target)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a file's usual mode
        # held: a stop must not leave _commit_new's claim bare, nor its hard link's source
        with stops_held():
            if stoppable:
                raise_if_stopped()
            if overwrite:
                os.replace(tmp, target)
            else:
                _commit_new(tmp, target)
    except OSError as err:
        if err.filename is None:  # a failed write names no file: name the one being written
            raise OSError(err.errno, err.strerror, str(target)) from err
        raise
    finally:
        if tmp is not None:
            with stops_held():
                tmp.unlink(missing_ok=True)


def _new_temporary(target: Path) -> Path:
    """A new empty file beside ``target`` to write it in, hidden and marked temporary."""
    # keep the extension: some writers (an image library) choose the format by it
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
    )
    os.close(fd)
    return Path(name)


def _commit_new(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` unless ``target`` exists, in one step."""
    try:
        os.link(tmp, target)  # fails if target exists: no other writer can slip in between
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
    except OSError:
        # a file system without hard links (FAT, some network shares): claim the name,
        # then rename over our own empty claim, still in one step
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(descriptor)
        os.replace(tmp, target)
        return
    tmp.unlink()  # now, while a stop is held (`atomic_path`), not after


def write_csv_atomic(
    path: str | os.PathLike[str],
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    overwrite: bool = True,
) -> Path:
    """Write ``header`` and ``rows`` as CSV to ``path`` atomically; return the path.

    With ``overwrite=False`` an existing ``path`` is left alone and ``FileExistsError``
    raised (`atomic_path`).

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> print(write_csv_atomic(folder / "t.csv", ["a", "b"], [(1, 2.5)]).read_text(), end="")
        a,b
        1,2.5
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text_atomic(path, text.getvalue(), overwrite=overwrite)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike[str], text: str, overwrite: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically; return the path.

    With ``overwrite=False`` an existing ``path`` is left alone and ``FileExistsError``
    raised (`atomic_path`).
    """
    with atomic_path(path, overwrite=overwrite) as tmp, tmp.open("w", newline="") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    return Path(path)


def shortest_float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 as ``value``.

    Examples:
        >>> shortest_float32(3.051178216934204)
        3.0511782
    """
    return float(str(np.float32(value)))


def shortest_decimal(dtype: torch.dtype | str) -> Callable[[float], float]:
    """How a value of ``dtype`` is written with every digit it holds and no more:
    `shortest_float32` for float32, the value itself (Python's shortest float64
    repr) for float64.

    Examples:
        >>> shortest_decimal(torch.float32)(0.1), shortest_decimal(torch.float64)(0.1)
        (0.1, 0.1)
    """
    return float if dtype == torch.float64 else shortest_float32


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing each local checkpoint atomically.

    The checkpoint goes to a temporary file beside its target and is renamed over it
    in one step, so a run killed while saving (even with ``SIGKILL``) leaves the
    previous file whole, never a truncated one. (Lightning's own writer stages the
    file in the system's temporary folder, and moving it from there is a copy when
    that folder is on another file system.) A temporary file left by a run killed
    mid-save is removed at the next save of the same checkpoint. Remote paths
    (``s3://``, ...) go through Lightning's writer as before.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        # through a Python file, so that a failed write (a full disk) is an OSError
        # a checkpoint begun before a stop signal is kept: it is what the run resumes from
        with atomic_path(target, stoppable=False) as tmp, tmp.open("wb") as file:
            torch.save(checkpoint, file)
        # a run killed mid-save left its temporary file behind: the save is whole now
        for stale in target.parent.glob(f".{target.stem}.*.tmp{target.suffix}"):
            stale.unlink(missing_ok=True)


def check_writable(
    folder: Path,
    what: str = "the run's files",
    fix: str = "choose another folder with --trainer.default_root_dir or the logger's save_dir",
) -> None:
    """Refuse, in one line, a folder that cannot be created or written to, before any
    training rather than when the first file is due; the line names ``what`` was to go
    there and the ``fix``."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not writable"
    else:
        try:
            with tempfile.TemporaryFile(dir=existing) as probe:
                probe.write(b"\0" * 4096)  # a full disk refuses even this much
                probe.flush()
        except OSError as err:
            problem = f"{existing}: {err.strerror or err}"
    if problem:
        raise InputError(f"cannot write {what} to {folder} ({problem}): {fix}")
