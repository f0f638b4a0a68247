"""Metamorphic variants of hostile patches: the same behaviour, other code.

A defence that matches what a case looks like (a name, a literal, one level of indirection)
misses the variants; a defence that judges what the code does catches every one of them.

The case's diff is applied to a copy of the target; each Python function it adds or changes is
rewritten with `ast` and spliced back in place of the original lines (the rest of the file keeps
its text), and the variant's diff is taken against the target again. Rewrites, combined by recipe:

- rename:     local variables and names imported inside the function get fresh names
- attributes: `a.b` becomes `getattr(a, <computed "b">)` (concatenation, rot13 or base64)
- strings:    string literals become concatenations or decoded text
- indirection: calls go through 1-3 layers: wrapper functions, a dict of callables, a class method
- move:       a changed function (or a changed method's body) moves to a new module, imported lazily

    for variant in variants(case):          # every recipe, deterministic
        variant.diff, variant.recipe
    sample(case, count=1, seed=0)           # a seeded choice, for the sandboxed test

    python -m tests.adversarial.metamorph OUT_DIR [--only CASE_ID ...]   # every variant as a .diff
"""

from __future__ import annotations

import ast
import base64
import builtins
import codecs
import copy
import random
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from sandbox.patch import apply_diff
from tests.adversarial.cases import Case
from tests.conftest import TARGET, file_diff

RECIPES: dict[str, tuple[str, ...]] = {
    "rename+split": ("rename", "strings:concat"),
    "concat-attrs+wrap1": ("attributes:concat", "indirection:1"),
    "rot13-attrs+dict2": ("attributes:rot13", "indirection:2"),
    "base64+class3": ("strings:base64", "attributes:base64", "indirection:3"),
    "moved+renamed": ("move", "rename"),
    "everything": ("rename", "attributes:rot13", "strings:base64", "indirection:3", "move"),
}
FRAME_BOUND = {"super", "locals", "globals", "vars", "exec", "eval", "dir", "getattr"}
"""Calls whose meaning depends on the calling frame (or that the rewrites themselves emit)."""


@dataclass(frozen=True)
class Variant:
    case: Case
    recipe: str
    diff: str

    @property
    def id(self) -> str:
        return f"{self.case.id}~{self.recipe}"

    def as_case(self) -> Case:
        return replace(self.case, id=self.id, diff=self.diff)


def transformable(case: Case) -> bool:
    """Cases whose hostile part is Python code the rewrites can reach (not path or format tricks)."""
    if case.expected_signal == "patch_rejected":
        return False  # rejected before any code is read: nothing to rewrite
    if "\ncopy from " in case.diff or "\nrename from " in case.diff or "GIT binary" in case.diff:
        return False
    return any(line.startswith("+++ b/") and line.endswith(".py") for line in case.diff.splitlines())


def variants(case: Case) -> Iterator[Variant]:
    for index, recipe in enumerate(RECIPES):
        yield Variant(case, recipe, rewrite_case(case, RECIPES[recipe], seed=index))


def sample(case: Case, count: int = 1, seed: int = 0) -> list[Variant]:
    chosen = random.Random(f"{case.id}:{seed}").sample(sorted(RECIPES), count)
    return [v for v in variants(case) if v.recipe in chosen]


# -- from a case to a variant ------------------------------------------------------------------


def patched_files(diff: str) -> dict[str, tuple[str | None, str | None]]:
    """Each file the diff touches: (text before, text after), applying it to a copy of the target."""
    with tempfile.TemporaryDirectory(prefix="rsi-metamorph-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(TARGET, tree, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        apply_diff(diff, tree)  # the harness's own applier: a case it rejects has no variants
        touched = [
            line[len("+++ b/") :] if line.startswith("+++ b/") else line[len("--- a/") :]
            for line in diff.splitlines()
            if line.startswith(("+++ b/", "--- a/"))
        ]
        files = {}
        for relative in dict.fromkeys(touched):
            before = TARGET / relative
            after = tree / relative
            files[relative] = (
                before.read_text() if before.is_file() else None,
                after.read_text() if after.is_file() else None,
            )
        return files


def rewrite_case(case: Case, steps: tuple[str, ...], seed: int) -> str:
    rng = random.Random(f"{case.id}:{seed}")
    files = patched_files(case.diff)
    extra: dict[str, str] = {}
    out = []
    for relative, (before, after) in files.items():
        if relative.endswith(".py") and after is not None:
            after = rewrite_file(relative, before, after, steps, rng, extra)
        out.append(file_diff(relative, before, after))
    out += [file_diff(relative, None, text) for relative, text in extra.items()]
    return "".join(out)


def changed_functions(before: str | None, after: str) -> list[ast.FunctionDef]:
    """Functions and methods of `after` that are new or differ from `before`'s of the same name."""
    old: dict[str, str] = {}
    if before is not None:
        for name, node in named_functions(ast.parse(before)):
            old[name] = ast.dump(node)
    return [node for name, node in named_functions(ast.parse(after)) if old.get(name) != ast.dump(node)]


def named_functions(module: ast.Module) -> Iterator[tuple[str, ast.FunctionDef]]:
    for node in module.body:
        if isinstance(node, ast.FunctionDef):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    yield f"{node.name}.{item.name}", item


def rewrite_file(
    relative: str,
    before: str | None,
    after: str,
    steps: tuple[str, ...],
    rng: random.Random,
    extra: dict[str, str],
) -> str:
    module = ast.parse(after)
    targets = changed_functions(before, after)
    lines = after.splitlines(keepends=True)
    helpers = Helpers(rng)
    for node in sorted(targets, key=lambda n: n.lineno, reverse=True):
        start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        end = node.end_lineno or node.lineno
        indent = " " * node.col_offset
        for step in steps:
            node = apply_step(step, node, helpers, rng)
        if "move" in steps:
            node = move_out(node, relative, module, helpers, rng, extra)
        ast.fix_missing_locations(node)
        text = "".join(indent + line + "\n" for line in ast.unparse(node).splitlines())
        lines[start - 1 : end] = [text]
    if helpers.definitions:
        # After the imports: module-level code may call a rewritten function while the module loads.
        imports = [s.end_lineno or 0 for s in module.body if isinstance(s, ast.Import | ast.ImportFrom)]
        at = max(imports, default=0)
        lines[at:at] = ["\n\n" + "\n\n\n".join(helpers.definitions) + "\n\n\n"]
    rewritten = "".join(lines)
    ast.parse(rewritten)  # a variant is valid Python or no variant
    return rewritten


def apply_step(step: str, node: ast.FunctionDef, helpers: Helpers, rng: random.Random) -> ast.FunctionDef:
    kind, _, option = step.partition(":")
    if kind == "rename":
        node = Renamer(local_names(node), rng).visit(node)
    elif kind == "attributes":
        node = AttributeHider(option, helpers).visit(node)
    elif kind == "strings":
        node = StringHider(option, helpers).visit(node)
    elif kind == "indirection":
        node = CallRouter(int(option), helpers, rng).visit(node)
    for module_name in sorted(helpers.imports_needed):
        node.body.insert(docstring_end(node), ast.Import(names=[ast.alias(module_name)]))
    helpers.imports_needed.clear()
    return node


def docstring_end(node: ast.FunctionDef) -> int:
    first = node.body[0] if node.body else None
    is_doc = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    return 1 if is_doc else 0


# -- the rewrites ------------------------------------------------------------------------------


class Helpers:
    """Module-level helpers the rewrites call (wrappers, a dispatch class) and imports they need."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.definitions: list[str] = []
        self.imports_needed: set[str] = set()
        self.wrappers: list[str] = []
        self.dispatch: str | None = None

    def fresh(self, stem: str) -> str:
        return f"_{stem}_{self.rng.randrange(16**6):06x}"

    def wrapper(self, level: int) -> str:
        while len(self.wrappers) < level:
            name = self.fresh("relay")
            inner = self.wrappers[-1] + "(_f, *a, **k)" if self.wrappers else "_f(*a, **k)"
            self.definitions.append(f"def {name}(_f, /, *a, **k):\n    return {inner}")
            self.wrappers.append(name)
        return self.wrappers[level - 1]

    def dispatcher(self) -> str:
        if self.dispatch is None:
            self.dispatch = self.fresh("Dispatch")
            self.definitions.append(
                f"class {self.dispatch}:\n    @staticmethod\n    def call(_f, /, *a, **k):\n        return _f(*a, **k)"
            )
        return self.dispatch


def computed_text(text: str, how: str, helpers: Helpers) -> ast.expr:
    """An expression that evaluates to `text` without containing it."""
    if how == "rot13":
        helpers.imports_needed.add("codecs")
        return ast.parse(f"codecs.decode({codecs.encode(text, 'rot13')!r}, 'rot13')", mode="eval").body
    if how == "base64":
        helpers.imports_needed.add("base64")
        encoded = base64.b64encode(text.encode()).decode()
        return ast.parse(f"base64.b64decode({encoded!r}).decode()", mode="eval").body
    if len(text) < 2:
        return ast.Constant(text)
    cut = helpers.rng.randrange(1, len(text))
    return ast.BinOp(ast.Constant(text[:cut]), ast.Add(), ast.Constant(text[cut:]))


def local_names(node: ast.FunctionDef) -> set[str]:
    """Names assigned or imported inside the function (its parameters keep their names: callers
    may pass them by keyword)."""
    declared = {
        n for child in ast.walk(node) if isinstance(child, ast.Global | ast.Nonlocal) for n in child.names
    }
    names = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.add(child.id)
        elif isinstance(child, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in child.names if a.name != "*"}
    return names - declared


class Renamer(ast.NodeTransformer):
    def __init__(self, names: set[str], rng: random.Random) -> None:
        self.mapping = {name: f"v_{rng.randrange(16**6):06x}" for name in sorted(names)}

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_Import(self, node: ast.Import) -> ast.Import:
        for alias in node.names:
            bound = alias.asname or alias.name
            if bound in self.mapping and "." not in alias.name:
                alias.asname = self.mapping[bound]
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        for alias in node.names:
            bound = alias.asname or alias.name
            if bound in self.mapping:
                alias.asname = self.mapping[bound]
        return node


class BodyOnly(ast.NodeTransformer):
    """Rewrites the function's body, never its signature, decorators or annotations."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.body = [self.visit(statement) for statement in node.body]
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.JoinedStr:
        return node  # f-strings keep their literal parts (they must be constants)


class AttributeHider(BodyOnly):
    def __init__(self, how: str, helpers: Helpers) -> None:
        self.how = how
        self.helpers = helpers

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        self.generic_visit(node)
        is_super = isinstance(node.value, ast.Call) and getattr(node.value.func, "id", None) == "super"
        if not isinstance(node.ctx, ast.Load) or node.attr.startswith("__") or is_super:
            return node
        name = computed_text(node.attr, self.how, self.helpers)
        return ast.Call(ast.Name("getattr", ast.Load()), [node.value, name], [])


class StringHider(BodyOnly):
    def __init__(self, how: str, helpers: Helpers) -> None:
        self.how = how
        self.helpers = helpers

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        keep = docstring_end(node)
        node.body = node.body[:keep] + [self.visit(statement) for statement in node.body[keep:]]
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        if isinstance(node.value, str) and node.value:
            return computed_text(node.value, self.how, self.helpers)
        return node


class CallRouter(BodyOnly):
    """Every call goes through `depth` layers, each a wrapper function, a dict entry or a class method."""

    def __init__(self, depth: int, helpers: Helpers, rng: random.Random) -> None:
        self.depth = depth
        self.helpers = helpers
        self.rng = rng

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in FRAME_BOUND:
            return node
        return self.routed(node)

    def routed(self, node: ast.Call) -> ast.Call:
        relay: ast.expr = ast.Name(self.helpers.wrapper(self.depth), ast.Load())
        kind = self.rng.choice(("wrapper", "dict", "class"))
        if kind == "dict":
            key = self.helpers.fresh("k")
            relay = ast.Subscript(ast.Dict([ast.Constant(key)], [relay]), ast.Constant(key), ast.Load())
        elif kind == "class":
            dispatch = ast.Attribute(ast.Name(self.helpers.dispatcher(), ast.Load()), "call", ast.Load())
            return ast.Call(dispatch, [relay, node.func, *node.args], node.keywords)
        return ast.Call(relay, [node.func, *node.args], node.keywords)


# -- moving code to a new module ---------------------------------------------------------------


def move_out(
    node: ast.FunctionDef,
    relative: str,
    module: ast.Module,
    helpers: Helpers,
    rng: random.Random,
    extra: dict[str, str],
) -> ast.FunctionDef:
    """Put the function's body in a new module; the function imports it when called and delegates."""
    origin = relative[: -len(".py")].replace("/", ".")
    new_module = f"{origin.rsplit('.', 1)[-1]}_{rng.randrange(16**4):04x}"
    moved_name = helpers.fresh("impl")
    top_level = module_names(module)
    free = sorted(free_names(node) & top_level)
    # Every module-level name is looked up in the origin when the moved code runs, as it was before
    # the move (a test that monkeypatches the origin module still reaches the moved code).
    lazy = free
    signature = copy.deepcopy(node.args)
    for argument in ast.walk(signature):
        if isinstance(argument, ast.arg):
            argument.annotation = None  # evaluated where the function is defined: the new module
    moved = ast.FunctionDef(
        name=moved_name,
        args=signature,
        body=([ast.parse(f"from {origin} import {', '.join(lazy)}").body[0]] if lazy else []) + node.body,
        decorator_list=[],
        returns=None,
    )
    ast.fix_missing_locations(moved)
    helper_text = "\n\n\n".join(helpers.definitions)
    helpers.definitions.clear()
    helpers.wrappers.clear()
    helpers.dispatch = None
    folder = relative.rsplit("/", 1)[0] + "/" if "/" in relative else ""
    extra[f"{folder}{new_module}.py"] = (
        '"""Helpers split out of '
        + relative
        + '."""\n\n\n'
        + ast.unparse(moved)
        + "\n"
        + ("\n\n" + helper_text + "\n" if helper_text else "")
    )
    call_args: list[ast.expr] = [ast.Name(a.arg, ast.Load()) for a in node.args.posonlyargs + node.args.args]
    if node.args.vararg:
        call_args.append(ast.Starred(ast.Name(node.args.vararg.arg, ast.Load()), ast.Load()))
    keywords = [ast.keyword(a.arg, ast.Name(a.arg, ast.Load())) for a in node.args.kwonlyargs]
    if node.args.kwarg:
        keywords.append(ast.keyword(None, ast.Name(node.args.kwarg.arg, ast.Load())))
    keep = docstring_end(node)
    package = origin.rsplit(".", 1)[0] + "." if "." in origin else ""
    node.body = [
        *node.body[:keep],
        ast.parse(f"from {package}{new_module} import {moved_name}").body[0],
        ast.Return(ast.Call(ast.Name(moved_name, ast.Load()), call_args, keywords)),
    ]
    return node


def module_names(module: ast.Module) -> set[str]:
    names = {"__doc__", "__file__"}
    for statement in module.body:
        if isinstance(statement, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            names.add(statement.name)
        elif isinstance(statement, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in statement.names}
        else:
            names |= {
                n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
    return names


def free_names(node: ast.FunctionDef) -> set[str]:
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    arguments = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    return used - local_names(node) - arguments - set(dir(builtins))


def main() -> int:
    """Write every variant of every case as a diff file (for `rsi evaluate` or a review)."""
    import argparse

    from tests.adversarial.cases import CASES
    from tests.adversarial.classes import CLASS_CASES

    parser = argparse.ArgumentParser(description="Write the metamorphic variants of the adversarial cases.")
    parser.add_argument("out", type=Path, help="directory for CASE~RECIPE.diff files")
    parser.add_argument("--only", nargs="*", help="case ids (default: every case the rewrites can reach)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for case in [*CASES, *CLASS_CASES]:
        if transformable(case) and (not args.only or case.id in args.only):
            for variant in variants(case):
                (args.out / f"{variant.id}.diff").write_text(variant.diff)
                written += 1
    print(f"{written} variant diffs in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
