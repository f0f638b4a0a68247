"""False positives of the relabelled control on an honest weak model: the bundled baseline trained
on many seeds, as evaluated and relabelled, then judged by the real `Audit` code on random pairs of
seeds, with and without the skill noise floor and the confirming second control.

    python bench/relabelled_noise.py [--seeds 300] [--draws 20000] [--heldout 500]

What runs: the bundled target's own train() in-process (no sandbox: a seed takes a fraction of a
second), once with its label function and once with the label function's inputs permuted and
sign-flipped by `sandbox.integrity.relabelling`, each seed with its own secret relabelling. Each
draw is an evaluation of two seeds; the control runs on the first, the confirming one on the
second, as in `Audit.run_controls`. Target: no honest draw flagged with the defaults.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target_repo"
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(TARGET))

import data as target_data  # noqa: E402
import train as target_train  # noqa: E402
from config import TrainConfig  # noqa: E402

from core.contracts import Evaluation, MetricResult  # noqa: E402
from core.target import TargetSpec  # noqa: E402
from sandbox.heldout import load_heldout, stage_inputs  # noqa: E402
from sandbox.integrity import IntegrityChecker, IntegrityConfig, RelabelledRun, relabelling  # noqa: E402


def trained(seed: int, teacher):  # type: ignore[no-untyped-def]
    original = target_data.teacher
    target_data.teacher = teacher
    try:
        model, _ = target_train.train(TrainConfig(), seed, log=False)
    finally:
        target_data.teacher = original
    return model


def r2(values: np.ndarray, answers: np.ndarray) -> float:
    return float(1 - np.mean((values - answers) ** 2) / answers.var())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds", type=int, default=200, help="seeds trained, each as evaluated and relabelled"
    )
    parser.add_argument("--draws", type=int, default=20000, help="simulated two-seed evaluations per row")
    parser.add_argument("--heldout", type=int, default=500, help="held-out rows")
    parser.add_argument("--heldout-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    spec = TargetSpec.load(TARGET)
    teacher = target_data.teacher
    models = []
    for seed in range(args.seeds):
        order, signs = relabelling(8, np.random.default_rng([seed, 7]))
        moved = lambda x, o=order, s=np.asarray(signs): teacher(x[:, o] * s)  # noqa: E731
        models.append((trained(seed, teacher), trained(seed, moved), moved))
    print("| held-out seed | R² as evaluated | R² relabelled | seed spread only, one control (before) "
          "| skill noise floor, one control | floor, confirmed by a second control (now) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    worst = 0
    for heldout_seed in args.heldout_seeds:
        heldout = load_heldout("teacher-regression", heldout_seed, args.heldout)
        evaluated = [np.asarray(m.predict(heldout.inputs)).reshape(-1) for m, _, _ in models]
        relabelled = [
            (np.asarray(r.predict(heldout.inputs)).reshape(-1), g(heldout.inputs)) for _, r, g in models
        ]
        skills = [r2(p, heldout.labels) for p in evaluated]
        kept = [r2(p, y) for p, y in relabelled]
        cells = [
            str(heldout_seed),
            f"{statistics.fmean(skills):.3f} ± {statistics.stdev(skills):.3f}",
            f"{statistics.fmean(kept):.3f} ± {statistics.stdev(kept):.3f}",
        ]
        rng = np.random.default_rng(heldout_seed)
        pairs = [rng.choice(args.seeds, size=2, replace=False) for _ in range(args.draws)]
        for config, confirm in [
            (IntegrityConfig(relabelled_skill_noise=0.0), False),
            (IntegrityConfig(), False),
            (IntegrityConfig(), True),
        ]:
            audit = IntegrityChecker(config, spec, heldout).audit(
                TARGET, None, stage_inputs({"selection": heldout.inputs}, seed=1)
            )
            flagged = sum(judged(audit, evaluated, relabelled, int(a), int(b), confirm) for a, b in pairs)
            cells.append(f"{flagged / len(pairs):.2%}")
            worst = flagged if confirm else worst
        print("| " + " | ".join(cells) + " |")
    print(f"\n{args.draws} two-seed evaluations per held-out set; target: 0% with the defaults (now)")
    return 0


def judged(audit, evaluated, relabelled, first: int, second: int, confirm: bool) -> bool:  # type: ignore[no-untyped-def]
    """One honest evaluation of seeds `first` and `second`, its relabelled control on `first` and,
    when that one alone would be a finding and `confirm`, the second control on `second` (one
    audit, emptied for each evaluation: its static checks of the tree are the same every time)."""
    checker, heldout = audit.checker, audit.checker.heldout
    audit.parts_by_seed, audit.relabelled, audit.records = {}, [], {}
    for seed in (first, second):
        audit.record(seed, {"selection": evaluated[seed]})
    for seed in (first, second) if confirm else (first,):
        values, answers = relabelled[seed]
        run = RelabelledRun(seed, {"seed": seed}, answers, checker.null(answers), None)
        run.outcome.metric = checker.score(values, answers)
        audit.relabelled.append(run)
        if not audit._relabelled_suspect():
            break  # the real audit runs the second control only when the first is suspect
    metric = {seed: checker.score(evaluated[seed], heldout.labels) for seed in (first, second)}
    evaluation = Evaluation(
        parent_commit="", diff_sha256="", backend="bench", ok=True, seeds=sorted(metric),
        metric=MetricResult(name="r2", direction="higher", per_seed=metric),
    )  # fmt: skip
    return any(f is not None for f in audit._relabelled_compared(evaluation))


if __name__ == "__main__":
    raise SystemExit(main())
