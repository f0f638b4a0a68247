# _posixsubprocess.fork_exec (here through multiprocessing.util.spawnv_passfds) raises no audit event;
# the child has no hook (the pipe is close-on-exec and RSI_AUDIT_FD was popped from the environment).
import os
from multiprocessing.util import spawnv_passfds
cmd = b"echo FORK_EXEC-RAN; python3 -c 'import sys,os; print(\"child hooked:\", \"json\" in sys.modules); os.system(\"echo GRANDCHILD-SYSTEM\"); import ctypes; print(\"child ctypes\", ctypes.CDLL(None).getpid())'"
pid = spawnv_passfds(b"/bin/sh", [b"/bin/sh", b"-c", cmd], ())
print("pid", pid, os.waitpid(pid, 0))
