# exec of text from inside importlib's _LoaderBasics.exec_module: the judge exempts
# compile whose frames are _call_with_frames_removed <- exec_module (meant for extension modules).
import importlib._bootstrap_external as be, types
class L(be._LoaderBasics):
    def get_code(self, name): return "print('LOADER-EXEC-RAN', __name__)"
m = types.ModuleType("m")
L().exec_module(m)
