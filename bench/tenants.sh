#!/usr/bin/env bash
# Many tenants (issue 15, P5): a dispatcher with N distinct components uploaded through the
# API (default 1,000; TENANTS=10000 for the goal's size). Each tenant uploads the default
# template `hello` made unique by a custom section of its own (bench/custom_section.py), so
# every upload is composed with the platform module and compiled, as a real tenant's would
# be. There is no cap on the number of scripts a customer owns, so the scripts are spread
# over CUSTOMERS customers (default: one per tenant), created with the CLI before the start.
# Prints:
#   - the uploads: total time, server CPU per upload (the server's own, and with its
#     compile workers), artifacts on disk;
#   - the idle RSS after all uploads (IDLE_WAIT s after the last one);
#   - req/s (and p99, CPU µs/req) of one tenant against requests spread over random
#     tenants (a wrk Lua script picking a random tenant for every request), in interleaved
#     rounds, and their ratio (goal >= 0.7);
#   - restart to serving: the server stopped (SIGTERM) and started again on the same data
#     dir; the time until /healthz answers (the first byte of any answer) and the idle RSS
#     then, before any request to a script; the time until a random tenant answers; and,
#     in a second restart polling only a random tenant, the time until it answers (goal at
#     10,000 tenants: <= 2 s; idle RSS <= 256 MiB).
# It prints; it asserts nothing about speed.
#
#   bash bench/tenants.sh                         # 1,000 tenants
#   TENANTS=10000 PARALLEL=4 bash bench/tenants.sh
#   TENANTS=200 ROUNDS=1 DURATION=3 BUILD=0 bash bench/tenants.sh   # quick
set -euo pipefail
cd "$(dirname "$0")/.."

TENANTS=${TENANTS:-1000}
CUSTOMERS=${CUSTOMERS:-$TENANTS}
PARALLEL=${PARALLEL:-3}        # uploads in flight at once (compiles still run one at a time)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
IDLE_WAIT=${IDLE_WAIT:-5}
BUILD=${BUILD:-1}              # 0: use the release binaries already in the target dir
PORT=${PORT:-8798}   # abuse.sh uses 8795, memory_back.sh 8796
TARGET=${CARGO_TARGET_DIR:-target}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ "$BUILD" = 1 ]; then cargo build --release -j2 -p dispatcher >&2; fi
DISPATCHER="$TARGET/release/dispatcher"
GUESTS=$(dirname "$(ls -t "$TARGET"/release/build/dispatcher-*/out/hello.wasm | head -n1)")
WORK=$(mktemp -d)
source bench/cleanup.sh  # stops our servers and removes $WORK at exit
D="http://127.0.0.1:$PORT"

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$(now)"; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# "anonymous X MiB, file-backed Y MiB": what the RSS is made of (file-backed = mapped files,
# such as compiled artifacts)
rss_parts() { awk '/^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} END {printf "anonymous %.1f MiB, file-backed %.1f MiB", a / 1024, f / 1024}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }                   # the server itself
cpu_ticks_all() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }   # + reaped compile workers
TICK=$(getconf CLK_TCK)
start_server() {
    "$DISPATCHER" --data "$WORK/data" serve --listen "127.0.0.1:$PORT" >/dev/null 2>>"$WORK/server.log" &
    SERVER_PID=$!
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }
# poll URL T0: wait until URL answers 200; prints the seconds since T0 (from `now`)
poll() {
    python3 - "$1" "$2" <<'PY'
import http.client, sys, time, urllib.parse
url, t0 = urllib.parse.urlsplit(sys.argv[1]), float(sys.argv[2])
deadline = time.time() + 120
while time.time() < deadline:
    try:
        c = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
        c.request("GET", url.path)
        if c.getresponse().status == 200:
            print(f"{time.time() - t0:.3f}")
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.005)
sys.exit(f"{sys.argv[1]} did not answer 200 within 120 s")
PY
}
random_tenant() { echo "t-$(( (RANDOM * 32768 + RANDOM) % TENANTS + 1 ))"; }

# Customers first, with the CLI, before the server starts.
echo "creating $CUSTOMERS customers..." >&2
T0=$(now)
for i in $(seq "$CUSTOMERS"); do
    "$DISPATCHER" --data "$WORK/data" customer create "tenant-$i" --json 2>/dev/null
done | python3 -c 'import json, sys
dec = json.JSONDecoder(); text = sys.stdin.read(); i = 0
while i < len(text):
    doc, i = dec.raw_decode(text, i)
    print(doc["token"])
    while i < len(text) and text[i].isspace(): i += 1' >"$WORK/tokens"
echo "created $(wc -l <"$WORK/tokens") customers in $(elapsed "$T0") s" >&2

start_server
poll "$D/healthz" "$(now)" >/dev/null
sleep 1
RSS_BEFORE=$(rss_mib "$SERVER_PID")

# The uploads, PARALLEL at a time; a 503 (compile queue full) is retried after Retry-After.
echo "uploading $TENANTS tenants, $PARALLEL at a time..." >&2
CPU0=$(cpu_ticks "$SERVER_PID")
CPU0_ALL=$(cpu_ticks_all "$SERVER_PID")
T0=$(now)
python3 - "$D" "$GUESTS/hello.wasm" "$WORK/tokens" "$TENANTS" "$PARALLEL" <<'PY' >"$WORK/uploads"
import concurrent.futures, http.client, sys, time, urllib.parse
sys.path.insert(0, "bench")
from custom_section import unique

base, template_path, tokens_path, tenants, parallel = sys.argv[1:6]
url = urllib.parse.urlsplit(base)
template = open(template_path, "rb").read()
tokens = open(tokens_path).read().split()
tenants, parallel = int(tenants), int(parallel)

def upload(i):
    body = unique(template, f"tenant {i}")
    retries = 0
    while True:
        c = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
        c.request("PUT", f"/script/t-{i}", body=body, headers={
            "X-Customer-Token": tokens[(i - 1) % len(tokens)],
            "Content-Type": "application/wasm"})
        r = c.getresponse()
        answer = r.read()
        c.close()
        if r.status == 503 and retries < 20:
            retries += 1
            time.sleep(float(r.getheader("Retry-After") or 1))
            continue
        if r.status not in (200, 201):
            raise SystemExit(f"upload t-{i}: {r.status} {answer[:300]!r}")
        return retries

started = time.time()
retries = 0
with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
    for done, r in enumerate(pool.map(upload, range(1, tenants + 1)), 1):
        retries += r
        if done % 100 == 0 or done == tenants:
            print(f"  {done}/{tenants} uploaded, {time.time() - started:.0f} s", file=sys.stderr)
print(retries)
PY
UPLOAD_S=$(elapsed "$T0")
CPU1=$(cpu_ticks "$SERVER_PID")
CPU1_ALL=$(cpu_ticks_all "$SERVER_PID")
RETRIES=$(cat "$WORK/uploads")
ARTIFACTS=$(find "$WORK/data/artifacts" -name '*.cwasm' | wc -l)
sleep "$IDLE_WAIT"
RSS_AFTER_UPLOADS=$(rss_mib "$SERVER_PID")
RSS_AFTER_UPLOADS_PARTS=$(rss_parts "$SERVER_PID")
for _ in 1 2 3; do
    body=$(curl -fsS "$D/dispatch/$(random_tenant)/")
    [ "$body" = "Hello! This module is provided by the platform" ] || { echo "a tenant answered '$body'" >&2; exit 1; }
done

# One tenant against a random tenant per request, interleaved rounds.
cat >"$WORK/random.lua" <<LUA
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + id)
end
request = function()
  return wrk.format("GET", "/dispatch/t-" .. math.random($TENANTS) .. "/")
end
LUA
measure() { # NAME [WRK ARGS...] -> "name rps p99_us cpu_us_per_req" in $WORK/results
    local name=$1 before out
    shift
    before=$(cpu_ticks "$SERVER_PID")
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
    python3 - "$name" "$before" "$(cpu_ticks "$SERVER_PID")" "$TICK" "$out" <<'PY' >>"$WORK/results"
import re, sys
name, before, after, tick, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def us(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
assert not errors, f"{name}: {errors.group(0)}"
requests = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p99 = us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
print(name, rps, p99, (after - before) / tick * 1e6 / requests)
PY
}
wrk -t2 -c"$CONNECTIONS" -d2s "$D/dispatch/t-1/" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s -s "$WORK/random.lua" "$D/" >/dev/null
for _ in $(seq "$ROUNDS"); do
    measure one "$D/dispatch/t-1/"
    measure random -s "$WORK/random.lua" "$D/"
done
RSS_AFTER_LOAD=$(rss_mib "$SERVER_PID")

# Restart 1: /healthz, the idle RSS before any script runs, then a random tenant.
stop_server
T0=$(now)
start_server
HEALTHZ_S=$(poll "$D/healthz" "$T0")
RSS_RESTART=$(rss_mib "$SERVER_PID")
RSS_RESTART_PARTS=$(rss_parts "$SERVER_PID")
FIRST_TENANT_S=$(poll "$D/dispatch/$(random_tenant)/" "$T0")
sleep "$IDLE_WAIT"
RSS_RESTART_IDLE=$(rss_mib "$SERVER_PID")
# Restart 2: nothing asked but a random tenant, from the start.
stop_server
T0=$(now)
start_server
TENANT_ONLY_S=$(poll "$D/dispatch/$(random_tenant)/" "$T0")
stop_server

CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
python3 - "$WORK/results" <<PY
import datetime, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *values = line.split()
    rows.setdefault(name, []).append([float(v) for v in values])
med = {n: [statistics.median(col) for col in zip(*r)] for n, r in rows.items()}
tenants, upload_s = $TENANTS, $UPLOAD_S
cpu = ($CPU1 - $CPU0) / $TICK / tenants * 1e3
cpu_all = ($CPU1_ALL - $CPU0_ALL) / $TICK / tenants * 1e3
print(f"{tenants} tenants (distinct components) over $CUSTOMERS customers, uploaded $PARALLEL at a time:")
print(f"  {upload_s:.1f} s in all, {upload_s / tenants * 1e3:.0f} ms per upload; {$RETRIES} retries after 503")
print(f"  server CPU per upload: {cpu:.1f} ms itself, {cpu_all:.1f} ms with its compile workers")
print(f"  $ARTIFACTS compiled artifacts on disk (the tenants' and the first-party services')")
print(f"idle RSS: {$RSS_BEFORE} MiB before the uploads, {$RSS_AFTER_UPLOADS} MiB $IDLE_WAIT s after the last")
print(f"  ($RSS_AFTER_UPLOADS_PARTS), {$RSS_AFTER_LOAD} MiB after the load below")
print()
print(f"{'':<30}{'req/s':>10}{'p99 ms':>10}{'CPU µs/req':>12}   (medians of {len(rows['one'])} rounds of $DURATION s, $CONNECTIONS connections)")
for name, label in (("one", "one tenant"), ("random", f"a random tenant of {tenants}")):
    rps, p99, c = med[name]
    print(f"{label:<30}{rps:>10.0f}{p99 / 1e3:>10.2f}{c:>12.1f}")
ratio = med["random"][0] / med["one"][0]
print()
print(f"restart on the same data dir (SIGTERM, start again):")
print(f"  /healthz answers after {$HEALTHZ_S:.2f} s; idle RSS then {$RSS_RESTART} MiB (no script has run;")
print(f"  $RSS_RESTART_PARTS),")
print(f"  {$RSS_RESTART_IDLE} MiB $IDLE_WAIT s after the first tenant's request")
print(f"  a random tenant answers after {$FIRST_TENANT_S:.2f} s (asked after /healthz),")
print(f"  {$TENANT_ONLY_S:.2f} s when it is the only thing asked from the start")
print()
at = "" if tenants >= 10000 else f" at {tenants:,} tenants (the goal is stated at 10,000)"
goals = [
    ("random tenant req/s / one tenant req/s", ratio, ">=", 0.7, ""),
    ("restart to a random tenant's answer, s", $TENANT_ONLY_S, "<=", 2, at),
    ("idle RSS after the uploads, MiB", $RSS_AFTER_UPLOADS, "<=", 256, at),
]
print("goals (issue 15, P5)")
for what, value, op, target, note in goals:
    ok = value >= target if op == ">=" else value <= target
    print(f"  {what:<42}{value:>9.2f}  target {op} {target:<4} {'PASS' if ok else 'MISS'}{note}")

print()
print(f"Markdown ({datetime.date.today()}, $(nproc) cores, $CPU_MODEL; {tenants:,} tenants):")
print()
print("| figure | value | goal |")
print("|---|---:|---|")
rows = [
    (f"upload, per tenant ({tenants:,} in {upload_s:.0f} s, $PARALLEL at a time)", f"{upload_s / tenants * 1e3:.0f} ms", ""),
    ("server CPU per upload, its compile workers included", f"{cpu_all:.1f} ms", ""),
    ("idle RSS after the uploads", f"{$RSS_AFTER_UPLOADS} MiB", "≤ 256 MiB at 10,000"),
    ("one tenant, req/s", f"{med['one'][0]:,.0f}", ""),
    ("a random tenant per request, req/s", f"{med['random'][0]:,.0f}", ""),
    ("random ÷ one", f"{ratio:.2f}", "≥ 0.7"),
    ("restart: /healthz answers after", f"{$HEALTHZ_S:.2f} s", ""),
    ("restart: idle RSS before any script runs", f"{$RSS_RESTART} MiB", ""),
    ("restart: a random tenant answers after", f"{$TENANT_ONLY_S:.2f} s", "≤ 2 s at 10,000"),
]
for what, value, goal in rows:
    print(f"| {what} | {value} | {goal} |")
PY
