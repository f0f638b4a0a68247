"""Where each candidate of a run is proposed from: the one place `rsi run` chooses parents.

    selector = ParentSelector(StrategyConfig(name="archive", seed=0), direction="higher")
    for choice in selector.choose(state, numbers=[5, 6, 7, 8], head=lineage.head()):
        ...  # choice.number is proposed from choice.commit (node choice.node)

The archive is read from the run's state (the baseline and every decided candidate, with its
parent and its lineage commit), so a resumed run sees the archive its trajectory records.
`greedy` builds on the lineage head, exactly as runs did before strategies existed. A candidate
whose parent is already recorded (a resumed or re-executed run) keeps that parent: the recorded
node name (`gen-N`) is resolved to this run's commit of generation N.

An accepted candidate whose score did not hold on fresh seeds (the loop's elite confirmation) is
`demoted`: no strategy chooses it, and greedy builds on the newest accepted node that is not.

The proposer's view of the tree comes from here too: the parent's ancestry (the accepted
candidates that made it) and its siblings (the other candidates proposed from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from core.contracts import Evaluation, HistoryEntry
from core.errors import RsiError
from rsi.search.archive import Archive, Node, NodeStatus
from rsi.search.strategies import StrategyConfig, make_strategy

ROOT_NODE = "gen-0"
STATUS_OF: dict[str, NodeStatus] = {"accept": "accepted", "reject": "rejected", "queue": "review"}


class SearchState(Protocol):
    """What the selector reads of a run (rsi.state.LoopState)."""

    baseline: Evaluation | None
    history: list[HistoryEntry]
    commits: dict[int, str]
    chosen_nodes: dict[int, str]

    @property
    def demoted(self) -> set[int]:
        """Accepted candidates that are lucky scores: never parents."""
        ...


@dataclass(frozen=True)
class Choice:
    number: int
    """The candidate's number (gen-N)."""
    commit: str
    """The lineage commit it is proposed from."""
    node: str
    """That commit's node: `gen-0` (the baseline) or `gen-K` (accepted candidate K)."""


class ParentSelector:
    """Chooses the parent of each candidate with the run's strategy, from the archive of its state."""

    def __init__(self, config: StrategyConfig, direction: Literal["higher", "lower"]) -> None:
        self.config = config
        self.strategy = make_strategy(config)
        self.sign = 1.0 if direction == "higher" else -1.0

    @property
    def name(self) -> str:
        return self.config.name

    def choose(self, state: SearchState, numbers: list[int], head: str) -> list[Choice]:
        """One choice per number, in order; recorded choices are kept."""
        archive, commit_of = self.archive(state)
        node_of = {commit: node for node, commit in commit_of.items()}
        fresh = [n for n in numbers if n not in state.chosen_nodes]
        lucky = {state.commits[n] for n in state.demoted if n in state.commits}
        on_head = self.name == "greedy" and head not in lucky  # else: the newest node that is not
        drawn: list[str] = []
        if fresh and not on_head:
            ids = self.strategy.select(archive, len(fresh), fresh[0])
            drawn = [archive[i].move for i in ids]  # an archive node's move is its node name
        choices = []
        for number in numbers:
            if number in state.chosen_nodes:
                node = state.chosen_nodes[number]
            elif on_head:
                node = node_of.get(head, ROOT_NODE)
            else:
                node = drawn.pop(0)
            commit = head if on_head else _commit(commit_of, node, number)
            choices.append(Choice(number, commit, node_of.get(commit, node)))
        return choices

    def archive(self, state: SearchState) -> tuple[Archive, dict[str, str]]:
        """The archive of the run so far, and each expandable node's commit by node name.

        Archive node ids are the strategies' own (n0, n1, …); a node's `move` holds its name."""
        baseline = state.baseline
        if baseline is None or baseline.metric is None:
            raise RsiError("parents are chosen only after the baseline is measured")
        archive = Archive.rooted({0: self.sign * baseline.metric.mean}, commit=baseline.parent_commit)
        archive.root.move = ROOT_NODE
        commit_of = {ROOT_NODE: baseline.parent_commit}
        by_commit = {baseline.parent_commit: archive.root.id}
        for entry in state.history:
            parent_id = by_commit.get(entry.parent_commit, archive.root.id)
            node = archive.add(parent_id, entry.generation, f"gen-{entry.generation}")
            _score(archive, node, entry, self.sign)
            node.status = STATUS_OF.get(entry.decision, "rejected")
            commit = state.commits.get(entry.generation)
            if node.status == "accepted" and entry.generation in state.demoted:
                node.status = "demoted"  # a lucky score: its children (if any) still attach to it
                if commit is not None:
                    by_commit[commit] = node.id
            elif node.status == "accepted" and commit is not None:
                node.commit = commit
                by_commit[commit] = node.id
                commit_of[node.move] = commit
            elif node.status == "accepted":
                node.status = "pending"  # accepted, but its commit is not made yet
        return archive, commit_of


def _score(archive: Archive, node: Node, entry: HistoryEntry, sign: float) -> None:
    if entry.metric_mean is not None:
        archive.record_scores(node.id, {0: sign * entry.metric_mean})
    else:
        node.status = "failed"


def _commit(commit_of: dict[str, str], node: str, number: int) -> str:
    try:
        return commit_of[node]
    except KeyError:
        raise RsiError(
            f"candidate {number} was proposed from {node}, which is not an accepted node of this run "
            f"(accepted: {', '.join(commit_of)}); the trajectory and the lineage disagree — "
            "check the run with `rsi replay --verify`."
        ) from None


def ancestry(state: SearchState, parent: str) -> list[HistoryEntry]:
    """The accepted candidates that made `parent`, oldest first."""
    generation_of = {commit: generation for generation, commit in state.commits.items()}
    entries = {entry.generation: entry for entry in state.history}
    chain: list[HistoryEntry] = []
    commit = parent
    while (generation := generation_of.get(commit)) is not None and generation in entries:
        chain.append(entries[generation])
        commit = entries[generation].parent_commit
    return chain[::-1]


def siblings(history: list[HistoryEntry], parent: str) -> list[HistoryEntry]:
    """The candidates proposed from `parent` (decided or pending), in order."""
    return [entry for entry in history if entry.parent_commit == parent]
