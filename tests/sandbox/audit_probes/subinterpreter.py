# Python audit hooks are per interpreter. A subinterpreter (_xxsubinterpreters, CPython 3.11) starts with
# none: its sitecustomize finds RSI_AUDIT_FD already popped by the main interpreter and installs nothing; its
# creation raises only cpython.PyInterpreterState_New, which the hook does not watch.
import _xxsubinterpreters as interpreters
sub = interpreters.create()
interpreters.run_string(sub, """
import os, ctypes, sys
exec("print('SUBINTERP-EXEC-RAN')")
os.system("echo SUBINTERP-SYSTEM-RAN")
print('SUBINTERP-CTYPES', ctypes.CDLL(None).getpid())
""")
