"""One search: K candidates per generation from parents a strategy picks out of the archive,
measured in parallel, compared with their parents on the same seeds, raced for more seeds when the
call is close, and accepted only beyond noise.

    engine = SearchEngine(workspace, proposer, strategy, SearchConfig(candidates=4))
    engine.start()                       # the root, measured on the base seeds
    while not engine.exhausted():
        engine.generation()
    best = engine.archive.best()

The workspace is where trees live and are measured (the lineage and a sandbox in a run, a plain
directory and an in-process trainer in the bench); the engine itself only decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.contracts import HistoryEntry, Proposal, ProposalContext, Proposer
from rsi.search.archive import Archive, Node
from rsi.search.paired import PairedComparison, paired_comparison, race_decision
from rsi.search.strategies import SearchStrategy


class SearchConfig(BaseModel):
    """How a search spends its evaluations."""

    model_config = ConfigDict(extra="forbid")

    candidates: int = Field(default=1, ge=1)
    """K: candidates proposed (and measured in parallel) per generation."""
    max_evaluations: int = Field(default=40, ge=1)
    """Budget: candidate evaluations in all (re-measurements of seeds are not counted)."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    """Seeds every candidate is measured on first, its parent on the same ones."""
    max_seeds: int = Field(default=6, ge=1)
    """Racing: a close call earns more seeds, up to this many in all."""
    confidence: float = Field(default=0.9, gt=0, lt=1)
    """Two-sided confidence level of the paired interval a gain must clear; recorded per verdict."""
    confirm_elites: bool = True
    """Re-measure an accepted node on fresh seeds before it first becomes a parent."""
    direction: Literal["higher", "lower"] = "higher"
    """Whether a higher metric is better."""
    objective: str = "improve the metric"
    """What the proposer is told the target is for."""
    metric_name: str = "metric"
    """The metric's name, as the proposer sees it."""


@dataclass
class Measurement:
    """A tree measured on some seeds: the metric per seed, or why it failed."""

    per_seed: dict[int, float]
    failure: str | None = None
    tree: str | None = None
    """Identity of the measured files: equal for equal trees, however they were reached."""


@dataclass
class MeasureRequest:
    parent: Node
    diff: str
    """The candidate's diff against the parent (empty: the parent itself)."""
    seeds: list[int]


class Workspace(Protocol):
    """Where trees live and are measured."""

    def tree(self, node: Node) -> AbstractContextManager[Path]:
        """A fresh copy of an expandable node's files, for the proposer."""
        ...

    def measure(self, requests: Sequence[MeasureRequest]) -> list[Measurement]:
        """Measure every request (in parallel where it can); results in the input order."""
        ...

    def commit(self, node: Node, parent: Node, diff: str) -> str:
        """Make an accepted node a tree others may build on; returns its commit id."""
        ...


OUTRANKED = "outranked: better than its parent, but a sibling gained more;"
"""The reason of a significant candidate that lost to a sibling: its move won, and may be combined."""

Outcome = Literal["accept", "review", "reject", "failed", "duplicate"]


class CandidateResult(BaseModel):
    """What became of one candidate of a generation."""

    node: str
    parent: str
    outcome: Outcome
    comparison: PairedComparison | None = None
    reason: str = ""


class SearchEngine:
    def __init__(
        self, workspace: Workspace, proposer: Proposer, strategy: SearchStrategy, config: SearchConfig
    ) -> None:
        self.workspace = workspace
        self.proposer = proposer
        self.strategy = strategy
        self.config = config
        self.archive = Archive()
        self.diffs: dict[str, str] = {}
        self.history: list[HistoryEntry] = []
        self.generation_number = 0

    @property
    def sign(self) -> float:
        return 1.0 if self.config.direction == "higher" else -1.0

    def start(self, root_commit: str = "root") -> Node:
        root = Archive.rooted({}, commit=root_commit).root
        self.archive = Archive([root])
        self._measure([(root, list(self.config.seeds))])
        return root

    def exhausted(self) -> bool:
        return self.archive.evaluations() >= self.config.max_evaluations

    # -- one generation -------------------------------------------------------------------

    def generation(self) -> list[CandidateResult]:
        self.generation_number += 1
        k = min(self.config.candidates, self.config.max_evaluations - self.archive.evaluations())
        parents = self._select_confirmed(k)
        children = [self._propose(parent) for parent in parents]
        proposed = [c for c in children if c.status != "failed"]
        self._measure_paired(proposed, [list(self.config.seeds) for _ in proposed])
        duplicates = [r for c in children if (r := self._duplicate(c)) is not None]
        results = duplicates + self._race([c for c in children if c.status != "duplicate"])
        self._accept_best_per_parent(results)
        for result in results:
            self._remember(result)
        return results

    def _select_confirmed(self, k: int) -> list[Node]:
        """K parents, each re-measured on fresh seeds the first time it is chosen (a lucky score
        is dropped here, before it seeds a branch)."""
        for _ in range(len(self.archive) + 1):
            chosen = [self.archive[i] for i in self.strategy.select(self.archive, k, self.generation_number)]
            unconfirmed = [n for n in dict.fromkeys(n.id for n in chosen) if not self.archive[n].confirmed]
            if not unconfirmed or not self.config.confirm_elites:
                return chosen
            for node_id in unconfirmed:
                self._confirm(self.archive[node_id])
        return chosen

    def _confirm(self, node: Node) -> None:
        parent = self.archive[node.parent or node.id]
        fresh = self._fresh_seeds(node, len(self.config.seeds))
        self._measure_paired([node], [fresh])
        if node.status == "failed":
            node.status = "demoted"
            return
        comparison = self._compare(parent, node, seeds=fresh)
        node.confirmed = comparison.gain > 0
        if not node.confirmed:
            node.status = "demoted"
            self._note(node, f"demoted: re-measured on fresh seeds, {comparison.summary()}")

    def _owner(self, node: Node) -> Node:
        return self.archive[node.parent] if node.parent else node

    def _fresh_seeds(self, node: Node, count: int) -> list[int]:
        start = max([*node.per_seed, *self.config.seeds]) + 1
        return list(range(start, start + count))

    def _propose(self, parent: Node) -> Node:
        context = ProposalContext(
            generation=self.generation_number,
            objective=self.config.objective,
            metric_name=self.config.metric_name,
            direction=self.config.direction,
            parent_commit=parent.commit or parent.id,
            parent_metric_mean=None if parent.score is None else self.sign * parent.score,
            parent_metric_std=None,
            history=list(self.history),
        )
        with self.workspace.tree(parent) as tree:
            proposal = self.proposer.propose(context, tree)
        child = self.archive.add(parent.id, self.generation_number, _first_line(proposal))
        self.diffs[child.id] = proposal.diff
        if not proposal.diff.strip():  # nothing to measure; it still spends one of the budget
            child.status = "failed"
            child.move = f"{child.move} | no change proposed ({proposal.stop_reason or 'empty diff'})"
        # A sibling proposed in this generation counts as tried from this parent already.
        self.history.append(self._entry(child, proposal, "pending", ""))
        return child

    # -- measuring, racing, accepting ------------------------------------------------------

    def _measure(self, pairs: list[tuple[Node, list[int]]]) -> None:
        """Measure each node on its seeds, all at once; a failure marks the node failed."""
        requests = [self._request(node, seeds) for node, seeds in pairs]
        for (node, _), measurement in zip(pairs, self.workspace.measure(requests), strict=True):
            if node.tree is None and measurement.tree is not None:
                node.tree = measurement.tree
            if measurement.failure:
                node.status = "failed"
                node.move = f"{node.move} | {measurement.failure}"
                continue
            self.archive.record_scores(node.id, {s: self.sign * v for s, v in measurement.per_seed.items()})

    def _measure_paired(self, children: list[Node], seeds_of: list[list[int]]) -> None:
        """Measure children on their seeds and each parent on any of those seeds it lacks."""
        pairs: list[tuple[Node, list[int]]] = list(zip(children, seeds_of, strict=True))
        wanted: dict[str, set[int]] = {}
        for child, seeds in pairs:
            parent = self._owner(child)
            wanted.setdefault(parent.id, set()).update(s for s in seeds if s not in parent.per_seed)
        pairs += [(self.archive[p], sorted(seeds)) for p, seeds in wanted.items() if seeds]
        self._measure(pairs)

    def _request(self, node: Node, seeds: list[int]) -> MeasureRequest:
        if node.commit is not None:  # committed: its own tree exists
            return MeasureRequest(node, "", seeds)
        return MeasureRequest(self._owner(node), self.diffs[node.id], seeds)

    def _compare(self, parent: Node, child: Node, seeds: list[int] | None = None) -> PairedComparison:
        shared = {s: v for s, v in child.per_seed.items() if seeds is None or s in seeds}
        return paired_comparison(parent.per_seed, shared, "higher", self.config.confidence)

    def _race(self, children: list[Node]) -> list[CandidateResult]:
        """Close calls earn one more seed each round, measured together, until each is decided."""
        while racing := [c for c in children if self._decide(c) == "more_seeds"]:
            self._measure_paired(racing, [self._fresh_seeds(c, 1) for c in racing])
        return [self._result(child) for child in children]

    def _duplicate(self, child: Node) -> CandidateResult | None:
        """A child whose files another node already has is that node: it is not judged again."""
        holder = self.archive.holder_of(child.tree, child.id) if child.tree else None
        if holder is None:
            return None
        child.status = "duplicate"
        reason = f"the same files as {holder.id} (reached by another path)"
        return CandidateResult(
            node=child.id, parent=self._owner(child).id, outcome="duplicate", reason=reason
        )

    def _decide(self, child: Node) -> str:
        if child.status == "failed" or not child.per_seed:
            return "failed"
        return race_decision(self._compare(self._owner(child), child), self.config.max_seeds)

    def _result(self, child: Node) -> CandidateResult:
        parent = self._owner(child)
        decision = self._decide(child)
        if decision == "failed":
            return CandidateResult(node=child.id, parent=parent.id, outcome="failed", reason=child.move)
        comparison = self._compare(parent, child)
        outcome: Outcome = {"better": "accept", "inconclusive": "review"}.get(decision, "reject")  # type: ignore[assignment]
        return CandidateResult(
            node=child.id,
            parent=parent.id,
            outcome=outcome,
            comparison=comparison,
            reason=comparison.summary(),
        )

    def _accept_best_per_parent(self, results: list[CandidateResult]) -> None:
        """Headless: the best significant candidate of each parent is accepted, the rest rejected."""
        best: dict[str, CandidateResult] = {}
        for result in results:
            if result.outcome == "accept" and result.comparison is not None:
                held = best.get(result.parent)
                if held is None or held.comparison is None or result.comparison.gain > held.comparison.gain:
                    best[result.parent] = result
        for result in results:
            node = self.archive[result.node]
            if result.outcome == "accept" and best.get(result.parent) is not result:
                result.outcome, result.reason = "reject", f"{OUTRANKED} {result.reason}"
            if result.outcome == "accept":
                node.status = "accepted"
                node.commit = self.workspace.commit(node, self.archive[result.parent], self.diffs[node.id])
            elif result.outcome == "review":
                node.status = "review"
            elif node.status not in ("failed", "duplicate"):
                node.status = "rejected"

    def _remember(self, result: CandidateResult) -> None:
        node = self.archive[result.node]
        decision = "accept" if result.outcome == "accept" else "reject"
        for index, entry in enumerate(self.history):
            if entry.decision == "pending" and entry.rationale == node.move.split(" | ")[0]:
                parent = self.archive[result.parent]
                self.history[index] = entry.model_copy(
                    update={
                        "decision": decision,
                        "reason": f"{result.outcome}: {result.reason}",
                        "metric_mean": None if node.score is None else self.sign * node.score,
                        "parent_commit": parent.commit or parent.id,
                        "paired": result.comparison,
                    }
                )
                return

    def _note(self, node: Node, reason: str) -> None:
        self.history.append(
            HistoryEntry(
                generation=self.generation_number,
                parent_commit=self.archive[node.parent or node.id].commit or "",
                rationale=node.move,
                decision="reject",
                reason=reason,
            )
        )

    def _entry(self, node: Node, proposal: Proposal, decision: str, reason: str) -> HistoryEntry:
        parent = self.archive[node.parent or node.id]
        return HistoryEntry(
            generation=node.generation,
            parent_commit=parent.commit or parent.id,
            rationale=_first_line(proposal),
            decision=decision,
            reason=reason,
        )


def _first_line(proposal: Proposal) -> str:
    return (proposal.rationale.splitlines() or [""])[0]
