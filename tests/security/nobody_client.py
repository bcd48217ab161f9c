"""A raw HTTP client for the security tests, run as an unprivileged user (stdlib only: it is
started with the system python as uid 65534). Reads one JSON spec on stdin, prints one JSON result.

spec: {"socket": path, "head": str, "body": str, "body_fill": [prefix, byte, count, suffix] (a big
body made here, not piped), "idle": [n] (open n silent connections first, keep them), "timeout": s}
"""

import json
import os
import socket
import sys
import time


def main():
    spec = json.load(sys.stdin)
    out = {"uid": os.getuid()}
    held = []
    for _ in range(spec.get("idle", 0)):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(spec["socket"])
        held.append(c)
    if held:
        time.sleep(0.3)
    body = spec.get("body", "").encode("utf-8", "surrogateescape")
    if spec.get("body_hex"):
        body = bytes.fromhex(spec["body_hex"])
    if spec.get("body_fill"):
        pre, byte, n, suf = spec["body_fill"]
        body = pre.encode() + byte.encode() * n + suf.encode()
    head = spec["head"].replace("{len}", str(len(body))).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(spec.get("timeout", 60))
    s.connect(spec["socket"])
    t0 = time.monotonic()
    try:
        s.sendall(head + body)
    except OSError as e:
        out["send_error"] = e.__class__.__name__
    raw = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    except OSError as e:
        out["recv_error"] = e.__class__.__name__
    out["elapsed"] = round(time.monotonic() - t0, 3)
    s.close()
    if raw:
        h, _, payload = raw.partition(b"\r\n\r\n")
        out["status"] = int(h.split()[1])
        try:
            out["body"] = json.loads(payload)
        except ValueError:
            out["raw"] = payload[:500].decode(errors="replace")
    for c in held:
        c.close()
    print(json.dumps(out))


main()
