"""The console with a document whose WAN learns its address: the interfaces view shows the
learned forms (dhcp, slaac/dhcpv6/pd, WAN[subnet]host) instead of crashing on a non-list, and
editing another field of such an interface keeps them as written."""

from __future__ import annotations

from pathlib import Path

from console.candidate import Candidate, addr_words
from console.screens.editing import interface_edit

DOC = (Path(__file__).resolve().parents[2] / "backend" / "lab" / "uplink.yaml").read_text()


def test_addr_words_of_every_form():
    assert addr_words("dhcp") == ["dhcp"]
    assert addr_words({"slaac": True, "dhcpv6": True, "prefix_delegation": {"length": 56}}) == [
        "slaac", "dhcpv6", "pd/56"]
    assert addr_words([{"from_delegated": "wan0", "subnet": 16, "host": "::1"}, "2001:db8::1/64"]) == [
        "wan0[0x10]::1", "2001:db8::1/64"]
    assert addr_words(["192.168.10.1/24"]) == ["192.168.10.1/24"] and addr_words(None) == []


def test_editing_the_mtu_of_a_dhcp_wan_keeps_its_learned_forms():
    cand = Candidate(DOC)
    wan = cand.data["interfaces"]["wan0"]
    lan = cand.data["interfaces"]["lan0"]
    data, err = interface_edit(cand, "wan0", {"ipv4": ", ".join(addr_words(wan["ipv4"])),
                                              "ipv6": ", ".join(addr_words(wan["ipv6"])), "mtu": "1492", "zone": "wan"})
    assert err is None
    assert data["interfaces"]["wan0"]["ipv4"] == "dhcp" and data["interfaces"]["wan0"]["mtu"] == 1492
    assert data["interfaces"]["wan0"]["ipv6"] == wan["ipv6"]
    data, err = interface_edit(cand, "lan0", {"ipv4": "192.168.10.1/24", "ipv6": ", ".join(addr_words(lan["ipv6"])),
                                              "mtu": "", "zone": "lan"})
    assert data["interfaces"]["lan0"]["ipv6"] == lan["ipv6"]
    data, _ = interface_edit(cand, "wan0", {"ipv4": "dhcp", "ipv6": "2001:db8:100::2/64", "mtu": "", "zone": "wan"})
    assert data["interfaces"]["wan0"]["ipv4"] == "dhcp" and data["interfaces"]["wan0"]["ipv6"] == ["2001:db8:100::2/64"]


def test_interfaces_view_and_edit_form_of_a_dhcp_wan():
    from console.fake import FakeAgent

    from .conftest import make_app, run_async, settle

    @run_async
    async def go():
        app = make_app(agent=FakeAgent(text=DOC), start="interfaces")
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            shot = app.export_screenshot()  # the list renders (a non-list ipv4 used to be a TypeError)
            await pilot.press("e")  # the first row: wan0
            await pilot.pause()
            return shot, app.screen.query_one("#f-ipv4").value, app.screen.query_one("#f-ipv6").value

    shot, ipv4, ipv6 = go()
    assert "wan0" in shot and "lan0" in shot
    assert (ipv4, ipv6) == ("dhcp", "slaac, dhcpv6, pd/56")
