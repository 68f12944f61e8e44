#!/usr/bin/env bash
# The one gate: formatting, lints with warnings denied, every test, and the docs.
# CI (.ci/run) runs exactly this script; run it before every submission.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "error: cargo ${component} is missing; install it with: rustup component add ${component}" >&2
    exit 1
  fi
done

# A clean run builds about 2.6 GB into target/ (README); say so up front when the disk is
# short, since a full disk otherwise shows up as a compiler error minutes later.
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ -n "$free_kb" ] && [ "$free_kb" -lt 4000000 ]; then
  echo "warning: only $((free_kb / 1024)) MB of disk free here; a clean run of this gate needs about 3 GB" >&2
fi

step "cargo fmt --check"
cargo fmt --all -- --check

# Lint the default build and the build with every feature: the crash matrix's test-only
# `sabotage` switch and the SQLite and Redis backends. Each cairn-kv backend must also build
# on its own, so a user who enables one feature compiles only that backend.
step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --all-features -- -D warnings
for backend in cairn sqlite redis; do
  cargo clippy -p cairn-kv --lib --locked --no-default-features --features "$backend" -- -D warnings
done

# The Redis backend's tests start their own redis-server (and, for the cluster, redis-cli)
# on free loopback ports; a system service, if the package starts one, is not used.
step "redis-server (for the Redis backend's tests)"
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "redis-server is missing; installing the Debian package redis-server"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server || true
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server || true
  fi
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "error: redis-server and redis-cli are needed by the Redis backend's tests and could not" >&2
    echo "be installed (apt-get needs root or sudo); install them with: apt-get install redis-server" >&2
    exit 1
  fi
fi
redis-server --version

step "cargo test"
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
cargo test --workspace --lib --bins --tests --examples --locked --all-features 2>&1 | tee "$test_log"
cargo test --workspace --doc --locked --all-features 2>&1 | tee -a "$test_log"

# Redis's own test suite (its Tcl tests, external-server mode) against `cairn serve`, the
# parts that cover the commands Cairn has; scripts/redis-suite/skip.txt lists the rest and
# why. It fetches Redis's source (checked by SHA-256) and installs tclsh when missing.
step "Redis's test suite against cairn serve (scripts/redis-suite.sh)"
bash scripts/redis-suite.sh

# The main job, briefly, and the CI performance gate: a broken workload or a 2x regression of
# a headline ratio fails the gate (docs/benchmarks.md, "The CI gate").
step "scripts/bench.sh ci (every workload briefly, then the performance gate)"
bash scripts/bench.sh ci

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet --all-features

step "all checks passed"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$test_log"
