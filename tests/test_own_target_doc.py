"""docs/own-target.md, followed step by step: its files written where it says, its commands run in
order in a fresh home directory holding the example repo it starts from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.target import TargetSpec
from sandbox.heldout import load_provider
from tests.conftest import ROOT
from tests.rsi.test_own_target import write_target

DOC = ROOT / "docs" / "own-target.md"
STEP = re.compile(r"<!-- own-target: (file (\S+)|shell|text) -->\n```[a-z]*\n(.*?)```", re.S)


def steps() -> list[tuple[str, str, str]]:
    """(kind, file, body) of every marked block, in the page's order."""
    return [
        ("file" if kind.startswith("file") else kind, file, body)
        for kind, file, body in STEP.findall(DOC.read_text())
    ]


def test_every_block_of_the_page_says_what_it_is() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert len(re.findall(r"^```", text, re.M)) // 2 == len(steps())


@pytest.mark.bwrap
def test_the_page_takes_an_existing_repo_to_a_first_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_target(home, home / "centroids-data" / "heldout.npz", contract=False)
    env = {
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "COLUMNS": "120",
        "GIT_AUTHOR_NAME": "owner",
        "GIT_AUTHOR_EMAIL": "owner@example.org",
        "GIT_COMMITTER_NAME": "owner",
        "GIT_COMMITTER_EMAIL": "owner@example.org",
    }
    ran = 0
    for kind, file, body in steps():
        if kind == "file":
            (home / file).parent.mkdir(parents=True, exist_ok=True)
            (home / file).write_text(body, encoding="utf-8")
        elif kind == "shell":
            done = subprocess.run(
                ["bash", "-e", "-c", body], cwd=home, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, (body, done.stdout[-2000:], done.stderr[-2000:])
            ran += 1
    assert ran >= 4
    spec = TargetSpec.load(home / "centroids")
    assert spec.metric.name == "accuracy" and spec.metric.direction == "higher"
    assert (home / "centroids-runs" / "first" / "report.md").is_file()
    provider = load_provider(home / "centroids-data" / "provider.py")
    heldout = provider.selection(3, 40)
    assert provider.scorer is not None and heldout.inputs.shape == (40, 3)
    assert provider.scorer(heldout.labels.astype(float), heldout.labels) == 1.0
    assert os.path.exists(home / "centroids-data" / "heldout.npz")
    assert set(np.load(home / "centroids-data" / "heldout.npz").files) >= {"inputs", "labels"}
