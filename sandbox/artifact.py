"""A trained artifact as the harness sees it: the files a train command left in its out dir, judged
by their bytes (never by their names), and scrambled copies of their learned numbers.

    kind, problem = classify(data)           # ("npz", None), or ("pickle", "a Python pickle ...")
    scrambled = scramble(data, rng)          # the same file with every float array permuted + jittered

Data is what `np.load(..., allow_pickle=False)` reads (an .npy array, or an .npz archive whose every
member is one), JSON, or plain text that is not Python code. Everything else — a pickle, an object
array, a zip holding anything but arrays, a native binary, a script — can run code when a predict
command loads it, so the artifact is no longer just the numbers training learned.
"""

from __future__ import annotations

import ast
import io
import json
import zipfile

import numpy as np

from core.pysource import parse_module

NPY_MAGIC = b"\x93NUMPY"
MAX_EXPANDED_BYTES = 256 * 2**20
"""The most an archive's members may hold once decompressed, together: a zip's header says what a
member expands to, and a few hundred bytes of bzip2 expand to gigabytes (red team round twenty: a
181-byte member of 2 GiB ran the harness out of memory before any verdict). An honest model, stored
or deflated by NumPy, is far smaller than the 64 MiB the harness reads of it at most."""
ARRAY_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
"""How NumPy writes an archive's members (`savez`, `savez_compressed`)."""
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
CODE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.Import, ast.ImportFrom)


def load_array(raw: bytes) -> np.ndarray:
    """One `.npy` array, as `np.load(..., allow_pickle=False)` reads it, but refused (ValueError) when
    its header declares more data than the bytes hold: NumPy allocates the declared array before it
    reads a byte of it, so a header of a hundred bytes could ask the harness for gigabytes."""
    from numpy.lib import format as npy

    handle = io.BytesIO(raw)
    try:
        version = npy.read_magic(handle)
        read = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(
                f".npy format version {version[0]}.{version[1]}, which NumPy writes only for odd field names"
            )
        shape, _, dtype = read(handle)
    except (OSError, EOFError, TypeError, SyntaxError) as exc:
        raise ValueError(f"the .npy header does not read ({_short(exc)})") from exc
    declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if not dtype.hasobject else 0
    held = len(raw) - handle.tell()
    if declared > held:
        raise ValueError(f"its header declares {declared:,} bytes of data and the file holds {held:,}")
    return np.load(io.BytesIO(raw), allow_pickle=False)


def classify(data: bytes) -> tuple[str, str | None]:
    """What the bytes are (npy, npz, json, text, or what else) and, if they are not plain data, why."""
    if data.startswith(NPY_MAGIC):
        try:
            load_array(data)
        except (ValueError, OSError, EOFError) as exc:
            return (
                "npy",
                f"an .npy file that does not load without pickle ({_short(exc)}): object arrays run code",
            )
        return "npy", None
    if data.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return "npz", _zip_problem(data)
    text = _as_text(data)
    if text is None:
        head = data[:2]
        if head and head[0] == 0x80:
            return "pickle", "a Python pickle: loading it runs code"
        return "binary", f"binary data that is neither .npy nor .npz (starts {data[:8]!r})"
    try:
        json.loads(text)
        return "json", None
    except ValueError:
        pass
    if _is_python_code(text):
        return "code", "Python code (definitions or imports): text a predict command can run"
    return "text", None


def _zip_problem(data: bytes) -> str | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
        # What the members expand to, said by their headers, before any is read (reading stops at
        # the declared size: a member that expands further fails its check instead).
        expanded = sum(member.file_size for member in members)
        if expanded > MAX_EXPANDED_BYTES:
            return (
                f"an archive whose members expand to {expanded:,} bytes, more than the "
                f"{MAX_EXPANDED_BYTES:,} the harness decompresses ({len(data):,} bytes compressed)"
            )
        for member in members:
            if member.compress_type not in ARRAY_COMPRESSIONS:
                return (
                    f"an archive whose member {member.filename!r} is compressed with method "
                    f"{member.compress_type}, not stored or deflated as NumPy writes arrays"
                )
            content = archive.read(member)
            if not content.startswith(NPY_MAGIC):
                return f"an archive whose member {member.filename!r} is not an array"
            load_array(content)
    except (
        zipfile.BadZipFile,
        ValueError,
        OSError,
        EOFError,
        RuntimeError,
        NotImplementedError,
        MemoryError,
    ) as exc:
        return f"an archive that does not load as arrays without pickle ({_short(exc)})"
    return None


def _as_text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_python_code(text: str) -> bool:
    try:
        module = parse_module(text)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, CODE_NODES) for node in ast.walk(module))


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def scramble_array(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Float arrays: entries permuted, then jittered by half their spread (constants move too)."""
    if not np.issubdtype(values.dtype, np.floating) or values.size == 0:
        return values
    flat = values.reshape(-1).astype(np.float64)
    shuffled = flat[rng.permutation(flat.size)]
    finite = flat[np.isfinite(flat)]
    spread = float(finite.std()) if finite.size > 1 else 0.0
    scale = spread or float(np.abs(finite).mean() if finite.size else 0.0) or 1.0
    jittered = shuffled + rng.normal(0.0, 0.5 * scale, size=flat.size)
    return jittered.reshape(values.shape).astype(values.dtype)


def scramble(data: bytes, rng: np.random.Generator) -> bytes:
    """The same file with its learned numbers destroyed; files that hold no float array stay as they are."""
    kind, problem = classify(data)
    if problem is not None:
        return data
    if kind == "npy":
        out = io.BytesIO()
        np.save(out, scramble_array(load_array(data), rng), allow_pickle=False)
        return out.getvalue()
    if kind == "npz":
        source = zipfile.ZipFile(io.BytesIO(data))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
            for member in source.infolist():
                values = load_array(source.read(member))
                with archive.open(member.filename, "w") as handle:
                    np.lib.format.write_array(handle, scramble_array(values, rng), allow_pickle=False)
        return out.getvalue()
    if kind == "json":
        return json.dumps(_scramble_json(json.loads(data), rng)).encode()
    return data


def _scramble_json(value: object, rng: np.random.Generator) -> object:
    """Floats anywhere in a JSON document, scrambled together (a model saved as JSON is numbers too)."""
    floats: list[float] = []

    def collect(item: object) -> None:
        if isinstance(item, float):
            floats.append(item)
        elif isinstance(item, list):
            for element in item:
                collect(element)
        elif isinstance(item, dict):
            for element in item.values():
                collect(element)

    collect(value)
    replacements = iter(scramble_array(np.asarray(floats, dtype=np.float64), rng).tolist())

    def rebuild(item: object) -> object:
        if isinstance(item, float):
            return next(replacements)
        if isinstance(item, list):
            return [rebuild(element) for element in item]
        if isinstance(item, dict):
            return {key: rebuild(element) for key, element in item.items()}
        return item

    return rebuild(value)
