#!/usr/bin/env bash
# Throughput and cost of a hello request: the dispatcher (`/dispatch/hello/`) against a
# bare axum handler and `wasmtime serve` of the same hello component, same machine, same
# load, one run. Prints req/s, p50/p99 latency and server CPU µs per request, and the
# ratios; the added cost of a KV get, an R2 get of a 4 KiB object, an SQL point query
# and a service-binding hop, next to the same call made as a loopback HTTP request; and how much of its throughput hello
# keeps while another tenant spins at its CPU limit on every connection (isolation); and
# what the gateway adds to an authenticated read of a first-party service.
# Installs wrk (Debian) and wasmtime-cli (same version as our wasmtime) if absent.
#
#   bash bench/run.sh            # 3 rounds of 10 s per server, 64 connections, 2 threads
#   ROUNDS=5 DURATION=20 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
WASMTIME_VERSION=48.0.8
WASMTIME_ROOT=${WASMTIME_ROOT:-$HOME/.local/wasmtime-$WASMTIME_VERSION}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
WASMTIME="$WASMTIME_ROOT/bin/wasmtime"
if ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
    echo "installing wasmtime-cli $WASMTIME_VERSION (one-time, slow)..." >&2
    # Only what `wasmtime serve` needs: the full default feature set takes far longer to
    # build and changes nothing about how `serve` runs a wasi:http component.
    cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked --root "$WASMTIME_ROOT" \
        --no-default-features \
        --features serve,run,cranelift,pooling-allocator,component-model,component-model-async,parallel-compilation,cache,wat
fi

cargo build --release -j2 -p dispatcher -p bench >&2
WORK=$(mktemp -d)
# The default template imports the platform module; `wasmtime serve` gets the same
# component composed with it, exactly as the dispatcher composes it at upload.
HELLO="$WORK/hello.wasm"
GUESTS=$(dirname "$(ls -t target/release/build/dispatcher-*/out/hello.wasm | head -n1)")
target/release/dispatcher script compose "$GUESTS/hello.wasm" -o "$HELLO"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

# Servers on fixed loopback ports.
target/release/axum-hello 127.0.0.1:8790 >/dev/null &
AXUM_PID=$!
# Loopback is opened so a script can call the same server over HTTP, for comparison.
echo 'outbound_allow_private = ["127.0.0.0/8"]' >"$WORK/dispatcher.toml"
target/release/dispatcher --data "$WORK/data" serve --listen 127.0.0.1:8791 --demo \
    --config "$WORK/dispatcher.toml" >/dev/null 2>"$WORK/dispatcher.log" &
DISPATCHER_PID=$!
"$WASMTIME" serve -Scli --addr 127.0.0.1:8792 "$HELLO" >/dev/null 2>&1 &
WASMTIME_PID=$!

wait_up() { for _ in $(seq 600); do curl -fs "$1" >/dev/null && return; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }
wait_up http://127.0.0.1:8790/
wait_up http://127.0.0.1:8791/dispatch/hello/
wait_up http://127.0.0.1:8792/

# Binding costs: SDK scripts for a customer `bench` (the SDK baseline does no I/O).
D=http://127.0.0.1:8791
TOKEN=$(target/release/dispatcher --data "$WORK/data" customer create bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
upload() { # NAME GUEST METADATA
    curl -fsS -X PUT "$D/script/$1" -H "X-Customer-Token: $TOKEN" \
        -F "metadata=$3" -F "module=@$GUESTS/$2.wasm;type=application/wasm" >/dev/null
}
upload bench-hello hello '{}'
upload bench-sdk vars '{"bindings":[{"type":"secret_text","name":"API_KEY","text":"k"}]}'
upload bench-kv kv '{"bindings":[{"type":"kv_namespace","name":"CACHE","namespace":"bench"}]}'
upload bench-sql sql '{"bindings":[{"type":"d1","name":"DB","database":"bench"}]}'
upload bench-r2 r2 '{"bindings":[{"type":"r2_bucket","name":"FILES","bucket_name":"bench"}]}'
upload bench-hop service '{"bindings":[{"type":"service","name":"BACKEND","service":"bench-hello"}]}'
# The same hello reached over loopback HTTP by a plain wasi:http client (the `limits`
# test guest), and that guest doing nothing, as its baseline.
upload bench-fetch limits '{}'
LOOPBACK="$D/dispatch/bench-fetch/fetch?url=http%3A%2F%2F127.0.0.1%3A8791%2Fdispatch%2Fbench-hello%2F"
# Another tenant whose every request spins until its CPU limit stops it.
HOG_TOKEN=$(target/release/dispatcher --data "$WORK/data" customer create hog --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -fsS -X PUT "$D/script/hog" -H "X-Customer-Token: $HOG_TOKEN" -H 'content-type: application/wasm' \
    --data-binary "@$GUESTS/limits.wasm" >/dev/null
curl -fsS -X PUT "$D/dispatch/bench-kv/key1" --data-binary 'value one' >/dev/null
head -c 4096 /dev/urandom >"$WORK/object-4k"
curl -fsS -X PUT "$D/dispatch/bench-r2/files/object-4k" --data-binary "@$WORK/object-4k" >/dev/null
sql() { curl -fsS -X POST "$D/dispatch/bench-sql/query" -H 'content-type: application/json' -d "$1" >/dev/null; }
sql '{"sql":"CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)","params":[]}'
sql '{"sql":"INSERT OR REPLACE INTO items VALUES (42, ?)","params":["answer"]}'
cat >"$WORK/point-query.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"sql":"SELECT name FROM items WHERE id = ?","params":[42]}'
LUA

# Gateway hop: an authenticated read of a content item through the gateway (session
# verified by the first-party auth script, identity injected, routed to content) against
# the same read of the same component dispatched directly as a customer script.
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin)['data']; print(d$1)"; }
curl -fsS "$D/auth/signup" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench password"}' >/dev/null
SESSION=$(curl -fsS "$D/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench password"}' | json_field "['token']")
ITEM=$(curl -fsS "$D/content" -H "Cookie: session=$SESSION" -H 'content-type: application/json' \
    -d '{"title":"Bench","body":"An item to read"}' | json_field "['item']['id']")
upload bench-content content '{"bindings":[{"type":"d1","name":"DB","database":"bench-content"}]}'
DIRECT_ITEM=$(curl -fsS "$D/dispatch/bench-content/content" -H 'content-type: application/json' \
    -H 'x-user-id: usr_bench' -H 'x-user-role: user' -H 'x-app-key: default' \
    -d '{"title":"Bench","body":"An item to read"}' | json_field "['item']['id']")
# A session token the gateway has not seen on every request, so auth runs each time
# (it finds no such session; the content read is public, so it is still served).
cat >"$WORK/fresh-session.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", nil, { ["Cookie"] = "session=ses_" .. counter .. "_" .. math.random(1e9) })
end
LUA

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# run NAME PID URL [WRK ARGS...] -> appends "name rps p50_us p99_us cpu_us_per_req" to results
run() {
    local name=$1 pid=$2 url=$3
    shift 3
    wrk -t2 -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null  # warm up
    for round in $(seq "$ROUNDS"); do
        local before after out
        before=$(cpu_ticks "$pid")
        out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
        after=$(cpu_ticks "$pid")
        python3 - "$name" "$before" "$after" "$TICK" <<PY >>"$WORK/results"
import re, sys
name, before, after, tick = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = """$out"""
def us(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
requests = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = us(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
p99 = us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
assert not errors, f"{name}: {errors.group(0)}"
cpu_us = (after - before) / tick * 1e6 / requests
print(name, rps, p50, p99, cpu_us)
PY
    done
}

# Interleave the servers round by round so machine noise hits all of them alike.
for round in $(seq "$ROUNDS"); do
    ROUNDS=1 run axum "$AXUM_PID" http://127.0.0.1:8790/
    ROUNDS=1 run dispatcher "$DISPATCHER_PID" http://127.0.0.1:8791/dispatch/hello/
    ROUNDS=1 run wasmtime-serve "$WASMTIME_PID" http://127.0.0.1:8792/
    ROUNDS=1 run sdk-baseline "$DISPATCHER_PID" "$D/dispatch/bench-sdk/secret-length"
    ROUNDS=1 run kv-get "$DISPATCHER_PID" "$D/dispatch/bench-kv/key1"
    ROUNDS=1 run r2-get-4k "$DISPATCHER_PID" "$D/dispatch/bench-r2/files/object-4k"
    ROUNDS=1 run sql-point "$DISPATCHER_PID" "$D/dispatch/bench-sql/query" -s "$WORK/point-query.lua"
    ROUNDS=1 run service-hop "$DISPATCHER_PID" "$D/dispatch/bench-hop/"
    ROUNDS=1 run fetch-baseline "$DISPATCHER_PID" "$D/dispatch/bench-fetch/spin-ms?ms=0"
    ROUNDS=1 run loopback-http "$DISPATCHER_PID" "$LOOPBACK"
    ROUNDS=1 run content-direct "$DISPATCHER_PID" "$D/dispatch/bench-content/content/$DIRECT_ITEM"
    ROUNDS=1 run content-gateway "$DISPATCHER_PID" "$D/content/$ITEM" -H "Cookie: session=$SESSION"
    ROUNDS=1 run content-gateway-auth "$DISPATCHER_PID" "$D/content/$ITEM" -s "$WORK/fresh-session.lua"
    # Hello while the hog tenant saturates its own limit on as many connections.
    wrk -t1 -c"$CONNECTIONS" -d"$((DURATION + 4))s" "$D/dispatch/hog/spin" >/dev/null &
    HOG_WRK=$!
    sleep 2
    ROUNDS=1 run hello-beside-hog "$DISPATCHER_PID" http://127.0.0.1:8791/dispatch/hello/
    wait "$HOG_WRK" || true
done

# Cost of enforcing limits on hello, attributed by `perf` (when installed): the thread
# CPU clock reads around each poll, the metering future itself, the memory limiter and the
# epoch callback, as a share of all the dispatcher's samples.
ENFORCEMENT=""
if command -v perf >/dev/null; then
    wrk -t2 -c"$CONNECTIONS" -d8s http://127.0.0.1:8791/dispatch/hello/ >/dev/null &
    sleep 2
    perf record -q -F 2000 -g -p "$DISPATCHER_PID" -o "$WORK/perf.data" -- sleep 5 >/dev/null 2>&1 || true
    wait $!
    ENFORCEMENT=$(perf report -i "$WORK/perf.data" --children --sort symbol -g none 2>/dev/null | python3 -c '
import re, sys
total = 0.0
for line in sys.stdin:
    m = re.match(r"\s+([\d.]+)%\s+([\d.]+)%\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    children, self_, symbol = float(m.group(1)), float(m.group(2)), m.group(3)
    if "__vdso_clock_gettime" in symbol:
        total += children
    elif re.search(r"cpu::Metered<F> as .*Future>::poll|MemoryLimiter|on_epoch_tick|GuestMemory", symbol):
        total += self_
print(f"{total:.1f}")')
fi

python3 - "$WORK/results" "$CONNECTIONS" "$ENFORCEMENT" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *values = line.split()
    rows.setdefault(name, []).append([float(v) for v in values])
med = {n: [statistics.median(col) for col in zip(*r)] for n, r in rows.items()}
print(f"{'server':<16}{'req/s':>10}{'p50 µs':>10}{'p99 µs':>10}{'CPU µs/req':>12}   (medians of {len(rows['axum'])} rounds)")
for name in ("axum", "dispatcher", "wasmtime-serve"):
    rps, p50, p99, cpu = med[name]
    print(f"{name:<16}{rps:>10.0f}{p50:>10.0f}{p99:>10.0f}{cpu:>12.1f}")
d, a, w = med["dispatcher"], med["axum"], med["wasmtime-serve"]
print()
print(f"dispatcher vs wasmtime serve: {d[0]/w[0]:.2f}x req/s, {w[3]/d[3]:.2f}x less CPU per request")
print(f"dispatcher vs bare axum:      {d[0]/a[0]:.2f}x req/s, {d[3]/a[3]:.2f}x CPU per request")
print()
print(f"{'binding':<16}{'req/s':>10}{'p50 µs':>10}{'CPU µs/req':>12}{'added CPU µs':>14}{'added p50 µs':>14}")
base = med["sdk-baseline"]
for name in ("sdk-baseline", "kv-get", "r2-get-4k", "sql-point", "service-hop"):
    rps, p50, p99, cpu = med[name]
    print(f"{name:<16}{rps:>10.0f}{p50:>10.0f}{cpu:>12.1f}{cpu - base[3]:>14.1f}{p50 - base[1]:>14.0f}")
hop = med["service-hop"][3] - base[3]
print()
print(f"service-binding hop to hello, the callee's run included: {hop:.1f} µs CPU;")
loop = med["loopback-http"][3] - med["fetch-baseline"][3]
print(f"the same call as a loopback HTTP request (wasi:http client -> this server's front door")
print(f"-> hello), over its caller's baseline: {loop:.1f} µs CPU, both sides counted.")
print(f"Service hop / loopback HTTP = {hop/loop:.2f}.")
print()
direct, gateway, checked = med["content-direct"], med["content-gateway"], med["content-gateway-auth"]
print(f"{'content read':<22}{'req/s':>10}{'p50 µs':>10}{'CPU µs/req':>12}{'added CPU µs':>14}")
for name, row in (("direct", direct), ("gateway, session known", gateway),
                  ("gateway, auth each time", checked)):
    print(f"{name:<22}{row[0]:>10.0f}{row[1]:>10.0f}{row[3]:>12.1f}{row[3] - direct[3]:>14.1f}")
print(f"gateway hop, session remembered (1 s): {gateway[3] - direct[3]:+.1f} µs CPU, {gateway[1] - direct[1]:+.0f} µs p50,")
print(f"{gateway[0]/direct[0]:.2f}x the direct req/s; with auth run for every request: {checked[3] - direct[3]:+.1f} µs CPU,")
print(f"{checked[0]/direct[0]:.2f}x the direct req/s.")
print()
solo, beside = med["dispatcher"], med["hello-beside-hog"]
print(f"isolation: hello alone {solo[0]:.0f} req/s, p50 {solo[1]:.0f} µs; beside a tenant spinning at its")
print(f"CPU limit on {sys.argv[2]} connections: {beside[0]:.0f} req/s, p50 {beside[1]:.0f} µs")
print(f"-> hello keeps {beside[0]/solo[0]*100:.0f}% of its solo throughput (target >= 50%).")
if sys.argv[3]:
    share = float(sys.argv[3])
    print()
    print(f"limits enforcement (CPU metering, memory limiter, epoch callback): {share:.1f}% of the")
    print(f"dispatcher's CPU on hello, about {d[3] * share / 100:.1f} µs of its {d[3]:.1f} µs per request (perf);")
    print(f"hello is CPU-bound, so it costs about the same share of hello's throughput.")
PY
