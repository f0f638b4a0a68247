"""The bundled bootstrapping target (examples/bootstrap): its contract, its harness-side ground
truth, the knobs the offline proposer reaches, and its own test suite."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from agent.offline import discover_knobs
from core.errors import ConfigError
from core.target import TargetSpec
from rsi.promotion import initial_teacher
from tests.conftest import ROOT

BOOTSTRAP = ROOT / "examples" / "bootstrap"
PROVIDER = ROOT / "examples" / "bootstrap-heldout.py"


def load_provider() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap_heldout", PROVIDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_contract_names_a_protected_teacher_inside_the_tree() -> None:
    spec = TargetSpec.load(BOOTSTRAP)
    assert spec.teacher is not None and (BOOTSTRAP / spec.teacher.initial).is_file()
    assert "{teacher}" in spec.commands.train
    assert spec.teacher.initial in spec.protected.paths and "predict.py" in spec.protected.paths
    assert spec.metric.name == "accuracy" and spec.metric.direction == "higher"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text.split("[teacher]")[0], "no \\[teacher\\] table"),  # the last table
        (lambda text: text.replace("--teacher {teacher} ", ""), "never reads \\{teacher\\}"),
    ],
)
def test_a_teacher_table_and_its_placeholder_come_together(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    text = edit((BOOTSTRAP / "rsi.toml").read_text(encoding="utf-8"))
    with pytest.raises(ConfigError, match=message):
        TargetSpec.parse_text(text, source="examples/bootstrap/rsi.toml")


@pytest.mark.parametrize("path", ["/root/teacher0.npz", "../teacher0.npz", "weights/../../teacher0.npz", " "])
def test_the_first_teacher_is_a_file_of_the_target(path: str) -> None:
    text = (BOOTSTRAP / "rsi.toml").read_text(encoding="utf-8").replace('"teacher0.npz"', f'"{path}"')
    with pytest.raises(ConfigError, match="not a path inside the target"):
        TargetSpec.parse_text(text, source="examples/bootstrap/rsi.toml")


def test_a_first_teacher_linked_out_of_the_target_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "bootstrap"
    shutil.copytree(BOOTSTRAP, target, ignore=shutil.ignore_patterns("runs", "__pycache__"))
    outside = tmp_path / "elsewhere.npz"
    outside.write_bytes((target / "teacher0.npz").read_bytes())
    (target / "teacher0.npz").unlink()
    (target / "teacher0.npz").symlink_to(outside)
    with pytest.raises(ConfigError, match="leads outside the target"):
        initial_teacher(target, "teacher0.npz")
    assert initial_teacher(BOOTSTRAP, "teacher0.npz") == BOOTSTRAP / "teacher0.npz"


def test_the_ground_truth_lives_outside_the_target() -> None:
    assert BOOTSTRAP not in PROVIDER.resolve().parents
    tracked = [path.name for path in BOOTSTRAP.rglob("*")]
    assert PROVIDER.name not in tracked


def test_the_provider_gives_exact_sums_and_scores_exact_matches() -> None:
    provider = load_provider()
    inputs, labels = provider.generate(7, 500)
    again, _ = provider.generate(7, 500)
    assert np.array_equal(inputs, again) and inputs.shape == (500, 2)
    assert inputs.min() >= 0 and inputs.max() < 10**8
    assert np.array_equal(labels, inputs[:, 0] + inputs[:, 1])
    assert provider.score(labels, labels) == 1.0
    assert provider.score(labels + 1, labels) == 0.0
    assert provider.score(np.where(np.arange(500) < 100, labels, 0), labels) == pytest.approx(0.2)


def test_the_offline_proposer_reaches_both_engines() -> None:
    """Better data generation (votes, agreement, sampling) and amortised reasoning (window)."""
    knobs = {knob.name: knob for knob in discover_knobs(BOOTSTRAP)}
    assert {"teacher_votes", "min_agreement", "operand_sampling", "window", "train_problems"} <= set(knobs)
    assert knobs["operand_sampling"].choices == ("carry_rich",)
    assert all(knob.file == "config.py" for knob in knobs.values())
    assert "steps" not in knobs


def readme_commands() -> list[str]:
    text = (BOOTSTRAP / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- readme-example: runnable -->\n```bash\n(.*?)```", text, re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_readme_examples_run(tmp_path: Path) -> None:
    """Every command of the target's README, in a copy of the target beside its provider (the
    recursion on a smaller budget); the last one is the target's own test suite."""
    target = tmp_path / "bootstrap"
    shutil.copytree(BOOTSTRAP, target, ignore=shutil.ignore_patterns("runs", "__pycache__"))
    shutil.copy(PROVIDER, tmp_path / PROVIDER.name)
    (target / "runs").mkdir()
    np.save(target / "runs" / "problems.npy", load_provider().generate(3, 50)[0])
    commands = readme_commands()
    assert len(commands) == 4 and commands[-1] == "python -m pytest -q -x tests"
    for command in commands:
        argv = [sys.executable, *command.split()[1:]]
        if "recursion.py" in command:
            argv += ["--generations", "1", "--seeds", "1", "--size", "200"]
        done = subprocess.run(
            argv,
            cwd=target,
            capture_output=True,
            text=True,
            timeout=600,
            env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        )
        assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-2000:])
    assert np.load(target / "runs" / "predictions.npy").shape == (50,)


def test_the_harness_loads_the_provider_and_scores_accuracy_as_it_does() -> None:
    from sandbox.heldout import load_provider as harness_provider
    from sandbox.heldout import score

    provider = harness_provider(PROVIDER)
    heldout = provider.selection(seed=11, size=300)
    TargetSpec.load(BOOTSTRAP).check_heldout_labels(heldout.labels, provider.source)
    wrong = heldout.labels + (np.arange(300) % 4 == 0)
    assert score("accuracy", wrong, heldout.labels) == pytest.approx(
        load_provider().score(wrong, heldout.labels)
    )
    assert provider.content_hash is not None


def test_the_teacher_table_budgets_each_students_compute() -> None:
    spec = TargetSpec.load(BOOTSTRAP)
    assert spec.teacher is not None and spec.teacher.compute_budget_s == 30
    text = (
        (BOOTSTRAP / "rsi.toml")
        .read_text(encoding="utf-8")
        .replace("compute_budget_s = 30", "compute_budget_s = 0")
    )
    with pytest.raises(ConfigError, match="compute_budget_s"):
        TargetSpec.parse_text(text, source="examples/bootstrap/rsi.toml")
