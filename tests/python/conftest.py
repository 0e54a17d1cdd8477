"""Fixtures shared by the real-client suites.

Servers are started once per run and shared: every test works under its own fresh base path, so
tests do not see each other's nodes. `target` is the server under test; each test that takes it
runs once per selected target. `KEEPR_TEST_TARGETS` (comma separated, default
"zookeeper,keepr,keepr3") selects them: a standalone ZooKeeper, a single keepr member, a
3-member keepr ensemble, and on request a 3-member ZooKeeper ensemble ("zookeeper3", which shows
that a test asks of an ensemble only what ZooKeeper guarantees). keepr needs `KEEPR_BIN`, the
path of the `keepr` binary, and its tests are skipped with the reason when it is not there.

On an ensemble a test's clients are spread over the members (see `Placement`). Tests that kill
members take `fresh_ensemble` instead: an ensemble of their own, one per selected ensemble
target, stopped after the test.

`reference_zookeeper` is a second, independent ZooKeeper: the differential and zkCli suites run
the same operations on it and on the target and compare. With target=zookeeper that compares
ZooKeeper with ZooKeeper, which proves the comparison itself is sound.
"""

from __future__ import annotations

import os
import re
import uuid
import zlib

import pytest

from harness import clients as zk_clients
from harness import ensemble, failover, servers
from harness.proxy import TcpProxy

# Target name -> the session fixture that starts it.
TARGET_FIXTURES = {
    "zookeeper": "zookeeper",
    "keepr": "keepr",
    "keepr3": "keepr_ensemble",
    "zookeeper3": "zookeeper_ensemble",
}
KNOWN_TARGETS = tuple(TARGET_FIXTURES)
DEFAULT_TARGETS = ("zookeeper", "keepr", "keepr3")
ENSEMBLE_TARGETS = ("keepr3", "zookeeper3")


def selected_targets() -> list[str]:
    names = [
        n.strip()
        for n in os.environ.get("KEEPR_TEST_TARGETS", ",".join(DEFAULT_TARGETS)).split(",")
        if n.strip()
    ]
    unknown = [n for n in names if n not in KNOWN_TARGETS]
    if unknown:
        raise pytest.UsageError(
            f"KEEPR_TEST_TARGETS names unknown targets {unknown}; known: {KNOWN_TARGETS}"
        )
    return names


def pytest_report_header(config):
    binary = os.environ.get("KEEPR_BIN")
    keepr = f"KEEPR_BIN={binary}" if binary else "KEEPR_BIN not set: keepr tests will be skipped"
    return f"targets: {', '.join(selected_targets())} ({keepr})"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "xfail_on(target, reason): a known server bug, pinned by this test, makes it fail on "
        "that target; expected to fail there (strictly: a fix makes it pass and the mark must go)",
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        ran_on = {params.get("target"), params.get("fresh_ensemble")}
        for mark in item.iter_markers("xfail_on"):
            if mark.args[0] in ran_on:
                item.add_marker(pytest.mark.xfail(strict=True, reason=mark.kwargs["reason"]))


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        names = selected_targets()
        metafunc.parametrize("target", names, ids=names, indirect=True, scope="session")
    if "fresh_ensemble" in metafunc.fixturenames:
        names = [n for n in selected_targets() if n in ENSEMBLE_TARGETS]
        metafunc.parametrize("fresh_ensemble", names, ids=names, indirect=True)


def _started(start):
    server = start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def zookeeper():
    yield from _started(servers.start_zookeeper)


@pytest.fixture(scope="session")
def reference_zookeeper():
    yield from _started(servers.start_zookeeper)


def keepr_binary() -> str:
    """KEEPR_BIN, or skip the test that needs it."""
    binary = os.environ.get("KEEPR_BIN")
    if not binary:
        pytest.skip("KEEPR_BIN is not set (point it at a built `keepr` binary to test keepr)")
    if not os.access(binary, os.X_OK):
        pytest.skip(f"KEEPR_BIN={binary} is not an executable file")
    return binary


@pytest.fixture(scope="session")
def keepr():
    binary = keepr_binary()
    yield from _started(lambda: servers.start_keepr(binary))


@pytest.fixture(scope="session")
def keepr_ensemble():
    binary = keepr_binary()
    yield from _started(lambda: ensemble.start_keepr(binary))


@pytest.fixture(scope="session")
def zookeeper_ensemble():
    yield from _started(ensemble.start_zookeeper)


def start_ensemble(kind: str):
    if kind == "keepr3":
        return ensemble.start_keepr(keepr_binary())
    return ensemble.start_zookeeper()


@pytest.fixture
def fresh_ensemble(request):
    """A 3-member ensemble for this test alone (it may kill and restart members)."""
    yield from _started(lambda: start_ensemble(request.param))


@pytest.fixture
def crew(fresh_ensemble):
    """Two clients on each member of a fresh ensemble, failing over to the others, each with an
    ephemeral presence node under `crew.base` (see harness/failover.py); stopped after the
    test."""
    team = failover.Crew(fresh_ensemble, f"/crew-{uuid.uuid4().hex[:8]}")
    yield team
    team.close()


@pytest.fixture(scope="session")
def target(request):
    return request.getfixturevalue(TARGET_FIXTURES[request.param])


@pytest.fixture
def placement(request, target):
    """Where this test's clients connect; the first client's member depends on the test."""
    start = zlib.crc32(request.node.nodeid.encode()) % len(target.endpoints)
    return zk_clients.Placement(target.endpoints, start)


@pytest.fixture
def clients(placement):
    pool = zk_clients.ClientPool(placement)
    yield pool
    pool.close_all()


@pytest.fixture
def client(clients):
    return clients.new()


@pytest.fixture
def base(request, client):
    """A fresh, empty, open-ACL node for this test to work under."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:60]
    path = f"/{name}-{uuid.uuid4().hex[:8]}"
    client.create(path)
    return path


@pytest.fixture
def proxied(placement):
    """Factory for a kazoo client that reaches one server (the next member, on an ensemble)
    through its own TcpProxy, so the test can cut it off: `client, proxy = proxied(timeout=...)`.
    At teardown the proxy is restored and the client stopped first, so its session ends
    cleanly."""
    made = []

    def make(timeout=10.0, **kwargs):
        proxy = TcpProxy(*placement.member())
        try:
            client = zk_clients.make_client(proxy.hosts, timeout=timeout, **kwargs)
        except Exception:
            proxy.close()
            raise
        made.append((client, proxy))
        return client, proxy

    yield make
    for client, proxy in made:
        proxy.restore()
        try:
            zk_clients.stop_client(client)
        except Exception:  # noqa: BLE001 - teardown must reach every proxy
            pass
        proxy.close()
