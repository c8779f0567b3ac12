#!/usr/bin/env bash
# Memory given back: a release server, RUNS requests to the `limits` test guest's
# `/grow-many?mb=MB` (each run grows its memory to about MB MiB, every page written) under
# `limits set app --memory-mb 128`, CONCURRENCY at a time; then, SETTLE seconds later,
# the server's idle RSS (VmRSS of /proc/PID/status) against its baseline taken after
# start and one small run. Prints one line:
#   memory back: baseline X MiB, after Y MiB: hold|FAIL
# `hold` when Y is within +64 MiB of X.
#
#   bash bench/memory_back.sh
#   RUNS=80 CONCURRENCY=4 MB=120 bash bench/memory_back.sh
#   PROFILE=debug bash bench/memory_back.sh     # the debug build (same pool behaviour)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-20}
MB=${MB:-100}
CONCURRENCY=${CONCURRENCY:-1}
SETTLE=${SETTLE:-3}
PORT=${PORT:-8796}
BOUND_MIB=64

TARGET=${CARGO_TARGET_DIR:-target}
PROFILE=${PROFILE:-release}
# BIN=path runs that binary as it is (to compare builds), with this build's guests.
if [ -z "${BIN:-}" ]; then
    if [ "$PROFILE" = release ]; then cargo build --release -j2 -p dispatcher >&2; else cargo build -j2 -p dispatcher >&2; fi
    BIN="$TARGET/$PROFILE/dispatcher"
fi
GUESTS=$(dirname "$(ls -t "$TARGET/$PROFILE"/build/dispatcher-*/out/limits.wasm | head -n1)")
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

echo 'first_party = false' >"$WORK/dispatcher.toml"
"$BIN" --data "$WORK/data" serve --listen "127.0.0.1:$PORT" --config "$WORK/dispatcher.toml" \
    >/dev/null 2>"$WORK/dispatcher.log" &
PID=$!
D="http://127.0.0.1:$PORT"
for _ in $(seq 600); do curl -fs "$D/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$BIN" --data "$WORK/data" customer create grower --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -fsS -X PUT "$D/script/app" -H "X-Customer-Token: $TOKEN" \
    -H 'content-type: application/wasm' --data-binary "@$GUESTS/limits.wasm" >/dev/null
"$BIN" --data "$WORK/data" limits set app --memory-mb 128 >/dev/null

rss_mib() { awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$PID/status"; }

curl -fsS "$D/dispatch/app/sleep?ms=1" >/dev/null
sleep "$SETTLE"
BASELINE=$(rss_mib)

grow() { # COUNT
    for _ in $(seq "$1"); do
        curl -sS -o /dev/null "$D/dispatch/app/grow-many?mb=$MB"
    done
}
for _ in $(seq "$CONCURRENCY"); do grow $((RUNS / CONCURRENCY)) & done
wait $(jobs -p | grep -vx "$PID")
sleep "$SETTLE"
AFTER=$(rss_mib)

VERDICT=FAIL
if [ $((AFTER - BASELINE)) -le $BOUND_MIB ]; then VERDICT=hold; fi
echo "memory back: baseline $BASELINE MiB, after $AFTER MiB: $VERDICT"
