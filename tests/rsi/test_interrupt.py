"""Interruptions of a real `rsi run --headless`: SIGINT, SIGTERM and SIGHUP to the process group
(as Ctrl-C, `timeout` and a closing terminal send them, reaching git helpers and sandboxes too),
and Ctrl-C / a closed window in a real tmux terminal. Each must leave a true record and a way on."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.trajectory import Event, TrajectoryReader
from rsi.progress import read_status
from tests.conftest import IMAGE, ROOT, TARGET

RSI = [sys.executable, "-m", "rsi"]


def start_run(run_dir: Path, *extra: str, backend: str = "bwrap") -> subprocess.Popen[str]:
    """A headless run in its own process group, so signals to the group reach only it and its children."""
    command = [*RSI, "run", "--headless", "--target", str(TARGET), "--run-dir", str(run_dir)]
    command += ["--backend", backend, "--proposer", "offline", "--generations", "3", "--seeds", "1", *extra]
    if backend == "docker":
        command += ["--image", IMAGE]
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def wait_for_generation(run_dir: Path, process: subprocess.Popen[str] | None, timeout_s: float = 300) -> None:
    """Until generation 1 is under way (its proposal started): the moment git and sandboxes are busy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"rsi exited ({process.returncode}) early: {process.communicate()}")
        status = read_status(run_dir) if run_dir.is_dir() else None
        if status and (status.get("generation") or 0) >= 1:
            return
        time.sleep(0.2)
    raise AssertionError(f"generation 1 never started in {run_dir}")


def events(run_dir: Path) -> list[Event]:
    return list(TrajectoryReader(run_dir / "trajectory.jsonl").events())


def assert_recorded_interruption(run_dir: Path, signal_name: str) -> None:
    last = events(run_dir)[-1]
    assert last.kind == "run_finished", last
    assert last.data["status"] == "interrupted" and last.data["signal"] == signal_name, last.data
    assert read_status(run_dir)["state"] == "interrupted"  # type: ignore[index]
    check = subprocess.run(
        [*RSI, "replay", "--check", str(run_dir)], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_a_signal_to_the_process_group_ends_the_run_cleanly(tmp_path: Path, signum: int, code: int) -> None:
    run_dir = tmp_path / "run"
    process = start_run(run_dir)
    wait_for_generation(run_dir, process)
    os.killpg(process.pid, signum)
    out, err = process.communicate(timeout=180)
    assert process.returncode == code, out + err
    assert f"rsi resume {run_dir}" in " ".join(err.split()), err
    assert "Traceback" not in err, err
    assert_recorded_interruption(run_dir, signal.Signals(signum).name)


def test_an_interrupted_run_resumes_to_completion(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    process = start_run(run_dir, "--generations", "2")
    wait_for_generation(run_dir, process)
    os.killpg(process.pid, signal.SIGTERM)
    process.communicate(timeout=180)
    assert process.returncode == 143
    resumed = subprocess.run(
        [*RSI, "resume", str(run_dir), "--headless"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    finished = [e for e in events(run_dir) if e.kind == "run_finished"]
    assert [e.data["status"] for e in finished] == ["interrupted", "completed"]


def test_docker_run_interrupted_through_its_process_group(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.sandbox import hostile

    run_dir = tmp_path / "run"
    process = start_run(run_dir, backend="docker")
    wait_for_generation(run_dir, process)
    os.killpg(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=180)
    assert process.returncode == 143, out + err
    assert_recorded_interruption(run_dir, "SIGTERM")
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    left = hostile.sandboxes_of(docker_client, run_id, wait_s=60)
    assert left == [], [(c.attrs.get("Labels"), c.attrs.get("State"), c.attrs.get("Status")) for c in left]


# -- a real terminal -----------------------------------------------------------------------------


@pytest.fixture
def tmux(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A private tmux server (its own socket): only what the test starts runs there."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    socket = f"rsi-test-{os.getpid()}-{tmp_path.name}"

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=False)

    yield command
    command("kill-server")


def run_in_terminal(tmux, rc_file: Path, *rsi_args: str, background: bool = False) -> None:  # type: ignore[no-untyped-def]
    """A shell in a tmux window that runs rsi and writes its exit code. In the foreground, the
    shell traps INT (a handler, not an ignore: rsi keeps the default disposition) to outlive Ctrl-C
    and report the code. With background=True it does what an interactive shell does when its
    terminal closes: it passes the SIGHUP on to its job, then reports the job's code."""
    rsi = " ".join([*RSI, *rsi_args])
    if background:
        script = f'trap "kill -HUP \\$job" HUP; cd {ROOT} || exit; {rsi} & job=$!; wait $job; wait $job; echo $? > {rc_file}'
    else:
        script = f"trap : INT; cd {ROOT} && {rsi}; echo $? > {rc_file}"
    started = tmux("new-session", "-d", "-s", "run", "-x", "160", "-y", "40", f"sh -c '{script}'")
    assert started.returncode == 0, started.stderr
    tmux("set-option", "-t", "run", "remain-on-exit", "on")  # the screen stays readable after the end


def wait_for_file(path: Path, timeout_s: float = 180) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.2)
    raise AssertionError(f"{path} never appeared")


def headless_args(run_dir: Path) -> list[str]:
    return [
        *("run", "--headless", "--target", str(TARGET), "--run-dir", str(run_dir), "--backend", "bwrap"),
        *("--proposer", "offline", "--seeds", "1", "--generations", "3"),
    ]


def test_ctrl_c_in_a_terminal(tmux, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_dir, rc_file = tmp_path / "run", tmp_path / "rc"
    run_in_terminal(tmux, rc_file, *headless_args(run_dir))
    wait_for_generation(run_dir, None)
    tmux("send-keys", "-t", "run", "C-c")
    assert wait_for_file(rc_file) == "130"
    assert_recorded_interruption(run_dir, "SIGINT")
    screen = tmux("capture-pane", "-p", "-t", "run", "-S", "-200").stdout
    assert "rsi resume" in screen and "Traceback" not in screen, screen


def test_closing_the_terminal_window(tmux, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_dir, rc_file = tmp_path / "run", tmp_path / "rc"
    run_in_terminal(tmux, rc_file, *headless_args(run_dir), background=True)
    wait_for_generation(run_dir, None)
    tmux("kill-session", "-t", "run")
    assert wait_for_file(rc_file) == "129"
    assert_recorded_interruption(run_dir, "SIGHUP")
