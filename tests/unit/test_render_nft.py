"""The nftables renderer: pure, deterministic, accepted by nft, text and JSON forms equal."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backend.lab.lab import example_config
from backend.model import load_config, validate_text
from backend.render.nft import render

from .nftcheck import load_and_list, need_nft, nft_in_private_ns

EX = load_config(example_config())


def test_deterministic_and_only_our_table():
    a, b = render(EX), render(load_config(example_config()))
    assert a.commands() == b.commands() and a.text() == b.text()
    tables = {(c[k]["table"]["family"], c[k]["table"]["name"]) for c in a.commands() for k in c if "table" in c[k]}
    assert tables == {("inet", "talgate")}
    for c in a.commands():
        obj = next(iter(c.values()))
        for kind in ("chain", "set", "rule"):
            if kind in obj:
                assert obj[kind]["table"] == "talgate" and obj[kind]["family"] == "inet"


def test_every_rule_names_its_origin():
    for chain in render(EX).chains:
        for r in chain.rules:
            assert r.comment.split()[0] in {"builtin", "rule", "policy", "zone", "forward", "masquerade", "snat",
                                            "antispoof"}
    comments = {r.comment for c in render(EX).chains for r in c.rules}
    assert {"rule ssh-from-mgmt", "rule ping-router", "forward web", "policy lan-wan",
            "zone wan input", "masquerade masquerade-wan"} <= comments


def test_ports_never_matched_through_nexthdr():
    text = render(EX).text()
    assert "nexthdr" not in text and "nexthdr" not in json.dumps(render(EX).commands())
    assert "meta l4proto tcp tcp dport 22" in text


def test_security_baseline_present():
    text = render(EX).text()
    assert "ct state invalid counter drop" in text
    assert "tcp flags & (fin|syn|rst|ack) != syn counter drop" in text
    assert "icmpv6 type { nd-router-solicit" in text and "ip6 hoplimit 255" in text
    assert "packet-too-big" in text


def test_nat66_is_opt_in():
    assert "meta nfproto ipv6 masquerade" not in render(EX).text()
    cfg = load_config(example_config().replace("- {out: wan}", "- {out: wan, family: any}"))
    assert "meta nfproto ipv6 counter masquerade" in render(cfg).text()


def test_kernel_accepts_and_text_equals_json():
    need_nft()
    rs = render(EX)
    assert load_and_list(doc=rs.document()) == load_and_list(text=rs.text())


def test_replace_transaction_leaves_other_tables_alone():
    need_nft()
    doc = json.dumps(render(EX).document())
    r = nft_in_private_ns(
        "nft add table inet talos && nft add chain inet talos input '{ type filter hook input priority 0; }' && "
        "nft add table ip cni && nft -j -f - && nft -j -f /dev/stdin </dev/null; "
        "nft list tables", doc)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == ["table inet talos", "table ip cni", "table inet talgate"]


def test_extension_headers_cannot_bypass_a_port_rule():
    """A destination-options header or an atomic fragment before TCP must still hit `tcp dport`."""
    need_nft()
    cfg = load_config(example_config())
    script = """
set -e
ip link set lo up
ip addr add 2001:db8::1/64 dev lo
nft -j -f -
python3 - <<'PY'
import socket, struct
def send(nh, ext):
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    src = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    tcp = struct.pack("!HHIIBBHHH", 40000, 22, 1, 0, 5 << 4, 0x02, 1024, 0, 0)
    payload = ext + tcp
    hdr = struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + src + src
    s.sendto(hdr + payload, ("2001:db8::1", 0))
send(6, b"")                                            # plain TCP
send(60, bytes([6, 0, 1, 4, 0, 0, 0, 0]))               # destination options (PadN), then TCP
send(44, bytes([6, 0, 0, 0, 0, 0, 0, 1]))               # atomic fragment (offset 0, M=0), then TCP
PY
sleep 0.2
nft -j list chain inet talgate zone_lo_in
"""
    cfg = load_config(example_config().replace("mgmt:  {interfaces: [mgmt0]", "mgmt:  {interfaces: [lo]")
                      .replace("  mgmt0:\n", "  lo:\n    enabled: true\n  mgmt0:\n"))
    # Route the loopback through the mgmt zone's input chain: only the ssh rule counts tcp/22.
    rs = render(cfg)
    doc = rs.document()
    doc["nftables"] = [c for c in doc["nftables"] if not ("rule" in c.get("add", {}) and
                       c["add"]["rule"].get("comment") == "builtin loopback")]
    r = nft_in_private_ns(script.replace("zone_lo_in", "zone_mgmt_in"), json.dumps(doc))
    assert r.returncode == 0, r.stderr
    rules = [o["rule"] for o in json.loads(r.stdout)["nftables"] if "rule" in o]
    ssh = next(x for x in rules if x.get("comment") == "rule ssh-from-mgmt")
    packets = next(e["counter"]["packets"] for e in ssh["expr"] if "counter" in e)
    assert packets == 3, "a port rule missed a packet behind an IPv6 extension header"


# -- generated configs: the kernel accepts every valid one ---------------------------------

ZONES = ["wan", "lan", "guest", "dmz"]
names = st.sampled_from(ZONES)
ports = st.one_of(st.integers(1, 65535).map(str),
                  st.tuples(st.integers(1, 30000), st.integers(0, 30000)).map(lambda t: f"{t[0]}-{t[0] + t[1]}"))
nets = st.sampled_from(["192.0.2.0/24", "198.51.100.7/32", "2001:db8::/48", "2001:db8:1::1/128", "10.0.0.0/8", "admins"])
rule = st.fixed_dictionaries({
    "from": st.lists(names, min_size=1, max_size=2, unique=True),
    "to": st.one_of(st.just("self"), names),
    "proto": st.sampled_from(["tcp", "udp", "any", "icmp", "icmpv6"]),
    "action": st.sampled_from(["accept", "drop", "reject"]),
    "src": st.lists(nets, max_size=2, unique=True),
    "dport": st.lists(ports, max_size=3),
    "log": st.booleans(),
})


def _cfg(rules):
    out = {"interfaces": {f"{z}0": {"ipv4": [f"10.{i}.0.1/24"], "ipv6": [f"2001:db8:{i}::1/64"]} for i, z in enumerate(ZONES)},
           "zones": {z: {"interfaces": [f"{z}0"], "input": "reject" if z == "dmz" else "drop"} for z in ZONES},
           "sets": {"admins": {"addresses": ["192.0.2.0/28", "2001:db8:ff::/64"]}},
           "nat": {"masquerade": [{"out": "wan", "family": "any"}],
                   "forwards": [{"name": "f1", "in": "wan", "dport": "1000-1010", "to": "10.1.0.5"}]},
           "rules": []}
    for i, r in enumerate(rules):
        r = dict(r, name=f"r{i}")
        if r["proto"] not in ("tcp", "udp"):
            r.pop("dport")
        out["rules"].append(r)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule, max_size=8))
def test_generated_configs_are_accepted_by_the_kernel(rules):
    need_nft()
    import yaml

    cfg, probs = validate_text(yaml.safe_dump(_cfg(rules)))
    errors = [p for p in probs if p.severity == "error"]
    # The only refusal the generator can provoke: a rule whose addresses, proto and family exclude
    # each other. Anything else is a bug in the checks or the generator.
    assert all(re.fullmatch(r"rules\[\d+\]", p.path) and "can never match" in p.message for p in errors), errors
    assert (cfg is None) == bool(errors)
    assume(cfg is not None)
    rs = render(cfg)
    r = nft_in_private_ns("nft -c -j -f -", json.dumps(rs.document()))
    assert r.returncode == 0, r.stderr + "\n" + rs.text()


def test_kubernetes_lets_pods_through_and_keeps_lan_out_of_pod_cidrs():
    from backend.render.talos import forward_lets_pods_through

    text = example_config().replace("management_interface: mgmt0", "management_interface: mgmt0\n  kubernetes: {}")
    cfg, probs = validate_text(text)
    assert cfg is not None and probs == []
    fwd = next(c for c in render(cfg).chains if c.name == "forward")
    texts = [" ".join(e.text for e in r.exprs) for r in fwd.rules]
    assert forward_lets_pods_through(texts) == []
    dispatch = [r.comment for r in fwd.rules].index("builtin zone-dispatch")
    assert texts.index("ip saddr 10.244.0.0/16 accept") < dispatch
    assert forward_lets_pods_through([" ".join(e.text for e in r.exprs) for r in render(EX).chains[1].rules])
    bad = text.replace("192.168.20.1/24", "10.96.1.1/24")
    assert any(p.path == "interfaces.guest0.ipv4[0]" and "service CIDR 10.96.0.0/12" in p.message
               for p in validate_text(bad)[1])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule, max_size=6), st.lists(rule, max_size=6), st.booleans(), st.booleans())
def test_incremental_update_reaches_the_same_kernel_state(rules_a, rules_b, change_set, drop_zone):
    """update_commands(prev) must leave exactly what a full replace leaves."""
    need_nft()
    import yaml

    a, b = _cfg(rules_a), _cfg(rules_b)
    if change_set:
        b["sets"]["admins"]["addresses"] = ["192.0.2.0/27", "2001:db8:ff::/64", "203.0.113.0/24"]
    if drop_zone:
        b["zones"].pop("dmz")
        b["rules"] = [r for r in b["rules"] if "dmz" not in r["from"] and r["to"] != "dmz"]
        b["sets"]["extra"] = {"addresses": ["198.51.100.0/24"]}
    (ca, pa), (cb, pb) = validate_text(yaml.safe_dump(a)), validate_text(yaml.safe_dump(b))
    for probs in (pa, pb):  # the only refusal the generator can provoke (see above)
        assert all("can never match" in p.message for p in probs if p.severity == "error"), probs
    assume(ca is not None and cb is not None)
    ra, rb = render(ca), render(cb)
    # Two transactions, as in the agent: load a, then update it to b.
    first = json.dumps(ra.document())
    second = json.dumps({"nftables": rb.update_commands(ra)})
    r = nft_in_private_ns(f"nft -j -f - <<'A'\n{first}\nA\nnft -j -f - <<'B'\n{second}\nB\n"
                          "nft -j list table inet talgate")
    assert r.returncode == 0, r.stderr
    got = [{k: ({kk: vv for kk, vv in v.items() if kk != "handle"} if isinstance(v, dict) else v)}
           for o in json.loads(r.stdout)["nftables"] for k, v in o.items() if k != "metainfo"]
    assert got == load_and_list(doc=rb.document())
