"""What identifies the files a fit read: each one's size and a hash of its content,
kept in the fit's checkpoints so that a resume runs on the data it started on."""

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gd_lightning.errors import InputError

#: the key of the files' identities in a DataModule's state (and so in its checkpoints)
DATA_IDENTITY = "data_identity"
#: bytes read at a time while hashing a file
HASH_CHUNK = 1 << 20


def file_identity(path: Path) -> dict[str, Any]:
    """The size of the file ``path`` and the SHA-256 of its bytes: the same for the same
    content whatever the path that reaches it (``./data.csv``, a link, another folder).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "d.csv"
        >>> _ = path.write_text("a\\n1\\n")
        >>> file_identity(path)["bytes"], file_identity(path)["sha256"][:12]
        (4, '309b0e45a73d')
    """
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def saved_identity(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The identities of the files a checkpoint's fit read, by option, as its DataModule's
    state holds them; ``None`` when it holds none (data drawn in memory, or a checkpoint
    from before they were kept). The state is found by its content, not by the key
    Lightning files it under."""
    for value in checkpoint.values():
        if isinstance(value, Mapping) and isinstance(value.get(DATA_IDENTITY), Mapping):
            return dict(value[DATA_IDENTITY])
    return None


def check_same_files(
    saved: Mapping[str, Any], current: Mapping[str, Any], files: Mapping[str, Path]
) -> None:
    """Refuse, in one line, to resume a fit on other data than it started on: ``saved``
    and ``current`` are the identities (`file_identity`) of the files read, by option,
    when the run started and now; ``files`` their paths now."""
    if set(saved) != set(current):
        raise InputError(
            f"the run read {', '.join(f'data.{o}' for o in sorted(saved))} and this resume "
            f"reads {', '.join(f'data.{o}' for o in sorted(current))}: resume with the data "
            f"it started on, or start a new fit without --ckpt_path"
        )
    for option, record in saved.items():
        now = current[option]
        if now == record:
            continue
        before, after = record.get("bytes"), now.get("bytes")
        what = (f"it holds {after:,} bytes, and held {before:,} when the run started"
                if before != after and isinstance(before, int)
                else "its content changed since the run started, its size did not")  # fmt: skip
        raise InputError(
            f"data.{option} {files[option]} is not the data this run started on ({what}): "
            f"resume with the file as it was, or start a new fit without --ckpt_path"
        )
