"""The comparison machinery must be able to fail: a perturbed target, a wrong event transcript
or a changed zkCli line has to be reported, while what legitimately differs between two
servers (zxids, times, session ids, child order) must not be."""

import pytest
from kazoo.security import make_digest_acl_credential

from harness import differential, servers, zkcli
from harness.diff_ops import Op


def test_super_digest_matches_kazoos_digest():
    assert servers.digest("super", "secret") == make_digest_acl_credential("super", "secret")


# --- differential ------------------------------------------------------------------------


def run_against_itself(zookeeper, reference_zookeeper, seed, n_ops, perturb):
    return differential.run(
        reference_zookeeper.endpoints,
        zookeeper.endpoints,
        seed,
        n_ops,
        f"/harness-{seed}-{id(perturb):x}",
        perturb=perturb,
    )


def test_differential_reports_a_target_that_writes_other_data(zookeeper, reference_zookeeper):
    def other_data(op):
        if op.kind == "set":
            args = tuple((k, v + b"!" if k == "data" else v) for k, v in op.args)
            return Op(op.kind, op.slot, args)
        return op

    with pytest.raises(differential.DifferentialMismatch) as failure:
        run_against_itself(zookeeper, reference_zookeeper, 1, 100, other_data)
    message = str(failure.value)
    assert "seed 1" in message and "KEEPR_DIFF_SEEDS=1" in message
    assert "dataLength" in message


def test_differential_reports_a_target_that_forgets_watches(zookeeper, reference_zookeeper):
    def no_watches(op):
        if op.arg("watch"):
            args = tuple((k, False if k == "watch" else v) for k, v in op.args)
            return Op(op.kind, op.slot, args)
        return op

    with pytest.raises(differential.DifferentialMismatch) as failure:
        run_against_itself(zookeeper, reference_zookeeper, 3, 200, no_watches)
    assert "events of session" in str(failure.value)


def step(reference_events, target_events, reference="ok", target="ok"):
    return differential.Step(1, Op("get", 0), reference, target, reference_events, target_events)


def test_compare_step_reports_wrong_results_and_events():
    created = [("NodeCreated", "/a")]
    assert differential.compare_step(step({"s0.1": created}, {"s0.1": created})) == []
    assert differential.compare_step(step({"s0.1": created}, {"s0.1": []}))
    assert differential.compare_step(step({"s0.1": created}, {"s1.1": created}))
    assert differential.compare_step(step({}, {}, reference=("error", "NoNodeError")))


# --- zkCli transcripts ---------------------------------------------------------------------


def test_normalise_masks_what_differs_between_servers():
    assert zkcli.normalise_line("cZxid = 0x1a2") == "cZxid = <zxid>"
    assert zkcli.normalise_line("mtime = Thu Nov 26 04:20:15 UTC 2026") == "mtime = <time>"
    assert (
        zkcli.normalise_line("ephemeralOwner = 0x1000a2b3c4d0000") == "ephemeralOwner = <session>"
    )
    assert zkcli.normalise_line("ephemeralOwner = 0x0") == "ephemeralOwner = 0x0"
    assert zkcli.normalise_line("[b, c, a]") == "[a, b, c]"
    assert zkcli.normalise_line("dataVersion = 3") == "dataVersion = 3"


def transcript_text(base, body_lines, events):
    lines = ["Connecting to 127.0.0.1:1", "SLF4J: noise", f"Node does not exist: {base}-step-0"]
    for step, body in enumerate(body_lines, start=1):
        lines += body
        lines.append(f"Node does not exist: {base}-step-{step}")
    for event in events:
        lines += ["", "WATCHER::", "", event]
    return "\n".join(lines)


def test_zkcli_differences_catch_a_changed_line_and_a_missing_event():
    base = "/b"
    commands = ["stat /b/x", "ls /b"]
    event = "WatchedEvent state:SyncConnected type:NodeCreated path:/b/x"
    reference = zkcli.parse(
        transcript_text(base, [["cZxid = 0x5", "dataVersion = 1"], ["[x, y]"]], [event]),
        base,
        commands,
        set(),
        0,
    )
    same = zkcli.parse(
        transcript_text(base, [["cZxid = 0x9", "dataVersion = 1"], ["[y, x]"]], [event]),
        base,
        commands,
        set(),
        0,
    )
    assert zkcli.differences(reference, same) == []
    changed = zkcli.parse(
        transcript_text(base, [["cZxid = 0x5", "dataVersion = 2"], ["[x, y]"]], []),
        base,
        commands,
        set(),
        0,
    )
    found = zkcli.differences(reference, changed)
    assert len(found) == 2
    assert found[0].startswith("`stat /b/x`") and found[1].startswith("watch events")


def test_zkcli_parse_rejects_a_truncated_transcript():
    with pytest.raises(AssertionError):
        zkcli.parse(transcript_text("/b", [["x"]], []), "/b", ["get /b", "ls /b"], set(), 0)
