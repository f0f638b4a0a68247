"""The agent's tools and the exploration sandbox they act on.

The model gets Anthropic's client-side tool definitions for bash and the text editor
(`str_replace_based_edit_tool`) plus a custom `submit` tool. Every call runs in an exploration
session: a fresh sandbox from the run's backend (same hardening as evaluation, network off, no
held-out mount; for a bootstrapping target the current teacher read-only at /teacher, which the
backend mounts in every sandbox) holding a copy of the parent at /workspace. The session is opened
on the first tool call, so a generation that stops early costs no container.

The proposal is computed on the host, not reported by the sandbox: the workspace is read out as a
tar stream and compared with the parent tree in a throwaway git repository, so nothing the agent
does to version control inside the container can hide or fake a change.

    with ExplorationWorkspace(backend, parent_tree, label="explore-gen-0003") as workspace:
        outcome = workspace.run_tool("bash", {"command": "python -m pytest -q"}, timeout_s=120)
        diff = workspace.diff()
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import SandboxError
from sandbox.base import WORKDIR, Backend, Session
from sandbox.channel import UNAUDITED
from sandbox.scratch import scratch_dir

BASH_TOOL: dict[str, Any] = {"type": "bash_20250124", "name": "bash"}
EDITOR_NAME = "str_replace_based_edit_tool"
EDITOR_TOOL: dict[str, Any] = {"type": "text_editor_20250728", "name": EDITOR_NAME, "max_characters": 20000}
SUBMIT_TOOL: dict[str, Any] = {
    "name": "submit",
    "description": (
        "Submit the current state of /workspace as your proposal and end this generation. The change "
        "is the difference between /workspace and the parent; the harness then tests, trains and "
        "scores it on held-out data you cannot see."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "rationale": {
                "type": "string",
                "description": "Why this change should improve the metric (first line: a one-line summary).",
            },
            "expected_effect": {
                "type": "string",
                "description": "What you expect the harness to measure, e.g. 'r2 from 0.15 to about 0.6'.",
            },
        },
        "required": ["rationale", "expected_effect"],
    },
}
TOOLS = [BASH_TOOL, EDITOR_TOOL, SUBMIT_TOOL]
TOOL_NAMES = tuple(tool["name"] for tool in TOOLS)

OUTPUT_LIMIT = 12_000
"""Characters of a tool's output sent back to the model (head and tail kept)."""
IGNORED = ("__pycache__/", "*.pyc", ".pytest_cache/", "*.npy", "*.npz", "*.pkl", "*.pt", "*.log")
"""Never part of a proposal: caches and artefacts a quick experiment leaves behind."""
WORKSPACE_TAR = "/tmp/.rsi-workspace.tar"


@dataclass
class ToolOutcome:
    text: str
    is_error: bool = False
    duration_s: float = 0.0


def clip(text: str, limit: int = OUTPUT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… [{len(text) - limit} characters omitted] …\n{text[-half:]}"


def summarize_call(name: str, tool_input: Any) -> str:
    """One line for progress displays: the command, the file, or the rationale."""
    if not isinstance(tool_input, dict):
        return f"malformed input {str(tool_input)[:80]!r}"
    if name == "bash":
        command = str(tool_input.get("command", "restart" if tool_input.get("restart") else ""))
        return (command.strip().splitlines() or [""])[0][:120]
    if name == EDITOR_NAME:
        return f"{tool_input.get('command', '?')} {tool_input.get('path', '')}"
    if name == "submit":
        return (
            str(tool_input.get("rationale", "")).splitlines()[0][:120] if tool_input.get("rationale") else ""
        )
    return name


class ToolInputError(Exception):
    """The model's tool call cannot be executed as given; the message goes back to the model."""


def _text(tool_input: dict[str, Any], key: str, required: bool = True) -> str:
    value = tool_input.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ToolInputError(f"parameter {key!r} must be a string (got {type(value).__name__}).")
    return _encodable(value, f"parameter {key!r}")


def _encodable(text: str, what: str) -> str:
    """JSON can carry lone surrogates (an escaped "\\udcff"); no shell or file can hold them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ToolInputError(
            f"{what} is not valid Unicode text ({exc.reason} at character {exc.start}); send plain UTF-8."
        ) from None
    return text


class ExplorationWorkspace:
    """A lazily opened exploration session on a private copy of the parent tree."""

    def __init__(self, backend: Backend, parent_tree: Path, label: str) -> None:
        self.backend = backend
        self.parent_tree = parent_tree
        self.label = label
        self._stage: tempfile.TemporaryDirectory[str] | None = None
        self._session: Session | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        if self._session is None:
            self._stage = scratch_dir("explore")
            copy = Path(self._stage.name) / "workspace"
            shutil.copytree(self.parent_tree, copy, symlinks=True)
            self._session = self.backend.open(workspace=copy, heldout=None, label=self.label)
        return self._session

    @property
    def opened(self) -> bool:
        return self._session is not None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._stage is not None:
            self._stage.cleanup()
            self._stage = None

    def __enter__(self) -> ExplorationWorkspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tools -----------------------------------------------------------------------------

    def run_tool(self, name: str, tool_input: Any, timeout_s: float) -> ToolOutcome:
        started = time.monotonic()
        try:
            if not isinstance(tool_input, dict):
                raise ToolInputError(f"the input of {name!r} must be a JSON object, got {tool_input!r:.200}.")
            if name == "bash":
                outcome = self._bash(tool_input, timeout_s)
            elif name == EDITOR_NAME:
                outcome = self._edit(tool_input)
            else:
                raise ToolInputError(f"unknown tool {name!r}; the tools are: {', '.join(TOOL_NAMES)}.")
        except ToolInputError as exc:
            outcome = ToolOutcome(f"Error: {exc}", is_error=True)
        outcome.duration_s = round(time.monotonic() - started, 3)
        return outcome

    def _bash(self, tool_input: dict[str, Any], timeout_s: float) -> ToolOutcome:
        if tool_input.get("restart"):
            return ToolOutcome("The shell was restarted (every command runs in a fresh shell in /workspace).")
        command = _text(tool_input, "command")
        if not command.strip():
            raise ToolInputError("parameter 'command' is empty.")
        # Exploration is not an evaluation: the agent's commands run without the runtime audit
        # (sandbox/audit), whose no-exec filter would refuse the programs a target's tests start.
        result = self.session.exec(UNAUDITED + command, timeout_s=max(1.0, timeout_s))
        text = clip(result.output)
        if result.timed_out:
            text += f"\n[command timed out after {timeout_s:.0f}s and was killed]"
        elif result.exit_code != 0:
            text += f"\n[exit code {result.exit_code}]"
        return ToolOutcome(text or "(no output)", is_error=result.exit_code != 0)

    def _edit(self, tool_input: dict[str, Any]) -> ToolOutcome:
        command = _text(tool_input, "command")
        path = self._resolve(_text(tool_input, "path"))
        if command == "view":
            return ToolOutcome(self._view(path, tool_input.get("view_range")))
        if not (path == WORKDIR or path.startswith(WORKDIR + "/")):
            raise ToolInputError(f"{path} is outside {WORKDIR}; only the workspace can be edited.")
        if command == "create":
            self._write(path, _text(tool_input, "file_text"))
            return ToolOutcome(f"File created: {path}")
        if command == "str_replace":
            return ToolOutcome(
                self._str_replace(path, _text(tool_input, "old_str"), _text(tool_input, "new_str", False))
            )
        if command == "insert":
            text = tool_input.get("insert_text", tool_input.get("new_str"))
            return ToolOutcome(self._insert(path, tool_input.get("insert_line"), text))
        raise ToolInputError(f"unknown editor command {command!r}; use view, create, str_replace or insert.")

    @staticmethod
    def _resolve(path: str) -> str:
        if not path:
            raise ToolInputError("parameter 'path' is empty.")
        return posixpath.normpath(path if path.startswith("/") else posixpath.join(WORKDIR, path))

    def _read(self, path: str) -> str:
        try:
            return self.session.read_file(path, max_bytes=4 * 1024 * 1024).decode("utf-8")
        except SandboxError as exc:
            raise ToolInputError(f"cannot read {path}: it does not exist or is not a readable file.") from exc
        except UnicodeDecodeError as exc:
            raise ToolInputError(f"{path} is not a UTF-8 text file.") from exc

    def _view(self, path: str, view_range: Any) -> str:
        listing = self.session.exec(
            f"if [ -d {_quote(path)} ]; then find {_quote(path)} -maxdepth 2 -not -path '*/.*' | sort; "
            "else echo __file__; fi",
            timeout_s=30,
            cwd="/",
        )
        if listing.output.strip() != "__file__":
            if listing.exit_code != 0:
                raise ToolInputError(f"cannot list {path}: {listing.output.strip()[:300]}")
            return clip(listing.output)
        lines = self._read(path).splitlines()
        start, end = 1, len(lines)
        if view_range is not None:
            if not (
                isinstance(view_range, list)
                and len(view_range) == 2
                and all(isinstance(v, int) for v in view_range)
            ):
                raise ToolInputError(
                    "view_range must be [start_line, end_line] (end -1 for the end of file)."
                )
            start, end = max(1, view_range[0]), (len(lines) if view_range[1] == -1 else view_range[1])
        numbered = "\n".join(f"{n:6d}\t{lines[n - 1]}" for n in range(start, min(end, len(lines)) + 1))
        return clip(numbered, EDITOR_TOOL["max_characters"]) or "(empty file)"

    def _str_replace(self, path: str, old: str, new: str) -> str:
        content = self._read(path)
        count = content.count(old) if old else 0
        if count == 0:
            raise ToolInputError(f"no match for old_str in {path}; view the file and copy the text exactly.")
        if count > 1:
            raise ToolInputError(
                f"old_str occurs {count} times in {path}; include more context to make it unique."
            )
        self._write(path, content.replace(old, new, 1))
        return f"The file {path} has been edited."

    def _insert(self, path: str, line: Any, text: Any) -> str:
        if not isinstance(line, int) or not isinstance(text, str):
            raise ToolInputError("insert needs insert_line (an integer) and insert_text (a string).")
        _encodable(text, "insert_text")
        lines = self._read(path).splitlines(keepends=True)
        if not 0 <= line <= len(lines):
            raise ToolInputError(f"insert_line {line} is outside 0..{len(lines)} for {path}.")
        lines.insert(line, text if text.endswith("\n") else text + "\n")
        self._write(path, "".join(lines))
        return f"Text inserted after line {line} of {path}."

    def _write(self, path: str, content: str) -> None:
        data = content.encode("utf-8")
        check = self.session.exec(f"mkdir -p {_quote(posixpath.dirname(path))}", timeout_s=30, cwd="/")
        if check.exit_code != 0:
            raise ToolInputError(f"cannot create the directory of {path}: {check.output.strip()[:300]}")
        write_file = getattr(self.session, "write_file", None)
        if write_file is None:
            raise SandboxError(f"the {self.backend.name} backend cannot write files into a session.")
        write_file(path, data)

    # -- the proposal ----------------------------------------------------------------------

    def diff(self) -> str:
        """The workspace's changes against the parent tree as a unified diff (empty if never opened)."""
        if self._session is None:
            return ""
        patterns = [p.rstrip("/") for p in IGNORED] + ["./.git"]
        excludes = " ".join(f"--exclude={_quote(p)}" for p in patterns)
        packed = self._session.exec(
            f"tar -C {WORKDIR} {excludes} -cf {WORKSPACE_TAR} .", timeout_s=60, cwd="/"
        )
        if packed.exit_code != 0:
            raise SandboxError(f"could not pack the exploration workspace: {packed.output.strip()[:300]}")
        archive = self._session.read_file(WORKSPACE_TAR)
        return diff_trees(self.parent_tree, archive)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CEILING_DIRECTORIES": str(repo.parent),
    }
    settings = ["-c", "user.name=rsi", "-c", "user.email=rsi@localhost", "-c", "core.fileMode=false"]
    done = subprocess.run(
        ["git", *settings, *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SandboxError(f"git {args[0]} failed while computing the proposal's diff: {done.stderr[:300]}")
    return done.stdout


def _inside_tree_only(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """The `data` filter, except that what it refuses (a link out of the tree, a device) is left out
    of the proposal instead of ending the generation: such a change could never be applied anyway."""
    try:
        return tarfile.data_filter(member, path)
    except tarfile.FilterError:
        return None


def diff_trees(parent_tree: Path, workspace_tar: bytes) -> str:
    """Diff a tar of the explored workspace against the parent tree, ignoring caches and artefacts."""
    with scratch_dir("diff") as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(parent_tree, repo, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        _git(repo, "init", "-q")
        (repo / ".git" / "info").mkdir(parents=True, exist_ok=True)
        (repo / ".git" / "info" / "exclude").write_text("\n".join(IGNORED) + "\n", encoding="utf-8")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "--allow-empty", "-m", "parent")
        for child in repo.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        try:
            with tarfile.open(fileobj=io.BytesIO(workspace_tar)) as archive:
                archive.extractall(repo, filter=_inside_tree_only)
        except (tarfile.TarError, OSError) as exc:
            raise SandboxError(
                f"the exploration workspace could not be read back ({exc}); a link pointing outside the "
                "tree or an unreadable file is the usual cause."
            ) from exc
        _git(repo, "add", "-A")
        return _git(repo, "diff", "--cached", "--no-color", "--no-renames", "--no-ext-diff", "HEAD")
