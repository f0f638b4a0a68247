"""One long-lived harness shell per sandbox, driven over a byte stream: the fast path of every backend.

Starting a process through an engine API costs tens of milliseconds per call; a session runs several
commands and reads several files. So each sandbox runs one small POSIX-shell *driver* (below, not
from the candidate's tree) that reads requests on stdin (a shell-quoted call of one of its
functions, then a sentinel line) and answers with framed records on stdout. It forks as little as
it can: times come from /proc/uptime through the `read` builtin. Both backends speak it: Docker over the container's attach socket, bubblewrap
over the pipes of its process.

Per command the driver runs `timeout` around `sh -c CMD` with output redirected to a log file (so a
background process the candidate leaves behind cannot hold the stream open), then kills every
other process of the sandbox (`kill -9 -1` spares only PID 1 and the driver itself), checks whether
a writable filesystem is full, and sends the exit code, start/end times and the log tail.

A record on the wire: "\\n\\x1eRSI <kind> <fields...> <n>\\n" followed by exactly n payload bytes.
"""

from __future__ import annotations

import secrets
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from core.errors import SandboxError
from sandbox.base import ExecResult, write_file_via_exec

LOG_LIMIT_BYTES = 1024 * 1024
AUDIT_MOUNT = "/opt/rsi-audit"
"""Where every sandbox sees the runtime audit's `sitecustomize` (sandbox/audit), read-only."""
AUDIT_SOURCE = Path(__file__).resolve().parent / "audit"
"""The directory bound there."""
UNAUDITED = "unset RSI_AUDIT_FD; "
"""A command's prefix that runs it without the runtime audit (its hook then installs nothing): for
what is not the candidate's code at work on the task (the test gate, the agent's exploration)."""
STAGE_LOG_LIMIT_BYTES = 64 * 1024
RECORD_MARK = b"\x1eRSI "
BEGIN_OF_REQUEST = b"__RSI_BEGIN__"
END_OF_REQUEST = b"__RSI_END__"

DRIVER = (
    r"""
exec 2>/dev/null
# This shell runs from a copy of sh that its own user cannot read, so the kernel made it
# non-dumpable: the candidate's processes (the same user) cannot open its /proc entries, its
# descriptors, memory or environment. The copy is gone before anything of the candidate runs.
rm -f /tmp/.rsi-sh
# The session's token, the first line the host sends: every request must carry it and every
# record does. Something of the candidate that writes into the channel (through another
# process's descriptors) knows no token: the driver ignores its requests, the host refuses its records.
IFS= read -r rsi_token
# Plain files in /tmp (no directory to make: one exec fewer per sandbox).
rsi_log=/tmp/.rsi-command.log
rsi_stage() {
  c=0
  if [ -d /src ]; then cp -R /src/. /workspace/ >/tmp/.rsi-stage.log 2>&1 || c=$?; else : >/tmp/.rsi-stage.log; fi
  # `[ -s ]` is a builtin: a clean copy (empty log) costs no fork to size and send its log.
  n=0; [ -s /tmp/.rsi-stage.log ] && n=$(tail -c __STAGE_LIMIT__ /tmp/.rsi-stage.log | wc -c)
  printf '\n\036RSI %s ready %s %s\n' "$rsi_token" "$c" "$n"; [ "$n" -gt 0 ] && tail -c "$n" /tmp/.rsi-stage.log
}
rsi_now() { read rsi_up rsi_idle </proc/uptime; }
# Kill every other process of the sandbox and wait (builtins only, bounded) until they are gone:
# a process killed but not yet reaped still holds its pid, and after a fork bomb the driver's next
# fork would fail, which ends a non-interactive shell.
rsi_kill_all() {
  kill -9 -1; rsi_wait=0
  while kill -0 -1 && [ "$rsi_wait" -lt 200000 ]; do rsi_wait=$((rsi_wait + 1)); done
}
# Bytes in use on the writable filesystems and whether one is full: one df, parsed by builtins.
rsi_disk() {
  full=0; used=0
  df -Pk /workspace /tmp /dev/shm >/tmp/.rsi-df
  while read rsi_fs rsi_blocks rsi_used rsi_avail rsi_rest; do
    case $rsi_used in ''|*[!0-9]*) continue;; esac
    used=$((used + rsi_used * 1024)); [ "$rsi_avail" = 0 ] && full=1
  done </tmp/.rsi-df
}
# What the command's audit hooks wrote (sandbox/audit), asked of the init once every process of
# the command is gone, sent as its own record before the command's end. "events ID 0 0": no answer.
rsi_events() {
  rsi_count=""
  printf 'events\n' >&7 && IFS= read -r rsi_count <&8
  case $rsi_count in
    ''|*[!0-9]*) printf '\n\036RSI %s events %s 0 0\n' "$rsi_token" "$1";;
    *) printf '\n\036RSI %s events %s 1 %s\n' "$rsi_token" "$1" "$rsi_count"
       [ "$rsi_count" -gt 0 ] && head -c "$rsi_count" <&8;;
  esac
}
rsi_exec() {
  rsi_now; s=$rsi_up
  if cd "$3"; then
    PYTHONPATH=__AUDIT_DIR__${PYTHONPATH:+:$PYTHONPATH} RSI_AUDIT_FD=9 \
      timeout --kill-after=3 "$2" sh -c "$4" >"$rsi_log" 2>&1 </dev/null 7>&- 8>&-
    c=$?
  else
    c=1; echo "no such directory: $3" >"$rsi_log"
  fi
  cd /
  rsi_kill_all
  rsi_now; e=$rsi_up
  rsi_events "$1"
  rsi_disk
  size=0; [ -s "$rsi_log" ] && size=$(wc -c <"$rsi_log"); size=${size:-0}
  n=$size; [ "$n" -gt __LOG_LIMIT__ ] && n=__LOG_LIMIT__
  printf '\n\036RSI %s end %s %s %s %s %s %s %s %s\n' "$rsi_token" "$1" "$c" "$s" "$e" "$full" "$size" "$used" "$n"
  [ "$n" -gt 0 ] && tail -c "$n" "$rsi_log"
}
# The places a candidate can write: its tree, the scratch space, shared memory and message queues.
rsi_places='/workspace/* /workspace/.[!.]* /workspace/..?* /tmp/* /tmp/.[!.]* /tmp/..?*
/dev/shm/* /dev/shm/.[!.]* /dev/shm/..?* /dev/mqueue/* /dev/mqueue/.[!.]* /dev/mqueue/..?*'
# The existing paths among its arguments but $rsi_keep and its ancestors (no eval: no file name is
# ever interpreted), in rsi_list; each ancestor's other entries are added too.
rsi_collect() {
  for f do
    shift
    { [ -e "$f" ] || [ -L "$f" ]; } || continue
    case "$rsi_keep/" in "$f"/*) if [ -d "$f" ] && [ ! -L "$f" ]; then rsi_inner "$f"; continue; fi;; esac
    set -- "$@" "$f"
  done
  rsi_list="$#"
  [ $# -gt 0 ] && rsi_remove "$@"
}
rsi_inner() {
  [ "$1" = "$rsi_keep" ] && return 0
  rsi_collect_inner "$1"/* "$1"/.[!.]* "$1"/..?*
}
rsi_collect_inner() {
  for f do
    shift
    { [ -e "$f" ] || [ -L "$f" ]; } || continue
    case "$rsi_keep/" in "$f"/*) if [ -d "$f" ] && [ ! -L "$f" ]; then rsi_inner "$f"; continue; fi;; esac
    set -- "$@" "$f"
  done
  rsi_left=$((rsi_left + $#))
  [ $# -gt 0 ] && rsi_remove "$@"
}
rsi_remove() {
  [ "$rsi_removing" = 1 ] || return 0
  # A directory the candidate made unwritable keeps its contents: it owns it, so the driver does.
  { rm -rf -- "$@" || { chmod -R u+rwX -- "$@"; rm -rf -- "$@"; }; } >/dev/null 2>&1
}
rsi_sweep() { rsi_left=0; rsi_collect $rsi_places; rsi_left=$((rsi_left + rsi_list)); }
# SysV IPC objects outlive their processes: remove them when /proc lists any (saves a fork).
rsi_ipc() {
  for rsi_table in /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem; do
    rsi_rows=0
    [ -r "$rsi_table" ] && while read -r rsi_row; do rsi_rows=$((rsi_rows + 1)); done <"$rsi_table"
    [ "$rsi_rows" -gt 1 ] && { ipcrm --all >/dev/null 2>&1; return; }
  done
}
# What survives a reset (the mount roots, the kept directory and its parents) keeps its inode, and
# an inode's extended attributes and times hold data no listing shows; and a name the shell's
# patterns do not match (a message queue named "..x" once kept a trained model past every reset)
# would stay. The sandbox's init (sandbox/init.py: the trusted interpreter, non-dumpable) checks
# them when asked over fds 7 and 8, which only it and this shell hold: it fails on any name left
# but the kept path's and its own log, sets the times to now, removes every attribute and fails if
# a user.* one remains; its reason goes to the stage log.
rsi_unmark() {
  set -- /workspace /tmp /dev/shm /dev/mqueue
  rsi_up_from=$rsi_keep
  while [ -n "$rsi_up_from" ] && [ "$rsi_up_from" != /tmp ]; do set -- "$@" "$rsi_up_from"; rsi_up_from=${rsi_up_from%/*}; done
  printf '%s\n' "$#" "$rsi_keep" "$@" >&7 || { echo "the sandbox's init did not take the check" >/tmp/.rsi-stage.log; return 1; }
  rsi_checked=""
  IFS= read -r rsi_checked <&8
  [ "$rsi_checked" = 0 ] && return 0
  [ -n "$rsi_checked" ] || echo "the sandbox's init gave no answer" >>/tmp/.rsi-stage.log
  echo "the reset could not clear what the phase left (above)" >>/tmp/.rsi-stage.log; return 1
}
# Everything written since the sandbox started is removed but $2 (a real directory under /tmp,
# or ''), and the staged tree copied in again. Every process is gone first: nothing writes meanwhile.
rsi_reset() {
  rsi_kill_all
  cd /
  c=0; rsi_keep=""
  case "$2" in /tmp/?*) [ -d "$2" ] && [ ! -L "$2" ] && rsi_keep=$2;; esac
  rsi_id=$1
  rsi_removing=1; rsi_sweep
  rsi_ipc
  rsi_removing=0; rsi_sweep
  if [ "$rsi_left" -gt 0 ]; then
    c=1; echo "$rsi_left written path(s) could not be removed" >/tmp/.rsi-stage.log
  elif ! rsi_unmark; then
    c=1
  else
    cp -R /src/. /workspace/ >/tmp/.rsi-stage.log 2>&1 || c=$?
  fi
  n=0; [ -s /tmp/.rsi-stage.log ] && n=$(tail -c __STAGE_LIMIT__ /tmp/.rsi-stage.log | wc -c)
  printf '\n\036RSI %s reset %s %s %s\n' "$rsi_token" "$rsi_id" "$c" "$n"; [ "$n" -gt 0 ] && tail -c "$n" /tmp/.rsi-stage.log
}
rsi_size() {
  rsi_bytes=""
  du -sb -- "$2" >/tmp/.rsi-du 2>/dev/null && read -r rsi_bytes rsi_rest </tmp/.rsi-du
  case $rsi_bytes in ''|*[!0-9]*) printf '\n\036RSI %s size %s 0 0\n' "$rsi_token" "$1";; *) printf '\n\036RSI %s size %s 1 %s 0\n' "$rsi_token" "$1" "$rsi_bytes";; esac
}
rsi_read() {
  if [ -f "$2" ] && [ -r "$2" ]; then
    n=$(wc -c <"$2"); n=${n:-0}; [ "$n" -gt "$3" ] && n=$3
    printf '\n\036RSI %s file %s 1 %s\n' "$rsi_token" "$1" "$n"; head -c "$n" "$2"
  else
    printf '\n\036RSI %s file %s 0 0\n' "$rsi_token" "$1"
  fi
}
rsi_stage
rsi_request=""; rsi_open=0
while IFS= read -r rsi_line; do
  case $rsi_line in
    "__RSI_BEGIN__ $rsi_token") rsi_request=""; rsi_open=1;;
    "__RSI_END__ $rsi_token") [ "$rsi_open" = 1 ] && eval "$rsi_request"; rsi_request=""; rsi_open=0;;
    *) [ "$rsi_open" = 1 ] && rsi_request="$rsi_request$rsi_line
";;
  esac
done
""".replace("__STAGE_LIMIT__", str(STAGE_LOG_LIMIT_BYTES))
    .replace("__LOG_LIMIT__", str(LOG_LIMIT_BYTES))
    .replace("__AUDIT_DIR__", AUDIT_MOUNT)
)


def _tampered(what: str) -> SandboxError:
    return SandboxError(
        f"{what} reached the harness: something in the sandbox wrote into the harness's channel. "
        "The sandbox is removed; the candidate is not measured."
    )


class ChannelClosed(SandboxError):
    """The driver's stream ended: the sandbox stopped (engine, outside kill, or the candidate)."""


@dataclass
class CommandOutcome:
    exit_code: int
    duration_s: float
    disk_full: bool
    output: bytes
    log_bytes: int | None = None
    disk_bytes: int | None = None
    audit: bytes | None = None
    """What the command's runtime audit hooks wrote (JSON lines); None: the init gave no answer."""


Receive = Callable[[float], bytes]
"""Read the next chunk of the driver's stdout, waiting at most the given seconds; b"" at the end."""


class DriverChannel:
    """The host side of the driver protocol over any byte transport."""

    def __init__(self, send: Callable[[bytes], None], receive: Receive, describe_end: Callable[[], str]):
        self._send = send
        self._receive = receive
        self._describe_end = describe_end
        self._buffer = b""
        self._counter = 0
        self.idle = False
        """True between complete answers: nothing of the candidate runs and the driver waits for input."""
        self._token = secrets.token_hex(16)
        """The session's secret: sent once, before anything of the candidate runs; in every request
        and record after."""
        self._request_raw(self._token.encode() + b"\n")

    def wait_ready(self, timeout_s: float) -> tuple[int, str]:
        """Wait for the driver's first record: the exit code and log of copying /src to /workspace."""
        fields, payload = self._record(timeout_s)
        if fields[0] != "ready":
            raise SandboxError(f"the sandbox driver sent {fields[0]!r} before it was ready")
        self.idle = True
        return int(fields[1]), payload.decode("utf-8", errors="replace")

    def run(self, command: str, timeout_s: float, cwd: str) -> CommandOutcome:
        seconds = max(1, round(timeout_s))
        request_id = self._next_id()
        self._request(f"rsi_exec {request_id} {seconds} {shlex.quote(cwd)} {shlex.quote(command)}")
        # The driver enforces the timeout; the host waits a little longer before declaring it stuck.
        fields, payload = self._record(seconds + 30.0)
        audit: bytes | None = None
        if fields[:2] == ["events", request_id]:
            audit = payload if fields[2] == "1" else None
            fields, payload = self._record(30.0)
        if fields[:2] != ["end", request_id]:
            raise SandboxError(f"the sandbox driver answered {fields[:2]} to command {request_id}")
        _, _, code, started, ended, full, log_bytes, disk_bytes = fields[:8]
        return CommandOutcome(
            exit_code=int(code),
            duration_s=round(max(0.0, float(ended) - float(started)), 3),
            disk_full=full == "1",
            output=payload,
            log_bytes=int(log_bytes),
            disk_bytes=int(disk_bytes),
            audit=audit,
        )

    def reset(self, keep: str, timeout_s: float = 120.0) -> tuple[int, str]:
        """Wipe what the candidate wrote (all but `keep`, '' for nothing), clear the extended
        attributes of what survives, and restage the tree."""
        request_id = self._next_id()
        self._request(f"rsi_reset {request_id} {shlex.quote(keep)}")
        fields, payload = self._record(timeout_s)
        if fields[:2] != ["reset", request_id]:
            raise SandboxError(f"the sandbox driver answered {fields[:2]} to reset {request_id}")
        return int(fields[2]), payload.decode("utf-8", errors="replace")

    def size_of(self, path: str, timeout_s: float = 60.0) -> int | None:
        request_id = self._next_id()
        self._request(f"rsi_size {request_id} {shlex.quote(path)}")
        fields, _ = self._record(timeout_s)
        if fields[:2] != ["size", request_id]:
            raise SandboxError(f"the sandbox driver answered {fields[:2]} to size {request_id}")
        return int(fields[3]) if fields[2] == "1" else None

    def read_file(self, path: str, max_bytes: int, timeout_s: float = 60.0) -> bytes | None:
        request_id = self._next_id()
        self._request(f"rsi_read {request_id} {shlex.quote(path)} {max_bytes + 1}")
        fields, payload = self._record(timeout_s)
        if fields[:2] != ["file", request_id]:
            raise SandboxError(f"the sandbox driver answered {fields[:2]} to read {request_id}")
        return payload if fields[2] == "1" else None

    # -- wire --------------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._counter += 1
        return str(self._counter)

    def _request(self, line: str) -> None:
        self.idle = False
        token = self._token.encode()
        # The leading newline ends any partial line written into the driver's input by another hand.
        self._request_raw(
            b"\n" + BEGIN_OF_REQUEST + b" " + token + b"\n" + line.encode() + b"\n"
            + END_OF_REQUEST + b" " + token + b"\n"
        )  # fmt: skip

    def _request_raw(self, data: bytes) -> None:
        try:
            self._send(data)
        except OSError as exc:
            raise ChannelClosed(
                f"could not send a command to the sandbox ({exc}). {self._describe_end()}"
            ) from exc

    @staticmethod
    def _refuse_foreign(before: bytes) -> None:
        """The driver writes nothing but records (each opens with a newline): any other byte between
        them was written into the channel by something else in the sandbox. (The start of a record's
        mark, cut off by the end of a read, is not foreign yet.)"""
        foreign = before.rstrip(b"\n")
        for cut in range(min(len(RECORD_MARK) - 1, len(foreign)), 0, -1):
            if foreign.endswith(RECORD_MARK[:cut]):
                foreign = foreign[:-cut]
                break
        foreign = foreign.strip(b"\n")
        if foreign or len(before) > 4096:  # the driver sends one newline before a record, not pages
            raise _tampered(f"{len(foreign) or len(before)} byte(s) outside the driver's records")

    def _fill(self, timeout_s: float) -> None:
        try:
            chunk = self._receive(timeout_s)
        except TimeoutError as exc:
            raise SandboxError(
                f"the sandbox did not answer within {timeout_s:.0f}s; its harness shell is stuck. "
                "The sandbox is removed; retry the candidate."
            ) from exc
        except OSError as exc:
            raise ChannelClosed(f"lost the sandbox's stream ({exc}). {self._describe_end()}") from exc
        if not chunk:
            raise ChannelClosed(f"the sandbox's harness shell ended unexpectedly. {self._describe_end()}")
        self._buffer += chunk

    def _record(self, timeout_s: float) -> tuple[list[str], bytes]:
        while (start := self._buffer.find(RECORD_MARK)) < 0 or self._buffer.find(b"\n", start) < 0:
            self._refuse_foreign(self._buffer if start < 0 else self._buffer[:start])
            self._fill(timeout_s)
        self._refuse_foreign(self._buffer[:start])
        end_of_header = self._buffer.find(b"\n", start)
        fields = self._buffer[start + len(RECORD_MARK) : end_of_header].decode(errors="replace").split()
        if not fields or not secrets.compare_digest(fields[0], self._token):
            raise _tampered("a record without this session's token")
        fields = fields[1:]
        size = int(fields[-1]) if fields and fields[-1].isdigit() else 0
        while len(self._buffer) < end_of_header + 1 + size:
            self._fill(timeout_s)
        payload = self._buffer[end_of_header + 1 : end_of_header + 1 + size]
        self._buffer = self._buffer[end_of_header + 1 + size :]
        self.idle = not self._buffer
        return fields, payload


BOOTSTRAP = 'cp /bin/sh /tmp/.rsi-sh && chmod 0111 /tmp/.rsi-sh && exec /tmp/.rsi-sh -c "$1"'
"""Start the driver from an execute-only copy of sh: exec of a file its user may not read leaves
the process non-dumpable (no /proc access for the same user without CAP_SYS_PTRACE, which no
sandbox has). If the copy cannot be made the sandbox ends before it is ready: it fails closed."""
DRIVER_ARGV = ["sh", "-c", BOOTSTRAP, "rsi-driver", DRIVER]


class ChannelSession:
    """What every channel-driven session does the same way, whatever runs the driver."""

    channel: DriverChannel
    ready_timeout_s: float = 120.0
    _lifetime: threading.Timer

    def _bound_lifetime(self, seconds: float) -> None:
        """A hard bound on the sandbox's life, even if the harness itself hangs."""
        self._lifetime = threading.Timer(seconds, self._end_now)
        self._lifetime.daemon = True
        self._lifetime.start()

    def _end_now(self) -> None:
        """Stop the sandbox at once (the lifetime bound ran out)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self) -> None:
        code, log = self.channel.wait_ready(timeout_s=self.ready_timeout_s)
        if code != 0:
            raise SandboxError(f"could not copy the workspace into the sandbox (exit {code}): {log[-500:]}")

    def exec(self, command: str, timeout_s: float, cwd: str = "/workspace") -> ExecResult:
        outcome = self.channel.run(command, timeout_s, cwd)
        seconds = max(1, round(timeout_s))
        return ExecResult(
            exit_code=outcome.exit_code,
            output=outcome.output.decode("utf-8", errors="replace"),
            duration_s=outcome.duration_s,
            timed_out=outcome.exit_code in (124, 137) and outcome.duration_s >= seconds - 0.5,
            disk_full=outcome.disk_full,
            log_bytes=outcome.log_bytes,
            disk_bytes=outcome.disk_bytes,
            audit=None if outcome.audit is None else outcome.audit.decode("ascii", errors="replace"),
        )

    def reset(self, keep: str | None = None) -> None:
        code, log = self.channel.reset(keep or "")
        if code != 0:
            raise SandboxError(
                f"could not return the sandbox to its staged state between phases (exit {code}): "
                f"{log.strip()[-500:]}. The candidate's files resisted removal; the evaluation stops."
            )

    def size_of(self, path: str) -> int | None:
        return self.channel.size_of(path)

    def begin_phase(self) -> None:
        """Backends with a resettable peak-memory counter reset it here."""

    def task_pids(self) -> list[int] | None:
        """Backends whose processes this host can see list them here."""
        return None

    def write_file(self, path: str, data: bytes) -> None:
        write_file_via_exec(self, path, data)  # type: ignore[arg-type]

    def read_file(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """Read a file out of the sandbox through the driver (works on tmpfs, costs no engine call)."""
        data = self.channel.read_file(path, max_bytes)
        if data is None:
            raise SandboxError(f"could not read {path} from the sandbox: no such readable file")
        if len(data) > max_bytes:
            raise SandboxError(f"{path} in the sandbox is larger than {max_bytes} bytes; not read.")
        return data
