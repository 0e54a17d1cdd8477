"""Every acknowledged write survives members being SIGKILLed and restarted, on every member.

Writers on all members of a 3-member ensemble write without pause: sequential creates (each
with a value of its own) and versioned setData on a node each writer alone writes. Meanwhile a
seeded random member (every third round the leader) is SIGKILLed, the writers must go on
without it, and it is restarted on its data directory; a last round kills all three at once
and restarts them. At the end every member is read alone, after `sync`:

- every acknowledged create is there with its value; any other node under a writer is one of
  its creates whose outcome it never learned (ConnectionLoss), and no create was applied twice
  (values are unique);
- every writer's node is at a version no older than its last acknowledged set, holding that
  set's value, or a later set of unknown outcome;
- all members show exactly the same.

A versioned set whose reply was lost is resolved by reading the node back: only its writer
writes it, so the version says whether the set was applied (maybe later: the next set then
fails with BadVersion and the read tells). `KEEPR_DURABILITY_SEED` replays a run (the seed is
printed) and `KEEPR_DURABILITY_ROUNDS` (default 8) sets the number of kills.
"""

import os
import random
import threading
from collections import defaultdict

from kazoo.exceptions import BadVersionError

from harness.clients import WAIT_S
from harness.failover import (
    UNKNOWN_OUTCOME,
    Progress,
    kill_all_and_restart,
    kill_and_restart,
    on_every_member,
)

ROUNDS = int(os.environ.get("KEEPR_DURABILITY_ROUNDS", "8"))
# Acknowledged writes wanted while a member is down and again after its restart.
WRITES_PER_PHASE = 100


def chosen_seed() -> int:
    given = os.environ.get("KEEPR_DURABILITY_SEED")
    return int(given) if given else random.SystemRandom().randrange(1, 2**31)


class Writer:
    """One client's writes and what it knows of their outcomes."""

    def __init__(self, k: int, zk, base: str):
        self.k = k
        self.zk = zk
        self.dir = f"{base}/w{k}"
        self.reg = f"{self.dir}/reg"
        self.n = 0
        first = self.value()
        zk.create(self.reg, first, makepath=True)
        self.created = {}  # path -> value, acknowledged
        self.unknown_creates = set()  # values of creates whose outcome is unknown
        self.version = 0  # the reg's version as this writer last knew it
        self.acked_set = (0, first)  # (version, value) of the last acknowledged set
        self.sets_acked = 0
        self.unknown_sets = set()  # values of sets whose outcome is unknown

    def value(self) -> bytes:
        self.n += 1
        return f"w{self.k}-{self.n}".encode()

    def create(self) -> bool:
        """One sequential create; whether it was acknowledged."""
        value = self.value()
        try:
            path = self.zk.create(f"{self.dir}/item-", value, sequence=True)
        except UNKNOWN_OUTCOME:
            self.unknown_creates.add(value)
            return False
        self.created[path] = value
        return True

    def set(self) -> bool:
        """One versioned set; whether it was acknowledged."""
        value = self.value()
        try:
            stat = self.zk.set(self.reg, value, version=self.version)
        except UNKNOWN_OUTCOME:
            self.unknown_sets.add(value)
            self.catch_up()
            return False
        except BadVersionError:
            # Only a set of unknown outcome, applied after the writer last looked, explains it.
            assert self.catch_up(), (
                f"writer {self.k}: BadVersion at the version it last knew ({self.version}): "
                "an acknowledged version was lost or someone else wrote"
            )
            return False
        self.version = stat.version
        self.acked_set = (stat.version, value)
        self.sets_acked += 1
        return True

    def catch_up(self) -> bool:
        """Learn the reg's current version; whether a set of unknown outcome was applied."""
        zk = self.zk
        zk.retry(zk.sync, self.reg)
        data, stat = zk.retry(zk.get, self.reg)
        assert stat.version >= self.version, f"writer {self.k}: version went back"
        advanced = stat.version > self.version
        if advanced:
            assert data in self.unknown_sets, f"writer {self.k}: unknown value {data!r}"
        self.version = stat.version
        return advanced

    def check(self, member: int, reg, children: dict) -> list:
        """What is wrong with one member's view of this writer's nodes. `reg` is its
        (version, data); `children` maps item paths to values."""
        problems = []
        version, data = reg
        acked_version, acked_value = self.acked_set
        if version < acked_version:
            problems.append(f"reg at version {version}, acknowledged {acked_version}")
        elif version == acked_version and data != acked_value:
            problems.append(f"reg v{version} holds {data!r}, acknowledged {acked_value!r}")
        elif version > acked_version and data not in self.unknown_sets:
            problems.append(f"reg v{version} holds {data!r}, never written there")
        for path, value in self.created.items():
            if children.get(path) != value:
                problems.append(f"acknowledged {path}={value!r} reads {children.get(path)!r}")
        seen = defaultdict(list)
        for path, value in children.items():
            seen[value].append(path)
            if value not in self.unknown_creates and self.created.get(path) != value:
                problems.append(f"{path}={value!r} was never written there")
        problems += [f"{v!r} created twice: {paths}" for v, paths in seen.items() if len(paths) > 1]
        return [f"member {member}, writer {self.k}: {p}" for p in problems]


def read_writer_nodes(zk, writers) -> dict:
    """Per writer: ((version, data) of its reg, {item path: value})."""
    seen = {}
    for writer in writers:
        names = [n for n in zk.get_children(writer.dir) if n != "reg"]
        pending = [(f"{writer.dir}/{n}", zk.get_async(f"{writer.dir}/{n}")) for n in names]
        children = {path: result.get(timeout=WAIT_S)[0] for path, result in pending}
        data, stat = zk.get(writer.reg)
        seen[writer.k] = ((stat.version, data), children)
    return seen


def test_acknowledged_writes_survive_members_being_killed_on_every_member(crew):
    ensemble, base = crew.ensemble, crew.base
    seed = chosen_seed()
    print(f"durability seed {seed} (replay with KEEPR_DURABILITY_SEED={seed}), {ROUNDS} rounds")
    rng = random.Random(seed)
    writers = [Writer(k, zk, base) for k, zk in enumerate(crew.clients)]
    acks = Progress()
    stop = threading.Event()
    errors = []

    def write(writer):
        try:
            while not stop.is_set():
                if writer.create() if writer.n % 2 == 0 else writer.set():
                    acks.add()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((writer.k, repr(e)))
            acks.abort(f"writer {writer.k}: {e!r}")

    threads = [threading.Thread(target=write, args=(w,), daemon=True) for w in writers]
    for t in threads:
        t.start()
    victims = []
    timings = []
    try:
        acks.wait_for_more(WRITES_PER_PHASE, "the first writes")
        for round_ in range(ROUNDS):
            victim = ensemble.leader() if round_ % 3 == 0 else rng.choice(ensemble.members)
            victims.append(victim.number)
            timings.append(kill_and_restart(ensemble, crew, acks, victim, WRITES_PER_PHASE))
        kill_all_and_restart(ensemble, acks, WRITES_PER_PHASE)
    finally:
        stop.set()
        for t in threads:
            t.join(WAIT_S * 3)
    assert not any(t.is_alive() for t in threads), "a writer never finished"
    assert errors == []
    print(
        f"killed members {victims}, then all; {WRITES_PER_PHASE} writes without the killed "
        f"member took {[round(t[0], 2) for t in timings]} s, its restart until ready "
        f"{[round(t[1], 2) for t in timings]} s"
    )
    print(
        f"{sum(len(w.created) for w in writers)} creates and "
        f"{sum(w.sets_acked for w in writers)} sets acknowledged, "
        f"{sum(len(w.unknown_creates) + len(w.unknown_sets) for w in writers)} of unknown "
        "outcome"
    )
    views = on_every_member(ensemble, lambda zk: read_writer_nodes(zk, writers))
    problems = [
        problem
        for member, view in views.items()
        for writer in writers
        for problem in writer.check(member, *view[writer.k])
    ]
    assert problems == [], "\n".join(problems[:40])
    first = views[ensemble.members[0].number]
    assert all(view == first for view in views.values()), "members disagree"
    crew.check_sessions_kept()
