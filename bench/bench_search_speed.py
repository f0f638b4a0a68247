"""Wall time of `rsi run` with K candidates per generation against one, side by side, printed as a
table against the targets (K=4 in at most 0.65 × the wall time of K=1 for the same 12 evaluations;
evaluations per minute at least 0.8 × min(K, cores) × serial).

    python bench/bench_search_speed.py [--evaluations 12] [--candidates 4] [--repeat 1] [--backend bwrap]

Each repeat runs K=1 then K=K as real headless runs on the bundled target (offline proposer, real
sandboxes, default policy), one after the other, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RSI = Path(sys.executable).with_name("rsi")


def timed_run(candidates: int, evaluations: int, backend: str, scratch: Path) -> float:
    run_dir = scratch / f"k{candidates}-{time.monotonic_ns()}"
    command = [
        str(RSI), "run", "--target", str(ROOT / "target_repo"), "--run-dir", str(run_dir),
        "--backend", backend, "--headless", "--generations", str(evaluations),
        "--candidates", str(candidates), "--max-evaluations", str(evaluations),
    ]  # fmt: skip
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--evaluations", type=int, default=12)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--backend", default="bwrap", choices=["bwrap", "docker"])
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    walls: dict[int, list[float]] = {1: [], args.candidates: []}
    with tempfile.TemporaryDirectory(prefix="rsi-bench-speed-") as tmp:
        for _ in range(args.repeat):
            for k in walls:
                walls[k].append(timed_run(k, args.evaluations, args.backend, Path(tmp)))
                print(f"  K={k}: {walls[k][-1]:.1f}s", file=sys.stderr, flush=True)
    serial, parallel = statistics.median(walls[1]), statistics.median(walls[args.candidates])
    per_min = {k: args.evaluations / (statistics.median(w) / 60) for k, w in walls.items()}
    target_speedup = 0.8 * min(args.candidates, cores)
    load = os.getloadavg()[0]
    print(
        f"\n`rsi run --max-evaluations {args.evaluations}` on {args.backend}, {cores} cores, load {load:.1f}"
    )
    print("| candidates per generation | wall time | evaluations / minute |")
    print("| --- | ---: | ---: |")
    for k, values in walls.items():
        print(f"| {k} | {statistics.median(values):.1f} s | {per_min[k]:.1f} |")
    print(f"\nwall ratio K={args.candidates} / K=1: {parallel / serial:.2f} (target ≤ 0.65)")
    print(f"speed-up: {serial / parallel:.2f}× (target ≥ {target_speedup:.1f}× = 0.8 × min(K, cores))")


if __name__ == "__main__":
    main()
