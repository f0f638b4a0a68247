"""The search engine's decisions: parent selection, paired racing, elites re-measured, duplicates.

The engine is driven by a scripted workspace: a tree is the set of moves applied to the target, and
its metric on a seed is a fixed function of those moves and the seed (deterministic, like a scripted
model), so each test can say exactly which candidate is better and by how much.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from agent.offline import OfflineProposer
from core.contracts import HistoryEntry, ProposalContext
from core.errors import ConfigError
from rsi.search.archive import Archive, Node
from rsi.search.engine import Measurement, MeasureRequest, SearchConfig, SearchEngine
from rsi.search.paired import paired_comparison, race_decision, t_quantile
from rsi.search.strategies import StrategyConfig, make_strategy
from sandbox.patch import apply_diff
from tests.conftest import TARGET

Score = Callable[[frozenset[str], int], float]


class ScriptedWorkspace:
    """Trees are directories (so the real offline proposer reads real files); a tree's metric is
    `score(moves, seed)` where moves are the proposal keys applied from the root."""

    def __init__(self, tmp: Path, score: Score) -> None:
        self.tmp, self.score = tmp, score
        self.moves: dict[str, frozenset[str]] = {"n0": frozenset()}
        self.dirs: dict[str, Path] = {}
        self.measured: list[tuple[str, tuple[int, ...]]] = []

    def _dir(self, node: Node) -> Path:
        if node.id == "n0" and "n0" not in self.dirs:
            import shutil

            self.dirs["n0"] = Path(shutil.copytree(TARGET, self.tmp / "n0"))
        return self.dirs[node.id]

    @contextlib.contextmanager
    def tree(self, node: Node) -> Iterator[Path]:
        yield self._dir(node)

    def commit(self, node: Node, parent: Node, diff: str) -> str:
        import shutil

        path = Path(shutil.copytree(self._dir(parent), self.tmp / node.id))
        apply_diff(diff, path)
        self.dirs[node.id] = path
        self.moves[node.id] = self.moves[parent.id] | {_keys(diff)}
        return node.id

    def measure(self, requests: Sequence[MeasureRequest]) -> list[Measurement]:
        results = []
        for request in requests:
            moves = self.moves[request.parent.id] | ({_keys(request.diff)} if request.diff else set())
            self.measured.append((",".join(sorted(moves)), tuple(request.seeds)))
            per_seed = {s: self.score(frozenset(moves), s) for s in request.seeds}
            results.append(Measurement(per_seed, tree=",".join(sorted(moves))))
        return results


def _keys(diff: str) -> str:
    return "".join(line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))


def noise(seed: int) -> float:
    return ((seed * 7919) % 13 - 6) / 600  # ±0.01, the same for parent and child on a seed


def engine(tmp_path: Path, score: Score, strategy: str = "greedy", **config: object) -> SearchEngine:
    workspace = ScriptedWorkspace(tmp_path, score)
    search = SearchEngine(
        workspace,
        OfflineProposer(seed=0),
        make_strategy(StrategyConfig(name=strategy)),
        SearchConfig(**config),
    )
    search.start()
    return search


def test_paired_interval_matches_student_t_and_racing_decides_in_order() -> None:
    assert t_quantile(0.95, 2) == pytest.approx(2.919986, abs=1e-5)
    assert t_quantile(0.975, 10) == pytest.approx(2.228139, abs=1e-5)
    parent = {0: 0.50, 1: 0.60, 2: 0.55}
    clear = paired_comparison(parent, {0: 0.52, 1: 0.63, 2: 0.56})
    assert clear.significant and race_decision(clear, max_seeds=6) == "better"
    close = paired_comparison(parent, {0: 0.51, 1: 0.59, 2: 0.56})
    assert close.gain > 0 and not close.significant
    assert race_decision(close, max_seeds=6) == "more_seeds"
    assert race_decision(close, max_seeds=3) == "inconclusive"  # goes to review, not deny
    worse = paired_comparison(parent, {0: 0.49, 1: 0.61, 2: 0.54})
    assert race_decision(worse, max_seeds=6) == "worse"
    lower = paired_comparison(parent, {0: 0.40, 1: 0.50, 2: 0.45}, direction="lower")
    assert lower.significant


def test_unpaired_seeds_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no shared seed"):
        paired_comparison({0: 1.0}, {1: 1.0})


def test_archive_selection_is_deterministic_for_a_seed_and_favours_good_nodes_with_few_children() -> None:
    archive = Archive.rooted({0: 0.1, 1: 0.1})
    for score, parent in ((0.5, "n0"), (0.9, "n0"), (0.88, "n1"), (0.2, "n1")):
        node = archive.add(parent, 1, "m")
        archive.record_scores(node.id, {0: score, 1: score})
        node.status = "accepted"
    picks = [make_strategy(StrategyConfig(name="archive", seed=3)).select(archive, 8, g) for g in range(5)]
    again = [make_strategy(StrategyConfig(name="archive", seed=3)).select(archive, 8, g) for g in range(5)]
    assert picks == again
    assert picks != [
        make_strategy(StrategyConfig(name="archive", seed=4)).select(archive, 8, g) for g in range(5)
    ]
    weights = make_strategy(StrategyConfig(name="archive")).weights(archive)  # type: ignore[attr-defined]
    assert weights["n2"] > weights["n1"] > weights["n4"]
    for _ in range(3):
        archive.add("n2", 2, "child").status = "rejected"
    assert make_strategy(StrategyConfig(name="archive")).weights(archive)["n2"] < weights["n2"]  # type: ignore[attr-defined]
    assert make_strategy(StrategyConfig(name="best-first", beam=2)).select(archive, 3, 1) == [
        "n2",
        "n3",
        "n2",
    ]
    assert make_strategy(StrategyConfig(name="greedy")).select(archive, 2, 1) == ["n4", "n4"]


def test_an_unknown_strategy_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="greedy, best-first, archive"):
        make_strategy(StrategyConfig(name="annealing"))


def test_k_candidates_per_generation_the_best_significant_one_is_accepted(tmp_path: Path) -> None:
    def score(moves: frozenset[str], seed: int) -> float:
        gain = 0.1 * sum("input_range: float = 1.0" in m for m in moves) + 0.05 * sum(
            "label_noise: float = 0.1" in m for m in moves
        )
        return 0.2 + gain + noise(seed)

    search = engine(tmp_path, score, candidates=4)
    results = search.generation()
    assert len(results) == 4 and len({r.node for r in results}) == 4
    assert len({search.archive[r.node].move for r in results}) == 4  # siblings never repeat a move
    accepted = [r for r in results if r.outcome == "accept"]
    assert len(accepted) == 1 and "input_range" in search.archive[accepted[0].node].move
    outranked = [r for r in results if "label_noise:x0.5" in search.archive[r.node].move]
    assert outranked and outranked[0].reason.startswith("outranked")
    assert all(r.comparison is None or r.comparison.confidence == 0.9 for r in results)


def test_a_lucky_elite_is_re_measured_on_fresh_seeds_and_dropped(tmp_path: Path) -> None:
    def score(moves: frozenset[str], seed: int) -> float:
        lucky = any("input_range: float = 1.0" in m for m in moves) and seed < 3  # only on seeds 0 1 2
        return 0.2 + (0.3 if lucky else -0.01) + noise(seed)

    search = engine(tmp_path, score, candidates=2)
    first = search.generation()
    (accepted,) = [r.node for r in first if r.outcome == "accept"]
    search.generation()
    node = search.archive[accepted]
    assert node.status == "demoted" and not node.confirmed
    assert {3, 4, 5} <= set(node.per_seed)  # re-measured on fresh seeds, its parent too
    assert {3, 4, 5} <= set(search.archive.root.per_seed)
    assert all(search.archive[r].parent == "n0" for r in [n.id for n in search.archive][-2:])


def test_a_close_call_races_for_more_seeds_then_goes_to_review(tmp_path: Path) -> None:
    def score(moves: frozenset[str], seed: int) -> float:
        small = any("input_range: float = 1.0" in m for m in moves)
        return 0.2 + (0.004 + (0.02 if seed % 2 else -0.015) if small else 0.0) + noise(seed)

    search = engine(tmp_path, score, candidates=1, max_seeds=5)
    (result,) = search.generation()
    assert result.outcome == "review" and result.comparison is not None
    assert len(result.comparison.seeds) == 5
    assert search.archive[result.node].status == "review"


def test_a_tree_reached_by_another_path_is_a_duplicate_not_an_evaluation(tmp_path: Path) -> None:
    search = engine(tmp_path, lambda moves, seed: 0.2 + 0.1 * len(moves) + noise(seed), candidates=1)
    first = search.generation()[0]
    node = search.archive[first.node]
    twin = search.archive.add("n0", 2, node.move)
    search.diffs[twin.id] = search.diffs[node.id]
    search._measure_paired([twin], [[0, 1, 2]])
    assert search._duplicate(twin) is not None and twin.status == "duplicate"
    assert search.archive.evaluations() == 1


def _context(**update: object) -> ProposalContext:
    base = ProposalContext(
        generation=1,
        objective="x",
        metric_name="r2",
        direction="higher",
        parent_commit="p0",
        parent_metric_mean=0.1,
        parent_metric_std=None,
    )
    return base.model_copy(update=update)


def _filler(count: int) -> list[HistoryEntry]:
    return [
        HistoryEntry(generation=2 + i, parent_commit="elsewhere", rationale=f"other {i}", decision="reject")
        for i in range(count)
    ]


def test_the_offline_proposer_never_repeats_a_move_that_hurt_from_the_same_value(target_copy: Path) -> None:
    proposer = OfflineProposer(seed=0)
    context = _context()
    first = proposer.propose(context, target_copy)
    hurt = HistoryEntry(generation=1, parent_commit="elsewhere", rationale=first.rationale, decision="reject")
    other_parent = context.model_copy(update={"parent_commit": "p9", "history": [hurt]})
    assert proposer.propose(other_parent, target_copy).rationale != first.rationale


def test_moves_that_won_on_two_branches_are_combined_into_one_diff(target_copy: Path) -> None:
    proposer = OfflineProposer(seed=0)
    base = _context()
    seen: list[HistoryEntry] = []
    proposals = []
    while len({p.rationale.split(":")[1] for p in proposals}) < 2:
        proposal = proposer.propose(base.model_copy(update={"history": seen}), target_copy)
        seen.append(
            HistoryEntry(generation=1, parent_commit="p0", rationale=proposal.rationale, decision="pending")
        )
        if all(p.rationale.split(":")[1] != proposal.rationale.split(":")[1] for p in proposals):
            proposals.append(proposal)
    a, b = proposals
    won = [
        HistoryEntry(generation=1, parent_commit="p0", rationale=p.rationale, decision="accept")
        for p in (a, b)
    ]
    combined = proposer.propose(base.model_copy(update={"parent_commit": "p1", "history": won}), target_copy)
    assert combined.transcript[0]["type"] == "crossover"
    assert (
        combined.rationale.split(" — ")[0] == f"{a.rationale.split(' — ')[0]} + {b.rationale.split(' — ')[0]}"
    )
    apply_diff(combined.diff, target_copy)


def test_the_tree_view_shows_each_node_under_its_parent_and_marks_the_best_path() -> None:
    from rsi.search.tree import TreeNode, render_tree

    nodes = [
        TreeNode("n0", None, "baseline", "root", 0.148),
        TreeNode("n1", "n0", "input_range 0.5 → 1.0", "accepted", 0.659),
        TreeNode("n2", "n0", "init_scale 1.0 → 2.0", "denied", 0.09),
        TreeNode("n3", "n1", "label_noise 0.2 → 0.1", "accepted", 0.70),
        TreeNode("n4", "n1", "optimizer sgd → adam", "rejected", 0.80),
    ]
    assert render_tree(nodes).splitlines() == [
        "n0 baseline — root 0.1480  ★",
        "├── n1 input_range 0.5 → 1.0 — accepted 0.6590  ★",
        "│   ├── n3 label_noise 0.2 → 0.1 — accepted 0.7000  ★",
        "│   └── n4 optimizer sgd → adam — rejected 0.8000",
        "└── n2 init_scale 1.0 → 2.0 — denied 0.0900",
    ]
    assert "★" in render_tree(nodes, direction="lower").splitlines()[0]


def test_a_move_that_hurt_is_retried_only_once_the_state_has_moved_on(target_copy: Path) -> None:
    from agent.offline import HURT_MEMORY

    proposer = OfflineProposer(seed=0)
    context = _context()
    first = proposer.propose(context, target_copy)
    within_noise = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.49, 1: 0.62, 2: 0.68})
    assert not within_noise.significantly_worse
    hurt = HistoryEntry(
        generation=1,
        parent_commit="elsewhere",
        rationale=first.rationale,
        decision="reject",
        metric_mean=0.59,
        paired=within_noise,
    )
    later = _filler(HURT_MEMORY)
    recent = context.model_copy(update={"parent_commit": "p9", "history": [hurt, *later[:-1]]})
    assert proposer.propose(recent, target_copy).rationale != first.rationale
    old = context.model_copy(update={"parent_commit": "p9", "history": [hurt, *later]})
    assert proposer.propose(old, target_copy).rationale == first.rationale


@pytest.mark.parametrize("how", ["significantly worse", "failed"])
def test_a_move_known_to_hurt_is_never_proposed_again_from_the_same_value(
    target_copy: Path, how: str
) -> None:
    """Known to hurt (the paired interval wholly below zero, or no measurement at all) blocks the
    move at its knob's value however much history follows; a loss within the noise is retried."""
    from agent.offline import HURT_MEMORY

    proposer = OfflineProposer(seed=0)
    first = proposer.propose(_context(), target_copy)
    worse = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.2, 1: 0.31, 2: 0.4})
    assert worse.significantly_worse
    entry = HistoryEntry(
        generation=1,
        parent_commit="elsewhere",
        rationale=first.rationale,
        decision="reject",
        metric_mean=0.3 if how == "significantly worse" else None,
        paired=worse if how == "significantly worse" else None,
    )
    long_after = _context(parent_commit="p9", history=[entry, *_filler(4 * HURT_MEMORY)])
    assert proposer.propose(long_after, target_copy).rationale != first.rationale


@pytest.mark.parametrize("when", ["for good", "recently, before a switch"])
def test_past_a_value_known_to_hurt_the_same_direction_is_not_tried_farther(
    target_copy: Path, when: str
) -> None:
    """A numeric move known to hurt from value v (doubling it) rules out moving the knob farther the
    same way from v (tripling), for good; nearer (x1.5) and the other way (halving) are still tried.
    Within HURT_MEMORY, a block of the move made before a text knob's switch was accepted does too."""
    from agent.offline import HURT_MEMORY, discover_knobs, past_moves, search_order

    proposer = OfflineProposer(seed=0)
    order = search_order(discover_knobs(target_copy), 0)
    doubled = next(m for m in order if m.label == "x2" and not isinstance(m.knob.value, str))
    name, value = doubled.knob.name, doubled.knob.value
    worse = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.2, 1: 0.31, 2: 0.4})
    entry = HistoryEntry(
        generation=1,
        parent_commit="elsewhere",
        rationale=f"{doubled.key} — raise {name} from {value!r} to {doubled.new_value!r}",
        decision="reject",
        metric_mean=0.3,
        paired=worse,
    )
    switch = HistoryEntry(
        generation=1,
        parent_commit="elsewhere",
        rationale="config.py:optimizer:=adam — switch optimizer from 'sgd' to 'adam'",
        decision="accept",
    )
    history = [entry, *_filler(4 * HURT_MEMORY)] if when == "for good" else [entry, switch, *_filler(2)]
    proposed: list[str] = []
    for _ in range(len(order) + 2):
        proposal = proposer.propose(_context(parent_commit="p9", history=history), target_copy)
        if proposal.stop_reason == "nothing_to_propose":
            break
        proposed += [m.key for m in past_moves(proposal.rationale)]
        history.append(
            HistoryEntry(generation=2, parent_commit="p9", rationale=proposal.rationale, decision="pending")
        )
    blocked = {doubled.key, doubled.key.replace(":x2", ":x3")}
    if when == "for good":
        # Every other move first; the blocked ones only once nothing else is left to try from here.
        assert set(proposed[-2:]) == blocked, proposed
        assert {doubled.key.replace(":x2", f":{f}") for f in ("x1.5", "x0.5", "x0.333")} <= set(proposed[:-2])
    else:  # while the block is recent (the history grows by one per proposal)
        standing = proposed[: HURT_MEMORY - len(history) + len(proposed)]
        assert not blocked & set(standing) and doubled.key.replace(":x2", ":x0.5") in standing, proposed


def test_an_inert_knob_waits_in_both_directions(target_copy: Path) -> None:
    """A move that changed no seed's metric at all (a knob the current mode ignores): neither it nor
    any other move of that knob from the same value is proposed while it is recent."""
    from agent.offline import discover_knobs, past_moves, search_order

    proposer = OfflineProposer(seed=0)
    first = proposer.propose(_context(), target_copy)
    knob = past_moves(first.rationale)[0].knob
    inert = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.5, 1: 0.6, 2: 0.7})
    entry = HistoryEntry(
        generation=1,
        parent_commit="elsewhere",
        rationale=first.rationale,
        decision="reject",
        metric_mean=0.6,
        paired=inert,
    )
    knob_moves = [m for m in search_order(discover_knobs(target_copy), 0) if m.knob.name == knob]
    assert len(knob_moves) > 1
    history = [entry]
    for _ in range(len(knob_moves) + 1):
        proposal = proposer.propose(_context(parent_commit="p9", history=history), target_copy)
        assert past_moves(proposal.rationale)[0].knob != knob
        history.append(
            HistoryEntry(generation=2, parent_commit="p9", rationale=proposal.rationale, decision="pending")
        )


def test_a_move_a_sibling_tries_from_another_parent_comes_after_the_untried_ones(target_copy: Path) -> None:
    proposer = OfflineProposer(seed=0)
    first = proposer.propose(_context(), target_copy)
    pending = HistoryEntry(generation=1, parent_commit="p0", rationale=first.rationale, decision="pending")
    other_parent = proposer.propose(_context(parent_commit="p1", history=[pending]), target_copy)
    assert other_parent.rationale != first.rationale
    alone = proposer.propose(_context(parent_commit="p1"), target_copy)
    assert alone.rationale == first.rationale  # the sibling's move is only put behind the others


def test_a_parent_with_every_move_tried_ends_its_search_instead_of_repeating_one(tmp_path: Path) -> None:
    """Every candidate from a parent hurt: the proposer runs out of moves there, says so with an
    empty proposal, and the engine counts it against the budget instead of measuring the parent
    again (a greedy search from a dead end ends; it used to loop on duplicates for ever)."""
    search = engine(tmp_path, lambda moves, seed: 0.5 - 0.2 * len(moves) + noise(seed), candidates=4)
    search.config = search.config.model_copy(update={"max_evaluations": 200})
    while not search.exhausted():
        search.generation()
    nodes = [n for n in search.archive if n.parent is not None]
    ended = [n for n in nodes if "no change proposed" in n.move]
    assert ended and all(n.status == "failed" for n in ended)
    assert len({search.diffs[n.id] for n in nodes if n not in ended}) == len(nodes) - len(ended)
