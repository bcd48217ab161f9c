"""Client methods for the agent's observation endpoints (see ``backend/agent/observe_api.py``)."""

from __future__ import annotations

from ..client import AgentClient


class ObserveMixin:
    def interfaces(self) -> list[dict]:
        return self.request("GET", "/interfaces")["interfaces"]

    def neighbours(self) -> list[dict]:
        return self.request("GET", "/neighbours")["neighbours"]

    def conntrack_top(self, n: int = 10) -> dict:
        return self.request("GET", "/conntrack/top", n=n)

    def history(self, seconds: int | None = None) -> dict:
        return self.request("GET", "/history", seconds=seconds)

    def leases(self) -> list[dict]:
        """DHCPv4 and DHCPv6 leases Kea holds (``GET /v1/leases``; read-only socket too)."""
        return self.request("GET", "/leases")["leases"]


class ObserveClient(ObserveMixin, AgentClient):
    """AgentClient plus observation: what the console uses."""
