"""Compare runs on the same target (say, the Claude agent against the offline baseline).

    python bench/compare_proposers.py runs/claude-run runs/offline-run

Prints, per run: metric per generation, improvement per generation, per dollar and per hour, the
acceptance rate and the policy-finding rate — all from the trajectories' measurements.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.errors import RsiError
from rsi.compare import compare_runs, comparison_table, metric_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories (each with trajectory.jsonl)")
    args = parser.parse_args()
    console = Console()
    try:
        rows = compare_runs(args.run_dirs)
    except RsiError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    console.print(comparison_table(rows))
    console.print(metric_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
