"""The layout of prometheus_client's multiprocess value files, read strictly, and the compacted file written in it.

    offset 0   used bytes (int32), 4 bytes of padding
    offset 8   entries, back to back up to `used`: key length (int32), the JSON key padded with spaces so that
               length field + key + padding is a multiple of 8, then value and timestamp (two doubles)
    after used free space, zeros (prometheus_client grows the file by doubling it, from 64 KiB)

prometheus_client writes an entry first and the header after it, and grows the file before writing past its end, so
for a file read while it grows: every entry below the header's `used` is complete, and `used` never exceeds the
file's size on disk. A header beyond the size this reader mapped is growth it did not map (read what it mapped, the
rest next time); a header beyond the file's current size, a length running past `used`, a key that is not the
4-item JSON list prometheus_client writes, or a key seen twice, is damage: `DamagedFile`, and the file is skipped.

A compacted file (featurestore.compaction) has the same layout, so prometheus_client's own collector reads it too,
and records after `used` (where readers stop) the identities of the process files it has absorbed.

This module reads prometheus_client's layout, not its code; tests/featurestore/test_value_files.py fails with the
reason when the installed version writes something else.
"""

from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Iterable
from dataclasses import dataclass

Buffer = bytes | mmap.mmap

HEADER_BYTES = 8
_int = struct.Struct("i")
_doubles = struct.Struct("dd")
_ABSORBED_MAGIC = b"FSABSORB"


class DamagedFile(ValueError):
    """A value file that does not hold prometheus_client's layout; the message says where."""


@dataclass(frozen=True)
class Entry:
    key: bytes  # the raw JSON key, as written
    metric_name: str
    sample_name: str
    labels: dict[str, str]
    help: str
    position: int  # byte offset of the value (the timestamp follows it)


def used_bytes(data: Buffer) -> int:
    """The header's used-bytes count (0: a file prometheus_client has just created); DamagedFile when impossible."""
    used: int = _int.unpack_from(data, 0)[0]
    if used == 0:
        return 0
    if used < HEADER_BYTES or used % 8:
        raise DamagedFile(f"header says {used} bytes used, not a multiple of 8 past the 8-byte header")
    return used


def parse_key(raw: bytes) -> tuple[str, str, dict[str, str], str]:
    try:
        key = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedFile(f"an entry key is not JSON ({exc})") from None
    if (
        not isinstance(key, list)
        or len(key) != 4
        or not all(isinstance(part, str) for part in (key[0], key[1], key[3]))
        or not isinstance(key[2], dict)
        or not all(isinstance(name, str) and isinstance(value, str) for name, value in key[2].items())
    ):
        raise DamagedFile("an entry key is not [metric, sample, {label: value}, help]")
    return key[0], key[1], key[2], key[3]


def entries(data: Buffer, start: int, end: int, *, complete: bool) -> tuple[list[Entry], int]:
    """The entries from byte `start` up to `end`, and where the last one ended.

    `complete`: `end` is the header's `used`, so an entry running past it is damage; otherwise `end` is what was
    mapped of a file that grew since, and an entry running past it is left for the next read."""
    found: list[Entry] = []
    position = start
    while position < end:
        if position + 4 > end:
            break
        length: int = _int.unpack_from(data, position)[0]
        value_at = position + 4 + length + (8 - (length + 4) % 8)
        if length <= 0 or value_at + 16 > end:
            if length > 0 and not complete:
                break
            raise DamagedFile(f"the entry at byte {position} has length {length}, past the {end} bytes used")
        raw = bytes(data[position + 4 : position + 4 + length])
        metric_name, sample_name, labels, help_text = parse_key(raw)
        found.append(Entry(raw, metric_name, sample_name, labels, help_text, value_at))
        position = value_at + 16
    return found, position


def read_values(data: bytes) -> tuple[dict[bytes, float], frozenset[str]]:
    """Every key's value of a whole file, and the identities it absorbed (a compacted file's; none otherwise)."""
    if len(data) < HEADER_BYTES:
        raise DamagedFile(f"{len(data)} bytes, shorter than the header")
    used = used_bytes(data)
    if used > len(data):
        raise DamagedFile(f"header says {used} bytes used, the file has {len(data)}")
    found, _ = entries(data, HEADER_BYTES, used, complete=True) if used else ([], HEADER_BYTES)
    values: dict[bytes, float] = {}
    for entry in found:
        if entry.key in values:
            raise DamagedFile(f"the key {entry.key[:80]!r} appears twice")
        values[entry.key] = _doubles.unpack_from(data, entry.position)[0]
    return values, absorbed(data, used)


def absorbed(data: Buffer, used: int) -> frozenset[str]:
    """The identities recorded after `used` (a compacted file), empty when there is no record."""
    start = max(used, HEADER_BYTES)
    if bytes(data[start : start + len(_ABSORBED_MAGIC)]) != _ABSORBED_MAGIC:
        return frozenset()
    length_at = start + len(_ABSORBED_MAGIC)
    if length_at + 4 > len(data):
        raise DamagedFile("the absorbed-sources record is cut short")
    length: int = _int.unpack_from(data, length_at)[0]
    raw = bytes(data[length_at + 4 : length_at + 4 + length])
    if length < 0 or len(raw) != length:
        raise DamagedFile("the absorbed-sources record is cut short")
    try:
        names = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise DamagedFile("the absorbed-sources record is not JSON") from None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise DamagedFile("the absorbed-sources record is not a list of names")
    return frozenset(names)


def encode(values: dict[bytes, float], absorbed_identities: Iterable[str]) -> bytes:
    """A file in prometheus_client's layout holding `values`, then the absorbed-sources record."""
    body = bytearray()
    for key, value in sorted(values.items()):
        padding = 8 - (len(key) + 4) % 8
        body += _int.pack(len(key)) + key + b" " * padding + _doubles.pack(value, 0.0)
    used = HEADER_BYTES + len(body)
    record = json.dumps(sorted(absorbed_identities)).encode()
    data = _int.pack(used) + b"\0" * 4 + bytes(body) + _ABSORBED_MAGIC + _int.pack(len(record)) + record
    return data + b"\0" * (-len(data) % 8)  # whole doubles: readers map the file as an array of them
