"""`:edit SECTION` — every part of the document editable: a form per item, checked by the agent.

A section is a mapping edited in one form (``system``, ``dns``, ``ntp``, ``mdns``, ``dhcp.lan0.ipv4``), a
list of items (``policies``, ``routes``, ``nat.masquerade``, ``nat.snat``, ``system.access``,
``dhcp.lan0.reservations`` …) or named entries (``zones``, ``sets``, ``interfaces``, ``dhcp``, ``ra``).
Lists and named entries open an entries dialog (a add, e/enter edit, d delete, J/K move); each form
shows the keys the document knows for that item plus any it has, one YAML value per field
(``[lan, guest]``, ``true``, ``3600``; empty removes the key). The edited document is sent to the
agent (POST /v1/validate) and its problems land at the fields; the edit is staged in the candidate,
which writes only the edited lines back (console/candidate.py), and shows on the changes screen.
"""

from __future__ import annotations

import copy
import json

import yaml
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ..candidate import dump, short
from ..forms import ConfirmScreen, Field, FormScreen, TextScreen
from ..widgets import LiveTable
from .editing import map_problems
from .section_model import model_hint, model_keys

# template → (shape, keys the document knows there); "*" matches an entry's name
SECTIONS: dict[str, tuple[str, list[str]]] = {
    "system": ("map", ["hostname", "domain", "management_interface"]),
    "system.access": ("list", ["name", "from", "proto", "port", "src"]),
    "interfaces": ("dict", ["description", "enabled", "ipv4", "ipv6", "mtu"]),
    "zones": ("dict", ["description", "interfaces", "input", "forward", "log"]),
    "sets": ("dict", ["description", "addresses"]),
    "policies": ("list", ["name", "from", "to", "action", "log"]),
    "rules": ("list", ["name", "description", "enabled", "from", "to", "src", "dst", "proto", "sport", "dport",
                       "icmp_types", "family", "action", "log", "counter"]),
    "nat.masquerade": ("list", ["name", "out", "family"]),
    "nat.snat": ("list", ["name", "out", "src", "to"]),
    "nat.forwards": ("list", ["name", "in", "proto", "dport", "to", "src", "log"]),
    "nat.nptv6": ("list", ["name", "interface", "inside", "outside"]),
    "routes": ("list", ["name", "to", "via", "interface", "metric"]),
    "dhcp": ("dict", ["ipv4", "ipv6"]),
    "dhcp.*.ipv4": ("map", ["enabled", "pools", "lease_time", "routers", "dns", "ntp", "domain"]),
    "dhcp.*.ipv6": ("map", ["enabled", "pools", "lease_time", "preferred_time", "dns", "ntp", "domain"]),
    "dhcp.*.reservations": ("list", ["name", "mac", "ipv4", "duid", "ipv6"]),
    "ra": ("dict", ["enabled", "managed", "other", "autonomous", "prefixes", "rdnss", "dnssl", "interval",
                    "lifetime"]),
    "dns": ("map", ["enabled", "zones", "domain", "mode", "lease_names", "cache_size"]),
    "dns.forwarders": ("list", ["address", "port", "tls_name"]),
    "dns.hosts": ("list", ["name", "ipv4", "ipv6"]),
    "dns.blocklists": ("list", ["name", "file", "format", "enabled"]),
    "ntp": ("map", ["enabled", "serve", "nts_server", "local_stratum"]),
    "ntp.servers": ("list", ["address", "nts", "pool"]),
    "mdns": ("map", ["enabled", "reflect"]),
    "routing": ("map", ["router_id"]),
    "routing.tables": ("dict", ["id", "mark", "routes"]),
    "wans": ("map", ["mode", "table"]),
    "wans.members": ("dict", ["interface", "gateway", "gateway6", "priority", "weight", "masquerade", "check"]),
    "routing.ospf": ("map", ["enabled", "router_id", "redistribute", "default_originate", "accept_default"]),
    "routing.ospf.interfaces": ("dict", ["area", "cost", "hello", "dead", "passive", "network"]),
    "routing.ospfv3": ("map", ["enabled", "router_id", "redistribute", "default_originate", "accept_default"]),
    "routing.ospfv3.interfaces": ("dict", ["area", "cost", "hello", "dead", "passive", "network"]),
    "routing.bgp": ("map", ["enabled", "asn", "router_id", "networks", "redistribute"]),
    "routing.bgp.neighbors": ("list", ["address", "remote_asn", "description", "zone", "import", "export",
                                       "ebgp_multihop", "accept_default", "enabled"]),
}
KEY = "_key"  # the field holding a named entry's name

# what a field takes (shown as the empty field's placeholder)
HINTS = {
    "action": "accept | drop | reject", "input": "accept | drop | reject", "forward": "accept | drop | reject",
    "proto": "tcp | udp (rules: also icmp, icmpv6, any)", "family": "ipv4 | ipv6 | any", "enabled": "true | false",
    "log": "true | false", "counter": "true | false", "from": "zone, or [zones]", "to": "zone(s); a route: prefix",
    "src": "[prefixes or set names]", "dst": "[prefixes or set names]", "sport": "[ports]", "dport": "[80, 443]",
    "via": "gateway address", "interface": "interface name", "metric": "0", "interfaces": "[lan0]",
    "addresses": "[192.0.2.0/24]", "out": "outbound zone", "in": "zone the connection arrives from",
    "pools": "[192.168.10.100-192.168.10.199]", "lease_time": "seconds: 3600", "routers": "[addresses]",
    "dns": "[addresses] (default: the router)", "ntp": "[addresses] (default: the router)", "domain": "lan.example",
    "mac": "02:00:00:00:10:50", "duid": "00:01:…", "ipv4": "address(es)", "ipv6": "address(es)", "port": "22",
    "hostname": "gw", "management_interface": "mgmt0", "mtu": "1500", "zones": "{lan: allow, guest: refuse}",
    "mode": "recursive | forward", "lease_names": "true | false", "cache_size": "MB: 32", "serve": "[lan, guest]",
    "reflect": "[lan, guest]", "address": "server address", "nts": "true | false", "pool": "true | false",
    "tls_name": "dns.example (DNS over TLS)", "file": "/path/on/the/router", "format": "domains | hosts",
    "prefixes": "[2001:db8:10:10::/64]", "interval": "seconds: 200", "lifetime": "seconds: 1800",
    "router_id": "192.0.2.1", "redistribute": "[connected, static]", "default_originate": "true | false",
    "accept_default": "true | false", "area": "0 or 0.0.0.0", "cost": "10", "hello": "seconds: 10",
    "dead": "seconds: 40", "passive": "true | false", "asn": "65001", "remote_asn": "65002",
    "networks": "[2001:db8:10::/56]", "import": "[prefixes to accept]", "export": "[prefixes to announce]",
    "ebgp_multihop": "hops: 2", "zone": "zone the session arrives from",
}


# a key whose meaning depends on the section (template, key) → placeholder
TEMPLATE_HINTS = {
    ("dhcp", "ipv4"): "{pools: [a-b]}; or :edit dhcp.NAME.ipv4",
    ("dhcp", "ipv6"): "{pools: [a-b]}; or :edit dhcp.NAME.ipv6",
    ("system", "kubernetes"): "{pod_cidrs: [10.244.0.0/16], service_cidrs: [10.96.0.0/12]}",
}


def parse_path(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.strip().split(".") if p)


def template_of(parts: tuple[str, ...]) -> str | None:
    for t in SECTIONS:
        tp = t.split(".")
        if len(tp) == len(parts) and all(a == "*" or a == b for a, b in zip(tp, parts, strict=True)):
            return t
    return None


def path_text(parts: tuple[str, ...]) -> str:
    return ".".join(parts)


def get_at(data, parts: tuple[str, ...]):
    cur = data
    for p in parts:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def set_at(data: dict, parts: tuple[str, ...], value) -> None:
    """Put ``value`` at ``parts`` (mappings on the way are created); None removes the key, and mappings
    emptied by that are removed too."""
    cur = data
    chain = []
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        chain.append((cur, p))
        cur = nxt
    if value is None:
        cur.pop(parts[-1], None)
        for parent, key in reversed(chain):
            if parent[key] == {}:
                parent.pop(key)
            else:
                break
    else:
        cur[parts[-1]] = value


def field_text(v) -> str:
    """A value as one line of YAML (a string that YAML would read otherwise is quoted)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        try:
            same = yaml.safe_load(v) == v and "\n" not in v
        except yaml.YAMLError:
            same = False
        return v if same else json.dumps(v)
    if isinstance(v, (dict, list)):
        return yaml.safe_dump(v, default_flow_style=True, width=100_000, sort_keys=False).strip().removesuffix("\n...")
    return str(v)


def parse_field(text: str):
    """One field's text → (value or None when empty, problem or None)."""
    if not text.strip():
        return None, None
    try:
        return yaml.safe_load(text), None
    except yaml.YAMLError as e:
        return None, f"not a YAML value: {str(e).splitlines()[0]}"


def form_fields(keys: list[str], item: dict, name: str | None, template: str | None = None,
                shape: str = "map") -> list[Field]:
    """The known keys first, then the model's other keys at ``template`` (section_model.py), then any
    other key the item has."""
    out = [Field(KEY, "name", name or "", "the entry's name")] if name is not None else []
    if template:
        keys = keys + [k for k in model_keys(template, shape, item, SECTIONS) if k not in keys]
    for k in keys + [k for k in item if k not in keys]:
        hint = TEMPLATE_HINTS.get((template, k)) or HINTS.get(k) or (model_hint(template, k, item) if template
                                                                     else None) or "a YAML value"
        out.append(Field(k, k, field_text(item.get(k)), hint))
    return out


def item_from_values(values: dict, old: dict) -> tuple[dict, dict[str, list[str]]]:
    """Form values → (the item, problems by field). Keys keep the old item's order; new ones follow."""
    item, errors = dict(old), {}
    for k, text in values.items():
        if k == KEY:
            continue
        v, err = parse_field(text)
        if err:
            errors[k] = [err]
        elif v is None:
            item.pop(k, None)
        else:
            item[k] = v
    return item, errors


class SectionEdit:
    """One edit of the candidate at a section: which entry, the document with it applied, the problem prefix."""

    def __init__(self, cand, parts: tuple[str, ...], shape: str, keys: list[str]):
        self.cand, self.parts, self.shape, self.keys = cand, parts, shape, keys
        self.template = template_of(parts)
        self.elsewhere: list[str] = []  # problems the last checked edit makes outside its item

    def entries(self) -> list[tuple[str, object]]:
        v = get_at(self.cand.data, self.parts)
        if self.shape == "list":
            return [(str(i), x) for i, x in enumerate(v if isinstance(v, list) else [])]
        return [(str(k), x) for k, x in (v if isinstance(v, dict) else {}).items()]

    def fields(self, entry: str | None) -> list[Field]:
        """Fields for an entry (None: a new one); a map section's form is the mapping itself."""
        cur = get_at(self.cand.data, self.parts)
        t, shape = self.template, self.shape
        if self.shape == "map":
            return form_fields(self.keys, cur if isinstance(cur, dict) else {}, None, t, shape)
        if self.shape == "list":
            item = cur[int(entry)] if entry is not None and isinstance(cur, list) else {}
            return form_fields(self.keys, item if isinstance(item, dict) else {}, None, t, shape)
        item = (cur or {}).get(entry) if entry is not None else {}
        return form_fields(self.keys, item if isinstance(item, dict) else {}, entry or "", t, shape)

    def apply(self, entry: str | None, values: dict) -> tuple[dict | None, str, dict[str, list[str]]]:
        """(the document with this edit, the problem prefix of the edited item, field problems)."""
        data = copy.deepcopy(self.cand.data)
        cur = get_at(data, self.parts)
        base = path_text(self.parts)
        if self.shape == "map":
            item, errors = item_from_values(values, cur if isinstance(cur, dict) else {})
            set_at(data, self.parts, item or None)
            return data, base, errors
        if self.shape == "list":
            lst = list(cur) if isinstance(cur, list) else []
            i = int(entry) if entry is not None else len(lst)
            item, errors = item_from_values(values, lst[i] if i < len(lst) and isinstance(lst[i], dict) else {})
            if i < len(lst):
                lst[i] = item
            else:
                lst.append(item)
            set_at(data, self.parts, lst)
            return data, f"{base}[{i}]", errors
        name = values.get(KEY, "").strip()
        if not name:
            return None, base, {KEY: ["the entry needs a name"]}
        mapping = dict(cur) if isinstance(cur, dict) else {}
        if name != entry and name in mapping:
            return None, base, {KEY: [f"{name!r} exists already"]}
        item, errors = item_from_values(values, mapping.get(entry) or {} if entry is not None else {})
        # a rename keeps the entry's place
        new = {}
        for k, v in mapping.items():
            new[name if k == entry else k] = item if k == entry else v
        if entry is None or entry not in mapping:
            new[name] = item
        set_at(data, self.parts, new)
        return data, f"{base}.{name}", errors

    def check(self, client, entry: str | None, values: dict):
        data, prefix, errors = self.apply(entry, values)
        if errors or data is None:
            return errors, []
        problems = [p.model_dump() for p in client.validate(dump(data)).problems]
        fields = {f.key for f in self.fields(entry)}
        by, general = map_problems(problems, prefix, fields | {f"{k}_" for k in fields})
        by = {k.rstrip("_") if k.rstrip("_") in fields else k: v for k, v in by.items()}
        # problems this edit makes elsewhere (a renamed zone still named by a policy) do not block the form
        # (the next edit may fix them); they are announced when it is staged, and shown on the changes screen
        elsewhere = [p for p in problems if p.get("severity", "error") == "error" and not (
            p["path"] == prefix or p["path"].startswith((prefix + ".", prefix + "[")))]
        if elsewhere:
            before = {(p.path, p.message) for p in client.validate(dump(self.cand.data)).problems}
            elsewhere = [p for p in elsewhere if (p["path"], p["message"]) not in before]
        self.elsewhere = [f"{p['path']}: {p['message']}" for p in elsewhere]
        return by, general

    def delete(self, entry: str) -> dict:
        data = copy.deepcopy(self.cand.data)
        cur = get_at(data, self.parts)
        if self.shape == "list":
            cur = list(cur)
            cur.pop(int(entry))
        else:
            cur = {k: v for k, v in cur.items() if k != entry}
        set_at(data, self.parts, cur or None)
        return data

    def move(self, entry: str, delta: int) -> tuple[dict | None, int]:
        lst = list(get_at(self.cand.data, self.parts) or [])
        i, j = int(entry), int(entry) + delta
        if self.shape != "list" or not (0 <= i < len(lst) and 0 <= j < len(lst)):
            return None, i
        lst[i], lst[j] = lst[j], lst[i]
        data = copy.deepcopy(self.cand.data)
        set_at(data, self.parts, lst)
        return data, j


def _base_view(app):
    for s in reversed(app.screen_stack):
        if hasattr(s, "refresh_view"):
            return s
    return None


def _staged(app, what: str) -> None:
    view = _base_view(app)
    if view is not None:
        view.update_frame()
        view.refresh_view({"edit"})
    app.notify(f"{what}: staged (6 to review and commit)")


def open_form(app, edit: SectionEdit, entry: str | None, on_done=None) -> None:
    client = app.store.client
    where = path_text(edit.parts)
    title = f"edit {where}" if edit.shape == "map" else \
        (f"add to {where}" if entry is None else f"edit {where} {'#' + entry if edit.shape == 'list' else entry}")

    def check(values):
        return edit.check(client, entry, values)

    def done(values):
        if values is not None:
            data, _, _ = edit.apply(entry, values)
            if data is not None:
                edit.cand.replace(data)
                _staged(app, title.removeprefix("edit ").removeprefix("add to "))
                if edit.elsewhere:
                    app.notify(f"{len(edit.elsewhere)} problem(s) elsewhere, fix them before commit (6 shows "
                               f"them): {edit.elsewhere[0]}", severity="warning", timeout=8)
        if on_done:
            on_done(values)

    app.push_screen(FormScreen(title, edit.fields(entry), check), done)


class SectionScreen(ModalScreen[None]):
    """The entries of a list or named-entries section, each editable in a form."""

    BINDINGS = [Binding("escape,q", "close", "close"), Binding("a", "add", "add"), Binding("e", "edit", "edit"),
                Binding("d", "delete", "delete"), Binding("K", "move(-1)", "up"), Binding("J", "move(1)", "down")]

    def __init__(self, edit: SectionEdit, select: str | None = None):
        super().__init__()
        self.edit, self.select = edit, select

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sectiondialog"):
            yield Static(f"{path_text(self.edit.parts)} (staged in the candidate)", classes="title")
            yield LiveTable([("entry", 14), ("value", 60)], id="entries")
            hint = "[a] add  [e/enter] edit  [d] delete" + ("  [J/K] move" if self.edit.shape == "list" else "") \
                + "  [esc] close"
            yield Static(hint, classes="buttons", markup=False)

    def on_mount(self) -> None:
        self.query_one("#sectiondialog").styles.width = "95%"
        self.query_one("#sectiondialog").styles.height = "80%"
        self.reload(self.select)
        self.query_one("#entries", LiveTable).focus()

    def reload(self, select: str | None = None) -> None:
        t = self.query_one("#entries", LiveTable)
        # as Text: a value such as {interfaces: [wan0]} is not console markup
        rows = [(k, (Text("#" + k if self.edit.shape == "list" else k), Text(short(v, 200))))
                for k, v in self.edit.entries()]
        t.sync(rows)
        if select is not None:
            t.select_key(select)

    def _current(self) -> str | None:
        return self.query_one("#entries", LiveTable).current_key

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_edit()

    def action_add(self) -> None:
        open_form(self.app, self.edit, None, lambda v: self.reload())

    def action_edit(self) -> None:
        cur = self._current()
        if cur is not None:
            open_form(self.app, self.edit, cur, lambda v: self.reload(cur if self.edit.shape == "list" else None))

    def action_delete(self) -> None:
        cur = self._current()
        if cur is not None:
            _delete(self.app, self.edit, cur, self.reload)

    def action_move(self, delta: int) -> None:
        cur = self._current()
        if cur is None:
            return
        data, j = self.edit.move(cur, delta)
        if data is not None:
            self.edit.cand.replace(data)
            self.reload(str(j))
            _staged(self.app, f"{path_text(self.edit.parts)} order")

    def action_close(self) -> None:
        self.dismiss(None)


def _delete(app, edit: SectionEdit, entry: str, then=None) -> None:
    label = f"{path_text(edit.parts)} {'#' + entry if edit.shape == 'list' else entry}"

    def done(yes):
        if yes:
            edit.cand.replace(edit.delete(entry))
            if then:
                then()
            _staged(app, f"{label} deleted")

    app.push_screen(ConfirmScreen(f"Delete {label} from the candidate?"), done)


def delete_entry(app, path: str, entry: str, then=None) -> None:
    """Delete one entry of a list or named-entries section, after a confirmation."""
    parts = parse_path(path)
    t = template_of(parts)
    if t is None or SECTIONS[t][0] == "map" or app.store.read_only:
        return
    _delete(app, SectionEdit(app.store.candidate, parts, *SECTIONS[t]), entry, then)


def open_section(app, path: str = "", entry: str | None = None, select: str | None = None) -> None:
    """``:edit PATH``: a map section's form, or a list/entries section's dialog (``entry`` opens its form)."""
    if app.store.read_only:
        app.notify("read-only: editing is disabled", severity="error")
        return
    parts = parse_path(path)
    t = template_of(parts) if parts else None
    if t is None:
        if parts:
            app.notify(f":edit {path}: not a section that can be edited", severity="error")
        names = "\n".join(f"  :edit {k.replace('*', 'IFNAME'):<24} {SECTIONS[k][0]}" for k in SECTIONS)
        app.push_screen(TextScreen("sections (:edit PATH)", "The parts of the document, each edited in a form:\n\n"
                                   + names + "\n\nE (or e where a screen has no edit of its own): all of "
                                   "router.yaml in $EDITOR"))
        return
    shape, keys = SECTIONS[t]
    edit = SectionEdit(app.store.candidate, parts, shape, keys)
    if shape == "map":
        open_form(app, edit, None)
        return
    screen = SectionScreen(edit, select if select is not None else entry)
    app.push_screen(screen)
    if entry is not None:
        open_form(app, edit, entry, lambda v: screen.reload())
