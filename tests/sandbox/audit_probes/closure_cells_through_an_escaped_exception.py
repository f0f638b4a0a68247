# An object whose hash raises, handed to sys.audit as an attribute name: the exception leaves the audit
# hook, and its traceback holds the hook's frames, whose locals hold the hook's functions. The
# probe swaps the writer in their closure cells for one that writes nothing, then runs text.
import os, sys


class Name(str):
    def __hash__(self):
        raise ValueError("no hash")


try:
    sys.audit("object.__getattr__", None, Name("tb_frame"))
except ValueError as error:
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in frames:
        for value in list(frame.f_locals.values()):
            for cell in (value.__closure__ or ()) if type(value).__name__ == "function" else ():
                if cell.cell_contents is os.write:
                    cell.cell_contents = lambda fd, data: len(data)
exec("print('ESCAPED-EXCEPTION-EXEC-RAN')")
