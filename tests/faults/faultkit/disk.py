"""Damage a stopped keepr member's files the way crashes and bad disks do.

- `tear_log_tail`: the newest log segment ends in the middle of a record, as a crash during
  a write leaves it (keepr-log frames are `[u32 len][u32 crc32c][payload]`, little-endian).
- `flip_log_tail`: the last record has a flipped byte (its checksum no longer matches, and
  nothing valid follows).
- `flip_snapshot`: flip bytes in the middle of the newest snapshot file.

keepr must restart from each: drop the damaged tail or skip the damaged snapshot, rebuild
from what is left plus its peers, and lose nothing acknowledged.

Which record is damaged: a crash can only tear a write that had not completed, and keepr
acknowledges nothing before its fsync, so a torn record is never one anybody relied on.
SIGKILL loses nothing the kernel already holds, so the last record on disk after a kill is
usually complete, fsynced and acknowledged; damaging *it* would be losing durable data,
which Raft's fault model excludes. The suite's first version did that and the checkers
reported what Raft then allows: a member that lost its fsynced vote voted twice and two
leaders diverged; a leader that lost its last acknowledged entry came back (openraft's
leader restore) in the same term, reused that index for another write, and an acknowledged
write vanished. So the damaged last record is a new one, appended after the last whole
record and then cut short or bit-flipped: exactly what a crash in the middle of that write
leaves.
"""

from __future__ import annotations

import random
import shutil
import struct
import tempfile
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


def _torn_record(rng: random.Random, flip: bool) -> bytes:
    """A frame of an entry record whose write a crash interrupted: cut short, or whole with
    a checksum that does not match."""
    payload = bytes([1]) + rng.randbytes(rng.randint(20, 200))
    frame = struct.pack("<II", len(payload), rng.getrandbits(32)) + payload
    return frame if flip else frame[:rng.randint(1, len(frame) - 1)]


def _damage_tail(data_dir: Path, rng: random.Random, flip: bool) -> str:
    path = newest_segment(data_dir)
    data, _, end = _last_record(path)
    torn = _torn_record(rng, flip)
    with open(path, "r+b") as f:
        f.truncate(end)  # drop anything after the last whole record first
        f.seek(end)
        f.write(torn)
    how = "bit-flipped" if flip else "torn"
    return f"{path.name}: a {how} record of {len(torn)} bytes written at {end}, after the last whole record"


def tear_log_tail(data_dir: Path, rng: random.Random) -> str:
    return _damage_tail(data_dir, rng, flip=False)


def flip_log_tail(data_dir: Path, rng: random.Random) -> str:
    return _damage_tail(data_dir, rng, flip=True)


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


def backup(data_dir: Path, workdir: Path) -> Path:
    """A copy of a stopped member's log and snapshots (in the run's workdir, removed with
    it), to put back with `restore` or drop with `discard`."""
    dest = Path(tempfile.mkdtemp(prefix="backup-", dir=workdir))
    for part in ("log", "snapshots"):
        if (data_dir / part).exists():
            shutil.copytree(data_dir / part, dest / part)
    return dest


def restore(data_dir: Path, saved: Path) -> None:
    for part in ("log", "snapshots"):
        shutil.rmtree(data_dir / part, ignore_errors=True)
        if (saved / part).exists():
            shutil.copytree(saved / part, data_dir / part)
    shutil.rmtree(saved, ignore_errors=True)


def discard(saved: Path) -> None:
    shutil.rmtree(saved, ignore_errors=True)
