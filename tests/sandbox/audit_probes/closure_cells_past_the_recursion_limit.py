# The recursion limit reached inside the audit hook: an event raised a few frames short of the limit
# makes the hook's own calls fail, and the RecursionError leaves it with its frames. The probe tries
# each depth, and where a traceback holds the hook's frames, swaps the writer in their closure cells
# for one that writes nothing, then runs text.
import os, sys

escaped = []


def deep(n, short):
    try:
        left = deep(n + 1, short)
    except RecursionError:
        return short
    if left == 0:
        try:
            sys.audit("open", "/nonexistent.pyc", "r", 0)
        except RecursionError as error:
            escaped.append(error)
        return -1
    return left - 1 if left > 0 else left


for short in range(8):
    deep(0, short)
    for error in escaped:
        tb = error.__traceback__
        while tb is not None:
            for value in list(tb.tb_frame.f_locals.values()):
                for cell in (value.__closure__ or ()) if type(value).__name__ == "function" else ():
                    if cell.cell_contents is os.write:
                        cell.cell_contents = lambda fd, data: len(data)
            tb = tb.tb_next
exec("print('RECURSION-LIMIT-EXEC-RAN')")
