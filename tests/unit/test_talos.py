"""talos/: every document validates against Talos's published schema (talos/schema/), the
router-specific choices hold, and `render_talos_links` produces valid LinkConfig documents."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from types import SimpleNamespace as NS

import jsonschema
import pytest
import yaml

from backend.render import talos as rt

REPO = Path(__file__).resolve().parents[2]
TALOS = REPO / "talos"
SCHEMA_FILE = TALOS / "schema" / "config.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def kind_index(schema: dict) -> dict[str, str]:
    """kind -> $defs key, from the `kind` enum of every multi-document definition."""
    out = {}
    for key, d in schema["$defs"].items():
        kinds = d.get("properties", {}).get("kind", {}).get("enum")
        if kinds and "apiVersion" in d.get("properties", {}):
            for k in kinds:
                out[k] = key
    return out


def talos_errors(schema: dict, doc: dict) -> list[str]:
    if "kind" in doc:
        key = kind_index(schema).get(doc["kind"])
        if key is None:
            return [f"unknown Talos document kind {doc['kind']!r}"]
    elif "version" in doc or "machine" in doc or "cluster" in doc:
        key = "v1alpha1.Config"
    else:
        return ["neither a Talos document (kind) nor a v1alpha1 config"]
    wrapper = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{key}"}
    v = jsonschema.Draft202012Validator(wrapper)
    return [f"{doc.get('kind', 'v1alpha1')}/{doc.get('name', '')}: {'/'.join(map(str, e.path))}: {e.message}"
            for e in v.iter_errors(doc)]


def talos_files() -> list[Path]:
    return sorted(p for p in TALOS.rglob("*.yaml"))


def docs_of(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def all_docs() -> list[dict]:
    return [d for f in talos_files() for d in docs_of(f)]


def by_kind(kind: str) -> list[dict]:
    return [d for d in all_docs() if d.get("kind") == kind]


# ---------------------------------------------------------------- schema


def test_schema_is_the_published_one(schema):
    assert schema["$id"] == "https://talos.dev/v1.14/schemas/config.schema.json"
    source = (TALOS / "schema" / "SOURCE.md").read_text()
    assert "siderolabs/talos" in source and "config.schema.json" in source
    shared = REPO.parent / "shared" / "talos" / "config.schema.json"
    if shared.exists():
        assert json.loads(shared.read_text()) == schema, "talos/schema differs from the shared copy"


@pytest.mark.parametrize("path", talos_files(), ids=lambda p: str(p.relative_to(TALOS)))
def test_talos_documents_validate(schema, path):
    docs = docs_of(path)
    assert docs, f"{path} has no documents"
    errors = [e for d in docs for e in talos_errors(schema, d)]
    assert not errors, "\n".join(errors)


def test_validator_catches_mistakes(schema):
    assert talos_errors(schema, {"apiVersion": "v1alpha1", "kind": "ContainerConfig", "name": "x", "imag": "y"})
    assert talos_errors(schema, {"apiVersion": "v1alpha1", "kind": "LinkConfig", "name": "x",
                                 "addresses": [{"address": "192.168.1.1"}]})  # no prefix length
    assert talos_errors(schema, {"apiVersion": "v1alpha1", "kind": "NoSuchConfig"})
    assert not talos_errors(schema, {"version": "v1alpha1", "machine": {"type": "controlplane"}})


# ---------------------------------------------------------------- the router's choices


def test_only_the_management_link_is_configured_by_talos():
    links = by_kind("LinkConfig") + by_kind("VLANConfig") + by_kind("BondConfig") + by_kind("BridgeConfig")
    assert [d["name"] for d in links] == ["mgmt0"], "Talos must configure only the management link"


def test_talos_firewall_accepts_but_guards_its_ports():
    (default,) = by_kind("NetworkDefaultActionConfig")
    assert default["ingress"] == "accept", "inet talos stays at accept; the router's firewall is inet talgate"
    mgmt = ipaddress.ip_network(by_kind("LinkConfig")[0]["addresses"][0]["address"], strict=False)
    guarded: dict[int, set[str]] = {}
    for rule in by_kind("NetworkRuleConfig"):
        assert rule["portSelector"]["protocol"] == "tcp"
        for port in rule["portSelector"]["ports"]:
            guarded[int(port)] = {i["subnet"] for i in rule["ingress"]}
    assert set(guarded) == {50000, 50001, 6443, 10250}
    for port, subnets in guarded.items():
        assert str(mgmt) in subnets, f"port {port} must be open to the management network"
        assert subnets <= {str(mgmt), *rt.POD_SUBNETS}, f"port {port} open beyond mgmt and pods: {subnets}"
    assert guarded[50000] == {str(mgmt)} and guarded[50001] == {str(mgmt)}


def test_pod_and_service_cidrs_match_backend():
    (net,) = by_kind("KubeNetworkConfig")
    assert tuple(net["podSubnets"]) == rt.POD_SUBNETS
    assert tuple(net["serviceSubnets"]) == rt.SERVICE_SUBNETS


def test_registry_mirrors_match_the_mirror_deployment():
    mirrors = {d["name"]: d["endpoints"][0]["url"] for d in by_kind("RegistryMirrorConfig")}
    assert set(mirrors) == {"docker.io", "ghcr.io", "quay.io"}
    dep = yaml.safe_load((REPO / "manifests/platform/registry/registry-mirror.yaml").read_text())
    listen = {}
    for c in dep["spec"]["template"]["spec"]["containers"]:
        env = {e["name"]: e["value"] for e in c["env"]}
        host = env["REGISTRY_PROXY_REMOTEURL"].split("//")[1].replace("registry-1.", "")
        listen[host] = "http://" + env["REGISTRY_HTTP_ADDR"]
    assert mirrors == listen


def test_time_is_talos_business():
    (ts,) = by_kind("TimeSyncConfig")
    assert ts.get("enabled", True)
    ds = yaml.safe_load((REPO / "manifests/services/chrony/chrony.yaml").read_text())
    (c,) = ds["spec"]["template"]["spec"]["containers"]
    assert "-x" in c["command"], "chronyd -x: serve time, never steer the clock (Talos does)"
    assert "SYS_TIME" not in c["securityContext"]["capabilities"].get("add", [])


def test_agent_container_config():
    (agent,) = [d for d in by_kind("ContainerConfig") if d["name"] == "talgate-agent"]
    assert agent["network"]["mode"] == "host"
    sec = agent["security"]
    assert sec.get("profile") != "privileged"
    assert sec["capabilities"]["drop"] == ["ALL"]
    assert {"NET_ADMIN", "NET_RAW", "BPF"} <= set(sec["capabilities"]["add"])
    assert "SYS_ADMIN" not in sec["capabilities"]["add"]
    assert agent["args"][0] == "agent"
    args = dict(zip(agent["args"][1::2], agent["args"][2::2], strict=True))
    assert args == {"--repo": "/var/lib/talgate/repo", "--socket": "/run/talgate/agent.sock",
                    "--ro-socket": "/run/talgate/agent-ro.sock", "--state": "/var/lib/talgate/state"}
    dests = {next(iter(m.values()))["destination"] for m in agent["mounts"]}
    assert {"/var/lib/talgate", "/run/talgate", "/sys/fs/bpf"} <= dests
    vols = {d["name"] for d in by_kind("UserVolumeConfig")}
    for m in agent["mounts"]:
        if "userVolume" in m:
            assert m["userVolume"]["name"] in vols
        if "hostPath" in m:
            src = m["hostPath"]["source"]
            assert src == "/sys/fs/bpf" or src.startswith("/var/mnt/talgate"), src
    # no dependency on the network: the agent is what brings the router's links up
    assert "networks" not in agent.get("dependsOn", {})


def test_agent_image_matches_manifests_tag():
    (agent,) = [d for d in by_kind("ContainerConfig") if d["name"] == "talgate-agent"]
    repo, tag = agent["image"].rsplit(":", 1)
    for overlay in ("home", "full"):
        kz = yaml.safe_load((REPO / f"manifests/overlays/{overlay}/kustomization.yaml").read_text())
        tags = {i["name"]: i["newTag"] for i in kz["images"]}
        assert tags[repo] == tag, f"overlays/{overlay} runs {tags[repo]}, the Talos agent {tag}: upgrade both"


def test_kernel_facts_respected():
    modules = {d["name"] for d in by_kind("KernelModuleConfig")}
    assert not modules & {"sch_cake", "pppoe"}, "the Talos kernel has no CAKE and no PPPoE"


# ---------------------------------------------------------------- render_talos_links


def sample_cfg(**system):
    ifaces = {
        "wan0": NS(ipv4="dhcp", ipv6=NS(slaac=True), mtu=None),
        "lan0": NS(ipv4=[ipaddress.ip_interface("192.168.10.1/24")],
                   ipv6=[ipaddress.ip_interface("fd00:10::1/64")], mtu=None),
        "mgmt0": NS(ipv4=[ipaddress.ip_interface("192.168.99.1/24")],
                    ipv6=[ipaddress.ip_interface("fd00:99::1/64")], mtu=9000),
    }
    routes = [
        NS(to=ipaddress.ip_network("10.20.0.0/16"), via=ipaddress.ip_address("192.168.99.254"), interface=None),
        NS(to=ipaddress.ip_network("fd00:20::/48"), via=None, interface="mgmt0"),
        NS(to="default", via=ipaddress.ip_address("203.0.113.1"), interface="wan0"),
        NS(to=ipaddress.ip_network("172.16.0.0/12"), via=ipaddress.ip_address("192.168.10.254"), interface=None),
    ]
    sysns = NS(hostname="gw", management_interface="mgmt0")
    for k, v in system.items():
        setattr(sysns, k, v)
    return NS(system=sysns, interfaces=ifaces, routes=routes)


def test_render_links_validates_and_is_mgmt_only(schema):
    out = rt.render_talos_links(sample_cfg())
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert len(docs) == 1
    (link,) = docs
    assert not talos_errors(schema, link)
    assert link == {
        "apiVersion": "v1alpha1", "kind": "LinkConfig", "name": "mgmt0", "up": True, "mtu": 9000,
        "addresses": [{"address": "192.168.99.1/24"}, {"address": "fd00:99::1/64"}],
        "routes": [{"destination": "10.20.0.0/16", "gateway": "192.168.99.254"}, {"destination": "fd00:20::/48"}],
    }
    assert "lan0" not in out and "wan0" not in out


def test_render_default_route_via_mgmt(schema):
    cfg = sample_cfg()
    cfg.routes = [NS(to="0.0.0.0/0", via=ipaddress.ip_address("192.168.99.254"), interface="mgmt0")]
    (link,) = [d for d in yaml.safe_load_all(rt.render_talos_links(cfg)) if d]
    assert link["routes"] == [{"gateway": "192.168.99.254"}]
    assert not talos_errors(schema, link)


def test_render_is_deterministic():
    assert rt.render_talos_links(sample_cfg()) == rt.render_talos_links(sample_cfg())


def test_render_needs_a_management_interface():
    with pytest.raises(ValueError, match="management_interface"):
        rt.render_talos_links(sample_cfg(management_interface=None))
    with pytest.raises(ValueError, match="not among interfaces"):
        rt.render_talos_links(sample_cfg(management_interface="eth9"))


def test_committed_management_patch_is_rendered_output(schema):
    """talos/patches/20-management-link.yaml is what `talgate talos render` gives for the sample config."""
    cfg = sample_cfg()
    cfg.interfaces["mgmt0"] = NS(ipv4=[ipaddress.ip_interface("192.168.99.1/24")], ipv6=[], mtu=None)
    cfg.routes = []
    rendered = [d for d in yaml.safe_load_all(rt.render_talos_links(cfg)) if d]
    assert rendered == docs_of(TALOS / "patches/20-management-link.yaml")


# ---------------------------------------------------------------- Kubernetes-only checks


def test_subnets_overlapping_pod_or_service_cidr_are_refused():
    cfg = sample_cfg()
    cfg.interfaces["guest0"] = NS(ipv4=[ipaddress.ip_interface("10.244.3.1/24")], ipv6=[], mtu=None)
    cfg.vpn = {"wireguard": {"wg0": NS(subnet=ipaddress.ip_network("10.100.0.0/24"))}}
    problems = rt.kubernetes_problems(cfg)
    paths = [p for p, _ in problems]
    assert "interfaces.guest0.ipv4[0]" in paths
    assert "vpn.wireguard.wg0.subnet" in paths  # 10.100.0.0/24 is inside 10.96.0.0/12
    assert all("overlaps" in m for _, m in problems)
    assert not any(p.startswith("interfaces.lan0") or p.startswith("routes") for p in paths)


def test_clean_config_has_no_kubernetes_problems():
    assert rt.kubernetes_problems(sample_cfg()) == []


def test_forward_policy_must_let_pods_through():
    required = rt.cni_forward_rules()
    assert 'iifname "cni0" accept' in required and "ip saddr 10.244.0.0/16 accept" in required
    assert rt.forward_lets_pods_through(required) == []
    missing = rt.forward_lets_pods_through(['iifname "cni0"  accept'])
    assert 'iifname "cni0" accept' not in missing and "ip daddr 10.244.0.0/16 accept" in missing
