"""Trajectory benchmarks: fsynced append throughput, open + verify of 10,000 events, and the time of
`rsi replay --verify` against the run it re-executes. Prints a table with PASS/MISS per target.

    python bench/bench_trajectory.py              # all three (the last needs Docker and the image)
    python bench/bench_trajectory.py --no-docker  # the first two only
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.trajectory import TRAJECTORY_FILE, TrajectoryReader, TrajectoryWriter  # noqa: E402

APPENDS = 2_000
VERIFY_EVENTS = 10_000
APPEND_TARGET = 200.0  # events/s: a generation writes about seven events, so this is never the bottleneck
VERIFY_TARGET_S = 1.0
REPLAY_TARGET_RATIO = 1.5  # re-execution may cost at most 1.5× the original run


def payload(index: int) -> dict[str, object]:
    """An evaluation-sized event (about 1.5 kB), like most of a real trajectory."""
    return {
        "index": index,
        "metric": {"name": "r2", "direction": "higher", "per_seed": {"0": 0.61, "1": 0.62, "2": 0.63}},
        "tests": {"passed": 42, "failed": 0, "output_tail": "." * 600},
        "phases": [{"phase": "train", "command": "python train.py --seed 0", "output_tail": "x" * 300}],
    }


def bench_append(work: Path) -> float:
    path = work / "append.jsonl"
    with TrajectoryWriter.open(path, run_id="bench") as writer:
        started = time.perf_counter()
        for index in range(APPENDS):
            writer.append("evaluation", payload(index), generation=index)
        elapsed = time.perf_counter() - started
    return APPENDS / elapsed


def bench_verify(work: Path) -> float:
    path = work / "verify.jsonl"
    with TrajectoryWriter.open(path, run_id="bench", durable=False) as writer:  # only reading is measured
        for index in range(VERIFY_EVENTS):
            writer.append("evaluation", payload(index), generation=index)
    started = time.perf_counter()
    reader = TrajectoryReader(path)
    last = reader.verify()
    elapsed = time.perf_counter() - started
    assert last is not None and last.seq == VERIFY_EVENTS - 1
    return elapsed


def bench_replay(work: Path) -> tuple[float, float]:
    """A real two-generation offline run, then `replay --verify` of it: (original s, verify s)."""
    from rsi.compose import build_run
    from rsi.config import RunConfig
    from rsi.verify import verify_trajectory
    from sandbox.base import SandboxConfig

    image = os.environ.get("RSI_TEST_IMAGE", "rsi-sandbox:latest")
    config = RunConfig(
        target=ROOT / "target_repo",
        run_dir=work / "run",
        generations=2,
        seeds=[0],
        heldout_size=300,
        sandbox=SandboxConfig(image=image),
    )
    loop, parts = build_run(config)
    started = time.perf_counter()
    try:
        loop.run()
    finally:
        parts.trajectory.close()
    original = time.perf_counter() - started
    report = verify_trajectory(config.run_dir / TRAJECTORY_FILE)
    if not report.ok:
        raise SystemExit("replay --verify diverged: the benchmark's run did not reproduce")
    return original, report.verify_s


def row(name: str, measured: str, target: str, ok: bool) -> str:
    return f"| {name:<38} | {measured:>20} | {target:>16} | {'PASS' if ok else 'MISS':<4} |"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-docker", action="store_true", help="skip the replay --verify measurement")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rsi-bench-") as tmp:
        work = Path(tmp)
        rate = bench_append(work)
        rows.append(
            row(
                f"append + fsync ({APPENDS} events)",
                f"{rate:,.0f} events/s",
                f"≥ {APPEND_TARGET:,.0f} events/s",
                rate >= APPEND_TARGET,
            )
        )
        seconds = bench_verify(work)
        rows.append(
            row(
                f"open + verify {VERIFY_EVENTS:,} events",
                f"{seconds:.3f} s",
                f"≤ {VERIFY_TARGET_S:.1f} s",
                seconds <= VERIFY_TARGET_S,
            )
        )
        if not args.no_docker:
            original, replay = bench_replay(work)
            ratio = replay / original
            rows.append(
                row(
                    "replay --verify vs original (2 gens)",
                    f"{replay:.1f}/{original:.1f} s = {ratio:.2f}×",
                    f"≤ {REPLAY_TARGET_RATIO:.1f}×",
                    ratio <= REPLAY_TARGET_RATIO,
                )
            )
    print(f"| {'benchmark':<38} | {'measured':>20} | {'target':>16} | {'':<4} |")
    print(f"|{'-' * 40}|{'-' * 22}|{'-' * 18}|{'-' * 6}|")
    print("\n".join(rows))
    return 0 if all(line.endswith("PASS |") for line in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
