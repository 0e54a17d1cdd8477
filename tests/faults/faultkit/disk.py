"""Damage a stopped keepr member's files the way crashes and bad disks do.

- `tear_log_tail`: the newest log segment ends in the middle of a record, as a crash during
  a write leaves it (keepr-log frames are `[u32 len][u32 crc32c][payload]`, little-endian).
- `flip_log_tail`: the last record has a flipped byte (its checksum no longer matches, and
  nothing valid follows).
- `flip_snapshot`: flip bytes in the middle of the newest snapshot file.

keepr must restart from each: drop the damaged tail or skip the damaged snapshot, rebuild
from what is left plus its peers, and lose nothing acknowledged.

Which record may be damaged: a member is killed with SIGKILL, which loses nothing the
kernel already has, so the last record on disk was usually fsynced and acknowledged. Raft
tolerates one member losing an acknowledged *entry* (a quorum still has it, and the member
is caught up again before the next fault) or a *committed* marker (it only re-applies
less), so those are damaged in place. It cannot tolerate losing a fsynced *vote*: the
member could vote twice in one term and two leaders could be elected (the suite's first
runs did exactly that and the checkers reported the split brain). Nor a truncation or purge
marker. When the last record is one of those, the damage is a torn or bit-flipped *new*
record appended after it instead: what a crash in the middle of an unacknowledged write
leaves. The record kind is the first payload byte (postcard's variant index of
keepr-log's `Record`: 0 header, 1 entry, 2 vote, 3 committed, 4 truncate, 5 purge).
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


KINDS = {0: "header", 1: "entry", 2: "vote", 3: "committed", 4: "truncate", 5: "purge"}
# Records one member may lose without breaking Raft's assumptions (see above).
LOSABLE = {1, 3}


def _torn_record(rng: random.Random, flip: bool) -> bytes:
    """A frame of a record whose write a crash interrupted: cut short, or whole with a
    checksum that does not match."""
    payload = bytes([1]) + rng.randbytes(rng.randint(20, 200))
    frame = struct.pack("<II", len(payload), rng.getrandbits(32)) + payload
    return frame if flip else frame[:rng.randint(1, len(frame) - 1)]


def _damage_tail(data_dir: Path, rng: random.Random, flip: bool) -> str:
    path = newest_segment(data_dir)
    data, start, end = _last_record(path)
    kind = data[start + 8]
    name = KINDS.get(kind, f"kind {kind}")
    if kind not in LOSABLE:
        torn = _torn_record(rng, flip)
        with open(path, "ab") as f:
            f.write(torn)
        how = "a bit-flipped" if flip else "a torn"
        return (f"{path.name}: last record is a {name} (must not be lost), appended {how} "
                f"record of {len(torn)} bytes at {len(data)}")
    with open(path, "r+b") as f:
        if flip:
            at = rng.randint(start + 8, end - 1)
            f.seek(at)
            f.write(bytes([data[at] ^ 0xFF]))
            return f"{path.name}: flipped byte {at} of the last record ({name}, [{start}, {end}))"
        cut = rng.randint(start + 1, end - 1)
        f.truncate(cut)
        return f"{path.name}: cut at {cut} inside the last record ({name}, [{start}, {end}))"


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
