"""Every example in README.md works as written.

Each fenced block carries a marker comment on the line before it, saying what it is:
`runnable` (each line is run), `make` (each `make X` names a real target, checked with `make -n`),
`rsi.toml` (loaded as a target contract) or `output` (a sample of what a command prints; not run).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.target import TargetSpec
from tests.conftest import ROOT

MARKER = re.compile(r"<!-- readme-example: (\S+) -->\n```[a-z]*\n(.*?)```", re.S)
RSI = str(Path(sys.executable).with_name("rsi"))


def readme_blocks(kind: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [body for found, body in MARKER.findall(text) if found == kind]


def commands(block: str) -> list[str]:
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_every_fenced_block_says_what_it_is() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    fences = len(re.findall(r"^```", text, re.M)) // 2
    assert fences == len(MARKER.findall(text)), "a README code block has no readme-example marker"


def test_the_target_contract_example_loads_verbatim(tmp_path: Path) -> None:
    (block,) = readme_blocks("rsi.toml")
    shutil.copytree(ROOT / "target_repo", tmp_path / "target", ignore=shutil.ignore_patterns(".git"))
    (tmp_path / "target" / "rsi.toml").write_text(block, encoding="utf-8")
    spec = TargetSpec.load(tmp_path / "target")
    assert spec.metric.heldout == "teacher-regression" and spec.budget.steps == 3000


@pytest.mark.parametrize("command", [c for block in readme_blocks("runnable") for c in commands(block)])
def test_runnable_examples_succeed(command: str) -> None:
    argv = command.split()
    assert argv[0] == "rsi", command
    done = subprocess.run(
        [RSI, *argv[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    assert done.stdout.strip(), command


@pytest.mark.parametrize("command", [c for block in readme_blocks("make") for c in commands(block)])
def test_make_examples_name_real_targets(command: str) -> None:
    argv = command.split()
    assert argv[0] == "make" and len(argv) == 2, command
    done = subprocess.run(["make", "-n", argv[1]], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (command, done.stderr)


@pytest.mark.bwrap
@pytest.mark.slow
def test_the_bootstrapping_headline_reproduces(tmp_path: Path) -> None:
    """The README's bootstrapping commands, as written but for the run directory (here a temporary
    one): at least three promotions, each student beating its teacher, shown in the report."""
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    (block,) = readme_blocks("bootstrap")
    run_dir = str(tmp_path / "bootstrap")
    for command in commands(block):
        argv = command.replace("runs/bootstrap", run_dir).split()
        assert argv[0] == "rsi", command
        done = subprocess.run([RSI, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    assert "successors: " in done.stdout  # rsi report prints the headline too
    section = (tmp_path / "bootstrap" / "report.md").read_text().split("## Successors", 1)[1]
    found = re.search(r"(\d+) promotion\(s\), (\d+) of them a student beating its teacher", section)
    assert found is not None and int(found[2]) >= 3, section
    assert (tmp_path / "bootstrap" / "succession.png").is_file()
