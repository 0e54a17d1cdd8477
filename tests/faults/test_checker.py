"""The checkers can fail: hand-made histories that are and are not linearizable or
sequentially consistent, and a seeded randomized comparison of the linearizability search
with brute-force enumeration of every order."""

from __future__ import annotations

import itertools
import random

import pytest

from faultkit import final_state, linearizability, sessions
from faultkit.history import FAIL, INFO, OK, Op
from faultkit.linearizability import RegisterModel

_ids = itertools.count()


def op(f, value, start, end, kind=OK, result=None, key="r", process="p", session=None,
       zxid=None):
    """An operation; `end=None` with kind=INFO for an indeterminate one."""
    return Op(next(_ids), process, session, f, key, value, start,
              None if kind == INFO else end, kind, result, zxid)


def stat(data=None, version=0, czxid=1, mzxid=1):
    return {"data": data, "version": version, "czxid": czxid, "mzxid": mzxid}


def lin(ops, initial=("init", 0)):
    return linearizability.check(ops, {"r": initial})


# ---- linearizability: hand-made histories --------------------------------------------------

def test_sequential_writes_and_reads_are_linearizable():
    h = [
        op("write", "a", 0, 1, result=stat("a", 1)),
        op("sync-read", None, 2, 3, result=stat("a", 1)),
        op("cas", (1, "b"), 4, 5, result=stat("b", 2)),
        op("sync-read", None, 6, 7, result=stat("b", 2)),
    ]
    assert lin(h).ok


def test_a_read_of_an_overwritten_value_after_the_overwrite_completed_is_caught():
    h = [
        op("write", "a", 0, 1, result=stat("a", 1)),
        op("write", "b", 2, 3, result=stat("b", 2)),
        op("sync-read", None, 4, 5, result=stat("a", 1)),  # stale: b was acknowledged
    ]
    report = lin(h)
    assert not report.ok
    assert "NOT linearizable" in report.explain()


def test_concurrent_read_may_see_either_side_of_a_write():
    for seen in (stat("init", 0), stat("a", 1)):
        h = [
            op("write", "a", 0, 10, result=stat("a", 1)),
            op("sync-read", None, 2, 5, result=seen),
        ]
        assert lin(h).ok, seen


def test_reads_must_not_see_a_write_go_back_even_when_concurrent_with_it():
    # Two reads, the second invoked after the first returned the new value, cannot see
    # the old value again, though both overlap the write.
    h = [
        op("write", "a", 0, 100, result=stat("a", 1)),
        op("sync-read", None, 10, 20, result=stat("a", 1)),
        op("sync-read", None, 30, 40, result=stat("init", 0)),
    ]
    assert not lin(h).ok


def test_two_cas_from_the_same_version_cannot_both_succeed():
    h = [
        op("cas", (0, "a"), 0, 10, result=stat("a", 1), process="p1"),
        op("cas", (0, "b"), 0, 10, result=stat("b", 1), process="p2"),
    ]
    assert not lin(h).ok


def test_bad_version_is_an_observation_that_must_fit():
    # The version is 0 throughout, so a CAS expecting 0 cannot fail with BadVersion.
    h = [op("cas", (0, "a"), 0, 1, kind=FAIL, result="BadVersion")]
    assert not lin(h).ok
    h = [op("cas", (5, "a"), 0, 1, kind=FAIL, result="BadVersion")]
    assert lin(h).ok


def test_returned_version_must_match_the_order_of_writes():
    h = [
        op("write", "a", 0, 1, result=stat("a", 1)),
        op("write", "b", 2, 3, result=stat("b", 1)),  # should be version 2
    ]
    assert not lin(h).ok


def test_indeterminate_write_may_have_happened():
    h = [
        op("write", "a", 0, None, kind=INFO, result="ConnectionLoss"),
        op("sync-read", None, 5, 6, result=stat("a", 1)),
    ]
    assert lin(h).ok


def test_indeterminate_write_may_not_have_happened():
    h = [
        op("write", "a", 0, None, kind=INFO, result="ConnectionLoss"),
        op("sync-read", None, 5, 6, result=stat("init", 0)),
        op("write", "b", 7, 8, result=stat("b", 1)),
    ]
    assert lin(h).ok


def test_indeterminate_write_cannot_take_effect_before_it_was_invoked():
    h = [
        op("sync-read", None, 0, 1, result=stat("a", 1)),
        op("write", "a", 5, None, kind=INFO, result="ConnectionLoss"),
    ]
    assert not lin(h).ok


def test_a_value_nobody_wrote_is_caught():
    h = [
        op("write", "a", 0, None, kind=INFO, result="ConnectionLoss"),
        op("sync-read", None, 5, 6, result=stat("zzz", 1)),
    ]
    assert not lin(h).ok


def test_lost_acknowledged_write_is_caught():
    # The shape of a lost write: acknowledged, then a later read shows the state before it.
    h = [
        op("write", "a", 0, 1, result=stat("a", 1)),
        op("write", "b", 2, 3, result=stat("b", 2)),
        op("sync-read", None, 10, 11, result=stat("a", 1)),
    ]
    assert not lin(h).ok


def test_create_and_delete_of_a_register():
    h = [
        op("create", "a", 0, 1, result=stat("a", 0)),
        op("delete", -1, 2, 3),
        op("sync-read", None, 4, 5, kind=FAIL, result="NoNode"),
        op("create", "b", 6, 7, result=stat("b", 0)),
        op("create", "c", 8, 9, kind=FAIL, result="NodeExists"),
        op("sync-read", None, 10, 11, result=stat("b", 0)),
    ]
    assert linearizability.check(h).ok
    h[2] = op("sync-read", None, 4, 5, result=stat("a", 0))  # sees the deleted node
    assert not linearizability.check(h).ok


def test_registers_are_checked_independently():
    h = [
        op("write", "a", 0, 1, result=stat("a", 1), key="x"),
        op("write", "b", 0, 1, result=stat("b", 1), key="y"),
        op("sync-read", None, 2, 3, result=stat("a", 1), key="x"),
        op("sync-read", None, 2, 3, result=stat("a", 1), key="y"),  # y never held "a"
    ]
    report = linearizability.check(h, {"x": ("init", 0), "y": ("init", 0)})
    bad = [r.key for r in report.results if not r.ok]
    assert bad == ["y"]


def test_plain_reads_are_not_held_to_linearizability():
    h = [
        op("write", "a", 0, 1, result=stat("a", 1)),
        op("read", None, 2, 3, result=stat("init", 0)),  # stale, allowed for a plain read
    ]
    assert lin(h).ok


# ---- linearizability: randomized comparison with brute force -------------------------------

def brute_force(ops, initial):
    """Tries every order of every subset of indeterminate ops with all completed ones."""
    done = [o for o in ops if o.type != INFO]
    unknown = [o for o in ops if o.type == INFO]
    for k in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, k):
            pool = done + list(chosen)
            for order in itertools.permutations(pool):
                if not _respects_real_time(order):
                    continue
                state = initial
                for o in order:
                    state = RegisterModel.step(state, o)
                    if state is NotImplemented:
                        break
                else:
                    return True
    return False


def _respects_real_time(order):
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if b.end is not None and b.end < a.start:
                return False
    return True


def random_history(rng, n, span=1000, corrupt=True, info_rate=0.2):
    """A history made by running a true register with random linearization points inside
    random intervals, then (sometimes) corrupting one answer."""
    state = ("init", 0)
    ops = []
    points = sorted(rng.sample(range(1, span), n))
    for i, p in enumerate(points):
        start = p - rng.randint(0, 60)
        end = p + rng.randint(0, 60)
        kind = rng.choice(["write", "cas", "sync-read", "cas"])
        info = rng.random() < info_rate and kind != "sync-read"
        if kind == "write":
            value = f"v{i}"
            new = (value, state[1] + 1)
            o = op("write", value, start, end, result=stat(*new))
        elif kind == "cas":
            expected = state[1] if rng.random() < 0.7 else state[1] + rng.choice([-1, 1])
            value = f"v{i}"
            if expected == state[1]:
                new = (value, expected + 1)
                o = op("cas", (expected, value), start, end, result=stat(*new))
            else:
                new = state
                o = op("cas", (expected, value), start, end, kind=FAIL, result="BadVersion")
        else:
            new = state
            o = op("sync-read", None, start, end, result=stat(*state))
        if info:
            if rng.random() < 0.5:
                new = state  # it did not take effect
            o.type, o.end, o.result = INFO, None, "ConnectionLoss"
        state = new
        ops.append(o)
    if corrupt and rng.random() < 0.5:
        victim = rng.choice([o for o in ops if o.type == OK] or ops)
        if victim.type == OK:
            victim.result = dict(victim.result, version=victim.result["version"] + rng.choice([-1, 1]))
    return ops


@pytest.mark.parametrize("seed", range(600))
def test_search_agrees_with_brute_force(seed):
    rng = random.Random(seed)
    ops = random_history(rng, rng.randint(1, 7), info_rate=0.2 if seed < 300 else 0.5)
    expected = brute_force(ops, ("init", 0))
    got = linearizability.check_key("r", ops, ("init", 0))
    assert got.ok == expected, "\n".join(linearizability.describe(o) for o in ops)


def test_search_handles_a_long_concurrent_history_quickly():
    rng = random.Random(7)
    ops = random_history(rng, 2000, span=100_000, corrupt=False)
    result = linearizability.check_key("r", ops, ("init", 0), max_states=500_000)
    assert result.ok, result.explain()


# ---- per-session sequential consistency ----------------------------------------------------

def s_op(f, start, result=None, kind=OK, zxid=None, key="r", value=None, session=1):
    return op(f, value, start, start + 1, kind=kind, result=result, key=key,
              session=session, zxid=zxid)


def test_session_that_sees_versions_in_order_passes():
    h = [
        s_op("read", 0, stat("a", 1, 1, 5), zxid=6),
        s_op("write", 2, stat("b", 2, 1, 7), zxid=7, value="b"),
        s_op("read", 4, stat("b", 2, 1, 7), zxid=9),
    ]
    assert sessions.check(h) == []


def test_session_that_sees_an_older_version_is_caught():
    h = [
        s_op("read", 0, stat("b", 2, 1, 7), zxid=7),
        s_op("read", 2, stat("a", 1, 1, 5), zxid=8),
    ]
    v = sessions.check(h)
    assert [x.rule for x in v] == ["read shows an older version than the session saw before"]


def test_session_that_misses_its_own_write_is_caught():
    h = [
        s_op("write", 0, stat("b", 2, 1, 7), zxid=7, value="b"),
        s_op("read", 2, stat("a", 1, 1, 5), zxid=7),
    ]
    v = sessions.check(h)
    assert [x.rule for x in v] == ["read does not show the session's own acknowledged write"]


def test_other_sessions_may_lag():
    h = [
        s_op("write", 0, stat("b", 2, 1, 7), zxid=7, value="b", session=1),
        s_op("read", 2, stat("a", 1, 1, 5), zxid=6, session=2),
    ]
    assert sessions.check(h) == []


def test_session_that_sees_a_deleted_node_again_is_caught():
    h = [
        s_op("delete", 0, None, zxid=9, value=-1),
        s_op("read", 2, stat("a", 1, 3, 5), zxid=9),
    ]
    v = sessions.check(h)
    assert [x.rule for x in v] == [
        "read shows a node the session had already seen deleted or absent"]


def test_reply_zxid_going_backwards_is_caught():
    h = [
        s_op("read", 0, stat("a", 1, 1, 5), zxid=9),
        s_op("read", 2, stat("a", 1, 1, 5), zxid=8),
    ]
    v = sessions.check(h)
    assert [x.rule for x in v] == ["reply zxid went backwards in one session"]


def test_indeterminate_ops_tell_nothing():
    h = [
        s_op("write", 0, None, kind=INFO, value="b"),
        s_op("read", 2, stat("a", 1, 1, 5), zxid=5),
    ]
    assert sessions.check(h) == []


# ---- final state: acknowledged creates and values -------------------------------------------

def test_sequential_creates_in_real_time_order_get_increasing_names():
    h = [
        op("seq-create", "d1", 0, 1, result="/q/n-0000000001", key="/q"),
        op("seq-create", "d2", 2, 3, result="/q/n-0000000000", key="/q"),
    ]
    problems = final_state.check_sequential(h)
    assert any("not after" in p for p in problems)


def test_sequential_names_must_be_unique():
    h = [
        op("seq-create", "d1", 0, 5, result="/q/n-0000000001", key="/q"),
        op("seq-create", "d2", 1, 6, result="/q/n-0000000001", key="/q"),
    ]
    assert any("twice" in p for p in final_state.check_sequential(h))


def test_missing_acknowledged_create_and_phantom_node_are_caught():
    h = [
        op("seq-create", "d1", 0, 1, result="/q/n-0000000001", key="/q"),
        op("seq-create", "d2", 2, None, kind=INFO, result="ConnectionLoss", key="/q"),
        op("seq-create", "d3", 4, 5, result="/q/n-0000000003", key="/q"),
        op("seq-delete", "/q/n-0000000003", 6, 7, key="/q"),
    ]
    # member 1 lost n-1; member 2 has a node nobody tried to create; n-3 was deleted.
    seen = {
        1: {"/q": {"n-0000000002": "d2"}},
        2: {"/q": {"n-0000000001": "d1", "n-0000000002": "d2", "n-0000000007": "zz"}},
    }
    problems = final_state.check_sequential_present(h, seen)
    assert any("member 1" in p and "n-0000000001" in p for p in problems)
    assert any("member 2" in p and "n-0000000007" in p for p in problems)
    assert len(problems) == 2
