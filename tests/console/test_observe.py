"""The agent-side readers behind the console: /proc/net/dev, ip -j addr, conntrack, the history ring."""

from __future__ import annotations

from backend.observe import conntrack, links
from backend.observe.history import History

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  wan0: 1000 10 0 1 0 0 0 0 2000 20 0 0 0 0 0 0
"""


def test_parse_net_dev():
    d = links.parse_net_dev(NET_DEV)
    assert d["wan0"]["rx_bytes"] == 1000 and d["wan0"]["tx_packets"] == 20 and d["wan0"]["rx_dropped"] == 1


def test_parse_ip_addr_skips_link_local():
    out = links.parse_ip_addr([{"ifname": "lan0", "address": "02:00:00:00:00:01", "addr_info": [
        {"family": "inet", "local": "192.168.10.1", "prefixlen": 24},
        {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"},
        {"family": "inet6", "local": "2001:db8::1", "prefixlen": 64, "scope": "global"}]}])
    assert out["lan0"]["ipv4"] == ["192.168.10.1/24"] and out["lan0"]["ipv6"] == ["2001:db8::1/64"]


def test_conntrack_top_talkers():
    lines = [
        "ipv4     2 tcp      6 431999 ESTABLISHED src=192.168.20.10 dst=203.0.113.10 sport=40000 dport=80 "
        "packets=5 bytes=400 src=203.0.113.10 dst=198.51.100.2 sport=80 dport=40000 packets=4 bytes=600 [ASSURED] "
        "mark=0 zone=0 use=2",
        "ipv4     2 udp      17 20 src=192.168.10.10 dst=203.0.113.10 sport=5353 dport=53 src=203.0.113.10 "
        "dst=198.51.100.2 sport=53 dport=5353 mark=0 zone=0 use=2",
    ]
    flows = [conntrack.parse_line(x) for x in lines]
    assert flows[0]["bytes"] == 1000 and flows[0]["dport"] == 80 and flows[1]["proto"] == "udp"
    top = conntrack.top_talkers(flows)
    assert top[0]["src"] == "192.168.20.10" and top[0]["peers"] == 1


def test_history_ring_rates_and_depth():
    totals = {"wan0": (0, 0)}
    h = History(depth=5, reader=lambda: dict(totals))
    for t in range(8):
        totals["wan0"] = (1000 * t, 10 * t)
        if t == 4:
            totals["new0"] = (0, 0)
        h.sample(now=float(t))
    snap = h.snapshot()
    assert len(snap["times"]) == 5 and snap["interfaces"]["wan0"]["rx"] == [1000.0] * 5
    assert len(snap["interfaces"]["new0"]["rx"]) == 5  # padded for a link that appeared late
    assert h.rates()["wan0"] == (1000.0, 10.0)


def test_sampler_is_cheap(tmp_path):
    """200 links in /proc/net/dev form: one sample must cost far below 10 ms (1 % of a core at 1 Hz)."""
    import time

    body = NET_DEV.splitlines()[:2] + [f"  vx{i}: {i} 1 0 0 0 0 0 0 {i} 1 0 0 0 0 0 0" for i in range(200)]
    p = tmp_path / "dev"
    p.write_text("\n".join(body) + "\n")
    h = History(reader=lambda: links.read_totals(str(p)))
    h.sample()
    t0 = time.process_time()
    for _ in range(100):
        h.sample()
    per_sample = (time.process_time() - t0) / 100
    assert per_sample < 0.002, f"{per_sample * 1000:.2f} ms per sample"
