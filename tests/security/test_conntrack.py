"""GET /v1/conntrack/top answers on the read-only socket and reads the whole conntrack table, which
a hostile network can fill (issue 11, class 1): the table is streamed and read up to MAX_FLOWS
lines, so one request's memory is bounded whatever the table holds."""

from __future__ import annotations

import tracemalloc

from backend.observe import conntrack

LINE = ("ipv4     2 tcp      6 431999 ESTABLISHED src=192.168.{a}.{b} dst=198.51.100.{c} sport={sp} dport=443 "
        "packets=3 bytes=180 src=198.51.100.{c} dst=198.51.100.2 sport=443 dport={sp} packets=2 bytes=120 "
        "[ASSURED] mark=0 zone=0 use=2\n")


def test_a_full_conntrack_table_is_read_bounded(tmp_path):
    path = tmp_path / "nf_conntrack"
    n = 4 * 20000
    with open(path, "w") as f:
        for i in range(n):
            f.write(LINE.format(a=(i >> 8) & 255, b=i & 255, c=i % 200, sp=1024 + i % 60000))
    tracemalloc.start()
    try:
        out = conntrack.top(10, path=str(path), limit=20000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out["truncated"] is True and out["total"] == 20000 and len(out["top"]) == 10
    assert out["accounting"] is True and out["top"][0]["bytes"] == 300
    assert peak < 20 << 20, f"peak {peak >> 20} MiB for 20,000 of {n} flows"


def test_a_small_table_is_read_whole(tmp_path):
    path = tmp_path / "nf_conntrack"
    path.write_text("".join(LINE.format(a=1, b=i % 3, c=7, sp=2000 + i) for i in range(30)))
    out = conntrack.top(2, path=str(path))
    assert out["truncated"] is False and out["total"] == 30
    assert [r["flows"] for r in out["top"]] == [10, 10] and out["top"][0]["peers"] == 1
