"""manifests/: every Kustomize root builds, every object validates, and the policies hold.

- Built-in kinds are validated offline against the Kubernetes JSON schemas shipped by the
  `kubernetes-validate` package (strict: unknown fields fail) for K8S_VERSION.
- Custom resources (Flux, cert-manager) are validated against manifests/schemas/*.json.
- Any other kind fails, unless it is in UNVALIDATED_KINDS (empty on purpose).
- Policies: pinned images, resources and securityContext everywhere, `privileged` nowhere
  but the agent, capabilities only as "drop ALL + add what the daemon needs" with a comment
  saying why, and every service the mission names present in the `full` overlay.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
SCHEMAS = MANIFESTS / "schemas"

# Talos 1.14 runs Kubernetes up to 1.36/1.37 (Talos 1.12 shipped 1.35); 1.36 is the newest
# version both the Talos release and kubernetes-validate (>= 1.36) cover.
K8S_VERSION = "1.36.0"

# Kinds that may appear without any schema. Empty on purpose: add a kind only with a
# comment saying why it cannot be validated.
UNVALIDATED_KINDS: dict[tuple[str, str], str] = {}

# The only workload allowed `privileged: true` (and even it does not use it today).
PRIVILEGED_ALLOWED = {"talgate-agent"}

# hostPath roots a pod may mount. /var/mnt/talgate is the Talos user volume "talgate".
HOSTPATH_ALLOWED = ("/var/mnt/talgate", "/sys/fs/bpf", "/proc", "/sys", "/var/log", "/dev/net/tun", "/dev/ttyS1", "/")

# Workloads the mission (issue 6) names; all must be in the `full` overlay.
MISSION_WORKLOADS = {
    "talgate-console", "talgate-console-ro",  # console (rw + read-only viewers)
    "kea-dhcp4", "kea-dhcp6", "unbound", "radvd", "chrony", "avahi", "frr",
    "suricata", "zeek", "wireguard", "openvpn",
    "prometheus", "alertmanager", "grafana", "node-exporter", "loki", "fluent-bit",
    "registry-mirror",
}
# and the platform objects (kind, name)
MISSION_OBJECTS = {
    ("Role", "talgate-admin"), ("Role", "talgate-viewer"),
    ("GitRepository", "talgate"), ("Kustomization", "talgate"),
    ("Kustomization", "talgate-cert-manager"), ("Kustomization", "talgate-issuers"),
    ("ConfigMap", "prometheus-rules"), ("ConfigMap", "grafana-dashboards"),
}
HOME_WORKLOADS = {
    "talgate-console", "talgate-console-ro", "kea-dhcp4", "kea-dhcp6", "unbound", "radvd",
    "chrony", "avahi", "wireguard", "prometheus", "alertmanager", "node-exporter", "registry-mirror",
}

WORKLOAD_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod"}

CRD_SCHEMAS = {
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): "gitrepository-source-v1.json",
    ("source.toolkit.fluxcd.io/v1", "HelmRepository"): "helmrepository-source-v1.json",
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): "kustomization-kustomize-v1.json",
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"): "helmrelease-helm-v2.json",
    ("cert-manager.io/v1", "ClusterIssuer"): "clusterissuer-certmanager-v1.json",
    ("cert-manager.io/v1", "Certificate"): "certificate-certmanager-v1.json",
}

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")


# ---------------------------------------------------------------- building


def kustomize_roots() -> list[Path]:
    """Every directory with a kustomization.yaml that is not a Component."""
    roots = []
    for kz in sorted(MANIFESTS.rglob("kustomization.yaml")):
        doc = yaml.safe_load(kz.read_text())
        if doc.get("kind") != "Component":
            roots.append(kz.parent)
    return roots


def components() -> list[Path]:
    return [kz.parent for kz in sorted(MANIFESTS.rglob("kustomization.yaml"))
            if yaml.safe_load(kz.read_text()).get("kind") == "Component"]


def kustomize(path: Path) -> list[dict]:
    proc = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


_BUILDS: dict[str, list[dict]] = {}


def build(rel: str) -> list[dict]:
    if rel not in _BUILDS:
        _BUILDS[rel] = kustomize(MANIFESTS / rel)
    return _BUILDS[rel]


def build_with_components(tmp_path: Path, overlay: str, comps: list[Path]) -> list[dict]:
    """An overlay plus components, as an operator would enable them in their overlay."""
    rel = lambda p: os.path.relpath(p, tmp_path)  # noqa: E731 - kustomize refuses absolute paths
    kz = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
          "resources": [rel(MANIFESTS / overlay)], "components": [rel(c) for c in comps]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kz))
    return kustomize(tmp_path)


def root_ids() -> list[str]:
    return [str(p.relative_to(MANIFESTS)) for p in kustomize_roots()]


# ---------------------------------------------------------------- validation


def validate_object(obj: dict) -> None:
    """Raise AssertionError naming the object if it does not validate."""
    import kubernetes_validate

    api, kind = obj.get("apiVersion"), obj.get("kind")
    name = f"{kind}/{obj.get('metadata', {}).get('name')}"
    if (api, kind) in CRD_SCHEMAS:
        schema = json.loads((SCHEMAS / CRD_SCHEMAS[(api, kind)]).read_text())
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj), key=str)
        assert not errors, f"{name}: " + "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
        return
    if (api, kind) in UNVALIDATED_KINDS:
        return
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise AssertionError(f"{name}: no schema for {api} {kind} (add one to manifests/schemas/): {exc.message}") from None
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(f"{name}: {'/'.join(map(str, exc.path))}: {exc.message}") from None


def test_kubernetes_validate_covers_target_version():
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (dev extra)")
    versions = kubernetes_validate.utils.all_versions()
    assert any(v.startswith(K8S_VERSION.rsplit(".", 1)[0] + ".") for v in versions), (
        f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for {K8S_VERSION}: need >= 1.36")


@needs_kubectl
@pytest.mark.parametrize("root", root_ids())
def test_root_builds_and_validates(root):
    objs = build(root)
    assert objs, f"{root} builds to nothing"
    for obj in objs:
        validate_object(obj)


@needs_kubectl
def test_components_build_and_validate(tmp_path):
    comps = components()
    assert {c.name for c in comps} >= {"agent-daemonset", "console-ssh", "console-serial", "suricata-ips"}
    objs = build_with_components(tmp_path, "overlays/full", comps)
    for obj in objs:
        validate_object(obj)
    assert_policies(objs)
    ds = {o["metadata"]["name"]: o for o in objs if o["kind"] == "DaemonSet"}
    assert "talgate-agent" in ds
    assert "-q" in ds["suricata"]["spec"]["template"]["spec"]["containers"][0]["args"]


def test_unknown_kind_is_refused():
    pytest.importorskip("kubernetes_validate")
    with pytest.raises(AssertionError, match="no schema"):
        validate_object({"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}})


def test_crd_schema_refuses_typo():
    bad = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
           "metadata": {"name": "x", "namespace": "talgate-system"},
           "spec": {"interval": "1m", "url": "https://example.org/r.git", "brnach": "main"}}
    with pytest.raises(AssertionError, match="brnach"):
        validate_object(bad)


def test_schemas_name_their_source():
    text = (SCHEMAS / "SOURCE.md").read_text()
    for fn in set(CRD_SCHEMAS.values()):
        assert fn in text, f"{fn} is not described in manifests/schemas/SOURCE.md"
        json.loads((SCHEMAS / fn).read_text())
    assert {p.name for p in SCHEMAS.glob("*.json")} == set(CRD_SCHEMAS.values())


# ---------------------------------------------------------------- policies


def pod_spec(obj: dict) -> dict | None:
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in WORKLOAD_KINDS:
        return obj["spec"]["template"]["spec"]
    return None


IMAGE_RE = re.compile(r"^(?P<repo>[a-z0-9.\-/:_]+?)(?::(?P<tag>[\w][\w.\-]{0,127}))?(?:@sha256:(?P<digest>[0-9a-f]{64}))?$")


def image_problem(image: str) -> str | None:
    m = IMAGE_RE.match(image)
    if not m:
        return f"unparseable image reference {image!r}"
    if m["digest"]:
        return None
    if not m["tag"]:
        return f"untagged image {image!r}"
    if m["tag"] == "latest":
        return f"image {image!r} uses :latest"
    if "." not in m["repo"].split("/")[0]:
        return f"image {image!r} has no registry host (write docker.io/... explicitly)"
    return None


def policy_problems(objs: list[dict]) -> list[str]:
    problems: list[str] = []
    for obj in objs:
        spec = pod_spec(obj)
        if spec is None:
            continue
        wname = obj["metadata"]["name"]
        tolerations = spec.get("tolerations", [])
        if not any(t.get("operator") == "Exists" and t.get("key") in (None, "node-role.kubernetes.io/control-plane")
                   for t in tolerations):
            problems.append(f"{wname}: no toleration for the control-plane taint (single-node router)")
        if spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{wname}: hostPID/hostIPC")
        for vol in spec.get("volumes", []):
            hp = vol.get("hostPath", {}).get("path")
            if hp is not None and not any(hp == a or hp.startswith(a.rstrip("/") + "/") for a in HOSTPATH_ALLOWED):
                problems.append(f"{wname}: hostPath {hp} outside the allowed roots")
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            where = f"{obj['kind']}/{wname}/{c['name']}"
            img = image_problem(c.get("image", ""))
            if img:
                problems.append(f"{where}: {img}")
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(res.get(part) or {}):
                    problems.append(f"{where}: resources.{part} needs cpu and memory")
            sc = c.get("securityContext")
            if not sc:
                problems.append(f"{where}: no securityContext")
                continue
            if sc.get("privileged") and wname not in PRIVILEGED_ALLOWED:
                problems.append(f"{where}: privileged (only {sorted(PRIVILEGED_ALLOWED)} may be)")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation must be false")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                problems.append(f"{where}: capabilities.drop must contain ALL")
            if "ALL" in (caps.get("add") or []) or "SYS_ADMIN" in (caps.get("add") or []):
                problems.append(f"{where}: adds ALL/SYS_ADMIN")
    return problems


def assert_policies(objs: list[dict]) -> None:
    problems = policy_problems(objs)
    assert not problems, "\n".join(problems)


@needs_kubectl
@pytest.mark.parametrize("root", root_ids())
def test_policies(root):
    assert_policies(build(root))


def _pod(**container):
    base = {"name": "c", "image": "docker.io/library/x:1.0",
            "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}, "limits": {"cpu": "1m", "memory": "1Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
    base.update(container)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
            "spec": {"template": {"spec": {
                "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
                "containers": [base]}}}}


@pytest.mark.parametrize("container,needle", [
    ({"image": "docker.io/library/x:latest"}, "latest"),
    ({"image": "docker.io/library/x"}, "untagged"),
    ({"image": "x:1.0"}, "registry host"),
    ({"resources": {}}, "resources.requests"),
    ({"resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}, "resources.limits"),
    ({"securityContext": None}, "no securityContext"),
    ({"securityContext": {"privileged": True, "allowPrivilegeEscalation": False,
                          "capabilities": {"drop": ["ALL"]}}}, "privileged"),
    ({"securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_RAW"]}}}, "drop must contain ALL"),
    ({"securityContext": {"allowPrivilegeEscalation": False,
                          "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}, "SYS_ADMIN"),
])
def test_policy_catches(container, needle):
    problems = policy_problems([_pod(**container)])
    assert any(needle in p for p in problems), problems


def test_policy_accepts_good_pod_and_digest():
    assert policy_problems([_pod()]) == []
    assert policy_problems([_pod(image="ghcr.io/a/b@sha256:" + "0" * 64)]) == []


def test_added_capabilities_are_commented():
    """Every capability added in manifests/ is a block item preceded by a `# CAP: why` comment."""
    bad = []
    for f in sorted(MANIFESTS.rglob("*.yaml")):
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^(\s*)add:\s*(.*)$", line)
            if not m or "capabilities" not in "".join(lines[max(0, i - 2):i + 1]):
                continue
            if m.group(2):
                bad.append(f"{f}:{i + 1}: write added capabilities as a block list with a comment each")
                continue
            j, indent = i + 1, None
            while j < len(lines):
                item = re.match(r"^(\s*)(#\s*(\w+):.*|- (\w+))\s*$", lines[j])
                if not item or (indent is not None and len(item.group(1)) != indent):
                    break
                indent = len(item.group(1))
                if item.group(4):
                    prev = lines[j - 1].strip()
                    if not prev.startswith(f"# {item.group(4)}:"):
                        bad.append(f"{f}:{j + 1}: {item.group(4)} added without a '# {item.group(4)}: why' comment")
                j += 1
    assert not bad, "\n".join(bad)


@needs_kubectl
def test_full_has_every_mission_service():
    objs = build("overlays/full")
    workloads = {o["metadata"]["name"] for o in objs if o["kind"] in WORKLOAD_KINDS}
    missing = MISSION_WORKLOADS - workloads
    assert not missing, f"missing from overlays/full: {sorted(missing)}"
    objects = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert not MISSION_OBJECTS - objects, f"missing from overlays/full: {sorted(MISSION_OBJECTS - objects)}"
    # cert-manager (ACME + internal CA) is reached through the Flux Kustomizations
    issuers = {o["metadata"]["name"] for o in build("platform/issuers") if o["kind"] == "ClusterIssuer"}
    assert {"letsencrypt", "talgate-internal-ca"} <= issuers
    acme = next(o for o in build("platform/issuers") if o["metadata"]["name"] == "letsencrypt")
    assert "acme" in acme["spec"]
    assert any(o["kind"] == "HelmRelease" and o["metadata"]["name"] == "cert-manager" for o in build("platform/cert-manager"))


@needs_kubectl
def test_home_has_its_services():
    workloads = {o["metadata"]["name"] for o in build("overlays/home") if o["kind"] in WORKLOAD_KINDS}
    assert HOME_WORKLOADS <= workloads, sorted(HOME_WORKLOADS - workloads)


@needs_kubectl
@pytest.mark.parametrize("overlay", ["home", "full"])
def test_flux_paths_exist_and_overlay_syncs_itself(overlay):
    objs = build(f"overlays/{overlay}")
    paths = {o["metadata"]["name"]: o["spec"]["path"] for o in objs
             if o["kind"] == "Kustomization" and o["apiVersion"].startswith("kustomize.toolkit.fluxcd.io")}
    assert paths["talgate"] == f"./manifests/overlays/{overlay}"
    for name, p in paths.items():
        assert (REPO / p / "kustomization.yaml").is_file(), f"Flux Kustomization {name} points at missing {p}"


@needs_kubectl
def test_console_for_attach_and_viewers():
    objs = {(o["kind"], o["metadata"]["name"]): o for o in build("overlays/home")}
    for name, ro in (("talgate-console", False), ("talgate-console-ro", True)):
        sts = objs[("StatefulSet", name)]
        c = sts["spec"]["template"]["spec"]["containers"][0]
        assert c["stdin"] and c["tty"], "kubectl attach needs stdin+tty"
        assert ("--read-only" in c["args"]) == ro
        assert c["args"][c["args"].index("--socket") + 1] == ("/run/talgate/agent-ro.sock" if ro else "/run/talgate/agent.sock")
    viewer = objs[("Role", "talgate-viewer")]
    attach = [r for r in viewer["rules"] if "pods/attach" in r["resources"]]
    assert attach and all(r["resourceNames"] == ["talgate-console-ro-0"] for r in attach), "viewers get the read-only console only"
    assert not any(v in r["verbs"] for r in viewer["rules"] for v in ("delete", "patch", "update")), "viewer role writes"


@needs_kubectl
def test_agent_daemonset_matches_talos_container_config(tmp_path):
    """The DaemonSet form (Talos < 1.14) runs the agent exactly like the ContainerConfig."""
    objs = build_with_components(tmp_path, "overlays/home", [MANIFESTS / "components/agent-daemonset"])
    ds = next(o for o in objs if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "talgate-agent")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    talos = [d for d in yaml.safe_load_all((REPO / "talos/patches/50-agent.yaml").read_text())
             if d and d.get("kind") == "ContainerConfig"][0]
    assert c["args"] == talos["args"]
    assert c["image"] == talos["image"]
    assert set(c["securityContext"]["capabilities"]["add"]) == set(talos["security"]["capabilities"]["add"])
    assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
    assert not c["securityContext"].get("privileged")
