"""The offline proposer: a deterministic, seeded coordinate search that needs no network.

It discovers the tunable knobs of the parent tree — literal defaults of `@dataclass` fields in the
target's Python files (outside tests and protected paths) — and proposes one change per generation
as a real unified diff: a number scaled up or down, or a string switched to another value its
comment names (`optimizer: str = "sgd"  # one of "sgd", "momentum", "adam"`).

The search is a classic coordinate search: knobs in a seeded order, each tried in both directions
(×2, ×0.5 first; then ×3, ×1/3; then ×1.5, ×1/1.5) before any is tried again. What was already
tried against the current parent is skipped; after an acceptance, the accepted move is tried again
first from the new parent (a learning rate still too low is often too low twice). It is the
embedded default and the baseline every other proposer is compared against.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pathspec

from core.contracts import Proposal, ProposalContext
from core.errors import RsiError
from core.target import TargetSpec

SKIPPED_NAME = re.compile(r"step|seed|budget|epoch_limit|^log", re.IGNORECASE)
SWEEPS = ((2.0, 0.5), (3.0, 1 / 3), (1.5, 1 / 1.5))
QUOTED = re.compile(r"""["']([^"']+)["']""")


@dataclass(frozen=True)
class Knob:
    file: str
    line: int
    name: str
    value: int | float | str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mutation:
    knob: Knob
    new_value: int | float | str
    label: str

    @property
    def key(self) -> str:
        return f"{self.knob.file}:{self.knob.name}:{self.label}"


def discover_knobs(tree: Path) -> list[Knob]:
    """Literal-valued dataclass fields in the tree's Python files, except tests and protected ones."""
    protected: list[str] = ["tests/", "test_*.py", "conftest.py"]
    with contextlib.suppress(RsiError):  # a tree without a valid rsi.toml still has knobs to find
        protected += TargetSpec.load(tree).protected.paths
    skip = pathspec.GitIgnoreSpec.from_lines(protected)
    knobs: list[Knob] = []
    for path in sorted(tree.rglob("*.py")):
        relative = path.relative_to(tree).as_posix()
        if skip.match_file(relative):
            continue
        source = path.read_text(encoding="utf-8")
        try:
            module = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.splitlines()
        for node in ast.walk(module):
            if isinstance(node, ast.ClassDef) and any(_is_dataclass(d) for d in node.decorator_list):
                knobs.extend(_class_knobs(node, relative, lines))
    return knobs


def _is_dataclass(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "dataclass") or (
        isinstance(target, ast.Attribute) and target.attr == "dataclass"
    )


def _class_knobs(node: ast.ClassDef, file: str, lines: list[str]) -> list[Knob]:
    knobs = []
    for statement in node.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        value = statement.value
        if (
            not isinstance(value, ast.Constant)
            or isinstance(value.value, bool)
            or SKIPPED_NAME.search(statement.target.id)
        ):
            continue
        if not isinstance(value.value, int | float | str) or statement.lineno != statement.end_lineno:
            continue
        line_text = lines[statement.lineno - 1]
        choices: tuple[str, ...] = ()
        if isinstance(value.value, str):
            comment = line_text.split("#", 1)[1] if "#" in line_text else ""
            choices = tuple(c for c in QUOTED.findall(comment) if c != value.value)
            if not choices:
                continue
        knobs.append(Knob(file, statement.lineno, statement.target.id, value.value, choices))
    return knobs


def mutations_for(knob: Knob, factors: tuple[float, ...]) -> list[Mutation]:
    if isinstance(knob.value, str):
        return [Mutation(knob, choice, f"={choice}") for choice in knob.choices]
    result = []
    for factor in factors:
        if isinstance(knob.value, int):
            new_value: int | float = max(1, round(knob.value * factor))
        else:
            new_value = float(f"{knob.value * factor:.6g}")
        if new_value != knob.value and knob.value != 0:
            result.append(Mutation(knob, new_value, f"x{factor:.3g}"))
    return result


def search_order(knobs: list[Knob], seed: int) -> list[Mutation]:
    """Every candidate move in coordinate-search order: all knobs per sweep, sweeps coarse to fine."""
    shuffled = list(knobs)
    random.Random(seed).shuffle(shuffled)
    order: list[Mutation] = []
    for sweep, factors in enumerate(SWEEPS):
        for knob in shuffled:
            if isinstance(knob.value, str) and sweep > 0:
                continue
            order.extend(mutations_for(knob, factors))
    return order


def render_diff(tree: Path, mutation: Mutation) -> str:
    path = tree / mutation.knob.file
    original = path.read_text(encoding="utf-8").splitlines(keepends=True)
    changed = list(original)
    index = mutation.knob.line - 1
    line = changed[index]
    code, sep, comment = line.partition("#")
    lhs, _, rhs = code.partition("=")
    new_literal = (
        f'"{mutation.new_value}"' if isinstance(mutation.new_value, str) else repr(mutation.new_value)
    )
    padding = rhs[len(rhs.rstrip()) :]
    changed[index] = (
        f"{lhs.rstrip()} = {new_literal}{padding}{sep}{comment}"
        if sep
        else f"{lhs.rstrip()} = {new_literal}\n"
    )
    name = mutation.knob.file
    return "".join(difflib.unified_diff(original, changed, fromfile=f"a/{name}", tofile=f"b/{name}"))


class OfflineProposer:
    """Seeded one-knob mutations; the default proposer when no API key is set."""

    name = "offline"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def propose(self, context: ProposalContext, parent_tree: Path) -> Proposal:
        knobs = discover_knobs(parent_tree)
        order = search_order(knobs, self.seed)
        if not order:
            return Proposal(
                diff="",
                rationale="no tunable dataclass fields found in the parent tree",
                proposer=self.name,
                stop_reason="nothing_to_propose",
            )
        tried_here = {_key(e.rationale) for e in context.history if e.parent_commit == context.parent_commit}
        accepted = [_key(e.rationale) for e in context.history if e.decision == "accept"]
        # Undoing the move that made this parent would only re-measure the grandparent.
        undo = {_inverse(accepted[-1])} if accepted else set()
        untried = [m for m in order if m.key not in tried_here and m.key not in undo]
        again = [m for m in untried if accepted and m.key == accepted[-1]]
        mutation = (again or untried or order)[0]
        old, new = mutation.knob.value, mutation.new_value
        verb = "switch" if isinstance(new, str) else ("raise" if new > old else "lower")  # type: ignore[operator]
        return Proposal(
            diff=render_diff(parent_tree, mutation),
            rationale=f"{mutation.key} — {verb} {mutation.knob.name} from {old!r} to {new!r}",
            claimed_effect=f"a better {context.metric_name} than the parent ({context.direction} is better)",
            proposer=self.name,
            transcript=[
                {
                    "type": "mutation",
                    "key": mutation.key,
                    "seed": self.seed,
                    "knobs": len(knobs),
                    "position": order.index(mutation),
                    "of": len(order),
                }
            ],
        )


def _inverse(key: str) -> str:
    prefix, _, label = key.rpartition(":")
    for up, down in SWEEPS:
        if label == f"x{up:.3g}":
            return f"{prefix}:x{down:.3g}"
        if label == f"x{down:.3g}":
            return f"{prefix}:x{up:.3g}"
    return ""


def _key(rationale: str) -> str:
    return rationale.split(" — ", 1)[0]
