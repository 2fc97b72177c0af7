#!/bin/sh
# bench-match.sh — the matching-engine benchmark (wired as `scripts/bench match`).
#
# Builds bench/match_bench, starts a throwaway PostgreSQL (as the user
# `postgres`, unix socket only, in a temp dir, on a free port), runs the
# benchmark against it and removes the server. Pass --quick for a short run.
# Prints, per size:
#   match: policies=N engine_us=... scan_us=... sql_us=... vs_scan=...x vs_sql=...x
# then build time / memory per policy, and
#   reverse: profiles=1000000 engine_ms=... scan_ms=...
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j2 --target match_bench >/dev/null

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
initdb=${pgbin:+$pgbin/}initdb
pg_ctl=${pgbin:+$pgbin/}pg_ctl
[ -x "$initdb" ] || initdb=$(command -v initdb)
[ -x "$pg_ctl" ] || pg_ctl=$(command -v pg_ctl)

tmp=$(mktemp -d /tmp/lp-bench-match.XXXXXX)
chmod 755 "$tmp"
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
    as_pg "$pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
[ "$(id -u)" = 0 ] && chown postgres "$tmp"

# a free port: ask the kernel for one
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$initdb" -D "$tmp/data" -U postgres -A trust --no-sync >/dev/null
as_pg "$pg_ctl" -D "$tmp/data" -l "$tmp/pg.log" -w \
    -o "-p $port -k $tmp -c listen_addresses='' -c fsync=off -c shared_buffers=128MB" \
    start >/dev/null

LP_BENCH_DATABASE_URL="postgresql:///postgres?host=$tmp&port=$port&user=postgres" \
    "$build/match_bench" "$@"
