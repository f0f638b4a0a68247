"""Components are built by name from their own configs, with errors that say what to choose."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import OfflineConfig
from agent.offline import OfflineProposer
from core.errors import ConfigError
from core.registry import Registry
from review.headless import PolicyReviewer
from rsi.compose import make_proposer, make_reviewer
from rsi.config import RunConfig
from rsi.registry import PROPOSERS, REVIEWERS
from sandbox.backends import BACKENDS


def test_an_unknown_name_says_where_it_came_from_and_the_known_names() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown proposer 'oracle' \(given by --proposer.*offline, claude, replay"
    ):
        PROPOSERS.build("oracle", {})
    with pytest.raises(ConfigError, match=r"unknown backend 'kvm'.*docker, bwrap"):
        BACKENDS.load("kvm")


def test_a_class_missing_from_the_installation_is_a_clear_error() -> None:
    registry = Registry("proposer", {"gone": "agent.nowhere.Proposer"}, where="--proposer")
    with pytest.raises(ConfigError, match="'gone' is not available in this installation"):
        registry.load("gone")


def test_a_component_is_built_from_its_own_config_validated() -> None:
    proposer = PROPOSERS.build("offline", {"seed": 7})
    assert isinstance(proposer, OfflineProposer) and proposer.seed == 7
    assert PROPOSERS.build("offline", OfflineConfig(seed=3)).seed == 3
    with pytest.raises(
        ConfigError, match=r"'offline' cannot be built from its settings \(seed: .*OfflineConfig"
    ):
        PROPOSERS.build("offline", {"seed": "many"})
    with pytest.raises(ConfigError, match="temperature"):
        PROPOSERS.build("offline", {"temperature": 0.5})  # a setting of another proposer


def test_the_run_config_gives_each_proposer_its_own_config(tmp_path: Path) -> None:
    config = RunConfig(target=tmp_path, run_dir=tmp_path / "run", proposer_seed=5)
    assert make_proposer(config, backend=None).seed == 5  # type: ignore[arg-type,attr-defined]
    replay = config.model_copy(update={"proposer": "replay"})
    with pytest.raises(ConfigError, match="needs a trajectory to replay"):
        make_proposer(replay, backend=None)  # type: ignore[arg-type]


def test_the_review_mode_chooses_the_reviewer(tmp_path: Path) -> None:
    config = RunConfig(target=tmp_path, run_dir=tmp_path / "run", review="strict")
    reviewer = make_reviewer(config)
    assert isinstance(reviewer, PolicyReviewer) and reviewer.mode == "strict"
    human = config.model_copy(update={"review": "human"})
    assert make_reviewer(human, continuing=True).mode == "queue"  # type: ignore[attr-defined]
    waiting = []
    asked = make_reviewer(human, ask_human=waiting.append, by="human:alice")
    assert type(asked).__name__ == "HumanReviewer" and asked.by == "human:alice"  # type: ignore[attr-defined]
    assert list(REVIEWERS) == ["policy", "human"]
    with pytest.raises(ConfigError, match="needs the TUI"):
        make_reviewer(human)
