# Sourced by the benchmark scripts: at exit, stop every server the script started (by
# PID; workerd drains its connections first), wait up to 10 s for each to be gone so the
# ports are free for the next run, and remove the script's $WORK directory.
cleanup() {
    local pid pids
    pids=$(jobs -p)
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $pids; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
