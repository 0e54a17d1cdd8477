"""Fixtures shared by the real-client suites.

Servers are started once per run and shared: every test works under its own fresh base path, so
tests do not see each other's nodes. `target` is the server under test; each test that takes it
runs once per selected target. `KEEPR_TEST_TARGETS` (comma separated, default
"zookeeper,keepr") selects them; keepr needs `KEEPR_BIN`, the path of the `keepr` binary, and its
tests are skipped with the reason when it is not there.

`reference_zookeeper` is a second, independent ZooKeeper: the differential and zkCli suites run
the same operations on it and on the target and compare. With target=zookeeper that compares
ZooKeeper with ZooKeeper, which proves the comparison itself is sound.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest

from harness import clients as zk_clients
from harness import servers
from harness.proxy import TcpProxy

KNOWN_TARGETS = ("zookeeper", "keepr")


def selected_targets() -> list[str]:
    names = [
        n.strip()
        for n in os.environ.get("KEEPR_TEST_TARGETS", ",".join(KNOWN_TARGETS)).split(",")
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


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        names = selected_targets()
        metafunc.parametrize("target", names, ids=names, indirect=True, scope="session")


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


@pytest.fixture(scope="session")
def keepr():
    binary = os.environ.get("KEEPR_BIN")
    if not binary:
        pytest.skip("KEEPR_BIN is not set (point it at a built `keepr` binary to test keepr)")
    if not os.access(binary, os.X_OK):
        pytest.skip(f"KEEPR_BIN={binary} is not an executable file")
    yield from _started(lambda: servers.start_keepr(binary))


@pytest.fixture(scope="session")
def target(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def clients(target):
    pool = zk_clients.ClientPool(target.hosts)
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
def proxied(target):
    """Factory for a kazoo client that reaches the target through its own TcpProxy, so the
    test can cut it off: `client, proxy = proxied(timeout=...)`. At teardown the proxy is
    restored and the client stopped first, so its session ends cleanly."""
    made = []

    def make(timeout=10.0, **kwargs):
        proxy = TcpProxy(target.host, target.port)
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
