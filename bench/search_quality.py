"""Search quality: best held-out R² after 20, 40 and 80 evaluations, today's linear climb against
each search strategy, median of 3 runs (proposer/strategy seeds 0, 1, 2), printed as a table.

    python bench/search_quality.py [--budget 80] [--runs 3] [--parallel 2]

What runs: the real search engine (rsi.search) and the real offline proposer on the bundled
target. What is measured: each candidate tree's `TrainConfig` is read from its patched config.py
and trained in-process on the host (the target's own train() for the rsi.toml step budget,
scored against the harness's held-out set, seed 1234, 2000 rows) — no sandbox, so a run of 80
evaluations takes a minute, not an hour; the sandbox's cost is bench/bench_search_speed.py's
subject. Identical (config, seed) pairs are trained once for the whole bench.

"After c evaluations" is the best accepted node among the first c candidates evaluated, in the
order they were proposed (a generation may straddle c), scored on every seed it was measured on.

"today" is the linear climb as it was: one candidate per generation from the last accepted node,
the offline proposer as it was (read from git at commit TODAY, before the search work) and the default
policy's acceptance rule (mean gain above the larger seed spread and 0.002, on seeds 0 1 2).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target_repo"
sys.path.insert(0, str(ROOT))

from agent.offline import OfflineProposer, discover_knobs  # noqa: E402
from core.contracts import Proposer  # noqa: E402
from rsi.search.archive import Archive, Node  # noqa: E402
from rsi.search.engine import Measurement, MeasureRequest, SearchConfig, SearchEngine  # noqa: E402
from rsi.search.paired import RaceOutcome  # noqa: E402
from rsi.search.strategies import StrategyConfig, make_strategy  # noqa: E402
from sandbox.patch import apply_diff  # noqa: E402

HELDOUT_SEED = 1234
CHECKPOINTS = (20, 40, 80)
STEPS = 3000


def train_and_score(values: tuple[tuple[str, Any], ...], seed: int) -> float:
    """Worker: train the target with these config values and one seed; R² on the held-out set."""
    if str(TARGET) not in sys.path:
        sys.path.insert(0, str(TARGET))
    from config import TrainConfig
    from train import train

    from sandbox.heldout import load_heldout, score

    heldout = load_heldout("teacher-regression", seed=HELDOUT_SEED)
    config = TrainConfig(**dict(values), log_every=0, steps=STEPS)
    try:
        model, _ = train(config, seed, log=False)
    except (FloatingPointError, ValueError, OverflowError):
        return float("nan")
    return score("r2", model.predict(heldout.inputs), heldout.labels)


class HostWorkspace:
    """Trees as directories; measurement by in-process training, memoised per (config, seed)."""

    def __init__(self, pool: ProcessPoolExecutor, memo: dict[tuple[Any, int], float]) -> None:
        self.pool = pool
        self.memo = memo
        self.scratch = Path(tempfile.mkdtemp(prefix="rsi-bench-search-"))
        self.trees: dict[str, Path] = {}
        self.used: set[tuple[Any, int]] = set()
        """Every (config, seed) pair this workspace measured, memoised or not."""

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _dir(self, node: Node) -> Path:
        if node.parent is None and node.id not in self.trees:
            self.trees[node.id] = Path(shutil.copytree(TARGET, self.scratch / node.id))
        return self.trees[node.id]

    @contextlib.contextmanager
    def tree(self, node: Node) -> Iterator[Path]:
        yield self._dir(node)

    def commit(self, node: Node, parent: Node, diff: str) -> str:
        path = Path(shutil.copytree(self._dir(parent), self.scratch / node.id))
        apply_diff(diff, path)
        self.trees[node.id] = path
        return node.id

    def _values(self, request: MeasureRequest) -> tuple[tuple[str, Any], ...] | None:
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            tree = Path(shutil.copytree(self._dir(request.parent), Path(tmp) / "t"))
            try:
                apply_diff(request.diff, tree)
            except Exception:
                return None
            return tuple(sorted((k.name, k.value) for k in discover_knobs(tree)))

    def measure(self, requests: Sequence[MeasureRequest]) -> list[Measurement]:
        values = [self._values(r) for r in requests]
        wanted = {(v, s) for v, r in zip(values, requests, strict=True) if v for s in r.seeds}
        todo = sorted(w for w in wanted if w not in self.memo)
        self.used |= wanted
        for key, result in zip(todo, self.pool.map(train_and_score, *zip(*todo, strict=True)), strict=True):
            self.memo[key] = result
        results = []
        for value, request in zip(values, requests, strict=True):
            scores = {s: self.memo[(value, s)] for s in request.seeds} if value else {}
            bad = value is None or any(v != v for v in scores.values())
            results.append(
                Measurement(
                    {} if bad else scores, "train_crashed" if bad else None, repr(value) if value else None
                )
            )
        return results


class TodaysAcceptance(SearchEngine):
    """The acceptance rule of the default policy before paired racing: mean gain > larger spread."""

    def _decide(self, child: Node) -> RaceOutcome | str:
        if child.status == "failed" or not child.per_seed:
            return "failed"
        parent = self._owner(child)
        gain = (child.score or 0.0) - (parent.score or 0.0)
        spread = max(statistics.stdev(child.per_seed.values()), statistics.stdev(parent.per_seed.values()))
        return "better" if gain > max(spread, 0.002) else "worse"


TODAY = "412d0aa"
"""The last commit before the search work: its offline proposer is "today's" (a linear climb's)."""


def todays_proposer(seed: int) -> Proposer:
    source = subprocess.run(
        ["git", "show", f"{TODAY}:agent/offline.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    spec = importlib.util.spec_from_loader("todays_offline", loader=None)
    assert spec is not None
    module = ModuleType(spec.name)
    sys.modules[spec.name] = module
    exec(compile(source, "todays_offline.py", "exec"), module.__dict__)
    return module.OfflineProposer(seed=seed)


ARMS: dict[str, dict[str, Any]] = {
    "today (linear, K=1)": {"strategy": "greedy", "k": 1, "today": True},
    "greedy K=4": {"strategy": "greedy", "k": 4},
    "best-first K=4": {"strategy": "best-first", "k": 4},
    "archive K=4": {"strategy": "archive", "k": 4},
}


def run_arm(
    arm: dict[str, Any], seed: int, budget: int, workspace: HostWorkspace, max_seeds: int | None = None
) -> dict[int, float]:
    """Best R² (a node's mean over its seeds) by evaluations spent, at each checkpoint."""
    config = SearchConfig(candidates=arm["k"], max_evaluations=budget, metric_name="r2")
    if max_seeds is not None:
        config = config.model_copy(update={"max_seeds": max_seeds})
    if arm.get("today"):
        proposer = todays_proposer(seed)
        config = config.model_copy(update={"confirm_elites": False, "max_seeds": 3})
    else:
        proposer = OfflineProposer(seed=seed)
    strategy = make_strategy(StrategyConfig(name=arm["strategy"], seed=seed))
    engine_class = TodaysAcceptance if arm.get("today") else SearchEngine
    engine = engine_class(workspace, proposer, strategy, config)
    engine.start()
    while not engine.exhausted():
        engine.generation()
    return best_by_evaluations(engine.archive)


def best_by_evaluations(archive: Archive) -> dict[int, float]:
    """At each checkpoint c, the best accepted node among the first c candidates evaluated (in the
    order they were proposed; a generation may straddle c), scored on all its seeds."""
    kept = {n.id for n in archive.expandable()}
    evaluated = archive.evaluated()
    return {
        checkpoint: max(
            [archive.root.score or 0.0] + [n.score or 0.0 for n in evaluated[:checkpoint] if n.id in kept]
        )
        for checkpoint in CHECKPOINTS
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=int, default=80)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument(
        "--max-seeds",
        type=int,
        default=None,
        help="racing: seeds a close call may earn (default: the engine's)",
    )
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), help="which rows to run")
    args = parser.parse_args()
    checkpoints = [c for c in CHECKPOINTS if c <= args.budget]
    memo: dict[tuple[Any, int], float] = {}
    started = time.monotonic()
    rows = []
    with ProcessPoolExecutor(max_workers=args.parallel) as pool:
        for name, arm in ((n, ARMS[n]) for n in args.arms):
            runs = []
            used: set[tuple[Any, int]] = set()
            for seed in range(args.runs):
                workspace = HostWorkspace(pool, memo)
                try:
                    runs.append(run_arm(arm, seed, args.budget, workspace, args.max_seeds))
                    used |= workspace.used
                finally:
                    workspace.close()
                print(f"  {name} seed {seed}: {runs[-1]}", file=sys.stderr, flush=True)
            medians = [statistics.median(r.get(c, 0.0) for r in runs) for c in checkpoints]
            rows.append((name, medians, len(used) / args.runs))
    print(f"\nSearch quality: best held-out R² (median of {args.runs} runs) by evaluations spent")
    print("| strategy | " + " | ".join(f"after {c}" for c in checkpoints) + " | trainings per run |")
    print("| --- | " + " | ".join("---:" for _ in checkpoints) + " | ---: |")
    for name, values, trainings in rows:
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {trainings:.0f} |")
    print(
        "(trainings per run: distinct (config, seed) pairs an arm's runs measured, shared ones once, ÷ runs)"
    )
    print(
        f"\ngoal: ≥ 0.95 within 40, ≥ 0.99 within 80; {len(memo)} trainings, {time.monotonic() - started:.0f}s"
    )


if __name__ == "__main__":
    main()
