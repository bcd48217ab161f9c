"""Small widgets: a live DataTable that updates by diffing rows, sparklines, banners and a status line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable, Static

from .theme import spark_chars


def human_rate(bps: float | None) -> str:
    """Bytes/s → a short bits/s figure ('1.2M', '900k', '0')."""
    if bps is None:
        return "-"
    b = bps * 8
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if b >= div:
            return f"{b / div:.1f}{unit}"
    return f"{b:.0f}"


def human_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e4)):
        if n >= div:
            return f"{n / (div if unit != 'k' else 1e3):.1f}{unit}"
    return str(n)


def sparkline(values: Sequence[float], width: int, plain: bool = False, top: float | None = None) -> str:
    """Values → a fixed-width string; the last ``width`` samples, bucketed when there are more."""
    chars = spark_chars(plain)
    if width <= 0:
        return ""
    vals = list(values)
    if len(vals) > width:
        step = len(vals) / width
        vals = [max(vals[int(i * step):max(int((i + 1) * step), int(i * step) + 1)]) for i in range(width)]
    top = max(vals, default=0) if top is None else top
    out = []
    for v in vals:
        if top <= 0 or v <= 0:
            out.append(chars[0] if plain else chars[1] if v > 0 else " ")
        else:
            out.append(chars[min(len(chars) - 1, 1 + int(v / top * (len(chars) - 2) + 0.5))])
    return "".join(out).rjust(width)


def _subsequence(small: list, big: list) -> bool:
    it = iter(big)
    return all(k in it for k in small)


class LiveTable(DataTable):
    """A DataTable updated by diffing rows by key (cells that changed are updated in place).

    ``sync(rows)`` takes ``[(key, cells), …]`` in display order; a ``/`` filter hides rows whose
    cells do not contain the filter text. The cursor stays on the same key across updates.
    """

    DEFAULT_CSS = "LiveTable { height: 1fr; }"
    # vi/less keys on every list (issue 13): j/k a row, g/G and home/end the first/last row (PgUp/PgDn: DataTable).
    BINDINGS = [Binding("j", "cursor_down", "down", show=False), Binding("k", "cursor_up", "up", show=False),
                Binding("g,home", "scroll_top", "first", show=False),
                Binding("G,end", "scroll_bottom", "last", show=False)]

    def __init__(self, columns: Sequence[tuple[str, int | None]], **kw):
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self._cols = columns
        self._rows: list[tuple[str, tuple]] = []
        self._shown: list[str] = []
        self._cells: dict[str, tuple] = {}
        self.filter_text = ""

    def on_mount(self) -> None:
        for i, (label, width) in enumerate(self._cols):
            self.add_column(label, width=width, key=f"c{i}")

    @property
    def current_key(self) -> str | None:
        if not self._shown or self.cursor_row is None or not (0 <= self.cursor_row < len(self._shown)):
            return None
        return self._shown[self.cursor_row]

    def select_key(self, key: str | None) -> None:
        if key in self._cells:
            self.move_cursor(row=self._shown.index(key), animate=False)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.sync(self._rows)

    def _visible(self, rows: Iterable[tuple[str, tuple]]) -> list[tuple[str, tuple]]:
        f = self.filter_text.lower()
        if not f:
            return list(rows)
        return [(k, c) for k, c in rows if any(f in str(x).lower() for x in c)]

    def sync(self, rows: list[tuple[str, tuple]]) -> None:
        self._rows = rows
        want = self._visible(rows)
        keys = [k for k, _ in want]
        cur = self.current_key
        with self.app.batch_update():
            if len(keys) < len(self._shown) and self._shown[: len(keys)] == keys:
                for k in self._shown[len(keys):]:  # rows went away at the end
                    self.remove_row(k)
                    del self._cells[k]
                self._shown = self._shown[: len(keys)]
            elif len(keys) < len(self._shown) and _subsequence(keys, self._shown):
                gone = set(self._shown) - set(keys)  # a narrower filter: drop rows, keep the rest
                for k in gone:
                    self.remove_row(k)
                    del self._cells[k]
                self._shown = [k for k in self._shown if k not in gone]
            elif keys[: len(self._shown)] != self._shown or len(set(keys)) != len(keys):
                # Order changed or rows went away in the middle: rebuild (still one batched redraw).
                self.clear()
                self._cells = {}
                self._shown = []
            for k, cells in want:
                old = self._cells.get(k)
                if old is None:
                    self.add_row(*cells, key=k)
                    self._shown.append(k)
                elif old != cells:
                    for i, (a, b) in enumerate(zip(old, cells, strict=True)):
                        if a != b:
                            self.update_cell(k, f"c{i}", b)
                self._cells[k] = cells
            if cur is not None and cur in self._cells:
                idx = self._shown.index(cur)
                if idx != self.cursor_row:
                    self.move_cursor(row=idx, animate=False)


class Banner(Static):
    """A one-line banner (READ-ONLY, reconnecting, errors); hidden when empty."""

    def show(self, text: str | None, kind: str = "warn") -> None:
        self.set_classes(["-shown", f"-{kind}"] if text else [])
        self.update(text or "")


class StatusLine(Static):
    """hostname · HEAD · applied · candidate — the top line of every screen."""

    def show(self, store) -> None:
        st = store.status or {}
        bar = "|" if self.app.plain else "│"
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f" {st.get('hostname') or '?'} ", style="bold")
        t.append(f"{bar} {store.screen_title} ")
        head = (st.get("head") or "-")[:8]
        t.append(f"{bar} HEAD {head} ")
        applied = (st.get("applied") or "-")[:8]
        t.append(f"applied {applied}", style="" if st.get("in_sync", True) else "bold red")
        n = len(store.candidate.changes()) if store.candidate.dirty else 0
        if n:
            t.append(f" {bar} candidate: {n} change{'s' if n != 1 else ''}", style="bold yellow")
        cd = store.confirm_countdown()
        if cd is not None:
            t.append(f" {bar} CONFIRM in {cd}s", style="bold reverse")
        if store.read_only:
            t.append(f" {bar} READ-ONLY", style="bold")
        self.update(t)


class KeyBar(Static):
    """The footer: the keys of the current screen first, then the global ones; wraps to two lines."""

    DEFAULT_CSS = "KeyBar { dock: bottom; height: auto; max-height: 2; background: $panel; }"

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._changed)
        self.call_after_refresh(self.render_keys)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _changed(self, screen) -> None:
        self.render_keys()

    def on_resize(self) -> None:
        self.render_keys()

    def render_keys(self) -> None:
        seen, screen_keys, app_keys = set(), [], []
        for active in self.screen.active_bindings.values():
            b = active.binding
            if not b.show or not b.description or (b.action, b.description) in seen:
                continue
            seen.add((b.action, b.description))
            (app_keys if active.node is self.app else screen_keys).append(
                (b.key_display or self.app.get_key_display(b), b.description, active.enabled))
        width = max(self.size.width, 20)
        t = Text(no_wrap=False)
        col = 0
        for key, desc, enabled in screen_keys + app_keys:
            item = len(key) + len(desc) + 2
            if col and col + item > width:
                t.append("\n")
                col = 0
            t.append(key, style="bold reverse" if enabled else "dim")
            t.append(f" {desc} ", style="" if enabled else "dim")
            col += item
        self.update(t)
