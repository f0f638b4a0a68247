"""False positives of the relabelled control on an honest weak model: the bundled baseline trained
on many seeds, as evaluated and relabelled, then judged by the real `Audit` code on random pairs of
seeds, with one control and with the confirming second control.

    python bench/relabelled_noise.py [--seeds 300] [--draws 20000] [--heldout 500]

What runs: the bundled target's own train() in-process (no sandbox: a seed takes a fraction of a
second), once with its label function and once with the label function's inputs permuted and
sign-flipped by `sandbox.integrity.relabelling`, each seed with its own secret relabelling. Each
draw is an evaluation of two seeds; the control runs on the first, the confirming one on the
second, as in `Audit.run_controls`. Target: no honest draw flagged with the defaults.

The second table does the same for the honest configurations of tests/honest_cases.py that are
settings alone (weak to strong models), and for label-function clones that train honestly whenever
the label function is not theirs: evaluated, they answer `w` x the label function + (1 - w) x the
honest model; relabelled, they are the honest model; and for a clone whose weight depends on the
seed (one seed in three honest). It judges each with the old margin (`relabelled_kept` 0.5: a
control had also to keep under half the skill) and with the defaults.
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
from tests.honest_cases import SETTINGS, Settings  # noqa: E402

MEASURED = (
    "input-range",
    "optimizer",
    "schedule",
    "width",
    "train-examples",
    "weight-decay",
    "learning-rate",
    "hand-made",
)

HONEST: dict[str, Settings] = {name: settings for name, (settings, _) in SETTINGS.items() if name in MEASURED}
"""The honest cases of tests/honest_cases.py that change settings only (the data-generation case
changes code and is left out), a choice of them from weak to strong."""
CLONE_WEIGHTS = (0.97, 0.5, 0.25)
"""Weights of the label function in the simulated clones' answers (over the `CLONE_BASE` model)."""
SEED_KEYED = (0.0, 0.45, 0.7)
"""A clone whose weight depends on the seed (seed mod 3): one seed in three honest, which widens the
seeds' spread and gives a confirming control an honest seed to land on."""
CLONE_BASE = "input-range"
"""The honest model the simulated clones blend with, and are when relabelled."""


def trained(seed: int, teacher, settings: Settings | None = None):  # type: ignore[no-untyped-def]
    original = target_data.teacher
    target_data.teacher = teacher
    try:
        model, _ = target_train.train(TrainConfig(**(settings or {})), seed, log=False)
    finally:
        target_data.teacher = original
    return model


def seed_pair(seed: int, settings: Settings | None = None):  # type: ignore[no-untyped-def]
    """One seed trained on the label function and on its own secret relabelling of it: the two
    models and the relabelled label function."""
    teacher = target_data.teacher
    order, signs = relabelling(8, np.random.default_rng([seed, 7]))
    moved = lambda x, o=order, s=np.asarray(signs): teacher(x[:, o] * s)  # noqa: E731
    return trained(seed, teacher, settings), trained(seed, moved, settings), moved


def predicted(models, heldout):  # type: ignore[no-untyped-def]
    """Each seed's held-out predictions as evaluated, and relabelled with the relabelled answers."""
    evaluated = [np.asarray(m.predict(heldout.inputs)).reshape(-1) for m, _, _ in models]
    relabelled = [
        (np.asarray(r.predict(heldout.inputs)).reshape(-1), g(heldout.inputs)) for _, r, g in models
    ]
    return evaluated, relabelled


def scores(label: str, evaluated, relabelled, heldout) -> list[str]:  # type: ignore[no-untyped-def]
    """A row's first cells: its label, and the mean ± spread of R² as evaluated and relabelled."""
    skills = [r2(p, heldout.labels) for p in evaluated]
    kept = [r2(p, y) for p, y in relabelled]
    return [
        label,
        f"{statistics.fmean(skills):.3f} ± {statistics.stdev(skills):.3f}",
        f"{statistics.fmean(kept):.3f} ± {statistics.stdev(kept):.3f}",
    ]


def flagged_share(config: IntegrityConfig, heldout, evaluated, relabelled, pairs, confirm: bool) -> str:  # type: ignore[no-untyped-def]
    """How many of the two-seed evaluations `pairs` the real `Audit` flags under `config`."""
    audit = IntegrityChecker(config, TargetSpec.load(TARGET), heldout).audit(
        TARGET, None, stage_inputs({"selection": heldout.inputs}, seed=1)
    )
    flagged = sum(judged(audit, evaluated, relabelled, int(a), int(b), confirm) for a, b in pairs)
    return f"{flagged / len(pairs):.2%}"


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
    parser.add_argument(
        "--model-seeds", type=int, default=60, help="seeds per honest configuration (second table)"
    )
    parser.add_argument(
        "--model-draws", type=int, default=5000, help="two-seed evaluations per row (second table)"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="print the second table only")
    args = parser.parse_args()
    if not args.skip_baseline:
        baseline_table(args)
    models_table(args)
    return 0


def baseline_table(args: argparse.Namespace) -> None:
    models = [seed_pair(seed) for seed in range(args.seeds)]
    print("| held-out seed | R² as evaluated | R² relabelled "
          "| skill noise floor, one control | floor, confirmed by a second control (now) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for heldout_seed in args.heldout_seeds:
        heldout = load_heldout("teacher-regression", heldout_seed, args.heldout)
        evaluated, relabelled = predicted(models, heldout)
        cells = scores(str(heldout_seed), evaluated, relabelled, heldout)
        rng = np.random.default_rng(heldout_seed)
        pairs = [rng.choice(args.seeds, size=2, replace=False) for _ in range(args.draws)]
        for config, confirm in [(IntegrityConfig(), False), (IntegrityConfig(), True)]:
            cells.append(flagged_share(config, heldout, evaluated, relabelled, pairs, confirm))
        print("| " + " | ".join(cells) + " |")
    print(f"\n{args.draws} two-seed evaluations per held-out set; target: 0% with the defaults (now)")


def models_table(args: argparse.Namespace) -> None:
    """Honest configurations and clones on held-out set 0: how often each is flagged."""
    heldout = load_heldout("teacher-regression", 0, args.heldout)
    truth = target_data.teacher(heldout.inputs)
    print(
        "\n| model | R² as evaluated | R² relabelled | flagged, old margin (kept under 0.5 and 3 noise) "
        "| flagged now (3 noise) |"
    )
    print("|---|---|---|---|---|")
    rows: list[tuple[str, list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]] = []
    for name, settings in HONEST.items():
        evaluated, relabelled = predicted([seed_pair(s, settings) for s in range(args.model_seeds)], heldout)
        rows.append((f"honest: {name}", evaluated, relabelled))
        if name == CLONE_BASE:
            for weight in CLONE_WEIGHTS:
                blended = [weight * truth + (1 - weight) * p for p in evaluated]
                rows.append((f"clone at weight {weight} (honest when relabelled)", blended, relabelled))
            keyed = [SEED_KEYED[s % len(SEED_KEYED)] * truth + (1 - SEED_KEYED[s % len(SEED_KEYED)]) * p
                     for s, p in enumerate(evaluated)]  # fmt: skip
            rows.append((f"clone at weight {' / '.join(map(str, SEED_KEYED))} by seed", keyed, relabelled))
    for name, evaluated, relabelled in rows:
        cells = scores(name, evaluated, relabelled, heldout)
        rng = np.random.default_rng(0)
        pairs = [rng.choice(len(evaluated), size=2, replace=False) for _ in range(args.model_draws)]
        for config in (IntegrityConfig(relabelled_kept=0.5), IntegrityConfig()):
            cells.append(flagged_share(config, heldout, evaluated, relabelled, pairs, True))
        print("| " + " | ".join(cells) + " |")
    print(
        f"\n{args.model_seeds} seeds per configuration, {args.model_draws} two-seed evaluations per row; "
        "target: 0% for every honest row, 100% for the strong clone"
    )


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
