"""`keepr bench` drives every system it claims to: keepr and Apache ZooKeeper over the
ZooKeeper protocol, and etcd over its v3 gRPC API (the comparisons in docs/benchmarks.md rest
on it). Each run is short; what is checked is that it completes, counts operations, reports no
errors, and that its writes really landed on the server."""

import base64
import json
import os
import subprocess
import sys
import urllib.request
import uuid

import pytest
from kazoo.client import KazooClient

from conftest import keepr_binary
from harness.clients import WAIT_S, stop_client

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import ensembles  # noqa: E402


def bench(protocol, hosts, workload, root):
    out = subprocess.run(
        [keepr_binary(), "bench", "--protocol", protocol, "--hosts", hosts,
         "--workload", workload, "--sessions", "4", "--depth", "4", "--keys", "2",
         "--duration", "1", "--value-size", "128", "--root", root, "--json"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("workload", ["set", "mixed", "create-delete"])
def test_bench_over_the_zookeeper_protocol_completes_without_errors(target, workload):
    root = f"/bench-{uuid.uuid4().hex[:8]}"
    result = bench("zookeeper", target.hosts, workload, root)
    assert result["ops"] > 0 and result["errors"] == 0, result
    client = KazooClient(hosts=target.hosts)
    client.start(timeout=WAIT_S)
    try:
        data, _ = client.get(f"{root}/s0/k0")
        assert len(data) == 128
        # create-delete leaves no node behind: every create was deleted.
        assert sorted(client.get_children(f"{root}/s0")) == ["k0", "k1"]
    finally:
        stop_client(client)


@pytest.fixture(scope="module")
def etcd():
    if not os.access(ensembles.ETCD, os.X_OK):
        pytest.skip("etcd is not installed (Debian package etcd-server)")
    cluster = ensembles.start_etcd(3)
    yield cluster
    cluster.stop()


def etcd_range(port, key, prefix=False):
    """etcd's own JSON gateway, not our client: keys at `key` (or under it, as a prefix)."""
    query = {"key": base64.b64encode(key.encode()).decode()}
    if prefix:
        end = key[:-1] + chr(ord(key[-1]) + 1)
        query["range_end"] = base64.b64encode(end.encode()).decode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v3/kv/range",
                                 data=json.dumps(query).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("workload", ["set", "mixed", "create-delete"])
def test_bench_over_etcds_api_completes_without_errors(etcd, workload):
    root = f"/bench-{uuid.uuid4().hex[:8]}"
    result = bench("etcd", etcd.hosts, workload, root)
    assert result["ops"] > 0 and result["errors"] == 0, result
    answer = etcd_range(etcd.client_ports[0], f"{root}/s0/k0")
    assert int(answer.get("count", 0)) == 1, answer
    assert len(base64.b64decode(answer["kvs"][0]["value"])) == 128
    # create-delete leaves no key behind: every leased key it put was deleted.
    leftovers = etcd_range(etcd.client_ports[0], f"{root}/s0/e-", prefix=True)
    assert int(leftovers.get("count", 0)) == 0, leftovers
