"""What the integrity checks cost per candidate: the bundled baseline evaluated with and without
them (real Docker, seeds 0 and 1, 300 held-out + 300 lockbox examples), and the time of each part.

    python bench/integrity_cost.py [--repeats 3]

Target: at most one extra training + predict per honest candidate (about 1/len(seeds) of the
training time), and under 50 ms of host-side analysis.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rsi.target import TargetSpec  # noqa: E402
from sandbox.base import SandboxConfig  # noqa: E402
from sandbox.docker_backend import DockerBackend  # noqa: E402
from sandbox.evaluate import TrustedEvaluator  # noqa: E402
from sandbox.heldout import load_heldout  # noqa: E402
from sandbox.integrity import IntegrityConfig  # noqa: E402
from sandbox.lineage import Lineage  # noqa: E402

TARGET = ROOT / "target_repo"


def evaluate_once(integrity: IntegrityConfig | None, tmp: Path, index: int) -> tuple[float, float, float]:
    spec = TargetSpec.load(TARGET)
    lineage = Lineage.create(tmp / f"lineage-{index}", TARGET)
    backend = DockerBackend(SandboxConfig(), image=spec.sandbox.image, run_id=f"bench-integrity-{index}")
    evaluator = TrustedEvaluator(
        spec,
        lineage,
        backend,
        load_heldout(spec.metric.heldout, 11, 300),
        [0, 1],
        tmp / "logs",
        lockbox=load_heldout(spec.metric.heldout, 12, 300),
        integrity=integrity,
    )
    started = time.monotonic()
    result = evaluator.evaluate(lineage.head(), "", label=f"bench-{index}")
    wall = time.monotonic() - started
    assert result.ok and not result.integrity, (result.failure_detail, result.integrity)
    extra = sum(p.duration_s for p in result.phases if p.phase.endswith(("-disguised", "-repeat")))
    analysis = 0.0
    if evaluator.integrity is not None:
        audit = evaluator.integrity.audit(
            lineage.path if hasattr(lineage, "path") else TARGET, None, evaluator.staged
        )
        for seed in (0, 1):
            audit.record(seed, evaluator.staged.split(evaluator.staged.inputs[:, 0]))
        tick = time.monotonic()
        audit.findings(result)
        analysis = time.monotonic() - tick
    return wall, extra, analysis


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rsi-bench-integrity-") as tmp:
        for label, config in (("checks off", None), ("checks on", IntegrityConfig())):
            runs = [evaluate_once(config, Path(tmp), i + (100 if config else 0)) for i in range(args.repeats)]
            rows.append((label, *(statistics.median(column) for column in zip(*runs, strict=True))))
    off, on = rows[0][1], rows[1][1]
    print("| evaluation of the baseline | wall s (median) | re-run phases s | host analysis ms |")
    print("|---|---|---|---|")
    for label, wall, extra, analysis in rows:
        print(f"| {label} | {wall:.2f} | {extra:.2f} | {analysis * 1000:.1f} |")
    print(f"\nintegrity checks cost {on - off:+.2f} s per honest candidate ({(on - off) / off:+.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
