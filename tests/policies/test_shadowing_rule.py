"""The shadowing rule: judged by a file's importable name and location, across renames."""

from __future__ import annotations

import importlib.machinery
import shutil
from pathlib import Path

import pytest

from core.contracts import Finding
from core.target import TargetSpec
from policies.base import CheckContext, RuleSpec
from policies.rules.shadowing import LOADER_ORDER, ShadowingRule, import_winner, importable_name
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


# A file that takes the place of the tree's own module: every entry that wins over the shadowed
# one by FileFinder's order (so the generator follows importlib.machinery, not a list of names).
EXTENSIONS = importlib.machinery.EXTENSION_SUFFIXES
PACKAGE_INITS = [f"__init__{s}" for _, s in LOADER_ORDER]
SHADOWED = {
    # kind -> (the file the tree has, the entries that would win over it, relative to its directory)
    "module": ("{x}.py", [f"{{x}}/{init}" for init in PACKAGE_INITS] + [f"{{x}}{s}" for s in EXTENSIONS]),
    "package": ("{x}/__init__.py", [f"{{x}}/__init__{s}" for s in EXTENSIONS]),
    "namespace": ("{x}/part.py", [f"{{x}}{s}" for _, s in LOADER_ORDER]),
}
PLACES = {"top": ("", "predict"), "nested": ("lib/", "ops")}
"""Where the shadowed module lives: predict.py is protected; lib/ops is not (nested packages)."""


def _shadow_cases() -> list[tuple[str, str, str, str]]:
    cases = []
    for kind, (_, winners) in SHADOWED.items():
        for winner in winners:
            for spelling in ("add", "rename"):
                for place in PLACES:
                    cases.append((kind, winner, spelling, place))
    return cases


def _tree_with(tmp_path: Path, kind: str, place: str) -> tuple[Path, str]:
    """The target with the shadowed module of this kind at this place; its path in the tree."""
    tree = tmp_path / "tree"
    shutil.copytree(TARGET, tree)
    prefix, name = PLACES[place]
    (tree / "lib").mkdir()
    (tree / "lib/__init__.py").write_text("")
    if place == "top" and kind != "module":
        (tree / "predict.py").unlink()  # the protected name is then a package or a namespace
    shadowed = prefix + SHADOWED[kind][0].format(x=name)
    (tree / shadowed).parent.mkdir(parents=True, exist_ok=True)
    (tree / shadowed).write_text("def predict_file(*a):\n    return None\n")
    (tree / "helpers.py").write_text("x = 1\n")
    return tree, shadowed


def _shadowing_patch(tree: Path, new: str, spelling: str) -> str:
    """Add `new` to the tree (or rename helpers.py onto it), returning the diff."""
    (tree / new).parent.mkdir(parents=True, exist_ok=True)
    if spelling == "add":
        (tree / new).write_text("def predict_file(*a):\n    return 0\n")
        return file_diff(new, None, "def predict_file(*a):\n    return 0\n")
    (tree / "helpers.py").rename(tree / new)
    return (
        f"diff --git a/helpers.py b/{new}\nsimilarity index 100%\nrename from helpers.py\nrename to {new}\n"
    )


def _sibling_findings(diff: str, tree: Path, protected: list[str]) -> list[Finding]:
    spec = TargetSpec.load(TARGET)
    spec.protected.paths = protected
    rule = ShadowingRule(RuleSpec(id="shadowing", type="shadowing", verdict="review"), spec)
    return rule.check(CheckContext(diff=diff, changes=parse_diff(diff), tree=tree))


@pytest.mark.parametrize(("kind", "winner", "spelling", "place"), _shadow_cases())
def test_a_file_that_takes_the_place_of_a_module_of_the_tree_is_found(
    tmp_path: Path, kind: str, winner: str, spelling: str, place: str
) -> None:
    tree, shadowed = _tree_with(tmp_path, kind, place)
    prefix, name = PLACES[place]
    new = prefix + winner.format(x=name)
    assert import_winner(_tree_files(tree), prefix.rstrip("/"), name) == shadowed.replace("part.py", "")
    diff = _shadowing_patch(tree, new, spelling)
    assert _real_winner(tree, prefix, name) == new  # Python itself loads the new file now
    (finding,) = _sibling_findings(diff, tree, ["rsi.toml", "tests/", "predict.py", "predict/"])
    assert new in finding.message and f"import {name}" in finding.message
    assert finding.verdict == ("deny" if place == "top" else "review"), finding.message


@pytest.mark.parametrize(
    "new", ["extra.py", "extras/__init__.py", "lib/more.py", "lib/sub/__init__.py", "predict_utils.py"]
)
def test_an_honest_new_module_or_package_is_not(tmp_path: Path, new: str) -> None:
    tree, _ = _tree_with(tmp_path, "module", "nested")
    for spelling in ("add", "rename"):
        diff = _shadowing_patch(tree, new if spelling == "add" else "re_" + new, spelling)
        assert _sibling_findings(diff, tree, ["predict.py", "tests/"]) == []


def test_without_the_tree_a_package_beside_a_protected_module_is_still_denied() -> None:
    """The red-team patch: predict/__init__.py beside the protected predict.py, judged from the diff
    alone (the rule knows rsi.toml's literal protected paths)."""
    diff = file_diff("predict/__init__.py", None, "def predict_file(*a):\n    return None\n")
    (finding,) = _rule().check(CheckContext(diff=diff, changes=parse_diff(diff)))
    assert finding.verdict == "deny" and "instead of predict.py" in finding.message


def test_a_module_added_to_the_test_directory_comes_before_the_roots(tmp_path: Path) -> None:
    tree, _ = _tree_with(tmp_path, "module", "top")
    (finding,) = _sibling_findings(_shadowing_patch(tree, "tests/model.py", "add"), tree, ["tests/"])
    assert "tests/ first on sys.path" in finding.message and finding.verdict == "deny"


def test_the_winner_follows_filefinder_on_disk(tmp_path: Path) -> None:
    """import_winner, on every subset of the entries one name can have, is what FileFinder loads."""
    entries = ["x.py", "x.pyc", f"x{EXTENSIONS[0]}", "x.so", "x/__init__.py", "x/__init__.pyc", "x/part.py"]
    for mask in range(1, 2 ** len(entries)):
        chosen = [e for i, e in enumerate(entries) if mask >> i & 1]
        folder = tmp_path / str(mask)
        for entry in chosen:
            (folder / entry).parent.mkdir(parents=True, exist_ok=True)
            (folder / entry).write_bytes(b"")
        assert import_winner(set(chosen), "", "x") == _real_winner(folder, "", "x"), chosen


def _real_winner(tree: Path, prefix: str, name: str) -> str | None:
    from importlib._bootstrap_external import _get_supported_file_loaders  # type: ignore[import-not-found]

    folder = tree / prefix if prefix else tree
    spec = importlib.machinery.FileFinder(str(folder), *_get_supported_file_loaders()).find_spec(name)
    if spec is None:
        return None
    if spec.origin is None:  # a namespace package
        return Path(next(iter(spec.submodule_search_locations or []))).relative_to(tree).as_posix() + "/"
    return Path(spec.origin).relative_to(tree).as_posix()


def _tree_files(tree: Path) -> set[str]:
    return {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}
