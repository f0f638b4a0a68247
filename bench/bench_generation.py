"""The harness's own work per generation: how often a candidate's diff is parsed and applied and
its parent exported, and the wall time of a generation, on a short real run with bubblewrap.

The run is the offline proposer on the bundled target, one seed, a small held-out set; the counts
come from wrapping the patch parser, the patch applier and the lineage export for the run's
duration (the harness's code paths are the run's own).

    python bench/bench_generation.py [--generations 4] [--backend bwrap]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sandbox.patch  # noqa: E402
from core.trajectory import TrajectoryReader  # noqa: E402
from rsi.compose import build_run  # noqa: E402
from rsi.config import RunConfig  # noqa: E402
from sandbox.lineage import Lineage  # noqa: E402

COUNTED = {
    "diff parsed": (sandbox.patch, "parse_patches"),
    "diff applied": (sandbox.patch.Stage, "__init__"),
    "tree exported": (Lineage, "export"),
}
"""What is counted: every parse of a non-empty diff (also inside apply and diff_stat; an empty
diff — a parent measured on its own — costs nothing to parse), every application (one Stage per
applied diff), every export of a commit's files."""


def counting(counts: Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def counted(*args: Any, **kwargs: Any) -> Any:
        if not (name == "diff parsed" and not str(args[0] if args else "").strip()):
            counts[name] += 1
        return function(*args, **kwargs)

    return counted


OURS = ("core", "rsi", "agent", "sandbox", "policies", "review")


def holders(owner: Any, attribute: str) -> list[tuple[Any, str]]:
    """Every place the run looks the function up: its owner, and each of our modules that imported
    it by name."""
    original = getattr(owner, attribute)
    found = [(owner, attribute)]
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").split(".")[0] in OURS and module is not owner:
            found += [(module, name) for name, value in vars(module).items() if value is original]
    return found


def measure(generations: int, backend: str) -> tuple[Counter[str], float, int]:
    """Counts and wall time over the generations (the baseline evaluation excluded)."""
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
        config = RunConfig(
            target=ROOT / "target_repo",
            run_dir=Path(tmp) / "run",
            generations=generations,
            seeds=[0],
            heldout_size=500,
            backend=backend,  # type: ignore[arg-type]
        )
        loop, parts = build_run(config)
        # The baseline is measured first, uncounted: the run's own baseline step then finds it in
        # the evaluator's cache, and what is counted is the generations' work alone.
        parts.evaluator.evaluate(parts.lineage.head(), "", label="baseline")
        wrapped = []
        for name, (owner, attribute) in COUNTED.items():
            counted = counting(counts, name, getattr(owner, attribute))
            for holder, held in holders(owner, attribute):
                wrapped.append((holder, held, getattr(holder, held)))
                setattr(holder, held, counted)
        try:
            started = time.monotonic()
            summary = loop.run(record_start=False)
            elapsed = time.monotonic() - started
        finally:
            for holder, held, original in wrapped:
                setattr(holder, held, original)
            parts.trajectory.close()
        events = list(TrajectoryReader(config.run_dir / "trajectory.jsonl").events())
        accepted = sum(1 for e in events if e.kind == "commit")
        if summary.status != "completed":
            raise SystemExit(f"the run did not complete: {summary.status} {summary.reason}")
    return counts, elapsed, accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--backend", default="bwrap", choices=["bwrap", "docker"])
    args = parser.parse_args()
    counts, elapsed, accepted = measure(args.generations, args.backend)
    n = args.generations
    print(f"{n} generations ({accepted} accepted), backend {args.backend}, 1 seed")
    print(f"{'per generation':<16} {'mean':>8}")
    for name in COUNTED:
        print(f"{name:<16} {counts[name] / n:>8.2f}")
    print(f"{'wall time (s)':<16} {elapsed / n:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
