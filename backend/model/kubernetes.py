"""Kubernetes facts the model must respect on Talos: the cluster's pod and service CIDRs, the links
the CNI owns, and the check that LAN subnets stay out of those CIDRs. One definition, used by the
model checks, the nft renderer and the Talos renderer."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# The cluster's pod and service CIDRs, as set in talos/patches/10-single-node.yaml
# (KubeNetworkConfig). tests/unit/test_talos.py keeps the two in step.
POD_SUBNETS: tuple[str, ...] = ("10.244.0.0/16",)
SERVICE_SUBNETS: tuple[str, ...] = ("10.96.0.0/12",)
# Links the CNI (flannel, Talos's default) creates; the agent must leave them alone and the
# forward chain must accept them.
CNI_LINKS: tuple[str, ...] = ("cni0", "flannel.1")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(value: Any, path: str) -> Iterator[tuple[str, Network]]:
    """Every subnet (interface address or network) in a config tree, with its dotted path."""
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        yield path, value.network
    elif isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _networks(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _networks(v, f"{path}[{i}]")
    elif hasattr(type(value), "model_fields"):  # pydantic model
        for k in type(value).model_fields:
            yield from _networks(getattr(value, k), f"{path}.{k}" if path else k)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        for k, v in vars(value).items():
            if not k.startswith("_"):
                yield from _networks(v, f"{path}.{k}" if path else k)


def kubernetes_problems(
    cfg: Any,
    pod_subnets: Iterable[str] = POD_SUBNETS,
    service_subnets: Iterable[str] = SERVICE_SUBNETS,
) -> list[tuple[str, str]]:
    """(path, message) for every LAN/VPN/guest subnet that overlaps the pod or service CIDRs.

    Checks every address and network in the config except routes (a route is a
    destination, not a subnet the box owns) and /0 prefixes. Only matters on Kubernetes
    (Talos), not in the lab.
    """
    k8s = [(ipaddress.ip_network(s), "pod") for s in pod_subnets]
    k8s += [(ipaddress.ip_network(s), "service") for s in service_subnets]
    problems: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for path, net in _networks(cfg, ""):
        if path.startswith("routes") or net.prefixlen == 0:
            continue
        for cidr, what in k8s:
            if net.version == cidr.version and net.overlaps(cidr) and (path, str(cidr)) not in seen:
                seen.add((path, str(cidr)))
                problems.append((path, f"{net} overlaps the Kubernetes {what} CIDR {cidr}: pick another subnet "
                                       f"(or change KubeNetworkConfig in talos/patches/10-single-node.yaml)"))
    return problems
