"""The promotion panel of the Change screen, for a bootstrapping run: the teacher this generation
learned from against its students (per seed, with the lockbox), which student would become the next
teacher, and whether the run is paused for a human before promoting it (`--pause-on-promotion`).

    panel.update(promotion_view(record, state))      # None: not a bootstrapping generation
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from core.contracts import Evaluation, signed_gain
from core.fold import GenerationRecord
from core.trajectory import Event
from review.widgets.numbers import number, signed


def teacher_origin(events: list[Event], teacher_sha256: str) -> str:
    """Where a teacher came from: the generation whose student it is, or the target's gen-0 teacher."""
    for event in events:
        if event.kind == "promotion" and event.data.get("teacher_sha256") == teacher_sha256:
            return f"student of gen {event.generation}"
    return "gen-0 teacher"


def paused_before_promotion(events: list[Event], generation: int) -> bool:
    """A `--pause-on-promotion` checkpoint fired for this generation."""
    key = f"promotion:{generation}"
    return any(e.kind == "checkpoint" and e.data.get("key") == key for e in events)


def _status(record: GenerationRecord, events: list[Event]) -> Text:
    if record.commit is not None:
        return Text("promoted: its seed-0 student is the teacher now", style="bold green")
    decision = record.decision
    if decision is not None and decision.decision == "reject":
        return Text("not promoted (rejected)", style="dim")
    if paused_before_promotion(events, record.generation):
        return Text.assemble(
            ("⏸ paused before promotion: ", "bold yellow"),
            "accepting it makes its seed-0 student the teacher",
        )
    return Text("accepting it makes its seed-0 student the teacher", style="dim")


def teacher_student_table(evaluation: Evaluation) -> Table:
    """Per seed: the teacher's score (one model, scored once) against each student's; the lockbox."""
    table = Table(box=None, pad_edge=False, show_edge=False, expand=False, padding=(0, 1))
    table.add_column("seed", justify="right", style="dim")
    table.add_column("teacher", justify="right")
    table.add_column("student", justify="right")
    table.add_column("Δ", justify="right")
    metric, teacher = evaluation.metric, evaluation.teacher_metric
    for index, seed in enumerate(evaluation.seeds):
        score = metric.per_seed.get(seed) if metric else None
        gain = (
            signed_gain(score, teacher, metric.direction)
            if metric and score is not None and teacher is not None
            else None
        )
        label = f"{seed}→" if index == 0 else str(seed)  # the seed whose student is promoted
        table.add_row(label, number(teacher), number(score), signed(gain))
    lockbox = evaluation.lockbox
    if lockbox is not None:
        table.add_row("lockbox", "—", f"{lockbox.mean:.4f}±{lockbox.std:.4f}", Text("—"))
    return table


def promotion_view(record: GenerationRecord, events: list[Event]) -> Group | None:
    evaluation = record.evaluation
    if evaluation is None or evaluation.teacher_sha256 is None:
        return None
    student = (evaluation.student_sha256 or "—")[:10]
    return Group(
        Text.assemble(
            ("teacher ", "bold"),
            f"{evaluation.teacher_sha256[:10]} ({teacher_origin(events, evaluation.teacher_sha256)})",
            ("  →  student ", "bold"),
            f"{student} (seed {evaluation.seeds[0] if evaluation.seeds else '—'})",
        ),
        _status(record, events),
        teacher_student_table(evaluation),
    )
