"""Patch checks: every unsafe shape is rejected with a reason, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsi.errors import PatchError
from sandbox.patch import apply_diff, check_relative_path, parse_diff
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
