#!/usr/bin/env bash
# scripts/bench-chat.sh — wired as `scripts/bench chat`: proof that open chat
# streams do not block the loop. 200 chat requests are held open (streaming
# server-sent events) against a fake provider that answers slowly, while wrk
# measures GET /api/v1/transactions?month= (or /healthz when the ledger
# module is absent). Prints that route's p99 without and with the open
# chats (best of two wrk runs each), and the change (target: less than 10% worse).
#
# Uses bench_services, bench_server and wrk_run from scripts/bench. The fake
# provider is a second lifeplan serving spec/chat/fake_llm. Tunables:
# BENCH_SECONDS (wrk duration, 5), BENCH_CHATS (200), BENCH_CONNS (wrk
# connections, 16), BENCH_DELTA_MS (the fake's gap between deltas, 1000).
set -euo pipefail
cd "$LP_ROOT"
CHATS=${BENCH_CHATS:-200}
CONNS=${BENCH_CONNS:-16}
DELTA_MS=${BENCH_DELTA_MS:-1000}
FAKE_PID=; HOLD_PID=
chat_cleanup() {
  [ -n "$HOLD_PID" ] && kill "$HOLD_PID" 2>/dev/null || true
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null || true
  wait 2>/dev/null || true
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

BENCH_ENV="ANTHROPIC_API_KEY=bench ANTHROPIC_BASE_URL=http://127.0.0.1:$FAKE_PORT LLM_TIMEOUT_MS=3600000 \
LLM_FIRST_BYTE_TIMEOUT_MS=3600000 CHAT_RATE_LIMIT=0" bench_server
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

# The machine is shared: each side is measured twice and the better p99 kept.
best_p99() { # label → prints the wrk lines, sets BEST
  local l1 l2 a b
  l1=$(wrk_run "$1" "$CONNS" "$route" "${wrk_args[@]}"); echo "$l1"
  l2=$(wrk_run "$1" "$CONNS" "$route" "${wrk_args[@]}"); echo "$l2"
  a=$(echo "$l1" | p99_of | to_ms); b=$(echo "$l2" | p99_of | to_ms)
  BEST=$(awk -v a="$a" -v b="$b" 'BEGIN { print (a < b ? a : b) }')
}
wrk_run "$label warm-up" "$CONNS" "$route" "${wrk_args[@]}" >/dev/null
best_p99 "$label (no chats)"
before=$BEST

# Holds CHATS streaming chat requests open; reports how many are streaming.
cat >"$BENCH_TMP/hold.py" <<'PY'
import asyncio, json, sys
port, token, sid, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
state = {"streaming": 0, "failed": 0}
async def chat(i):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"content": "이번 달 식비 얼마나 썼어?"}).encode()
        w.write((f"POST /api/v1/chat/sessions/{sid} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                 f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        await w.drain()
        seen = False
        while True:
            line = await r.readline()
            if not line: break
            if not seen and line.startswith(b"event: delta"):
                seen = True; state["streaming"] += 1
    except Exception:
        state["failed"] += 1
async def main():
    tasks = [asyncio.create_task(chat(i)) for i in range(n)]
    while True:
        print(f"streaming={state['streaming']} failed={state['failed']}", flush=True)
        await asyncio.sleep(0.5)
asyncio.run(main())
PY
python3 "$BENCH_TMP/hold.py" "$BENCH_PORT" "$token" "$sid" "$CHATS" >"$BENCH_TMP/hold.log" 2>&1 &
HOLD_PID=$!
for _ in $(seq 120); do
  grep -q "streaming=$CHATS " "$BENCH_TMP/hold.log" 2>/dev/null && break; sleep 0.5
done
echo "chats: $(tail -1 "$BENCH_TMP/hold.log") (of $CHATS, fake provider: one delta per ${DELTA_MS} ms)"
best_p99 "$label ($CHATS chats open)"
after=$BEST
echo "chats still streaming after the run: $(tail -1 "$BENCH_TMP/hold.log")"
awk -v b="$before" -v a="$after" -v c="$CHATS" 'BEGIN {
  printf "chat: best p99 without chats=%.3fms with %d open chats=%.3fms change=%+.1f%% (target < +10%%)\n", b, c, a, (a / b - 1) * 100 }'
