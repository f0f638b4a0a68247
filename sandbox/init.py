"""The first process of every sandbox: the harness's own init, which no process of the sandbox can read.

A sandbox's PID 1 lives as long as the sandbox, through every reset between its phases, and runs as
the sandbox's own user. Docker's `docker-init` and bubblewrap's reaper are ordinary dumpable
processes there: a phase could write a trained model into PID 1's memory through `/proc/1/mem` and
the next phase read it back, past every reset (red team, round ten: a reference model's weights in
docker-init's unused stack, R² 0.97, `allow`). So both backends start this one instead (Docker with
`init` off, bubblewrap with `--as-pid-1`), from the image's or the bound environment's interpreter
(`python3 -I -S`, read-only):

- it installs a seccomp filter given in hex, if any (Docker: see sandbox/seccomp.py);
- it makes itself non-dumpable (`PR_SET_DUMPABLE` 0): without CAP_SYS_PTRACE, which no sandbox
  has, no process of the sandbox may open its `/proc` entries, memory or descriptors;
- it starts the driver as its child, with the signals a process normally starts with, and reaps
  every process that ends (a killed fork bomb's zombies must not hold the pids limit), until the
  driver ends; then it ends, and the kernel ends whatever is left of the sandbox;
- it checks what survives each reset between phases, when the driver asks over a pair of pipes
  only the two of them hold (fds 7 and 8 of the driver, closed for every command it runs): every
  name left in the directories a reset keeps but the kept path's, and extended attributes on what
  is left (sandbox/channel.py). Done here, by the trusted interpreter already running, the check
  costs a pipe round trip per reset instead of an interpreter's start (9 ms, six resets per
  candidate);
- it holds the reading end of the runtime audit's pipe (sandbox/audit): the driver and every command
  it runs inherit the writing end as fd 9, and after each command the driver asks for what was
  written there (a request `events` on fd 7; the answer on fd 8 is its length, a newline, then it).
  A thread empties the pipe while the command runs, so no writer ever waits on it: before, the pipe
  was read only after the command, and a tree that built 1,400 named tuples (each an accepted
  record) filled its 1 MiB and hung until the phase's timeout. What a command writes is kept up to
  `AUDIT_RECORD_CAP_BYTES`; past it the init reads on and counts what it drops, and the record ends
  with a line of its own that says so (`audit.overflow`, which sandbox/runtime_audit.py judges).

Signals from inside the sandbox reach a namespace's init only where it has a handler: it has none
but an ignored SIGINT, so nothing of the sandbox can end it. It fails closed: a filter it cannot
install, or a `prctl` that fails, and the sandbox never starts.
"""

from __future__ import annotations

AUDIT_RECORD_CAP_BYTES = 32 * 1024 * 1024
"""The most of one command's runtime audit record the init keeps (and the host then reads, judges
and stores). The bundled target writes 28 KB per phase with the bound environment's NumPy, some
220 KB with the image's (1.24); an honest tree that builds ten thousand named tuples writes 4 MB. Past it a command floods the record,
and what it wrote after the cap is not seen: the host denies that (sandbox/runtime_audit.py). The
init holds it in memory, in the sandbox's own memory limit, for one command at a time."""

INIT = r"""
import ctypes, fcntl, os, select, signal, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
CHECK_REQUESTS, CHECK_ANSWERS, AUDIT_EVENTS = 7, 8, 9
STAGE_LOG = "/tmp/.rsi-stage.log"
AUDIT_CAP = __AUDIT_CAP__


def fail(what):
    sys.stderr.write("rsi sandbox init: could not " + what + ": " + os.strerror(ctypes.get_errno()) + "\n")
    sys.exit(126)


def after_reset(keep, roots):
    # What survives a reset: every name the roots still list but the kept path's (and this log),
    # and extended attributes on what is left; the times of what is left set to now, and the mount
    # roots' modes to what they were when the sandbox started (a phase that made /tmp unreadable
    # hid what it left there from the sweep; red team round thirteen).
    for path, mode in MODES_AT_START.items():
        try:
            if os.lstat(path).st_mode & 0o7777 != mode:
                os.chmod(path, mode)
        except OSError as exc:
            return "could not restore the mode of " + path + ": " + exc.strerror
    allowed = {"/tmp": {".rsi-stage.log"}}
    parts = keep.split("/") if keep else []
    for depth in range(2, len(parts)):
        allowed.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
    stayed = []
    for path in roots:
        if path == keep:
            continue
        try:
            names = os.listdir(path)
        except FileNotFoundError:
            continue
        except OSError as exc:  # what cannot be listed cannot be shown empty: fail closed
            stayed.append(path + " (could not be listed: " + exc.strerror + ")")
            continue
        stayed += [os.path.join(path, name) for name in names if name not in allowed.get(path, ())]
    if stayed:
        return "left after the reset: " + ", ".join(repr(p) for p in stayed[:5])
    left = []
    for path in roots:
        try:
            os.utime(path, follow_symlinks=False)
        except OSError:
            pass
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            continue
        for name in names:
            try:
                os.removexattr(path, name, follow_symlinks=False)
            except OSError:
                if name.startswith("user."):
                    left.append(path + ": " + name)
    return "\n".join(left[:5])


# The runtime audit's record of the command running now: kept up to AUDIT_CAP bytes (whole lines),
# then only counted. Touched under `audit_lock` alone, by the thread that empties the pipe and by
# `serve` when the driver asks for the record or resets.
audit_lock = threading.Lock()
kept = bytearray()
dropped = [0, 0]  # bytes and lines read past the cap


def take(events):
    # Everything in the pipe now, into the record; False once no process holds its writing end.
    while True:
        try:
            chunk = os.read(events, 1 << 16)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        room = 0 if dropped[0] else AUDIT_CAP - len(kept)
        if len(chunk) <= room:
            kept.extend(chunk)
            continue
        # The cap reached: keep whole lines only; a partial line and the rest are counted, not kept.
        kept.extend(chunk[:room])
        end = kept.rfind(b"\n") + 1
        dropped[0] += len(kept) - end + len(chunk) - room
        dropped[1] += chunk.count(b"\n", room)
        del kept[end:]


def gather(events):
    # Empties the pipe as it fills, while commands run: a writer blocked on a full pipe would hang
    # the candidate's process until its phase's timeout.
    poller = select.poll()
    poller.register(events, select.POLLIN)
    while True:
        try:
            poller.poll()
        except InterruptedError:
            continue
        with audit_lock:
            if not take(events):
                return


def record(events):
    # What the command that just ended wrote (its processes are gone: what is still in the pipe is
    # the last of it), and, when the cap was reached, one line saying how much was not kept; the
    # record starts again empty.
    with audit_lock:
        take(events)
        if dropped[0]:
            kept.extend(
                b'{"event":"audit.overflow","kept":%d,"dropped_bytes":%d,"dropped_lines":%d,"cap":%d}\n'
                % (len(kept), dropped[0], dropped[1], AUDIT_CAP)
            )
        answer = bytes(kept)
        del kept[:]
        dropped[:] = [0, 0]
    return answer


def serve(requests, answers, events):
    # One request per reset from the driver: a count, the kept path, the roots, one per line. The
    # answer is one line, 0 or 1, the reason in the stage log. Nothing else can write here: the
    # pipes are the driver's, and neither the driver nor this process can be read by the sandbox.
    with os.fdopen(requests, "rb", buffering=0) as inbox, os.fdopen(answers, "wb", buffering=0) as outbox:
        for line in iter(inbox.readline, b""):
            if line == b"events\n":
                # The runtime audit of the command that just ended (sandbox/audit): its length, then it.
                answer = record(events)
                outbox.write(str(len(answer)).encode() + b"\n")
                view = memoryview(answer)
                while view:  # an unbuffered write may take part of it
                    view = view[outbox.write(view) :]
                continue
            record(events)  # a reset: what earlier commands wrote is no phase's to judge
            problem = "the reset's request could not be read"
            try:
                count = int(line)
                fields = [inbox.readline().decode("utf-8", "surrogateescape")[:-1] for _ in range(count + 1)]
                problem = after_reset(fields[0], fields[1:])
            except Exception as exc:
                problem = problem + ": " + repr(exc)
            try:
                with open(STAGE_LOG, "w") as log:
                    log.write(problem + "\n" if problem else "")
            except OSError:
                problem = problem or "the stage log could not be written"
            outbox.write(b"1\n" if problem else b"0\n")


program = bytes.fromhex(sys.argv[1])
if program:
    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    held = ctypes.create_string_buffer(program, len(program))
    fprog = Program(len(program) // 8, ctypes.addressof(held))
    # PR_SET_NO_NEW_PRIVS (38), then PR_SET_SECCOMP (22) with SECCOMP_MODE_FILTER (2).
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.addressof(fprog), 0, 0) != 0:
        fail("install the seccomp filter")
if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE: 0
    fail("make the sandbox's init non-dumpable")
MODES_AT_START = {}
for root in ("/workspace", "/tmp", "/dev/shm", "/dev/mqueue"):
    try:
        MODES_AT_START[root] = os.lstat(root).st_mode & 0o7777
    except OSError:
        pass


def above_the_driver(fd):
    # Moved above the driver's fds (and close-on-exec): dup2 onto 7 and 8 clobbers none of them.
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


request_read, request_write = (above_the_driver(fd) for fd in os.pipe())
answer_read, answer_write = (above_the_driver(fd) for fd in os.pipe())
# The runtime audit's pipe (sandbox/audit): every command of the driver inherits its writing end as
# fd 9; its reading end is this process's alone, emptied as it fills by `gather`.
events_read, events_write = (above_the_driver(fd) for fd in os.pipe())
try:
    fcntl.fcntl(events_write, 1031, 1 << 20)  # F_SETPIPE_SZ: 1 MiB of slack between reads of `gather`
except OSError:
    pass
os.set_blocking(events_read, False)
child = os.fork()
if child == 0:
    for number in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    try:
        os.dup2(request_write, CHECK_REQUESTS)
        os.dup2(answer_read, CHECK_ANSWERS)
        os.dup2(events_write, AUDIT_EVENTS)
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
os.close(request_write)
os.close(answer_read)
os.close(events_write)
threading.Thread(target=serve, args=(request_read, answer_write, events_read), daemon=True).start()
threading.Thread(target=gather, args=(events_read,), daemon=True).start()
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        sys.exit(0)
    except InterruptedError:
        continue
    if pid == child:
        code = os.waitstatus_to_exitcode(status)
        sys.exit(code if code >= 0 else 128 - code)
""".replace("__AUDIT_CAP__", str(AUDIT_RECORD_CAP_BYTES))


def init_argv(pythons: tuple[str, ...], argv: list[str], seccomp_filter: bytes = b"") -> list[str]:
    """`argv` as the child of the harness's init, run by the first of `pythons` that exists (a
    sandbox with none of them never starts), after it installs `seccomp_filter` (classic BPF) if given."""
    choices = " ".join(pythons)
    start = (
        f'for rsi_python in {choices}; do [ -x "$rsi_python" ] && '
        'exec "$rsi_python" -I -S -c "$0" "$@"; done; '
        'echo "rsi sandbox: no Python to start the sandbox with" >&2; exit 127'
    )
    return ["sh", "-c", start, INIT, seccomp_filter.hex(), *argv]
