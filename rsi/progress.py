"""Progress of a headless run for a human tailing it, and `status.json` for a program polling it.

    observer = HeadlessProgress()                  # one line per event on stderr; a bar on a TTY
    write_status(run_dir, {"state": "running", …})  # atomic: a reader sees the old or the new file

A line looks like

    12:03:41 gen 3 evaluation  r2 0.6438 ± 0.0021  tests 42/42
    12:03:41 gen 3 verdict     allow
    12:03:41 gen 3 decision    accept by policy

so `tail -f` of the log, or a `grep 'gen 3'`, reads well. When stderr is a terminal a progress bar
(generations done of planned, the phase running now) is drawn below the lines.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.change_summary import describe_change
from core.events import RunResumed
from core.trajectory import Event
from core.visible import showing_console

STATUS_FILE = "status.json"


def write_status(run_dir: Path, status: dict[str, Any]) -> Path:
    """Replace run_dir/status.json atomically (temp file + rename in the same directory)."""
    target = run_dir / STATUS_FILE
    temp = run_dir / f".{STATUS_FILE}.{os.getpid()}.tmp"
    temp.write_text(json.dumps(status, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(temp, target)
    return target


def read_status(run_dir: Path) -> dict[str, Any] | None:
    target = run_dir / STATUS_FILE
    if not target.is_file():
        return None
    status: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    return status


def _metric(data: dict[str, Any]) -> str:
    metric = data.get("metric") or {}
    values = list((metric.get("per_seed") or {}).values())
    if not values:
        return data.get("failure") or "no metric"
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return f"{metric.get('name', 'metric')} {mean:.4f} ± {spread:.4f}"


def _tests(data: dict[str, Any]) -> str:
    tests = data.get("tests") or {}
    if not tests:
        return ""
    total = tests.get("passed", 0) + tests.get("failed", 0) + tests.get("errors", 0)
    return f"  tests {tests.get('passed', 0)}/{total}"


def event_line(event: Event) -> str | None:
    """The one-line summary of an event, or None for events not worth a line."""
    data = event.data
    match event.kind:
        case "run_started":
            config = data.get("config", {})
            text = (
                f"run {config.get('run_id')} started: {config.get('generations')} generation(s), "
                f"proposer {config.get('proposer')}, review {config.get('review')}"
            )
        case "run_resumed":
            superseded = data.get("superseded_generation")
            text = f"run resumed at generation {data.get('next_generation')}" + (
                f" (generation {superseded}'s partial events superseded)" if superseded else ""
            )
        case "baseline" | "parent_evaluation":
            text = f"{data.get('commit', '')[:10]}  {_metric(data.get('evaluation', {}))}"
        case "proposal_started":
            text = f"parent {data.get('parent', '')[:10]}  proposer {data.get('proposer')}"
        case "proposal":
            text = describe_change(data.get("diff", ""), data.get("rationale") or "")[:100]
        case "race":
            before = data.get("before", {})
            text = (
                f"close call (gain {before.get('gain', 0):+.4f}): seeds {data.get('seeds')}  "
                f"parent {_metric(data.get('parent_evaluation', {}))}  "
                f"candidate {_metric(data.get('evaluation', {}))}"
            )
        case "elite_check":
            gain = (data.get("paired") or {}).get("gain")
            held = "confirmed" if data.get("confirmed") else "NOT confirmed: a lucky score, never a parent"
            text = f"gen-{data.get('generation')} on fresh seeds {data.get('seeds')}: " + (
                f"gain {gain:+.4f}, {held}" if gain is not None else held
            )
        case "evaluation":
            text = _metric(data) + _tests(data)
        case "verdict":
            rules = ", ".join(f["rule_id"] for f in data.get("findings", []))
            text = f"{data.get('verdict')}" + (f"  [{rules}]" if rules else "")
        case "decision":
            text = f"{data.get('decision')} by {data.get('by')}"
        case "commit":
            text = f"{data.get('commit', '')[:10]} ({data.get('tag')})"
        case "checkpoint":
            text = f"PAUSED: {data.get('message')}"
        case "error":
            text = f"ERROR: {data.get('message')}"
        case "run_finished":
            text = f"run {data.get('status')}: {data.get('accepted')} accepted. {data.get('reason', '')}"
        case _:
            return None
    stamp = datetime.now().strftime("%H:%M:%S")
    where = f"gen {event.generation}" if event.generation else "run"
    return f"{stamp} {where:<6} {event.kind:<17} {text}".rstrip()


class HeadlessProgress:
    """Observer of a headless run: one line per event on stderr, a live bar when stderr is a TTY."""

    def __init__(self, stream: IO[str] | None = None, bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bar = self.stream.isatty() if bar is None else bar
        self.console = showing_console(file=self.stream, highlight=False)
        """Where the bar is drawn; whatever else goes to the same terminal must print through it."""
        self.progress: Progress | None = None
        self.task: Any = None
        self.planned = 0
        self.done = 0

    def console_for(self, stream: IO[str]) -> Console | None:
        """The console another printer should use for `stream`: the bar's own when both reach the
        same terminal, so its text lands above the bar instead of running into it; else None."""
        if self.bar and stream.isatty() and self.stream.isatty():
            return self.console
        return None

    def on_event(self, event: Event) -> None:
        line = event_line(event)
        if line is not None:
            if self.progress is not None:
                self.progress.console.print(line, highlight=False, markup=False)
            else:
                print(line, file=self.stream, flush=True)
        if event.kind in ("run_started",):
            self.planned = int(event.data.get("config", {}).get("generations", 0))
        if event.kind == "decision":
            self.done = max(self.done, event.generation or 0)
        if event.kind == "run_resumed":
            resumed = RunResumed.model_validate(event.data)
            self.planned = self.planned if resumed.generations is None else resumed.generations
            self.done = (1 if resumed.next_generation is None else resumed.next_generation) - 1
        self._update_bar(event.kind)
        if event.kind == "run_finished":
            self.close()

    def on_progress(self, phase: str, details: dict[str, Any]) -> None:
        label = details.get("label", details.get("generation", ""))
        extra = f" seed {details['index']}/{details['of']}" if "index" in details else ""
        self._update_bar(f"{label} {phase}{extra}")

    def _update_bar(self, phase: str) -> None:
        if not self.bar:
            return
        if self.progress is None:
            self.progress = Progress(
                TextColumn("[bold]generations"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=max(self.planned, 1))
        self.progress.update(self.task, total=max(self.planned, 1), completed=self.done, description=phase)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class FanOut:
    """Several observers as one (the console blocks on stdout and the headless lines on stderr)."""

    def __init__(self, *observers: Any) -> None:
        self.observers = observers

    def on_event(self, event: Event) -> None:
        for observer in self.observers:
            observer.on_event(event)

    def on_progress(self, phase: str, details: dict[str, Any]) -> None:
        for observer in self.observers:
            observer.on_progress(phase, details)
