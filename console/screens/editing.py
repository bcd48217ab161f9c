"""Edit forms for rules, port forwards and interfaces, checked by the agent and mapped back to fields."""

from __future__ import annotations

import re

from ..candidate import addr_words, dump, join_list, scalar_or_list, split_list
from ..forms import Field

RULE_FIELDS = [
    ("name", "name", "block-guest-http"),
    ("from", "from", "zone(s): guest"),
    ("to", "to", "zone(s) or self: wan"),
    ("proto", "proto", "tcp | udp | icmp | icmpv6 | any"),
    ("src", "src", "prefixes or set names"),
    ("dst", "dst", "prefixes or set names"),
    ("sport", "sport", "ports: 1024-65535"),
    ("dport", "dport", "ports: 80, 443"),
    ("icmp_types", "icmp types", "echo-request"),
    ("action", "action", "accept | drop | reject"),
    ("log", "log", "yes | no"),
    ("enabled", "enabled", "yes | no"),
    ("description", "description", ""),
]
LIST_KEYS = {"from", "to", "src", "dst", "sport", "dport", "icmp_types"}
BOOL_KEYS = {"log", "enabled", "counter"}

FORWARD_FIELDS = [
    ("name", "name", "web"),
    ("in", "in", "zone the connection arrives from: wan"),
    ("proto", "proto", "tcp | udp"),
    ("dport", "dport", "8443"),
    ("to", "to", "192.168.10.10:443"),
    ("src", "src", "only from these prefixes"),
    ("log", "log", "yes | no"),
]


def _bool_text(v) -> str:
    return "" if v is None else ("yes" if v else "no")


def _parse_bool(s: str):
    s = s.strip().lower()
    if not s:
        return None
    if s in ("y", "yes", "true", "on", "1"):
        return True
    if s in ("n", "no", "false", "off", "0"):
        return False
    return s  # left as text: the agent names the problem at the field


def fields_for(spec, item: dict | None) -> list[Field]:
    item = item or {}
    out = []
    for key, label, ph in spec:
        v = item.get(key)
        out.append(Field(key, label, _bool_text(v) if key in BOOL_KEYS else join_list(v), ph))
    return out


def item_from(spec, values: dict, old: dict | None) -> dict:
    """Form values → a config item; keys the form does not show are kept from the old item."""
    shown = {k for k, _, _ in spec}
    item = {k: v for k, v in (old or {}).items() if k not in shown}
    out = {}
    for key, _, _ in spec:
        raw = values.get(key, "")
        if key in BOOL_KEYS:
            v = _parse_bool(raw)
        elif key in LIST_KEYS:
            v = scalar_or_list(split_list(raw))
        else:
            v = raw.strip() or None
            if key == "dport" and v and v.isdigit():
                v = int(v)
        if v is not None:
            out[key] = v
    out.update(item)
    return out


_PATH = re.compile(r"^(?P<head>[^.\[]+(?:\[\d+\])?)(?:\.(?P<field>[A-Za-z_]+))?")


def map_problems(problems: list[dict], prefix: str, fields: set[str], also: tuple[str, ...] = ()) \
        -> tuple[dict[str, list[str]], list[str]]:
    """Agent problems → (by field, general) for the item at ``prefix`` (e.g. ``rules[3]``).

    Errors at ``prefix.FIELD…`` go to FIELD; errors at ``prefix`` itself, or under one of ``also``
    (paths the edit touches elsewhere), are general. Errors elsewhere in the document do not block the
    form (they are not this edit's fault) — they show on the changes screen.
    """
    by: dict[str, list[str]] = {}
    general: list[str] = []
    for p in problems:
        if p.get("severity", "error") != "error":
            continue
        path = p["path"]
        if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
            rest = path[len(prefix):].lstrip(".")
            field = re.match(r"[A-Za-z_][A-Za-z0-9_]*", rest)
            key = field.group(0) if field else None
            if key == "from_":
                key = "from"
            if key in fields:
                by.setdefault(key, []).append(p["message"])
            else:
                general.append(f"{path}: {p['message']}" if rest else p["message"])
        elif any(path == a or path.startswith(a) for a in also):
            general.append(f"{path}: {p['message']}")
    return by, general


def check_item(client, candidate, path: str, index: int | None, spec, values: dict, old: dict | None):
    """Validate the candidate with this item in place, through the agent. Returns (by_field, general)."""
    item = item_from(spec, values, old)
    data = candidate.with_item(path, index, item)
    pos = index if index is not None else len(_get(data, path)) - 1
    res = client.validate(dump(data))
    prefix = f"{path}[{pos}]"
    return map_problems([p.model_dump() for p in res.problems], prefix, {k for k, _, _ in spec})


def _get(data: dict, path: str):
    cur = data
    for part in path.split("."):
        cur = cur.get(part) or {}
    return cur


def check_interface(client, candidate, name: str, values: dict):
    data, err = interface_edit(candidate, name, values)
    if err:
        return err, []
    res = client.validate(dump(data))
    by, general = map_problems([p.model_dump() for p in res.problems], f"interfaces.{name}", {"ipv4", "ipv6", "mtu"},
                               also=("zones",))
    return by, general


def interface_edit(candidate, name: str, values: dict):
    mtu_raw = values.get("mtu", "").strip()
    mtu = None
    if mtu_raw:
        if not mtu_raw.isdigit():
            return None, {"mtu": ["a number, e.g. 1500"]}
        mtu = int(mtu_raw)
    orig = (candidate.data.get("interfaces") or {}).get(name) or {}

    def addrs(fam: str):
        text = values.get(fam, "")
        if text.strip() == ", ".join(addr_words(orig.get(fam))):
            return orig.get(fam)  # unchanged: the document's own value (dhcp, a PD entry, {slaac: …} stay as written)
        words = [str(x) for x in split_list(text)]
        return "dhcp" if fam == "ipv4" and words == ["dhcp"] else words

    data = candidate.interface_data(name, addrs("ipv4"), addrs("ipv6"), mtu, values.get("zone", "").strip() or None)
    return data, None


class ListEditing:
    """Add / edit / delete of one list of the candidate, shared by the firewall (rules) and nat
    (port forwards) screens. The screen provides ``_index()``, ``_open_form(index)``, ``_edited()``
    and sets LIST_TABLE (the table's id, also the candidate's property holding the list),
    LIST_PATH (the candidate path) and LIST_NOUN."""

    LIST_TABLE = ""
    LIST_PATH = ""
    LIST_NOUN = ""

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        if event.data_table.id == self.LIST_TABLE and not self.read_only:
            self.action_edit()

    def action_add(self) -> None:
        self._open_form(None)

    def action_edit(self) -> None:
        i = self._index()
        if i is not None:
            self._open_form(i)

    def action_delete(self) -> None:
        from ..forms import ConfirmScreen

        i = self._index()
        if i is None:
            return
        name = getattr(self.store.candidate, self.LIST_TABLE)[i].get("name")

        def done(yes):
            if yes:
                self.store.candidate.delete(self.LIST_PATH, i)
                self._edited()
                self.notify(f"{self.LIST_NOUN} {name}: deletion staged")

        self.app.push_screen(ConfirmScreen(f"Delete {self.LIST_NOUN} {name!r} from the candidate?"), done)
