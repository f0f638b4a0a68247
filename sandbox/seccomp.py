"""The system calls a bwrap sandbox may not make, as a seccomp filter bwrap installs (`--seccomp FD`).

Namespaces do not separate everything the kernel keeps. The key stores (`add_key`, `keyctl`,
`request_key`) are per host user: without a filter, every bwrap sandbox of a run — each phase, each
seed, each control — and the harness's own user share one user keyring, so a phase could leave a
trained model there for the next, or read the host user's keys. Docker's default seccomp profile
refuses these calls; this filter refuses them on bwrap too, with the same answer (EPERM), along with
the other calls that profile refuses to unprivileged code and no training needs: `bpf`,
`perf_event_open`, `userfaultfd` and io_uring. Calls of another ABI (32-bit x86 from a 64-bit
process) kill the process: the filter names the native ABI's calls only.
"""

from __future__ import annotations

import ctypes.util
import errno
import functools
import os
import tempfile

from core.errors import SandboxError

DENIED = (
    "add_key",
    "request_key",
    "keyctl",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)
"""Refused with EPERM inside every bwrap sandbox."""


@functools.cache
def denied_syscalls_bpf() -> bytes:
    """The compiled filter (classic BPF, as bwrap's `--seccomp` reads it)."""
    if ctypes.util.find_library("seccomp") is None:
        raise SandboxError(
            "the bwrap backend needs libseccomp to refuse the kernel's shared key stores to sandboxes; "
            "install it (Debian: apt-get install libseccomp2) or use --backend docker."
        )
    import pyseccomp

    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED:
        flt.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    with tempfile.TemporaryFile() as handle:
        flt.export_bpf(handle)
        handle.seek(0)
        return handle.read()


def filter_fd() -> int:
    """A readable descriptor holding the filter, at its start, for bwrap's `--seccomp`; the caller
    passes it to bwrap and closes it."""
    fd = os.memfd_create("rsi-seccomp", 0)
    os.write(fd, denied_syscalls_bpf())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
