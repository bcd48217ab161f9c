"""Names that reach the kernel or a daemon are injective and within the target's limits (issue 11,
class 3 and the log-prefix crash of class 1).

- two document names that the old renderer folded into one nft identifier (``ssh_admins`` and
  ``ssh-admins``) must not merge in the kernel: the kernel, the tracer and the document agree;
- where a target does fold names (DNS is case-insensitive), validate refuses and names both paths;
- a policy with ``log`` between two 63-character zones never hands libnftables a log prefix over
  127 bytes (it returned an error at 128-136 bytes and killed the agent with "stack smashing
  detected" at >= 137), through the agent's own in-process check path.

Kernel work happens in private network namespaces only (``unshare --net`` or ``tg-<random>-*``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from backend.model import names as N
from backend.model import validate_text
from backend.render.nft import render
from backend.trace.evaluator import Packet, Tracer

REPO_ROOT = Path(__file__).resolve().parents[2]


def need_root_nft():
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, nft, ip and unshare (private network namespaces)")


def in_private_ns(script: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a shell script in a throw-away network namespace (never the machine's own)."""
    return subprocess.run(["unshare", "--net", "sh", "-c", script], input=stdin, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


def kernel_listing(rs) -> dict:
    """Load the rendered JSON transaction (as the agent does) into a private namespace and list it."""
    r = in_private_ns("nft -j -f - && nft -j list table inet talgate", json.dumps(rs.document()))
    assert r.returncode == 0, r.stderr
    objs = json.loads(r.stdout)["nftables"]
    dispatch = {}  # input's iifname vmap: interface → chain
    for o in objs:
        if "rule" in o and o["rule"]["chain"] == "input":
            for e in o["rule"]["expr"]:
                if "vmap" in e:
                    data = e["vmap"]["data"]["set"]
                    dispatch.update({k: v["jump"]["target"] for k, v in (data if isinstance(data, list) else [])})
    return {"chains": [o["chain"]["name"] for o in objs if "chain" in o],
            "sets": {o["set"]["name"]: o["set"].get("elem", []) for o in objs if "set" in o},
            "dispatch": dispatch}


def _elem_text(e) -> str:
    if isinstance(e, dict) and "prefix" in e:
        return f"{e['prefix']['addr']}/{e['prefix']['len']}"
    return f"{e}/32" if ":" not in str(e) else f"{e}/128"


def _problem_paths(problems) -> list[str]:
    return [p.path + " " + p.message for p in problems if p.severity == "error"]


# -- the ssh_admins / ssh-admins bypass, on a real kernel ----------------------------------------

BYPASS = """
interfaces:
  mgmt0: {ipv4: [192.0.2.1/24]}
zones:
  mgmt: {interfaces: [mgmt0], input: drop}
sets:
  ssh-admins: {addresses: [192.0.2.20/32]}
  ssh_admins: {addresses: [192.0.2.10/32]}
rules:
  - {name: ssh, from: mgmt, to: self, proto: tcp, dport: 22, src: ssh_admins, action: accept}
"""


@pytest.fixture
def two_hosts():
    """tg-<random>-r (the router, mgmt0 = 192.0.2.1) and tg-<random>-c (a client holding .10, .20, .30)."""
    need_root_nft()
    p = f"tg-{secrets.token_hex(2)}-"
    r, c = p + "r", p + "c"
    procs: list[subprocess.Popen] = []

    def sh(*cmd: str):
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)

    try:
        sh("ip", "netns", "add", r)
        sh("ip", "netns", "add", c)
        sh("ip", "-n", r, "link", "add", "mgmt0", "type", "veth", "peer", "name", "eth0", "netns", c)
        sh("ip", "-n", r, "addr", "add", "192.0.2.1/24", "dev", "mgmt0")
        for a in (10, 20, 30):
            sh("ip", "-n", c, "addr", "add", f"192.0.2.{a}/24", "dev", "eth0")
        for ns, dev in ((r, "mgmt0"), (c, "eth0")):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        procs.append(subprocess.Popen(["ip", "netns", "exec", r, sys.executable, "-m", "backend.lab.whoami", "r", "22"],
                                      cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield r, c
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
        for ns in (c, r):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def _reaches_ssh(client_ns: str, src: str) -> bool:
    code = ("import socket,sys\n"
            "s=socket.socket(); s.settimeout(1.5); s.bind((sys.argv[1],0))\n"
            "s.connect(('192.0.2.1',22)); print(s.recv(100).decode().strip())\n")
    r = subprocess.run(["ip", "netns", "exec", client_ns, sys.executable, "-c", code, src],
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0 and r.stdout.startswith("talgate-lab r 22")


def test_sets_differing_in_dash_and_underscore_do_not_merge_kernel_and_tracer_agree(two_hosts):
    router, client = two_hosts
    cfg, problems = validate_text(BYPASS)
    assert cfg is not None, problems
    rs = render(cfg)
    r = subprocess.run(["ip", "netns", "exec", router, "nft", "-j", "-f", "-"], input=json.dumps(rs.document()),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # The listener is up once one probe from the admitted host gets through (or we time out).
    deadline = time.monotonic() + 10
    while not _reaches_ssh(client, "192.0.2.10") and time.monotonic() < deadline:
        time.sleep(0.2)
    tracer = Tracer(cfg, rs)
    seen = {}
    for src, allowed in (("192.0.2.10", True), ("192.0.2.20", False), ("192.0.2.30", False)):
        kernel = _reaches_ssh(client, src)
        traced = tracer.trace(Packet(iif="mgmt0", src=src, dst="192.0.2.1", proto="tcp", dport=22)).verdict
        seen[src] = (kernel, traced)
        assert kernel == allowed, f"{src}: kernel {'admits' if kernel else 'drops'} it; the document says " \
                                  f"{'accept' if allowed else 'drop'} ({seen})"
        assert (traced == "accept") == allowed, f"{src}: the tracer says {traced} ({seen})"
    listed = json.loads(subprocess.run(["ip", "netns", "exec", router, "nft", "-j", "list", "table", "inet",
                                        "talgate"], capture_output=True, text=True, timeout=30).stdout)
    sets = {o["set"]["name"]: o["set"].get("elem") for o in listed["nftables"] if "set" in o}
    assert sets[N.set_ident("ssh_admins", 4)] == ["192.0.2.10"]
    assert sets[N.set_ident("ssh-admins", 4)] == ["192.0.2.20"]


# -- property: pairs of names the old renderer folded ---------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_PUNCT = "_.-"


@st.composite
def folded_pair(draw, max_len: int = 20):
    """Two different names that the old renderer mapped to one identifier (it turned every
    character outside [A-Za-z0-9_] into '_'): same letters, punctuation drawn from '_.-'."""
    n = draw(st.integers(2, max_len))
    chars = [draw(st.sampled_from(_ALNUM))]
    for _ in range(n - 1):
        chars.append(draw(st.sampled_from(_ALNUM + _PUNCT * 4)))
    punct = [i for i, ch in enumerate(chars) if ch in _PUNCT]
    assume(punct)
    a = "".join(chars)
    other = list(chars)
    for i in punct:
        other[i] = draw(st.sampled_from(_PUNCT))
    b = "".join(other)
    assume(a != b)
    assert re.sub(r"[^A-Za-z0-9_]", "_", a) == re.sub(r"[^A-Za-z0-9_]", "_", b)
    return a, b


def _doc(kind: str, a: str, b: str) -> dict:
    """A document that uses names a and b for two objects of one kind (everything else fixed)."""
    d = {
        "interfaces": {"p0": {"ipv4": ["10.0.0.1/24"]}, "p1": {"ipv4": ["10.0.1.1/24"]},
                       "p2": {"ipv4": ["10.0.2.1/24"]}},
        "zones": {"z0": {"interfaces": ["p0"]}, "z1": {"interfaces": ["p1"]}, "z2": {"interfaces": ["p2"]}},
        "sets": {"s0": {"addresses": ["192.0.2.1/32"]}},
        "rules": [{"name": "r0", "from": "z0", "to": "self", "proto": "tcp", "dport": 22, "src": "s0",
                   "action": "accept"}],
        "policies": [],
    }
    if kind == "zones":
        d["zones"] = {a: {"interfaces": ["p0"], "log": True}, b: {"interfaces": ["p1"], "forward": "reject"},
                      "z2": {"interfaces": ["p2"]}}
        d["rules"] = [{"name": "r0", "from": [a, b], "to": "self", "proto": "tcp", "dport": 22, "src": "s0",
                       "action": "accept"}]
        d["policies"] = [{"from": a, "to": b, "action": "accept", "log": True},
                         {"from": b, "to": a, "action": "drop", "log": True}]
    elif kind == "sets":
        d["sets"] = {a: {"addresses": ["192.0.2.10/32", "2001:db8::10/128"]},
                     b: {"addresses": ["192.0.2.20/32", "2001:db8::20/128"]}}
        d["rules"] = [{"name": "r0", "from": "z0", "to": "self", "proto": "tcp", "dport": 22, "src": a,
                       "action": "accept"},
                      {"name": "r1", "from": "z1", "to": "self", "proto": "tcp", "dport": 22, "src": b,
                       "action": "accept"}]
    elif kind == "rules":
        d["rules"] = [{"name": a, "from": "z0", "to": "self", "proto": "tcp", "dport": 22, "action": "accept",
                       "log": True},
                      {"name": b, "from": "z1", "to": "self", "proto": "tcp", "dport": 23, "action": "drop",
                       "log": True}]
    elif kind == "policies":
        d["policies"] = [{"name": a, "from": "z0", "to": "z1", "action": "accept", "log": True},
                         {"name": b, "from": "z1", "to": "z0", "action": "reject", "log": True}]
    elif kind == "interfaces":
        d["interfaces"] = {a: {"ipv4": ["10.0.0.1/24"]}, b: {"ipv4": ["10.0.1.1/24"]},
                           "p2": {"ipv4": ["10.0.2.1/24"]}}
        d["zones"] = {"z0": {"interfaces": [a]}, "z1": {"interfaces": [b]}, "z2": {"interfaces": ["p2"]}}
    return d


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(kind=st.sampled_from(["zones", "sets", "rules", "policies", "interfaces"]), data=st.data())
def test_folded_names_never_merge_in_the_kernel(kind, data):
    """For a pair of names the old renderer folded into one identifier: validate either refuses
    naming both paths, or accepts and the kernel then holds exactly the document's chains and sets
    (one chain per zone and zone pair, one set per address set and family, with that set's own
    addresses): nothing merged."""
    need_root_nft()
    a, b = data.draw(folded_pair(max_len=15 if kind == "interfaces" else 63))
    doc = _doc(kind, a, b)
    cfg, problems = validate_text(yaml.safe_dump(doc))
    event(f"{kind}: {'refused' if cfg is None else 'accepted'}")
    if cfg is None:
        # Only a real collision may refuse it, and the problem names both items.
        errors = _problem_paths(problems)
        assert errors and all(re.search(r"^\S+ .* would be the same as the one of [a-z]", e) for e in errors), errors
        return
    _assert_kernel_holds_the_document(cfg)


def _assert_kernel_holds_the_document(cfg):
    rs = render(cfg)
    listed = kernel_listing(rs)
    # The text form (`talgate render`, diffs) loads to the same kernel objects: verbatim names with
    # '-' and '.' parse unquoted after our fixed prefixes.
    r = in_private_ns("nft -f - && nft -j list table inet talgate", rs.text())
    assert r.returncode == 0, r.stderr
    objs = json.loads(r.stdout)["nftables"]
    assert sorted(o["chain"]["name"] for o in objs if "chain" in o) == sorted(listed["chains"])
    assert sorted(o["set"]["name"] for o in objs if "set" in o) == sorted(listed["sets"])
    rendered_chains = [c.name for c in rs.chains]
    assert len(set(rendered_chains)) == len(rendered_chains)
    assert sorted(listed["chains"]) == sorted(rendered_chains)
    zone_chains = {N.zone_in_chain(z) for z in cfg.zones} | {N.zone_pair_chain(x, y) for x in cfg.zones
                                                             for y in cfg.zones}
    assert len(zone_chains) == len(cfg.zones) + len(cfg.zones) ** 2
    assert zone_chains <= set(listed["chains"])
    assert listed["dispatch"] == {i: N.zone_in_chain(z) for z in cfg.zones for i in cfg.zones[z].interfaces}
    assert len(listed["sets"]) == 2 * len(cfg.sets)
    for sname, s in cfg.sets.items():
        for fam in (4, 6):
            got = sorted(_elem_text(e) for e in listed["sets"][N.set_ident(sname, fam)])
            want = sorted(x for x in s.addresses if (":" in x) == (fam == 6))
            assert got == want, (sname, fam, got, want)
    for c in rs.chains:
        for r in c.rules:
            assert len(r.comment.encode()) <= N.NFT_COMMENT_MAX
            for e in r.exprs:
                if "log" in e.json:
                    assert len(e.json["log"]["prefix"].encode()) <= N.LOG_PREFIX_MAX


ZONE_WORDS = st.lists(st.sampled_from(["a", "b", "to", "in"]), min_size=1, max_size=3).map("_".join)


@st.composite
def zone_names(draw):
    """Random zone names from chain-name words, often with one of the two shapes that reach one
    chain name from two zone pairs (x → y_to_w = x_to_y → w) or a pair and an input chain
    (x → y_in = zone x_to_y's input)."""
    zones = draw(st.lists(ZONE_WORDS, min_size=1, max_size=3, unique=True))
    x, y, w = draw(ZONE_WORDS), draw(ZONE_WORDS), draw(ZONE_WORDS)
    shape = draw(st.sampled_from(["none", "pair-pair", "pair-input"]))
    if shape == "pair-pair":
        zones += [x, f"{y}_to_{w}", f"{x}_to_{y}", w]
    elif shape == "pair-input":
        zones += [x, f"{y}_in", f"{x}_to_{y}"]
    zones = list(dict.fromkeys(zones))
    assume(len(zones) >= 2)
    return zones


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zones=zone_names())
def test_zone_chains_collide_only_when_refused(zones):
    """Zone names made of the words the chain names use ('to', 'in', '_'): validate refuses exactly
    when two zone chains would share a name, naming both zones; otherwise the kernel has one chain
    per zone and per zone pair."""
    need_root_nft()
    doc = {"interfaces": {f"p{i}": {"ipv4": [f"10.0.{i}.1/24"]} for i in range(len(zones))},
           "zones": {z: {"interfaces": [f"p{i}"]} for i, z in enumerate(zones)}}
    chains = [N.zone_in_chain(z) for z in zones] + [N.zone_pair_chain(x, y) for x in zones for y in zones]
    collide = len(set(chains)) < len(chains)
    event("zone chains collide" if collide else "zone chains distinct")
    cfg, problems = validate_text(yaml.safe_dump(doc))
    if collide:
        assert cfg is None
        errors = _problem_paths(problems)
        assert errors and all(re.search(r"^zones\.\S+ .* would be the same as the one of zones\.", e)
                              for e in errors), errors
    else:
        assert cfg is not None, problems
        _assert_kernel_holds_the_document(cfg)


def test_crafted_zone_pairs_are_refused_with_both_zones():
    d = {"interfaces": {f"p{i}": {"ipv4": [f"10.0.{i}.1/24"]} for i in range(4)},
         "zones": {"a": {"interfaces": ["p0"]}, "b_to_c": {"interfaces": ["p1"]},
                   "a_to_b": {"interfaces": ["p2"]}, "c": {"interfaces": ["p3"]}}}
    cfg, problems = validate_text(yaml.safe_dump(d))
    assert cfg is None
    assert [str(p) for p in problems] == [
        "zones.a_to_b: nftables chain 'zone_a_to_b_to_c' (traffic from zone 'a_to_b' to zone 'c') would be the "
        "same as the one of zones.a (traffic from zone 'a' to zone 'b_to_c'): rename one of them"]
    d["zones"] = {"x": {"interfaces": ["p0"]}, "y_in": {"interfaces": ["p1"]}, "x_to_y": {"interfaces": ["p2"]}}
    cfg, problems = validate_text(yaml.safe_dump(d))
    assert cfg is None
    assert [str(p) for p in problems] == [
        "zones.x: nftables chain 'zone_x_to_y_in' (traffic from zone 'x' to zone 'y_in') would be the same as "
        "the one of zones.x_to_y (traffic from zone 'x_to_y' to the router): rename one of them"]


# -- DNS names fold case: a collision is refused with both paths ----------------------------------

def _dhcp_doc(n1: str, n2: str, where: str) -> str:
    d = {
        "system": {"domain": "lan.example"},
        "interfaces": {"p0": {"ipv4": ["10.0.0.1/24"]}, "p1": {"ipv4": ["10.0.1.1/24"]}},
        "zones": {"z0": {"interfaces": ["p0", "p1"]}},
        "dhcp": {"p0": {"ipv4": {"pools": ["10.0.0.100-10.0.0.199"]},
                        "reservations": [{"name": n1, "mac": "02:00:00:00:00:01", "ipv4": "10.0.0.5"}]},
                 "p1": {"ipv4": {"pools": ["10.0.1.100-10.0.1.199"]}, "reservations": []}},
        "dns": {"zones": {"z0": "allow"}, "hosts": []},
    }
    if where == "reservation":
        d["dhcp"]["p1"]["reservations"] = [{"name": n2, "mac": "02:00:00:00:00:02", "ipv4": "10.0.1.5"}]
    else:
        d["dns"]["hosts"] = [{"name": n2, "ipv4": ["10.0.1.6"]}]
    return yaml.safe_dump(d)


@settings(max_examples=40, deadline=None)
@given(label=st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True), data=st.data(),
       where=st.sampled_from(["reservation", "host"]))
def test_dns_names_folding_to_one_name_are_refused_with_both_paths(label, data, where):
    flips = data.draw(st.lists(st.booleans(), min_size=len(label), max_size=len(label)))
    other = "".join(ch.upper() if f else ch for ch, f in zip(label, flips, strict=True))
    assume(any(ch.isalpha() for ch in label))
    cfg, problems = validate_text(_dhcp_doc(label, other, where))
    assert cfg is None
    errors = _problem_paths(problems)
    p1 = "dhcp.p0.reservations[0].name"
    p2 = "dhcp.p1.reservations[0].name" if where == "reservation" else "dns.hosts[0].name"
    assert any(p1 in e and p2 in e for e in errors), errors


# -- long log prefixes never reach libnftables ----------------------------------------------------

LONG_A, LONG_B = "a" * 63, "b" * 63
LONG_LOG = f"""
interfaces:
  x0: {{ipv4: [10.0.0.1/24]}}
  x1: {{ipv4: [10.0.1.1/24]}}
zones:
  {LONG_A}: {{interfaces: [x0], log: true}}
  {LONG_B}: {{interfaces: [x1], log: true}}
policies:
  - {{from: {LONG_A}, to: {LONG_B}, action: drop, log: true}}
  - {{from: {LONG_B}, to: {LONG_A}, action: reject, log: true}}
"""


def test_log_between_two_63_char_zones_renders_within_limits():
    cfg, problems = validate_text(LONG_LOG)
    assert cfg is not None, problems
    prefixes = [e.json["log"]["prefix"] for c in render(cfg).chains for r in c.rules for e in r.exprs
                if "log" in e.json]
    assert len(prefixes) >= 4
    assert all(len(p.encode()) <= N.LOG_PREFIX_MAX for p in prefixes), prefixes
    # The full name stays in the rule comment (counters, errors and logs map back).
    comments = {r.comment for c in render(cfg).chains for r in c.rules}
    assert f"policy {LONG_A}-{LONG_B}" in comments


def _agent_check_in_private_ns(config_text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The agent's validate path (Pipeline.check_text: model checks, render, `nft -c` through
    libnftables in-process) in a child process inside a private network namespace that has the
    document's links; the child's exit status shows whether the process survived."""
    cfgfile = tmp_path / "router.yaml"
    cfgfile.write_text(config_text)
    code = textwrap.dedent(f"""
        import json, sys
        from backend.agent.pipeline import Pipeline, Refused
        p = Pipeline({str(tmp_path / 'repo')!r}, {str(tmp_path / 'state')!r})
        try:
            cfg, rs, warnings = p.check_text(open({str(cfgfile)!r}).read())
            print(json.dumps({{"ok": True}}))
        except Refused as e:
            print(json.dumps({{"ok": False, "problems": [str(x) for x in e.problems]}}))
    """)
    script = ("ip link set lo up && ip link add x0 type veth peer name x1 && "
              f"exec {sys.executable} -c \"$0\"")
    return subprocess.run(["unshare", "--net", "sh", "-c", script, code], capture_output=True, text=True,
                          timeout=120, cwd=REPO_ROOT)


def test_agent_check_path_survives_long_zone_names_with_log(tmp_path):
    need_root_nft()
    r = _agent_check_in_private_ns(LONG_LOG, tmp_path)
    assert "stack smashing" not in r.stderr
    assert r.returncode == 0, f"the agent's check process died (rc {r.returncode}): {r.stderr[-2000:]}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {"ok": True}, out


@pytest.mark.parametrize("what", ["log-137", "log-128", "log-400", "comment-254", "chain-256", "set-256",
                                  "jump-256"])
def test_the_nft_host_layer_refuses_over_limit_input_before_libnftables(what):
    """Defence in depth: whatever a renderer hands it, the host layer never calls libnftables with a
    log prefix, comment or name over the kernel's limit (libnftables would abort or smash its stack)."""
    need_root_nft()
    kind, n = what.split("-")
    n = int(n)
    code = textwrap.dedent(f"""
        import sys
        from backend.host import nft as h
        kind, n = {kind!r}, {n}
        t = {{"family": "inet", "table": "t"}}
        cmds = [{{"add": {{"table": {{"family": "inet", "name": "t"}}}}}},
                {{"add": {{"chain": dict(t, name="c" * (n if kind == "chain" else 1))}}}}]
        if kind == "set":
            cmds.append({{"add": {{"set": dict(t, name="s" * n, type="ipv4_addr")}}}})
        expr = [{{"accept": None}}]
        if kind == "log":
            expr = [{{"log": {{"prefix": "p" * n}}}}, {{"accept": None}}]
        if kind == "jump":
            expr = [{{"jump": {{"target": "j" * n}}}}]
        rule = dict(t, chain="c" * (n if kind == "chain" else 1), expr=expr)
        if kind == "comment":
            rule["comment"] = "x" * n
        cmds.append({{"add": {{"rule": rule}}}})
        try:
            h.run(cmds, check_only=True)
        except h.NftError as e:
            print("refused:", e)
            sys.exit(0)
        print("accepted")
        sys.exit(3)
    """)
    r = subprocess.run(["unshare", "--net", sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=REPO_ROOT)
    assert r.returncode == 0, f"rc {r.returncode}: {r.stdout}{r.stderr[-1500:]}"
    assert r.stdout.startswith("refused:") and str(n) in r.stdout, r.stdout


def test_the_limits_are_the_kernels():
    """The limits in backend/model/names.py are what this kernel and libnftables accept: the
    maximum loads, one more byte is refused (measured with the nft CLI in a private namespace,
    where an abort kills only nft)."""
    need_root_nft()

    def load(chain="c", set_name=None, comment=None, prefix=None) -> subprocess.CompletedProcess:
        t = {"family": "inet", "table": "t"}
        cmds = [{"add": {"table": {"family": "inet", "name": "t"}}}, {"add": {"chain": dict(t, name=chain)}}]
        if set_name:
            cmds.append({"add": {"set": dict(t, name=set_name, type="ipv4_addr")}})
        rule = dict(t, chain=chain, expr=([{"log": {"prefix": prefix}}] if prefix else []) + [{"accept": None}])
        if comment:
            rule["comment"] = comment
        cmds.append({"add": {"rule": rule}})
        return in_private_ns("nft -j -f -", json.dumps({"nftables": cmds}))

    assert load(chain="c" * N.NFT_NAME_MAX).returncode == 0
    assert load(chain="c" * (N.NFT_NAME_MAX + 1)).returncode != 0
    assert load(set_name="s" * N.NFT_NAME_MAX).returncode == 0
    assert load(set_name="s" * (N.NFT_NAME_MAX + 1)).returncode != 0
    assert load(comment="x" * N.NFT_COMMENT_MAX).returncode == 0
    assert load(comment="x" * (N.NFT_COMMENT_MAX + 1)).returncode != 0
    assert load(prefix="p" * N.LOG_PREFIX_MAX).returncode == 0
    assert load(prefix="p" * (N.LOG_PREFIX_MAX + 1)).returncode != 0


# -- the same through the read-only socket of a running lab agent, as an unprivileged user --------


@pytest.mark.lab
def test_read_only_validate_with_long_zone_names_and_log_keeps_the_agent_alive():
    """POST /v1/validate on the world-writable read-only socket, sent by uid 65534, with a policy
    that logs between two 63-character zones: before the fix this killed the root agent ("stack
    smashing detected"). Now the answer is a normal one, the agent lives on, the kernel is unchanged."""
    import tempfile

    from backend.lab.lab import Lab, example_config

    from ..lab.conftest import _why_no_lab
    from ..lab.util import LabHelper

    reason = _why_no_lab()
    if reason:
        pytest.skip(reason)
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv to send the request as an unprivileged user")
    base = Path(tempfile.mkdtemp(prefix="tg-names-"))
    base.chmod(0o755)  # the ro socket must be reachable by any local user, as on a real router
    lab = Lab(prefix=f"tg-{secrets.token_hex(2)}-", state=base / "state")
    try:
        lab.up()
        h = LabHelper(lab)
        g, m = "g" * 63, "m" * 63
        text = re.sub(r"(?<![\w.-])guest(?![\w.-])", g, example_config())
        text = re.sub(r"(?<![\w.-])mgmt(?![\w.-])", m, text)
        text = text.replace(f"{{from: {g}, to: {m}, action: drop}}", f"{{from: {g}, to: {m}, action: drop, log: true}}")
        text = text.replace("input: drop, forward: drop}", "input: drop, forward: drop, log: true}")
        assert f"{{from: {g}, to: {m}, action: drop, log: true}}" in text
        before = h.kernel_state()
        agent_pid = lab.meta()["pids"]["agent"]
        code = ("import json, sys\nfrom backend.client import AgentClient\n"
                "print(json.dumps(AgentClient(sys.argv[1]).validate(sys.stdin.read()).model_dump(mode='json')))\n")
        r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                            sys.executable, "-c", code, lab.ro_socket], input=text, capture_output=True, text=True,
                           timeout=120, cwd=REPO_ROOT)
        assert r.returncode == 0, r.stderr[-2000:]
        answer = json.loads(r.stdout)
        assert answer["ok"] is True, answer
        assert os.path.exists(f"/proc/{agent_pid}") and "stack smashing" not in lab.log_tail("agent.log", 200)
        assert h.client.status()["head"]  # the agent still answers
        assert h.kernel_state() == before
        h.assert_kernel_is_head()
    finally:
        lab.down()
        shutil.rmtree(base, ignore_errors=True)
