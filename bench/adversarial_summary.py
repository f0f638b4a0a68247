"""The adversarial suite's threat × caught-by table, measured by running every hostile patch
through one real loop (Docker, the default policy, seeds 0 and 1, 300 held-out examples).

    python bench/adversarial_summary.py [--run-dir DIR] [--only CASE_ID ...]

Prints the table (markdown) and one row per case; exits 1 if any case was accepted into the
lineage or caught by something other than what tests/adversarial/cases.py expects.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.adversarial.cases import CASES  # noqa: E402
from tests.adversarial.suite import Outcome, case_table, run_suite, threat_table  # noqa: E402


def as_expected(outcome: Outcome) -> bool:
    case = outcome.case
    detail_ok = not case.expected_detail or case.expected_detail in outcome.failure_detail
    return (
        case.expected_caught_by in outcome.mechanisms
        and case.expected_signal in outcome.signals
        and detail_ok
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path, help="keep the run here (default: a temporary directory)")
    parser.add_argument("--only", nargs="*", help="case ids to run (default: all)")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.id in args.only]
    with tempfile.TemporaryDirectory(prefix="rsi-adversarial-") as tmp:
        run_dir = args.run_dir or Path(tmp) / "run"
        started = time.monotonic()
        outcomes, summary, _ = run_suite(run_dir, cases)
        elapsed = time.monotonic() - started
    print(threat_table(outcomes))
    print()
    print(case_table(outcomes))
    unexpected = [o for o in outcomes if not as_expected(o)]
    for o in unexpected:
        print(
            f"UNEXPECTED {o.case.id}: fired {o.mechanisms}, signals {sorted(o.signals)}: {o.failure_detail[-300:]}"
        )
    print(
        f"\n{len(outcomes)} hostile patches, {summary.accepted} accepted, run {summary.status}; "
        f"{elapsed:.0f}s ({elapsed / max(1, len(outcomes)):.1f}s per case, baseline included)"
    )
    return 1 if unexpected or summary.accepted else 0


if __name__ == "__main__":
    raise SystemExit(main())
