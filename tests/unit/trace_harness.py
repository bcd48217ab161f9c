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


def frame(p: dict, dst_mac: bytes, sport: int) -> bytes:
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
    return dst_mac + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ethertype) + ip + payload


TRACE = re.compile(r"trace id (\w+) inet talgate (\S+) (rule .*\(verdict (\w+)[^)]*\)|policy (\w+))")
PACKET = re.compile(r"trace id (\w+) inet tgtrace pre packet: (.*)")


def packet_key(line: str) -> tuple[str, int] | None:
    """(trace id, the source port the harness gave the packet): IPv4's IP id, else the L4 source
    port, else the ICMPv6 echo id (nft prints it inside 'parameter-problem' as id << 16 | seq)."""
    m = PACKET.search(line)
    if not m:
        return None
    body = m.group(2)
    for pat, shift in ((r"\bip id (\d+)", 0), (r"\bsport (\d+)", 0), (r"\bicmpv6 id (\d+)", 0),
                       (r"\bparameter-problem (\d+)", 16)):
        k = re.search(pat, body)
        if k:
            return m.group(1), int(k.group(1)) >> shift
    return None


def decide(lines: list[str]) -> dict:
    """The verdict of one packet's trace (lines of its trace id only)."""
    for line in lines:
        m = TRACE.search(line)
        if not m:
            continue
        chain = m.group(2)
        if chain.endswith("_nat") or chain == "output":
            continue
        if m.group(5):
            return {"verdict": m.group(5), "rule": f"{chain} policy"}
        if m.group(4) in ("accept", "drop"):
            c = re.search(r'comment "([^"]*)"', line)
            return {"verdict": m.group(4), "rule": c.group(1) if c else None}
    return {"verdict": "no-route", "rule": None}


def by_packet(seen: list[str], sports: list[int]) -> list[dict]:
    """Each packet's verdict from its own trace id (found by its source port / ICMP id), so a
    slow monitor cannot attribute one packet's trace lines to the next."""
    tid_of: dict[int, str] = {}
    lines: dict[str, list[str]] = {}
    for line in seen:
        k = packet_key(line)
        if k and k[1] in sports and k[1] not in tid_of:
            tid_of[k[1]] = k[0]
        t = re.search(r"trace id (\w+) ", line)
        if t:
            lines.setdefault(t.group(1), []).append(line)
    return [decide(lines.get(tid_of.get(sp, ""), [])) for sp in sports]


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
    sports = []
    for k, p in enumerate(job["packets"]):
        mac, peer = macs[p["iif"]]
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((peer, 0))
        s.send(frame(p, mac, 20000 + k))
        sports.append(20000 + k)
        s.close()
        time.sleep(0.03)
    # A marker packet last: once its trace line is read, every earlier packet's lines were too
    # (one netlink socket delivers in order).
    marker = 20000 + len(sports)
    if job["packets"]:
        p0 = dict(job["packets"][0], proto="udp", dport=9)
        mac, peer = macs[p0["iif"]]
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((peer, 0))
        s.send(frame(p0, mac, marker))
        s.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                (k := packet_key(x)) and k[1] == marker for x in list(seen)):
            time.sleep(0.02)
    out = by_packet(list(seen), sports)
    mon.terminate()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
