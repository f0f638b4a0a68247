"""The host's reading of the runtime audit: what the candidate's Python did while it trained and predicted.

Every command of a sandbox runs with the harness's audit hook (sandbox/audit/sitecustomize.py)
installed by the interpreter's start-up, before anything of the candidate's tree; what it reports
reaches the host through the sandbox's init (sandbox/init.py, sandbox/channel.py) as JSON lines.
The static code rules (policies/rules/code.py) read what a patch *says*; this reads what its code
*did*, however the call was spelled: renamed, reached through `vars`, `getattr` with a computed
name, several modules away, or decoded from data.

    audit = read_audit(exec_result.audit)          # PhaseAudit: processes, events worth a look
    findings = runtime_findings(evaluation)        # integrity.runtime findings, with evidence

What a training or prediction run of honest code does not do, and what each finding says:
- **code that came from no file the policy read**: `compile`/`exec`/`eval` of text that is not the
  staged tree's (or the environment's) file it names, code objects built by hand, `marshal` loads
  outside the import system's, compiled modules or native libraries opened from outside the
  environment. Two generators of the standard library compile text by design (named tuples and
  data classes); their text is accepted only in the shapes they write (`generated_shape`);
- **a process started** (subprocess, `os.system`, exec, spawn, fork);
- **native calls** (`ctypes`) but the library's own import, **the interpreter steered or searched**
  (trace and profile functions, `gc` object walks, other threads' frames);
- **globals an unpickler resolved** other than the constructors of plain arrays and containers;
- **the record itself tampered with**: a line that is not one the hook writes (a hook whose pipe
  was closed or replaced ends its process instead of writing); and a train or predict command that
  ran no audited Python at all, which cannot be vouched for.
- **the record overflowed**: the sandbox's init keeps 32 MiB of one command's record
  (sandbox.init.AUDIT_RECORD_CAP_BYTES) and counts what it reads past that; its last line says so.
  What was written after the cap was not seen, and a judged event may be there: a flood of accepted
  records (named tuples, data classes, data-constructor unpickles) would hide it.

Each is a `deny` (no honest training writes into a pipe it was not given, writes a record of tens
of thousands of generated classes, or needs any of the others), but two, which go to a human (`review`): a phase that ran no audited Python (a target
whose commands are not Python, or that starts its interpreter isolated, would be so), and a phase
whose every event is text compiled by the environment's libraries' own code, which may be the
library's own (the record cannot tell it from text the tree handed the library; the static code
rules deny the library calls known to run text they are handed).

A candidate is judged against its parent: an event the parent's code raised too, word for word
(`event_digest`: the compiled text whole, the pickled global, the program's arguments), is what the
tree already did and is counted, not reported. Libraries the target imports compile text of their
own (SciPy's array-API shims, attrs' and pydantic's generated methods, f2py's helpers at import:
hundreds of events), and a candidate that changes none of that must not be denied for it; one that
adds to it is.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from typing import Any

from core.contracts import Evaluation, Finding, IntegrityCheck, PhaseAudit, RuntimeEvent
from core.pysource import literal, parse_expression, parse_module
from sandbox.channel import AUDIT_SOURCE
from sandbox.init import AUDIT_RECORD_CAP_BYTES

RULE_ID = "integrity.runtime"
UNJUDGED_PHASES = re.compile(r"tests\b")
"""The phases whose events are not judged: the test gate runs pytest in an isolated interpreter,
which reads no PYTHONPATH (so it has no audit), and code under test is judged by the gate's checks.
Every other phase (each seed's train and predict, the integrity checks' controls) is the candidate's
code at work on the task."""
MUST_AUDIT = re.compile(r".*\b(train|predict)\b")
"""Phases that run the target's own train or predict command: one that ran no audited Python is a
finding."""
IMPORTER = "<frozen importlib._bootstrap>"
IMPORTER_EXTERNAL = "<frozen importlib._bootstrap_external>"
MAX_EVENTS = 20
"""Events kept per phase (the count is kept whole)."""
MAX_DIGESTS = 2048
"""Distinct events a phase's audit remembers for its tree's children (sandbox.runtime_audit.event_digest)."""
DIGEST_CHARS = 16
HASH_SIZED = re.compile(r"-?\b\d{15,20}\b")
PLACE = frozenset({"pid", "stack", "caller", "guarded"})
"""What a record says of where an event was raised, not of what it was."""

KINDS: dict[str, str] = {
    "dynamic-code": "code ran that came from no file the policy read",
    "process": "a process was started",
    "native": "native code was called through ctypes",
    "steering": "the interpreter was steered or searched (trace, profile, object walks, frames)",
    "unpickled": "an unpickler resolved globals that are not plain data constructors",
    "tampered": "the runtime audit's record was written into or bypassed",
}


def _hook_names(variable: str) -> frozenset[str]:
    """A set of event names as the hook itself lists them (sandbox/audit/sitecustomize.py, which
    runs in the sandbox without this package): one list, read from its source."""
    tree = parse_module((AUDIT_SOURCE / "sitecustomize.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == [variable]
            and isinstance(node.value, ast.Call)
            and node.value.args
        ):
            return frozenset(literal(node.value.args[0]))
    raise RuntimeError(f"the audit hook lists no {variable!r}: sandbox/audit/sitecustomize.py changed")


SPAWN = _hook_names("spawn")
"""Events that start a process."""
STEER = _hook_names("steer")
"""Events that steer or search the interpreter."""
DATA_CONSTRUCTORS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("builtins", "complex"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
    }
)
"""What an unpickler may resolve for plain arrays and containers: constructors of data that call
nothing of their caller's choosing."""
GENERATED_CALLS = frozenset(
    {
        "_tuple_new",
        "type",
        "hash",
        "super",
        "FrozenInstanceError",
        "self.__post_init__",
        "super(cls, self).__setattr__",
        "super(cls, self).__delattr__",
        "__dataclass_builtins_object__.__setattr__",
    }
)
"""Every call the standard library's named-tuple and data-class generators write (Python 3.11),
besides a data class's default factories (`_dflt_<field>`)."""
GENERATED_DUNDERS = frozenset({"__class__", "__qualname__", "__setattr__", "__delattr__", "__post_init__"})
GENERATED_NAMES = frozenset(
    {"__dataclass_builtins_object__", "__dataclass_self__", "__init__", "__repr__", "__eq__", "__lt__", "__le__", "__gt__", "__ge__",
     "__hash__", "__setattr__", "__delattr__"}
)  # fmt: skip
GENERATED_NODES = (
    ast.Module, ast.FunctionDef, ast.Lambda, ast.arguments, ast.arg, ast.Assign, ast.Return, ast.If,
    ast.IfExp, ast.Raise, ast.Expr, ast.Call, ast.Attribute, ast.Name, ast.Constant, ast.Tuple,
    ast.JoinedStr, ast.FormattedValue, ast.BinOp, ast.BoolOp, ast.Compare, ast.Load, ast.Store,
    ast.Add, ast.Or, ast.And, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot,
    ast.In, ast.keyword, ast.Pass,
)  # fmt: skip
GENERATORS = {("collections/__init__.py", "namedtuple"), ("dataclasses.py", "_create_fn")}


def generated_shape(source: str) -> bool:
    """Is `source` code as a named-tuple or data-class generator writes it: its calls and dunder
    attributes only theirs? Text built from field names that are not names (data classes take them
    from `__annotations__`, which any mapping can fill) does not keep that shape."""
    try:
        tree = parse_module(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, GENERATED_NODES):
            return False
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if func not in GENERATED_CALLS and not re.fullmatch(r"_dflt_\w+", func):
                return False
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("__")
            and node.attr not in GENERATED_DUNDERS
        ):
            return False
        if isinstance(node, ast.Name) and node.id.startswith("__") and node.id not in GENERATED_NAMES:
            return False
    return True


CYTHON_NAMES = frozenset(
    {
        "_cython_generator_type",
        "_cython_coroutine_type",
        "_module",
        "Generator",
        "Coroutine",
        "AttributeError",
    }
)
TYPE_NODES = (
    ast.Expression, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Constant, ast.BinOp,
    ast.BitOr, ast.Load, ast.Slice,
)  # fmt: skip


def cython_registration(source: str) -> bool:
    """Is `source` the text a Cython module runs as it initialises (its generator and coroutine
    types registered with collections.abc), and nothing else?"""
    try:
        tree = parse_module(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    allowed = (
        ast.Module, ast.If, ast.Try, ast.ExceptHandler, ast.Assign, ast.Expr, ast.Call, ast.Attribute, ast.Name,
        ast.Compare, ast.IsNot, ast.Is, ast.Constant, ast.Pass, ast.Load, ast.Store,
    )  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            return False
        if isinstance(node, ast.Name) and node.id not in CYTHON_NAMES:
            return False
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Attribute) and node.func.attr == "register" and len(node.args) == 1
        ):
            return False
    return True


def type_expression(source: str) -> bool:
    """Is `source` a type written as text (names, dotted names, subscripts, `|`): nothing called."""
    try:
        tree = parse_expression(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return all(isinstance(node, TYPE_NODES) for node in ast.walk(tree)) and not any(
        isinstance(node, ast.Name | ast.Attribute)
        and (getattr(node, "id", "") or getattr(node, "attr", "")).startswith("__")
        for node in ast.walk(tree)
    )


def _where(record: dict[str, Any]) -> list[str]:
    frames = record.get("stack")
    if not isinstance(frames, list):
        return []
    out = []
    for frame in frames[:8]:
        if isinstance(frame, list) and len(frame) == 3:
            out.append(f"{frame[0]}:{frame[1]} {frame[2]}")
    return out


def _under(path: object, roots: tuple[str, ...]) -> bool:
    return isinstance(path, str) and bool(roots) and path.startswith(roots)


def _as_a_library_imports(frames: object, roots: tuple[str, ...]) -> bool:
    """Was the event raised by the environment's code alone, on its way from an import: every frame
    from the innermost out to the import system's is a library's? A library frame with the tree's
    code beside it is no such thing: a library function that calls what it is handed (functools'
    dispatch, `copy`'s reconstruction) would otherwise stand in front of the tree's own act (red
    team round nineteen built and installed code through both, with no event judged)."""
    if not isinstance(frames, list):
        return False
    for frame in frames:
        if not (isinstance(frame, list) and frame and isinstance(frame[0], str)):
            return False
        if frame[0] in (IMPORTER, IMPORTER_EXTERNAL):
            return True
        if not _under(frame[0], roots):
            return False
    return False


def _classify(record: dict[str, Any], roots: tuple[str, ...]) -> RuntimeEvent | None:
    """The event a reviewer must see, or None for what honest code does too."""
    event = record.get("event")
    where = _where(record)
    if event == "compile":
        caller = record.get("caller")
        source = record.get("source")
        frames = record.get("stack") or []
        if (
            len(frames) >= 2
            and frames[0][0] == IMPORTER
            and frames[0][2] == "_call_with_frames_removed"
            and frames[1][0] == IMPORTER_EXTERNAL
            and frames[1][2] == "exec_module"
            and isinstance(source, str)
            and cython_registration(source)
        ):
            # Text an extension module's own initialisation runs as it is imported (Cython registers
            # its generator types with collections.abc so), accepted in that shape alone: a loader
            # of the candidate's that returns text from `get_code` runs under the same frames.
            return None
        if (
            isinstance(caller, list)
            and len(caller) == 2
            and _under(caller[0], roots)
            and str(caller[0]).endswith("/typing.py")
            and caller[1] == "__init__"
            and isinstance(source, str)
            and type_expression(source)
        ):
            return None  # a forward reference (`List["Layer"]`): a type's name, evaluated later
        if (
            isinstance(caller, list)
            and len(caller) == 2
            and _under(caller[0], roots)
            and any(str(caller[0]).endswith("/" + f) and caller[1] == n for f, n in GENERATORS)
            and isinstance(source, str)
            and generated_shape(source)
            # ...called by its own module (data classes' _init_fn, _repr_fn...), not by code that
            # hands the generator a body of its own.
            and (
                len(frames) < 2
                or frames[1][0] == caller[0]
                or str(caller[0]).endswith("/collections/__init__.py")
            )
        ):
            return None
        text = source if isinstance(source, str) else "(no text)"
        return RuntimeEvent(
            kind="dynamic-code",
            event="compile",
            staged=record.get("staged") if isinstance(record.get("staged"), str) else None,
            detail=f"{record.get('why')}: {record.get('filename')!r}: {text[:200]!r}",
            where=where,
            text_sha256=text_digest(source) if isinstance(source, str) else None,
            library=bool(frames)
            and isinstance(frames[0], list)
            and bool(frames[0])
            and _under(frames[0][0], roots),
        )
    if event == "compile.file":
        return None  # a file of the tree, exactly as staged
    if event == "code.__new__":
        if _as_a_library_imports(record.get("stack"), roots):
            # A library of the environment renaming its own code objects as it is imported (NumPy
            # 1.24's dispatchers), or a compiled extension module making its own (Cython's): the
            # bytecode is the library's, and what it is given is not.
            return None
        return RuntimeEvent(
            kind="dynamic-code", event=event, detail=f"a code object built for {record.get('filename')!r}",
            where=where,
        )  # fmt: skip
    if event in ("marshal.loads", "marshal.load"):
        return RuntimeEvent(
            kind="dynamic-code",
            event=event,
            detail="code or data unmarshalled outside an import",
            where=where,
        )
    if event == "open":
        args = record.get("args") or [None]
        return RuntimeEvent(
            kind="dynamic-code", event=event, detail=f"compiled code opened from outside the environment: {args[0]!r}",
            where=where,
        )  # fmt: skip
    if event == "import":
        args = record.get("args") or [None, None]
        return RuntimeEvent(
            kind="native", event=event, detail=f"an extension module loaded from outside the environment: {args!r}",
            where=where,
        )  # fmt: skip
    if event in SPAWN:
        return RuntimeEvent(
            kind="process", event=str(event), detail=f"{event} {record.get('args')!r}", where=where
        )
    if isinstance(event, str) and event.startswith("ctypes."):
        frames = record.get("stack") or []
        # ctypes' own import opens the interpreter's symbols (`pythonapi`) at module level.
        own_import = (
            event == "ctypes.dlopen"
            and len(frames) >= 2
            and all(_under(f[0], roots) and str(f[0]).endswith("/ctypes/__init__.py") for f in frames[:2])
            and frames[1][2] == "<module>"
        )
        if own_import:
            return None
        return RuntimeEvent(kind="native", event=event, detail=f"{event} {record.get('args')!r}", where=where)
    if event in STEER:
        return RuntimeEvent(kind="steering", event=str(event), detail=str(event), where=where)
    if event == "pickle.find_class":
        args = record.get("args") or []
        if isinstance(args, list) and tuple(args[:2]) in DATA_CONSTRUCTORS:
            return None
        return RuntimeEvent(kind="unpickled", event=event, detail=f"resolved {args[:2]!r}", where=where)
    if event in ("audit.forged", "audit.reentered"):
        return RuntimeEvent(kind="tampered", event=event, detail=str(record.get("why")), where=where)
    return RuntimeEvent(kind="tampered", event=str(event), detail="an event the audit hook does not write")


RECORDED_BYTES = 1 << 16
"""What the hook sends of a compiled text: its first 64 KiB (sandbox/audit/sitecustomize.py)."""


def text_digest(text: str) -> str:
    """The digest of a compiled text as the hook sends it (`recorded`)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def recorded(source: str) -> str:
    """A file's text as the hook records it when the import system compiles the file's bytes."""
    return source.encode("utf-8")[:RECORDED_BYTES].decode("utf-8", "replace")


def event_digest(record: dict[str, Any]) -> str:
    """What an event is, wherever and in whichever process it was raised: its name and arguments
    (a compiled text whole, not its first lines), without the stack, caller or process id. A
    hash-sized integer in compiled text counts as any other: generators write the string hash of a
    name into the text (attrs' `__hash__`), which differs in every process."""
    what = {k: v for k, v in record.items() if k not in PLACE}
    if isinstance(what.get("source"), str):
        what["source"] = HASH_SIZED.sub("#", what["source"])
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:DIGEST_CHARS]


def parent_digests(parent: Evaluation | None) -> frozenset[str]:
    """Every event the parent's judged phases raised: what its code already did."""
    if parent is None:
        return frozenset()
    return frozenset(
        digest
        for phase in parent.phases
        if phase.audit is not None and not UNJUDGED_PHASES.match(phase.phase)
        for digest in phase.audit.digests
    )


OVERFLOW = "audit.overflow"
"""The line the sandbox's init ends a record with when it reached its cap (sandbox/init.py): written
by no hook, it counts as the init's only as the record's last line."""


def _overflow(line: str) -> tuple[int, int] | None:
    """The bytes and lines the init dropped, if `line` is its overflow line."""
    if OVERFLOW not in line:
        return None
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("event") != OVERFLOW:
        return None
    counts = record.get("dropped_bytes"), record.get("dropped_lines")
    if not all(isinstance(n, int) and n >= 0 for n in counts):
        return None
    return counts[0], counts[1]  # type: ignore[return-value]


def _last_line(text: str) -> str:
    body = text.rstrip("\n")
    return body[body.rfind("\n") + 1 :]


def audit_bytes(text: str | None) -> int | None:
    """The bytes a command's audit hooks wrote (the phase budget's `audit_bytes`): those the record
    holds and those the init dropped past its cap, without the init's own line; None: no record."""
    if text is None:
        return None
    last = _last_line(text)
    dropped = _overflow(last)
    return len(text) if dropped is None else len(text) - len(last) - 1 + dropped[0]


def read_audit(text: str | None, excused: frozenset[str] = frozenset()) -> PhaseAudit:
    """A phase's audit from what its hooks wrote (ExecResult.audit); `excused`: the digests of
    events the parent's code raised too (`parent_digests`), which are counted, not reported. A
    tampered record is never excused."""
    if text is None:
        return PhaseAudit(answered=False)
    audit = PhaseAudit(bytes_written=audit_bytes(text) or 0)
    last = _last_line(text)
    dropped = _overflow(last)
    if dropped is not None:
        # The init's own line (sandbox/init.py): not an event. Anywhere else the same line was
        # written by the candidate, and is judged as what no hook writes.
        audit.dropped_bytes, audit.dropped_lines = dropped
        text = text[: len(text.rstrip("\n")) - len(last)]
    seen: set[str] = set()
    roots: tuple[str, ...] = ()
    records: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (ValueError, RecursionError):
            records.append(line)
    for index, record in enumerate(records):
        found: RuntimeEvent | None = None
        if not isinstance(record, dict) or not isinstance(record.get("event"), str):
            found = RuntimeEvent(
                kind="tampered", event="record", detail=f"record {index + 1} is not one the audit hook writes: {str(record)[:120]!r}"
            )  # fmt: skip
        elif record["event"] == "audit.start":
            audit.processes += 1
            if not roots and isinstance(record.get("roots"), list):
                # The first start record is the command's own interpreter, written before anything
                # of the candidate ran; later ones (its children, or forged) widen nothing.
                roots = tuple(
                    r for r in record["roots"] if isinstance(r, str) and r.startswith("/") and r != "/"
                )
        else:
            found = _classify(record, roots)
            if found is not None:
                digest = event_digest(record)
                if digest not in seen and len(seen) < MAX_DIGESTS:
                    seen.add(digest)
                    audit.digests.append(digest)
                if found.kind != "tampered" and digest in excused:
                    audit.excused += 1
                    continue
        if found is not None:
            audit.total += 1
            audit.by_libraries += found.library
            if len(audit.events) < MAX_EVENTS:
                audit.events.append(found)
    return audit


RELABELLED = re.compile(r".*-relabelled(-\d+)?(~\d+)?")
"""The relabelled control's phases (sandbox/integrity.py): they run a copy of the tree whose label
function the harness itself rewrote."""


def runtime_findings(
    evaluation: Evaluation, rewritten: frozenset[tuple[str, str]] = frozenset()
) -> list[Finding]:
    """One integrity.runtime finding per judged phase whose audit shows what honest code does not do;
    `rewritten`: the tree's files the relabelled control rewrites, each with the digest of the text
    the harness wrote there (`text_digest`): in those phases that text alone, compiled under that
    file's name, is the harness's and not the candidate's (any other text under the same name is
    judged as any compiled text is)."""
    findings: list[Finding] = []
    for phase in evaluation.phases:
        audit = phase.audit
        if audit is None or UNJUDGED_PHASES.match(phase.phase):
            continue
        if audit.dropped_bytes:
            findings.append(_overflowed(phase.phase, audit))
        events = audit.events
        if RELABELLED.fullmatch(phase.phase):
            events = [
                e for e in events if not (e.event == "compile" and (e.staged, e.text_sha256) in rewritten)
            ]
        if events:
            audit = audit.model_copy(
                update={"events": events, "total": audit.total - (len(audit.events) - len(events))}
            )
            kinds = sorted({e.kind for e in audit.events})
            first = audit.events[0]
            libraries = audit.by_libraries >= audit.total
            findings.append(
                Finding(
                    rule_id=RULE_ID,
                    # Text a library compiled may be its own (SciPy's shims, attrs' methods): that
                    # goes to a human, with the text; code the tree itself compiled does not.
                    verdict="review" if libraries else "deny",
                    message=(
                        f"{phase.phase}: "
                        + "; ".join(KINDS[k] for k in kinds)
                        + (", all of it by the environment's libraries' code" if libraries else "")
                        + f" ({audit.total} event(s); first: {first.event}: {first.detail[:160]}"
                        + (f" at {first.where[0]}" if libraries and first.where else "")
                        + ")"
                    ),
                    evidence={
                        "phase": phase.phase,
                        "kinds": kinds,
                        "total": audit.total,
                        "by_libraries": audit.by_libraries,
                        "events": [e.model_dump() for e in audit.events[:5]],
                    },
                )
            )
        elif (
            phase.exit_code == 0
            and MUST_AUDIT.match(phase.phase)
            and (not audit.answered or audit.processes == 0)
        ):
            findings.append(
                Finding(
                    rule_id=RULE_ID,
                    verdict="review",
                    message=(
                        f"{phase.phase}: no audited Python ran"
                        + ("" if audit.answered else " (the sandbox gave no audit record)")
                        + ": what the phase's code did cannot be vouched for"
                    ),
                    evidence={"phase": phase.phase, "answered": audit.answered, "processes": audit.processes},
                )
            )
    return findings


def _overflowed(phase: str, audit: PhaseAudit) -> Finding:
    """A phase whose record passed the init's cap: a `deny`, not a `review`. What came after the cap
    was not seen, and a flood of accepted records ahead of a judged event would otherwise turn any
    `deny` into a `review`; no honest training writes tens of thousands of generated classes in one
    command (the phase budget's `audit_bytes` holds the rest to the parent's)."""
    return Finding(
        rule_id=RULE_ID,
        verdict="deny",
        message=(
            f"{phase}: the runtime audit's record overflowed: its hooks wrote {audit.bytes_written} bytes, "
            f"and the {audit.dropped_bytes} bytes ({audit.dropped_lines} record(s)) past the sandbox's "
            f"{AUDIT_RECORD_CAP_BYTES} were not kept: the events there were not seen"
        ),
        evidence={
            "phase": phase,
            "kinds": ["overflow"],
            "bytes_written": audit.bytes_written,
            "dropped_bytes": audit.dropped_bytes,
            "dropped_lines": audit.dropped_lines,
            "cap": AUDIT_RECORD_CAP_BYTES,
        },
    )


def runtime_check(evaluation: Evaluation, findings: list[Finding]) -> IntegrityCheck:
    """The runtime audit as one of the evaluation's integrity checks (the size rule reads them)."""
    judged = [
        p
        for p in evaluation.phases
        if p.audit is not None and p.audit.processes and not UNJUDGED_PHASES.match(p.phase)
    ]
    if not judged:
        return IntegrityCheck(
            check="runtime", status="not_run", detail="no train or predict phase was audited"
        )
    if findings:
        return IntegrityCheck(check="runtime", status="finding", detail=findings[0].message[:200])
    processes = sum(p.audit.processes for p in judged if p.audit is not None)
    excused = sum(p.audit.excused for p in judged if p.audit is not None)
    return IntegrityCheck(
        check="runtime",
        status="clean",
        detail=(
            f"{len(judged)} phase(s), {processes} audited Python process(es): nothing but code from files ran"
            + (f", and {excused} event(s) the parent's code raised too, word for word" if excused else "")
        ),
        measured={"phases": len(judged), "processes": processes, "excused": excused},
    )
