"""TensorBoard event files written directly, many events at a time.

An event file is a sequence of records: the event's length, a masked CRC-32C of the
length, the serialized ``Event``, a masked CRC-32C of it. TensorBoard's own writer
works the CRCs out byte by byte in Python (it has no compiled CRC-32C without
TensorFlow): about 25 µs for one step's scalars, more than a tutorial's whole step.
:func:`masked_crc32c` does all the records of a write at once with numpy, and
TensorBoard's reader checks every CRC it reads.
"""

import os
import socket
import struct
import time
from io import BufferedWriter
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event

#: CRC-32C (Castagnoli), reflected
_POLYNOMIAL = 0x82F63B78
_MASK_DELTA = 0xA282EAD8


def _byte_table() -> np.ndarray:
    """The CRC of each byte value alone, from a zero register: shape (256,), uint32."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLYNOMIAL), table >> 1)
    return table.astype(np.uint32)


class _Tables:
    """What the bytes of a message contribute to its CRC, by distance from its end.

    CRC-32C is linear in the message bits, so the CRC of a message of ``n`` bytes is
    the CRC of ``n`` zero bytes XOR, for each byte, what that byte value contributes
    at its distance from the message's end (``by_distance[d, value]``). Both tables
    grow as longer messages come.
    """

    def __init__(self) -> None:
        self.byte = _byte_table()
        self.by_distance = self.byte[None, :].copy()  # (distances, 256)
        self.zeros = np.zeros(1, dtype=np.uint32)  # CRC of 0, 1, ... zero bytes

    def _shift(self, register: Any) -> Any:
        """The register (an array of them, or one) after one more zero byte."""
        return self.byte[register & 0xFF] ^ (register >> 8)

    def grow(self, length: int) -> None:
        """Make the tables cover messages up to ``length`` bytes."""
        have = len(self.by_distance)
        if length > have:
            rows = [self.by_distance]
            row = self.by_distance[-1]
            for _ in range(max(length, 2 * have) - have):
                row = self._shift(row)
                rows.append(row[None])
            self.by_distance = np.concatenate(rows)
        if length >= len(self.zeros):
            register = np.uint32(0xFFFFFFFF)
            values = [np.uint32(0)]
            for _ in range(max(length + 1, 2 * len(self.zeros)) - 1):
                register = self._shift(register)
                values.append(register ^ np.uint32(0xFFFFFFFF))
            self.zeros = np.array(values, dtype=np.uint32)


_TABLES = _Tables()


def masked_crc32c(messages: list[bytes]) -> list[int]:
    """The masked CRC-32C of each message, as TensorBoard records carry it.

    Example:
        >>> masked_crc32c([b"123456789"])  # CRC-32C check value 0xE3069283, masked
        [3347755237]
    """
    if not messages:
        return []
    lengths = np.fromiter((len(m) for m in messages), dtype=np.int64, count=len(messages))
    if (lengths == 0).any():
        raise ValueError("masked_crc32c needs non-empty messages")
    _TABLES.grow(int(lengths.max()))
    data = np.frombuffer(b"".join(messages), dtype=np.uint8)
    ends = np.cumsum(lengths)
    distance = np.repeat(ends, lengths) - 1 - np.arange(len(data))
    contributions = _TABLES.by_distance[distance, data]
    crc = np.bitwise_xor.reduceat(contributions, ends - lengths) ^ _TABLES.zeros[lengths]
    crc = crc.astype(np.uint64)
    masked = (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF
    return masked.tolist()


def records(events: list[bytes]) -> bytes:
    """Serialized events framed as the records of an event file."""
    headers = [struct.pack("<Q", len(event)) for event in events]
    crcs = masked_crc32c(headers + events)
    n = len(events)
    return b"".join(
        header + struct.pack("<I", crcs[i]) + event + struct.pack("<I", crcs[n + i])
        for i, (header, event) in enumerate(zip(headers, events, strict=True))
    )


class EventFile:
    """A TensorBoard event file of scalars: one event per step, all its values.

    TensorBoard reads every ``*tfevents*`` file of a run folder as one run, so these
    scalars sit beside what a logger itself writes (hyperparameters, figures).

    Args:
        folder: the run folder (made if missing).
        suffix: ends the file's name, after TensorBoard's usual
            ``events.out.tfevents.<time>.<host>.<pid>``.
    """

    def __init__(self, folder: Path, suffix: str = "") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._file: BufferedWriter = open(folder / (name + suffix), "ab")  # noqa: SIM115  # kept open
        start = Event(wall_time=time.time(), file_version="brain.Event:2")
        self._file.write(records([start.SerializeToString()]))

    def write(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Append one event per ``(step, {tag: value})`` and flush the file."""
        now = time.time()
        events = []
        for step, values in rows:
            event = Event(wall_time=now, step=step)
            add = event.summary.value.add  # half the cost of building each Value apart
            for tag, value in values.items():
                add(tag=tag, simple_value=value)
            events.append(event.SerializeToString())
        if events:
            self._file.write(records(events))
        self._file.flush()

    def close(self) -> None:
        self._file.close()
