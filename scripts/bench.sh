#!/usr/bin/env bash
# Benchmarks: `cairn bench` in its common shapes, plus the criterion benches and a machine
# summary. Usage: scripts/bench.sh MODE [ARGS...]; ARGS go to `cairn bench` (or, for
# `criterion`, to the benches) unless the mode says otherwise.
#
# Modes:
#   quick             short run; JSON to target/bench/quick.json
#   all               scripts/test.sh first (exits 1 before measuring if it fails; SKIP_TESTS=1
#                     skips it, for iterating on the report only), then the full run: JSON to
#                     target/bench/latest.json, the side-by-side table and charts to docs/bench
#                     (report.md and the SVGs)
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
#   profile WORKLOAD  a CPU profile of `cairn bench --quick --filter WORKLOAD` (e.g.
#                     peers/point_read) with perf, as a flame graph (inferno) in
#                     target/bench/profile/NAME.svg (NAME: WORKLOAD with `/` and the like as
#                     `_`), beside NAME.perf.data and the folded stacks NAME.folded; prints the
#                     top 15 functions by self time. Installs perf (apt-get install linux-perf,
#                     as root) and inferno (cargo install --locked inferno) when missing.
#                     PROFILE_FREQ sets the sampling rate (default 999 Hz)
#
# Every mode that runs `cairn` builds it first (cargo build --release -p cairn-cli) and runs
# the release binary. Modes that may measure Redis pass --start-redis (a throwaway server)
# when redis-server is on PATH. Exit codes: those of `cairn bench` (1 a workload failed, 3 a
# target missed under validate), 2 for a usage error here, 1 when `all` finds the tests
# failing or `profile` cannot get or run its tools.
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

# Installs the Debian package $1 (for the command $2) with apt-get, as root or through sudo,
# as scripts/test.sh does for redis-server; exits 1 with $3 as the reason when that fails.
apt_install() {
  local package="$1" command="$2" why="$3"
  echo "$command is missing; installing the Debian package $package"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$package" || true
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update || true
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "$package" || true
  fi
  if ! command -v "$command" >/dev/null 2>&1; then
    echo "error: $command is needed $why and could not be installed (apt-get needs root or" >&2
    echo "sudo); install it with: apt-get install $package" >&2
    exit 1
  fi
}

# perf (Debian's linux-perf) and inferno's inferno-collapse-perf and inferno-flamegraph,
# installed when missing; inferno goes to cargo's default bin directory.
profile_tools() {
  if ! command -v perf >/dev/null 2>&1 || ! perf --version >/dev/null 2>&1; then
    apt_install linux-perf perf "to record a profile"
  fi
  local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  case ":$PATH:" in
    *":$cargo_bin:"*) ;;
    *) PATH="$cargo_bin:$PATH" ;;
  esac
  if ! command -v inferno-collapse-perf >/dev/null 2>&1 \
    || ! command -v inferno-flamegraph >/dev/null 2>&1; then
    echo "inferno is missing; installing it: cargo install --locked inferno"
    if ! cargo install --locked inferno; then
      echo "error: inferno (inferno-collapse-perf, inferno-flamegraph) could not be installed;" >&2
      echo "install it with: cargo install --locked inferno" >&2
      exit 1
    fi
  fi
}

# Checks that perf may record here; when it may not (perf_event_paranoid too high, e.g. in a
# container) and this runs as root, lowers perf_event_paranoid to -1 and tries again.
perf_check() {
  local probe="$1" paranoid=/proc/sys/kernel/perf_event_paranoid
  if perf record -q -o "$probe" -- true >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" -eq 0 ] && [ -w "$paranoid" ]; then
    echo "perf cannot record with perf_event_paranoid $(cat "$paranoid"); setting it to -1"
    echo -1 >"$paranoid" || true
    if perf record -q -o "$probe" -- true >/dev/null 2>&1; then
      return
    fi
  fi
  local level
  level="$(cat "$paranoid" 2>/dev/null || echo unknown)"
  echo "error: perf cannot record here (kernel.perf_event_paranoid is $level). As root, run:" >&2
  echo "sysctl kernel.perf_event_paranoid=-1; a container also needs the perf_event_open system" >&2
  echo "call (e.g. docker run --cap-add PERFMON, or --privileged). perf's own message:" >&2
  perf record -q -o "$probe" -- true >&2 || true
  exit 1
}

# Profiles `cairn bench --quick --filter $1` (further arguments passed on) and writes the flame
# graph, then prints the functions with the most self time.
profile() {
  local workload="$1"
  shift
  local name="${workload//[^A-Za-z0-9._-]/_}"
  local dir="$bench_dir/profile"
  local data="$dir/$name.perf.data" folded="$dir/$name.folded" svg="$dir/$name.svg"
  profile_tools
  build
  mkdir -p "$dir"
  perf_check "$dir/.probe.perf.data"
  rm -f "$dir/.probe.perf.data"
  rm -f "$data" "$data.old"
  echo "recording: $cairn bench --quick --filter $workload $*"
  if ! perf record -F "${PROFILE_FREQ:-999}" -g --call-graph dwarf,16384 -o "$data" -- \
    "$cairn" bench --quick --filter "$workload" "$@"; then
    echo "error: perf record or the benchmark failed; no flame graph written" >&2
    exit 1
  fi
  echo "folding the stacks (perf script | inferno-collapse-perf)"
  if ! perf script -i "$data" | inferno-collapse-perf >"$folded"; then
    echo "error: perf script or inferno-collapse-perf failed on $data" >&2
    exit 1
  fi
  if [ ! -s "$folded" ]; then
    echo "error: no samples in $data (does --filter $workload select any workload?)" >&2
    exit 1
  fi
  inferno-flamegraph --title "cairn bench --quick --filter $workload" <"$folded" >"$svg"
  echo
  echo "flame graph: $svg"
  echo "top 15 functions by self time (share of the sampled CPU time):"
  # The last frame of each folded stack is the function the sample was taken in; the count
  # after it is the samples' weight (their period).
  awk '{
      n = $NF; sub(/ [0-9]+$/, ""); frames = split($0, frame, ";")
      self[frame[frames]] += n; total += n
    }
    END { for (f in self) printf "%6.2f%%  %s\n", 100 * self[f] / total, f }' "$folded" |
    sort -rn | head -15
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
    if [ "${SKIP_TESTS:-0}" = "1" ]; then
      echo "########################################################################" >&2
      echo "## SKIP_TESTS=1: scripts/test.sh was NOT run; this build is untested." >&2
      echo "## Use these figures to iterate on the report; never publish them." >&2
      echo "########################################################################" >&2
    else
      echo "==> scripts/test.sh (figures are published only from a build that passes it)"
      if ! bash scripts/test.sh; then
        echo "error: scripts/test.sh failed; nothing measured. Fix the build, or set SKIP_TESTS=1" >&2
        echo "to iterate on the report (its figures must not be published)." >&2
        exit 1
      fi
    fi
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
  profile)
    if [ -z "${1:-}" ]; then
      echo "error: profile needs a WORKLOAD filter, e.g.: scripts/bench.sh profile peers/point_read" >&2
      exit 2
    fi
    profile "$@"
    ;;
  *)
    if [ -n "$mode" ]; then
      echo "error: unknown mode: $mode" >&2
    fi
    usage
    ;;
esac
