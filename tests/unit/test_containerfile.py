"""Containerfile lint (images cannot be built on this machine: no container registry to pull the
base images from), plus `talgate --version` inside the image when podman has it locally."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "Containerfile"
IMAGE_TAG = "0.1.0"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for raw in CONTAINERFILE.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        buf += (" " if buf else "") + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            word, _, rest = buf.partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    assert not buf, "dangling line continuation"
    return out


def stages() -> dict[str, list[tuple[str, str]]]:
    args = {}
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for ins, rest in instructions():
        if ins == "ARG" and current is None:
            k, _, v = rest.partition("=")
            args[k] = v
        elif ins == "FROM":
            m = re.match(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            assert m, rest
            image = re.sub(r"\$\{(\w+)\}", lambda g: args[g.group(1)], m.group(1))
            current = m.group(2) or f"stage{len(result)}"
            result[current] = [("FROM", image)]
        else:
            assert current is not None, f"{ins} before FROM"
            result[current].append((ins, rest))
    return result


def test_base_images_pinned():
    for name, ins in stages().items():
        image = ins[0][1]
        if image in stages():  # FROM another stage
            continue
        assert "/" in image and "." in image.split("/")[0], f"{name}: name the registry ({image})"
        tag = image.split("@")[0].rsplit(":", 1)
        assert "@sha256:" in image or (len(tag) == 2 and tag[1] != "latest" and re.search(r"\d", tag[1])), (
            f"{name}: base image {image} must be pinned to a version tag or digest")


def test_targets_match_the_manifests_images():
    s = stages()
    assert {"build", "talgate", "services"} <= set(s)
    text = CONTAINERFILE.read_text()
    for target, image in (("talgate", "ghcr.io/talgate/talgate"), ("services", "ghcr.io/talgate/talgate-services")):
        assert f"--target {target} -t {image}:{IMAGE_TAG}" in text
    for overlay in ("home", "full"):
        kz = yaml.safe_load((REPO / f"manifests/overlays/{overlay}/kustomization.yaml").read_text())
        assert {i["name"]: i["newTag"] for i in kz["images"]} == {
            "ghcr.io/talgate/talgate": IMAGE_TAG, "ghcr.io/talgate/talgate-services": IMAGE_TAG}


def test_tag_is_the_package_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert version == IMAGE_TAG, "release the image with the package version (docs/upgrade.md)"


def _exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list), "use the exec (JSON) form"
    return value


def test_talgate_stage_runs_tini_non_root():
    ins = stages()["talgate"]
    entry = [_exec_form(r) for i, r in ins if i == "ENTRYPOINT"]
    assert entry and entry[-1][:2] == ["/usr/bin/tini", "--"] and entry[-1][2] == "talgate", (
        "tini must be PID 1 for the console (signals, kubectl attach)")
    users = [r for i, r in ins if i == "USER"]
    assert users and not users[-1].startswith(("0", "root")), "the image's default user must not be root"
    assert any(i == "RUN" and "tini" in r for i, r in ins), "install tini"
    cmd = [_exec_form(r) for i, r in ins if i == "CMD"]
    assert cmd[-1] == ["console"]
    assert any(i == "COPY" and "/usr/lib/talgate/bpf" in r for i, r in ins), "ship the bpf objects"


def test_apt_hygiene_and_no_remote_add():
    for name, ins in stages().items():
        for i, r in ins:
            assert i != "ADD", f"{name}: use COPY (ADD fetches URLs and unpacks archives)"
            if i == "RUN" and "apt-get install" in r:
                assert "--no-install-recommends" in r and "rm -rf /var/lib/apt/lists" in r, f"{name}: {r[:60]}"
                assert "apt-get update" in r, f"{name}: update and install in one layer"


def ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/"))
               or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_copy_sources_exist_and_are_not_ignored():
    patterns = [ln.strip() for ln in (REPO / ".containerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    assert ".git" in patterns and ".venv" in patterns
    for name, ins in stages().items():
        for i, r in ins:
            if i != "COPY" or "--from=" in r:
                continue
            *sources, _dest = r.split()
            for src in sources:
                assert (REPO / src).exists(), f"{name}: COPY {src}: missing"
    # what `pip wheel .` needs from the context
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = ["pyproject.toml", "backend", "console"]
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str):
        needed.append(readme)
    for path in needed:
        assert (REPO / path).exists(), f"the image build needs {path}"
        assert not ignored(path, patterns), f".containerignore excludes {path}, which the build needs"


def _engine() -> str | None:
    return shutil.which("podman") or shutil.which("buildah")


@pytest.mark.skipif(_engine() is None, reason="podman/buildah not installed: images cannot be built here "
                    "(no container registry reachable for the base images); the Containerfile is linted above")
def test_image_runs_talgate_version():
    engine = shutil.which("podman")
    if engine is None:
        pytest.skip("buildah only: run the image with podman to test it")
    image = f"ghcr.io/talgate/talgate:{IMAGE_TAG}"
    if subprocess.run([engine, "image", "exists", image], capture_output=True).returncode != 0:
        pytest.skip(f"{image} not built (make image)")
    out = subprocess.run([engine, "run", "--rm", image, "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert IMAGE_TAG in out.stdout
