"""The offline proposer: a deterministic, seeded coordinate search that needs no network.

It discovers the tunable knobs of the parent tree — literal defaults of `@dataclass` fields in the
target's Python files (outside tests and protected paths) — and proposes one change per generation
as a real unified diff: a number scaled up or down, or a string switched to another value its
comment names (`optimizer: str = "sgd"  # one of "sgd", "momentum", "adam"`).

The search is a coordinate search over those knobs, made aware of the tree it runs in:

1. **Crossover first.** Moves that were accepted on another branch (their knob here still has the
   value the move started from) are combined into one diff and proposed together.
2. **Again.** The move that made this parent is tried once more (a learning rate still too low is
   often too low twice) — never its undo, which would only re-measure the grandparent.
3. **Coordinate order.** Knobs in a seeded order, each tried in both directions (×2, ×0.5 first;
   then ×3, ×1/3; then ×1.5, ×1/1.5; strings switched to each value their comment names).

A move is not repeated from an equivalent state, judged by the paired comparison each history
entry carries (the child against its parent on the same seeds):

- **Known to hurt** — significantly worse (the whole interval below zero), or failed to give a
  measurement at all (training diverged, a test broke), when its knob had value v, on any branch:
  never proposed again where the knob has value v — until a text knob's switch (an optimizer, a
  schedule) is accepted: a new mode changes what every other move does (a cosine schedule that hurt
  plain SGD can help Adam), so the block becomes an ordinary recent one. Other knobs rarely turn a clear
  loss into a gain, and a move that lost by far (a range doubled past the data) would otherwise be
  re-measured on every branch.
- **Farther the same way** — a knob's response is taken to be unimodal: a numeric move known to
  hurt from v (doubling) blocks moving that knob from v the same way as far or farther (tripling)
  for as long as the move itself is blocked; nearer (x1.5) and the other way are still tried.
- **Not better** — rejected within the noise: blocked where its knob has value v for the next
  HURT_MEMORY candidates, then retried (the other knobs have usually changed what it would do).
- **Inert** — exactly no effect on any seed (a knob the current mode ignores, like a momentum under
  plain SGD): every move of that knob at value v waits HURT_MEMORY candidates.

What was already proposed from this parent (earlier, or by a sibling of the same generation) is
skipped, and a move a sibling of this generation is trying from another parent comes after every
move nobody is trying: parents that differ by one knob learn little from the same move. Everything
it knows comes from the history in its context, so it is deterministic for a seed and the same
after a resume.
It is the embedded default and the baseline every other proposer is compared against.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pathspec

from agent.config import OfflineConfig
from core.contracts import Proposal, ProposalContext
from core.errors import RsiError
from core.pysource import literal, parse_module
from core.target import TargetSpec

OUTRANKED = "reject: outranked"
"""How a history entry's reason starts when its move beat the parent but a sibling's beat it more."""
HURT_MEMORY = 24
"""A move that hurt is blocked at its knob's value for this many later candidates: long enough
that it is not repeated within a few generations, short enough that it is retried once the
other knobs have moved the state on."""
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
            module = parse_module(source)
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


def render_diff(tree: Path, mutations: Mutation | list[Mutation]) -> str:
    """One unified diff that sets every mutation's knob to its new value."""
    moves = [mutations] if isinstance(mutations, Mutation) else mutations
    diff = []
    for name in sorted({m.knob.file for m in moves}):
        original = (tree / name).read_text(encoding="utf-8").splitlines(keepends=True)
        changed = list(original)
        for mutation in (m for m in moves if m.knob.file == name):
            changed[mutation.knob.line - 1] = _set_literal(
                changed[mutation.knob.line - 1], mutation.new_value
            )
        diff.append(
            "".join(difflib.unified_diff(original, changed, fromfile=f"a/{name}", tofile=f"b/{name}"))
        )
    return "".join(diff)


def _set_literal(line: str, value: int | float | str) -> str:
    code, sep, comment = line.partition("#")
    lhs, _, rhs = code.partition("=")
    new_literal = f'"{value}"' if isinstance(value, str) else repr(value)
    padding = rhs[len(rhs.rstrip()) :]
    return (
        f"{lhs.rstrip()} = {new_literal}{padding}{sep}{comment}"
        if sep
        else f"{lhs.rstrip()} = {new_literal}\n"
    )


@dataclass(frozen=True)
class PastMove:
    """One move of an earlier proposal, read back from its rationale."""

    key: str
    knob: str
    old: str
    new: str


MOVE_TEXT = re.compile(r"(\w+) from (.+?) to (.+?)(?:;|$)")


def past_moves(rationale: str) -> list[PastMove]:
    """The moves of a rationale written by this proposer (`KEY[ + KEY…] — … knob from A to B; …`)."""
    head, _, text = rationale.partition(" — ")
    keys = head.split(" + ")
    found = MOVE_TEXT.findall(text.split(": ", 1)[-1])
    if len(found) != len(keys):
        return []
    return [PastMove(key, knob, old, new) for key, (knob, old, new) in zip(keys, found, strict=True)]


class Memory:
    """What the history says about moves, seen from one parent."""

    def __init__(self, context: ProposalContext, knobs: list[Knob]) -> None:
        self.current = {k.name: repr(k.value) for k in knobs}
        self.tried_here = {_key(e.rationale) for e in context.siblings} | {
            _key(e.rationale) for e in context.history if e.parent_commit == context.parent_commit
        }
        """Moves already proposed from this parent (by a sibling), whatever came of them."""
        self.hurt: set[tuple[str, str]] = set()
        """(move, knob value) pairs blocked: known to hurt there, or not better there lately."""
        self.hurt_farther: set[tuple[str, str, bool, float]] = set()
        """(knob, value, upwards, size) of numeric moves known to hurt there (for good, or lately
        where the block is a recent one): a move of the same knob from the same value in the same
        direction, as far or farther, is taken to hurt as well."""
        self.inert: set[tuple[str, str]] = set()
        """(knob, value) pairs where a move of the knob lately changed nothing at all."""
        self.elsewhere_pending: set[str] = set()
        """Moves a sibling of this generation is trying from another parent."""
        accepted: list[PastMove] = []
        recent = len(context.history) - HURT_MEMORY
        parsed = [past_moves(entry.rationale) for entry in context.history]
        mode_changed = max(
            (
                index
                for index, (entry, moves) in enumerate(zip(context.history, parsed, strict=True))
                if entry.decision == "accept" and any(_is_text(m.old) for m in moves)
            ),
            default=-1,
        )
        """The last accepted switch of a text knob (an optimizer, a schedule): a new mode changes
        what every other move does, so what was known to hurt before it is only recent history."""
        for index, (entry, moves) in enumerate(zip(context.history, parsed, strict=True)):
            if entry.decision == "pending" and entry.parent_commit != context.parent_commit:
                self.elsewhere_pending.add(_key(entry.rationale))
            won = entry.decision == "accept" or entry.reason.startswith(OUTRANKED)
            if entry.decision == "reject" and len(moves) == 1 and not won:
                move, paired = moves[0], entry.paired
                failed = entry.metric_mean is None and paired is None
                known = failed or (paired is not None and paired.significantly_worse)
                # Known to hurt blocks for good after the last switch, anything else while recent.
                if (known and index > mode_changed) or index >= recent:
                    self.hurt.add((move.key, move.old))
                    if known and (step := _step(move.old, move.new)) is not None:
                        self.hurt_farther.add((move.knob, move.old, *step))
                    if paired is not None and paired.low == paired.high == 0.0:  # never when known
                        self.inert.add((move.knob, move.old))
            if won:
                accepted.extend(moves)
        made_here = [m for m in accepted if self.current.get(m.knob) == m.new]
        self.again = [m.key for m in made_here]
        self.undo = {(m.knob, m.old) for m in made_here}
        """Knob values a move made here started from: going back only re-measures an ancestor."""
        self.elsewhere = [m for m in accepted if self.current.get(m.knob) == m.old]

    def allows(self, mutation: Mutation) -> bool:
        return (
            mutation.key not in self.tried_here
            and (mutation.knob.name, repr(mutation.new_value)) not in self.undo
            and (mutation.key, repr(mutation.knob.value)) not in self.hurt
            and (mutation.knob.name, repr(mutation.knob.value)) not in self.inert
            and not self._past_a_loss(mutation)
        )

    def _past_a_loss(self, mutation: Mutation) -> bool:
        """A knob's response is taken to be unimodal: past a value that is known to hurt, in the
        same direction, it does no better (a range tripled where doubling lost by far)."""
        value = repr(mutation.knob.value)
        step = _step(value, repr(mutation.new_value))
        return step is not None and any(
            (mutation.knob.name, value, step[0]) == (knob, old, upwards) and step[1] >= size - 1e-9
            for knob, old, upwards, size in self.hurt_farther
        )

    def fresh_first(self, moves: list[Mutation]) -> list[Mutation]:
        """The moves, those no sibling of this generation is trying from another parent first."""
        return sorted(moves, key=lambda m: m.key in self.elsewhere_pending)


class OfflineProposer:
    """Seeded knob moves with crossover and a memory of what hurt; the default with no API key."""

    name = "offline"
    config_class = OfflineConfig

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @classmethod
    def from_config(cls, config: OfflineConfig, **services: object) -> OfflineProposer:
        """Needs none of the run's services (no backend: it only reads the parent's files)."""
        return cls(seed=config.seed)

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
        memory = Memory(context, knobs)
        allowed = memory.fresh_first([m for m in order if memory.allows(m)])
        moves = self._crossover(allowed, memory)
        if not moves:
            again = [m for m in allowed if m.key in memory.again]
            # Every move blocked: the least recently ruled out of those not yet tried from here.
            untried = [m for m in order if m.key not in memory.tried_here]
            if not (again or allowed or untried):
                return Proposal(
                    diff="",
                    rationale="every move of every knob was already tried from this parent",
                    proposer=self.name,
                    stop_reason="nothing_to_propose",
                )
            moves = [(again or allowed or untried)[0]]
        return self._proposal(
            context, parent_tree, moves, len(knobs), [order.index(m) for m in moves], len(order)
        )

    @staticmethod
    def _crossover(allowed: list[Mutation], memory: Memory) -> list[Mutation]:
        """Moves that won elsewhere and still apply here: all together (one per knob), else one by one."""
        by_key = {m.key: m for m in allowed}
        chosen: dict[str, Mutation] = {}
        for move in memory.elsewhere:
            if move.key in by_key and repr(by_key[move.key].new_value) == move.new:
                chosen.setdefault(move.knob, by_key[move.key])
        together = list(chosen.values())
        for moves in [together, *([m] for m in together)] if together else []:
            if " + ".join(m.key for m in moves) not in memory.tried_here:
                return moves
        return []

    def _proposal(
        self,
        context: ProposalContext,
        parent_tree: Path,
        moves: list[Mutation],
        knobs: int,
        positions: list[int],
        of: int,
    ) -> Proposal:
        described = "; ".join(
            f"{_verb(m)} {m.knob.name} from {m.knob.value!r} to {m.new_value!r}" for m in moves
        )
        if len(moves) > 1:
            described = f"combine moves that won on other branches: {described}"
        return Proposal(
            diff=render_diff(parent_tree, moves),
            rationale=f"{' + '.join(m.key for m in moves)} — {described}",
            claimed_effect=f"a better {context.metric_name} than the parent ({context.direction} is better)",
            proposer=self.name,
            transcript=[
                {
                    "type": "crossover" if len(moves) > 1 else "mutation",
                    "key": " + ".join(m.key for m in moves),
                    "seed": self.seed,
                    "knobs": knobs,
                    "position": positions[0],
                    "of": of,
                }
            ],
        )


def _step(old: str, new: str) -> tuple[bool, float] | None:
    """A numeric move's direction (True: upwards) and size (|log new/old|), from the values as a
    rationale writes them; None for text values, zero or a change of sign."""
    with contextlib.suppress(ValueError, SyntaxError, TypeError):
        before, after = literal(old), literal(new)
        if (
            isinstance(before, int | float)
            and isinstance(after, int | float)
            and not isinstance(before, bool)
            and before * after > 0
        ):
            return after > before, abs(math.log(after / before))
    return None


def _is_text(value: str) -> bool:
    """Whether a value as a rationale writes it (its repr) is a text one."""
    return value[:1] in ("'", '"')


def _verb(mutation: Mutation) -> str:
    old, new = mutation.knob.value, mutation.new_value
    if isinstance(new, str) or isinstance(old, str):
        return "switch"
    return "raise" if new > old else "lower"


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
