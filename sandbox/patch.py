"""Patch parsing, safety checks and application, before anything of the candidate runs.

A diff is parsed by one strict parser that knows every header form it accepts (anything else is
rejected, naming the line); every path in every header is checked (inside the tree, nothing under
.git, no NUL or control characters, the `diff --git` names agreeing with the rename/copy and
`---`/`+++` names). The parsed patch is then applied by pure Python in a fresh copy of the parent:
files are only ever opened inside that copy, by checked relative paths, one directory at a time
and never through a symbolic link — nothing outside the stage can be read, so no host file can
flow into a candidate. After writing, the whole tree is compared with what the diff text alone
implies: exactly the named paths changed, each to the content planned from the parent's files
and the diff's lines.

    changes = parse_diff(text)                  # raises PatchError with a clear reason
    apply_diff(text, workdir)                   # raises PatchError if it does not apply cleanly
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from core.diff import UNPARSEABLE, AddedLine, FileChange, change_stat
from core.errors import PatchError, RsiError

REGULAR_MODES = ("100644", "100755")
SYMLINK_MODE = "120000"
HUNK_HEADER = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)")
INDEX_LINE = re.compile(r"index [0-9a-f]+\.\.[0-9a-f]+(?: (\d+))?")
SIMILARITY_LINE = re.compile(r"(?:dis)?similarity index \d{1,3}%")
NO_NEWLINE = "\\ No newline at end of file"
REGENERATE = "Produce the diff with `git diff` against the parent commit."


@dataclass
class HunkLine:
    kind: Literal[" ", "+", "-"]
    text: str
    """The line's content without its line feed (a carriage return stays part of it)."""
    newline: bool = True
    """False when "\\ No newline at end of file" follows the line."""

    def raw(self) -> bytes:
        return self.text.encode("utf-8", "surrogateescape") + (b"\n" if self.newline else b"")


@dataclass
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    line_no: int
    """Line of the `@@` header in the diff text (1-based), for error messages."""
    lines: list[HunkLine] = field(default_factory=list)
    applied_old_start: int | None = None
    applied_new_start: int | None = None
    """Where the hunk was applied (1-based, in the old and the new file), once it has been: the
    applier finds a hunk by its context as `git apply` does, so the header's own numbers may be
    off. The changed lines' numbers come from here, never from the header: a header shifted on
    purpose must not point the policy's rules at other lines than the ones the diff changes."""

    def preimage(self) -> list[bytes]:
        return [line.raw() for line in self.lines if line.kind != "+"]

    def postimage(self) -> list[bytes]:
        return [line.raw() for line in self.lines if line.kind != "-"]


@dataclass
class FilePatch:
    """One file section of a diff, as the applier will carry it out."""

    line_no: int
    old_path: str | None
    """Where the old content comes from (None for a new file)."""
    new_path: str | None
    """Where the new content goes (None for a deletion)."""
    kind: Literal["added", "modified", "deleted", "renamed", "copied"] = "modified"
    old_mode: str | None = None
    new_mode: str | None = None
    binary: bool = False
    hunks: list[Hunk] = field(default_factory=list)


def diff_sha256(diff: str) -> str:
    return hashlib.sha256(diff.encode("utf-8")).hexdigest()


def check_relative_path(path: str) -> str:
    """Return the normalised path, or raise if it leaves the tree or touches .git."""
    if "\x00" in path or path.strip() == "":
        raise PatchError(f"patch names an empty or NUL-containing path {path!r}; rejected.")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        raise PatchError(f"patch names a path with a control character {path!r}; rejected.")
    if path.startswith("/") or PurePosixPath(path).is_absolute():
        raise PatchError(
            f"patch writes to an absolute path {path!r}; only paths inside the target are allowed."
        )
    normal = posixpath.normpath(path)
    if normal in ("..", ".") or normal.startswith("../") or "/../" in f"/{path}/":
        raise PatchError(f"patch path {path!r} escapes the target tree with '..'; rejected.")
    parts = [part.lower() for part in normal.split("/")]
    if ".git" in parts:
        raise PatchError(f"patch changes {path!r} under .git/; the repository's metadata is off limits.")
    return normal


# -- parsing -------------------------------------------------------------------------------------


def _unquote(name: str, line_no: int) -> str:
    """A path as git writes it: plain, or C-quoted ("...") with backslash and octal escapes."""
    if not name.startswith('"'):
        return name
    if len(name) < 2 or not name.endswith('"'):
        raise PatchError(f"line {line_no}: unterminated quoted path {name!r}. {REGENERATE}")
    body, out, index = name[1:-1], bytearray(), 0
    simple = {"n": 10, "t": 9, '"': 34, "\\": 92, "a": 7, "b": 8, "f": 12, "r": 13, "v": 11}
    while index < len(body):
        char = body[index]
        if char != "\\":
            out += char.encode("utf-8", "surrogateescape")
            index += 1
        elif body[index + 1 : index + 2] in simple:
            out.append(simple[body[index + 1]])
            index += 2
        elif re.fullmatch(r"[0-3][0-7]{2}", body[index + 1 : index + 4]):
            out.append(int(body[index + 1 : index + 4], 8))
            index += 4
        else:
            raise PatchError(f"line {line_no}: bad escape in quoted path {name!r}. {REGENERATE}")
    return out.decode("utf-8", "surrogateescape")


def _prefixed(name: str, prefix: str, line_no: int) -> str:
    """The tree path of an `a/…`/`b/…` name, checked."""
    name = _unquote(name, line_no)
    if not name.startswith(prefix):
        raise PatchError(
            f"line {line_no}: path {name!r} lacks the {prefix!r} prefix of a git diff. {REGENERATE}"
        )
    return check_relative_path(name[len(prefix) :])


def _marker_path(line: str, marker: str, prefix: str, line_no: int) -> str | None:
    """The path of a `---`/`+++` line (None for /dev/null); a tab ends the name (a timestamp follows)."""
    name = line[len(marker) :]
    if not name.startswith('"'):
        name = name.split("\t", 1)[0]
    if name == "/dev/null":
        return None
    return _prefixed(name, prefix, line_no)


def _git_names(rest: str, line_no: int) -> list[tuple[str, str]]:
    """Every way `diff --git A B` splits into two prefixed names (spaces make it ambiguous)."""
    if rest.startswith('"'):
        end = rest.find('" ', 1)
        while end > 0 and rest[end - 1] == "\\":
            end = rest.find('" ', end + 1)
        if end < 0:
            raise PatchError(f"line {line_no}: malformed `diff --git` names {rest!r}. {REGENERATE}")
        return [(rest[: end + 1], rest[end + 2 :])]
    splits = []
    for match in re.finditer(" ", rest):
        left, right = rest[: match.start()], rest[match.end() :]
        if left.startswith("a/") and (right.startswith("b/") or right.startswith('"b/')):
            splits.append((left, right))
    if not splits:
        raise PatchError(f"line {line_no}: malformed `diff --git` names {rest!r}. {REGENERATE}")
    return splits


class _Parser:
    def __init__(self, text: str) -> None:
        # Split on line feeds only: a carriage return (or any other break str.splitlines knows)
        # belongs to the line's content, exactly as git reads it.
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.index = 0

    def line_no(self) -> int:
        return self.index + 1

    def peek(self) -> str | None:
        return self.lines[self.index] if self.index < len(self.lines) else None

    def take(self) -> str:
        line = self.lines[self.index]
        self.index += 1
        return line

    def parse(self) -> list[FilePatch]:
        if not any(line.startswith(("diff --git ", "--- ")) for line in self.lines):
            raise PatchError(
                "patch has text but no file changes (no `diff --git` or `---` line); rejected. " + REGENERATE
            )
        patches: list[FilePatch] = []
        while (line := self.peek()) is not None:
            if line.startswith("diff --git "):
                patches.append(self._git_section())
            elif line.startswith("--- "):
                patches.append(self._plain_section())
            elif line.strip() == "" and all(rest.strip() == "" for rest in self.lines[self.index :]):
                break
            else:
                raise PatchError(
                    f"line {self.line_no()} is not part of a unified diff: {line[:80]!r}. "
                    f"Only `diff --git` sections and `---`/`+++`/`@@` hunks are accepted. {REGENERATE}"
                )
        return patches

    def _plain_section(self) -> FilePatch:
        start = self.line_no()
        old = _marker_path(self.take(), "--- ", "a/", start)
        plus = self.peek()
        if plus is None or not plus.startswith("+++ "):
            raise PatchError(f"line {start + 1}: a `---` line must be followed by `+++`. {REGENERATE}")
        new = _marker_path(self.take(), "+++ ", "b/", start + 1)
        if old is None and new is None:
            raise PatchError(f"line {start}: both sides of the file are /dev/null. {REGENERATE}")
        if old is not None and new is not None and old != new:
            raise PatchError(
                f"line {start}: `---` names {old!r} but `+++` names {new!r}; a rename needs a "
                f"`diff --git` header with `rename from`/`rename to`. {REGENERATE}"
            )
        kind: Literal["added", "modified", "deleted"] = (
            "added" if old is None else "deleted" if new is None else "modified"
        )
        patch = FilePatch(line_no=start, old_path=old, new_path=new, kind=kind)
        patch.hunks = self._hunks(patch)
        return patch

    def _git_section(self) -> FilePatch:
        start = self.line_no()
        splits = _git_names(self.take()[len("diff --git ") :], start)
        headers: dict[str, str] = {}
        while (line := self.peek()) is not None and not line.startswith(("diff --git ", "--- ", "@@")):
            self._header(line, headers)
            self.take()
        a_name, b_name = self._choose_names(splits, headers, start)
        patch = self._section_kind(start, a_name, b_name, headers)
        line = self.peek()
        if line is not None and line.startswith("--- "):
            old = _marker_path(self.take(), "--- ", "a/", self.index)
            plus = self.peek()
            if plus is None or not plus.startswith("+++ "):
                raise PatchError(f"line {self.index}: a `---` line must be followed by `+++`. {REGENERATE}")
            new = _marker_path(self.take(), "+++ ", "b/", self.index)
            if (old, new) != (patch.old_path if patch.kind != "added" else None, patch.new_path):
                raise PatchError(
                    f"line {self.index - 1}: `---`/`+++` name {old!r}/{new!r} but the `diff --git` "
                    f"header at line {start} says {patch.old_path!r}/{patch.new_path!r}. {REGENERATE}"
                )
            patch.hunks = self._hunks(patch)
        elif line is not None and line.startswith("@@"):
            raise PatchError(f"line {self.line_no()}: a hunk without `---`/`+++` lines. {REGENERATE}")
        return patch

    def _header(self, line: str, headers: dict[str, str]) -> None:
        """One extended header line; only the forms below are understood, anything else is refused."""
        line_no = self.line_no()
        keys = (
            "old mode ",
            "new mode ",
            "deleted file mode ",
            "new file mode ",
            "rename from ",
            "rename to ",
            "copy from ",
            "copy to ",
        )
        for key in keys:
            if line.startswith(key):
                name = key.strip()
                if name in headers:
                    raise PatchError(f"line {line_no}: `{name}` appears twice in one file section.")
                value = line[len(key) :]
                if "mode" in name:
                    if not re.fullmatch(r"[0-7]{6}", value):
                        raise PatchError(f"line {line_no}: malformed file mode in {line[:80]!r}.")
                else:
                    value = check_relative_path(_unquote(value, line_no))
                headers[name] = value
                return
        if INDEX_LINE.fullmatch(line):
            mode = INDEX_LINE.fullmatch(line).group(1)  # type: ignore[union-attr]
            if mode:
                headers.setdefault("index mode", mode)
            return
        if SIMILARITY_LINE.fullmatch(line):
            return
        if (line.startswith("Binary files ") and line.endswith(" differ")) or line == "GIT binary patch":
            headers["binary"] = "1"
            while (following := self.peek()) is not None and not following.startswith("diff --git "):
                self.take()
            self.index -= 1  # the caller takes the current line
            return
        raise PatchError(
            f"line {line_no}: unsupported header line {line[:80]!r} in a `diff --git` section; only "
            "mode, new/deleted file, rename/copy from/to, similarity and index lines are accepted."
        )

    def _choose_names(
        self, splits: list[tuple[str, str]], headers: dict[str, str], line_no: int
    ) -> tuple[str, str]:
        source = headers.get("rename from") or headers.get("copy from")
        target = headers.get("rename to") or headers.get("copy to")
        for a_raw, b_raw in splits:
            a_name, b_name = _prefixed(a_raw, "a/", line_no), _prefixed(b_raw, "b/", line_no)
            if source is None and target is None and a_name == b_name:
                return a_name, b_name
            if (source, target) == (a_name, b_name):
                return a_name, b_name
        shown = " or ".join(f"{a!r} {b!r}" for a, b in splits)
        if source is None and target is None:
            raise PatchError(
                f"line {line_no}: `diff --git` names {shown} differ but no rename/copy header "
                f"explains it. {REGENERATE}"
            )
        raise PatchError(
            f"line {line_no}: `diff --git` names {shown} disagree with the rename/copy headers "
            f"({source!r} → {target!r}). {REGENERATE}"
        )

    def _section_kind(self, line_no: int, a_name: str, b_name: str, headers: dict[str, str]) -> FilePatch:
        renames = {"rename from", "rename to"} & headers.keys()
        copies = {"copy from", "copy to"} & headers.keys()
        if (renames and len(renames) != 2) or (copies and len(copies) != 2) or (renames and copies):
            raise PatchError(
                f"line {line_no}: a rename or copy needs exactly one `from` and one `to` line. {REGENERATE}"
            )
        created, deleted = "new file mode" in headers, "deleted file mode" in headers
        if ((created or deleted) and (renames or copies)) or (created and deleted):
            raise PatchError(f"line {line_no}: contradictory file headers in one section. {REGENERATE}")
        patch = FilePatch(line_no=line_no, old_path=a_name, new_path=b_name, binary="binary" in headers)
        if created:
            patch.kind, patch.old_path, patch.new_mode = "added", None, headers["new file mode"]
        elif deleted:
            patch.kind, patch.new_path, patch.old_mode = "deleted", None, headers["deleted file mode"]
        elif renames:
            patch.kind = "renamed"
        elif copies:
            patch.kind = "copied"
        if "old mode" in headers or "new mode" in headers:
            if not ("old mode" in headers and "new mode" in headers) or created or deleted:
                raise PatchError(f"line {line_no}: `old mode` and `new mode` must come as a pair.")
            patch.old_mode, patch.new_mode = headers["old mode"], headers["new mode"]
        return patch

    def _hunks(self, patch: FilePatch) -> list[Hunk]:
        hunks: list[Hunk] = []
        while (line := self.peek()) is not None and line.startswith("@@"):
            hunks.append(self._hunk(patch))
        if not hunks:
            raise PatchError(
                f"line {self.line_no()}: `---`/`+++` lines with no hunk after them. {REGENERATE}"
            )
        last_end = 0
        for hunk in hunks:
            if hunk.old_start < last_end:
                raise PatchError(f"line {hunk.line_no}: hunks overlap or are out of order. {REGENERATE}")
            last_end = hunk.old_start + hunk.old_count
        return hunks

    def _hunk(self, patch: FilePatch) -> Hunk:
        line_no = self.line_no()
        match = HUNK_HEADER.fullmatch(self.take())
        if match is None:
            raise PatchError(f"line {line_no}: malformed hunk header. {REGENERATE}")
        old_start, new_start = int(match.group(1)), int(match.group(3))
        old_count = int(match.group(2)) if match.group(2) is not None else 1
        new_count = int(match.group(4)) if match.group(4) is not None else 1
        hunk = Hunk(old_start, old_count, new_start, new_count, line_no)
        if patch.kind == "added" and (old_start, old_count) != (0, 0):
            raise PatchError(f"line {line_no}: a new file's hunk must start at -0,0. {REGENERATE}")
        if patch.kind == "deleted" and (new_start, new_count) != (0, 0):
            raise PatchError(f"line {line_no}: a deleted file's hunk must end at +0,0. {REGENERATE}")
        old_left, new_left = old_count, new_count
        while old_left > 0 or new_left > 0:
            line = self.peek()
            if line is None:
                raise PatchError(
                    f"line {line_no}: the hunk header promises {old_count} old and {new_count} new "
                    f"lines but the diff ends early. {REGENERATE}"
                )
            kind, text = (" ", "") if line == "" else (line[0], line[1:])
            if kind == "\\" and line == NO_NEWLINE and hunk.lines:
                hunk.lines[-1].newline = False
                self.take()
                continue
            if kind not in (" ", "+", "-"):
                raise PatchError(
                    f"line {self.line_no()}: expected a hunk line (' ', '+' or '-') but found "
                    f"{line[:80]!r}; the hunk header at line {line_no} promises more lines. {REGENERATE}"
                )
            old_left -= kind != "+"
            new_left -= kind != "-"
            if old_left < 0 or new_left < 0:
                raise PatchError(
                    f"line {self.line_no()}: more lines than the hunk header at line {line_no} "
                    f"promises. {REGENERATE}"
                )
            hunk.lines.append(HunkLine(kind, text))  # type: ignore[arg-type]
            self.take()
        if self.peek() == NO_NEWLINE and hunk.lines:
            hunk.lines[-1].newline = False
            self.take()
        self._check_newline_markers(hunk)
        return hunk

    @staticmethod
    def _check_newline_markers(hunk: Hunk) -> None:
        # Only the last line of each side may lack a line feed.
        for side in (" +", " -"):
            lines = [line for line in hunk.lines if line.kind in side]
            if any(not line.newline for line in lines[:-1]):
                raise PatchError(
                    f"line {hunk.line_no}: '\\ No newline at end of file' inside a hunk, not at "
                    f"its end. {REGENERATE}"
                )


def parse_patches(diff: str, allow_binary: bool = False, allow_mode_changes: bool = False) -> list[FilePatch]:
    """The diff's file sections, every header and path checked; [] for an empty diff."""
    if not diff.strip():
        return []
    patches = _Parser(diff).parse()
    seen: set[str] = set()
    for patch in patches:
        _check_section(patch, allow_binary, allow_mode_changes)
        touched = {p for p in (patch.new_path, patch.old_path if patch.kind != "copied" else None) if p}
        if touched & seen:
            raise PatchError(f"patch changes {sorted(touched & seen)[0]!r} twice; send one section per file.")
        seen |= touched
    return patches


def _check_section(patch: FilePatch, allow_binary: bool, allow_mode_changes: bool) -> None:
    path = patch.new_path or patch.old_path or ""
    if patch.binary and not allow_binary:
        raise PatchError(
            f"patch changes {path!r} as a binary file; binary patches are not allowed by policy."
        )
    for mode in (patch.old_mode, patch.new_mode):
        if mode == SYMLINK_MODE:
            raise PatchError(f"patch makes {path!r} a symbolic link; symlinks are not allowed in candidates.")
    if patch.old_mode is not None and patch.kind not in ("added", "deleted") and not allow_mode_changes:
        raise PatchError(f"patch changes the file mode of {path!r}; mode changes are not allowed by policy.")
    for mode in (patch.old_mode, patch.new_mode):
        if mode is not None and mode not in REGULAR_MODES:
            raise PatchError(
                f"patch gives {path!r} the file mode {mode}; only regular files (100644, 100755) are allowed."
            )


def parse_diff(diff: str, allow_binary: bool = False, allow_mode_changes: bool = False) -> list[FileChange]:
    """Parse a unified diff into file changes, rejecting anything unsafe with a clear reason."""
    return file_changes(parse_patches(diff, allow_binary, allow_mode_changes))


def file_changes(patches: list[FilePatch]) -> list[FileChange]:
    """The file changes of a diff already parsed by `parse_patches` (numbered where its hunks were
    applied, once `apply_patches` has applied them; else as their headers state)."""
    return [_file_change(patch) for patch in patches]


def _file_change(patch: FilePatch) -> FileChange:
    status = "added" if patch.kind == "copied" else patch.kind
    path = patch.new_path or patch.old_path or ""
    change = FileChange(
        path=path,
        old_path=patch.old_path,
        status=status,
        is_binary=patch.binary,
        mode_change=patch.old_mode is not None and patch.kind not in ("added", "deleted"),
        new_mode=patch.new_mode,
    )
    for hunk in patch.hunks:
        old_no = hunk.old_start if hunk.applied_old_start is None else hunk.applied_old_start
        new_no = hunk.new_start if hunk.applied_new_start is None else hunk.applied_new_start
        for line in hunk.lines:
            if line.kind == "+":
                change.added.append(AddedLine(new_no, line.text))
            elif line.kind == "-":
                change.removed.append(AddedLine(old_no, line.text))
            old_no += line.kind != "+"
            new_no += line.kind != "-"
    return change


# -- the stage: files opened only inside it, never through a link -----------------------------------


class Stage:
    """A directory the applier may touch, through checked relative paths only.

    Every path is walked one component at a time from a descriptor of the root with O_NOFOLLOW, so
    a symbolic link anywhere on the way (or a path that leaves the root) fails instead of being
    followed: nothing outside the root can be read or written through it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _open_parent(self, relative: str, create: bool) -> tuple[int, str]:
        parts = check_relative_path(relative).split("/")
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.root, flags)
        try:
            for index, part in enumerate(parts[:-1]):
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                try:
                    child = os.open(part, flags, dir_fd=fd)
                except OSError as exc:
                    where = "/".join(parts[: index + 1])
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise PatchError(
                            f"patch path {relative!r} goes through {where!r}, which is a symbolic link "
                            "or not a directory in the parent tree; rejected."
                        ) from None
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    def read(self, relative: str) -> tuple[bytes, int] | None:
        """(content, permission bits) of a regular file, or None if nothing is there."""
        try:
            parent, name = self._open_parent(relative, create=False)
        except FileNotFoundError:
            return None
        try:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise PatchError(
                        f"patch changes {relative!r}, a symbolic link in the parent tree; rejected."
                    ) from None
                raise
            info = os.fstat(fd)  # before fdopen, which refuses a directory with its own error
            if not stat.S_ISREG(info.st_mode):
                os.close(fd)
                raise PatchError(
                    f"patch changes {relative!r}, which is not a regular file in the parent tree "
                    "(a directory, a device or a pipe); a patch reads and writes regular files only."
                )
            with os.fdopen(fd, "rb") as handle:
                return handle.read(), stat.S_IMODE(info.st_mode)
        finally:
            os.close(parent)

    def exists(self, relative: str) -> bool:
        try:
            parent, name = self._open_parent(relative, create=False)
        except (FileNotFoundError, PatchError):
            return False
        try:
            os.stat(name, dir_fd=parent, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(parent)

    def write(self, relative: str, data: bytes, executable: bool) -> None:
        parent, name = self._open_parent(relative, create=True)
        try:
            mode = 0o755 if executable else 0o644
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, mode, dir_fd=parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                os.fchmod(handle.fileno(), mode)
        finally:
            os.close(parent)

    def remove(self, relative: str) -> None:
        parent, name = self._open_parent(relative, create=False)
        try:
            os.unlink(name, dir_fd=parent)
        finally:
            os.close(parent)
        # Like git, leave no directory the deletion emptied.
        parts = relative.split("/")[:-1]
        while parts:
            try:
                os.rmdir(os.path.join(self.root, *parts))
            except OSError:
                break
            parts.pop()

    def snapshot(self) -> dict[str, tuple[str, str]]:
        """Every entry below the root (except a top-level .git): path → (kind and mode, digest)."""
        found: dict[str, tuple[str, str]] = {}
        for directory, subdirs, files in os.walk(self.root, followlinks=False):
            relative_dir = os.path.relpath(directory, self.root)
            if relative_dir == ".":
                subdirs[:] = [d for d in subdirs if d != ".git"]
            for name in [*files, *(d for d in subdirs if os.path.islink(os.path.join(directory, d)))]:
                full = os.path.join(directory, name)
                key = os.path.normpath(os.path.join(relative_dir, name))
                info = os.lstat(full)
                if stat.S_ISLNK(info.st_mode):
                    found[key] = ("link", hashlib.sha256(os.fsencode(os.readlink(full))).hexdigest())
                elif stat.S_ISREG(info.st_mode):
                    with open(full, "rb", opener=_nofollow) as handle:
                        digest = hashlib.sha256(handle.read()).hexdigest()
                    found[key] = (_kind(info.st_mode), digest)
                else:
                    found[key] = ("other", "")
        return found


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _kind(mode: int) -> str:
    return "100755" if mode & stat.S_IXUSR else "100644"


# -- application ---------------------------------------------------------------------------------


@dataclass
class _Planned:
    """The final state of one path: its content and mode, or None for a path that must be gone."""

    content: bytes | None
    executable: bool = False


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    tail = lines.pop()
    result = [line + b"\n" for line in lines]
    return [*result, tail] if tail else result


def _locate(lines: list[bytes], hunk: Hunk, earliest: int, offset: int) -> int | None:
    """Where the hunk's preimage matches: its stated line (shifted by the offset of earlier hunks)
    first, then the nearest line after `earliest` that matches, as `git apply` searches."""
    pre = hunk.preimage()
    leading = next((i for i, line in enumerate(hunk.lines) if line.kind != " "), len(hunk.lines))
    trailing = next((i for i, line in enumerate(reversed(hunk.lines)) if line.kind != " "), len(hunk.lines))
    stated = (hunk.old_start - 1 if hunk.old_count else hunk.old_start) + offset
    # A hunk without leading (trailing) context at the file's start (end) prefers to stay there.
    at_start = bool(pre) and leading == 0 and hunk.old_start <= 1
    at_end = bool(pre) and trailing == 0

    def fits(position: int, anchored: bool) -> bool:
        if position < earliest or position + len(pre) > len(lines):
            return False
        if anchored and ((at_start and position != 0) or (at_end and position + len(pre) != len(lines))):
            return False
        return lines[position : position + len(pre)] == pre

    for anchored in (True, False) if at_start or at_end else (False,):
        for distance in range(len(lines) + 1):
            for position in (stated - distance, stated + distance) if distance else (stated,):
                if fits(position, anchored):
                    return position
    return None


def _patched(old: bytes, patch: FilePatch) -> bytes:
    lines = _split_lines(old)
    result: list[bytes] = []
    cursor, offset = 0, 0
    for hunk in patch.hunks:
        position = _locate(lines, hunk, cursor, offset)
        if position is None:
            raise PatchError(
                f"patch does not apply cleanly to the parent: the hunk at diff line {hunk.line_no} "
                f"(`@@ -{hunk.old_start},{hunk.old_count}`) of {patch.old_path!r} matches no place "
                f"in the file. {REGENERATE}"
            )
        result += lines[cursor:position]
        hunk.applied_old_start, hunk.applied_new_start = position + 1, len(result) + 1
        result += hunk.postimage()
        offset = position - (hunk.old_start - 1 if hunk.old_count else hunk.old_start)
        cursor = position + hunk.old_count
    result += lines[cursor:]
    for line in result[:-1]:
        if not line.endswith(b"\n"):
            raise PatchError(
                f"patch does not apply cleanly to the parent: {patch.old_path!r} would get a line "
                f"without a line feed in its middle. {REGENERATE}"
            )
    return b"".join(result)


def _plan(stage: Stage, patches: list[FilePatch]) -> dict[str, _Planned]:
    """The final state of every path the diff names, computed from the stage's files and the diff."""
    plan: dict[str, _Planned] = {}
    for patch in patches:
        if patch.kind == "added":
            assert patch.new_path is not None
            if stage.exists(patch.new_path):
                raise PatchError(
                    f"patch does not apply cleanly to the parent: it creates {patch.new_path!r}, "
                    f"which already exists. {REGENERATE}"
                )
            content = b"".join(line for hunk in patch.hunks for line in hunk.postimage())
            start = 1
            for hunk in patch.hunks:
                hunk.applied_old_start, hunk.applied_new_start = 0, start
                start += len(hunk.postimage())
            plan[patch.new_path] = _Planned(content, patch.new_mode == "100755")
            continue
        assert patch.old_path is not None
        found = stage.read(patch.old_path)
        if found is None:
            raise PatchError(
                f"patch does not apply cleanly to the parent: {patch.old_path!r} does not exist "
                f"there. {REGENERATE}"
            )
        old, permissions = found
        if patch.binary:
            raise PatchError(f"binary patches cannot be applied ({patch.old_path!r}); rejected.")
        new = _patched(old, patch)
        if patch.kind == "deleted":
            if new:
                raise PatchError(
                    f"patch does not apply cleanly to the parent: deleting {patch.old_path!r} "
                    f"leaves content the diff does not remove. {REGENERATE}"
                )
            plan[patch.old_path] = _Planned(None)
            continue
        assert patch.new_path is not None
        executable = patch.new_mode == "100755" if patch.new_mode else bool(permissions & stat.S_IXUSR)
        if patch.kind in ("renamed", "copied") and patch.new_path != patch.old_path:
            if stage.exists(patch.new_path) and patch.new_path not in plan:
                raise PatchError(
                    f"patch does not apply cleanly to the parent: it {patch.kind[:-1]}s onto "
                    f"{patch.new_path!r}, which already exists. {REGENERATE}"
                )
            if patch.kind == "renamed":
                plan.setdefault(patch.old_path, _Planned(None))
        plan[patch.new_path] = _Planned(new, executable)
        _check_sources(patch, old, new)
    return plan


def _check_sources(patch: FilePatch, old: bytes, new: bytes) -> None:
    """Every line of the new content is a line of the old file or one the diff adds or keeps."""
    allowed = Counter(_split_lines(old)) + Counter(line for hunk in patch.hunks for line in hunk.postimage())
    if Counter(_split_lines(new)) - allowed:
        raise PatchError(
            f"patch application produced content for {patch.new_path!r} that the diff does not imply."
        )


def diff_stat(diff: str) -> str:
    """One line about a diff: how many files, lines added and removed, the first file names."""
    try:
        changes = parse_diff(diff)
    except RsiError:
        return UNPARSEABLE
    return change_stat(changes)


def apply_diff(
    diff: str, workdir: Path, allow_binary: bool = False, allow_mode_changes: bool = False
) -> None:
    """Apply a checked diff in workdir (a fresh copy of the parent), all or nothing, never reading
    or writing outside it; then verify the tree is exactly what the diff implies."""
    apply_patches(parse_patches(diff, allow_binary, allow_mode_changes), workdir)


def apply_patches(patches: list[FilePatch], workdir: Path) -> None:
    """Apply a diff already parsed (and checked) by `parse_patches`; see `apply_diff`."""
    if not patches:
        return
    stage = Stage(workdir)
    plan = _plan(stage, patches)
    before = stage.snapshot()
    try:
        for path, planned in plan.items():
            if planned.content is None:
                stage.remove(path)
        for path, planned in plan.items():
            if planned.content is not None:
                stage.write(path, planned.content, planned.executable)
    except OSError as exc:
        raise PatchError(
            f"could not write the patched tree ({exc.strerror} at {exc.filename or path!r}); rejected."
        ) from None
    _verify(stage, before, plan)


def _verify(stage: Stage, before: dict[str, tuple[str, str]], plan: dict[str, _Planned]) -> None:
    """The tree after writing equals the tree before plus the plan: nothing else changed."""
    expected = dict(before)
    for path, planned in plan.items():
        if planned.content is None:
            expected.pop(path, None)
        else:
            expected[path] = (
                "100755" if planned.executable else "100644",
                hashlib.sha256(planned.content).hexdigest(),
            )
    after = stage.snapshot()
    differing = sorted(p for p in set(expected) | set(after) if expected.get(p) != after.get(p))
    if differing:
        raise PatchError(
            f"after applying the patch the tree differs from what the diff implies at {differing[:5]}; rejected."
        )
