#!/usr/bin/python3
"""Side-by-side throughput and latency: 3-member ensembles of Apache ZooKeeper 3.8, etcd
(Debian's `etcd-server`, over its v3 gRPC API) and keepr on this machine, in one run, all
driven by `keepr bench` with the same settings. Prints a markdown table with keepr's ratios
to each.

usage: bench/compare.py [--keepr target/release/keepr] [--sessions 32] [--depth 16]
                        [--duration 10] [--workloads set,get,mixed,create-delete]
                        [--systems zookeeper,etcd,keepr]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ensembles  # noqa: E402


def bench(binary, protocol, hosts, workload, args):
    cmd = [binary, "bench", "--protocol", protocol, "--hosts", hosts, "--workload", workload,
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
    p.add_argument("--systems", default="zookeeper,etcd,keepr")
    args = p.parse_args()
    workloads = args.workloads.split(",")
    systems = args.systems.split(",")
    starters = {
        "zookeeper": ("zookeeper", lambda: ensembles.start_zookeeper(3)),
        "etcd": ("etcd", lambda: ensembles.start_etcd(3)),
        "keepr": ("zookeeper", lambda: ensembles.start_keepr(args.keepr, 3)),
    }
    results = {}
    for name in systems:
        protocol, start = starters[name]
        ens = start()
        try:
            for w in workloads:
                r = bench(args.keepr, protocol, ens.hosts, w, args)
                results[(name, w)] = r
                print(f"{name:9} {w:13} {r['ops_per_sec']:>10.0f} ops/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  errors {r['errors']}", file=sys.stderr)
        finally:
            ens.stop()
    others = [n for n in systems if n != "keepr"]
    head = "| workload | " + " | ".join(f"{n} ops/s" for n in systems)
    head += "".join(f" | keepr / {n}" for n in others if "keepr" in systems)
    head += " | " + " | ".join(f"{n} p50 / p99 ms" for n in systems) + " |"
    print(head)
    ncols = head.count("|") - 1
    print("|---" + "|---:" * (ncols - 1) + "|")
    for w in workloads:
        row = [f"{results[(n, w)]['ops_per_sec']:.0f}" for n in systems]
        if "keepr" in systems:
            k = results[("keepr", w)]["ops_per_sec"]
            for n in others:
                o = results[(n, w)]["ops_per_sec"]
                row.append(f"{k / o:.2f}x" if o else "inf")
        row += [f"{results[(n, w)]['p50_ms']:.2f} / {results[(n, w)]['p99_ms']:.2f}" for n in systems]
        print(f"| {w} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
