"""The daemon appliers through the pipeline (the kernel appliers faked): drift and repair cover the
rendered daemon configs, a failure in any daemon applier leaves every config byte-identical and HEAD
unmoved; the box PKI; the lease-name sync reports its errors."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509

from backend.agent.pipeline import ApplyFailed, Pipeline
from backend.host import pki
from backend.host.applier import DAEMONS, HostContext, builtin
from backend.host.daemons import base
from backend.host.daemons.unbound import LeaseSync, UnboundApplier
from backend.host.fake import FakeApplier
from backend.lab.lab import example_config
from backend.model import load_config

from .test_services import SVC

LINKS = ("wan0", "lan0", "guest0", "mgmt0")


def _text(tmp_path: Path) -> str:
    bl = tmp_path / "ads.txt"
    bl.write_text("ads.example\n")
    return example_config() + SVC.replace("/nonexistent/ads.txt", str(bl)).replace(
        "  servers: [{address: time.example.net, nts: true}]\n",
        "  servers: [{address: time.example.net, nts: true}]\n  nts_server: true\n")


# A second revision that changes the firewall and every daemon's config.
def _changed(text: str) -> str:
    return (text.replace("dport: 8443", "dport: 8444")
            .replace("192.168.10.100-192.168.10.199", "192.168.10.120-192.168.10.199")   # kea-dhcp4
            .replace("2001:db8:10:10::1000-2001:db8:10:10::1fff", "2001:db8:10:10::2000-2001:db8:10:10::2fff")
            .replace("zones: {lan: allow, guest: refuse}", "zones: {lan: allow, guest: allow}")  # unbound
            .replace("ra:\n  lan0: {}", "ra:\n  lan0: {}\n  guest0: {}")                  # radvd
            .replace("serve: [lan]", "serve: [lan, guest]")                               # chrony
            .replace("reflect: [lan, guest]", "reflect: [lan, guest, mgmt]")              # avahi
            .replace("hello: 10, dead: 40", "hello: 5, dead: 20"))                        # frr


def _daemon_names() -> list[str]:
    return [a.name for a in builtin().build(HostContext(Path("/nonexistent")), stages=[DAEMONS])]


def _pipeline(tmp_path: Path) -> Pipeline:
    """Fake kernel appliers + the real daemon appliers of the registry, in a temp rendered dir."""
    rendered = tmp_path / "svc" / "rendered"
    ctx = HostContext(tmp_path / "state", rendered)
    daemons = builtin().build(ctx, stages=[DAEMONS])
    appliers = [FakeApplier("network", "net", links=LINKS), FakeApplier("nftables", "nft"), *daemons]
    return Pipeline(tmp_path / "repo", tmp_path / "state", rendered, appliers=appliers)


def _configs(p: Pipeline) -> dict[str, bytes]:
    """Every file under the rendered folder and the state folder's CA (configs, .generation, keys)."""
    root = p.services.appliers[0].d.rendered_dir.parent
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.fixture(autouse=True)
def _no_daemon_checkers(monkeypatch):
    # The daemons' own checkers are covered in test_services.py (they need the config's links).
    monkeypatch.setattr(base.DaemonApplier, "checker", lambda self, f: None)


def test_all_seven_daemons_are_registered_in_order():
    assert _daemon_names() == ["kea-dhcp4", "kea-dhcp6", "unbound", "radvd", "chrony", "avahi", "frr"]


def test_drift_and_repair_cover_daemon_configs(tmp_path):
    p = _pipeline(tmp_path)
    text = _text(tmp_path)
    res = p.commit(text, "services", "t")
    assert res["services"] == 7
    assert p.drift() == [] and p.apply()["changes"] == 0
    conf = tmp_path / "svc/rendered/unbound/unbound.conf"
    good = conf.read_text()
    gen = (conf.parent / ".generation").read_text()
    conf.write_text(good + "# half-written\n")
    (tmp_path / "svc/rendered/radvd/radvd.conf").unlink()
    assert sorted(p.drift()) == ["service radvd: radvd.conf is missing", "service unbound: unbound.conf was changed"]
    assert sorted(p.plan(text)["unbound"] + p.plan(text)["radvd"]) == ["radvd: write radvd.conf",
                                                                       "unbound: rewrite unbound.conf"]
    assert conf.read_text().endswith("# half-written\n")  # drift changed nothing
    out = p.repair()
    assert out["repaired"] == 2
    assert conf.read_text() == good and int((conf.parent / ".generation").read_text()) == int(gen) + 1
    assert p.drift() == []


STAGES = (["network", "nftables", *_daemon_names(), "net", "nft", "services", "chrony.cert", "advance"]
          + [f"{n}.{what}" for n in _daemon_names() for what in ("write", "reload")])


@pytest.mark.parametrize("stage", STAGES)
def test_a_failure_at_any_stage_restores_every_file_byte_for_byte(tmp_path, stage):
    p = _pipeline(tmp_path)
    text = _text(tmp_path)
    first = p.commit(text, "services", "t")
    before, kernel = _configs(p), {a.name: dict(a.kernel) for a in p.appliers[:2]}
    hits = []

    def fault(s):
        hits.append(s)
        if s == stage:
            raise RuntimeError(f"injected fault at {s}")

    p.faults = fault
    new = _changed(text)
    with pytest.raises(ApplyFailed) as e:
        p.commit(new, "firewall + every daemon", "t")
    assert stage in hits and f"injected fault at {stage}" in str(e.value), hits
    assert e.value.detail["restored"] is not None and e.value.detail["restore_errors"] == []
    assert _configs(p) == before  # configs, .generation, the NTS key and certificate, the CA
    assert {a.name: a.kernel for a in p.appliers[:2]} == kernel
    assert p.repo.head() == first["rev"] == p.status()["applied"] and p.pending is None
    p.faults = None
    assert p.drift() == []
    res = p.commit(new, "firewall + every daemon", "t")
    assert res["services"] == 7 and res["nft"] == 1


@pytest.mark.parametrize("failing", _daemon_names())
def test_a_daemon_write_failure_restores_every_applier_and_head(tmp_path, monkeypatch, failing):
    p = _pipeline(tmp_path)
    text = _text(tmp_path)
    first = p.commit(text, "services", "t")
    before, kernel = _configs(p), {a.name: dict(a.kernel) for a in p.appliers[:2]}
    real = base.write_atomic

    def write(path, data, mode=0o644):
        if Path(path).parent.name == failing and not path.name.startswith("nts"):
            raise PermissionError(13, "Permission denied", str(path))
        real(path, data, mode)

    monkeypatch.setattr(base, "write_atomic", write)
    new = _changed(text)
    with pytest.raises(ApplyFailed) as e:
        p.commit(new, "firewall + every daemon", "t")
    assert e.value.detail["stage"] == failing and "Permission denied" in str(e.value)
    monkeypatch.setattr(base, "write_atomic", real)
    assert _configs(p) == before
    assert {a.name: a.kernel for a in p.appliers[:2]} == kernel
    st = p.status()
    assert p.repo.head() == first["rev"] == st["applied"] and "Permission denied" in st["last_error"]
    assert p.drift() == []
    # Once the fault is gone the same commit lands, and every daemon's config changed.
    res = p.commit(new, "firewall + every daemon", "t")
    assert res["services"] == 7 and res["nft"] == 1


def test_a_daemon_refusing_its_reload_fails_the_apply(tmp_path, monkeypatch):
    p = _pipeline(tmp_path)
    text = _text(tmp_path)
    first = p.commit(text, "services", "t")
    before = _configs(p)
    kea4 = next(a for a in p.appliers if a.name == "kea-dhcp4")
    calls = []

    def reload():
        calls.append(1)
        return {"ok": False, "detail": "unsupported option"} if len(calls) == 1 else {"ok": True}

    monkeypatch.setattr(kea4, "reload", reload)
    with pytest.raises(ApplyFailed, match="kea-dhcp4 refused to reload: unsupported option"):
        p.commit(_changed(text), "x", "t")
    assert _configs(p) == before and p.repo.head() == first["rev"]
    assert len(calls) == 2  # the restore reloaded the previous config


def test_an_unreachable_daemon_is_not_a_failure(tmp_path):
    p = _pipeline(tmp_path)
    text = _text(tmp_path)
    sock = tmp_path / "svc/run/unbound/control.sock"
    sock.parent.mkdir(parents=True)
    sock.write_text("")  # a stale socket file: connecting is refused
    p.commit(text, "services", "t")
    st = p.status()["services"]["unbound"]["last_reload"]
    assert st["ok"] is None and "not answering" in st["detail"]


# ---- the box PKI ------------------------------------------------------------------------------


def test_pki_issues_a_server_certificate_from_the_box_ca(tmp_path):
    ca = pki.BoxCA(tmp_path / "ca")
    key, crt = tmp_path / "srv/nts.key", tmp_path / "srv/nts.crt"
    cert = ca.issue_server(key, crt, ["gw", "gw.lan.example", "192.168.10.1", "2001:db8:10:10::1"], "gw")
    ca_crt = x509.load_pem_x509_certificate((tmp_path / "ca/ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca_crt)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw", "gw.lan.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["192.168.10.1", "2001:db8:10:10::1"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca_crt.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for f in (key, tmp_path / "ca/ca.key"):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    assert stat.S_IMODE(os.stat(tmp_path / "ca").st_mode) == 0o700
    # The CA is reused, and status carries public facts only.
    ca_key = (tmp_path / "ca/ca.key").read_bytes()
    ca.issue_server(key, crt, ["gw"], "gw")
    assert (tmp_path / "ca/ca.key").read_bytes() == ca_key
    st = json.dumps(ca.status())
    assert "PRIVATE" not in st and "BEGIN" not in st and ca_crt.fingerprint(pki.hashes.SHA256()).hex() in st


def test_pki_refuses_a_damaged_ca(tmp_path):
    ca = pki.BoxCA(tmp_path / "ca")
    ca.ensure("gw")
    (tmp_path / "ca/ca.key").write_text("garbage")
    with pytest.raises(pki.PkiError, match="cannot be read"):
        ca.issue_server(tmp_path / "k", tmp_path / "c", ["gw"], "gw")


def test_nts_key_comes_from_the_pki_and_stays_out_of_status(tmp_path):
    p = _pipeline(tmp_path)
    text = _text(tmp_path)
    assert "nts_server: true" in text
    p.commit(text, "nts", "t")
    key = tmp_path / "svc/rendered/chrony/nts.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    st = json.dumps(p.status())
    assert "PRIVATE" not in st and key.read_text().splitlines()[1] not in st
    assert p.status()["services"]["chrony"]["nts_ca"]["present"] is True
    key.unlink()
    assert p.drift() == ["service chrony: the NTS key/certificate is missing or names other hosts"]
    p.repair()
    assert key.exists() and p.drift() == []


# ---- live lease names --------------------------------------------------------------------------


def test_lease_sync_reports_its_errors_and_recovers(tmp_path):
    from backend.host.daemons.base import DaemonContext

    d = DaemonContext(tmp_path / "rendered")
    a = UnboundApplier(d)
    d.cfg = load_config(_text(tmp_path))
    s = LeaseSync(a)
    a.sync = s
    sock = tmp_path / "run/unbound/control.sock"
    sock.parent.mkdir(parents=True)
    sock.write_text("")  # not a socket: connecting fails
    t0 = time.time()
    assert s.round() is False
    rep = a.status()["lease_sync"]
    assert rep["errors"] == 1 and rep["last_ok"] is None and rep["last_error_time"] >= t0
    assert "ConnectionRefusedError" in rep["last_error"] or "Errno" in rep["last_error"], rep
    # A control socket that answers: the next round succeeds and says so.
    sock.unlink()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(sock))
    srv.listen(8)
    seen = []

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                seen.append(c.recv(4096).decode())
                c.sendall(b"ok\n")

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        assert s.round() is True
    finally:
        srv.close()
    rep = a.status()["lease_sync"]
    assert rep["last_ok"] >= rep["last_error_time"] and rep["errors"] == 1
    assert seen and seen[0].startswith("UBCT1 list_local_data")


def test_desired_shares_daemon_renders_between_check_and_apply(tmp_path, monkeypatch):
    import backend.host.daemons.radvd as rr

    calls = []
    real = rr.r_radvd.render_radvd
    monkeypatch.setattr(rr.r_radvd, "render_radvd", lambda cfg: calls.append(1) or real(cfg))
    p = _pipeline(tmp_path)
    p.commit(_text(tmp_path), "services", "t")
    assert len(calls) == 1
    p.drift()
    assert len(calls) == 1


def test_an_explicit_apply_reads_a_changed_blocklist_again(tmp_path):
    p = _pipeline(tmp_path)
    text = _text(tmp_path)
    p.commit(text, "services", "t")
    conf = tmp_path / "svc/rendered/unbound/unbound.conf"
    assert "tracker.example" not in conf.read_text()
    (tmp_path / "ads.txt").write_text("ads.example\ntracker.example\n")
    res = p.apply()
    assert res["services"] == 1 and "tracker.example" in conf.read_text()
    assert p.apply()["changes"] == 0
