"""Links the document may never own.

The agent converges the addresses, routes, MTU and state of every link named under
`interfaces`. Some links in the router's namespace belong to someone else: the loopback (its
127.0.0.1 and ::1 are the kernel's), the CNI's bridge and VXLAN links and the host side of
every pod's veth (Kubernetes creates and deletes them). Naming one is refused at validate time
(backend.model.checks) and the net applier (backend.host.net) never touches one even if asked.
"""

from __future__ import annotations

import re

from .kubernetes import CNI_LINKS

# Link names CNIs use: flannel's bridge plugin, calico, cilium, kube-proxy in ipvs mode, and the
# host end of a pod's veth pair (the bridge plugin names it "veth" + 8 hex digits).
_FOREIGN = re.compile(r"^(cni\d+|flannel\..+|flannel-.+|cali[0-9a-f]{11}|cilium_.+|lxc.+|kube-ipvs\d+|veth[0-9a-f]{8})$")


def foreign_link(name: str) -> str | None:
    """Why the document may not own link name, or None when it may."""
    if name == "lo":
        return "the loopback belongs to the kernel (its 127.0.0.1 and ::1 are not the document's)"
    if name in CNI_LINKS or _FOREIGN.match(name):
        return "a Kubernetes CNI or pod link (the CNI creates and removes it)"
    return None
