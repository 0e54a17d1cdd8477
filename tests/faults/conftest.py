"""Options and fixtures of the fault-injection suite (see docs/reliability.md).

    --keepr-bin=PATH     the keepr binary (default: $KEEPR_BIN; write it with "=", or pytest
                         takes the path for a test path); scenario tests skip without it
    --seed N             base seed (default: $KEEPR_FAULTS_SEED, else random); every test
                         derives its own from it and prints it
    --soak-minutes N     run the soak (all fault kinds, one long-lived ensemble) for N minutes
    --artifacts DIR      where a failing run's member logs and histories are kept
"""

from __future__ import annotations

import logging
import os
import random
import zlib

import pytest

from faultkit import netns


def pytest_addoption(parser):
    parser.addoption("--keepr-bin", default=os.environ.get("KEEPR_BIN"))
    parser.addoption("--seed", type=int, default=None)
    parser.addoption("--soak-minutes", type=float, default=0.0)
    parser.addoption("--artifacts", default=os.environ.get("KEEPR_FAULTS_ARTIFACTS",
                                                           "/tmp/keepr-faults-artifacts"))


_BASE_SEED = None


def base_seed(config) -> int:
    global _BASE_SEED
    if _BASE_SEED is None:
        s = config.getoption("--seed")
        if s is None and os.environ.get("KEEPR_FAULTS_SEED"):
            s = int(os.environ["KEEPR_FAULTS_SEED"])
        _BASE_SEED = s if s is not None else random.randrange(1 << 30)
    return _BASE_SEED


def pytest_report_header(config):
    why = netns.available()
    return (f"fault-injection base seed: {base_seed(config)} (replay with --seed {base_seed(config)}); "
            f"keepr: {config.getoption('--keepr-bin') or 'not set'}; "
            f"namespaces: {why or 'available'}")


def pytest_configure(config):
    # kazoo logs every dropped connection at WARNING; the faults make hundreds.
    logging.getLogger("kazoo").setLevel(logging.ERROR)


@pytest.fixture
def seed(request):
    s = (base_seed(request.config) + zlib.crc32(request.node.name.encode())) % (1 << 30)
    print(f"\n[faults] {request.node.name}: seed {s} (base seed {base_seed(request.config)})")
    return s


@pytest.fixture
def needs_namespaces():
    why = netns.available()
    if why:
        pytest.skip(why)


@pytest.fixture
def keepr_bin(request, needs_namespaces):
    path = request.config.getoption("--keepr-bin")
    if not path:
        pytest.skip("no keepr binary: pass --keepr-bin or set KEEPR_BIN")
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not executable")
    return path


@pytest.fixture
def artifacts(request):
    return request.config.getoption("--artifacts")


@pytest.fixture
def soak_minutes(request):
    return request.config.getoption("--soak-minutes")


def pytest_collection_modifyitems(config, items):
    # The soak runs for --soak-minutes plus its last epoch: give it that (pytest.ini's
    # per-test timeout is for the CI scenarios).
    minutes = config.getoption("--soak-minutes")
    for item in items:
        if "soak" in item.name and minutes > 0:
            item.add_marker(pytest.mark.timeout(int(minutes * 60) + 1200))
