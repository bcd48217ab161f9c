"""Small widgets: a live DataTable that updates by diffing rows, sparklines, banners and a status line."""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable, Static

try:  # DataTable internals the fast paths below use (Textual 8); without them the public API is used
    from textual._two_way_dict import TwoWayDict
    from textual.widgets._data_table import (
        _EMPTY_TEXT,
        ColumnKey,
        Row,
        RowKey,
        RowRenderables,
        default_cell_formatter,
    )

    _FAST = all(hasattr(DataTable, a) for a in ("_clear_caches", "_update_dimensions", "_render_cell",
                                                 "_get_styles_to_render_cell", "_get_row_renderables",
                                                 "_compute_row_renderables", "_render_line_in_row", "_render_line"))
except ImportError:  # pragma: no cover
    _FAST = False

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


def ellipsis_char(plain: bool) -> str:
    return "~" if plain else "…"


def fit_cell(cell, width: int, plain: bool = False):
    """A cell cut to ``width`` cells with an ellipsis (``~`` on plain terminals) when it is longer
    (then as Text); a cell that fits is returned as it is."""
    if isinstance(cell, str) and len(cell) <= width and cell.isascii():
        return cell  # the common case, without making a Text
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
        self._fitted: dict[str, tuple] = {}  # key → the cells as shown (cut to the columns)
        self._fitcache: dict[str, tuple[tuple, tuple]] = {}  # key → (cells, fitted), shown or not
        self._formatted: dict[str, tuple] = {}  # key → (fitted, its cells as DataTable formats them)
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
                self._cells, self._fitted, self._fitcache, self._formatted, self._shown = {}, {}, {}, {}, []
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
        """The cells cut to the column widths; remembered per row while its cells stay the same (a
        filter typed and cleared again does not re-fit 1,000 rows)."""
        hit = self._fitcache.get(key)
        if hit is not None and (hit[0] is cells or hit[0] == cells):
            return hit[1]
        plain = self._plain
        fitted = tuple(fit_cell(c, w, plain) for c, w in zip(cells, self._widths or [200] * len(cells), strict=False))
        self._fitcache[key] = (cells, fitted)
        return fitted

    def _apply(self, want: list[tuple[str, tuple]], cur: str | None) -> None:
        """Show ``want`` (in order) and keep the cursor on ``cur``. Cells that changed in rows that
        stay where they are are updated in place; any other change (a filter typed, rows added,
        removed or moved) replaces the rows in one pass — O(rows), never O(rows²) as removing
        DataTable rows one by one is — and only the rows in the window are then rendered."""
        keys = [k for k, _ in want]
        with self.app.batch_update():
            if keys == self._shown:
                changed = []
                for k, cells in want:
                    if self._cells.get(k) != cells:
                        fitted = self._fit_row(k, cells)
                        changed.extend((k, i, b) for i, (a, b) in enumerate(zip(self._fitted[k], fitted, strict=True))
                                       if a != b)
                        self._fitted[k] = fitted
                        self._cells[k] = cells
                if len(changed) > 8 and _FAST:
                    # Many cells (a poll's counters): one table update instead of one per cell.
                    data = self._data
                    for k, i, b in changed:
                        data[RowKey(k)][ColumnKey(f"c{i}")] = b
                    self._changed_in_bulk()
                else:
                    for k, i, b in changed:
                        self.update_cell(k, f"c{i}", b)
            else:
                fitted_rows = [(k, self._fit_row(k, cells)) for k, cells in want]
                self._fitted = dict(fitted_rows)
                if len(self._fitcache) > 2 * len(self._rows) + 64:  # keys come and go (events, leases)
                    live = {k for k, _ in self._rows}
                    self._fitcache = {k: v for k, v in self._fitcache.items() if k in live}
                    self._formatted = {k: v for k, v in self._formatted.items() if k in live}
                self._cells = {k: cells for k, cells in want}
                self._shown = keys
                self._replace_rows(fitted_rows)
            if cur is not None and cur in self._cells:
                idx = self._shown.index(cur)
                if idx != self.cursor_row:
                    self.move_cursor(row=idx, animate=False)

    # -- speed (issue 13): a table of one-line rows whose column widths sync() fixes ----------

    def _replace_rows(self, rows: list[tuple[str, tuple]]) -> None:
        """All rows at once. The cursor keeps its row number (clamped); the caller moves it."""
        if not _FAST:  # another Textual: the public API (slower, same result)
            self.clear()
            for k, fitted in rows:
                self.add_row(*fitted, key=k)
            return
        had = self.row_count
        cols = [c.key for c in self.ordered_columns]
        self._data.clear()
        self.rows.clear()
        locations = {}
        for i, (k, fitted) in enumerate(rows):
            rk = RowKey(k)
            locations[rk] = i
            self._data[rk] = dict(zip(cols, fitted, strict=False))
            self.rows[rk] = Row(rk, 1, None, False)
        self._row_locations = TwoWayDict(locations)
        self._new_rows.clear()
        self._updated_cells.clear()
        self._changed_in_bulk()
        if not had and rows and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # as add_row does when the first row appears

    def _changed_in_bulk(self) -> None:
        self._update_count += 1
        self._clear_caches()
        self._update_dimensions(())  # the virtual size now, before the cursor is moved and scrolled
        self._require_update_dimensions = False
        self.cursor_coordinate = self.cursor_coordinate  # clamped to the rows there are
        self.hover_coordinate = self.hover_coordinate
        self.refresh(layout=True)

    def _update_dimensions(self, new_rows) -> None:
        # Column widths are set by sync() from the content and every row is one line high, so the
        # new rows' cells need no measuring (DataTable would measure all 8,000 cells of a 1,000-row
        # table each time a filter is cleared).
        super()._update_dimensions(())

    def _compute_row_renderables(self, row_index: int):
        """A row's cells as DataTable formats them (a str cell is parsed as markup), remembered while the
        row shows the same cells: DataTable formats them again after every change to the table."""
        key = self._row_locations.get_key(row_index) if _FAST and row_index >= 0 else None
        fitted = self._fitted.get(key.value) if key is not None else None
        if fitted is None or self._labelled_row_exists or len(fitted) != len(self.columns):
            return super()._compute_row_renderables(row_index)
        hit = self._formatted.get(key.value)
        if hit is None or hit[0] is not fitted:
            cells = [_EMPTY_TEXT if c is None else default_cell_formatter(c, wrap=False, height=1) or _EMPTY_TEXT
                     for c in fitted]
            hit = self._formatted[key.value] = (fitted, RowRenderables(None, cells))
        return hit[1]

    def render_lines(self, crop):
        self._line_style = self.rich_style  # (computed from the styles each time it is read: once per frame here)
        try:
            return super().render_lines(crop)
        finally:
            self._line_style = None

    def render_line(self, y: int) -> Strip:
        style = getattr(self, "_line_style", None)
        if style is None or self.fixed_rows or not _FAST:
            return super().render_line(y)
        if y >= (self.header_height if self.show_header else 0):
            y += self.scroll_offset.y
        x = self.scroll_offset.x
        return self._render_line(y, x, x + self.size.width, style)

    def _render_line_in_row(self, row_key, line_no: int, base_style: Style, cursor_location, hover_location):
        """DataTable's row line for a body row of this table (row cursor, no row labels, no fixed rows
        or columns, no zebra stripes) without its per-line work that only other kinds of table need
        (the widget's background colours looked up through its ancestors, per-cell highlight tests).
        Same segments (test_fast_cells_render_as_the_data_tables); anything else goes the long way."""
        row_index = self._row_locations.get(row_key) if _FAST else None
        if (row_index is None or self.cursor_type != "row" or self.fixed_columns or self.fixed_rows
                or self.zebra_stripes or (self._labelled_row_exists and self.show_row_labels)):
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        show_cursor, show_hover = self.show_cursor, self._show_hover_cursor
        cache_key = (row_key, line_no, base_style, cursor_location, hover_location, "row", show_cursor, show_hover,
                     self._update_count, self._pseudo_class_state)
        cache = self._row_render_cache
        if cache_key in cache:
            return cache[cache_key]
        cursor = cursor_location.row == row_index
        hover = hover_location.row == row_index
        widths = [c.get_render_width(self) for c in self.ordered_columns]
        render_cell = self._render_cell
        row = [render_cell(row_index, i, base_style, w, cursor, hover)[line_no] for i, w in enumerate(widths)]
        remaining = max(0, self.size.width - (sum(widths) + self._row_label_column_width))
        extend, _ = self._get_styles_to_render_cell(False, False, False, hover_location.row == (row_index or 0), cursor,
                                                    show_cursor, show_hover, False, False)
        extend = base_style + extend + Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        row.append([Segment(" " * remaining, extend)])
        cache[cache_key] = pair = ([], row)
        return pair

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False):
        """DataTable's cell rendering without the general Rich pipeline (Styled(Padding(cell)) through
        render_lines) for what every body cell here is: a one-line Text that fits its column. The
        segments are the same (see test_fast_cells_render_as_the_data_tables); anything else
        (the header, a cell wider than its column, tabs, newlines, justified text) goes the long way."""
        if row_index < 0 or column_index < 0 or self.fixed_rows or self.fixed_columns or not _FAST:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        cache_key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor, self._update_count,
                     self._pseudo_class_state)
        cache = self._cell_render_cache
        if cache_key in cache:
            return cache[cache_key]
        row = self.rows.get(row_key)
        cell = self._get_row_renderables(row_index).cells[column_index] if row is not None else None
        pad = self.cell_padding
        inner = width - 2 * pad
        if (row is None or row.height != 1 or not isinstance(cell, Text) or cell.justify not in (None, "default", "left")
                or "\n" in cell.plain or "\t" in cell.plain or cell.cell_len > inner or inner < 0):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        # The cell's row/column (for the mouse) is added last: the other sums recur from cell to cell
        # and are cached by Rich (the same styles as base + meta + component + segment + post).
        pre = base_style + component_style
        meta = Style.from_meta({"row": row_index, "column": column_index})
        console = self.app.console
        if cell.spans:
            body = list(cell.render(console, end=""))  # its base style is in the style map
        else:  # Text.render() leaves a span-less text's own style out (Text.__rich_console__ adds it)
            body = [Segment(cell.plain, console.get_style(cell.style, default=Style.null()) if cell.style else None)]
        segs = [Segment(" " * pad), *body]
        fill = inner - cell.cell_len
        if fill:
            segs.append(Segment(" " * fill))
        segs.append(Segment(" " * pad))
        lines = [[Segment(text, style + meta) for text, style, _c in Segment.apply_style(segs, pre, post_style)]]
        cache[cache_key] = lines
        return lines


class LineView(Widget):
    """Many lines of text (a graph per interface and direction: 400 at 200 links), made and rendered
    a line at a time and only when in view: a Static would build and lay out every line on each
    update, and on each opening of its screen.

    ``show(count, make, key)``: ``make(i)`` returns line ``i`` as Text; lines are remembered until
    ``key`` changes (the data and width they were made from). Lines wider than the widget end in
    ``overflow`` (an ellipsis, or cropped)."""

    DEFAULT_CSS = "LineView { height: auto; }"

    def __init__(self, overflow: str = "ellipsis", **kw):
        super().__init__(**kw)
        self.overflow = overflow
        self._count = 0
        self._make = None
        self._key: object = object()
        self._lines: dict[int, Text] = {}
        self._strips: dict[tuple, Strip] = {}

    def show(self, count: int, make, key: object = None) -> None:
        if key is not None and key == self._key and count == self._count:
            return
        grew = count != self._count
        self._key, self._count, self._make = key, count, make
        self._lines.clear()
        self._strips.clear()
        self.refresh(layout=grew)

    def line(self, i: int) -> Text:
        t = self._lines.get(i)
        if t is None:
            t = self._lines[i] = self._make(i) if self._make is not None and 0 <= i < self._count else Text()
        return t

    def text(self) -> str:
        """All lines as plain text (what a Static would hold)."""
        return "\n".join(self.line(i).plain for i in range(self._count))

    def get_content_height(self, container, viewport, width: int) -> int:
        return self._count

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        style = self.rich_style
        key = (y, width, style)
        strip = self._strips.get(key)
        if strip is None:
            t = self.line(y)
            if t.cell_len > width:
                t = t.copy()
                t.truncate(width, overflow=self.overflow)
            segs = Segment.apply_style(t.render(self.app.console, end="") if t.spans else
                                       [Segment(t.plain, self.app.console.get_style(t.style) if t.style else None)], style)
            pad = Style.from_color(bgcolor=style.bgcolor)  # as a Static pads its lines
            strip = self._strips[key] = Strip(list(segs)).adjust_cell_length(width, pad).simplify()
        return strip


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
