"""Hostile candidates as real diffs against the bundled target, shared by the backend tests."""

from __future__ import annotations

from tests.conftest import TARGET, labelled_containers, make_diff, sandboxes_of  # noqa: F401

MAIN = 'if __name__ == "__main__":\n    main()\n'


def inject_into_train(code: str) -> str:
    """A diff that runs `code` at the start of train.py's main block (not under the target's tests)."""
    guarded = "".join(f"        {line}\n" for line in code.splitlines() if line.strip())
    body = f'if __name__ == "__main__":\n    import os as _os\n    if "PYTEST_CURRENT_TEST" not in _os.environ:\n{guarded}    main()\n'
    return make_diff(TARGET, "train.py", MAIN, body)


NETWORK = """
import socket
try:
    socket.getaddrinfo("example.com", 443)
    raise SystemExit("DNS resolved")
except socket.gaierror:
    pass
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(3)
s.connect(("1.1.1.1", 53))
"""
FORK_BOMB = """
while True:
    _os.fork()
"""
MEMORY_HOG = """
hoard = []
while True:
    hoard.append(b"x" * (32 * 2**20))
"""
DISK_FILLER = """
with open("/workspace/filler", "wb") as handle:
    while True:
        handle.write(b"x" * 2**20)
        handle.flush()
"""
INFINITE_LOOP = """
while True:
    pass
"""
WRITE_OUTSIDE = """
written = []
for path in ("/evil", "/usr/evil", "/src/evil", "/heldout/evil", "/etc/evil", "/proc/sys/kernel/evil"):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        written.append(path)
    except OSError:
        pass
assert not written, "wrote outside the workspace: " + repr(written)
print("no write outside the workspace succeeded")
"""
FIND_THE_EVALUATOR = """
import os
hits = []
for root in ("/", ):
    for d, dirs, files in os.walk(root):
        if d.startswith(("/proc", "/sys", "/dev")):
            dirs[:] = []
            continue
        harness = {"evaluate.py", "heldout.py"} <= set(files)
        if harness or {"trajectory.jsonl", "run.json"} & set(files):
            hits.append(d)
assert not hits, "harness files visible: " + repr(hits)
print("no harness file visible")
"""
API_KEY_AND_PRIVILEGES = """
import os
assert os.getuid() != 0, "running as root"
assert "sk-ant-test-secret-123" not in repr(dict(os.environ)), "API key leaked"
caps = [l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1]
assert int(caps, 16) == 0, "capabilities: " + caps
nnp = [l for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0].split()[1]
print("NoNewPrivs", nnp)
"""


def label_scanner(labels_hex: str) -> str:
    return f"""
import os, sys
needle = bytes.fromhex("{labels_hex}")
for root in ("/heldout", "/src", "/workspace", "/tmp", "/home", "/etc", "/opt", "/root", "/var"):
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != "site-packages"]  # installed libraries, not harness data
        for f in files:
            p = os.path.join(d, f)
            try:
                data = open(p, "rb").read()
            except OSError:
                continue
            if needle in data:
                sys.exit("LABELS FOUND IN " + p)
print("heldout:", sorted(os.listdir("/heldout")))
"""
