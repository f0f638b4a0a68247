"""The system calls a bwrap sandbox may not make, as a seccomp filter bwrap installs (`--seccomp FD`).

Namespaces do not separate everything the kernel keeps. The key stores (`add_key`, `keyctl`,
`request_key`) are per host user: without a filter, every bwrap sandbox of a run — each phase, each
seed, each control — and the harness's own user share one user keyring, so a phase could leave a
trained model there for the next, or read the host user's keys. Docker's default seccomp profile
refuses these calls; this filter refuses them on bwrap too, with the same answer (EPERM), along with
the other calls that profile refuses to unprivileged code and no training needs: `bpf`,
`perf_event_open`, `userfaultfd` and io_uring. Calls of another ABI (32-bit x86 from a 64-bit
process) kill the process: the filter names the native ABI's calls only.

A sandbox without network (the default) may also open no socket but a Unix one (`socket` and
`socketpair` of any other family: EPERM). Its network namespace is its own, but it outlives every
phase of the sandbox: a loopback connection leaves its TCP socket in TIME_WAIT for a minute with no
process holding it, and the interface's and protocols' counters keep what was sent. A phase could
write kilobytes there (a trained model in 680 connections' addresses and ports) and the next phase
read them from /proc/net, past every reset. With no such socket, nothing is sent and nothing stays.

Docker has its own default profile, which refuses far more; a container cannot carry two profiles,
so the Docker backend keeps Docker's and adds this one on top, from inside: the sandbox's init
(sandbox/init.py) installs it before the driver starts, and every process of the sandbox inherits
it (filters stack, and the stricter answer wins).
"""

from __future__ import annotations

import ctypes.util
import errno
import functools
import os
import socket
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


SOCKET_CALLS = ("socket", "socketpair")
"""Refused for every address family but AF_UNIX in a sandbox without network."""


@functools.cache
def denied_syscalls_bpf(network: bool = False) -> bytes:
    """The compiled filter (classic BPF, as bwrap's `--seccomp` and the sandbox's init read it); `network`:
    the sandbox has a network (SandboxConfig.network_disabled is False), so sockets stay allowed."""
    if ctypes.util.find_library("seccomp") is None:
        raise SandboxError(
            "the bwrap backend needs libseccomp to refuse the kernel's shared key stores to sandboxes; "
            "install it (Debian: apt-get install libseccomp2) or use --backend docker."
        )
    import pyseccomp

    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED:
        flt.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    if not network:
        for name in SOCKET_CALLS:
            flt.add_rule(pyseccomp.ERRNO(errno.EPERM), name, pyseccomp.Arg(0, pyseccomp.NE, socket.AF_UNIX))
    with tempfile.TemporaryFile() as handle:
        flt.export_bpf(handle)
        handle.seek(0)
        return handle.read()


def filter_fd(network: bool = False) -> int:
    """A readable descriptor holding the filter, at its start, for bwrap's `--seccomp`; the caller
    passes it to bwrap and closes it."""
    fd = os.memfd_create("rsi-seccomp", 0)
    os.write(fd, denied_syscalls_bpf(network))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
