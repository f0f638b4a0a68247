"""The runtime audit (sandbox/audit, sandbox/runtime_audit.py) sees what Python code does, however
it is spelled.

Each behaviour (text run as code, a process started, native code called, the interpreter steered,
a function global unpickled, compiled code loaded from the scratch space) is written in many
spellings by `variants`: the call reached directly, through `vars(builtins)`, through `getattr` with
a name computed by rot13, concatenation, base64 or reversal, behind one to three wrapper functions,
or from a helper module the probe writes and imports. Every spelling runs in a real sandbox of each
backend and must be reported as its kind; honest code (NumPy, data classes, named tuples, arrays
saved and loaded, `ast.literal_eval`) must be reported as nothing. The record must survive the
probe's attempts on it: its descriptor closed or replaced ends the process before the audited act,
and a forged or broken line is a finding of its own.
"""

from __future__ import annotations

import base64
import codecs
import dis
import json
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.contracts import PhaseLog
from sandbox.channel import AUDIT_SOURCE
from sandbox.runtime_audit import generated_shape, read_audit, runtime_findings
from tests.conftest import BOTH_BACKENDS, sandbox_backend
from tests.sandbox.test_audit_volume import evaluation_of


@dataclass(frozen=True)
class Probe:
    name: str
    kind: str | None
    """The kind the audit must report first; None: nothing at all."""
    code: str


PIPES = (
    "import os, stat\n"
    "def pipes():\n"
    "    found = []\n"
    "    for name in os.listdir('/proc/self/fd'):\n"
    "        try:\n"
    "            if int(name) > 2 and stat.S_ISFIFO(os.fstat(int(name)).st_mode):\n"
    "                found.append(int(name))\n"
    "        except OSError:\n"
    "            pass\n"
    "    return found\n"
)
"""A probe's way to the audit's pipe, wherever the hook moved it: every pipe it has open."""


def _spellings(module: str, attribute: str) -> list[tuple[str, str]]:
    """(label, expression) pairs that each evaluate to `module.attribute`, spelled without it."""
    rot = codecs.encode(attribute, "rot13")
    b64 = base64.b64encode(attribute.encode()).decode()
    half = len(attribute) // 2
    mod_rot = codecs.encode(module, "rot13")
    return [
        ("direct", f"__import__({module!r}).{attribute}"),
        ("rot13", f"getattr(__import__(__import__('codecs').decode({mod_rot!r}, 'rot13')), "
                  f"__import__('codecs').decode({rot!r}, 'rot13'))"),
        ("concat", f"getattr(__import__({module[:1]!r} + {module[1:]!r}), {attribute[:half]!r} + {attribute[half:]!r})"),
        ("base64", f"getattr(__import__('importlib').import_module({module!r}), "
                   f"__import__('base64').b64decode({b64!r}).decode())"),
        ("reversed", f"vars(__import__({module[::-1]!r}[::-1]))[{attribute[::-1]!r}[::-1]]"),
    ]  # fmt: skip


def _wrapped(expression: str, depth: int, call: str) -> str:
    """`expression(call)` behind `depth` wrapper functions."""
    lines = [f"def level0(*a):\n    return ({expression})(*a)"]
    for level in range(1, depth + 1):
        lines.append(f"def level{level}(*a):\n    return level{level - 1}(*a)")
    return "\n".join(lines) + f"\nlevel{depth}({call})\n"


def _elsewhere(expression: str, call: str) -> str:
    """The call made from a helper module the probe writes into /tmp and imports: another file."""
    helper = f"def run(*a):\n    return ({expression})(*a)\n"
    return (
        "import sys\n"
        f"open('/tmp/helper_mod.py', 'w').write({helper!r})\n"
        "sys.path.insert(0, '/tmp')\n"
        f"import helper_mod\nhelper_mod.run({call})\n"
    )


BEHAVIOURS = [
    # (kind, module, attribute, argument source, label)
    ("dynamic-code", "builtins", "exec", "'x = 40 + 2'", "exec"),
    ("dynamic-code", "builtins", "eval", "'40 + 2'", "eval"),
    ("process", "os", "system", "'true'", "system"),
    ("process", "subprocess", "run", "['true']", "subprocess"),
    ("steering", "sys", "settrace", "None", "settrace"),
    ("steering", "gc", "get_objects", "", "gc"),
]


def variants() -> list[Probe]:
    probes = []
    for kind, module, attribute, call, label in BEHAVIOURS:
        for spelling, expression in _spellings(module, attribute):
            for depth in (0, 1, 3):
                probes.append(
                    Probe(f"{label}-{spelling}-depth{depth}", kind, _wrapped(expression, depth, call))
                )
        probes.append(
            Probe(f"{label}-other-module", kind, _elsewhere(_spellings(module, attribute)[1][1], call))
        )
    return probes


FIXED = [
    Probe(
        "code-through-type-hints",
        "dynamic-code",
        "import typing, base64\n"
        "def f(x: 'int'): pass\n"
        "f.__annotations__['x'] = base64.b64decode(b'X19pbXBvcnRfXygib3MiKS5nZXRwaWQoKQ==').decode()\n"
        "typing.get_type_hints(f)\n",
    ),
    Probe("code-through-timeit", "dynamic-code", "import timeit\ntimeit.Timer('sum([1, 2])').timeit(1)\n"),
    Probe(
        "code-object-rebuilt",
        "dynamic-code",
        "def f():\n    return 1\ng = type(f)(f.__code__.replace(co_consts=(None, 2)), {})\ng()\n",
    ),
    Probe(
        "code-unmarshalled",
        "dynamic-code",
        "import marshal\nexec(marshal.loads(marshal.dumps(compile('y = 1', 'n', 'exec'))))\n",
    ),
    Probe(
        "sourceless-module-imported",
        "dynamic-code",
        "import py_compile, sys, os\n"
        "open('/tmp/gen_src.py', 'w').write('VALUE = 42\\n')\n"
        "py_compile.compile('/tmp/gen_src.py', cfile='/tmp/lib/gen_mod.pyc')\n"
        "sys.path.insert(0, '/tmp/lib')\n"
        "import gen_mod\n",
    ),
    Probe(
        "dataclass-fields-injected",
        "dynamic-code",
        "import dataclasses\n"
        "C = type('C', (), {'__annotations__': {'x=__import__(\"os\").getpid(),y': int}})\n"
        "try:\n    dataclasses.dataclass(C)\nexcept Exception:\n    pass\n",
    ),
    Probe(
        "extension-module-from-scratch",
        "native",
        "import glob, os, shutil, sys\n"
        "source = glob.glob(os.path.dirname(os.__file__) + '/lib-dynload/_codecs_tw*.so')[0]\n"
        "shutil.copy(source, '/tmp/lib/')\n"
        "sys.path.insert(0, '/tmp/lib')\n"
        "import _codecs_tw\n"
        "assert _codecs_tw.__file__.startswith('/tmp/lib/'), _codecs_tw.__file__\n",
    ),
    Probe(
        # Red team round seventeen: Python kept as a staged text file, loaded as a module (the code
        # rules read only Python files, so the text was read by no one).
        "staged-text-file-loaded-as-a-module",
        "dynamic-code",
        "import importlib.machinery\n"
        "importlib.machinery.SourceFileLoader('settings', '/workspace/settings.txt').load_module()\n",
    ),
    Probe(
        "function-global-unpickled",
        "unpickled",
        "import pickle, os\npickle.loads(pickle.dumps(os.getcwd))\n",
    ),
    Probe(
        "native-call",
        "native",
        "import ctypes\nctypes.CDLL(None).getpid()\n",
    ),
    Probe("fork", "process", "import os\npid = os.fork()\nos._exit(0) if pid == 0 else os.waitpid(pid, 0)\n"),
    Probe(
        "broken-line-written",
        "tampered",
        PIPES + 'for fd in pipes():\n    os.write(fd, b\'{"event": "compile", "source": "\')\n',
    ),
    Probe(
        "harness-markers-looked-for",
        None,
        "import os, sys\n"
        "assert 'RSI_AUDIT_FD' not in os.environ and 'rsi-audit' not in os.environ.get('PYTHONPATH', '')\n"
        "assert not any('rsi-audit' in p for p in sys.path)\n"
        "assert not os.path.exists('/proc/self/fd/9')\n",
    ),
    Probe(
        "honest-traceback-logged",
        None,
        textwrap.dedent(
            """
            import io, logging, sys, traceback

            buffer = io.StringIO()
            logging.basicConfig(stream=buffer)
            try:
                value = 1 + {}["missing"] * 2
            except KeyError as error:
                traceback.print_exc(file=buffer)
                logging.getLogger("train").exception("a step failed")
                frames = [summary.name for summary in traceback.extract_tb(error.__traceback__)]
                names = [tb.tb_frame.f_code.co_name for tb in [error.__traceback__]]
            print(buffer.getvalue().count("KeyError"), frames, names, file=sys.stdout)
            """
        ),
    ),
    Probe(
        "honest",
        None,
        textwrap.dedent(
            """
            import ast, collections, dataclasses, io, json, logging, math
            import numpy as np

            @dataclasses.dataclass(frozen=True, order=True)
            class Config:
                width: int = 8
                rates: tuple = dataclasses.field(default_factory=tuple)

            Pair = collections.namedtuple("Pair", "a b")
            buffer = io.BytesIO()
            np.save(buffer, np.arange(6.0).reshape(2, 3), allow_pickle=False)
            buffer.seek(0)
            data = np.load(buffer, allow_pickle=False)
            with open("/tmp/model.npz", "wb") as handle:
                np.savez(handle, w=data)
            loaded = np.load("/tmp/model.npz")["w"]
            logging.getLogger("x").info("%s", Config())
            print(json.dumps({"sum": float(loaded.sum() + math.pi), "pair": Pair(1, 2)._asdict()}),
                  ast.literal_eval("{'a': (1, 2)}"))
            """
        ),
    ),
]
PROBE_FILES = Path(__file__).resolve().parent / "audit_probes"
STOPPED = "stopped"
"""The act never happens: the kernel refuses it (no program starts, no signal handler is installed)
or the process ends before it."""
ROUND_SIXTEEN = {
    "ast_parse_flag_switched": "dynamic-code",
    "compiled_under_a_dotted_path": "dynamic-code",
    "text_returned_by_a_loader": "dynamic-code",
    "marshal_through_the_importer": "dynamic-code",
    "code_replaced_through_a_library_frame": "dynamic-code",
    "crafted_cached_bytecode": "dynamic-code",
    "crafted_cached_bytecode_with_a_forged_record": "dynamic-code",
    "extension_under_a_dotted_root": "native",
    "text_run_with_no_frame": "dynamic-code",
    "subinterpreter": "steering",
    "signal_handler_inside_the_hook": STOPPED,
    "process_through_fork_exec": STOPPED,
    "libc_system_through_a_function_pointer": STOPPED,
}
"""A red team's attempts on the audit itself (round sixteen; tests/sandbox/audit_probes): each must be
reported as its kind, or be stopped before its act."""
HOOK_STATE = {
    "closure_cells_through_a_signal_handler": STOPPED,
    "closure_cells_through_an_escaped_exception": "tampered",
    "closure_cells_past_the_recursion_limit": STOPPED,
}
"""The hook's own state reached through one of its frames, without an audited call: a signal
handler is handed one, and an exception that leaves the hook carries them (tests/sandbox/audit_probes)."""
SILENCER = "lambda x, _l=len: 0 if type(x) is tuple and _l(x) == 2 and type(x[1]) is str and x[1][:1] == '<' else _l(x)"
"""A `len` that says a compile event's arguments are none, and is `len` for everything else."""
SHADOWINGS = {
    "len-in-the-hooks-module": f"import sys\nvars(sys.modules['sitecustom' + 'ize'])['len'] = {SILENCER}\n",
    "len-in-the-module-found-by-its-file": "import sys\n"
    f"[setattr(m, 'len', {SILENCER}) for m in list(sys.modules.values()) if 'audit' in str(getattr(m, '__file__', ''))]\n",
    "len-in-builtins": f"import builtins\nbuiltins.len = {SILENCER}\n",
    "type-in-builtins": "import builtins\n_t = builtins.type\n"
    "builtins.type = lambda *a: (bytes if _t(a[0]) is str and a[0][:1] == '<' else _t(*a)) if len(a) == 1 else _t(*a)\n",
    "exception-classes-in-builtins": "import builtins\nbuiltins.OSError = builtins.ValueError = builtins.BaseException = KeyError\n",
    "os-of-the-path-module": "import posixpath\nclass Os:\n"
    "    def __getattr__(self, name):\n        return getattr(__import__('os'), name)\n"
    "    def lstat(self, path):\n        raise OSError(path)\nposixpath.os = Os()\n",
}
"""Names the hook's code could look up at run time, changed before the text runs: the hook's own
module's globals, `builtins`, and the library modules of the functions it could call."""
PROBES = (
    variants()
    + FIXED
    + [
        Probe(name, kind, (PROBE_FILES / f"{name}.py").read_text(encoding="utf-8"))
        for name, kind in {**ROUND_SIXTEEN, **HOOK_STATE}.items()
    ]
    + [
        Probe(f"shadowed-{name}", "dynamic-code", code + "exec(\"print('SHADOWED-EXEC-RAN')\")\n")
        for name, code in SHADOWINGS.items()
    ]
)


def _judge(text: str | None) -> list[str]:
    return [event.kind for event in read_audit(text).events]


@pytest.fixture(scope="module", params=BOTH_BACKENDS)
def audited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Every probe run once in one real sandbox of the backend, reset between probes."""
    backend_name = request.param
    workspace = tmp_path_factory.mktemp(f"audit-{backend_name}")
    results: dict[str, tuple] = {}
    (workspace / "model.py").write_text("VALUE = 1\n", encoding="utf-8")  # a staged module to shadow
    (workspace / "settings.txt").write_text("VALUE = 2\n", encoding="utf-8")  # staged, but not Python
    with sandbox_backend(backend_name, request, f"test-audit-{backend_name}").open(
        workspace, None, "probe"
    ) as s:
        for index, probe in enumerate(PROBES):
            if index:
                s.reset()
            s.write_file("/tmp/probe.py", probe.code.encode())
            result = s.exec("mkdir -p /tmp/lib && python3 /tmp/probe.py", 60)
            results[probe.name] = (result, read_audit(result.audit))
    return results


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_each_spelling_is_reported_as_what_it_does(audited: dict[str, tuple], probe: Probe) -> None:
    result, audit = audited[probe.name]
    assert audit.answered and audit.processes >= 1, result.output[-800:]
    kinds = [event.kind for event in audit.events]
    if probe.kind == STOPPED:
        assert "-RAN" not in result.output, result.output[-800:]
    elif probe.kind is None:
        assert kinds == [], [e.model_dump() for e in audit.events]
        assert result.exit_code == 0 and result.output.count("\n") <= 1, result.output[-800:]
    else:
        assert probe.kind in kinds, (kinds, result.output[-800:])


@pytest.mark.parametrize("backend_name", BOTH_BACKENDS)
def test_the_record_cannot_be_cut_off(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The audit's descriptor closed, or replaced by another file, ends the process at the next
    audited act, before it happens: the marker file the act would write never appears."""
    probes = {
        "closed": PIPES + "for fd in pipes():\n    os.close(fd)\nos.system('touch /tmp/done')\n",
        "replaced": PIPES
        + "for fd in pipes():\n    os.dup2(os.open('/dev/null', os.O_WRONLY), fd)\nos.system('touch /tmp/done')\n",
        "nonblocking-flood": PIPES
        + "for fd in pipes():\n    os.set_blocking(fd, False)\n"
        + "    try:\n        while True:\n            os.write(fd, b'\\n' * 65536)\n"
        + "    except BlockingIOError:\n        pass\n"
        + "os.system('touch /tmp/done')\n",
    }
    (tmp_path / "ws").mkdir()
    with sandbox_backend(backend_name, request, f"test-audit-cut-{backend_name}").open(
        tmp_path / "ws", None, "probe"
    ) as s:
        for index, (name, code) in enumerate(probes.items()):
            if index:
                s.reset()
            s.write_file("/tmp/probe.py", code.encode())
            result = s.exec("python3 /tmp/probe.py; test -e /tmp/done && echo ACTED", 60)
            assert "ACTED" not in result.output, (name, result.output[-500:])


def test_the_hook_looks_up_no_name_at_run_time() -> None:
    """Every function the hook installs finds what it uses in its closure, bound before any of the
    candidate's code ran: no global or builtin name is looked up when an event is judged, so none can
    be changed under it (SHADOWINGS try it in a sandbox)."""
    source = (AUDIT_SOURCE / "sitecustomize.py").read_text(encoding="utf-8")

    def nested(code: types.CodeType) -> list[types.CodeType]:
        found = []
        for constant in code.co_consts:
            if isinstance(constant, types.CodeType):
                found += [constant, *nested(constant)]
        return found

    install = next(c for c in nested(compile(source, "sitecustomize.py", "exec")) if c.co_name == "_install")
    functions = nested(install)
    assert {c.co_name for c in functions} >= {"judge", "hook", "send", "encode", "from_file", "exists"}
    lookups = {
        (c.co_name, i.argval)
        for c in functions
        for i in dis.get_instructions(c)
        if i.opname in ("LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL")
    }
    assert lookups == set()


def test_generated_shapes() -> None:
    """The generators' own text passes; the same text with a call spliced in does not."""
    assert generated_shape("lambda _cls, a, b: _tuple_new(_cls, (a, b))")
    assert not generated_shape("lambda _cls, a=__import__('os').getpid(), b=1: _tuple_new(_cls, (a, b))")
    assert generated_shape(
        "def __create_fn__(_type_x, MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _return_type):\n"
        " def __init__(self, x:_type_x):\n  self.x=x\n return __init__\n"
    )
    assert not generated_shape(" def broken(:\n")


def test_a_command_without_audit_is_a_finding() -> None:
    """A train phase whose command ran no audited Python, or that the sandbox gave no record for."""
    silent = PhaseLog(
        phase="train-seed-0", command="x", exit_code=0, duration_s=1.0, output_tail="", audit=read_audit("")
    )
    unanswered = silent.model_copy(update={"phase": "predict-seed-0", "audit": read_audit(None)})
    tests = silent.model_copy(update={"phase": "tests"})
    findings = runtime_findings(evaluation_of(silent, unanswered, tests))
    assert [f.evidence["phase"] for f in findings] == ["train-seed-0", "predict-seed-0"]
    assert {f.verdict for f in findings} == {"review"}


def test_forged_start_records_widen_nothing() -> None:
    """Only the first start record names the environment's roots: a later one, written by the
    candidate, cannot make its own files count as the environment's."""
    lines = [
        {"event": "audit.start", "roots": ["/usr/"], "pid": 1},
        {"event": "audit.start", "roots": ["/tmp/"], "pid": 1},
        {"event": "compile", "why": "x", "filename": "<s>", "source": "lambda _cls, a: _tuple_new(_cls, (a,))",
         "caller": ["/tmp/collections/__init__.py", "namedtuple"], "stack": [["/tmp/x.py", 1, "f"]], "pid": 1},
    ]  # fmt: skip
    assert _judge("\n".join(json.dumps(line) for line in lines)) == ["dynamic-code"]
