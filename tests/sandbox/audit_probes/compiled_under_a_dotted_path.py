# a compiled file name /workspace/../tmp/x.py: the hook reads "/src/" + "../tmp/x.py" = the text itself.
src = "print('TRAVERSAL-EXEC-RAN')\n"
open("/tmp/x.py", "w").write(src)
exec(compile(src, "/workspace/../tmp/x.py", "exec"))
# and as an import: a module written at run time, imported through the same kind of path
open("/tmp/evilmod.py", "w").write("print('TRAVERSAL-IMPORT-RAN')\n")
import sys; sys.path.insert(0, "/workspace/../tmp"); import evilmod
