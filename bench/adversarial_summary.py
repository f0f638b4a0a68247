"""The adversarial suite's threat × caught-by table, measured by running hostile patches through
one real loop (Docker, the default policy, seeds 0 and 1, 300 held-out examples).

    python bench/adversarial_summary.py [--run-dir DIR] [--only CASE_ID ...]
    python bench/adversarial_summary.py --classes              # the cases by class of attack
    python bench/adversarial_summary.py --classes --variants   # ...and every metamorphic variant

Prints the table (markdown) and one row per case. The original cases exit 1 if any was accepted
into the lineage or caught by something other than tests/adversarial/cases.py expects; with
--classes nothing is accepted (every case is judged against the baseline), and a case counts as
expected when it is caught as its class says, or is missed while it awaits a mechanism.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.adversarial.cases import CASES, THREATS, Case  # noqa: E402
from tests.adversarial.classes import CLASS_CASES, CLASSES, signal_found  # noqa: E402
from tests.adversarial.metamorph import transformable, variants  # noqa: E402
from tests.adversarial.suite import Outcome, case_table, run_suite, threat_table  # noqa: E402


def caught(outcome: Outcome) -> bool:
    case = outcome.case
    detail_ok = not case.expected_detail or case.expected_detail in outcome.failure_detail
    return (
        outcome.verdict != "allow"
        and case.expected_caught_by in outcome.mechanisms
        and signal_found(case.expected_signal, outcome.signals)
        and detail_ok
    )


def as_expected(outcome: Outcome) -> bool:
    """Caught as the case says, or (a case awaiting a mechanism) not caught yet."""
    return caught(outcome) != bool(getattr(outcome.case, "awaits", None))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path, help="keep the run here (default: a temporary directory)")
    parser.add_argument("--only", nargs="*", help="case ids to run (default: all)")
    parser.add_argument("--classes", action="store_true", help="the cases by class of attack")
    parser.add_argument("--variants", action="store_true", help="add every metamorphic variant of each case")
    args = parser.parse_args()
    pool: list[Case] = list(CLASS_CASES if args.classes else CASES)
    if args.variants:
        pool += [v.as_case() for case in pool if transformable(case) for v in variants(case)]
    cases = [c for c in pool if not args.only or c.id.split("~")[0] in args.only]
    threats = CLASSES if args.classes else THREATS
    with tempfile.TemporaryDirectory(prefix="rsi-adversarial-") as tmp:
        run_dir = args.run_dir or Path(tmp) / "run"
        started = time.monotonic()
        outcomes, summary, _ = run_suite(run_dir, cases, keep_baseline=args.classes or args.variants)
        elapsed = time.monotonic() - started
    print(threat_table(outcomes, threats))
    print()
    print(case_table(outcomes))
    unexpected = [o for o in outcomes if not as_expected(o)]
    for o in unexpected:
        awaits = getattr(o.case, "awaits", None)
        state = f"caught, though it awaits {awaits}" if awaits else "not caught as expected"
        print(
            f"UNEXPECTED {o.case.id} ({state}): verdict {o.verdict}, fired {o.mechanisms}, "
            f"signals {sorted(o.signals)}: {o.failure_detail[-300:]}"
        )
    awaiting = [o.case.id for o in outcomes if getattr(o.case, "awaits", None) and not caught(o)]
    if awaiting:
        print(f"\n{len(awaiting)} case(s) missed while awaiting a mechanism: {', '.join(awaiting)}")
    print(
        f"\n{len(outcomes)} hostile patches, {summary.accepted} accepted, run {summary.status}; "
        f"{elapsed:.0f}s ({elapsed / max(1, len(outcomes)):.1f}s per case, baseline included)"
    )
    return 1 if unexpected or summary.accepted else 0


if __name__ == "__main__":
    raise SystemExit(main())
