#!/usr/bin/env bash
# Throughput and cost of a hello request: the dispatcher (`/dispatch/hello/`) against its
# peers on the same machine, under the same load, in one run, every one of them answering
# the same `Hello! This module is provided by the platform` (text/plain):
#   - a bare axum handler (the floor),
#   - `wasmtime serve` (49) of the same hello component, with the pooling allocator, in its
#     WASIp2 default of a fresh instance per request, and with instance reuse,
#   - workerd (Cloudflare's runtime, from npm) running the same answer as an ES module
#     worker: one process (one event-loop thread), and one process per core sharing one
#     listening socket, the way workerd is run to use a whole machine.
# Prints req/s, p50/p99 latency, server CPU µs per request and peak RSS (VmHWM during the
# load), the ratios, and the same table as Markdown for the README. Then: the added cost of
# a KV get, an R2 get of a 4 KiB object, an SQL point query and a service-binding hop, next
# to the same call made as a loopback HTTP request; how much of its throughput hello keeps
# while another tenant spins at its CPU limit on every connection (isolation); what the
# gateway adds to an authenticated read of a first-party service; the dispatcher's idle
# RSS after start; the first request after an upload and after a restart; and the time
# from an upload to its first answer, for hello and for a componentize-js (JavaScript,
# ~13 MB) component. It ends with the goals of issue 15 (P1-P4, P7) as ratios, each with
# its target and PASS/MISS. It prints; it asserts nothing about speed.
# Installs what is absent: wrk (Debian), wasmtime-cli $WASMTIME_VERSION (cargo, only the
# features `serve` needs), workerd and componentize-js (npm, into $CACHE).
#
#   bash bench/run.sh            # 3 rounds of 10 s per server, 64 connections, 2 threads
#   ROUNDS=5 DURATION=20 bash bench/run.sh
#   ROUNDS=1 DURATION=3 BUILD=0 bash bench/run.sh   # quick, with the binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
BUILD=${BUILD:-1}              # 0: use the release binaries already in the target dir
SAMPLES=${SAMPLES:-5}          # uploads / scripts timed for the first-request figures
JS_SAMPLES=${JS_SAMPLES:-3}    # componentize-js uploads timed (each ~3 s, then ~15 s of tier-up)
IDLE_WAIT=${IDLE_WAIT:-2}      # seconds after /healthz first answers to read idle RSS
TARGET=${CARGO_TARGET_DIR:-target}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/dispatcher-bench
WASMTIME_VERSION=${WASMTIME_VERSION:-49.0.5}
WASMTIME_ROOT=${WASMTIME_ROOT:-$HOME/.local/wasmtime-$WASMTIME_VERSION}
WORKERD_VERSION=${WORKERD_VERSION:-1.20261117.1}
COMPONENTIZE_JS_VERSION=${COMPONENTIZE_JS_VERSION:-0.23.0}
HELLO_TEXT='Hello! This module is provided by the platform'

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
WASMTIME="$WASMTIME_ROOT/bin/wasmtime"
if ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
    echo "installing wasmtime-cli $WASMTIME_VERSION (one-time, slow)..." >&2
    # Only what `wasmtime serve` needs: the full default feature set takes far longer to
    # build and changes nothing about how `serve` runs a wasi:http component. 49 declares a
    # newer rust-version than our pinned toolchain; it builds with it all the same.
    cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked --ignore-rust-version \
        --root "$WASMTIME_ROOT" -j2 --no-default-features \
        --features serve,run,cranelift,pooling-allocator,component-model,component-model-async,parallel-compilation,cache,wat
fi

# workerd from npm, once, into the cache; the platform package carries the native binary,
# which is started directly (no node wrapper between it and the measured PID).
WORKERD_DIR="$CACHE/workerd"
workerd_bin() { ls "$WORKERD_DIR"/node_modules/@cloudflare/workerd-*/bin/workerd 2>/dev/null | head -n1 || true; }
installed_workerd=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$WORKERD_DIR/node_modules/workerd/package.json" 2>/dev/null || true)
if [ "$installed_workerd" != "$WORKERD_VERSION" ] || [ -z "$(workerd_bin)" ]; then
    echo "installing workerd $WORKERD_VERSION from npm into $WORKERD_DIR..." >&2
    mkdir -p "$WORKERD_DIR"
    npm install --prefix "$WORKERD_DIR" --no-audit --no-fund --loglevel=error "workerd@$WORKERD_VERSION" >&2 ||
        echo "workerd could not be installed: its rows are skipped" >&2
fi
WORKERD=$(workerd_bin)

if [ "$BUILD" = 1 ]; then cargo build --release -j2 -p dispatcher -p bench >&2; fi
BIN="$TARGET/release"
WORK=$(mktemp -d)
source bench/cleanup.sh  # stops our servers and removes $WORK at exit
# The default template imports the platform module; `wasmtime serve` gets the same
# component composed with it, exactly as the dispatcher composes it at upload.
HELLO="$WORK/hello.wasm"
GUESTS=$(dirname "$(ls -t "$TARGET"/release/build/dispatcher-*/out/hello.wasm | head -n1)")
"$BIN/dispatcher" script compose "$GUESTS/hello.wasm" -o "$HELLO"

now() { date +%s.%N; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
wait_up() { for _ in $(seq 3000); do curl -fs -o /dev/null "$1" && return; sleep 0.02; done; echo "not up: $1" >&2; exit 1; }
check_hello() { # URL NAME: the server answers exactly the hello text
    local body
    body=$(curl -fsS "$1")
    [ "$body" = "$HELLO_TEXT" ] || { echo "$2 answers '$body', not the hello text" >&2; exit 1; }
}
: >"$WORK/figures"   # "key value" lines for the report
figure() { echo "$1 $2" >>"$WORK/figures"; }

# Servers on fixed loopback ports. The dispatcher first, alone: its idle RSS is read
# $IDLE_WAIT s after /healthz first answers, before any request reaches a script.
# Loopback is opened so a script can call the same server over HTTP, for comparison.
echo 'outbound_allow_private = ["127.0.0.0/8"]' >"$WORK/dispatcher.toml"
start_dispatcher() {
    "$BIN/dispatcher" --data "$WORK/data" serve --listen 127.0.0.1:8791 --demo \
        --config "$WORK/dispatcher.toml" >/dev/null 2>>"$WORK/dispatcher.log" &
    DISPATCHER_PID=$!
}
T0=$(now)
start_dispatcher
wait_up http://127.0.0.1:8791/healthz
figure first_start_s "$(python3 -c "print($(now) - $T0)")"
sleep "$IDLE_WAIT"
figure idle_rss_kb "$(rss_kb "$DISPATCHER_PID")"

"$BIN/axum-hello" 127.0.0.1:8790 >/dev/null &
AXUM_PID=$!
# `-O pooling-allocator=y`: serve picks the pooling allocator by default where the address
# space allows; this makes sure of it in both modes. WASIp2 components get a fresh instance
# per request unless --max-instance-reuse-count says otherwise.
"$WASMTIME" serve -Scli -O pooling-allocator=y --addr 127.0.0.1:8792 "$HELLO" >/dev/null 2>&1 &
WASMTIME_PID=$!
"$WASMTIME" serve -Scli -O pooling-allocator=y --max-instance-reuse-count 1000000 \
    --addr 127.0.0.1:8794 "$HELLO" >/dev/null 2>&1 &
WASMTIME_REUSE_PID=$!
WORKERD_PID=""
if [ -n "$WORKERD" ]; then
    mkdir -p "$WORK/workerd"
    cat >"$WORK/workerd/worker.js" <<JS
export default {
  fetch() {
    return new Response("$HELLO_TEXT", {
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  },
};
JS
    cat >"$WORK/workerd/config.capnp" <<'CAPNP'
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "hello", worker = .hello)],
  sockets = [(name = "http", address = "127.0.0.1:8793", http = (), service = "hello")],
);

const hello :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2024-09-23",
);
CAPNP
    # One process: workerd runs its isolates on one event-loop thread per process.
    "$WORKERD" serve "$WORK/workerd/config.capnp" >/dev/null 2>"$WORK/workerd.log" &
    WORKERD_PID=$!
    # And one process per core, as workerd is deployed to use a machine: they accept on
    # one listening socket, opened here and handed to each (--socket-fd).
    if [ "$(nproc)" -gt 1 ]; then
        python3 - "$WORKERD" "$WORK/workerd/config.capnp" "$(nproc)" "$WORK/workerd-pids" <<'PY' \
            >/dev/null 2>>"$WORK/workerd.log" &
import signal, socket, subprocess, sys
workerd, config, count, pid_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 8797))
listener.listen(1024)
fd = listener.fileno()
procs = [subprocess.Popen([workerd, "serve", config, f"--socket-fd=http={fd}"], pass_fds=[fd])
         for _ in range(count)]
with open(pid_file + ".tmp", "w") as f:
    f.write(" ".join(str(p.pid) for p in procs))
__import__("os").rename(pid_file + ".tmp", pid_file)
signal.signal(signal.SIGTERM, lambda *_: [p.terminate() for p in procs])
for p in procs:
    p.wait()
PY
    fi
fi

wait_up http://127.0.0.1:8790/
wait_up http://127.0.0.1:8792/
wait_up http://127.0.0.1:8794/
check_hello http://127.0.0.1:8790/ axum
check_hello http://127.0.0.1:8791/dispatch/hello/ dispatcher
check_hello http://127.0.0.1:8792/ "wasmtime serve"
check_hello http://127.0.0.1:8794/ "wasmtime serve (reuse)"
WORKERD_CORES_PIDS=""
if [ -n "$WORKERD_PID" ]; then
    wait_up http://127.0.0.1:8793/
    check_hello http://127.0.0.1:8793/ workerd
    if [ "$(nproc)" -gt 1 ]; then
        wait_up http://127.0.0.1:8797/
        check_hello http://127.0.0.1:8797/ "workerd ($(nproc) processes)"
        WORKERD_CORES_PIDS=$(cat "$WORK/workerd-pids")
    fi
fi

# Binding costs: SDK scripts for a customer `bench` (the SDK baseline does no I/O).
D=http://127.0.0.1:8791
TOKEN=$("$BIN/dispatcher" --data "$WORK/data" customer create bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
upload() { # NAME GUEST METADATA
    curl -fsS -X PUT "$D/script/$1" -H "X-Customer-Token: $TOKEN" \
        -F "metadata=$3" -F "module=@$GUESTS/$2.wasm;type=application/wasm" >/dev/null
}
upload bench-hello hello '{}'
# Hello under a 50/50 split of two versions (the second a copy of hello with a custom
# section of its own): picking a version per request should cost nothing measurable.
upload bench-split hello '{}'
python3 bench/custom_section.py "$GUESTS/hello.wasm" "$WORK/split-v2.wasm" "split-v2"
SPLIT_V1=$(curl -fsS "$D/script/bench-split/versions" -H "X-Customer-Token: $TOKEN" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["items"][0]["id"])')
SPLIT_V2=$(curl -fsS -X PUT "$D/script/bench-split?deploy=false" -H "X-Customer-Token: $TOKEN" \
    -H 'content-type: application/wasm' --data-binary "@$WORK/split-v2.wasm" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["version"]["id"])')
curl -fsS -X POST "$D/script/bench-split/deployments" -H "X-Customer-Token: $TOKEN" \
    -H 'content-type: application/json' \
    -d "{\"strategy\":\"percentage\",\"versions\":[{\"version_id\":\"$SPLIT_V1\",\"percentage\":50},{\"version_id\":\"$SPLIT_V2\",\"percentage\":50}]}" >/dev/null
upload bench-sdk vars '{"bindings":[{"type":"secret_text","name":"API_KEY","text":"k"}]}'
upload bench-kv kv '{"bindings":[{"type":"kv_namespace","name":"CACHE","namespace":"bench"}]}'
upload bench-sql sql '{"bindings":[{"type":"d1","name":"DB","database":"bench"}]}'
upload bench-r2 r2 '{"bindings":[{"type":"r2_bucket","name":"FILES","bucket_name":"bench"}]}'
upload bench-hop service '{"bindings":[{"type":"service","name":"BACKEND","service":"bench-hello"}]}'
# Typed RPC: the rpc-caller guest makes 1 call per /greet and 3 per /area, so one call
# costs (area - greet) / 2, free of the request around it.
upload bench-rpc-callee rpc-callee '{}'
upload bench-rpc rpc-caller '{"bindings":[{"type":"service","name":"API","service":"bench-rpc-callee","entrypoint":"test:rpc/api"}]}'
# One binding call repeated CALLS times in a request against none (P6: the cost of a call,
# free of the request around it and of the JSON the example scripts above parse).
CALLS=10
upload bench-calls binding-calls '{"bindings":[{"type":"kv_namespace","name":"CACHE","namespace":"calls"},{"type":"d1","name":"DB","database":"calls"},{"type":"service","name":"BACKEND","service":"bench-hello"}]}'
curl -fsS -X POST "$D/dispatch/bench-calls/setup" >/dev/null
# The same hello reached over loopback HTTP by a plain wasi:http client (the `limits`
# test guest), and that guest doing nothing, as its baseline.
upload bench-fetch limits '{}'
LOOPBACK="$D/dispatch/bench-fetch/fetch?url=http%3A%2F%2F127.0.0.1%3A8791%2Fdispatch%2Fbench-hello%2F"
# Another tenant whose every request spins until its CPU limit stops it.
HOG_TOKEN=$("$BIN/dispatcher" --data "$WORK/data" customer create hog --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
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

# CPU and peak RSS of a server: of its one process, or summed over its processes (PIDS is
# a space-separated list). The peak of a run: each high-water mark is reset to the current
# RSS before it (`clear_refs` 5) and read after it (VmHWM).
cpu_ticks() { # PIDS
    local pid total=0
    for pid in $1; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
    echo "$total"
}
TICK=$(getconf CLK_TCK)
reset_peak() { local pid; for pid in $1; do echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true; done; }
peak_kb() {
    local pid total=0
    for pid in $1; do total=$((total + $(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status"))); done
    echo "$total"
}

# run NAME PIDS URL [WRK ARGS...] -> appends "name rps p50_us p99_us cpu_us_per_req peak_kb"
run() {
    local name=$1 pid=$2 url=$3
    shift 3
    wrk -t2 -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null  # warm up
    for round in $(seq "$ROUNDS"); do
        local before after out
        reset_peak "$pid"
        before=$(cpu_ticks "$pid")
        out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
        after=$(cpu_ticks "$pid")
        python3 - "$name" "$before" "$after" "$TICK" "$(peak_kb "$pid")" <<PY >>"$WORK/results"
import re, sys
name, before, after, tick, peak = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
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
print(name, rps, p50, p99, cpu_us, peak)
PY
    done
}

# Interleave the servers round by round so machine noise hits all of them alike.
for round in $(seq "$ROUNDS"); do
    ROUNDS=1 run axum "$AXUM_PID" http://127.0.0.1:8790/
    ROUNDS=1 run dispatcher "$DISPATCHER_PID" http://127.0.0.1:8791/dispatch/hello/
    ROUNDS=1 run hello-split "$DISPATCHER_PID" "$D/dispatch/bench-split/"
    ROUNDS=1 run wasmtime-pooling "$WASMTIME_PID" http://127.0.0.1:8792/
    ROUNDS=1 run wasmtime-reuse "$WASMTIME_REUSE_PID" http://127.0.0.1:8794/
    if [ -n "$WORKERD_PID" ]; then ROUNDS=1 run workerd "$WORKERD_PID" http://127.0.0.1:8793/; fi
    if [ -n "$WORKERD_CORES_PIDS" ]; then
        ROUNDS=1 run workerd-cores "$WORKERD_CORES_PIDS" http://127.0.0.1:8797/
    fi
    ROUNDS=1 run sdk-baseline "$DISPATCHER_PID" "$D/dispatch/bench-sdk/secret-length"
    ROUNDS=1 run kv-get "$DISPATCHER_PID" "$D/dispatch/bench-kv/key1"
    ROUNDS=1 run r2-get-4k "$DISPATCHER_PID" "$D/dispatch/bench-r2/files/object-4k"
    ROUNDS=1 run sql-point "$DISPATCHER_PID" "$D/dispatch/bench-sql/query" -s "$WORK/point-query.lua"
    ROUNDS=1 run service-hop "$DISPATCHER_PID" "$D/dispatch/bench-hop/"
    ROUNDS=1 run rpc-one "$DISPATCHER_PID" "$D/dispatch/bench-rpc/greet?name=a"
    ROUNDS=1 run rpc-three "$DISPATCHER_PID" "$D/dispatch/bench-rpc/area"
    ROUNDS=1 run calls-none "$DISPATCHER_PID" "$D/dispatch/bench-calls/kv?n=0"
    for call in kv sql hop; do
        ROUNDS=1 run "calls-$call" "$DISPATCHER_PID" "$D/dispatch/bench-calls/$call?n=$CALLS"
    done
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

# A componentize-js hello (JavaScript on StarlingMonkey, ~13 MB) answering the same text,
# built once from npm into the cache; prints its path, or fails (the rows are skipped).
js_component() {
    local dir="$CACHE/componentize-js" out engine version builtin wit_version
    out="$dir/hello-$COMPONENTIZE_JS_VERSION.wasm"
    if [ -s "$out" ]; then echo "$out"; return 0; fi
    command -v npm >/dev/null || { echo "npm not found" >&2; return 1; }
    if [ ! -x "$dir/node_modules/.bin/componentize-js" ]; then
        echo "installing componentize-js $COMPONENTIZE_JS_VERSION from npm into $dir..." >&2
        mkdir -p "$dir" &&
            npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
                "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >&2 || return 1
    fi
    # The engine exports wasi:http/incoming-handler at the WASI 0.2 patch version it was
    # built with; the WIT of WASI 0.2 comes with jco (a dependency), at its newest 0.2
    # patch version, the same interfaces: the copy is labelled with the engine's version.
    engine="$dir/node_modules/@bytecodealliance/componentize-js/lib/starlingmonkey_embedding.wasm"
    version=$(python3 -c 'import re,sys; print(re.search(rb"wasi:http/incoming-handler@(0\.2\.\d+)", open(sys.argv[1],"rb").read()).group(1).decode())' "$engine") || return 1
    builtin=$(ls -d "$dir"/node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.* | sort -V | tail -n1)
    [ -d "$builtin/wasi-http" ] || { echo "no WASI 0.2 WIT found under jco" >&2; return 1; }
    wit_version=$(basename "$builtin")
    rm -rf "$dir/src" && mkdir -p "$dir/src/wit" && cp -r "$builtin" "$dir/src/wit/deps" || return 1
    find "$dir/src/wit/deps" -name '*.wit' -exec sed -i "s/@$wit_version/@$version/g" {} + || return 1
    printf 'package bench:hello;\n\nworld hello {\n  include wasi:http/proxy@%s;\n}\n' "$version" \
        >"$dir/src/wit/world.wit"
    cat >"$dir/src/hello.js" <<JS
addEventListener("fetch", (event) =>
  event.respondWith(
    new Response("$HELLO_TEXT", {
      headers: { "content-type": "text/plain; charset=utf-8" },
    }),
  ),
);
JS
    echo "building the componentize-js hello (one-time, ~30 s)..." >&2
    (cd "$dir/src" && "$dir/node_modules/.bin/componentize-js" hello.js --wit wit -o "$out.tmp") >&2 &&
        mv "$out.tmp" "$out" && echo "$out"
}

# First requests (P4) and upload to first answer (P7). Every sample is a component of its
# own (the template with a custom section of its own), so every upload compiles. The first
# request after an upload is timed alone (curl's time_total, a new connection), against the
# same measure of a script already warm; then the server is stopped and started again on
# the same data dir, and the first request to each of those scripts is timed the same way.
put_wasm() { # NAME FILE -> http status; the answer is in $WORK/put.out
    curl -sS -o "$WORK/put.out" -w '%{http_code}' -X PUT "$D/script/$1" \
        -H "X-Customer-Token: $TOKEN" -H 'content-type: application/wasm' --data-binary "@$2"
}
tier_ups() { curl -fsS "$D/metrics" | awk '$1 == "dispatcher_tier_ups_total" {print $2}'; }
time_get() { curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' "$D/dispatch/$1/"; }
first_time() { # NAME -> seconds of one request, which must answer 200
    local status t
    read -r status t <<<"$(time_get "$1")"
    [ "$status" = 200 ] || echo "$1 answered $status" >&2
    echo "$t"
}
upload_to_answer() { # KEY NAME FILE: seconds from the start of the PUT to the first 200
    local key=$1 name=$2 t0 code status t first tries=0
    t0=$(now)
    code=$(put_wasm "$name" "$3")
    if [ "${code:0:1}" != 2 ]; then
        echo "upload of $name: $code $(cat "$WORK/put.out")" >&2
        return 1
    fi
    read -r status first <<<"$(time_get "$name")"
    while [ "$status" != 200 ] && [ "$tries" -lt 500 ]; do
        sleep 0.01
        read -r status t <<<"$(time_get "$name")"
        tries=$((tries + 1))
    done
    [ "$status" = 200 ] || { echo "$name never answered 200" >&2; return 1; }
    figure "${key}_upload_to_answer_s" "$(python3 -c "print($(now) - $t0)")"
    figure "${key}_first_after_upload_s" "$first"
}
for _ in $(seq 3); do time_get hello >/dev/null; done
for _ in $(seq 20); do figure steady_curl_s "$(first_time hello)"; done
for i in $(seq "$SAMPLES"); do
    python3 bench/custom_section.py "$GUESTS/hello.wasm" "$WORK/first-$i.wasm" "first-$i-$RANDOM"
    upload_to_answer hello "first-$i" "$WORK/first-$i.wasm"
done
JS_WASM=""
if [ "$JS_SAMPLES" -gt 0 ]; then
    if JS_WASM=$(js_component); then
        for i in $(seq "$JS_SAMPLES"); do
            # Each upload to a server done with the previous one's optimized compile (the
            # background lane), so the samples time the same thing.
            for _ in $(seq 1200); do [ "$(tier_ups)" -ge $((i - 1)) ] && break; sleep 0.1; done
            python3 bench/custom_section.py "$JS_WASM" "$WORK/js-$i.wasm" "js-$i-$RANDOM"
            upload_to_answer js "js-$i" "$WORK/js-$i.wasm" || { JS_WASM=""; break; }
        done
    else
        echo "no componentize-js component (see above): its upload rows are skipped" >&2
        JS_WASM=""
    fi
fi
kill "$DISPATCHER_PID"
wait "$DISPATCHER_PID" || true
T0=$(now)
start_dispatcher
wait_up http://127.0.0.1:8791/healthz
figure restart_s "$(python3 -c "print($(now) - $T0)")"
figure restart_rss_kb "$(rss_kb "$DISPATCHER_PID")"
for i in $(seq "$SAMPLES"); do figure first_after_restart_s "$(first_time "first-$i")"; done
if [ -n "$JS_WASM" ]; then figure js_first_after_restart_s "$(first_time js-1)"; fi

export ROUNDS DURATION CONNECTIONS IDLE_WAIT WASMTIME_VERSION WORKERD_VERSION CALLS
WORKERD_VERSION=$([ -n "$WORKERD_PID" ] && echo "$WORKERD_VERSION" || echo "")
NPROC=$(nproc) MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
python3 - "$WORK/results" "$WORK/figures" "$ENFORCEMENT" <<'PY'
import datetime, os, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *values = line.split()
    rows.setdefault(name, []).append([float(v) for v in values])
med = {n: [statistics.median(col) for col in zip(*r)] for n, r in rows.items()}
figures = {}
for line in open(sys.argv[2]):
    key, value = line.split()
    figures.setdefault(key, []).append(float(value))
fig = {k: statistics.median(v) for k, v in figures.items()}
env = os.environ
connections = int(env["CONNECTIONS"])
wt = f"wasmtime serve {env['WASMTIME_VERSION']}"
peers = [("axum", "bare axum"), ("dispatcher", "dispatcher"),
         ("wasmtime-pooling", f"{wt}, pooling, fresh instance"),
         ("wasmtime-reuse", f"{wt}, pooling, instance reuse")]
if "workerd" in med:
    peers.append(("workerd", f"workerd {env['WORKERD_VERSION']} (1 process)"))
if "workerd-cores" in med:
    peers.append(("workerd-cores", f"workerd {env['WORKERD_VERSION']} ({env['NPROC']} processes)"))
d, a = med["dispatcher"], med["axum"]
print(f"{'server':<48}{'req/s':>9}{'p50 µs':>9}{'p99 µs':>9}{'CPU µs/req':>12}{'peak RSS MiB':>14}")
for key, label in peers:
    rps, p50, p99, cpu, peak = med[key]
    print(f"{label:<48}{rps:>9.0f}{p50:>9.0f}{p99:>9.0f}{cpu:>12.1f}{peak / 1024:>14.1f}")
print(f"(medians of {len(rows['axum'])} rounds of {env['DURATION']} s, {connections} connections, wrk -t2;")
print(f" peak RSS = VmHWM during the round, reset before it; summed over a server's processes)")
print()
for key, label in peers:
    if key != "dispatcher":
        m = med[key]
        print(f"dispatcher vs {label}: {d[0]/m[0]:.2f}x req/s, {d[3]/m[3]:.2f}x CPU per request")
print()
print(f"{'binding':<16}{'req/s':>10}{'p50 µs':>10}{'CPU µs/req':>12}{'added CPU µs':>14}{'added p50 µs':>14}")
base = med["sdk-baseline"]
for name in ("sdk-baseline", "kv-get", "r2-get-4k", "sql-point", "service-hop"):
    rps, p50, p99, cpu, _ = med[name]
    print(f"{name:<16}{rps:>10.0f}{p50:>10.0f}{cpu:>12.1f}{cpu - base[3]:>14.1f}{p50 - base[1]:>14.0f}")
print()
none = med["calls-none"][3]
print(f"one binding call, from {env['CALLS']} in a request against none ({none:.1f} µs CPU/req):")
per_call_us = {}
for name, label, goal in (("kv", "KV get", 10), ("sql", "SQL point query", 15),
                          ("hop", "service hop to hello, its run included", 30)):
    per_call = (med[f"calls-{name}"][3] - none) / int(env["CALLS"])
    per_call_us[name] = per_call
    print(f"  P6 {label:<40}{per_call:>8.1f} µs CPU   (goal <= {goal})")
hop_call = (med["calls-hop"][3] - none) / int(env["CALLS"])
rpc_call = (med["rpc-three"][3] - med["rpc-one"][3]) / 2
print(f"  typed RPC call (a fresh callee instance, values copied)  {rpc_call:>8.1f} µs CPU;"
      f" / the HTTP-shaped hop {rpc_call / hop_call:.2f} (goal < 0.5)  {'pass' if rpc_call < hop_call / 2 else 'MISS'}")
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
split = med["hello-split"]
print(f"versions: hello under a 50/50 split of two versions {split[0]:.0f} req/s, {split[3]:.1f} µs CPU,")
print(f"{split[0] / d[0]:.3f}x the single version's req/s (issue 16: within 3%, >= 0.97).")
print()
solo, beside = med["dispatcher"], med["hello-beside-hog"]
print(f"isolation: hello alone {solo[0]:.0f} req/s, p50 {solo[1]:.0f} µs; beside a tenant spinning at its")
print(f"CPU limit on {connections} connections: {beside[0]:.0f} req/s, p50 {beside[1]:.0f} µs")
print(f"-> hello keeps {beside[0]/solo[0]*100:.0f}% of its solo throughput (target >= 50%).")
if sys.argv[3]:
    share = float(sys.argv[3])
    print()
    print(f"limits enforcement (CPU metering, memory limiter, epoch callback): {share:.1f}% of the")
    print(f"dispatcher's CPU on hello, about {d[3] * share / 100:.1f} µs of its {d[3]:.1f} µs per request (perf);")
    print(f"hello is CPU-bound, so it costs about the same share of hello's throughput.")

ms = lambda seconds: seconds * 1e3
steady = fig["steady_curl_s"]
n_first = len(figures["hello_first_after_upload_s"])
print()
print(f"first requests, one curl each (a new connection), medians; a warm hello: {ms(steady):.2f} ms")
print(f"  first request after an upload ({n_first} fresh hellos): {ms(fig['hello_first_after_upload_s']):.2f} ms")
print(f"  restart on the same data dir: /healthz after {fig['restart_s']:.2f} s, idle RSS then {fig['restart_rss_kb'] / 1024:.1f} MiB;")
print(f"  first request to each of those {n_first} scripts after it: {ms(fig['first_after_restart_s']):.2f} ms")
print(f"upload to first answer (start of the PUT to the first 200 of a dispatch), medians:")
print(f"  hello ({n_first} uploads): {ms(fig['hello_upload_to_answer_s']):.0f} ms")
if "js_upload_to_answer_s" in fig:
    print(f"  componentize-js hello ({len(figures['js_upload_to_answer_s'])} upload(s)): {fig['js_upload_to_answer_s']:.2f} s;"
          f" its first request after the restart: {ms(fig['js_first_after_restart_s']):.1f} ms")
print(f"dispatcher with --demo: /healthz {fig['first_start_s']:.2f} s after a first start (the six first-party")
print(f"services compiled), idle RSS {fig['idle_rss_kb'] / 1024:.1f} MiB {env['IDLE_WAIT']} s after that, before any request")

wp, wr = med["wasmtime-pooling"], med["wasmtime-reuse"]
goals = [
    ("P1", "dispatcher req/s / wasmtime serve (pooling, fresh instance)", d[0] / wp[0], ">=", 3),
]
if "workerd" in med:
    goals.append(("P1", "dispatcher req/s / workerd (1 process)", d[0] / med["workerd"][0], ">=", 2))
if "workerd-cores" in med:
    goals.append(("P1", f"dispatcher req/s / workerd ({env['NPROC']} processes, one per core)",
                  d[0] / med["workerd-cores"][0], ">=", 2))
goals += [
    ("P2", "dispatcher CPU/req / wasmtime serve (instance reuse)", d[3] / wr[3], "<=", 1.6),
    ("P3", f"dispatcher p99 / bare axum p99 at {connections} connections", d[2] / a[2], "<=", 2),
    ("P3", f"dispatcher --demo idle RSS, MiB ({env['IDLE_WAIT']} s after /healthz)", fig["idle_rss_kb"] / 1024, "<=", 64),
    ("P4", "first request after an upload / warm request", fig["hello_first_after_upload_s"] / steady, "<=", 2),
    ("P4", "first request after a restart / warm request", fig["first_after_restart_s"] / steady, "<=", 2),
    ("P6", "SDK script with no I/O: CPU over hello's, µs", med["sdk-baseline"][3] - d[3], "<=", 3),
    ("P6", "one KV get (10 in a request), CPU µs", per_call_us["kv"], "<=", 10),
    ("P6", "one SQL point query (10 in a request), CPU µs", per_call_us["sql"], "<=", 15),
    ("P6", "one service hop to hello, its run included, CPU µs", per_call_us["hop"], "<=", 30),
    ("P6", "gateway, session remembered: added CPU, µs", gateway[3] - direct[3], "<=", 10),
    ("P6", "gateway, auth run each time: added CPU, µs", checked[3] - direct[3], "<=", 60),
    ("P7", "hello: upload to first answer, ms", ms(fig["hello_upload_to_answer_s"]), "<=", 300),
]
if "js_upload_to_answer_s" in fig:
    goals.append(("P7", "componentize-js hello: upload to first answer, s", fig["js_upload_to_answer_s"], "<=", 3))
else:
    print("(no componentize-js component: its P7 row is skipped)")
print()
print("goals (issue 15)")
for point, what, value, op, target in goals:
    ok = value >= target if op == ">=" else value <= target
    print(f"  {point}  {what:<62}{value:>9.2f}  target {op} {target:<5} {'PASS' if ok else 'MISS'}")
if connections != 64:
    print(f"  (P3 is stated at 64 connections; this run used {connections})")

print()
print(f"Markdown ({datetime.date.today()}, {env['MACHINE']}; {len(rows['axum'])} x {env['DURATION']} s rounds, {connections} connections):")
print()
print("| server | req/s | CPU µs/req | p99 ms | peak RSS MiB | dispatcher req/s ÷ server's |")
print("|---|---:|---:|---:|---:|---:|")
for key, label in peers:
    rps, p50, p99, cpu, peak = med[key]
    ratio = "—" if key == "dispatcher" else f"{d[0] / rps:.2f}"
    print(f"| {label} | {rps:,.0f} | {cpu:.1f} | {p99 / 1e3:.2f} | {peak / 1024:.1f} | {ratio} |")
PY
