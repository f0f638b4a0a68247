# an extension module (native code) loaded from the scratch space through a path that starts with an
# environment root: the hook's startswith(roots) test does not normalise "..".
import glob, os, shutil, sys
src = glob.glob(os.path.dirname(os.__file__) + "/lib-dynload/_codecs_tw*.so")[0]
via = sys.prefix + "/" + os.path.relpath("/tmp/lib", sys.prefix)  # /tmp/lib, spelled under the root
os.makedirs("/tmp/lib", exist_ok=True); shutil.copy(src, via + "/")   # (bytes of a .so the patch could carry)
sys.path.insert(0, via)
import _codecs_tw
print("EXT-LOADED", _codecs_tw.__file__)
