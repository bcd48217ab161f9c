"""changes: the candidate against HEAD (config diff by path + rendered nft diff), commit, history, rollback."""

from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import ContentSwitcher, Static

from backend.client import AgentError

from ..candidate import _load, short
from ..dialogs import ChoiceScreen, CommitScreen, change_summary
from ..forms import ConfirmScreen, TextScreen, diff_text
from ..merge import merge3
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
        Binding("b", "rebase", "rebase"),
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
        if action == "rebase":
            return self.store.candidate.dirty and self.store.head_moved
        if action == "show_rev":
            return cur == "history"
        if action == "rollback":  # not on HEAD: rolling back to where we are is no rollback
            return cur == "history" and self._rev() not in (None, self._head())
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
            table = self.query_one("#history", LiveTable)
            on_top = table.cursor_row == 0  # on HEAD: the selection follows the new HEAD, else stays put
            table.sync(rows)
            if on_top and table.row_count:
                table.move_cursor(row=0, animate=False)
            self.refresh_bindings()

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
        if self.store.head_moved:  # the agent would refuse it: offer the rebase first
            self.action_rebase()
            return
        text, base, gen = cand.text(), cand.head_rev, cand.generation

        def done(result):
            self._draft = "" if result else screen.draft  # esc keeps the typed message for the next try
            if isinstance(result, AgentError):  # conflict: HEAD moved since the last poll
                self.action_rebase()
                return
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

        screen = CommitScreen(text, base, len(cand.changes()), self.app.write_client,
                              summary=change_summary(cand.changes()), draft=getattr(self, "_draft", ""),
                              head_text=cand.head_text)
        self.app.push_screen(screen, done)

    def action_discard(self) -> None:
        def done(yes):
            if yes:
                self._discard()

        n = len(self.store.candidate.changes())
        self.app.push_screen(ConfirmScreen(f"Discard {n} staged change{'s' if n != 1 else ''}?"), done)

    def _discard(self) -> None:
        cand = self.store.candidate
        if self.store.head_moved:
            cand.head_rev = None  # forces a reload of HEAD on the next poll
        cand.discard()
        self.store.problems = []
        self.update_frame()
        self.refresh_view({"edit"})
        self.app.poll_soon()

    # -- rebase onto a HEAD that moved ---------------------------------------------------

    def action_rebase(self) -> None:
        cand = self.store.candidate
        if cand.dirty:
            self._fetch_for_rebase(cand.head_text, cand.text(), cand.head_rev, cand.generation)

    @work(thread=True, exclusive=True, group="rebase")
    def _fetch_for_rebase(self, base_text: str, ours: str, base: str | None, gen: int) -> None:
        try:
            cfg, err = self.store.client.config(), None
            head = (cfg.rev, cfg.text)
        except AgentError as e:  # AgentUnreachable too
            head, err = None, e.message
        self.app.call_from_thread(self._offer_rebase, base_text, ours, base, gen, head, err)

    def _offer_rebase(self, base_text: str, ours: str, base: str | None, gen: int, head, err: str | None) -> None:
        cand = self.store.candidate
        if gen != cand.generation:
            return  # edited meanwhile: the user asks again
        if err:
            self.notify(f"rebase: cannot read HEAD: {err}", severity="error")
            return
        rev, theirs = head
        if rev == base:
            cand.head_rev_latest = None
            self.update_frame()
            self.notify("HEAD has not moved: commit again", severity="information")
            return
        cand.head_rev_latest = rev
        self.update_frame()
        merged, conflicts = merge3(base_text, ours, theirs)
        data = None
        if merged is not None:
            try:
                data = _load(merged)
            except Exception:  # noqa: BLE001 - a line merge that is no longer YAML: treated as an overlap
                merged = None
        n = len(cand.changes())
        head_line = (f"HEAD moved to {rev[:12]} after your {n} change{'s were' if n != 1 else ' was'} staged on "
                     f"{(base or '-')[:12]}.\n")
        if merged is not None:
            msg = head_line + ("The new commits do not touch the lines you changed: rebase your changes onto "
                               "HEAD? (then review the diff and commit again)")

            def answered(choice):
                if choice == "rebase":
                    self._apply_rebase(rev, theirs, data)
                elif choice == "discard":
                    self._discard()

            self.app.push_screen(ChoiceScreen(msg, [("r", "rebase onto HEAD", "rebase"),
                                                    ("x", "discard mine", "discard")], title="rebase"), answered)
            return
        t = Text(head_line + "Your changes and HEAD's overlap here (nothing was changed):\n")
        for c in conflicts[:3]:
            t.append(f"at line {c.start + 1}\n", style="bold")
            for label, lines, style in (("yours", c.ours, "green"), ("HEAD ", c.theirs, "cyan")):
                for ln in (lines[:4] or ["(nothing)\n"]):
                    t.append(f" {label} | {ln.rstrip()}\n", style=style)
                if len(lines) > 4:
                    t.append(f" {label} | ... {len(lines) - 4} more line(s)\n", style="dim")
        if len(conflicts) > 3:
            t.append(f"... and {len(conflicts) - 3} more overlap(s)\n", style="dim")
        t.append("x discards your changes and loads HEAD; esc keeps them (edit them to match, or discard)",
                 style="italic")

        def answered_conflict(choice):
            if choice == "discard":
                self._discard()

        self.app.push_screen(ChoiceScreen(t, [("x", "discard mine", "discard")], title="rebase: overlap"),
                             answered_conflict)

    def _apply_rebase(self, rev: str, theirs: str, data: dict) -> None:
        cand = self.store.candidate
        cand.reset(theirs, rev)
        cand.replace(data)
        self.store.problems = []
        self.update_frame()
        self.refresh_view({"edit"})
        self.notify(f"rebased onto {rev[:8]}: {len(cand.changes())} change(s) staged; review and commit")
        self.app.poll_soon()

    # -- history -------------------------------------------------------------------------

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_show_rev()

    def on_data_table_row_highlighted(self, event) -> None:
        self.refresh_bindings()

    def _rev(self) -> str | None:
        return self.query_one("#history", LiveTable).current_key

    def _head(self) -> str | None:
        return (self.store.status or {}).get("head") or (self.store.log[0]["rev"] if self.store.log else None)

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
        self.app.call_from_thread(self.app.push_screen, TextScreen(f"revision {rev[:12]}", body, wrap=False))

    def action_rollback(self) -> None:
        rev = self._rev()
        if not rev:
            return
        head = self._head()
        if rev == head:
            self.notify("that is HEAD: there is nothing to roll back to", severity="warning")
            return
        self._fetch_rollback(head, rev)

    @work(thread=True, exclusive=True, group="rollback")
    def _fetch_rollback(self, head: str | None, rev: str) -> None:
        try:
            diff, err = self.store.client.diff(head, rev).diff or "", None
        except Exception as e:  # noqa: BLE001 - shown in the dialog
            diff, err = None, str(e)
        self.app.call_from_thread(self._ask_rollback, head, rev, diff, err)

    def _ask_rollback(self, head: str | None, rev: str, diff: str | None, err: str | None) -> None:
        if self._rev() != rev:
            return  # the selection moved meanwhile: do not ask about another row than the one shown
        entry = next((e for e in self.store.log if e["rev"] == rev), {})
        msg = (entry.get("message") or "").splitlines()[0] if entry.get("message") else "(no message)"
        t = Text()
        t.append(f"Roll back to {rev[:12]}", style="bold")
        t.append(f"  \"{msg}\"\n")
        t.append(f"by {entry.get('author') or '?'}, {age(self.store.clock() - entry.get('time', 0))}; HEAD is "
                 f"{(head or '-')[:12]}.\nA new commit restores that configuration and the agent applies it now.\n",
                 style="dim")
        if err:
            t.append(f"the diff is not available: {err}\n", style="red")
        else:
            lines = [ln for ln in diff.splitlines() if ln[:1] in "+-@" and not ln.startswith(("+++", "---"))]
            width = min(72, self.app.size.width - 6)  # the dialog's inside: a diff line stays one line
            cut = "~" if self.app.plain else "…"
            lines = [ln if len(ln) <= width else ln[: width - 1] + cut for ln in lines]
            t.append("it changes:\n" if lines else "it changes nothing in router.yaml\n", style="bold")
            t.append_text(diff_text("\n".join(lines[:10])))
            if len(lines) > 10:
                t.append(f"... {len(lines) - 10} more line(s): enter on the row shows the commit\n", style="dim")

        def done(yes):
            if yes:
                self.app.write(f"rollback to {rev[:8]}", lambda c: c.rollback(rev))

        self.app.push_screen(ChoiceScreen(t, [("y", "roll back", True), ("n", "no", False)], cancel=False,
                                          title="roll back"), done)


def age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s ago"
    for unit, div in (("day", 86400), ("h", 3600), ("min", 60)):
        if s >= div:
            n = s // div
            return f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''} ago"
    return f"{s} s ago"
