"""The harness's runtime audit: what the candidate's Python does while it trains and predicts.

Mounted read-only into every sandbox and put first on PYTHONPATH for the commands the harness runs
(sandbox/channel.py), this module is imported by the interpreter's own start-up (`site`) before any
file of the candidate's tree is on `sys.path` or runs. It adds an audit hook (PEP 578), which no
Python code can remove, and writes one JSON line per event worth a reviewer's eye to a pipe whose
reading end only the sandbox's init holds (sandbox/init.py): a line written is out of the
candidate's reach; it cannot be taken back, only followed by more.

Recorded, with the innermost frames of the stack that raised them:
- code that comes from no file the policy read: `compile` of text that is not the content of the
  staged tree's file (or of the environment's file) it names, code objects built by hand, `marshal`
  loads outside the import system's, compiled modules opened and extension modules loaded from
  outside the environment;
- processes started (`subprocess`, `os.system`, the exec and spawn families, fork);
- native calls (`ctypes`) and the interpreter inspected or steered (`gc` object walks, trace and
  profile functions, other threads' frames);
- globals an unpickler resolves.

The judgement is the host's (sandbox/runtime_audit.py): this module only reports. It calls nothing
of the candidate's (no `repr`, no method of an object it is given: only exact `str`/`bytes` values
are read) and keeps no state the candidate could change: its closure holds immutable values, and
what could rewrite a running hook's locals (a trace function) is itself an event. If the pipe is
closed or replaced, the process ends at once (exit 125) before the audited action happens.
"""


def _no_exec(ctypes: object, struct: object, machine: str) -> int:
    """A seccomp filter on this process and every process it starts (with no_new_privs, which any
    process may set): 1 when installed, 0 on a machine whose system call numbers this does not know
    or a kernel that refuses. It refuses (EPERM):
    - execve and execveat. Started processes are an event anyway (`subprocess`, `os.system`...),
      but some starters raise none (`_posixsubprocess.fork_exec`, libc's own `system()` through
      ctypes): this is what stops those;
    - rt_sigaction that sets a disposition. A Python signal handler is handed the frame it
      interrupts, which may be this hook's, and from its locals reaches the hook's closure cells
      with no audited call (red team round sixteen): no handler can be installed after the hook;
    - system calls of another calling convention (i386's, x32's), which no Python process makes."""
    numbers = {
        "x86_64": (0xC000003E, 59, 322, 13, 317),
        "aarch64": (0xC00000B7, 221, 281, 134, 277),
    }.get(machine)
    if numbers is None:
        return 0
    arch, execve, execveat, sigaction, seccomp = numbers
    program = [
        (0x20, 0, 0, 4),  # 0  ld [4]: the calling convention
        (0x15, 0, 10, arch),  # 1  another: refused
        (0x20, 0, 0, 0),  # 2  ld [0]: the call
        (0x35, 8, 0, 0x40000000),  # 3  x32's numbers: refused
        (0x15, 7, 0, execve),  # 4
        (0x15, 6, 0, execveat),  # 5
        (0x15, 0, 4, sigaction),  # 6  any other call: allowed
        (0x20, 0, 0, 24),  # 7  ld [24]: the new action's address, low half
        (0x15, 0, 3, 0),  # 8
        (0x20, 0, 0, 28),  # 9  high half
        (0x15, 0, 1, 0),  # 10 NULL: the disposition only read
        (0x06, 0, 0, 0x7FFF0000),  # 11 allow
        (0x06, 0, 0, 0x00050000 | 1),  # 12 EPERM
    ]
    code = b"".join(struct.pack("HBBI", *op) for op in program)  # type: ignore[attr-defined]
    buffer = ctypes.create_string_buffer(code, len(code))  # type: ignore[attr-defined]

    class Program(ctypes.Structure):  # type: ignore[name-defined]
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]  # type: ignore[attr-defined]  # noqa: RUF012

    fprog = Program(len(program), ctypes.addressof(buffer))  # type: ignore[attr-defined]
    libc = ctypes.CDLL(None, use_errno=True)  # type: ignore[attr-defined]
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]  # type: ignore[attr-defined]
    if prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return 0
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW): without that flag the
    # kernel also turns on its speculative-store-bypass mitigation for the process, which made
    # importing NumPy 14 ms slower; what the filter refuses is the same either way.
    if libc.syscall(seccomp, 1, 4, ctypes.addressof(fprog)) == 0:  # type: ignore[attr-defined]
        return 1
    # An older kernel without the flag: PR_SET_SECCOMP (22) with SECCOMP_MODE_FILTER (2).
    return 1 if prctl(22, 2, ctypes.addressof(fprog), 0, 0) == 0 else 0  # type: ignore[attr-defined]


def _install(
    no_exec,
    *,
    type=type,
    len=len,
    id=id,
    str=str,
    bytes=bytes,
    int=int,
    list=list,
    dict=dict,
    OSError=OSError,
    ValueError=ValueError,
    BaseException=BaseException,
) -> None:
    """Install the hook. Every name its functions use is bound here, as they are at the
    interpreter's start: none is looked up at run time in this module's globals or in `builtins`,
    which any code can change (`sys.modules["sitecustomize"].len = ...`, `builtins.OSError = ...`),
    and it calls no function written in Python but its own (tests/sandbox/test_runtime_audit.py
    reads its bytecode for that)."""
    import ctypes
    import fcntl
    import os
    import struct
    import sys
    from _json import encode_basestring_ascii as quote  # C: no Python of anyone's runs in it

    fd_text = os.environ.pop("RSI_AUDIT_FD", "")
    here = os.path.dirname(os.path.realpath(__file__))
    # What the harness put in the environment goes, so that the candidate's code finds what a run by
    # hand has (the integrity checks' disguised re-run compares the two): the variable, this
    # directory on the path and in PYTHONPATH, and the pipe moved off the fixed number to a random
    # one, closed on exec. (The module stays in sys.modules, as Debian's own sitecustomize does by
    # hand; the import system needs it there until it returns.)
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if entries and os.path.realpath(entries[0]) == here:
        del entries[0]
        if entries:
            os.environ["PYTHONPATH"] = os.pathsep.join(entries)
        else:
            os.environ.pop("PYTHONPATH", None)
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or ".") != here]
    if not fd_text.isdigit():
        return
    try:
        fd = fcntl.fcntl(int(fd_text), fcntl.F_DUPFD_CLOEXEC, 10 + int.from_bytes(os.urandom(2), "big") % 500)
        os.close(int(fd_text))
        stat = os.fstat(fd)
    except OSError:
        return  # no pipe: the host sees no start record and says the phase was not audited
    pipe = (stat.st_dev, stat.st_ino)
    guarded = no_exec(ctypes, struct, os.uname().machine)
    staged = "/src/"
    # The tree runs at /workspace, or (the integrity checks' disguised runs) as a copy of it at the
    # command's working directory: either way its files must be the staged tree's.
    trees = tuple({"/workspace/", os.path.join(os.path.realpath(os.getcwd()), "")} - {"/"})
    roots = tuple(
        sorted(
            {
                os.path.join(os.path.realpath(p), "")
                for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
            }
        )
    )
    here = os.path.join(here, "")
    spawn = frozenset(
        {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
         "pty.spawn", "os.startfile"}
    )  # fmt: skip
    steer = frozenset(
        {"sys.settrace", "sys.setprofile", "sys._current_frames", "sys._current_exceptions", "gc.get_objects",
         "gc.get_referrers", "gc.get_referents", "sys.addaudithook", "cpython.PyInterpreterState_Clear",
         "cpython._PySys_ClearAuditHooks", "cpython.PyInterpreterState_New", "function.__new__"}
    )  # fmt: skip
    unsafe_modules = frozenset(
        {"_xxsubinterpreters", "_xxinterpchannels", "_testcapi", "_testinternalcapi", "_testmultiphase",
         "_testbuffer", "_testimportmultiple", "_testsinglephase", "_ctypes_test", "_xxtestfuzz", "_cffi_backend"}
    )  # fmt: skip
    shutdown = frozenset({"cpython.PyInterpreterState_Clear", "cpython._PySys_ClearAuditHooks"})
    frame_attributes = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})
    fstat, write, exit_now, read, open_, close = os.fstat, os.write, os._exit, os.read, os.open, os.close
    getframe, getpid, getcwd, lstat = sys._getframe, os.getpid, os.getcwd, os.lstat
    finalizing = sys.is_finalizing
    startswith, endswith, join = str.startswith, str.endswith, str.join
    try:
        raise ValueError
    except ValueError as error:
        traceback_type = type(error.__traceback__)
    int_text, frame_type, code_type, function_type = (
        int.__repr__,
        type(getframe()),
        type(no_exec.__code__),
        type(no_exec),
    )
    compiled_suffixes = (".pyc", ".pyo", ".so", ".pyd")
    importer_external = "<frozen importlib._bootstrap_external>"
    main_compiled: list[bool] = []  # the interpreter's own compile of the command's script: once
    reading: list[object] = []  # the traceback whose frame this hook is reading, while it reads

    def encode(value: object) -> str:
        kind = type(value)
        if kind is str:
            return quote(value)  # type: ignore[arg-type]
        if kind is int:
            return int_text(value)
        if kind is list:
            return "[" + join(",", [encode(v) for v in value]) + "]"  # type: ignore[attr-defined]
        if kind is dict:
            return "{" + join(",", [quote(k) + ":" + encode(v) for k, v in value.items()]) + "}"  # type: ignore[attr-defined]
        return "null"

    def send(record: dict[str, object]) -> None:
        record["pid"] = getpid()
        line = (encode(record) + "\n").encode("ascii")
        try:
            now = fstat(fd)
            if (now.st_dev, now.st_ino) != pipe:
                raise OSError("replaced")
            while line:
                line = line[write(fd, line[:4096]) :]
        except OSError:
            exit_now(125)

    def text(value: object, limit: int) -> str | None:
        if type(value) is bytes:
            return value[:limit].decode("utf-8", "replace")  # type: ignore[index]
        if type(value) is str:
            return value[:limit]  # type: ignore[index]
        return None

    def plain(path: str | None) -> str | None:
        """An absolute path without `.`/`..` steps or doubled slashes (relative ones from the working
        directory), or None: a prefix check must not be walked out of."""
        if path is None:
            return None
        if not startswith(path, "/"):
            path = getcwd() + "/" + path
        if "/./" in path or "/../" in path or "//" in path or endswith(path, ("/.", "/..")):
            return None
        return path

    def exists(path: str) -> bool:  # os.path.lexists, whose module's globals any code can change
        try:
            lstat(path)
        except (OSError, ValueError):
            return False
        return True

    def file_bytes(path: str) -> bytes | None:
        try:
            handle = open_(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            chunks = []
            while chunk := read(handle, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            close(handle)

    def from_file(source: object, filename: str | None) -> tuple[str, str | None]:
        """('', ...) when `source` is exactly the file the policy read (or the environment's own),
        else why not; and the file's path in the staged tree, if it is the tree's."""
        if type(source) is str:
            data = source.encode("utf-8", "surrogatepass")  # type: ignore[attr-defined]
        elif type(source) is bytes:
            data = source
        else:
            return "compiled from a syntax tree or another object, not from a file's text", None
        if filename is None or startswith(filename, "<"):
            return "compiled from text that is no file", None
        path = plain(filename)
        if path is None:
            return "compiled under a name that is no plain path", None
        for tree in trees:
            if startswith(path, tree):
                relative = path[len(tree) :]
                if not endswith(relative, (".py", ".pyi")):
                    # The code rules read a tree's Python files; text kept under another name and
                    # loaded as a module was read by no one (red team round seventeen: a `.txt`
                    # run through the script's own loader).
                    return "compiled from the tree's " + relative + ", which is not a Python file", relative
                if file_bytes(staged + relative) == data:
                    return "", relative
                return "compiled from text that is not the staged tree's " + relative, relative
        if startswith(path, roots) or startswith(path, here):
            if file_bytes(path) == data:
                return "", None
            return "compiled from text that is not the environment's " + path, None
        return "compiled from text that is no file of the tree or the environment", None

    def frame_at(depth: int):  # a frame below this hook (its callers), never one of this hook's own
        try:
            return getframe(depth + 2)  # past this function and `hook`
        except ValueError:  # raised from the interpreter's start, below every Python frame
            return None

    def stack(frame: object) -> list[list[object]]:
        frames: list[list[object]] = []
        while frame is not None and len(frames) < 8:
            code = frame.f_code  # type: ignore[attr-defined]
            frames.append([code.co_filename, frame.f_lineno, code.co_name])  # type: ignore[attr-defined]
            frame = frame.f_back  # type: ignore[attr-defined]
        return frames

    def inside(frame: object) -> bool:
        """Is this hook's own frame among `frame`'s callers: is code running inside the hook (a
        signal handler, a finalizer, a garbage collector's callback) that reached for frames?"""
        while frame is not None:
            if id(frame.f_code) in ours:  # type: ignore[attr-defined]
                return True
            frame = frame.f_back  # type: ignore[attr-defined]
        return False

    def judge(event: str, args: tuple[object, ...]) -> None:
        if type(event) is not str:
            send({"event": "audit.forged", "why": "an audit event raised with a name that is not a str"})
            return
        handed = None
        attribute = event == "object.__getattr__" and len(args) == 2 and args[1] in frame_attributes
        if attribute and reading and args[0] is reading[-1]:
            return  # this hook's own read of a traceback's frame, below
        if event == "sys._getframe" and args and type(args[0]) is frame_type:
            handed = args[0]
        elif attribute or event in steer:
            # What code running inside this hook needs to reach its state: a frame, or the
            # interpreter's objects. (Other events raised from inside it change nothing of it.)
            handed = frame_at(1)
            if attribute and handed is not None and id(handed.f_code) in ours:
                return  # this hook's own read, below
        if handed is not None and inside(handed):
            send(
                {
                    "event": "audit.reentered",
                    "why": "code ran inside the audit hook and reached for frames: " + event,
                }
            )
            exit_now(125)
        if attribute and type(args[0]) is traceback_type:
            # This hook's own read of the traceback's frame raises the same event again, from
            # inside the hook: that one event (the same traceback object, while this read lasts)
            # is passed over above, before `frame_at`, whose own frame lookup would hand this
            # hook's frame to the next judgement and end every process that reads a traceback
            # (`traceback.print_exc`, `logging.exception`). Every other event stays judged.
            reading.append(args[0])
            code = args[0].tb_frame.f_code  # type: ignore[attr-defined]
            reading.pop()
            if id(code) in ours:
                # A traceback through this hook, from an exception that left it where `hook` could
                # not stop it (the recursion limit reached as it called `judge`): its frames'
                # locals hold this closure's functions.
                send(
                    {"event": "audit.reentered", "why": "a frame of the audit hook reached from a traceback"}
                )
                exit_now(125)
        if event == "compile":
            if len(args) != 2:
                return
            source, filename = args
            name = text(filename, 4096)
            caller = frame_at(1)
            if caller is None and not main_compiled:
                main_compiled.append(True)
                return  # the interpreter compiling the command's own script, before any of it ran
            if (
                caller is not None
                and caller.f_code.co_name == "parse"
                and startswith(caller.f_code.co_filename, roots)
                and endswith(caller.f_code.co_filename, "/ast.py")
            ):
                flag = caller.f_globals.get("PyCF_ONLY_AST")
                if type(flag) is int and flag == 1024:
                    return  # ast.parse: a syntax tree, nothing that runs
            why, relative = (
                from_file(source, name)
                if name is not None
                else ("compiled under a name that is not a str", None)
            )
            if not why and relative is not None:
                # The tree's own file, as staged: said so the host can match its cached bytecode's
                # opening (sandbox/runtime_audit.py).
                send({"event": "compile.file", "filename": plain(name)})
            elif why:
                send(
                    {
                        "event": event,
                        "why": why,
                        "filename": name,
                        "staged": relative,
                        "source": text(source, 1 << 16),
                        "caller": [caller.f_code.co_filename, caller.f_code.co_name] if caller else None,
                        "stack": stack(caller),
                    }
                )
        elif event in shutdown and frame_at(1) is None and finalizing():
            return  # the interpreter's own end, with no Python frame left to have asked for it
        elif event in spawn or event in steer or startswith(event, "ctypes."):
            detail = [text(a, 300) for a in args[:3]] if event != "os.exec" else [text(args[0], 300)]
            if event == "subprocess.Popen" and len(args) > 1 and type(args[1]) is list:
                detail = [text(a, 300) for a in args[1][:8]]  # type: ignore[index]
            send({"event": event, "args": detail, "guarded": guarded, "stack": stack(frame_at(1))})
        elif event == "code.__new__":
            send(
                {
                    "event": event,
                    "filename": text(args[1] if len(args) > 1 else None, 4096),
                    "stack": stack(frame_at(1)),
                }
            )
        elif event == "object.__setattr__" and len(args) == 3 and args[1] == "__code__":
            target, new = args[0], args[2]
            function = type(target) is function_type
            same = False
            if function and type(new) is code_type:
                # The same code renamed (NumPy 1.24's dispatchers): bytecode, constants, names alike.
                old, fresh = target.__code__, new  # type: ignore[attr-defined]
                mine = (fresh.co_code, fresh.co_consts, fresh.co_names)  # type: ignore[attr-defined]
                same = mine == (old.co_code, old.co_consts, old.co_names)
            if function and id(target.__code__) in ours:  # type: ignore[attr-defined]
                send({"event": "audit.reentered", "why": "the audit hook's own code was replaced"})
                exit_now(125)
            if not same:
                send(
                    {
                        "event": "code.__new__",
                        "filename": "(a function's code replaced)",
                        "stack": stack(frame_at(1)),
                    }
                )
        elif event in ("marshal.loads", "marshal.load"):
            caller = frame_at(1)
            above = caller.f_back if caller is not None else None
            if not (
                caller is not None and above is not None and caller.f_code.co_filename == importer_external
                and caller.f_code.co_name == "_compile_bytecode" and above.f_code.co_filename == importer_external
                and above.f_code.co_name == "get_code"
            ):  # fmt: skip
                send({"event": event, "stack": stack(caller)})
        elif event == "pickle.find_class":
            send({"event": event, "args": [text(a, 300) for a in args[:2]], "stack": stack(frame_at(1))})
        elif event == "import" and len(args) > 1:
            module = text(args[0], 300)
            if args[1] is not None:
                # Raised with a file name only as a compiled extension module is loaded.
                path = plain(text(args[1], 4096))
                if path is None or not startswith(path, roots):
                    send({"event": event, "args": [module, text(args[1], 4096)], "stack": stack(frame_at(1))})
            elif module in unsafe_modules:
                send({"event": event, "args": [module, None], "stack": stack(frame_at(1))})
        elif event == "open" and args:
            path = text(args[0], 4096)
            if path is not None and endswith(path, compiled_suffixes):
                checked = plain(path)
                # The import system opens a module's cached bytecode before its source, whether it
                # exists or not: only one that exists is code about to load.
                if (checked is None or not startswith(checked, roots)) and exists(path):
                    send({"event": event, "args": [path], "stack": stack(frame_at(1))})

    def hook(event: str, args: tuple[object, ...]) -> None:
        """`judge`, and nothing leaves it but a return: an exception escaping the hook would carry
        its frames to the code that raised the event (a traceback's frames, whose locals hold this
        closure's functions and their cells), and one can be made to (an object whose `__hash__` or
        `__eq__` raises, handed to `sys.audit`; a recursion limit reached inside it)."""
        try:
            judge(event, args)
        except BaseException:
            try:
                send({"event": "audit.reentered", "why": "an exception was raised inside the audit hook"})
            finally:
                exit_now(125)

    own = (encode, send, text, plain, exists, file_bytes, from_file, frame_at, stack, inside, judge, hook)
    ours = frozenset(id(f.__code__) for f in own)  # by identity: hashing code is slow
    send({"event": "audit.start", "executable": sys.executable, "roots": list(roots), "guarded": guarded})
    sys.addaudithook(hook)


_install(_no_exec)
del _install, _no_exec
