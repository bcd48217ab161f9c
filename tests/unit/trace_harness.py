"""Kernel oracle for the packet tracer. Run as a script inside `unshare --net` (a private,
nameless network namespace): reads {"ruleset": nft-json, "interfaces": {...}, "routes": [...],
"packets": [...]} on stdin, builds one veth per config interface, loads the ruleset plus a
table that sets nftrace, injects each packet (AF_PACKET, valid checksums) into its ingress
interface, and prints the kernel's decision per packet from `nft monitor trace`:
{"verdict": accept|drop|no-route, "rule": comment or "<chain> policy"}."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time


def sh(*args, input=None):
    r = subprocess.run(args, input=input, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(args)}: {r.stderr}")
    return r.stdout


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


ICMP4 = {"echo-request": 8, "echo-reply": 0, "destination-unreachable": 3, "time-exceeded": 11}
ICMP6 = {"echo-request": 128, "echo-reply": 129, "destination-unreachable": 1, "packet-too-big": 2,
         "time-exceeded": 3}


def l4(p: dict, src, dst, sport: int) -> tuple[int, bytes]:
    fam = src.version
    if fam == 4:
        pseudo = lambda proto, n: src.packed + dst.packed + struct.pack("!BBH", 0, proto, n)  # noqa: E731
    else:
        pseudo = lambda proto, n: src.packed + dst.packed + struct.pack("!I3xB", n, proto)  # noqa: E731
    if p["proto"] == "tcp":
        flags = 0x02
        hdr = struct.pack("!HHIIBBHHH", sport, p["dport"], 1, 0, 5 << 4, flags, 1024, 0, 0)
        c = csum(pseudo(6, len(hdr)) + hdr)
        return 6, hdr[:16] + struct.pack("!H", c) + hdr[18:]
    if p["proto"] == "udp":
        hdr = struct.pack("!HHHH", sport, p["dport"], 8 + 4, 0) + b"test"
        c = csum(pseudo(17, len(hdr)) + hdr) or 0xFFFF
        return 17, hdr[:6] + struct.pack("!H", c) + hdr[8:]
    if fam == 4:
        hdr = struct.pack("!BBHHH", ICMP4[p.get("icmp_type", "echo-request")], 0, 0, sport, 1) + b"ping"
        return 1, hdr[:2] + struct.pack("!H", csum(hdr)) + hdr[4:]
    hdr = struct.pack("!BBHHH", ICMP6[p.get("icmp_type", "echo-request")], 0, 0, sport, 1) + b"ping"
    return 58, hdr[:2] + struct.pack("!H", csum(pseudo(58, len(hdr)) + hdr)) + hdr[4:]


def src_mac(k: int) -> bytes:
    """A source MAC unique to packet k: its trace is told apart from late lines of earlier ones."""
    return b"\x02\x00" + struct.pack("!I", k + 1)


def frame(p: dict, dst_mac: bytes, sport: int, k: int = 0) -> bytes:
    src, dst = ipaddress.ip_address(p["src"]), ipaddress.ip_address(p["dst"])
    proto, payload = l4(p, src, dst, sport)
    if src.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), sport & 0xFFFF, 0, 64, proto, 0,
                         src.packed, dst.packed)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        ethertype = 0x0800
    else:
        ip = struct.pack("!IHBB", 6 << 28, len(payload), proto, 64) + src.packed + dst.packed
        ethertype = 0x86DD
    return dst_mac + src_mac(k) + struct.pack("!H", ethertype) + ip + payload


TRACE = re.compile(r"trace id (\w+) inet talgate (\S+) (rule .*\(verdict (\w+)[^)]*\)|policy (\w+))")


def decide(lines: list[str], k: int) -> dict | None:
    """Packet k's fate, or None while its trace is incomplete."""
    # Its trace id: its packet line carries its own source MAC (the kernel's own MLD/ND traffic
    # and late lines of earlier packets are traced in between).
    mac = "ether saddr " + ":".join(f"{b:02x}" for b in src_mac(k)) + " "
    first = next((m.group(1) for line in lines if mac in line
                  and (m := re.search(r"trace id (\w+) ", line))), None)
    for line in lines:
        m = TRACE.search(line)
        if not m:
            continue
        tid, chain = m.group(1), m.group(2)
        if tid != first or chain.endswith("_nat") or chain == "output":
            continue
        if chain == "antispoof" and "drop" not in (m.group(4), m.group(5)):
            continue  # accept in this prerouting chain is not final: input/forward follow
        if m.group(5):
            return {"verdict": m.group(5), "rule": f"{chain} policy"}
        if m.group(4) in ("accept", "drop"):
            c = re.search(r'comment "([^"]*)"', line)
            return {"verdict": m.group(4), "rule": c.group(1) if c else None}
    return None


def main() -> None:
    job = json.load(sys.stdin)
    sh("ip", "link", "set", "lo", "up")
    macs = {}
    for i, (name, addrs) in enumerate(job["interfaces"].items()):
        sh("ip", "link", "add", name, "type", "veth", "peer", "name", f"peer{i}")
        for dev in (name, f"peer{i}"):
            sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.accept_dad=0")
            sh("ip", "link", "set", dev, "up")
        for a in addrs:
            sh("ip", "addr", "add", a, "dev", name, *(["nodad"] if ":" in a else []))
        mac = json.loads(sh("ip", "-j", "link", "show", name))[0]["address"]
        macs[name] = (bytes.fromhex(mac.replace(":", "")), f"peer{i}")
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
    for r in job["routes"]:
        sh("ip", "route", "add", *r.split())
    sh("nft", "-j", "-f", "-", input=json.dumps(job["ruleset"]))
    sh("nft", "-f", "-", input="table inet tgtrace {\n chain pre { type filter hook prerouting priority -400\n"
                                 " meta nftrace set 1\n }\n}\n")
    mon = subprocess.Popen(["stdbuf", "-oL", "nft", "monitor", "trace"], stdout=subprocess.PIPE, text=True)
    seen: list[str] = []
    threading.Thread(target=lambda: seen.extend(iter(mon.stdout.readline, "")), daemon=True).start()
    time.sleep(0.3)
    out: list[dict | None] = []
    for k, p in enumerate(job["packets"]):
        mac, peer = macs[p["iif"]]
        start = len(seen)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((peer, 0))
        s.send(frame(p, mac, 20000 + k, k))
        s.close()
        deadline = time.monotonic() + 0.5  # a routed packet is decided in well under that, even on a busy box
        while (res := decide(seen[start:], k)) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        out.append(res)
    # A marker packet last: once its trace is read, every earlier packet's lines were too (one
    # netlink socket delivers in order), so a packet undecided after 0.5 s on a very busy box is
    # looked up again in the whole trace before it is called not routed.
    if job["packets"]:
        k = len(job["packets"])
        p0 = dict(job["packets"][0], proto="udp", dport=9)
        mac, peer = macs[p0["iif"]]
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((peer, 0))
        s.send(frame(p0, mac, 20000 + k, k))
        s.close()
        marker = "ether saddr " + ":".join(f"{b:02x}" for b in src_mac(k)) + " "
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(marker in x for x in list(seen)):
            time.sleep(0.02)
    out = [r or decide(list(seen), k) or {"verdict": "no-route", "rule": None} for k, r in enumerate(out)]
    mon.terminate()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
