#!/usr/bin/env bash
# Memory given back: a release server, RUNS requests to the `limits` test guest's
# `/grow-many?mb=MB` (each run grows its memory to about MB MiB, every page written) under
# `limits set app --memory-mb 128` (and 1 s of CPU, so no run stops short of its memory),
# CONCURRENCY at a time; then, SETTLE seconds later,
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
"$BIN" --data "$WORK/data" limits set app --memory-mb 128 --cpu-ms 1000 >/dev/null

rss_mib() { awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$PID/status"; }

# The new limits apply to the next request of the server once it has read them.
# (300 ms of spinning is past the default 50 ms of CPU, not past 1 s.)
for _ in $(seq 50); do curl -fs -o /dev/null "$D/dispatch/app/spin-ms?ms=300" && break; sleep 0.1; done
sleep "$SETTLE"
BASELINE=$(rss_mib)

grow() { # COUNT
    for _ in $(seq "$1"); do
        curl -sS -o /dev/null -w '%{http_code}\n' "$D/dispatch/app/grow-many?mb=$MB"
    done >>"$WORK/statuses"
}
for _ in $(seq "$CONCURRENCY"); do grow $((RUNS / CONCURRENCY)) & done
wait $(jobs -p | grep -vx "$PID")
sleep "$SETTLE"
AFTER=$(rss_mib)
# Past the limit a run is refused (503 exceeded_memory) after growing as far as it may.
if grep -qvE '^(200|503)$' "$WORK/statuses"; then
    echo "unexpected answers to grow-many: $(sort "$WORK/statuses" | uniq -c | tr '\n' ' ')" >&2
    exit 1
fi

VERDICT=FAIL
if [ $((AFTER - BASELINE)) -le $BOUND_MIB ]; then VERDICT=hold; fi
echo "memory back: baseline $BASELINE MiB, after $AFTER MiB: $VERDICT"
