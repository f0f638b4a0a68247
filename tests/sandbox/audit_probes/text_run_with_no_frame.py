# text compiled with no Python frame on the stack is judged "the interpreter compiling the command's own
# script" (_classify: caller None and no stack). A new thread whose first call is the builtin exec has none.
import _thread, time
done = []
_thread.start_new_thread(exec, ("print('FRAMELESS-THREAD-EXEC-RAN'); import os; done.append(os.getpid())", {"done": done}))
while not done: time.sleep(0.01)
import atexit
atexit.register(exec, "print('FRAMELESS-ATEXIT-EXEC-RAN')", {})   # also frameless: runs at interpreter exit
