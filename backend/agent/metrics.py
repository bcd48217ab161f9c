"""Prometheus exporter of the agent (default :9469; the alert rules and the Grafana dashboard in
manifests/observability use these names). Values are computed at scrape time from the pipeline."""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger("talgate.metrics")


class AgentCollector:
    def __init__(self, pipeline, sys_class_net: str = "/sys/class/net"):
        self.p = pipeline
        self.sys = Path(sys_class_net)

    def _wans(self, cfg) -> list[str]:
        """Links that carry a default route: the WANs."""
        from ..trace.evaluator import Tracer

        t = Tracer.__new__(Tracer)
        t.cfg = cfg
        out = [m.interface for m in cfg.wans.members.values()] if cfg.wans else []
        for r in cfg.routes:
            if r.to in ("0.0.0.0/0", "::/0"):
                oif = r.interface or (t.route(r.via) if r.via is not None else None)
                if oif and oif not in out:
                    out.append(oif)
        return out

    def collect(self):
        from ..host import nft as nfthost
        from .pipeline import validate_text

        st = self.p.status()
        g = GaugeMetricFamily("talgate_pending_confirm_seconds",
                              "Seconds left before an unconfirmed commit is rolled back (0: none pending)")
        g.add_metric([], (st["confirm"] or {}).get("remaining", 0.0))
        yield g
        g = GaugeMetricFamily("talgate_drift_objects", "Objects that differed from HEAD at the last drift check")
        g.add_metric([], self.p.drift_count)
        yield g
        g = GaugeMetricFamily("talgate_in_sync", "1 when the applied revision is HEAD")
        g.add_metric([], 1.0 if st["in_sync"] else 0.0)
        yield g
        if st.get("last_apply"):
            g = GaugeMetricFamily("talgate_last_apply_seconds", "Duration of the last apply")
            g.add_metric([], st["last_apply"].get("seconds", 0.0))
            yield g
        head = st["head"]
        cfg = validate_text(self.p.repo.read(head))[0] if head else None
        wan = GaugeMetricFamily("talgate_wan_up", "1 when the WAN link is up", labels=["wan"])
        for name in self._wans(cfg) if cfg else []:
            try:
                state = (self.sys / name / "operstate").read_text().strip()
            except OSError:
                state = "missing"
            wan.add_metric([name], 1.0 if state in ("up", "unknown") else 0.0)
        yield wan
        yield from wan_health_metrics(st.get("wans") or {})
        drops = CounterMetricFamily("talgate_nft_drop_packets", "Packets dropped or rejected by talgate's "
                                    "default rules, by the config item that dropped them", labels=["chain"])
        try:
            for comment, c in nfthost.counters().items():
                if comment.startswith(("zone ", "policy ", "builtin unzoned", "builtin invalid", "builtin tcp")):
                    drops.add_metric([comment], c["packets"])
        except nfthost.NftError as e:
            log.warning("metrics: %s", e)
        yield drops


def wan_health_metrics(wans: dict):
    """Multi-WAN health (backend/agent/wan.py): state, active, RTT and loss per WAN member."""
    labels = ["wan", "interface"]
    healthy = GaugeMetricFamily("talgate_wan_healthy", "1 when the WAN's health checks pass", labels=labels)
    active = GaugeMetricFamily("talgate_wan_active", "1 when new connections leave by this WAN", labels=labels)
    rtt = GaugeMetricFamily("talgate_wan_rtt_seconds", "Median RTT of the WAN's health probes", labels=labels)
    loss = GaugeMetricFamily("talgate_wan_loss_ratio", "Share of the WAN's health probes lost (0-1)", labels=labels)
    for name, w in wans.items():
        lv = [name, w.get("interface") or ""]
        healthy.add_metric(lv, 1.0 if w.get("healthy") else 0.0)
        active.add_metric(lv, 1.0 if w.get("active") else 0.0)
        if w.get("rtt_ms") is not None:
            rtt.add_metric(lv, w["rtt_ms"] / 1000)
        if w.get("loss_pct") is not None:
            loss.add_metric(lv, w["loss_pct"] / 100)
    yield from (healthy, active, rtt, loss)


def serve_metrics(pipeline, listen: str) -> None:
    host, _, port = listen.rpartition(":")
    REGISTRY.register(AgentCollector(pipeline))
    start_http_server(int(port), addr=host or "0.0.0.0")
    log.info("metrics on %s", listen)
