#!/usr/bin/python3
"""Side-by-side throughput and latency: a 3-member Apache ZooKeeper 3.8 ensemble and a
3-member keepr ensemble on this machine, in one run, both driven by `keepr bench` with the
same settings. Prints a markdown table with the ratios.

usage: bench/compare.py [--keepr target/release/keepr] [--sessions 32] [--depth 16]
                        [--duration 10] [--workloads set,get,mixed,create-delete]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ensembles  # noqa: E402


def bench(binary, hosts, workload, args):
    cmd = [binary, "bench", "--hosts", hosts, "--workload", workload,
           "--sessions", str(args.sessions), "--depth", str(args.depth),
           "--duration", str(args.duration), "--value-size", "128", "--json",
           "--root", f"/keepr-bench-{workload}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 120)
    if out.returncode != 0:
        raise RuntimeError(f"keepr bench failed on {hosts} ({workload}): {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--keepr", default="target/release/keepr")
    p.add_argument("--sessions", type=int, default=32)
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--workloads", default="set,get,mixed,create-delete")
    args = p.parse_args()
    workloads = args.workloads.split(",")
    results = {}
    for name, start in (("zookeeper", lambda: ensembles.start_zookeeper(3)),
                        ("keepr", lambda: ensembles.start_keepr(args.keepr, 3))):
        ens = start()
        try:
            for w in workloads:
                r = bench(args.keepr, ens.hosts, w, args)
                results[(name, w)] = r
                print(f"{name:9} {w:13} {r['ops_per_sec']:>10.0f} ops/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  errors {r['errors']}", file=sys.stderr)
        finally:
            ens.stop()
    print(f"| workload | ZooKeeper ops/s | keepr ops/s | ratio | ZooKeeper p50 / p99 ms | keepr p50 / p99 ms |")
    print("|---|---:|---:|---:|---|---|")
    for w in workloads:
        z, k = results[("zookeeper", w)], results[("keepr", w)]
        ratio = k["ops_per_sec"] / z["ops_per_sec"] if z["ops_per_sec"] else float("inf")
        print(f"| {w} | {z['ops_per_sec']:.0f} | {k['ops_per_sec']:.0f} | {ratio:.2f}x | "
              f"{z['p50_ms']:.2f} / {z['p99_ms']:.2f} | {k['p50_ms']:.2f} / {k['p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
