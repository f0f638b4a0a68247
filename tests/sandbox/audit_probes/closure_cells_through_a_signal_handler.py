# A signal handler runs inside the audit hook when its signal arrives there, and is handed the hook's
# frame: from its locals (no audited call) it reaches the closure cells of the hook's functions and
# swaps the writer for one that writes nothing; the text run after is then never recorded.
import os, signal, sys

done = []


def handler(sig, frame):
    while frame is not None and not done:
        for value in list(frame.f_locals.values()):
            for cell in (value.__closure__ or ()) if type(value).__name__ == "function" else ():
                if cell.cell_contents is os.write:
                    cell.cell_contents = lambda fd, data: len(data)
                    done.append(True)
        frame = frame.f_back


signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
while not done:
    sys.audit("probe.tick")  # an event the hook ignores: it just runs
signal.setitimer(signal.ITIMER_REAL, 0)
exec("print('SIGNAL-CELLS-EXEC-RAN')")
