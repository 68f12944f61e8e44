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

step "cargo fmt --check"
cargo fmt --all -- --check

# The crash matrix's broken-build test needs the test-only `sabotage` feature; lint both
# builds, since each compiles code the other does not.
step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --features cairn/sabotage -- -D warnings

step "cargo test"
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
cargo test --workspace --lib --bins --tests --examples --locked --features cairn/sabotage 2>&1 | tee "$test_log"
cargo test --workspace --doc --locked 2>&1 | tee -a "$test_log"

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "all checks passed"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$test_log"
