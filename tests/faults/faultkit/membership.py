"""Membership changes through `keepr members` (the admin API) while the workload runs: a
member joins (`keepr server --join`), is added as a learner, promoted once caught up; a member
is removed, then stopped; a member whose disk was wiped comes back as a new incarnation and
replaces its old self. Every step waits for the ensemble to settle, bounded."""

from __future__ import annotations

import re

from .cluster import Cluster, ClusterError, wait_for
from .history import History


def voters(cluster: Cluster) -> dict[str, str]:
    """id (as keepr prints it) -> role, from `keepr members list` on the leader."""
    out = cluster.admin("list")
    roles = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+)\s+(voter|learner)\s", line)
        if m:
            roles[m.group(1)] = m.group(2)
    return roles


def candidates(cluster: Cluster) -> dict[str, str]:
    """Members that announced themselves and wait to be added: id -> peer address."""
    return dict(re.findall(r"candidate (\S+) at (\S+) is waiting", cluster.admin("list")))


def _retry(what: str, step, timeout: float = 90.0):
    last = {}

    def attempt():
        """The step's result; None (not done yet) and errors are retried."""
        try:
            return step()
        except ClusterError as e:
            last["error"] = e
            return False
    try:
        return wait_for(attempt, timeout, what, interval=0.5)
    except ClusterError as e:
        raise ClusterError(f"{e}; last error: {last.get('error')}") from None


def grow(cluster: Cluster, m: int, history: History, stale: str | None = None) -> str:
    """Starts member m with --join, adds it as a learner, promotes it. Returns its id.
    `stale`: an id that announced itself from the same address before (a wiped member's old
    self); its announcements stay listed among the candidates for a while."""
    member = cluster.members[m]
    member.join = [cluster.members[i].peer for i in cluster.serving]
    member.start()
    history.event(f"member {m} started with --join")
    new_id = _retry(f"member {m} announcing itself",
                    lambda: next((i for i, peer in candidates(cluster).items()
                                  if peer == member.peer and i != stale), None))
    _retry(f"adding {new_id} as a learner", lambda: cluster.admin("add", new_id, member.peer))
    _retry(f"promoting {new_id}", lambda: cluster.admin("promote", new_id))
    cluster.retired.discard(m)
    cluster.ids[m] = new_id
    cluster.wait_ready(timeout=90, ids=[m])
    history.event(f"member {m} ({new_id}) is a voter: {sorted(voters(cluster))}")
    return new_id


def shrink(cluster: Cluster, m: int, ids: dict[int, str], history: History) -> None:
    """Removes member m (whose ids are `ids`: member -> keepr id) from the ensemble, moving
    leadership off it first, then stops it."""
    member_id = ids[m]
    if cluster.leader() == m:
        other = next(i for i in cluster.serving if i != m)
        _retry(f"moving leadership off {m}", lambda: cluster.admin("transfer", ids[other]))
        cluster.wait_leader(timeout=60, not_=m)
    _retry(f"removing {member_id}", lambda: cluster.admin("remove", member_id))
    cluster.retired.add(m)
    cluster.members[m].stop()
    history.event(f"member {m} ({member_id}) removed and stopped: {sorted(voters(cluster))}")


def replace_wiped(cluster: Cluster, m: int, old_id: str, history: History) -> str:
    """Kills member m, wipes its disk, removes its old self and lets it rejoin as a new
    incarnation. Returns the new id."""
    member = cluster.members[m]
    member.kill()
    member.wipe()
    history.event(f"member {m} killed and its disk wiped")
    _retry(f"removing the wiped {old_id}", lambda: cluster.admin("remove", old_id))
    cluster.retired.add(m)
    new_id = grow(cluster, m, history, stale=old_id)
    if new_id == old_id:
        raise ClusterError(f"the wiped member came back as its old id {old_id}")
    return new_id
