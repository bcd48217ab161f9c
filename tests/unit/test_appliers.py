"""The applier protocol and registry, and the pipeline over fake appliers (no kernel): order,
idempotence, drift, all-or-nothing when any applier fails, and runtime facts in the desired state."""

from __future__ import annotations

import pytest

from backend.agent.pipeline import ApplyFailed, Pipeline, Refused
from backend.host.applier import DAEMONS, NETWORK, NFTABLES, Applier, Desired, Facts, HostContext, Registry
from backend.host.fake import FakeApplier, fake_appliers
from backend.lab.lab import example_config
from backend.model import load_config

LINKS = ("wan0", "wan1", "lan0", "guest0", "mgmt0")

# Two uplinks: wan1 is the backup default route (higher metric).
TWO_WANS = example_config().replace(
    "  lan0:\n", "  wan1:\n    ipv4: [203.0.113.2/24]\n  lan0:\n", 1).replace(
    "interfaces: [wan0]", "interfaces: [wan0, wan1]").replace(
    "  - {name: default-v4, to: 0.0.0.0/0, via: 198.51.100.1}\n",
    "  - {name: default-v4, to: 0.0.0.0/0, via: 198.51.100.1, metric: 100}\n"
    "  - {name: backup-v4, to: 0.0.0.0/0, via: 203.0.113.1, metric: 200}\n")


def _pipeline(tmp_path, appliers=None, **kw) -> Pipeline:
    return Pipeline(tmp_path / "repo", tmp_path / "state", appliers=appliers or fake_appliers(LINKS), **kw)


def test_registry_builds_in_stage_order_then_registration_order(tmp_path):
    r = Registry()
    r.register(lambda ctx: FakeApplier("kea", "services"), stage=DAEMONS, name="kea")
    r.register(lambda ctx: FakeApplier("nftables", "nft"), stage=NFTABLES, name="nftables")
    r.register(lambda ctx: [FakeApplier("unbound"), FakeApplier("radvd")], stage=DAEMONS, name="two")
    r.register(lambda ctx: FakeApplier("network", "net"), stage=NETWORK, name="network")
    assert r.names() == ["network", "nftables", "kea", "two"]
    built = r.build(HostContext(tmp_path))
    assert [a.name for a in built] == ["network", "nftables", "kea", "unbound", "radvd"]
    assert all(isinstance(a, Applier) for a in built)


def test_registry_refuses_duplicates_and_non_appliers(tmp_path):
    r = Registry()
    r.register(lambda ctx: FakeApplier("a"), name="a")
    with pytest.raises(ValueError, match="already registered"):
        r.register(lambda ctx: FakeApplier("a"), name="a")
    r.register(lambda ctx: [FakeApplier("a")], name="b")
    with pytest.raises(ValueError, match="two appliers named"):
        r.build(HostContext(tmp_path))
    r2 = Registry()
    r2.register(lambda ctx: [object()], name="junk")
    with pytest.raises(TypeError, match="not an Applier"):
        r2.build(HostContext(tmp_path))


def test_builtin_registry_order():
    from backend.host.applier import builtin

    names = builtin().names()
    assert names[:2] == ["links", "network"] and len(names) >= 4
    # policy routing (ip rules, tables) after the links and addresses, before the firewall
    assert names.index("network") < names.index("rules") < names.index("nftables")


def test_pipeline_takes_a_registry(tmp_path):
    r = Registry()
    made = []
    r.register(lambda ctx: made.append(ctx) or FakeApplier("services"), name="s")
    r.register(lambda ctx: FakeApplier("network", "net", links=LINKS), stage=NETWORK, name="n")
    p = Pipeline(tmp_path / "repo", tmp_path / "state", appliers=r)
    assert [a.name for a in p.appliers] == ["network", "services"]
    assert made[0].state_dir == tmp_path / "state"
    assert p.status()["appliers"] == ["network", "services"]


def test_commit_applies_every_applier_in_order_and_apply_twice_is_a_noop(tmp_path):
    p = _pipeline(tmp_path)
    res = p.commit(example_config(), "first", "t")
    assert res["changes"] > 0 and res["net"] > 0 and res["nft"] == 1 and res["services"] >= 1
    applies = [(a.name, c) for a in p.appliers for c in a.calls if c[0] == "apply"]
    assert [n for n, _ in applies] == ["network", "nftables", "services"]
    assert all(rev == res["rev"] for _, (_, rev) in applies)
    assert p.apply()["changes"] == 0
    assert p.drift() == []
    assert p.status()["in_sync"] and p.status()["last_error"] is None


def test_check_collects_every_appliers_problems_and_changes_nothing(tmp_path):
    p = _pipeline(tmp_path, fake_appliers(("wan0", "lan0", "guest0")))
    with pytest.raises(Refused) as e:
        p.commit(example_config(), "first", "t")
    assert [x.path for x in e.value.problems] == ["interfaces.mgmt0"]
    assert p.repo.head() is None
    assert all(a.kernel == {} for a in p.appliers)


def test_drift_reports_without_changing_and_repair_restores(tmp_path):
    p = _pipeline(tmp_path)
    p.commit(example_config(), "first", "t")
    svc = p.appliers[2]
    good = dict(svc.kernel)
    svc.kernel["dhcp"] = {"tampered": True}
    assert p.drift() == ["services: dhcp"]
    assert svc.kernel["dhcp"] == {"tampered": True}  # drift changed nothing
    out = p.repair()
    assert out["items"] == ["services: dhcp"] and out["repaired"] == 1
    assert svc.kernel == good and p.drift() == []


@pytest.mark.parametrize("failing", ["network", "nftables", "services"])
@pytest.mark.parametrize("after_change", [False, True], ids=["before-change", "after-change"])
def test_a_failure_in_any_applier_restores_every_applier_and_head(tmp_path, failing, after_change):
    p = _pipeline(tmp_path)
    first = p.commit(example_config(), "first", "t")
    before = {a.name: dict(a.kernel) for a in p.appliers}
    bad = next(a for a in p.appliers if a.name == failing)
    bad.fail["apply"] = OSError(13, "Permission denied")
    bad.fail_after_change = after_change
    text = example_config().replace("192.168.20.1/24", "192.168.21.1/24").replace("dport: 8443", "dport: 8444")
    with pytest.raises(ApplyFailed) as e:
        p.commit(text, "second", "t")
    # every other applier was put back; the failing one fails its restore too (its fault is still set)
    assert e.value.detail["stage"] == failing
    assert [x.split(":")[0] for x in e.value.detail["restore_errors"]] == [failing]
    bad.fail.clear()
    assert {a.name: a.kernel for a in p.appliers} == before
    assert p.repo.head() == first["rev"]
    st = p.status()
    assert st["head"] == first["rev"] == st["applied"] and "Permission denied" in st["last_error"]
    # Every applier after the failing one was restored too (idempotent: nothing to do there).
    later = [a for a in p.appliers[[x.name for x in p.appliers].index(failing) + 1:]]
    assert all(a.calls[-1] == ("apply", first["rev"]) for a in later)
    assert p.drift() == []


def test_a_failed_restore_is_reported(tmp_path):
    p = _pipeline(tmp_path)
    p.commit(example_config(), "first", "t")
    p.appliers[1].fail["apply"] = RuntimeError("boom")
    with pytest.raises(ApplyFailed) as e:
        p.commit(example_config().replace("dport: 8443", "dport: 8444"), "second", "t")
    assert e.value.detail["stage"] == "nftables" and e.value.detail["restored"] is None
    assert [x.split(":")[0] for x in e.value.detail["restore_errors"]] == ["nftables"]


def test_facts_change_the_desired_state_and_drift_keeps_a_failover(tmp_path):
    """A WAN marked unhealthy withdraws its routes: apply converges to that, and the drift loop
    neither reports nor repairs it back to the configured state."""
    p = _pipeline(tmp_path)
    p.commit(TWO_WANS, "two wans", "t")
    net = p.appliers[0]
    assert len([r for r in net.kernel["routes"] if r.startswith("0.0.0.0/0")]) == 2
    d = Desired(load_config(TWO_WANS))
    assert d.facts == Facts()
    failover = Facts(wan_health={"wan0": False})
    from backend.host.fake import _project_network

    assert _project_network(d) != _project_network(d.with_facts(failover))
    res = p.set_facts(failover)
    assert res["net"] == 1
    assert [r for r in net.kernel["routes"] if r.startswith("0.0.0.0/0")] == [
        "0.0.0.0/0 metric 200 via 203.0.113.1 dev None"]
    assert p.drift() == [] and p.repair() is None
    assert [r for r in net.kernel["routes"] if r.startswith("0.0.0.0/0")] == [
        "0.0.0.0/0 metric 200 via 203.0.113.1 dev None"]
    # Without the fact, the very same kernel is drift (and repair puts the primary back).
    p.facts = Facts()
    assert p.drift() == ["network: routes"]
    assert p.repair()["repaired"] == 1
    assert len([r for r in net.kernel["routes"] if r.startswith("0.0.0.0/0")]) == 2


def test_learned_addresses_are_desired_state(tmp_path):
    cfg = load_config(example_config())
    from backend.host.network import desired_state

    st = desired_state(Desired(cfg, Facts(addresses={"wan0": ["198.51.100.77/24"], "nope0": ["10.0.0.1/8"]})))
    assert "198.51.100.77/24" in st.addrs["wan0"] and "nope0" not in st.addrs


def test_the_ruleset_is_rendered_once_per_commit(tmp_path, monkeypatch):
    import backend.render.nft as rnft

    calls = []
    real = rnft.render
    monkeypatch.setattr(rnft, "render", lambda cfg: calls.append(1) or real(cfg))
    p = _pipeline(tmp_path)
    p.commit(example_config(), "first", "t", ssh="192.168.99.10 50000 192.168.99.1 22")
    assert len(calls) == 1  # lockout proof, the nft applier and drift share one Ruleset
    p.drift()
    p.apply()
    assert len(calls) == 1


def test_the_listed_changes_are_bounded_the_count_is_exact(tmp_path):
    class Many(FakeApplier):
        def apply(self, d):
            super().apply(d)
            return [f"many: {i}" for i in range(250)]

    p = _pipeline(tmp_path, [*fake_appliers(LINKS), Many("many")])
    res = p.commit(example_config(), "first", "t")
    assert res["changes"] == res["net"] + res["nft"] + res["services"] and res["services"] >= 250
    assert len(res["applied"]) == 101 and res["applied"][-1].endswith("more")
    assert p.status()["last_apply"]["applied"] == res["applied"]


def test_network_check_names_missing_links_and_route_interfaces_from_facts(tmp_path):
    from backend.host.network import NetworkApplier

    text = example_config().replace("  - {name: default-v6", "  - {name: via-dmz, to: 10.8.0.0/16, interface: dmz0}\n"
                                                          "  - {name: default-v6")
    cfg = load_config(text.replace("  mgmt0:\n", "  dmz0:\n    enabled: false\n  mgmt0:\n"))
    a = NetworkApplier(HostContext(tmp_path))
    d = Desired(cfg, Facts(links={"wan0", "lan0", "guest0"}))
    assert [(p.path, p.message) for p in a.check(d)] == [
        ("interfaces.mgmt0", "no such link in the router's network namespace"),
        ("routes[1].interface", "no such link 'dmz0' in the router's network namespace")]
