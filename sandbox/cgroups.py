"""Which cgroup hierarchy is in force, and how each backend reads a sandbox's counters from it.

Linux has two layouts. cgroup v1 (older hosts, and this project's CI) mounts one hierarchy per
controller (/sys/fs/cgroup/memory, /pids, /cpuacct…); cgroup v2 (Debian 12, Ubuntu 22.04+,
Fedora, Docker Desktop's VM) mounts one unified hierarchy at /sys/fs/cgroup whose directories
each hold every controller's files. A "hybrid" host mounts v1 controllers and an empty v2
hierarchy at /sys/fs/cgroup/unified: there the controllers are v1's.

    hierarchy()                       # "v1", "v2" or "none"
    read_v2(Path("/sys/fs/cgroup/system.slice/docker-<id>.scope"))   # -> CgroupCounters

The counters the harness needs, by layout:

| quantity      | v1                                   | v2                                    |
|---------------|--------------------------------------|---------------------------------------|
| CPU seconds   | cpuacct/cpuacct.usage (ns)           | cpu.stat `usage_usec`                 |
| peak memory   | memory/memory.max_usage_in_bytes     | memory.peak (kernel ≥ 5.19)           |
| reset peak    | write 0 to max_usage_in_bytes        | write to memory.peak: resets it for   |
|               |                                      | reads through the same open file      |
|               |                                      | (kernel ≥ 6.12)                       |
| OOM kills     | memory/memory.oom_control `oom_kill` | memory.events `oom_kill`              |
| pid limit hit | pids/pids.events `max`               | pids.events `max`                     |
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CGROUP_ROOT = Path("/sys/fs/cgroup")
Hierarchy = Literal["v1", "v2", "none"]
V2_CONTROLLERS = ("memory", "pids", "cpu")


@dataclass
class CgroupCounters:
    """One reading of a cgroup's files; None = the file is missing or unreadable (unmeasured)."""

    cpu_s: float | None = None
    peak_memory_mb: float | None = None
    oom_kills: int | None = None
    pids_limit_hits: int | None = None


def hierarchy(mountinfo: Path = Path("/proc/self/mountinfo"), root: Path = CGROUP_ROOT) -> Hierarchy:
    """v2 when the unified hierarchy is mounted at `root` itself; v1 when v1 controllers are mounted
    under it (a hybrid host's /sys/fs/cgroup/unified holds no controller we use); else none."""
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return "none"
    found_v1 = False
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, kinds = left.split(), right.split()
        if len(fields) < 5 or not kinds:
            continue
        mount_point = Path(fields[4])
        if kinds[0] == "cgroup2" and mount_point == root:
            return "v2"
        if kinds[0] == "cgroup" and mount_point.parent == root:
            found_v1 = True
    return "v1" if found_v1 else "none"


def own_v2_cgroup(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = CGROUP_ROOT) -> Path | None:
    """This process's cgroup directory in the unified hierarchy (the `0::/path` line)."""
    with contextlib.suppress(OSError):
        for line in proc_cgroup.read_text().splitlines():
            if line.startswith("0::"):
                return root / line[3:].lstrip("/")
    return None


def v2_delegation_problem(parent: Path) -> str | None:
    """Why sandboxes cannot get their own cgroup under `parent`, or None if they can: the parent
    must let children use the memory, pids and cpu controllers, and be writable by this process."""
    try:
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
    except OSError as exc:
        return f"cannot read {parent}/cgroup.subtree_control ({exc.strerror})"
    missing = [c for c in V2_CONTROLLERS if c not in enabled]
    if missing:
        return (
            f"{parent} does not delegate the {', '.join(missing)} controller(s) to its children; run rsi "
            "in a delegated cgroup (`systemd-run --user --scope -p Delegate=yes rsi ...`) or set "
            "sandbox.cgroup_parent to one"
        )
    if not os.access(parent, os.W_OK):
        return f"{parent} is not writable by this user; set sandbox.cgroup_parent to a delegated cgroup"
    return None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _keyed(path: Path, key: str) -> int | None:
    """The value of `key` in a flat-keyed file (cpu.stat, memory.events, pids.events…)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value.strip())
    except (OSError, ValueError):
        return None
    return None


def read_v1(paths: dict[str, Path]) -> CgroupCounters:
    """Counters from v1 per-controller directories (keys: cpuacct, memory, pids)."""
    counters = CgroupCounters()
    if "cpuacct" in paths and (usage := _read_int(paths["cpuacct"] / "cpuacct.usage")) is not None:
        counters.cpu_s = round(usage / 1e9, 3)
    if "memory" in paths:
        if (peak := _read_int(paths["memory"] / "memory.max_usage_in_bytes")) is not None:
            counters.peak_memory_mb = round(peak / 2**20, 1)
        counters.oom_kills = _keyed(paths["memory"] / "memory.oom_control", "oom_kill")
    if "pids" in paths:
        counters.pids_limit_hits = _keyed(paths["pids"] / "pids.events", "max")
    return counters


def reset_v1_peak(memory_dir: Path) -> bool:
    """Start a new peak-memory measurement (v1: writing 0 sets the maximum to the current usage)."""
    try:
        (memory_dir / "memory.max_usage_in_bytes").write_text("0")
    except OSError:
        return False
    return True


def read_v2(directory: Path, peak: PeakCounter | None = None) -> CgroupCounters:
    """Counters from one v2 cgroup directory; `peak` reads the per-phase peak where it is kept."""
    counters = CgroupCounters()
    if (usage := _keyed(directory / "cpu.stat", "usage_usec")) is not None:
        counters.cpu_s = round(usage / 1e6, 3)
    value = peak.read() if peak is not None else _read_int(directory / "memory.peak")
    if value is not None:
        counters.peak_memory_mb = round(value / 2**20, 1)
    counters.oom_kills = _keyed(directory / "memory.events", "oom_kill")
    counters.pids_limit_hits = _keyed(directory / "pids.events", "max")
    return counters


class PeakCounter:
    """A v2 memory.peak kept open: a write resets the peak seen through this file (kernel ≥ 6.12),
    so each phase reads its own peak. On older kernels the write fails and `resettable` is False:
    the reading is the session's peak and is not reported per phase."""

    def __init__(self, directory: Path) -> None:
        self.fd: int | None = None
        self.resettable = False
        with contextlib.suppress(OSError):
            self.fd = os.open(directory / "memory.peak", os.O_RDWR)

    def reset(self) -> bool:
        if self.fd is None:
            return False
        try:
            os.pwrite(self.fd, b"reset\n", 0)
        except OSError:
            self.resettable = False
            return False
        self.resettable = True
        return True

    def read(self) -> int | None:
        if self.fd is None:
            return None
        try:
            return int(os.pread(self.fd, 64, 0).split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def pids_in(procs_file: Path) -> list[int] | None:
    """The host pids a cgroup.procs file lists; None when it cannot be read (no such cgroup here)."""
    try:
        text = procs_file.read_text()
    except OSError:
        return None
    return [int(word) for word in text.split() if word.isdigit()]


def thread_states(pids: list[int], proc: Path = Path("/proc")) -> list[str]:
    """The scheduler state letter of every thread of these processes (those that still exist)."""
    states: list[str] = []
    for pid in pids:
        try:
            threads = os.listdir(proc / str(pid) / "task")
        except OSError:
            continue
        for tid in threads:
            try:
                stat = (proc / str(pid) / "task" / tid / "stat").read_text()
            except OSError:
                continue
            states.append(stat[stat.rfind(")") + 2 : stat.rfind(")") + 3])
    return states


class OffCpuSampler:
    """How much of a phase's wall time its processes spent waiting of their own accord.

    A thread samples the state of every thread of the sandbox; a sample is *off-CPU* when none of
    them is running, runnable (R: waiting for a CPU on a loaded machine counts as busy) or in
    uninterruptible sleep (D: disk, memory reclaim). What is left is a wait the code chose — a
    sleep, a blocking read, a lock, a timer — which the machine's load does not lengthen. The
    fraction of off-CPU samples times the phase's wall time estimates that time.

        sampler = OffCpuSampler(session.task_pids)
        with sampler:
            result = session.exec(command, timeout_s)
        sampler.off_cpu_s(result.duration_s)
    """

    BUSY_STATES = frozenset("RD")

    def __init__(self, task_pids: Callable[[], list[int] | None], interval_s: float = 0.04) -> None:
        self.task_pids = task_pids
        self.interval_s = interval_s
        self.samples = 0
        self.off_cpu = 0
        self.peak_threads = 0
        """The most threads the sandbox's processes had at once, over the samples."""
        self.measurable = task_pids() is not None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="off-cpu-sampler", daemon=True)

    def __enter__(self) -> OffCpuSampler:
        if self.measurable:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            pids = self.task_pids()
            if pids is None:
                continue
            states = thread_states(pids)
            self.samples += 1
            self.peak_threads = max(self.peak_threads, len(states))
            if not self.BUSY_STATES.intersection(states):
                self.off_cpu += 1

    def threads(self) -> int | None:
        """The most threads seen at once; None when not measurable here or never sampled."""
        return self.peak_threads if self.measurable and self.samples else None

    def off_cpu_s(self, wall_s: float) -> float | None:
        """Estimated seconds of the phase spent off-CPU by choice; None when not measurable here."""
        if not self.measurable:
            return None
        if self.samples == 0:
            return 0.0  # shorter than one interval: it cannot have waited longer than that
        return round(wall_s * self.off_cpu / self.samples, 3)
