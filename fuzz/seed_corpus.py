#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from keepr-wire's golden fixtures.

Each input is named by its SHA-1, as libFuzzer names what it adds, so running this again
adds nothing twice. Usage (from the repository root, any python3):

    python3 fuzz/seed_corpus.py            # writes fuzz/corpus/<target>/
"""

import glob
import hashlib
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "keepr-wire", "tests", "golden", "*.frames")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def frames(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            conn, direction, context, payload = line.split()
            yield conn, direction, context, bytes.fromhex(payload)


def write(target, data, counts):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    name = os.path.join(directory, hashlib.sha1(data).hexdigest())
    if not os.path.exists(name):
        with open(name, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1


def main():
    counts = {}
    for path in sorted(glob.glob(FIXTURES)):
        streams = {}
        for conn, direction, context, payload in frames(path):
            framed = struct.pack(">i", len(payload)) + payload
            streams.setdefault((conn, direction), bytearray()).extend(framed)
            if context == "connect":
                write("connect", (b"\x00" if direction == "c>s" else b"\x01") + payload, counts)
            elif direction == "c>s":
                write("request", payload, counts)
            else:
                op = int(context.split(":")[0])
                write("response", struct.pack(">i", op) + payload, counts)
        for stream in streams.values():
            # Default maximum frame size (255), and reads of 7 bytes.
            write("frame", b"\xff\x07" + bytes(stream), counts)
    for target in sorted(counts):
        print("%s: %d new inputs in %s" % (target, counts[target], os.path.join(CORPUS, target)))


if __name__ == "__main__":
    main()
