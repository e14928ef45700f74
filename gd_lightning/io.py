"""Writing files so that an interruption never leaves a half-written one."""

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step.

    Whatever is written to the temporary path appears under ``path`` only when the
    block ends without an error (``os.replace`` is atomic on one file system); on an
    error or an interruption the temporary file is removed and ``path`` is untouched.

    Example:
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
    finally:
        tmp.unlink(missing_ok=True)


def write_csv_atomic(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Path:
    """Write ``header`` and ``rows`` as CSV to ``path`` atomically; return the path.

    Example:
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

    Example:
        >>> shortest_float32(3.051178216934204)
        3.0511782
    """
    return float(str(np.float32(value)))
