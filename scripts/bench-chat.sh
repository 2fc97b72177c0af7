#!/usr/bin/env bash
# scripts/bench-chat.sh — wired as `scripts/bench chat`: proof that open chat
# streams do not block the loop. 200 chat requests are held open (streaming
# server-sent events) against a fake provider that answers slowly, while wrk
# measures GET /api/v1/transactions?month= (or /healthz when the ledger
# module is absent). Prints that route's p99 without and with the open
# chats (median of BENCH_ROUNDS wrk runs each), and the change (target: less
# than 10% worse).
#
# Uses bench_services, bench_server, wrk_run and median from scripts/bench. The fake
# provider is a second lifeplan serving spec/chat/fake_llm. Tunables:
# BENCH_SECONDS (wrk duration, 5), BENCH_CHATS (200), BENCH_CONNS (wrk
# connections, 16), BENCH_ROUNDS (wrk runs per side, 3), BENCH_DELTA_MS (the
# fake's gap between deltas, 1000), BENCH_CHAT_ENV (extra environment for
# the measured server, e.g. "LUA_GC_PAUSE=200" to compare GC settings),
# BENCH_QUESTION (what the chats ask; the default is a spending question).
# Also prints what the open chats cost by themselves: CPU of each process with no wrk running, and the
# Lua heap they keep alive (bench/fixtures/benchgc); BENCH_FRAMES=FILE also
# saves an estimate of what each suspended frame's locals keep alive.
set -euo pipefail
cd "$LP_ROOT"
CHATS=${BENCH_CHATS:-200}
CONNS=${BENCH_CONNS:-16}
DELTA_MS=${BENCH_DELTA_MS:-1000}
ROUNDS=${BENCH_ROUNDS:-3}
FAKE_PID=; HOLD_PID=
chat_cleanup() {
  [ -n "$HOLD_PID" ] && kill "$HOLD_PID" 2>/dev/null || true
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null || true
  for pid in $HOLD_PID $FAKE_PID; do wait "$pid" 2>/dev/null || true; done
}
trap 'chat_cleanup; bench_cleanup_outer' EXIT
bench_cleanup_outer() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  "$LP_ROOT/scripts/services" stop "$BENCH_TMP/services" >/dev/null 2>&1 || true
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

bench_services

# The slow fake provider: every answer is 300 characters, one per delta.
fake_mods="$BENCH_TMP/fake-modules"
mkdir -p "$fake_mods"; cp -r modules/shared "$fake_mods/"; cp -r spec/chat/fake_llm/. "$fake_mods/"
FAKE_PORT=$(free_port)
MODULES_DIR="$fake_mods" PORT=$FAKE_PORT LOG_REQUESTS=0 build/lifeplan serve >"$BENCH_TMP/fake.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$FAKE_PORT/healthz" >/dev/null && break; sleep 0.05; done
text=$(python3 -c 'print("느리게 도착하는 답변입니다. " * 20)')
curl -fs -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$FAKE_PORT/_fake/default" \
  -d "{\"text\": \"$text\", \"chunk\": 1, \"delay_ms\": $DELTA_MS}" >/dev/null

BENCH_ENV="${BENCH_CHAT_ENV:-} ANTHROPIC_API_KEY=bench ANTHROPIC_BASE_URL=http://127.0.0.1:$FAKE_PORT LLM_TIMEOUT_MS=3600000 \
LLM_FIRST_BYTE_TIMEOUT_MS=3600000 CHAT_RATE_LIMIT=0" bench_server bench/fixtures
base="http://127.0.0.1:$BENCH_PORT"

[ -d modules/auth ] || { echo "chat: the auth module is missing (chat routes need a token)"; exit 1; }
email="bench-chat-$RANDOM$RANDOM@example.com"
token=$(curl -fs -X POST -H 'Content-Type: application/json' "$base/api/v1/auth/register" \
  -d "{\"email\":\"$email\",\"password\":\"bench password 1\"}" | python3 -c 'import json,sys;print(json.load(sys.stdin)["accessToken"])')
auth="Authorization: Bearer $token"
sid=$(curl -fs -X POST -H "$auth" -H 'Content-Type: application/json' "$base/api/v1/chat/sessions" -d '{}' |
  python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')

month=$(TZ=Asia/Seoul date +%Y-%m)
if [ -d modules/transaction ]; then
  for i in $(seq 50); do
    curl -fs -o /dev/null -X POST -H "$auth" -H 'Content-Type: application/json' "$base/api/v1/transactions" \
      -d "{\"type\":\"expense\",\"amount\":$((i * 1000)),\"category\":\"food\",\"occurredOn\":\"$month-01\",\"memo\":\"bench\"}"
  done
  route="$base/api/v1/transactions?month=$month"; label="GET /transactions?month="
  wrk_args=(-H "$auth")
else
  route="$base/healthz"; label="GET /healthz"; wrk_args=()
  echo "(ledger module absent: measuring /healthz)"
fi

p99_of() { sed -n 's/.*p99=\([^ ]*\).*/\1/p'; }
to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000 } else print v }'; }

# The machine is shared: each side is measured ROUNDS times and the median
# p99 kept (a single 5 s p99 on two busy cores swings by 10-20%).
median_p99() { # label → prints the wrk lines, sets MEDIAN
  local line all=""
  for _ in $(seq "$ROUNDS"); do
    line=$(wrk_run "$1" "$CONNS" "$route" "${wrk_args[@]}"); echo "$line"
    all="$all $(echo "$line" | p99_of | to_ms)"
  done
  MEDIAN=$(median "$all")
}
wrk_run "$label warm-up" "$CONNS" "$route" "${wrk_args[@]}" >/dev/null
median_p99 "$label (no chats)"
before=$MEDIAN
heap_kb() { curl -fs "$base/bench/gc" | python3 -c 'import json,sys;print(round(json.load(sys.stdin)["kb"]))'; }
heap_before=$(heap_kb)

# Holds CHATS streaming chat requests open, started evenly over DELTA_MS
# (users do not all type in the same millisecond), and reads every stream to
# its end with one select loop (cheap: the holder shares the machine);
# reports how many have seen a delta and how many are still open.
cat >"$BENCH_TMP/hold.py" <<'PY'
import json, os, selectors, socket, sys, time
port, token, sid, n, gap_ms = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
body = json.dumps({"content": os.environ.get("BENCH_QUESTION", "이번 달 식비 얼마나 썼어?")}).encode()
req = (f"POST /api/v1/chat/sessions/{sid} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
       f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
sel = selectors.DefaultSelector()
seen, st = set(), {"open": 0, "failed": 0}
def pump(timeout):
    for key, _ in sel.select(timeout):
        s = key.fileobj
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            sel.unregister(s); s.close(); st["open"] -= 1
            if s not in seen: st["failed"] += 1
        elif s not in seen and b"event: delta" in data:
            seen.add(s)
t0, last = time.monotonic(), 0.0
for i in range(n):
    while time.monotonic() < t0 + i * gap_ms / n / 1000:
        pump(0.001)
    try:
        s = socket.create_connection(("127.0.0.1", port)); s.sendall(req)
        sel.register(s, selectors.EVENT_READ); st["open"] += 1
    except OSError:
        st["failed"] += 1
while True:
    pump(0.1)
    if time.monotonic() - last >= 0.5:
        last = time.monotonic()
        print(f"streaming={len(seen)} open={st['open']} failed={st['failed']}", flush=True)
PY
python3 "$BENCH_TMP/hold.py" "$BENCH_PORT" "$token" "$sid" "$CHATS" "$DELTA_MS" >"$BENCH_TMP/hold.log" 2>&1 &
HOLD_PID=$!
for _ in $(seq 120); do
  grep -q "streaming=$CHATS " "$BENCH_TMP/hold.log" 2>/dev/null && break; sleep 0.5
done
echo "chats: $(tail -1 "$BENCH_TMP/hold.log") (of $CHATS, fake provider: one delta per ${DELTA_MS} ms)"
# What the open chats cost by themselves (no wrk): CPU of each process over 3 s.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
h0=$(cpu_ticks "$SERVER_PID") f0=$(cpu_ticks "$FAKE_PID") k0=$(cpu_ticks "$HOLD_PID")
sleep 3
h1=$(cpu_ticks "$SERVER_PID") f1=$(cpu_ticks "$FAKE_PID") k1=$(cpu_ticks "$HOLD_PID")
hz=$(getconf CLK_TCK)
awk -v h=$((h1 - h0)) -v f=$((f1 - f0)) -v k=$((k1 - k0)) -v hz="$hz" 'BEGIN {
  printf "open chats alone (3 s, %% of one core): host=%.1f%% fake provider=%.1f%% holder=%.1f%%\n",
    h * 100 / hz / 3, f * 100 / hz / 3, k * 100 / hz / 3 }'
echo "Lua heap after a full collection: ${heap_before} kB without chats, $(heap_kb) kB with $CHATS open"
[ -n "${BENCH_FRAMES:-}" ] && curl -fs "$base/bench/gc/frames" > "$BENCH_FRAMES"
median_p99 "$label ($CHATS chats open)"
after=$MEDIAN
echo "chats still streaming after the run: $(tail -1 "$BENCH_TMP/hold.log")"
awk -v b="$before" -v a="$after" -v c="$CHATS" 'BEGIN {
  printf "chat: median p99 without chats=%.3fms with %d open chats=%.3fms change=%+.1f%% (target < +10%%)\n", b, c, a, (a / b - 1) * 100 }'
