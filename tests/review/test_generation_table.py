"""The generations table skips DataTable's cell measuring only where it decides nothing: it must
look and size itself exactly as a DataTable with the same columns and rows, and measure again as
soon as a column or row needs it. Also the two other shortcuts of a long listing: the metric
spread in floats and the paused collector."""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import threading
from pathlib import Path

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable
from textual.widgets.data_table import DuplicateKey

from review.gcpause import collector_paused
from review.state import _sample_std
from review.widgets.generation_table import GenerationTable

WIDTHS = {"gen": 4, "status": 15, "change": 30}
ROWS = [
    (str(g), (Text(str(g), justify="right"), Text("accepted" if g % 3 else "rejected"), f"change {g} " * g))
    for g in range(1, 60)
]


class Twins(App[None]):
    """A stock DataTable and a GenerationTable side by side, same columns."""

    def __init__(self, auto_width_change: bool = False) -> None:
        super().__init__()
        self.auto_width_change = auto_width_change

    def compose(self) -> ComposeResult:
        for table in (DataTable[object](id="stock"), GenerationTable(id="fast")):
            table.cursor_type = "row"
            table.zebra_stripes = True
            table.styles.width = 60
            table.styles.height = 12
            for key, width in WIDTHS.items():
                auto = self.auto_width_change and key == "change"
                table.add_column(key, key=key, width=None if auto else width)
            yield table


def table_lines(table: DataTable[object]) -> list[str]:
    return ["".join(segment.text for segment in table.render_line(y)) for y in range(table.size.height)]


def fill_both(app: Twins) -> tuple[DataTable[object], GenerationTable]:
    stock = app.query_one("#stock", DataTable)
    fast = app.query_one("#fast", GenerationTable)
    for key, cells in ROWS:
        stock.add_row(*cells, key=key)
    fast.add_keyed_rows(ROWS)
    return stock, fast


def test_fixed_widths_look_and_size_as_a_datatable_does() -> None:
    async def drive() -> None:
        app = Twins()
        async with app.run_test(size=(130, 14)) as pilot:
            stock, fast = fill_both(app)
            await pilot.pause()
            assert fast.row_count == stock.row_count == len(ROWS)
            assert fast.virtual_size == stock.virtual_size
            assert table_lines(fast) == table_lines(stock)
            for table in (stock, fast):
                table.move_cursor(row=40)
                table.update_cell("41", "status", Text("denied"))
            await pilot.pause()
            assert fast.scroll_offset == stock.scroll_offset and fast.scroll_offset.y > 0
            assert table_lines(fast) == table_lines(stock)
            assert fast.coordinate_to_cell_key(fast.cursor_coordinate).row_key.value == "41"

    asyncio.run(drive())


def test_an_auto_width_column_is_measured_as_a_datatable_does() -> None:
    async def drive() -> None:
        app = Twins(auto_width_change=True)
        async with app.run_test(size=(130, 14)) as pilot:
            stock, fast = fill_both(app)
            await pilot.pause()
            grown = fast.columns[next(k for k in fast.columns if k.value == "change")]
            assert grown.content_width == len(ROWS[-1][1][2])  # the longest change, measured
            assert fast.virtual_size == stock.virtual_size

    asyncio.run(drive())


def test_batch_rows_keep_datatable_errors() -> None:
    async def drive() -> None:
        app = Twins()
        async with app.run_test(size=(130, 14)):
            _, fast = fill_both(app)
            with pytest.raises(DuplicateKey):
                fast.add_keyed_rows([ROWS[0]])
            with pytest.raises(ValueError, match="2 cells for 3 columns"):
                fast.add_keyed_rows([("new", ("a", "b"))])

    asyncio.run(drive())


@pytest.mark.parametrize("seeds", [1, 2, 3, 5, 10])
def test_the_float_spread_matches_statistics_stdev(seeds: int) -> None:
    rng = random.Random(seeds)
    for _ in range(200):
        values = [rng.choice([0.5, 1e6, -3.0]) * rng.random() for _ in range(seeds)]
        expected = statistics.stdev(values) if seeds > 1 else 0.0
        assert _sample_std(values) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert _sample_std([0.1] * seeds) == 0.0


def test_collector_pauses_nest_across_threads_and_restore() -> None:
    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def other_thread() -> None:
        with collector_paused():
            inside.set()
            release.wait(10)

    with collector_paused():
        worker = threading.Thread(target=other_thread)
        worker.start()
        assert inside.wait(10)
        assert not gc.isenabled()
    assert not gc.isenabled(), "the other thread's pause still holds"
    release.set()
    worker.join(10)
    assert gc.isenabled()

    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled(), "a collector that was off stays off"
    finally:
        gc.enable()

    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("bulk work failed")
    assert gc.isenabled()


def test_a_terminal_resize_keeps_the_selected_generation(tmp_path: Path) -> None:
    from review.app import make_app
    from review.screens.run import RunScreen
    from tests.review.helpers import wait_until
    from tests.review.synthetic import many_generations, write_run

    run_dir = write_run(tmp_path / "run", many_generations(120))
    app = make_app("replay", trajectory=run_dir / "trajectory.jsonl")

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, RunScreen)
            table = screen.query_one("#generations", GenerationTable)
            await wait_until(pilot, lambda: table.row_count == 120, what="every generation")
            table.move_cursor(row=table.get_row_index("90"))
            await pilot.pause()
            for width in (80, 120):  # each crosses the narrow breakpoint: the table is rebuilt
                await pilot.resize_terminal(width, 40)
                await wait_until(pilot, lambda w=width: screen.size.width == w, what=f"width {width}")
                await pilot.pause()
                assert screen.selected_generation() == 90
                assert table.scroll_offset.y > 0, "the selected row scrolled into view"

    asyncio.run(drive())


def test_an_empty_replay_table_never_paints_its_header_as_the_cursor(tmp_path: Path) -> None:
    from review.app import make_app
    from review.screens.run import RunScreen
    from tests.review.helpers import wait_until
    from tests.review.synthetic import many_generations, write_run

    run_dir = write_run(tmp_path / "run", many_generations(5))
    app = make_app("replay", trajectory=run_dir / "trajectory.jsonl")

    async def drive() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, RunScreen)
            table = screen.query_one("#generations", GenerationTable)
            await wait_until(pilot, lambda: table.row_count == 5, what="every generation")
            await pilot.press("g")  # the first event: no generation yet
            await pilot.pause()
            assert table.row_count == 0
            await pilot.press("k")  # DataTable clamps the cursor of an empty table to row -1
            await pilot.press("ctrl+t")  # another theme: every line is drawn afresh
            await pilot.pause()
            cursor_background = table.get_component_rich_style("datatable--header-cursor").bgcolor
            header = table.render_line(0)
            assert header.text.strip().startswith("gen")
            assert all(
                segment.style is None or segment.style.bgcolor != cursor_background for segment in header
            )
            await pilot.press("right_square_bracket")  # to the end of generation 1: one row, lit
            await pilot.pause()
            assert table.row_count == 1 and table.show_cursor

    asyncio.run(drive())
