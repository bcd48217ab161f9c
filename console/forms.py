"""Modal screens: confirmation, one-line prompt, edit forms with inline problems, help and text views."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]

    def __init__(self, message: str, danger: bool = True):
        super().__init__()
        self.message, self.danger = message, danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.message, style="bold red" if self.danger else "bold"))
            yield Static("[y] yes   [n/esc] no", classes="buttons", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


@dataclass
class Field:
    key: str
    label: str
    value: str = ""
    placeholder: str = ""


# check(values) → (problems by field key, problems not tied to a field); runs in a worker thread.
Checker = Callable[[dict], tuple[dict[str, list[str]], list[str]]]


class FormScreen(ModalScreen[dict | None]):
    """Fields with problems shown at the field; ctrl+s (or enter on the last field) checks and saves."""

    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("ctrl+s", "save", "save")]

    def __init__(self, title: str, fields: list[Field], check: Checker):
        super().__init__()
        self.title_text, self.fields, self.check = title, fields, check

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Static(self.title_text, classes="title", markup=False)
            for f in self.fields:
                with Horizontal(classes="field"):
                    yield Label(f.label if len(f.label) < LABEL_MAX else f.label[:LABEL_MAX - 2] + "~",
                                classes="label")
                    yield Input(f.value, placeholder=as_hint(f.placeholder), id=f"f-{f.key}")
                yield Static("", id=f"e-{f.key}", classes="error", markup=False)
            yield Static("", id="e-_general", classes="error", markup=False)
            yield Static("[tab] next  [ctrl+s] save  [esc] cancel", classes="buttons", markup=False, id="form-hint")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).can_focus = False
        self.query_one(f"#f-{self.fields[0].key}", Input).focus()
        self._initial = self.values()
        fit_labels(self, [f.label for f in self.fields])

    def on_input_changed(self, event: Input.Changed) -> None:
        """A field's problem described its old value: it goes as soon as the field is changed."""
        w = self.query_one(f"#e-{(event.input.id or '').removeprefix('f-')}", Static)
        if w.display:
            w.update("")
            w.display = False

    def values(self) -> dict:
        return {f.key: self.query_one(f"#f-{f.key}", Input).value for f in self.fields}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == f"f-{self.fields[-1].key}":
            self.action_save()
        else:
            self.focus_next()

    def action_save(self) -> None:
        self.query_one("#form-hint", Static).update("checking with the agent …")
        self._run_check(self.values())

    @work(thread=True, exclusive=True)
    def _run_check(self, values: dict) -> None:
        try:
            by_field, general = self.check(values)
        except Exception as e:  # noqa: BLE001 - shown to the user, the form stays open
            by_field, general = {}, [str(e)]
        self.app.call_from_thread(self._show_problems, values, by_field, general)

    def _show_problems(self, values: dict, by_field: dict, general: list[str]) -> None:
        self.query_one("#form-hint", Static).update("[tab] next  [ctrl+s] save  [esc] cancel")
        for key, msgs in [(f.key, by_field.get(f.key, [])) for f in self.fields] + [("_general", general)]:
            w = self.query_one(f"#e-{key}", Static)
            w.update("\n".join(msgs))
            w.display = bool(msgs)
        if not by_field and not general:
            self.dismiss(values)
        else:
            first = next((f.key for f in self.fields if by_field.get(f.key)), None)
            if first:
                self.query_one(f"#f-{first}", Input).focus()

    def action_cancel(self) -> None:
        """Esc: an untouched form closes; typed text is not dropped without asking."""
        if self.values() == getattr(self, "_initial", None):
            self.dismiss(None)
            return

        def answered(yes):
            if yes:
                self.dismiss(None)

        self.app.push_screen(ConfirmScreen("Discard what you typed in this form?\n(n keeps editing)"), answered)


LABEL_MIN, LABEL_MAX = 12, 21


def fit_labels(screen, labels: list[str]) -> None:
    """The label column as wide as the longest label (12 to 21 cells; a longer one is cut with ~), and
    the field errors under the fields, not under the labels."""
    width = max(LABEL_MIN, min(LABEL_MAX, max((len(x) for x in labels), default=0) + 1))
    if width == LABEL_MIN:
        return
    for w in screen.query(".dialog .label"):
        w.styles.width = width
    for w in screen.query(".dialog .error"):
        if not w.has_class("wide"):
            w.styles.padding = (0, 0, 0, width)


def as_hint(placeholder: str) -> str:
    """A placeholder must not read as a value already typed (a VT100 shows no dimming): '8443' → '(e.g. 8443)'."""
    p = placeholder.strip()
    if not p or p.startswith("("):
        return p
    return f"({p})" if " " in p and not p[0].isdigit() else f"(e.g. {p})"


class TextScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "close"), Binding("j", "scroll('down')", show=False),
                Binding("k", "scroll('up')", show=False), Binding("g", "scroll('home')", show=False),
                Binding("G", "scroll('end')", show=False)]

    def __init__(self, title: str, body: str | Text, wrap: bool = True):
        super().__init__()
        self.title_text, self.body, self.wrap = title, body, wrap  # wrap=False: a diff scrolls sideways

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="textdialog"):
            yield Static(self.title_text, classes="title", markup=False)
            with VerticalScroll(classes="scrollbox"):
                yield Static(self.body, markup=False)
            yield Static("[esc] close  [up/down/pgup/pgdn] scroll" + ("" if self.wrap else "  [left/right]"),
                         classes="buttons", markup=False)

    def on_mount(self) -> None:
        self.query_one("#textdialog").styles.height = "90%"
        self.query_one("#textdialog").styles.width = "95%"
        box = self.query_one(VerticalScroll)
        if not self.wrap:  # a diff line stays one line (its +/- in front); left/right scroll
            body = box.query_one(Static)
            body.styles.text_wrap = "nowrap"
            body.styles.width = "auto"
            box.styles.overflow_x = "auto"
        box.focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, how: str) -> None:
        """j/k/g/G as in less (the arrows, pgup/pgdn and home/end are the scroll box's own)."""
        box = self.query_one(VerticalScroll)
        {"down": box.scroll_down, "up": box.scroll_up, "home": box.scroll_home, "end": box.scroll_end}[how](
            animate=False)


def diff_text(diff: str) -> Text:
    t = Text(no_wrap=True)
    for line in diff.splitlines():
        style = ""
        if line.startswith("+") and not line.startswith("+++"):
            style = "green"
        elif line.startswith("-") and not line.startswith("---"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        t.append(line.replace("\t", "  ") + "\n", style=style)
    return t
