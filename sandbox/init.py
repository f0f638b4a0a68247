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
  driver ends; then it ends, and the kernel ends whatever is left of the sandbox.

Signals from inside the sandbox reach a namespace's init only where it has a handler: it has none
but an ignored SIGINT, so nothing of the sandbox can end it. It fails closed: a filter it cannot
install, or a `prctl` that fails, and the sandbox never starts.
"""

from __future__ import annotations

INIT = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def fail(what):
    sys.stderr.write("rsi sandbox init: could not " + what + ": " + os.strerror(ctypes.get_errno()) + "\n")
    sys.exit(126)


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
child = os.fork()
if child == 0:
    for number in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
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
"""


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
