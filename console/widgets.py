"""Small widgets: a live DataTable that updates by diffing rows, sparklines, banners and a status line."""

from __future__ import annotations

from collections.abc import Sequence

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


_plan_memo: dict = {}


def _bucket_plan(times: Sequence[float], n: int, width: int) -> tuple[list[int], int, int, int]:
    """Column of each of the last ``n`` samples, the first and last column, and the step; computed
    once per history and width (a traffic screen draws 400 series over the same times)."""
    key = (id(times), len(times), n, width)
    memo = _plan_memo.get("last")
    if memo is not None and memo[0] == key and memo[1] is times:
        return memo[2]
    ts = list(times)[-n:]
    span = max(ts[-1] - ts[0], n - 1)
    step = max(1, -(-int(span + 1) // width))
    idx = [int(t // step) for t in ts]
    plan = (idx, max(idx[0], idx[-1] - width + 1), idx[-1], step)
    _plan_memo["last"] = (key, times, plan)
    return plan


def aligned_buckets(times: Sequence[float], values: Sequence[float], width: int) -> tuple[list[float], int]:
    """The samples in at most ``width`` columns of ``step`` seconds each (the peak of each), where a
    column is a fixed stretch of wall-clock time (``t // step``): a sample stays in its column from
    one redraw to the next instead of shifting between buckets. Returns (columns, step)."""
    if width <= 0 or not values:
        return [], 1
    n = min(len(times), len(values))
    if n <= width:
        return list(values)[-n:], 1
    idx, first, last, step = _bucket_plan(times, n, width)
    cols = [0.0] * (last - first + 1)
    for b, v in zip(idx, list(values)[-n:], strict=True):
        if b >= first and v > cols[b - first]:
            cols[b - first] = v
    return cols, step


def _subsequence(small: list, big: list) -> bool:
    it = iter(big)
    return all(k in it for k in small)


def ellipsis_char(plain: bool) -> str:
    return "~" if plain else "…"


def fit_cell(cell, width: int, plain: bool = False):
    """A cell cut to ``width`` cells with an ellipsis (``~`` on plain terminals) when it is longer
    (then as Text); a cell that fits is returned as it is."""
    t = cell if isinstance(cell, Text) else Text(str(cell))
    if t.cell_len <= width:
        return cell
    t = t.copy()
    t.truncate(max(0, width - 1))
    t.append(ellipsis_char(plain))
    return t


def fit_widths(natural: list[int], floors: list[int], keys: list[bool], avail: int) -> list[int]:
    """Column widths that fit ``avail``: natural widths when they fit, else the widest non-key
    column gives up a cell at a time down to its floor, then the key columns down to 3."""
    w = list(natural)
    excess = sum(w) - avail
    for key_pass in (False, True):
        while excess > 0:
            cand = [i for i in range(len(w)) if keys[i] == key_pass and w[i] > (3 if key_pass else floors[i])]
            if not cand:
                break
            i = max(cand, key=lambda j: (w[j], j))
            w[i] -= 1
            excess -= 1
    return w


class LiveTable(DataTable):
    """A DataTable updated by diffing rows by key (cells that changed are updated in place).

    ``sync(rows)`` takes ``[(key, cells), …]`` in display order; a ``/`` filter hides rows whose
    cells do not contain the filter text. The cursor stays on the same key across updates.

    Columns are ``(label, hint)`` or ``(label, hint, "key")``: widths follow the content of all rows
    (not only the filtered ones, so they stay put while typing a filter) and the window; when the
    window is too narrow the non-key columns shrink first and cut values end in an ellipsis. The
    first column is always a key column.
    """

    DEFAULT_CSS = "LiveTable { height: 1fr; }"
    # vi/less keys on every list (issue 13): j/k a row, g/G and home/end the first/last row (PgUp/PgDn: DataTable).
    BINDINGS = [Binding("j", "cursor_down", "down", show=False), Binding("k", "cursor_up", "up", show=False),
                Binding("g,home", "scroll_top", "first", show=False),
                Binding("G,end", "scroll_bottom", "last", show=False)]

    def __init__(self, columns: Sequence[tuple], **kw):
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self._cols = [(c[0], c[1]) for c in columns]
        self._keycols = [i == 0 or (len(c) > 2 and c[2] == "key") for i, c in enumerate(columns)]
        self._rows: list[tuple[str, tuple]] = []
        self._shown: list[str] = []
        self._cells: dict[str, tuple] = {}
        self._fitted: dict[str, tuple] = {}
        self._widths: list[int] | None = None
        self.filter_text = ""

    def on_mount(self) -> None:
        self._widths = self._fit(self._rows)
        self._add_columns()

    def _add_columns(self) -> None:
        for i, (label, _hint) in enumerate(self._cols):
            self.add_column(fit_cell(label, self._widths[i], self._plain), width=self._widths[i], key=f"c{i}")

    @property
    def _plain(self) -> bool:
        return bool(getattr(self.app, "plain", False))

    def _avail(self) -> int:
        width = self.size.width or (self.app.size.width if self.is_attached else 80)
        return width - 2 * self.cell_padding * len(self._cols) - 2  # 2: the vertical scrollbar

    def _fit(self, rows: list[tuple[str, tuple]]) -> list[int]:
        n = len(self._cols)
        nat = [len(label) for label, _hint in self._cols]
        for _k, cells in rows:
            for i, c in enumerate(cells):
                w = c.cell_len if isinstance(c, Text) else len(str(c))
                if w > nat[i]:
                    nat[i] = w
        nat = [min(w, 200) for w in nat]
        floors = [min(nat[i], max(4, min(len(self._cols[i][0]), 8))) for i in range(n)]
        return fit_widths(nat, floors, self._keycols, max(self._avail(), n * 3))

    def on_resize(self) -> None:
        self._refit()

    def _refit(self) -> None:
        widths = self._fit(self._rows)
        if widths != self._widths and self._widths is not None:
            self._widths = widths
            cur = self.current_key
            with self.app.batch_update():
                self.clear(columns=True)
                self._add_columns()
                self._cells, self._fitted, self._shown = {}, {}, []
                self._apply(self._visible(self._rows), cur)

    @property
    def current_key(self) -> str | None:
        if not self._shown or self.cursor_row is None or not (0 <= self.cursor_row < len(self._shown)):
            return None
        return self._shown[self.cursor_row]

    def raw_row(self, key: str) -> tuple:
        """The cells of a shown row as given to sync() (get_row() has them cut to the column)."""
        return self._cells[key]

    def select_key(self, key: str | None) -> None:
        if key in self._cells:
            self.move_cursor(row=self._shown.index(key), animate=False)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.sync(self._rows)

    def _visible(self, rows: list[tuple[str, tuple]]) -> list[tuple[str, tuple]]:
        f = self.filter_text.lower()
        if not f:
            return list(rows)
        if getattr(self, "_search_of", None) is not rows:  # lower-cased row text, once per sync
            self._search_of = rows
            self._search = ["\0".join(str(x).lower() for x in c) for _k, c in rows]
        return [r for r, text in zip(rows, self._search, strict=True) if f in text]

    def sync(self, rows: list[tuple[str, tuple]]) -> None:
        grew = rows is not self._rows
        self._rows = rows
        if grew and self._widths is not None:
            widths = self._fit(rows)
            if widths != self._widths:
                self._refit()
                return
        self._apply(self._visible(rows), self.current_key)

    def _fit_row(self, key: str, cells: tuple) -> tuple:
        if self._cells.get(key) == cells and key in self._fitted:
            return self._fitted[key]
        plain = self._plain
        return tuple(fit_cell(c, w, plain) for c, w in zip(cells, self._widths or [200] * len(cells), strict=False))

    def _apply(self, want: list[tuple[str, tuple]], cur: str | None) -> None:
        keys = [k for k, _ in want]
        with self.app.batch_update():
            if len(keys) < len(self._shown) - len(keys) or (keys and len(self._shown) - len(keys) > 200):
                # Most rows go (a filter typed into a big table): removing rows one by one costs
                # O(rows) each in DataTable; a rebuild with the few that stay is cheaper.
                self.clear()
                self._cells = {}
                self._shown = []
            elif len(keys) < len(self._shown) and self._shown[: len(keys)] == keys:
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
                    fitted = self._fit_row(k, cells)
                    self.add_row(*fitted, key=k)
                    self._shown.append(k)
                    self._fitted[k] = fitted
                elif old != cells:
                    fitted = self._fit_row(k, cells)
                    for i, (a, b) in enumerate(zip(self._fitted[k], fitted, strict=True)):
                        if a != b:
                            self.update_cell(k, f"c{i}", b)
                    self._fitted[k] = fitted
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
        items = screen_keys + app_keys
        if _lines(items, width) > 2:
            # Too many for two lines: the screen-switch keys (1 dash, 2 if, …) fold into one item.
            views = [k for k in app_keys if k[0].isdigit()]
            if views:
                fold = (f"{views[0][0]}-{views[-1][0]}", "screens", True)
                rest = [k for k in app_keys if not k[0].isdigit()]
                items = screen_keys + [fold] + rest
        if _lines(items, width) > 2:  # still too many: keys only for what does not fit
            short = [(k, d.split()[0][:6], e) for k, d, e in items]
            items = short
        t = Text(no_wrap=False)
        col = 0
        for key, desc, enabled in items:
            item = len(key) + len(desc) + 2
            if col and col + item > width:
                t.append("\n")
                col = 0
            t.append(key, style="bold reverse" if enabled else "dim")
            t.append(f" {desc} ", style="" if enabled else "dim")
            col += item
        self.update(t)


def _lines(items, width: int) -> int:
    lines, col = 1, 0
    for key, desc, _ in items:
        item = len(key) + len(desc) + 2
        if col and col + item > width:
            lines, col = lines + 1, 0
        col += item
    return lines
