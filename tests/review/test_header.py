"""The header survives a title change that arrives after its title widget is gone (app shutdown)."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult
from textual.widgets._header import HeaderTitle

from review.widgets.header import RsiHeader


class HeaderApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RsiHeader()


def test_a_late_title_change_does_not_crash() -> None:
    async def drive() -> None:
        app = HeaderApp()
        async with app.run_test() as pilot:
            await app.query_one(HeaderTitle).remove()
            app.title = "changed while closing"
            app.screen.title = "changed too"
            await pilot.pause()

    asyncio.run(drive())
