"""changes: the candidate against HEAD (config diff by path + rendered nft diff), commit, history, rollback."""

from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import ContentSwitcher, Static

from ..candidate import short
from ..dialogs import CommitScreen
from ..forms import ConfirmScreen, TextScreen, diff_text
from ..widgets import LiveTable
from .base import BaseView

LOG_COLS = [("rev", 8), ("time", 16), ("author", 10), ("message", None)]
OP_STYLE = {"+": "green", "-": "red", "~": "yellow", "↕": "cyan"}


class ChangesView(BaseView):
    NAME = "changes"
    _gen: int | None = None  # the candidate generation last drawn (a poll may land before on_mount)
    BINDINGS = [
        Binding("s", "section('staged')", "staged"),
        Binding("h", "section('history')", "history"),
        Binding("c", "commit", "commit"),
        Binding("x", "discard", "discard"),
        Binding("enter", "show_rev", "diff"),
        Binding("R", "rollback", "rollback", key_display="R"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(id="sections", classes="hint")
        with ContentSwitcher(initial="staged", id="switch"):
            with VerticalScroll(id="staged"):
                yield Static(id="pathdiff")
                yield Static(id="nftdiff")
            yield LiveTable(LOG_COLS, id="history")

    def on_mount(self) -> None:
        self._gen = None
        self._show_sections()

    def _show_sections(self) -> None:
        cur = self.query_one(ContentSwitcher).current
        t = Text(" ")
        for key, name in (("s", "staged"), ("h", "history")):
            t.append(f"[{key}] {name}", style="bold reverse" if name == cur else "dim")
            t.append("  ")
        self.query_one("#sections", Static).update(t)

    def check_action(self, action: str, parameters) -> bool | None:
        ok = super().check_action(action, parameters)
        if not ok:
            return ok
        cur = self.query_one(ContentSwitcher).current
        if action in ("commit", "discard"):
            return cur == "staged" and self.store.candidate.dirty
        if action in ("rollback", "show_rev"):
            return cur == "history"
        return True

    def action_section(self, name: str) -> None:
        self.query_one(ContentSwitcher).current = name
        (self.query_one("#history", LiveTable) if name == "history" else self.query_one("#staged")).focus()
        self._show_sections()
        self.refresh_bindings()

    # -- staged --------------------------------------------------------------------------

    def refresh_view(self, changed: set[str]) -> None:
        cand = self.store.candidate
        if changed & {"config", "edit", "status"} and self._gen != cand.generation:
            self._gen = cand.generation
            self.query_one("#pathdiff", Static).update(self._path_diff())
            if cand.dirty:
                self.query_one("#nftdiff", Static).update(Text("rendering the nft diff …", style="dim"))
                self._fetch_nft(cand.text_job(), cand.head_rev, cand.generation)
            else:
                self.query_one("#nftdiff", Static).update("")
            self.refresh_bindings()
        if "log" in changed:
            rows = []
            for e in self.store.log:
                t = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["time"]))
                msg = (e.get("message") or "").splitlines()[0] if e.get("message") else ""
                rows.append((e["rev"], (e["rev"][:8], t, e.get("author") or "", msg)))
            self.query_one("#history", LiveTable).sync(rows)

    def _path_diff(self) -> Text:
        cand = self.store.candidate
        t = Text(no_wrap=True, overflow="ellipsis")
        if not cand.dirty:
            t.append("nothing staged: the candidate equals HEAD ", style="dim")
            t.append(f"{(cand.head_rev or '-')[:12]}\n", style="dim")
            t.append("edit on the interfaces (2), firewall (3) or nat (4) screens; press h for history", style="dim")
            return t
        t.append(f"candidate against HEAD {(cand.head_rev or '-')[:12]}   [c] commit  [x] discard\n", style="bold")
        width = max(20, self.size.width - 8)
        plain = self.app.plain
        for op, path, old, new in cand.changes():
            t.append(f" {'^' if plain and op == '↕' else op} ", style="bold " + OP_STYLE.get(op, ""))
            t.append(path, style="bold")
            if op == "~":
                t.append(f": {short(old, width // 3)} {'->' if plain else '→'} {short(new, width // 3)}")
            elif op == "+":
                t.append(f": {short(new, width - len(path))}", style="green")
            elif op == "↕":
                t.append(": order changed")
            t.append("\n")
        for p in self.store.problems:
            t.append(f" ! {p['path']}: {p['message']}\n", style="bold red" if p.get("severity") == "error" else "yellow")
        return t

    @work(thread=True, exclusive=True, group="nftdiff")
    def _fetch_nft(self, text, base: str | None, gen: int) -> None:
        try:
            d = self.store.client.diff_candidate(text() if callable(text) else text, base)
            out = ([p.model_dump() for p in d.problems], d.nft_diff, None)
        except Exception as e:  # noqa: BLE001 - shown in the view
            out = ([], None, str(e))
        self.app.call_from_thread(self._show_nft, gen, *out)

    def _show_nft(self, gen: int, problems: list, nft_diff: str | None, err: str | None) -> None:
        if gen != self.store.candidate.generation:
            return
        self.store.problems = problems
        self.query_one("#pathdiff", Static).update(self._path_diff())
        t = Text()
        if err:
            t.append(f"nft diff unavailable: {err}", style="red")
        elif nft_diff:
            t.append("rendered nftables diff\n", style="bold")
            t.append_text(diff_text(nft_diff))
        elif not problems:
            t.append("no change to the nftables ruleset", style="dim")
        self.query_one("#nftdiff", Static).update(t)

    def action_commit(self) -> None:
        cand = self.store.candidate
        if not cand.dirty:
            return
        text, base, gen = cand.text(), cand.head_rev, cand.generation

        def done(result):
            if not result:
                return
            if result.rev and cand.generation == gen:
                cand.reset(text, result.rev)
                self.store.problems = []
                self.update_frame()
                self.refresh_view({"edit"})
            c = result.confirm
            if c:
                self.notify(f"commit {result.rev[:8]} applied: press C within {c.seconds} s to keep it, "
                            "or it is rolled back", severity="warning", timeout=10)
            else:
                self.notify(f"commit {str(result.rev)[:8]}: applied")
            self.app.poll_soon()

        self.app.push_screen(CommitScreen(text, base, len(cand.changes()), self.app.write_client), done)

    def action_discard(self) -> None:
        def done(yes):
            if yes:
                cand = self.store.candidate
                if self.store.head_moved:
                    cand.head_rev = None  # forces a reload of HEAD on the next poll
                cand.discard()
                self.store.problems = []
                self.update_frame()
                self.refresh_view({"edit"})
                self.app.poll_soon()

        n = len(self.store.candidate.changes())
        self.app.push_screen(ConfirmScreen(f"Discard {n} staged change(s)?"), done)

    # -- history -------------------------------------------------------------------------

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_show_rev()

    def _rev(self) -> str | None:
        return self.query_one("#history", LiveTable).current_key

    def action_show_rev(self) -> None:
        rev = self._rev()
        if rev:
            self._fetch_rev(rev)

    @work(thread=True, exclusive=True, group="revdiff")
    def _fetch_rev(self, rev: str) -> None:
        c = self.store.client
        try:
            body = diff_text(c.diff(f"{rev}~1", rev).diff or "(no change)")
        except Exception:  # noqa: BLE001 - the first commit has no parent: show the whole document
            try:
                body = Text(c.config(rev).text)
            except Exception as e:  # noqa: BLE001
                body = Text(f"cannot read {rev[:12]}: {e}", style="red")
        self.app.call_from_thread(self.app.push_screen, TextScreen(f"revision {rev[:12]}", body))

    def action_rollback(self) -> None:
        rev = self._rev()
        if not rev:
            return
        entry = next((e for e in self.store.log if e["rev"] == rev), {})

        def done(yes):
            if yes:
                self.app.write(f"rollback to {rev[:8]}", lambda c: c.rollback(rev))

        msg = (entry.get("message") or "").splitlines()[0] if entry.get("message") else ""
        self.app.push_screen(ConfirmScreen(f"Roll back to {rev[:12]} ({msg})?\nA new commit restores that "
                                           "configuration and the agent applies it now."), done)
