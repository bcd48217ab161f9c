"""The commit dialog (with commit-confirm and force) and the packet tracer dialog.

Both talk to the agent from a worker thread and keep the dialog open to show what the agent said:
a lockout refusal lists the access paths the commit would cut; a bad trace argument shows at its field.
"""

from __future__ import annotations

import difflib

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, Select, Static

from backend.client import AgentError, AgentUnreachable

VERDICT_STYLE = {"accept": "bold green", "drop": "bold red", "reject": "bold yellow", "no-route": "bold magenta"}


def _row(label: str, widget) -> Horizontal:
    return Horizontal(Label(label, classes="label"), widget, classes="field")


class Tick(Checkbox, inherit_bindings=False):
    """A checkbox that space toggles; enter is left to the dialog (it submits, as in every other field)."""

    BINDINGS = [Binding("space", "toggle_button", "toggle", show=False)]


class _Dialog(ModalScreen):
    """Fields with an error line under each (``#e-KEY``) and a general one (``#e-_general``).

    A field's error goes away as soon as the field is changed (it described the old value); errors that a
    local check no longer finds (``local_problems``) go too."""

    KEYS: tuple[str, ...] = ()

    def local_problems(self) -> dict[str, list[str]]:
        return {}

    def _field_changed(self, widget) -> None:
        key = (widget.id or "").removeprefix("f-")
        if key not in self.KEYS:
            return
        still = self.local_problems()
        for k in self.KEYS:
            w = self.query_one(f"#e-{k}", Static)
            if w.display and (k == key or k not in still):
                w.update("")
                w.display = False

    def on_input_changed(self, event: Input.Changed) -> None:
        self._field_changed(event.input)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._field_changed(event.checkbox)

    def show_errors(self, by_field: dict[str, list[str]], general: list[str] | Text) -> None:
        for key in (*self.KEYS, "_general"):
            msgs = general if key == "_general" else by_field.get(key, [])
            w = self.query_one(f"#e-{key}", Static)
            w.update(msgs if isinstance(msgs, Text) else "\n".join(msgs))
            w.display = bool(msgs.plain if isinstance(msgs, Text) else msgs)
        first = next((k for k in self.KEYS if by_field.get(k)), None)
        if first:
            self.query_one(f"#f-{first}").focus()

    def hint(self, text: str) -> None:
        self.query_one("#form-hint", Static).update(text)


class ChoiceScreen(ModalScreen):
    """A question with a few one-key answers: ``choices`` is [(key, label, value)] (an empty label: a quiet
    alias); esc answers ``cancel``."""

    def __init__(self, message: str | Text, choices: list[tuple[str, str, object]], cancel: object = None,
                 title: str = ""):
        super().__init__()
        self.message, self.choices, self.cancel, self.title_text = message, choices, cancel, title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="choicedialog"):
            if self.title_text:
                yield Static(self.title_text, classes="title", markup=False)
            with VerticalScroll(id="choicemsg"):
                yield Static(self.message, markup=False)
            yield Static("   ".join(f"[{k}] {label}" for k, label, _ in self.choices if label) + "   [esc] back",
                         classes="buttons", markup=False, id="choicekeys")

    def on_mount(self) -> None:
        self.query_one("#choicedialog").styles.height = "auto"
        box = self.query_one("#choicemsg", VerticalScroll)
        box.styles.height = "auto"
        box.can_focus = True
        self._fit()
        box.focus()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """A long message scrolls; the title and the keys stay on screen (60×20 too)."""
        box = self.query_one("#choicemsg", VerticalScroll)
        box.styles.max_height = max(3, self.size.height - 2 - 2 - (1 if self.title_text else 0))

    def on_key(self, event) -> None:
        for key, _label, value in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)
                return
        if event.key == "escape":
            event.stop()
            self.dismiss(self.cancel)


# -- commit ---------------------------------------------------------------------------------


def parse_confirm(raw: str) -> tuple[int | None, str | None]:
    """'' → (None, None); '90' → (90, None); anything else → (None, problem)."""
    raw = raw.strip().lower().removesuffix("s").strip()
    if not raw:
        return None, None
    if not raw.isdigit() or not 1 <= int(raw) <= 86400:
        return None, "whole seconds from 1 to 86400 (empty: plain commit)"
    return int(raw), None


class CommitScreen(_Dialog):
    """Message, optional confirm-within-N-seconds, force. Dismisses with the agent's answer on success."""

    KEYS = ("answer", "confirm", "force")
    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("ctrl+s", "commit", "commit"),
                Binding("enter", "commit", "commit", show=False), Binding("ctrl+r", "review", "diff")]
    HINT = "[enter] commit  [tab] next  [space] tick  [^r] diff  [esc] cancel"

    def __init__(self, text: str, base: str | None, changes: int, client, summary: str = "", draft: str = "",
                 head_text: str | None = None):
        super().__init__()
        self.text, self.base, self.changes, self.client = text, base, changes, client
        self.head_text = head_text  # HEAD's router.yaml: ctrl+r shows what the commit changes in it
        self.summary = summary  # what is staged, in a few words: the message field's hint
        self.draft = draft  # the message typed before an esc: offered again
        self.busy = False
        self.error: AgentError | None = None  # the agent's last refusal (tests look at its code)

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="commitdialog"):
            n = self.changes
            yield Static(f"commit {n} change{'s' if n != 1 else ''}: the agent validates, commits and applies",
                         classes="title")
            hint = f"(what and why; staged: {self.summary})" if self.summary else "(what and why)"
            yield _row("message", Input(self.draft, placeholder=hint, id="f-answer"))
            yield Static("", id="e-answer", classes="error", markup=False)
            yield _row("confirm", Input(placeholder="(seconds until auto-rollback; empty: plain)",
                                        id="f-confirm"))
            yield Static("", id="e-confirm", classes="error", markup=False)
            yield _row("", Tick("force (may cut access; needs confirm)", id="f-force", compact=True))
            yield Static("", id="e-force", classes="error", markup=False)
            yield Static("", id="e-_general", classes="error wide", markup=False)
            yield Static(self.HINT, classes="buttons", markup=False, id="form-hint")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).can_focus = False
        self.query_one("#f-answer", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_commit()

    def values(self) -> tuple[str, str, bool]:
        return (self.query_one("#f-answer", Input).value.strip(), self.query_one("#f-confirm", Input).value,
                self.query_one("#f-force", Checkbox).value)

    def local_problems(self) -> dict[str, list[str]]:
        msg, raw, force = self.values()
        confirm, err = parse_confirm(raw)
        by: dict[str, list[str]] = {}
        if not msg:
            by["answer"] = ["a commit message, e.g. what and why"]
        if err:
            by["confirm"] = [err]
        elif force and confirm is None:
            by["force"] = ["force needs a confirm time: a forced change rolls itself back unless you confirm it"]
        return by

    def action_cancel(self) -> None:
        """Esc: close the dialog; the candidate stays staged (nothing was sent). Not while committing."""
        if not self.busy:
            self.draft = self.values()[0]
            self.dismiss(None)

    def action_review(self) -> None:
        """ctrl+r: the commit's diff of router.yaml (exactly the lines git will record), over the dialog;
        esc comes back to it with what was typed."""
        from .forms import TextScreen, diff_text

        if self.head_text is None:
            return
        diff = "".join(difflib.unified_diff(self.head_text.splitlines(keepends=True),
                                            self.text.splitlines(keepends=True),
                                            "HEAD/router.yaml", "candidate/router.yaml", n=2))
        self.app.push_screen(TextScreen(f"router.yaml: what commit {self.changes} change"
                                        f"{'s' if self.changes != 1 else ''} records", diff_text(diff or "(no change)"),
                                        wrap=False))

    def action_commit(self) -> None:
        if self.busy:
            return
        msg, raw, force = self.values()
        confirm, _ = parse_confirm(raw)
        by = self.local_problems()
        if by:
            self.show_errors(by, [])
            return
        self.busy = True
        self.hint("committing … (the agent validates, checks access paths, commits and applies)")
        self._commit(msg, confirm, force)

    @work(thread=True, exclusive=True, group="commit")
    def _commit(self, msg: str, confirm: int | None, force: bool) -> None:
        try:
            result, err = self.client.commit(self.text, msg, base=self.base, confirm=confirm, force=force), None
        except AgentUnreachable as e:
            result, err = None, e
        except AgentError as e:
            result, err = None, e
        self.app.call_from_thread(self._done, result, err)

    def _done(self, result, err) -> None:
        self.busy = False
        self.hint(self.HINT)
        self.error = err
        if err is None:
            self.dismiss(result)
            return
        if err.code == "conflict":  # HEAD moved: the caller offers a rebase (the candidate is kept)
            self.dismiss(err)
            return
        self.show_errors(*commit_problems(err))


def change_summary(changes: list[tuple[str, str, object, object]], width: int = 40) -> str:
    """The staged changes in a few words for the commit message's hint: '+ rules[web-out], ~ system.hostname'."""
    words = {"+": "add", "-": "remove", "~": "change", "↕": "reorder"}
    parts = [f"{words.get(op, op)} {path}" for op, path, _old, _new in changes]
    out = ""
    for i, p in enumerate(parts):
        more = f" +{len(parts) - i} more"
        nxt = p if not out else f"{out}, {p}"
        if len(nxt) > width - (len(more) if i < len(parts) - 1 else 0):
            return (out + more) if out else p[: width - 3] + "..."
        out = nxt
    return out


# Request fields (problems[].path of a bad_request) → the commit dialog's fields.
COMMIT_FIELDS = {"confirm": "confirm", "force": "force", "message": "answer"}


def commit_problems(err: AgentError) -> tuple[dict[str, list[str]], Text]:
    """An agent refusal → (by field, general text), decided by the error code and problem paths.
    Lockout cuts (detail.cuts) are listed one per line."""
    by: dict[str, list[str]] = {}
    t = Text()
    if err.code == "needs_confirm":
        by["force"] = ["force needs a confirm time: a forced change rolls itself back unless you confirm it"]
        return by, t
    if err.code == "bad_request":
        rest = []
        for p in err.problems:
            key = COMMIT_FIELDS.get(p.get("path"))
            if key:
                by.setdefault(key, []).append(p["message"])
            else:
                rest.append(p)
        if not rest and by:
            return by, t
        t.append(err.message)
        for p in rest[:6]:
            t.append(f"\n {p['path']}: {p['message']}")
        return by, t
    if err.code == "would_cut":
        t.append("refused: this commit would lock you out (nothing was changed)\n", style="bold")
        for c in err.detail.get("cuts") or []:
            t.append(f" - would cut {c.get('path')}: {c.get('verdict')} by {c.get('rule') or 'no rule (no route)'}\n")
        t.append("fix the rule, or set a confirm time and tick force to apply anyway "
                 "(rolled back unless confirmed)", style="italic")
        return by, t
    t.append(err.message)
    if err.code == "conflict":
        t.append(" (HEAD moved: b rebases your changes onto it, x discards them)")
        return by, t
    for p in err.problems[:6]:
        t.append(f"\n {p['path']}: {p['message']}")
    return by, t


# -- trace ----------------------------------------------------------------------------------

PROTOS = ("tcp", "udp", "icmp", "icmpv6")


def trace_field_errors(err: AgentError) -> tuple[dict[str, list[str]], list[str]]:
    """A refused trace → messages by form field (from the problems' paths: ``packet.src`` → src)."""
    by: dict[str, list[str]] = {}
    general: list[str] = []
    for p in err.problems:
        path = p.get("path", "")
        key = path.removeprefix("packet.") if path.startswith("packet.") else None
        if key in TraceScreen.KEYS:
            by.setdefault(key, []).append(p["message"])
        else:
            general.append(f"{path}: {p['message']}")
    if not by and not general:
        general.append(err.message)
    return by, general


def trace_text(res: dict, plain: bool = False) -> Text:
    arrow = "->" if plain else "→"
    t = Text(no_wrap=True, overflow="ellipsis")
    v = res.get("verdict") or "?"
    t.append(f"{v.upper()}", style=VERDICT_STYLE.get(v, "bold"))
    t.append(f"  by {res.get('rule') or '-'}", style="bold")
    t.append(f"   ({'staged candidate' if res.get('config') == 'candidate' else 'running config: HEAD'})\n",
             style="dim")
    p = res.get("packet") or {}
    t.append("path   ", style="dim")
    t.append(f"{p.get('iif', '?')} ({res.get('ingress_zone') or '-'}) {arrow} ")
    egress = res.get("egress")
    if egress == "self" or (egress is None and res.get("hook") == "input"):
        t.append("the router itself")
    else:
        t.append(f"{egress} ({res.get('egress_zone') or '-'})" if egress else "(not routed)")
    t.append(f"   {res.get('hook') or ''} hook\n", style="dim")
    for n in res.get("nat") or []:
        t.append("nat    ", style="dim")
        t.append(f"{n.get('type')} ", style="bold cyan")
        t.append(f"{n.get('rule') or ''} {arrow} {n.get('to') or ''}\n")
    if not res.get("nat"):
        t.append("nat    ", style="dim")
        t.append("none\n", style="dim")
    t.append("steps\n", style="dim")
    for s in res.get("steps") or []:
        t.append(f"  {s.get('chain') or '':<18}", style="dim")
        t.append(f"{s.get('rule') or '-':<24} ")
        sv = str(s.get("verdict") or "")
        t.append(f"{sv}\n", style=VERDICT_STYLE.get(sv, ""))
    t.rstrip()
    return t


class TraceScreen(_Dialog):
    """Would this packet pass? Asks the agent (nothing is sent); the result stays under the form."""

    KEYS = ("iif", "src", "dst", "proto", "dport")
    BINDINGS = [Binding("escape", "close", "close"), Binding("ctrl+s", "trace", "trace"),
                Binding("enter", "trace", "trace", show=False)]
    HINT = "[enter] trace  [tab] next  [esc] close  (nothing is sent)"

    def __init__(self, interfaces: list[str], client, candidate_text: str | None, staged: int,
                 packet: dict | None = None, plain: bool = False):
        super().__init__()
        self.interfaces, self.client, self.candidate_text, self.staged = interfaces, client, candidate_text, staged
        self.packet = dict(packet or {})
        self.plain = plain
        self.result: dict | None = None

    def compose(self) -> ComposeResult:
        pk = self.packet
        iif = pk.get("iif") if pk.get("iif") in self.interfaces else (self.interfaces or [None])[0]
        with VerticalScroll(classes="dialog", id="tracedialog"):
            yield Static("trace a packet through the firewall", classes="title")
            yield _row("in", Select([(n, n) for n in self.interfaces], value=iif if iif else Select.NULL,
                                    allow_blank=not self.interfaces, id="f-iif", compact=True))
            yield Static("", id="e-iif", classes="error", markup=False)
            yield _row("src", Input(pk.get("src") or "", placeholder="(source address, IPv4 or IPv6)", id="f-src"))
            yield Static("", id="e-src", classes="error", markup=False)
            yield _row("dst", Input(pk.get("dst") or "", placeholder="(destination address)", id="f-dst"))
            yield Static("", id="e-dst", classes="error", markup=False)
            yield _row("proto", Select([(p, p) for p in PROTOS], value=pk.get("proto") or "tcp", allow_blank=False,
                                       id="f-proto", compact=True))
            yield Static("", id="e-proto", classes="error", markup=False)
            yield _row("dport", Input(str(pk.get("dport") or ""), placeholder="(port 1-65535, tcp/udp only)",
                                      id="f-dport"))
            yield Static("", id="e-dport", classes="error", markup=False)
            label = (f"staged candidate, not HEAD ({self.staged} change{'s' if self.staged != 1 else ''})"
                     if self.staged else "staged candidate (nothing staged)")
            yield _row("", Tick(label, value=bool(self.staged), id="f-candidate", compact=True))
            yield Static("", id="e-_general", classes="error", markup=False)
            yield Static("", id="result")
            yield Static(self.HINT, classes="buttons", markup=False, id="form-hint")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).can_focus = False
        self.query_one("#f-src" if self.packet.get("iif") or not self.interfaces else "#f-iif").focus()
        self.query_one("#result", Static).display = False

    def values(self) -> dict:
        def sel(key):
            v = self.query_one(f"#f-{key}", Select).value
            return None if v is Select.NULL else v

        return {"iif": sel("iif"), "src": self.query_one("#f-src", Input).value.strip(),
                "dst": self.query_one("#f-dst", Input).value.strip(), "proto": sel("proto"),
                "dport": self.query_one("#f-dport", Input).value.strip()}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_trace()

    def action_trace(self) -> None:
        v = self.values()
        by: dict[str, list[str]] = {}
        if not v["iif"]:
            by["iif"] = ["choose the interface the packet arrives on"]
        for key in ("src", "dst"):
            if not v[key]:
                by[key] = ["an IPv4 or IPv6 address"]
        dport = None
        if v["dport"]:
            if not v["dport"].isdigit() or not 1 <= int(v["dport"]) <= 65535:
                by["dport"] = ["a port number from 1 to 65535"]
            else:
                dport = int(v["dport"])
        if by:
            self.show_errors(by, [])
            return
        packet = {"iif": v["iif"], "src": v["src"], "dst": v["dst"], "proto": v["proto"], "dport": dport}
        self.packet = packet
        cand = self.candidate_text if self.query_one("#f-candidate", Checkbox).value else None
        self.hint("asking the agent …")
        self._trace(packet, cand, v)

    @work(thread=True, exclusive=True, group="trace")
    def _trace(self, packet: dict, candidate: str | None, values: dict) -> None:
        try:
            res, err = self.client.trace(packet, candidate).model_dump(mode="json"), None
        except AgentError as e:  # AgentUnreachable too
            res, err = None, e
        self.app.call_from_thread(self._show, res, err, values)

    def _show(self, res: dict | None, err: AgentError | None, values: dict) -> None:
        self.hint(self.HINT)
        box = self.query_one("#result", Static)
        if err is not None:
            if err.code == "bad_request":
                by, general = trace_field_errors(err)
            else:
                general = [err.message] + [f"{p['path']}: {p['message']}" for p in err.problems[:4]]
                by = {}
            self.show_errors(by, general)
            box.display = False
            return
        self.result = res
        self.show_errors({}, [])
        box.update(trace_text(res, self.plain))
        box.display = True
        self.query_one(VerticalScroll).scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
