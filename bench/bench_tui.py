"""How fast the review TUI opens big inputs, measured headless with App.run_test.

    .venv/bin/python bench/bench_tui.py
    .venv/bin/python bench/bench_tui.py --against ../other-checkout --rounds 3

A recorded run of 2,000 generations whose last change is a 5,000-line diff: time to first paint,
to show every generation, to open the change, to scroll it, and to step the replay cursor.
Targets: first paint, listing every generation and opening a change within 1 s on this machine.

`--against DIR` measures another checkout of the project (say, a worktree of main) the same way,
alternating the two in fresh processes, and prints their medians side by side: on a shared,
busy machine only figures taken together compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# `--code DIR` (used by --against) runs the app from another checkout: it must come first on the path.
ROOT = (
    Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
    if "--code" in sys.argv
    else Path(__file__).resolve().parent.parent
)
sys.path.insert(0, str(ROOT))

from core.contracts import Verdict  # noqa: E402
from core.trajectory import TRAJECTORY_FILE  # noqa: E402
from review.app import make_app  # noqa: E402
from review.screens.change import ChangeScreen  # noqa: E402
from review.screens.run import RunScreen  # noqa: E402
from tests.review.helpers import wait_until  # noqa: E402
from tests.review.synthetic import Gen, big_diff, many_generations, write_run  # noqa: E402

GENERATIONS = 2000
DIFF_LINES = 5000
SIZE = (120, 40)


def build(run_dir: Path) -> Path:
    allow = Verdict(verdict="allow", policy_name="default", policy_hash="0" * 64)
    gens = many_generations(GENERATIONS - 1)
    for gen in gens:
        gen.verdict = allow
    gens.append(
        Gen("a very large rewrite", big_diff(DIFF_LINES * 3 // 3, "huge.py"), [0.7, 0.7, 0.7], verdict=allow)
    )
    return write_run(run_dir, gens)


async def measure(run_dir: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    app = make_app("replay", trajectory=run_dir / TRAJECTORY_FILE)
    started = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        # run_test hands over once the first screen is composed and drawn; the trajectory is
        # still being read in a worker then.
        times["first paint"] = time.perf_counter() - started
        screen = app.screen
        assert isinstance(screen, RunScreen)
        table = screen.query_one("#generations")
        # Polled more finely than the tests' wait_until (0.1 s): this is the figure being measured.
        deadline = time.monotonic() + 60
        while table.row_count < GENERATIONS and time.monotonic() < deadline:
            await pilot.pause(0.02)
        assert table.row_count == GENERATIONS, f"only {table.row_count} generations listed after 60 s"
        await pilot.pause()
        times["2,000 generations listed"] = time.perf_counter() - started

        steps = []
        for key in ("h", "h", "h", "l", "l", "l", "left_square_bracket", "right_square_bracket"):
            t = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()
            steps.append(time.perf_counter() - t)
        times["replay step (median, incl. key round trip)"] = statistics.median(steps)

        t = time.perf_counter()
        await pilot.press("g")
        await pilot.pause()
        await pilot.press("G")
        await pilot.pause()
        times["replay first→last jump"] = time.perf_counter() - t

        t = time.perf_counter()
        app.open_change(GENERATIONS)
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), timeout=30, what="the change")
        await pilot.pause()
        times["open 5,000-line change"] = time.perf_counter() - t

        diff = app.screen.query_one("#diff")
        diff.focus()
        scrolls = []
        for _ in range(40):
            t = time.perf_counter()
            await pilot.press("pagedown")
            await pilot.pause()
            scrolls.append(time.perf_counter() - t)
        times["diff page down (median)"] = statistics.median(scrolls)
        t = time.perf_counter()
        await pilot.press("v")
        await pilot.pause()
        times["switch to side-by-side"] = time.perf_counter() - t
        t = time.perf_counter()
        await pilot.press("end")
        await pilot.pause()
        times["jump to the end of the diff"] = time.perf_counter() - t
    return times


TARGETS = {
    "first paint": 1.0,
    "open 5,000-line change": 1.0,
    "2,000 generations listed": 1.0,
    "replay step (median, incl. key round trip)": 0.25,
    "diff page down (median)": 0.1,
    "switch to side-by-side": 1.0,
}


def measure_once(code: Path | None = None) -> dict[str, float]:
    """One measurement in a fresh process, from this checkout or from the one at `code`."""
    command = [sys.executable, __file__, "--json"] + (["--code", str(code)] if code else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the benchmark failed in {code or ROOT}:\n{done.stderr[-2000:]}")
    times: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return times


def compare(against: Path, rounds: int) -> int:
    mine: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    for _ in range(rounds):
        theirs.append(measure_once(against))
        mine.append(measure_once())
    print(f"review TUI on {GENERATIONS:,} generations, terminal {SIZE[0]}x{SIZE[1]}, seconds:")
    print(f"median of {rounds} alternating runs of each\n")
    print(f"{'measure':44} {'against':>9} {'this':>9} {'target':>8}")
    for name in mine[0]:
        before = statistics.median(t[name] for t in theirs if name in t) if name in theirs[0] else None
        after = statistics.median(t[name] for t in mine)
        target = TARGETS.get(name)
        shown = "" if before is None else f"{before:9.3f}"
        print(f"{name:44} {shown:>9} {after:9.3f} {'' if target is None else f'≤ {target:g}':>8}")
    print(f"\nagainst: {against}\nthis:    {Path(__file__).resolve().parent.parent}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", type=Path, help="another checkout of the project to measure alongside")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each, alternating (--against)")
    parser.add_argument("--json", action="store_true", help="print the times as one JSON line")
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against is not None:
        if not (args.against / "review" / "app.py").is_file():
            parser.error(
                f"--against {args.against}: no review/app.py there; pass a checkout of this project."
            )
        return compare(args.against, max(1, args.rounds))
    with tempfile.TemporaryDirectory(prefix="rsi-bench-tui-") as tmp:
        t = time.perf_counter()
        run_dir = build(Path(tmp) / "run")
        built = time.perf_counter() - t
        times = asyncio.run(measure(run_dir))
    if args.json:
        print(json.dumps(times))
        return 0
    print(
        f"review TUI on {GENERATIONS:,} generations and a {DIFF_LINES:,}-line diff, terminal {SIZE[0]}x{SIZE[1]}"
    )
    print(f"(test data written in {built:.1f}s)\n")
    print(f"{'measure':44} {'seconds':>9} {'target':>8}  result")
    missed = 0
    for name, seconds in times.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("PASS" if seconds <= target else "MISS")
        missed += verdict == "MISS"
        print(f"{name:44} {seconds:9.3f} {'' if target is None else f'≤ {target:g}':>8}  {verdict}")
    print("\n(a Pilot key press and repaint alone takes about 0.085 s here)")
    if missed:
        print(f"{missed} measure(s) over target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
