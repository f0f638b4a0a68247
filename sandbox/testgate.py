"""The test gate: the harness, not the candidate's tree, decides how the target's tests run and
what their outcome is.

A pytest test command from rsi.toml (`python -m pytest ARGS` or `pytest ARGS`) keeps ARGS as the
selection and is run by the harness's own bootstrap (below, passed inline with `-c`, so there is
no file in the sandbox the candidate could replace or pre-empt):

- the sandbox's own interpreter by absolute path (the backend names it: the image's Python, or
  the environment bwrap binds read-only), isolated with `-I` (no PYTHON* variables, no user site,
  no current directory or script directory on sys.path) and `-B` (no bytecode written into the
  tree): a `pytest.py`, `sitecustomize.py`, `usercustomize.py` or `.pth` file in the tree is never
  imported at startup;
- the candidate's root appended to the *end* of sys.path, and an import finder placed before the
  path finder that resolves every top-level name the interpreter's own paths provide (the standard
  library, numpy, pytest…) from those paths only — even after a conftest puts the tree first;
- every protected module of the tree (rsi.toml's [protected].paths, and the test directory's
  files) must be what its import name loads: judged in each directory by the import system's own
  FileFinder order (a package `X/` before an extension module `X.*.so` before `X.py` before a
  sourceless `X.pyc`), from the file up through the packages holding it, before any code of the
  tree runs; a tree whose added `predict/__init__.py` would be imported instead of the protected
  `predict.py` fails the run (`<gate import names>`) before any test runs; the name is also pinned to the
  file in the finder above, so no directory earlier on sys.path answers for it (checked in
  sys.modules after collection and at the end);
- pytest configured by the harness: an empty ini of its own (`-c`), `--rootdir` at the tree,
  `--confcutdir` at the test directory (so a conftest.py outside it is never loaded), no cache
  provider, no plugin autoloading, no PYTEST_* variables: the tree's pytest.ini, tox.ini,
  setup.cfg and pyproject.toml are never read;
- every callable of a trusted module (standard library, numpy…) is fingerprinted as that module
  finishes loading (identity, code object, defaults; class members too) and checked after
  collection, after each test and at the end: code the tests import that rebinds one, swaps its
  code or defaults, replaces the module or plants a fake submodule makes the run an error, so
  weakening what the assertions call (`numpy.testing.assert_allclose`, `numpy.isclose`) does not
  turn failures into passes (a name rebound to another function written in the trusted
  environment is excused: pytest and joblib rebind standard hooks themselves);
- the protected test modules are held the same way: each file under the test directory is read
  before any code of the tree runs; after collection, right before each test and at the end, every
  module imported from one must still bind, by identity, what its import statements give for
  trusted modules (`np` is numpy), hold the functions, classes and literal constants its file
  defines, and each of those functions (and the test or fixture pytest is about to call) must run
  the code compiled from that file, with its defaults: code the tests import that rebinds a test
  module's `np`, swaps a test's `__code__` or adds a name hiding a builtin makes the run an error;
- the classes alive while the tests run are watched (after collection, after each test, at the end,
  and from a gc callback before any collection frees one): a type of the tree that changes how a
  value reads or compares (a value subclass overriding `__getitem__`, an ndarray subclass with
  `__array_function__`, a duck array) is reported in `TestResult.value_faces`, which the integrity
  check `test-values` sends to a human (what the tests assert may not be what training uses);
- the outcome per node id is written by the bootstrap's own plugin to a report file; the counts
  and the verdict come from that report and the exit status, never from the printed output.

A test command that is not pytest runs as written; its result is its exit code alone, and the
TestResult says so (`counts_from="exit_code"`).

What this cannot stop: code of the candidate that the tests import runs in the same interpreter
as the bootstrap and could tamper with pytest from inside; the policy's code rules and a human
review are the defence there (see SECURITY.md).

    gate = TestGate.from_command("python -m pytest -q -x tests")
    phase = session.exec(gate.command(backend.trusted_pythons()), timeout_s=120)
    tests = gate.result(phase, session.read_file(gate.report_path))
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.machinery
import json
import os
import posixpath
import secrets
import shlex
from collections.abc import Sequence
from pathlib import Path

import pathspec

from core.contracts import TestResult
from core.errors import ConfigError
from sandbox.base import WORKDIR, ExecResult, tail
from sandbox.channel import UNAUDITED

PYTEST_LAUNCHERS = (("python", "-m", "pytest"), ("python3", "-m", "pytest"), ("pytest",), ("py.test",))
GATE_OWNED_OPTIONS = (
    "-c",
    "--config-file",
    "--rootdir",
    "--confcutdir",
    "--noconftest",
    "-p",
    "-o",
    "--override-ini",
    "--import-mode",
    "--pyargs",
)
"""pytest options only the gate sets; a test command that uses them is refused."""
VALUE_OPTIONS = ("-k", "-m", "-W", "-r", "--tb", "--maxfail", "--durations", "--deselect", "--ignore")
"""Selection options that take a separate value (so that value is not a test path)."""
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
MAX_NOT_PASSED = 200
"""Node ids kept in TestResult.not_passed (the counts stay exact); bounds what a record carries."""
CANARY_NODE = "<gate canary>"
"""Where TestResult.not_passed says the gate's canary was not reported failed."""
TRUSTED_NODE = "<gate trusted code>"
"""Where TestResult.not_passed says code run by the tests replaced a trusted module's callable."""
IMPORT_NODE = "<gate import names>"
"""Where TestResult.not_passed says a protected module's import name loads another file of the tree."""
TEST_CODE_NODE = "<gate test code>"
"""Where TestResult.not_passed says code run by the tests changed a protected test module: a name
its import statements bind, a function, class or constant its file defines, or the code a test or
fixture runs."""

BOOTSTRAP = r"""
import hashlib, hmac, importlib.machinery, importlib.util, json, os, sys, tempfile
report_path, key_path, root, confcutdir, protected_json, *selection = sys.argv[1:]
for name in [n for n in os.environ if n.startswith("PYTEST_")]:
    del os.environ[name]
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
trusted = list(sys.path)


def make_sealer(path):
    # The key the harness wrote is read and removed before any code of the tree runs.
    with open(path, "rb") as handle:
        key = handle.read()
    os.unlink(path)
    new, digest, dumps = hmac.new, hashlib.sha256, json.dumps
    draw = int.from_bytes(digest(b"canary" + key).digest()[:8], "big")
    return (lambda body: dumps({"body": body, "seal": new(key, body.encode(), digest).hexdigest()})), draw


seal, draw = make_sealer(key_path)
del key_path


def make_import_pins(paths, root, tests):
    # The protected module files of the tree (and the test directory's) are what their import names
    # load. Per directory by FileFinder's own order (a package X/ before an extension module before
    # X.py before a sourceless X.pyc): a tree whose X/__init__.py, X.abi3.so or X/__init__.pyc would
    # win over a protected X.py is reported (the run fails closed), from each file up through the
    # packages that hold it. And on the path: the name (dotted from the root) is pinned to the file
    # in TrustedFirst, so no directory earlier on sys.path can answer for it either.
    from importlib._bootstrap_external import _get_supported_file_loaders
    from importlib.machinery import FileFinder, all_suffixes

    details, realpath, join, sep = _get_supported_file_loaders(), os.path.realpath, os.path.join, os.sep
    suffixes = sorted(all_suffixes(), key=len, reverse=True)
    root, tests = realpath(root), realpath(tests)
    pins, shadowed = {}, []

    def stem(base):
        for suffix in suffixes:
            if base.endswith(suffix) and base[: -len(suffix)]:
                return base[: -len(suffix)].split(".", 1)[0]
        return None

    def loads(folder, name):
        # What `name` loads from `folder`: the file (a package's __init__) or a namespace's directory.
        try:
            spec = FileFinder(folder, *details).find_spec(name)
        except (OSError, ImportError, ValueError):
            spec = None
        if spec is None:
            return None
        if spec.origin is None and spec.submodule_search_locations:
            return realpath(list(spec.submodule_search_locations)[0])
        return realpath(spec.origin) if spec.origin else None

    def where(path):
        return os.path.relpath(path, root) if path else "nothing"

    def holds(found, expected):
        # A directory on the way holds what loads (its __init__, or itself as a namespace); the file
        # itself must be exactly what loads.
        if found is None:
            return False
        return join(found, "").startswith(expected) if expected.endswith(sep) else found == expected

    for relative in paths:
        file = realpath(join(root, relative))
        folder, name = os.path.split(file)
        name = stem(name)
        stop = tests if file.startswith(join(tests, "")) else root
        if name is None or not os.path.isfile(file) or not file.startswith(join(stop, "")):
            continue
        if name == "__init__":
            folder, name = os.path.split(folder)
        if folder != stop and not folder.startswith(join(stop, "")):
            continue  # the test directory's own __init__: pytest imports it by path
        # (directory, name, what it must load): the file itself, then each directory holding it.
        chain = [(folder, name, file)]
        while folder != stop and name.isidentifier():
            expected, (folder, name) = folder, os.path.split(folder)
            chain.append((folder, name, join(expected, "")))
        if not all(n.isidentifier() for _, n, _ in chain):
            continue  # not importable by name (a `my-dir/` on the way)
        for folder, name, expected in chain:
            found = loads(folder, name)
            if not holds(found, expected):
                place = where(folder) + "/" if folder != root else "the root"
                shadowed.append(f"{where(file)}: `{name}` in {place} loads {where(found)} instead")
                break
        if stop == root:
            pins[".".join(n for _, n, _ in reversed(chain))] = file

    def check():
        # A pinned name some code bound in sys.modules to another file than the protected one.
        for name, file in pins.items():
            module = sys.modules.get(name)
            origin = getattr(getattr(module, "__spec__", None), "origin", None)
            if module is not None and (not isinstance(origin, str) or realpath(origin) != file):
                shadowed.append(f"{where(file)}: sys.modules[{name!r}] is {origin!r}, not that file")
        return shadowed

    return pins, check


pinned_names, check_imports = make_import_pins(json.loads(protected_json), root, confcutdir)
del protected_json
if check_imports():
    # Nothing the tests could show is about the protected code (pytest itself may not get past a
    # conftest shadowed this way): the run ends here, its sealed report naming what takes its place.
    body = {"exit_status": 1, "outcomes": {}, "canary": "absent", "shadowed": sorted(set(check_imports()))[:20]}
    with open(report_path, "w", encoding="utf-8") as handle:
        handle.write(seal(json.dumps(body)))
    print("test gate: " + "; ".join(body["shadowed"]), file=sys.stderr)
    sys.exit(1)


class TrustedFirst:
    # A top-level name the interpreter's own paths provide always comes from there; a protected
    # module of the tree always from its file.
    @staticmethod
    def find_spec(name, path=None, target=None):
        if path is None and "." not in name:
            spec = importlib.machinery.PathFinder.find_spec(name, trusted)
            if spec is not None and spec.loader is not None:
                return spec
        pinned = pinned_names.get(name)
        return None if pinned is None else importlib.util.spec_from_file_location(name, pinned)

    @staticmethod
    def invalidate_caches():
        pass


finders = sys.meta_path
finders.insert(finders.index(importlib.machinery.PathFinder), TrustedFirst)


def make_warden(trusted, skip=("__main__", "sys", "warnings")):
    # Every callable a trusted module (standard library, numpy...) binds, seen as it finished loading:
    # code the tests import may not rebind it, swap its code or defaults, or replace the module.
    import importlib._bootstrap as bootstrap
    from importlib.machinery import PathFinder
    from functools import partial
    from types import FunctionType, MethodType, ModuleType

    roots = tuple(os.path.join(os.path.abspath(p), "") for p in trusted if p and os.path.isdir(p))
    prints, changed, modules = {}, [], sys.modules

    def is_trusted(name, module):
        spec = getattr(module, "__spec__", None)
        if name.split(".")[0] in skip or not isinstance(module, ModuleType) or getattr(spec, "_initializing", 0):
            return False  # a module still loading is seen once its own code has finished
        origin = getattr(spec, "origin", None) or getattr(module, "__file__", None)
        return origin in ("built-in", "frozen") or (isinstance(origin, str) and origin.startswith(roots))

    def mark(value):
        if isinstance(value, FunctionType):
            return id(value), id(value.__code__), id(value.__defaults__), id(value.__kwdefaults__)
        kept = callable(value) or isinstance(value, (ModuleType, property, classmethod, staticmethod))
        return (id(value),) if kept else None

    def fingerprint(module, deep=True):
        found = {}
        for key, value in list(vars(module).items()):
            if (marked := mark(value)) is not None:
                found[key] = marked
            if deep and isinstance(value, type) and value.__module__ == module.__name__:
                for attr, member in list(vars(value).items()):
                    if (marked := mark(member)) is not None:
                        found[key + "." + attr] = marked
        return found

    def adopt():
        for name, module in list(modules.items()):
            if name not in prints and is_trusted(name, module):
                top = fingerprint(module, deep=False)
                prints[name] = (module, top, fingerprint(module), set(vars(module)))

    def check(deep=True):
        # After each test only the modules' own bindings (the cheap part); class members and names a
        # module gained after collection and at the end.
        for name, (module, top, before, names) in prints.items():
            if modules.get(name, module) is not module:
                changed.append(name + " (the module itself)")
                continue
            if not deep:
                if fingerprint(module, deep=False) != top:
                    changed.extend(f"{name}.{k}" for k, v in top.items() if marks(module, k) != v and not rebound(module, k, v))
                continue
            now = fingerprint(module)
            changed.extend(f"{name}.{k}" for k, v in before.items() if now.get(k) != v and not rebound(module, k, v))
            # A name it gains must be a submodule the import system loaded, not one planted from outside.
            changed.extend(f"{name}.{k}" for k in vars(module).keys() - names if planted(name, module, k))
        return changed

    def marks(module, key):
        return mark(vars(module).get(key)) if key in vars(module) else None

    def planted(name, module, key):
        value = vars(module).get(key)
        if isinstance(value, ModuleType) or (
            hasattr(module, "__path__") and PathFinder.find_spec(f"{name}.{key}", list(module.__path__))
        ):
            return value is not modules.get(f"{name}.{key}")  # only the import system binds a submodule
        value = unwrap(value)
        if isinstance(value, FunctionType):
            return not value.__code__.co_filename.startswith(roots)
        if isinstance(value, type):
            return not is_trusted(value.__module__, modules.get(value.__module__))
        return False

    def rebound(module, key, before):
        # Trusted code rebinds trusted names too (pytest its hooks into pdb and threading, joblib
        # multiprocessing's): a name bound to another function written in the trusted environment is
        # excused; the same function with other code or defaults, or anything the tree wrote, is not.
        value = module
        for part in key.split("."):
            value = vars(value).get(part) if isinstance(value, (type, ModuleType)) else None
        if value is None or id(value) == before[0]:
            return False
        value = unwrap(value)
        return isinstance(value, FunctionType) and value.__code__.co_filename.startswith(roots)

    def unwrap(value):
        # Only the wrappers' own fields: a lookup on an arbitrary object can run its code.
        value = value.func if isinstance(value, partial) else value
        is_method = isinstance(value, (MethodType, staticmethod, classmethod))
        return value.__func__ if is_method else value

    loader = bootstrap._find_and_load

    def find_and_load(name, import_):
        module = loader(name, import_)
        adopt()
        return module

    bootstrap._find_and_load = find_and_load
    adopt()
    pinned = {name: modules[name] for name in skip[1:] if name in modules}

    def held(name):
        # The module the import system gave for `name` if the warden holds it (None: not trusted).
        entry = prints.get(name)
        return entry[0] if entry is not None else pinned.get(name)

    def adopted(name, key):
        # What a trusted module bound under `key` (or `Class.member`) as it finished loading.
        entry = prints.get(name)
        return None if entry is None else entry[2].get(key)

    return check, held, roots, adopted


check_trusted, held_module, trusted_roots, adopted_binding = make_warden(trusted)
import pytest

Function, Module, hookimpl, write = pytest.Function, pytest.Module, pytest.hookimpl, open


def read_tests(top):
    # The protected test files, read before any code of the tree runs (that code could rewrite them).
    sources = {}
    for folder, folders, files in os.walk(top):
        folders[:] = sorted(f for f in folders if f != "__pycache__" and not f.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.realpath(os.path.join(folder, name))
                try:
                    with open(path, "rb") as handle:
                        sources[path] = handle.read()
                except OSError:
                    pass
    return sources


def make_test_warden(sources, held, roots, top):
    # The protected test modules are the harness's, like the trusted modules: every module imported
    # from those files must still bind, by identity, what its own import statements give for trusted
    # modules, and still hold the functions, classes and constants its file defines, each function
    # running the code compiled from that file (as pytest's assertion rewriting compiles it).
    import ast, builtins
    from types import CodeType, FunctionType, MethodType, ModuleType
    from _pytest import fixtures
    from _pytest.assertion.rewrite import rewrite_asserts

    # pytest 8.4 wraps a fixture in its own class; older versions in a function (followed by __wrapped__).
    FixtureFunctionDefinition = getattr(fixtures, "FixtureFunctionDefinition", FunctionType)

    parse, literal, compile_, realpath, unparse = ast.parse, ast.literal_eval, compile, os.path.realpath, ast.unparse
    module_dict, type_dict = ModuleType.__dict__["__dict__"].__get__, type.__dict__["__dict__"].__get__
    builtin_names, builtin_dict, missing = set(vars(builtins)), vars(builtins), object()
    own = {"__name__", "__doc__", "__package__", "__loader__", "__spec__", "__file__", "__cached__", "__builtins__"}
    plans, codes, good, modules, functions, changed, state = {}, {}, {}, {}, {}, [], {}
    top = os.path.join(realpath(top), "")
    not_literal = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)

    def where(path):
        return os.path.relpath(path, root)

    def statements(body, nested=False):
        for node in body:
            yield node, nested
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        yield from statements(inner, True)

    def bound(body):
        # Every name the statements bind in their own scope (not inside functions or classes).
        names, todo = [], list(body)
        while todo:
            node = todo.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
                continue
            if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                continue
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                names.append(node.id)
            elif isinstance(node, ast.alias) and node.name != "*":
                names.append(node.asname or node.name.split(".")[0])
            elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
                names.append(node.name)
            todo.extend(ast.iter_child_nodes(node))
        return names

    def once(names, excluded=()):
        return {n for n in names if names.count(n) == 1 and n not in excluded}

    def class_plan(node):
        names = bound(node.body)
        single = once(names)
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
        defs = {n.name: n for n in node.body if isinstance(n, kinds) and n.name in single}
        nested = {n.name: class_plan(n) for n in node.body if isinstance(n, ast.ClassDef) and n.name in single}
        return {"node": node, "defs": defs, "classes": nested, "names": set(names)}

    def plan_for(path):
        # What the file's top level binds, read from its syntax tree once per session.
        if path in plans:
            return plans[path]
        tree = parse(sources[path], filename=path)
        declared = {n for node in ast.walk(tree) if isinstance(node, ast.Global) for n in node.names}
        names = bound(tree.body)
        single = once(names, declared)
        imports, defs, classes, constants = {}, {}, {}, {}
        for node, nested in statements(tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.asname or alias.name.split(".")[0]
                    imports[name] = (alias.name if alias.asname else name, None, unparse(node))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    if alias.name != "*":
                        imports[alias.asname or alias.name] = (node.module, alias.name, unparse(node))
            elif nested:
                continue
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defs[node.name] = node
            elif isinstance(node, ast.ClassDef):
                classes[node.name] = class_plan(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if len(targets) == 1 and isinstance(targets[0], ast.Name):
                    try:
                        constants[targets[0].id] = literal(node.value)
                    except not_literal:
                        pass
        plan = {
            "imports": {k: v for k, v in imports.items() if k in single},
            "defs": {k: v for k, v in defs.items() if k in single},
            "classes": {k: v for k, v in classes.items() if k in single},
            "constants": {k: v for k, v in constants.items() if k in single},
            "names": set(names),
        }
        plans[path] = plan
        return plan

    def compiled(path, rewritten):
        # Every code object the file compiles to, by qualified name: as pytest's assertion rewriting
        # compiles it (test files, conftest), or as plain Python (helpers, --assert=plain).
        if (path, rewritten) not in codes:
            tree = parse(sources[path], filename=path)
            if rewritten:
                rewrite_asserts(tree, sources[path], path, state.get("config"))
            found, todo = {}, [compile_(tree, path, "exec", dont_inherit=True)]
            while todo:
                code = todo.pop()
                found.setdefault(code.co_qualname, []).append(code)
                todo.extend(c for c in code.co_consts if type(c) is CodeType)
            codes[path, rewritten] = found
        return codes[path, rewritten]

    def same_code(path, key, code):
        # Compared once by value (bytecode, constants recursively, names), then by identity.
        seen = good.setdefault((path, key), {})
        if seen.get(id(code)) is code:
            return True
        for rewritten in (True, False):
            if any(code == ref for ref in compiled(path, rewritten).get(key, ())):
                seen[id(code)] = code
                return True
        return False

    def layers(value):
        # What a definition's name holds, outermost first: the wrappers the trusted environment makes
        # (pytest's fixture definition, functools.wraps, staticmethod...) down to the function.
        found = [value]
        while len(found) < 8:
            if isinstance(value, (staticmethod, classmethod, MethodType)):
                value = value.__func__
            elif isinstance(value, property):
                value = value.fget
            elif isinstance(value, (FunctionType, FixtureFunctionDefinition)):
                inner = vars(value)
                value = inner.get("_fixture_function", inner.get("__wrapped__", missing))
                if value is missing:
                    break
            else:
                break
            found.append(value)
        return found

    def wrapped_by_own(path, wrapper):
        # A decorator's wrapper is the trusted environment's code (functools, pytest) or the file's.
        code = wrapper.__code__
        return code.co_filename.startswith(roots) or same_code(path, code.co_qualname, code)

    def trusted(value):
        found = [f for f in layers(value) if isinstance(f, FunctionType)]
        return bool(found) and all(f.__code__.co_filename.startswith(roots) for f in found)

    def same_literal(node, value):
        try:
            expected = literal(node)
        except not_literal:
            return True  # not a literal: what it evaluated to cannot be read from the file
        return type(value) is type(expected) and value == expected

    def judge_function(path, key, node, value, namespace, owner, out):
        # The function a def's name holds runs the file's code, with its globals, builtins, defaults.
        chain = layers(value)
        found = [layer for layer in chain if isinstance(layer, FunctionType)]
        plain = not node.decorator_list
        if not found or (plain and (chain[0] is not found[0] or len(found) > 1)):
            if plain or value is missing:
                out.append(f"{where(path)}: {key} is no longer the function its file defines")
            return
        function = found[-1]
        if not all(wrapped_by_own(path, wrapper) for wrapper in found[:-1]):
            out.append(f"{where(path)}: {key} is wrapped by code its file does not define")
        if not same_code(path, key, function.__code__):
            out.append(f"{where(path)}: {key} runs code other than its file's")
        if function.__globals__ is not namespace or function.__builtins__ is not builtin_dict:
            out.append(f"{where(path)}: {key} runs with other globals or builtins than its module's")
        arguments, given = node.args, function.__defaults__ or ()
        kw_nodes = {a.arg: d for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None}
        kw_given = function.__kwdefaults__ or {}
        if (
            len(given) != len(arguments.defaults)
            or not all(same_literal(n, v) for n, v in zip(arguments.defaults, given))
            or set(kw_given) != set(kw_nodes)
            or not all(same_literal(n, kw_given[k]) for k, n in kw_nodes.items())
        ):
            out.append(f"{where(path)}: {key} has defaults other than its file gives")
        cells = function.__closure__ or ()
        if function.__code__.co_freevars == ("__class__",) and owner is not None:
            try:
                if cells[0].cell_contents is not owner:
                    out.append(f"{where(path)}: {key} is bound to another class")
            except (IndexError, ValueError):
                out.append(f"{where(path)}: {key} is bound to another class")
        elif cells:
            out.append(f"{where(path)}: {key} closes over values its file does not give")
        functions[id(function)] = (path, key, function)

    def resolve(node, namespace):
        # A class's base named by the file (`Base`, `unittest.TestCase`), through the module's bindings.
        if isinstance(node, ast.Name):
            return namespace.get(node.id, builtin_dict.get(node.id, missing))
        if isinstance(node, ast.Attribute):
            base = resolve(node.value, namespace)
            if isinstance(base, ModuleType):
                return module_dict(base).get(node.attr, missing)
        return missing

    def judge_class(path, key, plan, value, namespace, out):
        node = plan["node"]
        if not isinstance(value, type):
            out.append(f"{where(path)}: {key} is no longer the class its file defines")
            return
        members = type_dict(value)
        for name, sub in plan["defs"].items():
            judge_function(path, f"{key}.{name}", sub, members.get(name, missing), namespace, value, out)
        for name, sub in plan["classes"].items():
            judge_class(path, f"{key}.{name}", sub, members.get(name, missing), namespace, out)
        if node.decorator_list or node.keywords or type(value) is not type:
            return  # a decorator or a metaclass may add members: only the ones the file defines are judged
        bases = [resolve(b, namespace) for b in node.bases] or [object]
        if missing not in bases and tuple(bases) != value.__bases__:
            out.append(f"{where(path)}: {key} has other base classes than its file gives")
        # A callable or descriptor added to it overrides what the class (or its bases) define: a
        # lenient `assertEqual` on a TestCase. (unittest keeps its own state there, as plain values;
        # older pytest adds a class-setup fixture of its own.)
        extra = members.keys() - plan["names"] - own - {"__dict__", "__weakref__", "__qualname__", "__module__"}
        kinds = (staticmethod, classmethod, property)
        extra = {n for n in extra if (callable(members[n]) or isinstance(members[n], kinds)) and not trusted(members[n])}
        out.extend(f"{where(path)}: {key}.{name} was added to the class" for name in sorted(extra))

    def judge_module(module, path, out):
        namespace = module_dict(module)
        plan = plan_for(path)
        for name, (source, attribute, statement) in plan["imports"].items():
            held_source = held(source)
            if held_source is None:
                continue  # not a trusted module (the code under test, or one that failed to import)
            expected = held_source if attribute is None else module_dict(held_source).get(attribute, missing)
            if expected is missing and attribute is not None:
                expected = held(f"{source}.{attribute}") or missing
            if expected is not missing and namespace.get(name, missing) is not expected:
                out.append(f"{where(path)}: {name} is no longer what `{statement}` gives")
        for name, source in (("@py_builtins", "builtins"), ("@pytest_ar", "_pytest.assertion.rewrite")):
            if name in namespace and namespace[name] is not held(source):
                out.append(f"{where(path)}: {name} is no longer the module pytest's assertions use")
        if "__builtins__" not in namespace or namespace["__builtins__"] not in (builtin_dict, held("builtins")):
            out.append(f"{where(path)}: __builtins__ is no longer the interpreter's")
        for name, node in plan["defs"].items():
            judge_function(path, name, node, namespace.get(name, missing), namespace, None, out)
        for name, sub in plan["classes"].items():
            judge_class(path, name, sub, namespace.get(name, missing), namespace, out)
        for name, value in plan["constants"].items():
            now = namespace.get(name, missing)
            if type(now) is not type(value) or now != value:
                out.append(f"{where(path)}: {name} is no longer the value its file gives")
        shadows = (namespace.keys() & builtin_names) - plan["names"] - own
        out.extend(f"{where(path)}: {name} was added, hiding the builtin" for name in sorted(shadows))

    def deep(value):
        kept = []
        for layer in layers(value):
            kept.append(layer)
            if isinstance(layer, FunctionType):
                kept += (layer.__code__, layer.__defaults__, layer.__kwdefaults__, layer.__closure__)
        return kept

    def deep_class(value, plan):
        if not isinstance(value, type):
            return [value]
        members = type_dict(value)
        kept = [value, value.__bases__, len(members)]
        for name in plan["defs"]:
            kept.extend(deep(members.get(name, missing)))
        for name, sub in plan["classes"].items():
            kept.extend(deep_class(members.get(name, missing), sub))
        return kept

    def snapshot(module, path):
        # The objects a clean judgement saw, so a later check that finds them all the same is cheap.
        namespace, plan = module_dict(module), plan_for(path)
        kept = [len(namespace)]
        for name in (*plan["imports"], *plan["defs"], *plan["constants"], "__builtins__", "@py_builtins", "@pytest_ar"):
            kept.extend(deep(namespace.get(name, missing)))
        for name, sub in plan["classes"].items():
            kept.extend(deep_class(namespace.get(name, missing), sub))
        return kept

    def adopt(session):
        # The modules imported from the protected files: the ones pytest collected, its conftests,
        # and any other module loaded from those files.
        state["config"] = session.config
        found = []
        for item in session.items:
            collector = item.getparent(Module)
            if collector is not None:
                found.append((collector.obj, realpath(str(collector.path))))
        candidates = [*session.config.pluginmanager.get_plugins(), *list(sys.modules.values())]
        for module in candidates:
            if isinstance(module, ModuleType):
                file = module_dict(module).get("__file__")
                if isinstance(file, str):
                    found.append((module, realpath(file)))
        for module, path in found:
            if path in sources and id(module) not in modules:
                modules[id(module)] = (module, path, None)
            elif path.startswith(top) and path not in sources and path.endswith(".py"):
                changed.append(f"{where(path)}: a test module that was not there when the gate started")

    def check():
        # A module found unchanged since its last clean judgement costs a walk over its bindings.
        for key, (module, path, kept) in list(modules.items()):
            now = snapshot(module, path)
            if kept is not None and len(now) == len(kept) and all(a is b for a, b in zip(now, kept)):
                continue
            found = []
            judge_module(module, path, found)
            changed.extend(found)
            modules[key] = (module, path, None if found else now)
        return changed

    def check_function(path, key, function):
        # What pytest is about to call (a test, a fixture) runs the code its file defines.
        if not same_code(path, key, function.__code__):
            changed.append(f"{where(path)}: {key} runs code other than its file's")

    def check_item(item):
        found = [f for f in layers(getattr(item, "obj", None)) if isinstance(f, FunctionType)]
        path = realpath(str(item.path))
        if not found or path not in sources:
            return
        function, owner = found[-1], getattr(item, "cls", None)
        key = f"{owner.__qualname__}.{item.originalname}" if owner is not None else item.originalname
        if key not in compiled(path, True) and key not in compiled(path, False):
            key = function.__code__.co_qualname  # made by the file's own code, not by a def of that name
        check_function(path, key, function)
        if not all(wrapped_by_own(path, wrapper) for wrapper in found[:-1]):
            changed.append(f"{where(path)}: {key} is wrapped by code its file does not define")

    def check_fixture(fixturedef):
        found = [f for f in layers(fixturedef.func) if isinstance(f, FunctionType)]
        if not found:
            return
        function = found[-1]
        known = functions.get(id(function))
        if known is not None and known[2] is function:
            check_function(known[0], known[1], function)
            return
        for module, path, _ in list(modules.values()):
            if function.__globals__ is module_dict(module):
                check_function(path, function.__qualname__, function)

    return adopt, check, check_item, check_fixture


adopt_tests, check_tests, check_test_item, check_fixture = make_test_warden(
    read_tests(confcutdir), held_module, trusted_roots, confcutdir
)


def make_value_watch(held, roots, top, adopted):
    # Types of the tree that change how a value reads or compares: a subclass of a built-in value
    # type or of numpy's arrays and scalars that overrides what reads it (items, iteration,
    # comparison, arithmetic, conversion, numpy's protocols); any class implementing numpy's
    # protocols; a class trusted code reads as a number or sequence that also computes or compares
    # in Python. Judged from class dicts and MROs only (no code of the tree runs), once per class
    # and again when its dict or MRO changes; classes made and dropped between two looks are held
    # by a gc callback, which runs before the collector frees them.
    import functools, gc
    from types import CodeType, FunctionType, ModuleType

    type_dict, type_mro = type.__dict__["__dict__"].__get__, type.__dict__["__mro__"].__get__
    type_name, type_qualname = type.__dict__["__name__"].__get__, type.__dict__["__qualname__"].__get__
    subclasses, module_dict = type.__subclasses__, ModuleType.__dict__["__dict__"].__get__
    get_objects, get_stats, callbacks, relpath = gc.get_objects, gc.get_stats, gc.callbacks, os.path.relpath
    items = {"__getitem__", "__iter__", "__len__", "__contains__", "__reversed__", "keys", "values", "items", "get"}
    compare = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__hash__"}
    ops = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow", "lshift", "rshift", "and", "or", "xor")
    arithmetic = {f"__{p}{o}__" for o in ops for p in ("", "r", "i")} | {"__neg__", "__pos__", "__abs__", "__invert__"}
    numbers = {"__float__", "__int__", "__index__", "__complex__"}
    convert = numbers | {"__round__", "__trunc__", "__floor__", "__ceil__", "tolist", "item", "astype", "view", "copy", "__getattribute__"}
    protocols = {"__array__", "__array_function__", "__array_ufunc__", "__array_wrap__", "__array_finalize__", "__array_prepare__", "__array_interface__", "__array_struct__"}
    # What numpy's functions hand to an array subclass's own methods (np.all(x) calls x.all()...).
    delegated = {"all", "any", "sum", "prod", "mean", "std", "var", "max", "min", "argmax", "argmin", "round", "clip", "ravel", "reshape", "flatten", "squeeze", "transpose", "T", "real", "imag", "__array_priority__"}
    faces = frozenset(items | compare | arithmetic | convert | protocols)
    array_faces = frozenset(faces | delegated)
    watched = frozenset(array_faces)
    computes = frozenset((compare - {"__hash__"}) | arithmetic)
    values = [int, float, complex, str, bytes, bytearray, tuple, list, dict, set, frozenset]
    c_level = {type(object.__init__), type(str.join), type(dict.__dict__["fromkeys"]), type(len), type(type.__dict__["__dict__"]), type(FunctionType.__dict__["__globals__"])}
    tuplegetter = module_dict(held("_collections") or gc).get("_tuplegetter")  # a namedtuple's fields
    if type(tuplegetter) is type:
        c_level.add(tuplegetter)
    data = {type(None), bool, int, float, complex, str, bytes, tuple, dict, frozenset}
    # By identity: a type's own hash or equality could be the tree's (its metaclass's).
    plain_ids, wrapper_ids = {id(t) for t in c_level | data}, {id(staticmethod), id(classmethod)}
    state = {"busy": False, "numpy": None}
    bases = {id(v): v for v in values}
    owns, verdicts, found, kinds = {}, {}, {}, {}
    seen, base_counts = [0, 0, 0], [s["collections"] for s in get_stats()]

    def layers(entry):
        # An entry and what the exact wrappers the trusted environment makes hold (never a lookup
        # on an object of the tree: only the wrappers' own C-level fields).
        kind = type(entry)
        if id(kind) in wrapper_ids:
            return [entry.__func__]
        if kind is property:
            return [f for f in (entry.fget, entry.fset, entry.fdel) if f is not None]
        if kind is functools.cached_property:
            return [vars(entry).get("func")]
        if kind is functools.partial:
            return [entry.func]
        return None

    def trusted(entry, depth=0):
        kind = type(entry)
        if id(kind) in plain_ids:
            return True
        if kind is FunctionType:
            code, namespace = entry.__code__, entry.__globals__
            if type(code) is not CodeType or type(code.co_filename) is not str:
                return False
            if code.co_filename.startswith(roots):
                return True
            # A frozen standard module's (os, _collections_abc): named by its code, run in its namespace.
            name = code.co_filename[8:-1] if code.co_filename.startswith("<frozen ") else None
            module = held(name) if name else None
            return module is not None and module_dict(module) is namespace
        inner = layers(entry) if kind is not functools.partial and depth < 4 else None
        return inner is not None and all(trusted(f, depth + 1) for f in inner)

    def generated(members, key, entry):
        # A comparison or hash that dataclasses wrote (compiled from text, so from no file) for the
        # class's own fields: the same code dataclasses makes for those fields, with no name hidden.
        module = held("dataclasses")
        names = module_dict(module) if module is not None else {}
        kind, fields, made = names.get("Field"), members.get("__dataclass_fields__"), names.get("_FIELD")
        if type(entry) is not FunctionType or type(fields) is not dict or kind is None:
            return False
        if type(members.get("__dataclass_params__")) is not names.get("_DataclassParams"):
            return False
        chosen = []
        for field in fields.values():
            if type(field) is not kind or type(field.name) is not str:
                return False
            use = field.compare if key != "__hash__" or field.hash is None else field.hash
            if type(use) is not bool:
                return False
            if use and field._field_type is made:
                chosen.append(field)
        operators = {"__eq__": "==", "__lt__": "<", "__le__": "<=", "__gt__": ">", "__ge__": ">="}
        try:
            if key == "__hash__":
                reference = names["_hash_fn"](chosen, {})
            else:
                tuples = names["_tuple_str"]
                reference = names["_cmp_fn"](key, operators[key], tuples("self", chosen), tuples("other", chosen), {})
        except Exception:
            return False  # another version of dataclasses: not recognised
        made_code, code = reference.__code__, entry.__code__
        consts, names_used = code.co_consts, code.co_names
        return (
            type(code) is CodeType
            and code.co_code == made_code.co_code
            and entry.__closure__ is None and entry.__defaults__ is None
            and type(names_used) is tuple and all(type(n) is str for n in names_used)
            and names_used == made_code.co_names
            and type(consts) is tuple and len(consts) == len(made_code.co_consts)
            and all(type(a) is type(b) and a == b for a, b in zip(made_code.co_consts, consts))
            and type(entry.__globals__) is dict and "NotImplemented" not in entry.__globals__ and "hash" not in entry.__globals__
        )

    def where(entry, depth=0):
        kind = type(entry)
        if kind is FunctionType and type(entry.__code__) is CodeType:
            code = entry.__code__
            path = code.co_filename if type(code.co_filename) is str else "?"
            path = relpath(path, top) if path.startswith(top) else path
            return f"{path}:{code.co_firstlineno}"
        for inner in (layers(entry) or []) if depth < 4 else []:
            if (place := where(inner, depth + 1)) is not None:
                return place
        return None

    def bound(cls, members):
        # A class a trusted module bound under its qualified name as it finished loading is that
        # module's, however its methods were made (attrs and dataclasses compile them from text,
        # so from no file): the warden holds what the module bound then, one level into its
        # classes, so a class the tree names after a trusted module and plants there later is not.
        module, qualified = members.get("__module__"), type_qualname(cls)
        if type(module) is not str or type(qualified) is not str or held(module) is None:
            return False
        return qualified.count(".") <= 1 and adopted(module, qualified) == (id(cls),)

    def own(cls):
        # (the class, its MRO, its dict's size, its face entries, the untrusted ones' names, every
        # face name it defines); a dict with a key that is not an exact str is read anew each time.
        members = type_dict(cls)
        if members is None or type_mro(cls) is None:
            return None
        entries, odd = [], False
        for key, entry in members.items():
            if type(key) is not str:
                odd = True
            elif key in watched:
                entries.append((key, entry))
        untrusted = frozenset(
            ()
            if entries and bound(cls, members)
            else (k for k, e in entries if not trusted(e) and not (k in compare and generated(members, k, e)))
        )
        record = (cls, type_mro(cls), -1 if odd else len(members), tuple(entries), untrusted, frozenset(k for k, _ in entries))
        owns[id(cls)] = record
        return record

    def own_of(cls):
        record = owns.get(id(cls))
        return record if record is not None and record[0] is cls else own(cls)

    def numpy_bases():
        # numpy's arrays and scalars, from the module the warden holds, once it has finished loading.
        numpy = held("numpy") if state["numpy"] is None else None
        if numpy is not None:
            for name in ("ndarray", "generic"):
                value = module_dict(numpy).get(name)
                if type(value) is type:
                    bases[id(value)] = value
            state["numpy"] = numpy
            verdicts.clear()  # judged before numpy's arrays were known as value types

    def judge(cls):
        mro = type_mro(cls)
        if mro is None or type_dict(cls) is None:
            return  # a class still being made: judged once it is finished
        records = [own_of(m) for m in mro]
        if any(r is None for r in records):
            return
        verdicts[id(cls)] = (cls, None)
        untrusted = set().union(*(r[4] for r in records))
        if not untrusted:
            return
        value = next((m for m in mro if id(m) in bases and m is not cls), None)
        defined = set().union(*(r[5] for r in records[:-1]))  # `object` reads nothing
        text = None
        if value is not None and all(value is not v for v in values):
            names = untrusted & array_faces
            text = f"a numpy.{type_name(value)} subclass overriding " if names else None
        elif value is not None:
            names = untrusted & faces
            text = f"a {type_name(value)} subclass overriding " if names else None
        if text is None and untrusted & protocols:
            names, text = untrusted & protocols, "a class implementing numpy's "
        readable = untrusted & numbers or ({"__len__", "__getitem__"} <= defined and untrusted & {"__len__", "__getitem__"})
        if text is None and readable and untrusted & computes:
            names = untrusted & computes
            text = f"a class read as a number or sequence ({', '.join(sorted(readable))}) that also computes or compares in Python with "
        if text is None:
            return
        shown = sorted(names)
        place = next((where(e) for r in records for k, e in r[3] if k in names and k in r[4] and where(e)), None)
        module = type_dict(cls).get("__module__")
        name = f"{module if type(module) is str else '?'}.{type_qualname(cls)}"
        text = f"{name}{f' ({place})' if place else ''}: {text}{', '.join(shown[:4])}{' and more' if len(shown) > 4 else ''}"
        verdicts[id(cls)] = (cls, text)
        found[id(cls)] = (cls, text)

    def known(cls):
        verdict = verdicts.get(id(cls))
        return verdict is not None and verdict[0] is cls

    def sweep():
        # Every class alive: new ones judged, and any whose dict or MRO changed (with its subclasses).
        if state["busy"]:
            return
        state["busy"] = True
        try:
            numpy_bases()
            todo, visited, dirty = [object], set(), []
            pop, extend, seen_before, judged = todo.pop, todo.extend, visited.add, verdicts.get
            while todo:
                cls = pop()
                key = id(cls)
                if key in visited:
                    continue
                seen_before(key)
                record, members = owns.get(key), type_dict(cls)
                if record is None or record[0] is not cls:
                    own(cls)
                elif members is None or len(members) != record[2] or type_mro(cls) is not record[1] or (
                    record[3] and any(members.get(name) is not entry for name, entry in record[3])
                ):
                    dirty.append(cls)
                    own(cls)
                verdict = judged(key)
                if verdict is None or verdict[0] is not cls:
                    judge(cls)
                extend(subclasses(cls))
            while dirty:
                cls = dirty.pop()
                judge(cls)
                dirty.extend(subclasses(cls))
        finally:
            state["busy"] = False

    def is_class(kind):
        entry = kinds.get(id(kind))
        if entry is None or entry[0] is not kind:
            mro = type_mro(kind)
            entry = kinds[id(kind)] = (kind, mro is not None and any(m is type for m in mro))
        return entry[1]

    def collecting(phase, info):
        # Before the collector frees anything: the classes among the objects it is about to examine.
        if phase != "start" or type(info) is not dict:
            return
        generation = info.get("generation")
        if type(generation) is not int or not 0 <= generation <= 2:
            return
        seen[generation] += 1
        if state["busy"]:
            return
        state["busy"] = True
        try:
            numpy_bases()
            for young in range(generation + 1):
                for obj in get_objects(young):
                    kind = type(obj)
                    if (kind is type or is_class(kind)) and not known(obj):
                        judge(obj)
        finally:
            state["busy"] = False

    callbacks.append(collecting)

    def report():
        sweep()
        # A class a trusted module made and bound only after a look (attrs decorates a class before
        # its module binds it) is that module's by now. (What a class showed once stays reported:
        # a face removed after use was still a face.)
        for key, (cls, _) in list(found.items()):
            members = type_dict(cls)
            if members is not None and bound(cls, members):
                del found[key]
        out = sorted({text for _, text in found.values()})
        ran = [s["collections"] - b for s, b in zip(get_stats(), base_counts)]
        missed = sum(ran) - sum(seen)
        if missed > 0 or all(c is not collecting for c in list(callbacks)):
            out.insert(0, f"<gc>: the collector ran {missed} collection(s) the watch's callback did not see (it was removed from gc.callbacks)")
        others = [c for c in list(callbacks) if c is not collecting and not trusted(c)]
        if others:
            out.insert(0, f"<gc>: code of the tree added {len(others)} callback(s) to gc.callbacks, which run before the watch's")
        return out[:20]

    return sweep, report


look_at_values, value_faces = make_value_watch(
    held_module, trusted_roots, os.path.join(os.path.realpath(root), ""), adopted_binding
)
sys.path.append(root)


def canary_for(model):
    # A test that must fail, named and located like a real test drawn in secret, so code that
    # makes reports lie cannot tell it from the tests it wants to pass.
    left = draw % 1000
    right = left + 1 + (draw >> 10) % 9

    def canary():
        assert left == right

    function = getattr(model, "function", None)
    code = getattr(function, "__code__", None)
    if code is not None:
        canary.__code__ = canary.__code__.replace(
            co_filename=code.co_filename, co_firstlineno=code.co_firstlineno, co_name=code.co_name
        )
        canary.__name__ = canary.__qualname__ = function.__name__
        canary.__module__ = function.__module__
    return Function.from_parent(model.parent, name=model.name, callobj=canary, originalname=model.originalname)


class GateReport:
    def __init__(self):
        self.outcomes = {}
        self.canary = None
        self.canary_outcome = "absent"
        self.current = None
        self.session = None

    def pytest_sessionstart(self, session):
        self.session = session

    @hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        functions = [i for i in items if type(i) is Function]
        # A model whose module or class skips or expects failure would pass that on to the canary.
        plain = [i for i in functions if not any(i.get_closest_marker(m) for m in ("skip", "skipif", "xfail"))]
        models = [i for i in plain if type(i.parent) is Module] or plain or functions
        if not models:
            return
        self.canary = canary_for(models[draw % len(models)])
        self.canary_outcome = "not run"
        items.insert((draw >> 20) % (len(items) + 1), self.canary)

    @hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self.current = item
        yield
        self.current = None

    @hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report, config):
        if self.canary is not None and self.current is self.canary and report.when == "call":
            return "", "", ""  # kept out of the printed summary: it is the gate's, not the target's
        return None

    def pytest_collection_finish(self, session):
        check_trusted()
        check_imports()
        adopt_tests(session)
        check_tests()
        look_at_values()

    @hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item):
        # Right before a test runs: its module still holds what its file defines, and the function
        # pytest calls runs the file's code (a swap made during an earlier test is seen here).
        if item is not self.canary:
            check_tests()
            check_test_item(item)
        yield

    @hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_fixture_setup(self, fixturedef, request):
        check_fixture(fixturedef)
        yield

    def pytest_collectreport(self, report):
        if report.failed:
            self.outcomes[report.nodeid or "<collection>"] = "error"

    def pytest_runtest_logreport(self, report):
        if report.when == "teardown":
            check_trusted(deep=False)
            look_at_values()
        if self.canary is not None and self.current is self.canary and report.when == "call":
            self.judge_canary(report)
            return
        expected_failure = hasattr(report, "wasxfail")
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
        elif report.skipped:
            outcome = "xfailed" if expected_failure else "skipped"
        elif report.when == "call":
            outcome = "xpassed" if expected_failure else "passed"
        else:
            return
        if self.outcomes.get(report.nodeid, "passed") == "passed" or outcome == "error":
            self.outcomes[report.nodeid] = outcome

    def judge_canary(self, report):
        counted = report.failed and not hasattr(report, "wasxfail")
        honest = counted and report.outcome == "failed" and not report.passed and not report.skipped
        self.canary_outcome = "failed" if honest else "passed" if report.passed else str(report.outcome)
        if counted and self.session is not None:
            # The session counted the gate's own failure (and may stop on it under -x): undo it.
            session = self.session
            session.testsfailed -= 1
            maxfail = session.config.getvalue("maxfail")
            if session.shouldfail and not (maxfail and session.testsfailed >= maxfail):
                if "_shouldfail" in vars(session):
                    session._shouldfail = False
                else:
                    session.shouldfail = False

    def pytest_sessionfinish(self, session, exitstatus):
        changed, tests_changed, shadowed = check_trusted(), check_tests(), check_imports()
        body = json.dumps(
            {
                "exit_status": int(exitstatus),
                "outcomes": self.outcomes,
                "canary": self.canary_outcome,
                "changed": sorted(set(changed))[:20],
                "tests_changed": sorted(set(tests_changed))[:20],
                "shadowed": sorted(set(shadowed))[:20],
                "value_faces": value_faces(),
            }
        )
        with write(report_path, "w", encoding="utf-8") as handle:
            handle.write(seal(body))


ini = os.path.join(tempfile.mkdtemp(prefix="rsi-gate-"), "pytest.ini")
with open(ini, "w", encoding="utf-8") as handle:
    handle.write("[pytest]\n")
options = ["-c", ini, "--rootdir", root, "--confcutdir", confcutdir, "-p", "no:cacheprovider"]
sys.exit(int(pytest.main([*selection, *options], plugins=[GateReport()])))
"""


class TestGate:
    """How the harness runs one target's test command; `start()` gives one run its own secrets."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        test_command: str,
        pytest_args: list[str] | None,
        test_dir: str | None,
        protected: Sequence[str] = (),
    ) -> None:
        self.test_command = test_command
        self.pytest_args = pytest_args
        """The selection of a pytest command (None: not a pytest command, run as written)."""
        self.test_dir = test_dir
        """The directory, relative to the tree, whose conftest files (and only those) are loaded."""
        self.protected = pathspec.GitIgnoreSpec.from_lines(list(protected))
        """rsi.toml's [protected].paths: the modules among them must load as themselves."""

    @classmethod
    def from_command(cls, test_command: str, protected: Sequence[str] = ()) -> TestGate:
        """Map rsi.toml's test command (and its [protected].paths) onto the gate; raises
        ConfigError for an unusable command."""
        try:
            words = shlex.split(test_command)
        except ValueError as exc:
            raise ConfigError(
                f"rsi.toml [commands].test {test_command!r} is not a valid command line: {exc}."
            ) from None
        for launcher in PYTEST_LAUNCHERS:
            if tuple(words[: len(launcher)]) == launcher:
                args = words[len(launcher) :]
                return cls(test_command, args, _test_dir(test_command, args), protected)
        return cls(test_command, None, None, protected)

    def start(self, tree: Path | None = None) -> GateRun:
        """One run of the gate, with a fresh report path and sealing key of its own; `tree` (the
        patched tree the sandbox runs) names the protected modules whose import names it checks."""
        return GateRun(self, self.protected_modules(tree) if tree is not None else [])

    def protected_modules(self, tree: Path) -> list[str]:
        """The tree's files, relative to it, that Python could import and that the target protects
        (or that lie in the test directory): the bootstrap checks each loads under its own name."""
        suffixes = tuple(importlib.machinery.all_suffixes())
        test_dir = (self.test_dir or "").strip("/")
        found = []
        for folder, folders, files in os.walk(tree):
            folders[:] = sorted(f for f in folders if f != "__pycache__" and not f.startswith("."))
            for name in sorted(files):
                relative = Path(folder, name).relative_to(tree).as_posix()
                in_tests = bool(test_dir) and relative.startswith(test_dir + "/")
                if name.endswith(suffixes) and (in_tests or self.protected.match_file(relative)):
                    found.append(relative)
        return found


class GateRun:
    """One run of the test gate: the command, the key file to write into the sandbox before it
    (`key_path`, `key`; None for a command that is not pytest), and how to read its outcome."""

    def __init__(self, gate: TestGate, protected_modules: Sequence[str] = ()) -> None:
        self.gate = gate
        self.protected_modules = list(protected_modules)
        """Module files of the tree (relative paths) whose import names must load them."""
        token = secrets.token_hex(8)
        self.report_path = f"/tmp/.rsi-gate-{token}.json"
        self.key_path: str | None = None
        self.key = secrets.token_hex(32).encode("ascii")
        """Seals the report; the bootstrap reads and deletes its file before any code of the tree runs."""
        if gate.pytest_args is not None:
            self.key_path = f"/tmp/.rsi-gate-{token}.key"

    def command(self, pythons: Sequence[str]) -> str:
        """The shell command the sandbox runs: the bootstrap under the first existing interpreter."""
        gate = self.gate
        # The tests are not the runtime audit's (sandbox/audit): their own checks judge them, and a
        # target's tests may start programs (the bundled ones run train.py), which the audit's
        # no-exec filter would refuse. Without its descriptor the hook installs nothing.
        if gate.pytest_args is None or self.key_path is None:
            return UNAUDITED + gate.test_command
        root = WORKDIR
        confcutdir = posixpath.normpath(posixpath.join(root, gate.test_dir or "."))
        modules = json.dumps(self.protected_modules)
        argv = [self.report_path, self.key_path, root, confcutdir, modules, *gate.pytest_args]
        choices = " ".join(shlex.quote(p) for p in pythons)
        return (
            UNAUDITED + f'for rsi_python in {choices}; do [ -x "$rsi_python" ] && break; done; '
            f'[ -x "$rsi_python" ] || {{ echo "test gate: no Python at {choices}" >&2; exit 127; }}; '
            f'exec "$rsi_python" -I -B -c {shlex.quote(BOOTSTRAP)} {shlex.join(argv)}'
        )

    def result(self, executed: ExecResult, report: bytes | None) -> TestResult:
        """The tests' outcome: from the gate's sealed report (pytest) or the exit code alone."""
        base = TestResult(
            exit_code=executed.exit_code,
            duration_s=round(executed.duration_s, 3),
            output_tail=tail(executed.output),
        )
        if self.gate.pytest_args is None:
            base.counts_from = "exit_code"
            return base
        base.counts_from = "gate_report"
        parsed = _parse_report(report, self.key)
        if isinstance(parsed, str):
            return _untrusted(base, parsed)
        exit_status, outcomes, canary, changed, tests_changed, value_faces, shadowed = parsed
        base.value_faces = value_faces
        counts = {kind: sum(1 for o in outcomes.values() if o == kind) for kind in OUTCOMES}
        base.passed, base.failed = counts["passed"], counts["failed"]
        base.errors, base.skipped = counts["error"], counts["skipped"]
        not_passed = [(node, outcome) for node, outcome in outcomes.items() if outcome != "passed"]
        base.not_passed = dict(not_passed[:MAX_NOT_PASSED])
        if len(not_passed) > MAX_NOT_PASSED:
            base.not_passed["<more>"] = f"{len(not_passed) - MAX_NOT_PASSED} more not shown"
        if base.exit_code == 0 and exit_status != 0:
            base.exit_code = exit_status  # a failure either side reports is a failure

        def tampered(node: str, what: str) -> None:
            base.errors += 1
            base.not_passed[node] = (
                f"error: code run by the tests {what}, so what they assert can no longer be believed"
            )
            base.exit_code = base.exit_code or 1

        def some(items: list[str], sep: str) -> str:
            return sep.join(items[:5]) + (" and more" if len(items) > 5 else "")

        if changed:
            tampered(
                TRUSTED_NODE,
                f"replaced {some(changed, ', ')} of the standard library or an installed package",
            )
        if tests_changed:
            tampered(
                TEST_CODE_NODE,
                f"changed the protected test modules ({some(tests_changed, '; ')}): the tests no longer "
                "run as their files are written",
            )
        if shadowed:
            base.errors += 1
            base.not_passed[IMPORT_NODE] = (
                f"error: the tree makes a protected module's import name load another file "
                f"({some(shadowed, '; ')}), so the tests did not run the protected code; remove or "
                "rename the file that takes its place"
            )
            base.exit_code = base.exit_code or 1
        if (problem := _canary_problem(canary, outcomes)) is not None:
            base.errors += 1
            base.not_passed[CANARY_NODE] = f"error: {problem}"
            base.exit_code = base.exit_code or 1
        return base


def _untrusted(base: TestResult, why: str) -> TestResult:
    """No report the gate can believe: an error, whatever the process printed or returned."""
    base.errors = max(1, base.errors)
    base.not_passed = {"<gate>": f"error: {why}"}
    if base.exit_code == 0:
        base.exit_code = 1
    return base


def _canary_problem(canary: str, outcomes: dict[str, str]) -> str | None:
    """Why the canary's reported outcome shows the reports cannot be believed (None: they can)."""
    if canary == "failed":
        return None
    stopped_early = any(o in ("failed", "error") for o in outcomes.values())
    if canary == "not run" and stopped_early:
        return None  # a real failure stopped the session (-x) before the canary's turn
    if canary == "absent" and not any(o == "passed" for o in outcomes.values()):
        return None  # nothing passed: there was no test to place the canary beside
    return (
        f"a test the gate added, which must fail, was reported {canary!r}: code run by the tests "
        "changed how pytest reports outcomes, so no outcome of this run can be believed"
    )


def _test_dir(test_command: str, args: list[str]) -> str:
    """The one directory the selection's paths share: the protected test directory."""
    paths: list[str] = []
    skip_next = False
    for index, word in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if word == "-p" and args[index + 1 : index + 2] and args[index + 1].startswith("no:"):
            skip_next = True  # disabling a plugin is always safe
            continue
        if word.startswith("-pno:"):
            continue
        option = word.split("=", 1)[0]
        if option in GATE_OWNED_OPTIONS or (
            word.startswith(("-p", "-c", "-o")) and not word.startswith("--")
        ):
            raise ConfigError(
                f"rsi.toml [commands].test {test_command!r} sets {option!r}, which the test gate "
                "controls itself (configuration, rootdir, conftest and plugin loading). Remove it."
            )
        if word in VALUE_OPTIONS:
            skip_next = True
        elif not word.startswith("-"):
            paths.append(posixpath.normpath(word.split("::", 1)[0]))
    if not paths or any(p.startswith(("/", "..")) or p == "." for p in paths):
        raise ConfigError(
            f"rsi.toml [commands].test {test_command!r} must name the test directory inside the "
            "target (e.g. `python -m pytest -q tests`): the gate loads conftest files from it only."
        )
    directories = [p if not p.endswith(".py") else posixpath.dirname(p) or "." for p in paths]
    common = posixpath.commonpath(directories)
    if common in ("", "."):
        raise ConfigError(
            f"rsi.toml [commands].test {test_command!r} selects tests from the target's root; name "
            "a test directory instead so a conftest.py at the root cannot take part."
        )
    return common


def _parse_report(
    report: bytes | None, key: bytes
) -> tuple[int, dict[str, str], str, list[str], list[str], list[str], list[str]] | str:
    """(exit status, outcome per node id, the canary's outcome, what trusted code the tests' run
    replaced, what of the protected test modules it changed, the tree's types that change how a
    value reads or compares, protected modules whose import names load another file), or why the
    report is not believed. A report of an older gate without the last fields has none."""
    if report is None:
        return "the test gate wrote no readable report (pytest never finished, or was taken over)"
    try:
        sealed = json.loads(report.decode("utf-8"))
        body, seal = str(sealed["body"]), str(sealed["seal"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "the test gate's report is not one the gate writes"
    expected = hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, seal):
        return "the test gate's report is not the one the gate wrote (its seal does not match)"
    try:
        data = json.loads(body)
        exit_status = int(data["exit_status"])
        outcomes = {str(k): str(v) for k, v in dict(data["outcomes"]).items()}
        canary = str(data["canary"])
        changed = [str(name) for name in list(data.get("changed", []))[:20]]
        tests_changed = [str(name) for name in list(data.get("tests_changed", []))[:20]]
        value_faces = [str(text)[:300] for text in list(data.get("value_faces", []))[:20]]
        shadowed = [str(text)[:300] for text in list(data.get("shadowed", []))[:20]]
    except (ValueError, KeyError, TypeError):
        return "the test gate's report is not one the gate writes"
    if any(v not in OUTCOMES for v in outcomes.values()):
        return "the test gate's report names an outcome pytest does not have"
    return exit_status, outcomes, canary, changed, tests_changed, value_faces, shadowed
