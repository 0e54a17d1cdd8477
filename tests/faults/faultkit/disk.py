"""Damage a stopped keepr member's files the way crashes and bad disks do.

- `tear_log_tail`: cut the newest log segment in the middle of its last record, as a crash
  during a write leaves it (keepr-log frames are `[u32 len][u32 crc32c][payload]`,
  little-endian).
- `flip_log_tail`: flip a byte inside the last record's payload (its checksum no longer
  matches, and nothing valid follows).
- `flip_snapshot`: flip bytes in the middle of the newest snapshot file.

keepr must restart from each: drop the damaged tail or skip the damaged snapshot, rebuild
from what is left plus its peers, and lose nothing acknowledged (a quorum still has every
acknowledged entry, because only one member is damaged at a time).
"""

from __future__ import annotations

import random
import struct
from pathlib import Path


class DiskError(RuntimeError):
    pass


def _records(data: bytes) -> list[tuple[int, int]]:
    """(offset, end) of each whole record, stopping at the first that is not whole."""
    out, at = [], 0
    while at + 8 <= len(data):
        (length,) = struct.unpack_from("<I", data, at)
        end = at + 8 + length
        if length == 0 or end > len(data):
            break
        out.append((at, end))
        at = end
    return out


def newest_segment(data_dir: Path) -> Path:
    segs = sorted((data_dir / "log").glob("*.log"))
    if not segs:
        raise DiskError(f"no log segments in {data_dir / 'log'}")
    return segs[-1]


def _last_record(path: Path) -> tuple[bytes, int, int]:
    data = path.read_bytes()
    recs = _records(data)
    if not recs:
        raise DiskError(f"{path} holds no whole record")
    start, end = recs[-1]
    return data, start, end


def tear_log_tail(data_dir: Path, rng: random.Random) -> str:
    path = newest_segment(data_dir)
    data, start, end = _last_record(path)
    cut = rng.randint(start + 1, end - 1)
    with open(path, "r+b") as f:
        f.truncate(cut)
    return f"{path.name}: cut at {cut} inside the last record [{start}, {end})"


def flip_log_tail(data_dir: Path, rng: random.Random) -> str:
    path = newest_segment(data_dir)
    data, start, end = _last_record(path)
    at = rng.randint(start + 8, end - 1)
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(bytes([data[at] ^ 0xFF]))
    return f"{path.name}: flipped byte {at} of the last record [{start}, {end})"


def newest_snapshot(data_dir: Path) -> Path | None:
    snaps = sorted((data_dir / "snapshots").glob("*.snap"))
    return snaps[-1] if snaps else None


def flip_snapshot(data_dir: Path, rng: random.Random) -> str:
    path = newest_snapshot(data_dir)
    if path is None:
        raise DiskError(f"no snapshot in {data_dir / 'snapshots'}")
    size = path.stat().st_size
    with open(path, "r+b") as f:
        flipped = []
        for _ in range(3):
            at = rng.randint(size // 4, max(size // 4, size - 5))
            f.seek(at)
            b = f.read(1)
            f.seek(at)
            f.write(bytes([b[0] ^ 0x5A]))
            flipped.append(at)
    return f"{path.name} ({size} bytes): flipped bytes at {flipped}"
