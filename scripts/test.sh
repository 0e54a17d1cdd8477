#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what the tests need
# (idempotently, skipping what is present), then runs format and lint checks and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/keepr/target}"
export CARGO_TERM_COLOR=never
mkdir -p "$CARGO_TARGET_DIR"

# --- system packages -------------------------------------------------------------------------
# zookeeper: the reference server and zkCli for differential and golden-byte tests.
# python3-kazoo: a real Python client (for /usr/bin/python3, Debian's interpreter);
# python3-pytest(-timeout) runs the client suites in tests/python.
# prometheus: a real scraper for the metrics test (crates/keepr/tests/prometheus.rs).
# iproute2, iptables: network namespaces and partitions for the fault suite (tests/faults).
# etcd-server: the etcd that `keepr bench --protocol etcd` is tested and compared against.
apt_packages=(zookeeper python3-kazoo python3-pytest python3-pytest-timeout prometheus
  iproute2 iptables etcd-server)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "cargo not found: install Rust (1.85 or newer) with rustup" >&2; exit 1; }

# --- checks ----------------------------------------------------------------------------------
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== real clients against keepr and ZooKeeper (tests/python)"
# cargo test built the binary for the process-level tests; building it again here would
# only resolve other features and recompile.
test -x "$CARGO_TARGET_DIR/debug/keepr" || cargo build --locked -p keepr
(cd tests/python && KEEPR_BIN="$CARGO_TARGET_DIR/debug/keepr" /usr/bin/python3 -m pytest -q)
echo "== fault injection with linearizability checking (tests/faults)"
# Kills, partitions, damaged disks and membership changes under load; about 6 minutes.
# Prints its base seed; a failure keeps logs and history in /tmp/keepr-faults-artifacts.
(cd tests/faults && KEEPR_BIN="$CARGO_TARGET_DIR/debug/keepr" /usr/bin/python3 -m pytest -q)
echo "== all tests passed"
