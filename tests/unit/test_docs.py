"""docs/: the commands the docs give are the ones the repository supports (no drift).

Every command in a ```sh block is checked: `talgate` lines parse with the real CLI parser,
kustomize paths are Kustomize roots, `@talos/...` patches exist (and deploy.md names every
patch), pod, Secret and image names exist in manifests/ and the Containerfile, and
`talosctl`/`flux`/`kubectl` use only the verbs listed here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
DOC_FILES = ["deploy.md", "operate.md", "upgrade.md", "backup.md"]

TALOSCTL_VERBS = {"gen", "apply-config", "config", "bootstrap", "health", "kubeconfig", "upgrade", "rollback",
                  "patch", "get", "logs", "copy"}
FLUX_VERBS = {"install", "create", "get", "reconcile"}
KUBECTL_VERBS = {"apply", "exec", "attach", "create", "get", "rollout", "port-forward"}


def commands(name: str) -> list[str]:
    text = (DOCS / name).read_text()
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        out += [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]
    return out


def all_commands() -> list[tuple[str, str]]:
    return [(n, c) for n in DOC_FILES for c in commands(n)]


def argv_of(cmd: str) -> list[str]:
    """The first command of a line, without redirections and `&&` chains."""
    argv = shlex.split(cmd.split("&&")[0])
    cut = next((i for i, a in enumerate(argv) if a in {"<", ">", "|"}), len(argv))
    return argv[:cut]


def talgate_invocations() -> list[tuple[str, list[str]]]:
    out = []
    for name, cmd in all_commands():
        argv = argv_of(cmd)
        if "talgate" in argv and argv[0] in {"talgate", "kubectl"}:
            i = argv.index("talgate") if argv[0] == "talgate" else (argv.index("--") + 1 if "--" in argv else -1)
            if i >= 0 and argv[i] == "talgate":
                out.append((name, argv[i + 1:]))
    return out


def manifests_objects() -> list[dict]:
    objs = []
    for f in (REPO / "manifests").rglob("*.yaml"):
        if f.name != "kustomization.yaml":
            objs += [d for d in yaml.safe_load_all(f.read_text()) if isinstance(d, dict) and "kind" in d]
    return objs


def test_docs_exist_and_have_commands():
    for name in DOC_FILES:
        assert commands(name), f"docs/{name} has no ```sh commands"


@pytest.mark.parametrize("name,argv", talgate_invocations(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_talgate_commands_parse(name, argv):
    cli = pytest.importorskip("backend.cli", reason="backend.cli not importable")
    parser = cli.build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse error
        pytest.fail(f"docs/{name}: `talgate {' '.join(argv)}` is not a valid talgate command ({exc})")


def test_docs_cover_the_cli_we_promise():
    used = {tuple(a[:2]) if a and a[0] in {"config", "talos"} else (a[0],) for _, a in talgate_invocations()}
    assert {("commit",), ("rollback",), ("log",), ("status",), ("console",), ("talos", "render"),
            ("config", "validate")} <= used


def test_kustomize_paths_are_roots():
    for name, cmd in all_commands():
        argv = argv_of(cmd)
        if argv[:2] in (["kubectl", "apply"], ["kubectl", "kustomize"]) and "-k" in argv + ["-k"]:
            path = argv[argv.index("-k") + 1] if "-k" in argv else argv[2]
            assert (REPO / path / "kustomization.yaml").is_file(), f"docs/{name}: {path} is not a Kustomize root"


def test_talos_patches_exist_and_deploy_names_them_all():
    used = set()
    for name, cmd in all_commands():
        for patch in re.findall(r"@(talos/\S+\.yaml)", cmd):
            assert (REPO / patch).is_file(), f"docs/{name}: {patch} does not exist"
            used.add(patch)
    deploy = " ".join(commands("deploy.md"))
    for patch in sorted((REPO / "talos/patches").glob("*.yaml")):
        rel = str(patch.relative_to(REPO))
        assert f"@{rel}" in deploy, f"docs/deploy.md does not apply {rel}"
    assert "talos/optional/serial-console.yaml" in used


def test_tool_verbs_are_known():
    for name, cmd in all_commands():
        argv = argv_of(cmd)
        tool, rest = argv[0], [a for a in argv[1:] if not a.startswith("-")]
        if tool == "talosctl":
            # skip option values: --talosconfig out/talosconfig
            words = argv[1:]
            while words and words[0].startswith("--") and "=" not in words[0]:
                words = words[2:]
            assert words and words[0] in TALOSCTL_VERBS, f"docs/{name}: talosctl {words[:1]}"
        elif tool == "flux":
            assert rest[0] in FLUX_VERBS, f"docs/{name}: flux {rest[0]}"
        elif tool == "kubectl":
            words = [a for a in argv[1:]]
            while words and words[0] in {"-n", "--namespace"}:
                words = words[2:]
            assert words[0] in KUBECTL_VERBS, f"docs/{name}: kubectl {words[0]}"


def test_pods_secrets_and_namespaces_exist():
    objs = manifests_objects()
    sts = {o["metadata"]["name"] for o in objs if o["kind"] == "StatefulSet"}
    pods = {f"{s}-0" for s in sts}
    secret_refs = set()
    for o in objs:
        for v in (o.get("spec", {}).get("template", {}).get("spec", {}).get("volumes") or []):
            if "secret" in v:
                secret_refs.add(v["secret"]["secretName"])
        if o["kind"] == "GitRepository":
            secret_refs.add(o["spec"]["secretRef"]["name"])
    text = " ".join(DOCS.joinpath(n).read_text() for n in DOC_FILES)
    for pod in set(re.findall(r"\b(talgate-console[\w-]*-0)\b", text)):
        assert pod in pods, f"docs name pod {pod}, manifests have {sorted(pods)}"
    for name, cmd in all_commands():
        argv = argv_of(cmd)
        if "secret" in argv and "create" in argv:
            secret = argv[argv.index("secret") + 2]
            assert secret in secret_refs, f"docs/{name}: Secret {secret} is not used by any manifest"
        own = argv[:argv.index("--")] if "--" in argv else argv
        for i, a in enumerate(own):
            if own[0] in {"kubectl", "flux"} and a in {"-n", "--namespace"}:
                assert own[i + 1] == "talgate-system", f"docs/{name}: namespace {own[i + 1]}"


def test_role_names_match_rbac():
    roles = {o["metadata"]["name"] for o in manifests_objects() if o["kind"] == "Role"}
    for name, cmd in all_commands():
        for role in re.findall(r"--role=(\S+)", cmd):
            assert role in roles, f"docs/{name}: role {role}"


def test_ssh_ports_and_serial_device_match_components():
    sshd = (REPO / "manifests/components/console-ssh/console-ssh.yaml").read_text()
    operate = (DOCS / "operate.md").read_text()
    for port in re.findall(r"ssh -p (\d+)", operate) + re.findall(r"port (\d{4})", operate):
        assert f"Port {port}" in sshd, f"docs/operate.md: SSH port {port} not in sshd_config"
    serial = (REPO / "manifests/components/console-serial/console-serial.yaml").read_text()
    assert "/dev/ttyS1" in operate and "/dev/ttyS1" in serial


def test_image_build_commands_match_containerfile():
    cf = (REPO / "Containerfile").read_text()
    for name, cmd in all_commands():
        if cmd.startswith("podman build"):
            assert cmd in cf, f"docs/{name}: `{cmd}` differs from the Containerfile's header"


def test_referenced_repo_paths_exist():
    for name in DOC_FILES:
        text = (DOCS / name).read_text()
        for path in re.findall(r"`((?:manifests|talos|docs)/[\w./<>-]+)`", text):
            if "<" in path:
                continue
            assert (REPO / path).exists(), f"docs/{name}: `{path}` does not exist"
        for path in re.findall(r"\b(docs/[\w-]+\.md)\b", text):
            assert (REPO / path).exists(), f"docs/{name}: {path} does not exist"
