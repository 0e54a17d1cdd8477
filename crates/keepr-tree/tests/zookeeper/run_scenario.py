#!/usr/bin/python3
"""Runs scenario.txt against a ZooKeeper server through kazoo and prints one result line
per step, in the format zookeeper_differential.rs produces for keepr-tree.

usage: run_scenario.py HOST:PORT SCENARIO
"""
import base64
import hashlib
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import ZookeeperError
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, CREATOR_ALL_ACL, Permissions


def digest(user_password):
    user = user_password.split(":", 1)[0]
    return user + ":" + base64.b64encode(hashlib.sha1(user_password.encode()).digest()).decode()


ACLS = {
    "open": OPEN_ACL_UNSAFE,
    "read": READ_ACL_UNSAFE,
    "bob": [ACL(Permissions.ALL, Id("digest", digest("bob:pw"))), ACL(Permissions.READ, Id("world", "anyone"))],
    "creator": CREATOR_ALL_ACL,
    "bobonly": [ACL(Permissions.ALL, Id("digest", digest("bob:pw")))],
    "lo": [ACL(Permissions.ALL, Id("ip", "127.0.0.0/8"))],
    "lan": [ACL(Permissions.ALL, Id("ip", "10.0.0.0/8"))],
    "lo6": [ACL(Permissions.ALL, Id("ip", "::1/128"))],
    "empty": [],
}


def data(arg):
    return b"" if arg == "-" else arg.encode()


def main():
    hosts, scenario = sys.argv[1], sys.argv[2]
    clients = {}
    for name in ("c1", "c2"):
        zk = KazooClient(hosts=hosts, timeout=30)
        zk.start(timeout=60)
        clients[name] = zk
    owners = {clients[c].client_id[0]: c for c in clients}

    def stat(s):
        owner = owners.get(s.ephemeralOwner, str(s.ephemeralOwner))
        return (f"v={s.version} cv={s.cversion} av={s.aversion} dl={s.dataLength} "
                f"nc={s.numChildren} eo={owner} cz=Z{s.czxid} mz=Z{s.mzxid} pz=Z{s.pzxid}")

    def acl(acls):
        return "|".join(f"{a.perms}:{a.id.scheme}:{a.id.id}" for a in acls)

    def multi(zk, ops):
        t = zk.transaction()
        for op in ops:
            kind, *args = op.split(":")
            if kind == "check":
                t.check(args[0], int(args[1]))
            elif kind == "create":
                t.create(args[0], b"")
            elif kind == "delete":
                t.delete(args[0], int(args[1]))
            elif kind == "set":
                t.set_data(args[0], data(args[1]), int(args[2]))
        out = []
        for r in t.commit():
            if isinstance(r, ZookeeperError):
                out.append(f"err:{r.code}")
            elif r is True:
                out.append("ok")
            elif isinstance(r, str):
                out.append(f"path:{r}")
            else:
                out.append(f"stat:{stat(r)}")
        return "multi:[" + ";".join(out) + "]"

    def run(zk, op, args):
        if op == "create":
            return "path:" + zk.create(args[0], data(args[1]))
        if op == "create2":
            path, s = zk.create(args[0], data(args[1]), include_data=True)
            return f"path:{path} stat:{stat(s)}"
        if op == "create_seq":
            return "path:" + zk.create(args[0], data(args[1]), sequence=True)
        if op == "create_eph":
            return "path:" + zk.create(args[0], data(args[1]), ephemeral=True)
        if op == "create_eph_seq":
            return "path:" + zk.create(args[0], data(args[1]), ephemeral=True, sequence=True)
        if op == "createacl":
            return "path:" + zk.create(args[0], data(args[1]), acl=ACLS[args[2]])
        if op == "stat":
            s = zk.exists(args[0])
            return "none" if s is None else f"stat:{stat(s)}"
        if op == "get":
            value, s = zk.get(args[0])
            return f"data:{value.decode()} stat:{stat(s)}"
        if op == "children":
            return "children:" + ",".join(sorted(zk.get_children(args[0])))
        if op == "set":
            return f"stat:{stat(zk.set(args[0], data(args[1]), int(args[2])))}"
        if op == "delete":
            zk.delete(args[0], int(args[1]))
            return "ok"
        if op == "acl":
            acls, s = zk.get_acls(args[0])
            return f"acl:{acl(acls)} stat:{stat(s)}"
        if op == "setacl":
            return f"stat:{stat(zk.set_acls(args[0], ACLS[args[1]], int(args[2])))}"
        if op == "auth":
            zk.add_auth("digest", args[0])
            return "ok"
        if op == "close":
            zk.stop()
            zk.close()
            return "ok"
        if op == "multi":
            return multi(zk, args)
        raise SystemExit(f"unknown op {op}")

    with open(scenario) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            client, op, *args = line.split()
            try:
                result = run(clients[client], op, args)
            except ZookeeperError as e:
                result = f"err:{e.code}"
            print(f"{line} => {result}", flush=True)
    clients["c1"].stop()


if __name__ == "__main__":
    main()
