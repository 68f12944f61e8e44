#!/usr/bin/env bash
# Runs parts of Redis's own test suite (its Tcl tests, in external-server mode) against
# `cairn serve`, and fails if any test that runs fails.
#
#   bash scripts/redis-suite.sh [UNIT ...]     # default: every unit listed below
#
# The suite comes from the source of the Redis release the gate installs (7.0.15, Debian's
# original tarball, checked against its SHA-256) and runs under `tclsh`; both are fetched and
# installed here when missing. The server runs in memory on a free loopback port.
#
# What does not run, and why, is in scripts/redis-suite/skip.txt: the tests are skipped by
# name there, and by tag here (DENY_TAGS: the tests that need DEBUG, replication, MAXMEMORY
# and the other Redis internals Cairn does not have).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=7.0.15
SHA256=4b1dc4ee6d622a09fff9c6777191209750fb5e5a725ef78ea012d6eef4c22982
URL="http://deb.debian.org/debian/pool/main/r/redis/redis_${VERSION}.orig.tar.gz"
UNITS=(
  unit/type/incr unit/type/string unit/type/hash unit/type/list unit/type/set
  unit/type/zset unit/type/stream unit/type/stream-cgroups unit/expire unit/keyspace
  unit/multi unit/pubsub unit/scan unit/protocol unit/quit unit/auth unit/bitops
  unit/bitfield
)
DENY_TAGS=(needs:debug needs:config-maxmemory needs:repl needs:latency needs:local-process
  needs:pfdebug needs:save needs:reset needs:other-server)
[ "$#" -gt 0 ] && UNITS=("$@")

target_dir=${CARGO_TARGET_DIR:-target}
cache="$target_dir/redis-suite"
mkdir -p "$cache"
tarball="$cache/redis-$VERSION.tar.gz"
install_package() {
  echo "$1 is missing; installing the Debian package $2"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$2"
  else
    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "$2"
  fi
}
command -v curl >/dev/null 2>&1 || install_package curl curl
command -v tclsh >/dev/null 2>&1 || install_package tclsh tcl

if ! echo "$SHA256  $tarball" | sha256sum -c --status 2>/dev/null; then
  echo "fetching Redis $VERSION's source for its test suite"
  curl -fsS --retry 3 -o "$tarball.part" "$URL"
  mv "$tarball.part" "$tarball"
  echo "$SHA256  $tarball" | sha256sum -c --quiet
fi
src="$cache/redis-$VERSION"
if [ ! -d "$src/tests" ]; then
  tar -xzf "$tarball" -C "$cache"
fi

cargo build --release --locked -q -p cairn-cli
case "$target_dir" in
  /*) cairn="$target_dir/release/cairn" ;;
  *) cairn="$(pwd)/$target_dir/release/cairn" ;;
esac
# A loopback port nothing listens on, below Linux's ephemeral range (32768 on), so that no
# outgoing connection holds it or the suite's own ports after it.
port=$((10000 + RANDOM % 20000))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
work=$(mktemp -d)
"$cairn" serve --dir "$work/db" --durability memory --bind "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done

skipfile="$(pwd)/scripts/redis-suite/skip.txt"
mkdir -p "$cache/logs"
tags=()
for tag in "${DENY_TAGS[@]}"; do tags+=("-$tag"); done
passed=0 failed=0 skipped=0
for unit in "${UNITS[@]}"; do
  log="$cache/logs/$(echo "$unit" | tr / _).log"
  # --durable: a failing test is counted and the file goes on; --clients 1: the tests share
  # one server, so they run one at a time; --baseport: the suite's own ports, beside ours.
  (cd "$src" && timeout 900 tclsh tests/test_helper.tcl --host 127.0.0.1 --port "$port" \
    --durable --clients 1 --timeout 120 --ignore-encoding --ignore-digest \
    --baseport $((port + 64)) \
    --tags "${tags[*]}" --skipfile "$skipfile" --single "$unit") 2>&1 |
    sed 's/\x1b\[[0-9;]*m//g' >"$log" || true
  ok=$(grep -c '^\[ok\]' "$log" || true)
  bad=$(grep -c '^\[err\]\|^\[exception\]\|^\[TIMEOUT\]' "$log" || true)
  skip=$(grep -c '^\[skip\]\|^\[ignore\]' "$log" || true)
  # A unit that stopped early (a timeout, an error outside a test) never says it passed.
  if [ "$bad" -eq 0 ] && ! grep -q "All tests passed" "$log"; then
    bad=1
  fi
  printf '%-28s %4d passed %3d failed %3d skipped\n' "$unit" "$ok" "$bad" "$skip"
  if [ "$bad" -gt 0 ]; then
    grep -m 15 -A4 '^\[err\]\|^\[exception\]\|^\[TIMEOUT\]' "$log" || tail -20 "$log"
  fi
  passed=$((passed + ok)) failed=$((failed + bad)) skipped=$((skipped + skip))
done
echo "Redis $VERSION's test suite against cairn serve: $passed passed, $failed failed, $skipped skipped"
if ! kill -0 "$server" 2>/dev/null; then
  echo "error: cairn serve exited during the suite; its log:" >&2
  cat "$work/serve.log" >&2
  exit 1
fi
[ "$failed" -eq 0 ]
