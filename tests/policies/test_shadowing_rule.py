"""The shadowing rule: judged by a file's importable name and location, across renames."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.target import TargetSpec
from policies.base import CheckContext, RuleSpec
from policies.rules.shadowing import ShadowingRule, importable_name
from sandbox.patch import parse_diff
from tests.conftest import TARGET, file_diff


def _rule(**params: object) -> ShadowingRule:
    spec = RuleSpec(id="shadowing", type="shadowing", verdict="review", params=params)
    return ShadowingRule(spec, TargetSpec.load(TARGET))


def _findings(diff: str, tree: Path | None = None, **params: object) -> list[str]:
    ctx = CheckContext(diff=diff, changes=parse_diff(diff), tree=tree)
    return [f.message for f in _rule(**params).check(ctx)]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("numpy.py", "numpy"),
        ("json/__init__.py", "json"),
        ("json/decoder.py", "json"),
        ("numpy.cpython-311-x86_64-linux-gnu.so", "numpy"),
        ("abc.pyc", "abc"),
        ("README.md", None),
        ("my-dir/x.py", None),
    ],
)
def test_importable_names(path: str, name: str | None) -> None:
    assert importable_name(path) == name


@pytest.mark.parametrize(
    "path",
    [
        "colorsys.py",
        "unittest/__init__.py",
        "pytest.py",
        "_pytest/x.py",
        "numpy/__init__.py",
        "sitecustomize.py",
        "sub/usercustomize.py",
        "lib/site.pth",
        "conftest.py",
        "scripts/conftest.py",
        "pytest.ini",
        "tox.ini",
        ".pytest.ini",
    ],
)
def test_new_shadowing_files_are_found(path: str) -> None:
    (message,) = _findings(file_diff(path, None, "x = 1\n"))
    assert path in message


@pytest.mark.parametrize(
    "path", ["model.py", "tests/conftest.py", "tests/test_json.py", "scripts/json.py", "notes/json.txt"]
)
def test_ordinary_files_are_not(path: str) -> None:
    assert _findings(file_diff(path, None, "x = 1\n")) == []


def test_a_rename_onto_a_protected_name_counts_and_a_deletion_does_not() -> None:
    rename = "diff --git a/helpers.py b/typing.py\nsimilarity index 100%\nrename from helpers.py\nrename to typing.py\n"
    assert _findings(rename) and "typing.py" in _findings(rename)[0]
    assert _findings(file_diff("json.py", "x = 1\n", None)) == []


def test_pyproject_is_judged_by_its_whole_text_when_the_tree_is_known(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "t"\nversion = "2"\n\n[tool.pytest.ini_options]\naddopts = "--co"\n'
    )
    diff = file_diff(
        "pyproject.toml", '[project]\nname = "t"\nversion = "1"\n', '[project]\nname = "t"\nversion = "2"\n'
    )
    assert _findings(diff) == []  # the hunk alone shows no pytest section
    assert _findings(diff, tree=tmp_path)


def test_params_extend_and_narrow_the_names() -> None:
    assert _findings(file_diff("torch.py", None, "x = 1\n"), names=["torch"])
    assert _findings(file_diff("json.py", None, "x = 1\n"), stdlib=False, installed=False) == []
    assert _findings(file_diff("lib/conftest.py", None, "x = 1\n"), test_dirs=["lib"]) == []
