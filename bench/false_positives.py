"""False positives of the integrity checks: every honest patch of tests/honest_cases.py evaluated by
the real evaluator against the bundled baseline and judged by the default policy, per backend.

    python bench/false_positives.py [--backends bwrap docker] [--seeds 0 1 2] [--heldout 500]

Target: every row `allow`, with no integrity finding and every behavioural check clean.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.honest_cases import HONEST, judge, make_evaluator  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", nargs="+", default=["bwrap", "docker"], choices=["bwrap", "docker"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--heldout", type=int, default=500, help="held-out (and lockbox) examples")
    parser.add_argument("--only", nargs="*", default=None, help="case ids to run (default: all)")
    args = parser.parse_args()
    cases = [c for c in HONEST if args.only is None or c.id in args.only]
    misses = 0
    print("| backend | patch | metric | verdict | findings | wall s |")
    print("|---|---|---|---|---|---|")
    for backend in args.backends:
        with tempfile.TemporaryDirectory(prefix="rsi-bench-honest-") as work:
            evaluator = make_evaluator(backend, Path(work), args.seeds, args.heldout)
            for row in judge(evaluator, cases):
                found = "; ".join(row.findings + row.not_clean) or "—"
                metric = f"{row.metric:.4f}" if row.metric is not None else "—"
                print(
                    f"| {backend} | {row.case} | {metric} | {row.verdict} | {found[:300]} | {row.wall_s:.1f} |"
                )
                misses += row.verdict != "allow" or bool(row.integrity)
    total = len(cases) * len(args.backends)
    print(f"\n{total - misses}/{total} honest patches allowed with no integrity finding (target: all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
