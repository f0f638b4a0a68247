"""Patch checks: every unsafe shape is rejected with a reason, before anything runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import PatchError
from sandbox.patch import apply_diff, check_relative_path, parse_diff
from sandbox.tree import tree_id
from tests.conftest import file_diff


def test_parse_counts_added_and_removed_lines() -> None:
    diff = file_diff("config.py", "a = 1\nb = 2\n", "a = 1\nb = 3\nc = 4\n")
    (change,) = parse_diff(diff)
    assert change.path == "config.py" and change.status == "modified"
    assert [line.text for line in change.added] == ["b = 3", "c = 4"]
    assert [line.line_no for line in change.added] == [2, 3]
    assert [line.text for line in change.removed] == ["b = 2"]


def test_added_and_deleted_files_are_classified() -> None:
    added = parse_diff(file_diff("new.py", None, "x = 1\n"))[0]
    deleted = parse_diff(file_diff("old.py", "x = 1\n", None))[0]
    assert (added.status, added.path) == ("added", "new.py")
    assert (deleted.status, deleted.path) == ("deleted", "old.py")


@pytest.mark.parametrize(
    "path, reason",
    [
        ("../outside.py", "escapes"),
        ("a/../../outside.py", "escapes"),
        ("/etc/passwd", "absolute"),
        (".git/config", ".git"),
        ("sub/.git/hooks/pre-commit", ".git"),
    ],
)
def test_unsafe_paths_are_rejected(path: str, reason: str) -> None:
    with pytest.raises(PatchError, match=reason):
        check_relative_path(path)


def test_diff_with_dotdot_path_is_rejected_by_the_parser() -> None:
    diff = "--- a/../evil.py\n+++ b/../evil.py\n@@ -0,0 +1 @@\n+x = 1\n"
    with pytest.raises(PatchError, match="escapes"):
        parse_diff(diff)


def test_symlink_creation_is_rejected() -> None:
    diff = (
        "diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n"
        "@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n"
    )
    with pytest.raises(PatchError, match="symbolic link"):
        parse_diff(diff)


def test_mode_change_is_rejected_unless_allowed() -> None:
    diff = "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n"
    with pytest.raises(PatchError, match="mode"):
        parse_diff(diff)


def test_binary_patch_is_rejected() -> None:
    diff = "diff --git a/blob.bin b/blob.bin\nnew file mode 100644\nindex 0000000..e69de29\nBinary files /dev/null and b/blob.bin differ\n"
    with pytest.raises(PatchError, match="binary"):
        parse_diff(diff)


def test_garbage_is_not_a_diff() -> None:
    with pytest.raises(PatchError):
        parse_diff("this is not a diff\n@@ nonsense\n")


def test_apply_changes_the_tree(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text("lr = 0.01\n")
    apply_diff(file_diff("config.py", "lr = 0.01\n", "lr = 0.03\n"), tmp_path)
    assert (tmp_path / "config.py").read_text() == "lr = 0.03\n"


def test_diff_that_does_not_apply_is_rejected_with_reason(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text("lr = 0.5\n")
    with pytest.raises(PatchError, match="does not apply cleanly"):
        apply_diff(file_diff("config.py", "lr = 0.01\n", "lr = 0.03\n"), tmp_path)
    assert (tmp_path / "config.py").read_text() == "lr = 0.5\n"


def test_empty_diff_is_a_no_op(tmp_path: Path) -> None:
    apply_diff("", tmp_path)
    assert parse_diff("") == []


# -- applying where the host cannot be read -----------------------------------------------------

SECRET = "host-secret-7f3a9c"


@pytest.fixture
def stage_and_secret(tmp_path: Path) -> tuple[Path, Path]:
    """A stage with one file, and a secret file next to it (outside the stage) on the host."""
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "config.py").write_text("lr = 0.01\n")
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{SECRET}\n")
    return stage, secret


def _tree_text(root: Path) -> str:
    return "".join(
        p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and not p.is_symlink()
    )


def _copy_diff(kind: str, source: str, target: str = "stolen.txt", markers: bool = False) -> str:
    text = (
        f"diff --git a/{source} b/{target}\nsimilarity index 100%\n{kind} from {source}\n{kind} to {target}\n"
    )
    if markers:
        text += f"--- a/{source}\n+++ b/{target}\n@@ -1 +1 @@\n-{SECRET}\n+{SECRET}!\n"
    return text


@pytest.mark.parametrize("kind", ["copy", "rename"])
@pytest.mark.parametrize("markers", [False, True], ids=["no-markers", "with-markers"])
@pytest.mark.parametrize("where", ["absolute", "dotdot", "etc-hostname"])
def test_copy_or_rename_from_outside_the_stage_never_reads_the_host(
    stage_and_secret: tuple[Path, Path], kind: str, markers: bool, where: str
) -> None:
    stage, secret = stage_and_secret
    source = {"absolute": str(secret), "dotdot": "../secret.txt", "etc-hostname": "/etc/hostname"}[where]
    diff = _copy_diff(kind, source, markers=markers)
    with pytest.raises(PatchError) as caught:
        apply_diff(diff, stage)
    assert SECRET not in str(caught.value)
    assert "absolute" in str(caught.value) or "escapes" in str(caught.value) or "prefix" in str(caught.value)
    assert sorted(p.name for p in stage.iterdir()) == ["config.py"]
    assert SECRET not in _tree_text(stage)


@pytest.mark.parametrize("kind", ["copy", "rename"])
@pytest.mark.parametrize("source", ["tests", "tests/", "."])
def test_copy_or_rename_from_a_directory_is_rejected_cleanly(
    stage_and_secret: tuple[Path, Path], kind: str, source: str
) -> None:
    stage, _ = stage_and_secret
    (stage / "tests").mkdir()
    (stage / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    with pytest.raises(PatchError):
        apply_diff(_copy_diff(kind, source, "helpers.py"), stage)
    assert sorted(p.name for p in stage.iterdir()) == ["config.py", "tests"]


@pytest.mark.parametrize("kind", ["copy", "rename"])
def test_git_names_that_disagree_with_the_rename_headers_are_rejected(
    stage_and_secret: tuple[Path, Path], kind: str
) -> None:
    stage, _ = stage_and_secret
    diff = f"diff --git a/config.py b/stolen.txt\n{kind} from ../secret.txt\n{kind} to stolen.txt\n"
    with pytest.raises(PatchError):
        apply_diff(diff, stage)
    inside = f"diff --git a/config.py b/other.py\n{kind} from config.py\n{kind} to stolen.py\n"
    with pytest.raises(PatchError, match="disagree"):
        apply_diff(inside, stage)
    assert sorted(p.name for p in stage.iterdir()) == ["config.py"]


@pytest.mark.parametrize(
    "header",
    [
        "old name ../secret.txt",
        "new name x",
        "copy of ../secret.txt",
        "GIT-secret from /etc/hostname",
        "from-file x",
    ],
)
def test_unknown_header_lines_are_rejected_naming_the_line(
    stage_and_secret: tuple[Path, Path], header: str
) -> None:
    stage, _ = stage_and_secret
    diff = f"diff --git a/config.py b/config.py\n{header}\n"
    with pytest.raises(PatchError, match=r"line 2: unsupported header"):
        apply_diff(diff, stage)


def test_marker_paths_must_agree_with_the_git_header(stage_and_secret: tuple[Path, Path]) -> None:
    stage, _ = stage_and_secret
    diff = "diff --git a/config.py b/config.py\n--- a/../secret.txt\n+++ b/config.py\n@@ -1 +1 @@\n-x\n+y\n"
    with pytest.raises(PatchError, match="escapes"):
        apply_diff(diff, stage)
    diff = (
        "diff --git a/config.py b/config.py\n--- a/other.py\n+++ b/config.py\n@@ -1 +1 @@\n-lr = 0.01\n+y\n"
    )
    with pytest.raises(PatchError, match="say"):
        apply_diff(diff, stage)


def test_a_symlinked_directory_inside_the_stage_is_never_followed(
    stage_and_secret: tuple[Path, Path],
) -> None:
    stage, secret = stage_and_secret
    (stage / "sub").symlink_to(secret.parent)
    (stage / "link.py").symlink_to(secret)
    for diff in (
        file_diff("sub/secret.txt", f"{SECRET}\n", "overwritten\n"),
        file_diff("sub/new.py", None, "x = 1\n"),
        file_diff("link.py", f"{SECRET}\n", "y\n"),
        "diff --git a/link.py b/stolen.py\nsimilarity index 100%\ncopy from link.py\ncopy to stolen.py\n",
        "diff --git a/sub/secret.txt b/stolen.py\nsimilarity index 100%\nrename from sub/secret.txt\nrename to stolen.py\n",
    ):
        with pytest.raises(PatchError) as caught:
            apply_diff(diff, stage)
        assert "symbolic link" in str(caught.value) and SECRET not in str(caught.value)
    assert secret.read_text() == f"{SECRET}\n"
    assert not (secret.parent / "new.py").exists() and not (stage / "stolen.py").exists()


def test_crlf_and_missing_final_newlines_are_kept_byte_for_byte(tmp_path: Path) -> None:
    (tmp_path / "dos.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    (tmp_path / "tail.txt").write_bytes(b"a\nb")
    diff = (
        "diff --git a/dos.txt b/dos.txt\n--- a/dos.txt\n+++ b/dos.txt\n@@ -1,3 +1,3 @@\n"
        " one\r\n-two\r\n+TWO\r\n three\r\n"
        "diff --git a/tail.txt b/tail.txt\n--- a/tail.txt\n+++ b/tail.txt\n@@ -1,2 +1,2 @@\n"
        " a\n-b\n\\ No newline at end of file\n+b\n"
    )
    apply_diff(diff, tmp_path)
    assert (tmp_path / "dos.txt").read_bytes() == b"one\r\nTWO\r\nthree\r\n"
    assert (tmp_path / "tail.txt").read_bytes() == b"a\nb\n"


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    # Bytes, not text=True: universal newlines would turn the "\r\n" of CRLF lines into "\n".
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "core.autocrlf=false", *args],
        cwd=repo,
        input=stdin.encode() if stdin is not None else None,
        capture_output=True,
        env=env,
        check=True,
    )
    return done.stdout.decode()


def _git_diff(before: dict[str, bytes], after: dict[str, bytes], tmp: Path, renames: bool) -> tuple[str, str]:
    """(diff as `git diff` writes it, git tree id of `after`) for two small trees."""
    repo = tmp / "git"
    repo.mkdir()
    _git(repo, "init", "-q")
    _write_tree(repo, before)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "before")
    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    _write_tree(repo, after)
    _git(repo, "add", "-A")
    diff = _git(repo, "diff", "--cached", "--no-color", "-M" if renames else "--no-renames", "HEAD")
    return diff, _git(repo, "write-tree").strip()


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def test_new_deleted_and_renamed_files_match_git(tmp_path: Path) -> None:
    body = b"".join(b"line %d\n" % i for i in range(20))
    before = {"keep.py": b"a = 1\n", "gone.py": b"x = 1\n", "pkg/old.py": body}
    after = {
        "keep.py": b"a = 2\n",
        "pkg/new/moved.py": body.replace(b"line 7\n", b"line seven\n"),
        "added.py": b"new\n",
    }
    diff, expected_tree = _git_diff(before, after, tmp_path, renames=True)
    assert "rename from pkg/old.py" in diff
    stage = tmp_path / "stage"
    stage.mkdir()
    _write_tree(stage, before)
    apply_diff(diff, stage)
    assert tree_id(stage) == expected_tree
    assert not (stage / "pkg" / "old.py").exists()


line_text = st.sampled_from(["x = 1", "y = 2", "", "def f():", "    return 3", "# note", "z\r", "über"])
file_body = st.lists(line_text, max_size=12).flatmap(
    lambda lines: st.sampled_from(["\n", ""]).map(
        lambda end: ("\n".join(lines) + (end if lines else "")).encode()
    )
)
file_name = st.sampled_from(["a.py", "b.py", "dir/c.py", "dir/sub/d.txt", "e f.py"])
tree = st.dictionaries(file_name, file_body, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=tree, after=tree, renames=st.booleans())
def test_random_patches_give_the_same_tree_as_git_apply(
    tmp_path_factory: pytest.TempPathFactory, before: dict[str, bytes], after: dict[str, bytes], renames: bool
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    diff, expected_tree = _git_diff(before, after, tmp, renames)
    ours = tmp / "ours"
    ours.mkdir()
    _write_tree(ours, before)
    apply_diff(diff, ours)
    assert tree_id(ours) == expected_tree
    theirs = tmp / "theirs"
    theirs.mkdir()
    _write_tree(theirs, before)
    _git(theirs, "init", "-q")
    if diff:
        _git(theirs, "apply", "--whitespace=nowarn", "-", stdin=diff)
    assert tree_id(theirs) == expected_tree


def test_the_lineage_commit_uses_the_same_applier(
    stage_and_secret: tuple[Path, Path], tmp_path: Path
) -> None:
    from sandbox.lineage import Lineage

    stage, secret = stage_and_secret
    lineage = Lineage.create(tmp_path / "lineage", stage)
    head = lineage.head()
    with pytest.raises(PatchError) as caught:
        lineage.commit_candidate(_copy_diff("copy", str(secret)), generation=1, message="steal")
    assert SECRET not in str(caught.value)
    assert lineage.head() == head and not (lineage.path / "stolen.txt").exists()
    lineage.commit_candidate(file_diff("config.py", "lr = 0.01\n", "lr = 0.02\n"), generation=1, message="ok")
    assert (lineage.path / "config.py").read_text() == "lr = 0.02\n" and lineage.head() != head
