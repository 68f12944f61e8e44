#!/usr/bin/env bash
# Benchmarks: `cairn bench` in its common shapes, plus the criterion benches and a machine
# summary. Usage: scripts/bench.sh MODE [ARGS...]; ARGS go to `cairn bench` (or, for
# `criterion`, to the benches) unless the mode says otherwise.
#
# Modes:
#   quick             short run; JSON to target/bench/quick.json
#   all               full run: JSON to target/bench/latest.json, the side-by-side table and
#                     charts to docs/bench (report.md and the SVGs)
#   validate          run and exit 3 if any row misses its target (e.g. `validate --quick`)
#   latency           only the latency rows
#   throughput        only the throughput rows
#   stress            concurrent access, group commit (Cairn and its peers) and the peers'
#                     mixed 80/20 workload, 10 s a row
#   baseline NAME     run (full; QUICK=1 for --quick) and save target/bench/baselines/NAME.json
#   compare NAME      run (full; QUICK=1 for --quick) and compare with baseline NAME
#   report            redo docs/bench from target/bench/latest.json without measuring
#   info              the machine, toolchain and peer versions (nothing is built or run)
#   ci                the CI job: every workload briefly (--quick, 0.05 s a row), then the
#                     performance gate (same-run ratios with generous bounds); exits 1 when a
#                     workload fails, 4 when a gate fails
#   criterion [FILTER] the criterion benches of cairn-bench (cargo bench), FILTER passed on
#
# Every mode that runs `cairn` builds it first (cargo build --release -p cairn-cli) and runs
# the release binary. Modes that may measure Redis pass --start-redis (a throwaway server)
# when redis-server is on PATH. Exit codes: those of `cairn bench` (1 a workload failed, 3 a
# target missed under validate), 2 for a usage error here.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit 2
}

target_dir="${CARGO_TARGET_DIR:-target}"
cairn="$target_dir/release/cairn"
bench_dir="target/bench"
docs_dir="docs/bench"

build() {
  cargo build --release -p cairn-cli
}

# --start-redis when a redis-server can be started, so the Redis rows are measured.
redis_args=()
if command -v redis-server >/dev/null 2>&1; then
  redis_args=(--start-redis)
fi

# Runs the freshly built `cairn bench` with the given arguments.
bench() {
  build
  mkdir -p "$bench_dir"
  "$cairn" bench "$@"
}

# --quick when QUICK=1.
quick_args=()
if [ "${QUICK:-0}" = "1" ]; then
  quick_args=(--quick)
fi

# A baseline name: letters, digits, `.`, `-` and `_` only (it becomes a file name).
baseline_file() {
  local name="${1:-}"
  if [ -z "$name" ] || ! [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "error: a baseline NAME of letters, digits, '.', '-' or '_' is needed" >&2
    exit 2
  fi
  echo "$bench_dir/baselines/$name.json"
}

# The version of package $1 in Cargo.lock, or "not in Cargo.lock".
locked_version() {
  awk -v name="$1" '
    $0 == "name = \"" name "\"" { found = 1; next }
    found && /^version = / { gsub(/"/, "", $3); print $3; printed = 1; exit }
    END { if (!printed) print "not in Cargo.lock" }
  ' Cargo.lock
}

info() {
  local tmp="${TMPDIR:-/tmp}"
  echo "machine"
  echo "  CPUs:        $(nproc)"
  echo "  CPU model:   $(lscpu 2>/dev/null | awk -F: '/^Model name/ { sub(/^[ \t]+/, "", $2); print $2; exit }')"
  echo "  memory:      $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)"
  echo "  kernel:      $(uname -sr)"
  echo "  temp dir:    $tmp on $(stat -f -c %T "$tmp" 2>/dev/null || echo unknown)"
  echo "toolchain"
  echo "  $(rustc --version)"
  echo "  $(cargo --version)"
  echo "peers (Cargo.lock)"
  local package
  for package in redb fjall rusqlite libsqlite3-sys redis; do
    printf '  %-15s %s\n' "$package" "$(locked_version "$package")"
  done
  if command -v redis-server >/dev/null 2>&1; then
    echo "  redis-server   $(redis-server --version | awk '{ sub(/^v=/, "", $3); print $3 }')"
  else
    echo "  redis-server   not installed (Redis rows are skipped; apt-get install redis-server)"
  fi
}

mode="${1:-}"
if [ $# -gt 0 ]; then
  shift
fi

case "$mode" in
  quick)
    bench --quick --json "$bench_dir/quick.json" "${redis_args[@]}" "$@"
    ;;
  all)
    bench --json "$bench_dir/latest.json" --plot "$docs_dir" --markdown "$docs_dir/report.md" \
      "${redis_args[@]}" "$@"
    ;;
  validate)
    bench --validate "${redis_args[@]}" "$@"
    ;;
  latency | throughput)
    bench --kind "$mode" "${redis_args[@]}" "$@"
    ;;
  stress)
    bench --filter concurrent_access --seconds 10 --json "$bench_dir/stress-concurrent.json" "$@"
    bench --filter group_commit --seconds 10 --json "$bench_dir/stress-group-commit.json" \
      "${redis_args[@]}" "$@"
    bench --filter peers/mixed --seconds 10 --json "$bench_dir/stress-peers-mixed.json" \
      "${redis_args[@]}" "$@"
    ;;
  baseline)
    file="$(baseline_file "${1:-}")"
    shift
    mkdir -p "$(dirname "$file")"
    bench "${quick_args[@]}" --json "$file" "${redis_args[@]}" "$@"
    echo "baseline saved: $file"
    ;;
  compare)
    file="$(baseline_file "${1:-}")"
    name="$1"
    shift
    if [ ! -f "$file" ]; then
      echo "error: no baseline $file; save one with: scripts/bench.sh baseline $name" >&2
      exit 1
    fi
    bench "${quick_args[@]}" --compare "$file" "${redis_args[@]}" "$@"
    ;;
  report)
    if [ ! -f "$bench_dir/latest.json" ]; then
      echo "error: no $bench_dir/latest.json; run: scripts/bench.sh all" >&2
      exit 1
    fi
    bench --from-json "$bench_dir/latest.json" --plot "$docs_dir" \
      --markdown "$docs_dir/report.md" "$@"
    ;;
  info)
    info
    ;;
  ci)
    bench --quick --seconds 0.05 --gate --json "$bench_dir/ci.json" "${redis_args[@]}" "$@"
    ;;
  criterion)
    cargo bench -p cairn-bench -- "$@"
    ;;
  *)
    if [ -n "$mode" ]; then
      echo "error: unknown mode: $mode" >&2
    fi
    usage
    ;;
esac
