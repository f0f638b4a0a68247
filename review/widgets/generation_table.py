"""The Run screen's table of generations: a DataTable that does not measure cells it never sizes by.

Textual's DataTable measures every cell of every new or updated row, to grow auto-width columns
and auto-height rows. The Run screen gives every column a fixed width and every row a height of
one line, so those measurements decide nothing; on 2,000 generations they were about half of the
time to list them. This table skips them while that holds and falls back to DataTable's own
sizing as soon as it does not (an auto-width column, a row label, an auto-height row).

It also adds many rows at once (`add_keyed_rows`): DataTable's `add_row` re-clamps the cursor
and schedules a repaint per row, a third of the rest of the time on 2,000 rows.

DataTable's sizing hooks are private; Textual is pinned in pyproject.toml, and
tests/review/test_generation_table.py checks that the table sizes itself as DataTable would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, DuplicateKey, Row, RowKey


class GenerationTable(DataTable[object]):
    def _sized_by_fixed_widths(self, rows: Iterable[RowKey] = ()) -> bool:
        """Every column has a fixed width and no row needs measuring for its height or label."""
        if self._labelled_row_exists or any(column.auto_width for column in self.columns.values()):
            return False
        for key in rows:
            row = self.rows.get(key)
            if row is not None and (row.auto_height or row.label is not None):
                return False
        return True

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        new_rows = list(new_rows)
        if not self._sized_by_fixed_widths(new_rows):
            super()._update_dimensions(new_rows)
            return
        header_height = self.header_height if self.show_header else 0
        columns_width = sum(column.get_render_width(self) for column in self.columns.values())
        self.virtual_size = Size(
            columns_width + self._row_label_column_width, self._total_row_height + header_height
        )

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        # A changed cell cannot change a fixed-width column, nor a one-line row's height.
        if not self._sized_by_fixed_widths(cell.row_key for cell in updated_cells):
            super()._update_column_widths(updated_cells)

    def add_keyed_rows(self, rows: Iterable[tuple[str, Sequence[object]]]) -> None:
        """`add_row(*cells, key=key)` for each (key, cells), one line high and unlabelled, with the
        cursor clamped and the table refreshed once for the whole batch."""
        was_empty = self.row_count == 0
        columns = self.ordered_columns
        for key, cells in rows:
            row_key = RowKey(key)
            if row_key in self._row_locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            if len(cells) != len(columns):
                raise ValueError(f"row {key!r} has {len(cells)} cells for {len(columns)} columns.")
            self._row_locations[row_key] = len(self.rows)
            self._data[row_key] = {column.key: cell for column, cell in zip(columns, cells, strict=True)}
            self.rows[row_key] = Row(row_key, 1)
            self._new_rows.add(row_key)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if was_empty and self.row_count and self.columns and self.show_cursor and self.cursor_type != "none":
            # As add_row does for the first row: the cursor now has a row to highlight.
            self._highlight_cursor()
        self._update_count += 1
        self.check_idle()
