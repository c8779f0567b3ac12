"""Clients for bench/abuse.sh: what an attacker and a canary do.

  silent HOST PORT SRC N SECONDS   open N connections from address SRC, send nothing,
                                   hold them SECONDS; print how many the server accepted
                                   and how many it had closed by the end
  canary URL SRC N                 N sequential GETs from SRC (one keep-alive connection,
                                   reopened on failure); print "ok_ratio p50_ms p99_ms rps"
  bomb FUNCTIONS OPS PATH          write a valid component whose one core module holds
                                   FUNCTIONS functions of OPS instructions pairs each: slow
                                   to compile, under the pre-check's function limit
"""
import http.client
import socket
import statistics
import sys
import time
import urllib.parse


def silent(host, port, src, n, seconds):
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        try:
            s.connect((host, port))
            sockets.append(s)
        except OSError:
            s.close()
    time.sleep(seconds)
    closed = 0
    for s in sockets:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print(len(sockets), closed)


def canary(url, src, n):
    parts = urllib.parse.urlsplit(url)
    path = parts.path + ("?" + parts.query if parts.query else "")

    def connect():
        return http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=5, source_address=(src, 0)
        )

    conn = connect()
    latencies, ok = [], 0
    started = time.monotonic()
    for _ in range(n):
        t0 = time.monotonic()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            ok += response.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = connect()
        latencies.append((time.monotonic() - t0) * 1000)
    elapsed = time.monotonic() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{ok / n:.4f} {statistics.median(latencies):.2f} {p99:.2f} {n / elapsed:.0f}")


def leb128(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def section(section_id, payload):
    return bytes([section_id]) + leb128(len(payload)) + payload


def bomb(functions, ops, path):
    # Each body: no locals, `ops` times `i32.const 1; drop`, end.
    body = b"\x00" + b"\x41\x01\x1a" * ops + b"\x0b"
    module = b"\x00asm\x01\x00\x00\x00"
    module += section(1, leb128(1) + b"\x60\x00\x00")
    module += section(3, leb128(functions) + b"\x00" * functions)
    module += section(10, leb128(functions) + (leb128(len(body)) + body) * functions)
    component = b"\x00asm\x0d\x00\x01\x00" + section(1, module)
    with open(path, "wb") as f:
        f.write(component)


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "silent":
        silent(args[0], int(args[1]), args[2], int(args[3]), float(args[4]))
    elif kind == "bomb":
        bomb(int(args[0]), int(args[1]), args[2])
    else:
        canary(args[0], args[1], int(args[2]))
