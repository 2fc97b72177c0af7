#!/usr/bin/env bash
# spec/chat/sdk/check.sh — checks the fake LLM against the official
# @anthropic-ai/sdk and openai npm clients. Needs Node.js and the npm
# registry; installs the pinned versions below into a temporary folder
# (never into the repo). scripts/test runs it when Node.js is installed;
# it also runs by hand. Prints "N passed, N failed" last.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BIN=${LIFEPLAN_BIN:-$ROOT/build/lifeplan}
ANTHROPIC_SDK=${ANTHROPIC_SDK:-1.15.0} OPENAI_SDK=${OPENAI_SDK:-6.49.0} # what the fake was checked with
TMP=$(mktemp -d "${LP_SPEC_TMP:-/tmp}/lifeplan-sdk.XXXXXX")
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
mkdir -p "$TMP/modules" "$TMP/npm"
cp -r "$ROOT/modules/shared" "$TMP/modules/"
cp -r "$ROOT/spec/chat/fake_llm/." "$TMP/modules/"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
MODULES_DIR="$TMP/modules" PORT=$PORT HOST=127.0.0.1 LOG_REQUESTS=0 "$BIN" serve --workers 1 >"$TMP/fake.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.05; done
(cd "$TMP/npm" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "@anthropic-ai/sdk@$ANTHROPIC_SDK" "openai@$OPENAI_SDK" >/dev/null)
ver() { node -p "JSON.parse(require('fs').readFileSync('$TMP/npm/node_modules/$1/package.json')).version"; }
echo "SDKs: @anthropic-ai/sdk $(ver @anthropic-ai/sdk), openai $(ver openai)"
cp "$ROOT/spec/chat/sdk/check.mjs" "$TMP/npm/"
cd "$TMP/npm" && FAKE_URL="http://127.0.0.1:$PORT" node check.mjs
