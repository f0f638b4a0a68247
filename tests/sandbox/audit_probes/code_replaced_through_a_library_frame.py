# code.replace called from a stdlib frame (threading.Thread.run): the judge trusts frames[0] under roots.
# Then function.__code__ assignment (object.__setattr__ is not watched) installs it; no function.__new__.
import threading
def victim(): return "original"
out = {}
def keep(c): out["c"] = c
co = victim.__code__
t = threading.Thread(target=co.replace, kwargs={"co_consts": (None, "REPLACED-CONSTS")})
# Thread.run discards the result: get it through another stdlib trampoline that returns it
import contextlib
with contextlib.ExitStack() as st:
    st.callback(lambda: None)
from concurrent.futures import Future
import functools
# simplest: use a stdlib function that calls f(*a, **kw) and returns it: concurrent.futures _WorkItem.run sets future result
from concurrent.futures.thread import _WorkItem
f = Future(); _WorkItem(f, co.replace, (), {"co_consts": (None, "REPLACED-CONSTS"), "co_filename": "/tmp/whatever.py"}).run()
victim.__code__ = f.result()
print("CODE-REPLACE", victim())
