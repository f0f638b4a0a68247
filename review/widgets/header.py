"""The app's header: Textual's Header, without its shutdown race.

Textual's Header updates its title from a watcher; when a title changes while the app is closing,
the watcher can run after the header's children are gone and raise NoMatches (seen under load in
the test suite). This header ignores that one late update, nothing else.
"""

from __future__ import annotations

import contextlib

from textual.css.query import NoMatches
from textual.dom import NoScreen
from textual.events import Mount
from textual.widgets import Header
from textual.widgets._header import HeaderTitle


class RsiHeader(Header):
    def _on_mount(self, event: Mount) -> None:
        event.prevent_default()  # Header's own handler registers the racy watchers; this replaces it

        async def set_title() -> None:
            with contextlib.suppress(NoMatches, NoScreen):
                self.query_one(HeaderTitle).update(self.format_title())

        self.watch(self.app, "title", set_title)
        self.watch(self.app, "sub_title", set_title)
        self.watch(self.screen, "title", set_title)
        self.watch(self.screen, "sub_title", set_title)
