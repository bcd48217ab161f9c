"""A hostile DHCP client picks its own host name; Kea stores it and `talgate leases` (and the
console) print it on the admin's terminal (issue 11, class 7): control characters and
bidi/zero-width marks never come out of the lease reader, and the name is capped."""

from __future__ import annotations

import time

from backend.observe.leases import MAX_HOSTNAME, read_lease_file

HDR = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n"


def test_terminal_escapes_in_a_lease_hostname_never_reach_the_terminal(tmp_path):
    t = int(time.time()) + 600
    names = ["evil\x1b]0;pwned\x07\x1b[2J", "rtl\u202egnp.exe", "zero\u200bwidth", "nul\x00x", "x" * 400]
    rows = "".join(f"192.168.10.{10 + i},02:aa:00:00:00:{i:02x},,600,{t},7,0,0,{n},0,\n" for i, n in enumerate(names))
    (tmp_path / "kea-leases4.csv").write_text(HDR + rows)
    got = {x["address"]: x["hostname"] for x in read_lease_file(tmp_path / "kea-leases4.csv", 4)}
    assert got["192.168.10.10"] == "evil?]0;pwned??[2J"
    assert got["192.168.10.11"] == "rtl?gnp.exe" and got["192.168.10.12"] == "zero?width"
    assert got["192.168.10.13"] == "nul?x"
    assert len(got["192.168.10.14"]) == MAX_HOSTNAME
    for name in got.values():
        assert all(c.isprintable() for c in name), repr(name)
