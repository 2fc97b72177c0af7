#!/usr/bin/env bash
# bench-policies.sh — `scripts/bench policies`: wrk on GET /policies/recommend
# (Redis cache off, then on) and GET /policies?q= over 10,000 generated
# policies (scripts/gen-policies.lua, loaded through the collector), with a
# throwaway PostgreSQL and Redis. Prints one line per scenario and the
# cached/uncached ratio measured in the same run.
#
#   scripts/bench-policies.sh [COUNT=10000]     BENCH_SECONDS (5), BENCH_CONNS (32)
# Needs the auth and profile modules (a user with a profile is registered
# through the API).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
count=${1:-10000}
secs=${BENCH_SECONDS:-5}
conns=${BENCH_CONNS:-32}

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target lifeplan >/dev/null

tmp=$(mktemp -d /tmp/lifeplan-bench-policies.XXXXXX)
chmod 755 "$tmp"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  scripts/services stop "$tmp/services" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

scripts/services start "$tmp/services" >/dev/null
eval "$(scripts/services env "$tmp/services")"
export DATABASE_URL REDIS_URL
build/lifeplan migrate >/dev/null
luajit scripts/gen-policies.lua "$count" "$tmp/policies.json" 1 2>/dev/null
build/lifeplan collect --source "$tmp/policies.json" 2>/dev/null | tail -1

port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
serve() { # serve ENV...
  [ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
  env "$@" PORT=$port HOST=127.0.0.1 LOG_REQUESTS=0 build/lifeplan serve >"$tmp/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do curl -fs "$base/healthz" >/dev/null && return 0; sleep 0.05; done
  cat "$tmp/server.log"; exit 1
}

serve POLICY_CACHE=off
token=$(curl -fs -H 'Content-Type: application/json' \
  -d "{\"email\":\"bench$RANDOM@example.com\",\"password\":\"bench-password-1\"}" \
  "$base/api/v1/auth/register" | python3 -c 'import json,sys;print(json.load(sys.stdin)["accessToken"])')
curl -fs -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"birthDate":"1998-05-02","regionCode":"11680","employmentStatus":"unemployed","annualIncome":28000000,"householdSize":1,"interests":["housing","jobs"]}' \
  "$base/api/v1/profile" >/dev/null
curl -fs -H "Authorization: Bearer $token" "$base/api/v1/policies/recommend?includePossible=true" >/dev/null # builds the index

run() { # run LABEL URL [wrk args]
  local label=$1 url=$2; shift 2
  local out rps p50 p99
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$@" "$url")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  printf '%-34s %10s req/s  p50 %8s  p99 %8s\n' "$label" "$rps" "$p50" "$p99" >&2
  echo "$rps"
}
auth=(-H "Authorization: Bearer $token")
echo "policies: $count, connections: $conns, ${secs}s each"
off=$(run "recommend (cache off)" "$base/api/v1/policies/recommend?includePossible=true" "${auth[@]}")
q_off=$(run "search q=월세 (cache off)" "$base/api/v1/policies?q=%EC%9B%94%EC%84%B8")
serve POLICY_CACHE=on
curl -fs -H "Authorization: Bearer $token" "$base/api/v1/policies/recommend?includePossible=true" >/dev/null
on=$(run "recommend (cache on)" "$base/api/v1/policies/recommend?includePossible=true" "${auth[@]}")
q_on=$(run "search q=월세 (cache on)" "$base/api/v1/policies?q=%EC%9B%94%EC%84%B8")
python3 -c "print('recommend cached/uncached: %.2fx   search cached/uncached: %.2fx' % ($on/$off, $q_on/$q_off))"
