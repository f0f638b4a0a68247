# a crafted cached-bytecode file for a staged module, then any compile of that module's staged text in the
# same process: read_audit's _compiled_instead then takes the .pyc open for "cache missing, compiled instead".
import base64, os, sys, importlib.util
blob = base64.b64decode('YwAAAAAAAAAAAAAAAAMAAAAAAAAA8xwAAACXAAIAZQBkAKYBAACrAQAAAAAAAAAAAQBkAVMAKQJ6EE1BUlNIQUwtRVhFQy1SQU5OKQHaBXByaW50qQDzAAAAAPoGPGJsb2I++gg8bW9kdWxlPnIFAAAAAQAAAHMcAAAA8AMBAQHYAAWABdAGGNEAGdQAGdAAGdAAGdAAGXIDAAAA')          # marshalled code (data in the patch)
os.makedirs("/workspace/__pycache__", exist_ok=True)
header = importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little") + b"\0" * 8   # hash-based, unchecked
open("/workspace/__pycache__/model.cpython-311.pyc", "wb").write(header + blob)
sys.path.insert(0, "/workspace")
import model                           # runs the crafted bytecode
compile(open("/workspace/model.py").read(), "/workspace/model.py", "exec")   # the staged text: compile.file
