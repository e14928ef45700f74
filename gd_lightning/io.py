"""Writing files so that an interruption never leaves a half-written one."""

import csv
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


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step.

    Whatever is written to the temporary path appears under ``path`` only when the
    block ends without an error (``os.replace`` is atomic on one file system); on an
    error or an interruption the temporary file is removed and ``path`` is untouched.

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_path(folder / "out.txt") as tmp:
        ...     _ = tmp.write_text("done")
        >>> (folder / "out.txt").read_text(), sorted(p.name for p in folder.iterdir())
        ('done', ['out.txt'])
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # keep the extension: some writers (an image library) choose the format by it
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a file's usual mode
        os.replace(tmp, target)
    except OSError as err:
        if err.filename is None:  # a failed write names no file: name the one being written
            raise OSError(err.errno, err.strerror, str(target)) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_csv_atomic(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Path:
    """Write ``header`` and ``rows`` as CSV to ``path`` atomically; return the path.

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
    return write_text_atomic(path, text.getvalue())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as file:
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
        with atomic_path(target) as tmp, tmp.open("wb") as file:
            torch.save(checkpoint, file)
        # a run killed mid-save left its temporary file behind: the save is whole now
        for stale in target.parent.glob(f".{target.stem}.*.tmp{target.suffix}"):
            stale.unlink(missing_ok=True)
