"""Reading and writing ``.ohr`` model files (format version 1).

An ``.ohr`` file is a safetensors-shaped container: a 24-byte binary prefix, a
JSON header, then raw little-endian C-order arrays::

    offset  size  content
    0       8     magic b"\\x89OHR\\r\\n\\x1a\\n"
    8       4     u32 LE format version (1)
    12      4     u32 LE zlib.crc32 of the N header bytes (padding included)
    16      8     u64 LE header length N
    24      N     UTF-8 JSON object, space-padded so that (24 + N) % 64 == 0
    24+N    ...   arrays, each at a 64-byte aligned offset relative to 24+N,
                  zero padding between them

The header holds ``format`` ("neocli-ohr"), ``format_version``,
``neocli_version``, ``created_utc``, whatever keys the caller supplies, and
``sections``: ``{"state": [entry, ...], "weights": [...], "persistent": [...]}``
where each entry is ``{"name", "dtype", "shape", "offset", "nbytes", "crc32"}``.
Sections are JSON lists rather than objects because the header is written with
``sort_keys=True`` and array order is significant: the concatenation of a
section's arrays, in list order, is exactly the byte stream the caller handed in.

The reader treats every file as hostile: any byte string either decodes or
raises :class:`OhrError` (``TypeError`` is reserved for passing the wrong Python
type). Nothing in a file is ever executed; there is no pickle anywhere.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import stat
import struct
import tempfile
import zlib
from collections.abc import Mapping

import numpy as np

from ._errors import NeoError
from ._version import __version__

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
    "SECTION_NAMES",
    "OhrError",
    "encode",
    "decode_header",
    "decode",
    "read_header",
    "read_file",
    "atomic_write",
    "check_output_path",
    "save",
    "write_stream",
    "section_bytes",
]

# PNG-style magic: the high byte catches 7-bit transfers, \r\n and \n catch
# newline translation, \x1a stops `type` on Windows from dumping binary.
MAGIC = b"\x89OHR\r\n\x1a\n"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 64 * 1024 * 1024
SECTION_NAMES = ("state", "weights", "persistent")

FORMAT_NAME = "neocli-ohr"
ALIGNMENT = 64
PREFIX_SIZE = 24
_PREFIX = struct.Struct("<8sIIQ")

# Only fixed-size little-endian numeric types: anything else (bool, float16,
# complex, structured, object) is either ambiguous across numpy versions or
# unsafe to reinterpret from raw bytes.
ALLOWED_DTYPES = ("|u1", "|i1", "<i4", "<u4", "<f4", "<u8", "<i8", "<f8")

_ENTRY_KEYS = frozenset(("name", "dtype", "shape", "offset", "nbytes", "crc32"))
# numpy 1.x caps arrays at 32 dimensions (numpy 2 at 64); stay portable.
_MAX_NDIM = 32
# numpy refuses shapes whose extent (zero dimensions counted as 1) times the
# itemsize overflows intp, even for empty arrays; refuse them ourselves first.
_MAX_EXTENT = int(np.iinfo(np.intp).max)
_RESERVED_KEYS = ("format", "format_version", "neocli_version", "created_utc", "sections")
# A header is small metadata. Bounding its number of JSON containers keeps
# json.loads proportionate to the file (64 MiB of "{}," would otherwise become
# 1.5 GB of dicts), and bounding its nesting keeps every recursive consumer of
# header values (json.dumps in `inspect`, re-encoding on checkpoint rewrites)
# far from the recursion limit, whatever the caller's stack depth. Both limits
# were reached by the fuzz harness (tests/fuzz); real headers nest 5 deep.
MAX_HEADER_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
MAX_HEADER_CONTAINERS = 1_000_000
# The first bytes of pyaogmaneo's own Hierarchy and ImageEncoder saves (see aogmaneo.py).
_AOGMANEO_MAGICS = ((5710502).to_bytes(4, "little"), (2118029).to_bytes(4, "little"))


class OhrError(NeoError):
    """A malformed, corrupted, unsupported or unwritable ``.ohr`` file or buffer."""


# --------------------------------------------------------------------------
# small helpers


def _align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def _crc(buf) -> int:
    return zlib.crc32(buf) & 0xFFFFFFFF


def _is_uint(x) -> bool:
    # JSON true/false arrive as bool, a subclass of int; they are not sizes.
    return type(x) is int and x >= 0


def _fail(where: str | None, msg: str) -> OhrError:
    if where is None:
        return OhrError(msg)
    return OhrError(f"cannot read '{where}': {msg}")


class _HookError(Exception):
    """Raised from inside json hooks; converted to OhrError by the caller."""


def _pairs_hook(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _HookError(f"duplicate key {key!r} in header JSON")
        obj[key] = value
    return obj


def _reject_constant(name):
    raise _HookError(f"non-finite number {name} in header JSON")


def _parse_float(text):
    # Python turns "1e999" into inf without complaint; a header must never
    # contain values that json.dumps(allow_nan=False) could not write back.
    value = float(text)
    if not math.isfinite(value):
        raise _HookError(f"non-finite number {text} in header JSON")
    return value


def _as_buffer(data) -> memoryview:
    """Return a read-only, 1-D, byte-format memoryview over `data`."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise TypeError(
                "expected a 1-D uint8 array, got a "
                f"{data.ndim}-D {data.dtype} array"
            )
        data = np.ascontiguousarray(data)
        mv = memoryview(data)
    elif isinstance(data, (bytes, bytearray)):
        mv = memoryview(data)
    elif isinstance(data, memoryview):
        mv = data
        if not mv.c_contiguous:
            mv = memoryview(mv.tobytes())
    else:
        raise TypeError(
            "expected bytes, bytearray, memoryview or a 1-D uint8 numpy array, "
            f"got {type(data).__name__}"
        )
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    # Views handed out by decode() must not let callers scribble on the source.
    return mv.toreadonly()


def _normalise_array(section: str, name, arr) -> np.ndarray:
    """Little-endian, C-contiguous copy (or the array itself) with an allowed dtype."""
    if not isinstance(name, str):
        raise TypeError(
            f"array names must be str, got {type(name).__name__} in section {section!r}"
        )
    if not isinstance(arr, np.ndarray):
        raise TypeError(
            f"array {name!r} in section {section!r} must be a numpy.ndarray, "
            f"got {type(arr).__name__}"
        )
    dt = arr.dtype
    if dt.fields is None and dt.subdtype is None and dt.kind in "iuf":
        dt = dt.newbyteorder("<")
    if dt.str not in ALLOWED_DTYPES:
        raise OhrError(
            f"array {name!r} in section {section!r} has unsupported dtype {arr.dtype} "
            f"(allowed: {', '.join(ALLOWED_DTYPES)})"
        )
    if arr.ndim > _MAX_NDIM:
        raise OhrError(
            f"array {name!r} in section {section!r} has {arr.ndim} dimensions "
            f"(at most {_MAX_NDIM} are supported)"
        )
    # Not ascontiguousarray: it silently turns 0-d arrays into 1-d ones.
    return np.asarray(arr, dtype=dt, order="C")


def _iter_pairs(section: str, arrays):
    if isinstance(arrays, Mapping):
        return list(arrays.items())
    if isinstance(arrays, (str, bytes)) or not hasattr(arrays, "__iter__"):
        raise TypeError(
            f"section {section!r} must be a list of (name, array) pairs or a dict, "
            f"got {type(arrays).__name__}"
        )
    pairs = []
    for item in arrays:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(
                f"section {section!r} must contain (name, array) pairs, "
                f"got {type(item).__name__}"
            )
        pairs.append(item)
    return pairs


def _raw(arr: np.ndarray) -> memoryview:
    # A flat uint8 view lets bytes.join / slicing treat any shape (including
    # 0-d) as plain bytes without an extra copy.
    return memoryview(arr.reshape(-1).view(np.uint8))


# --------------------------------------------------------------------------
# writing


def section_bytes(arrays) -> bytes:
    """Concatenate the raw bytes of `arrays`, in order, with no padding.

    `arrays` is a dict ``{name: ndarray}`` (such as one section returned by
    :func:`decode`) or a list of ``(name, ndarray)`` pairs. Arrays are taken in
    the little-endian C-order form that :func:`encode` stores, so
    ``section_bytes(original) == section_bytes(decoded)`` for every section that
    went through a round trip.
    """
    pairs = _iter_pairs("<arrays>", arrays)
    return b"".join(_raw(_normalise_array("<arrays>", n, a)) for n, a in pairs)


def _utc_now() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_default(obj):
    # Callers naturally put numpy scalars in "sizes" and the like; store them
    # as the plain JSON numbers they stand for.
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def encode(meta: dict, sections: dict) -> bytes:
    """Build the complete bytes of an ``.ohr`` file.

    `meta` holds the caller's header keys (``architecture``, ``sizes``,
    ``codec``, ``training``, ``user`` ...), passed through as JSON. The keys
    ``format``, ``format_version``, ``neocli_version`` and ``sections`` are always
    filled in by this function (values in `meta` are ignored); ``created_utc``
    is the current UTC time unless `meta` supplies it, which makes the output
    reproducible byte for byte.

    `sections` maps section names (a subset of :data:`SECTION_NAMES`) to a list
    of ``(name, ndarray)`` pairs (a dict ``{name: ndarray}`` also works). Array
    names must be unique within a section; dtypes must be one of the allowed
    little-endian numeric types (big-endian input is byte-swapped). Sections are
    laid out in :data:`SECTION_NAMES` order, arrays in the given order.

    Raises ``TypeError`` for arguments of the wrong Python type and
    :class:`OhrError` for values that cannot be stored.
    """
    return b"".join(_pieces(*_plan(meta, sections)))


def _plan(meta, sections):
    """Validate and lay out a file: (prefix + header bytes, [(offset, raw array view)], data length).

    Arrays are not copied (views over the caller's arrays, byte-swapped copies
    only for big-endian input), so a file can be written piece by piece.
    """
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    if not isinstance(sections, Mapping):
        raise TypeError(f"sections must be a dict, got {type(sections).__name__}")
    for key in meta:
        if not isinstance(key, str):
            raise TypeError(f"header keys must be str, got {type(key).__name__}")
    for sec in sections:
        if sec not in SECTION_NAMES:
            raise OhrError(
                f"unknown section {sec!r} (known sections: {', '.join(SECTION_NAMES)})"
            )

    entries: dict[str, list] = {}
    chunks: list[tuple[int, np.ndarray]] = []
    cursor = 0
    for sec in SECTION_NAMES:
        if sec not in sections:
            continue
        seen = set()
        sec_entries = []
        for name, arr in _iter_pairs(sec, sections[sec]):
            arr = _normalise_array(sec, name, arr)
            if name in seen:
                raise OhrError(f"duplicate array name {name!r} in section {sec!r}")
            seen.add(name)
            offset = _align(cursor)
            raw = _raw(arr)
            sec_entries.append(
                {
                    "name": name,
                    "dtype": arr.dtype.str,
                    "shape": [int(d) for d in arr.shape],
                    "offset": offset,
                    "nbytes": arr.nbytes,
                    "crc32": _crc(raw),
                }
            )
            chunks.append((offset, raw))
            # Empty arrays still advance to an aligned offset so that the data
            # region always ends exactly at the last entry: cutting any byte off
            # the end of a file then makes it invalid.
            cursor = offset + arr.nbytes
        entries[sec] = sec_entries

    header = {k: v for k, v in meta.items() if k not in _RESERVED_KEYS}
    created = meta.get("created_utc")
    if created is None:
        created = _utc_now()
    elif not isinstance(created, str):
        raise TypeError(f"created_utc must be a str, got {type(created).__name__}")
    header.update(
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        neocli_version=__version__,
        created_utc=created,
        sections=entries,
    )
    try:
        text = json.dumps(
            header,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_json_default,
        )
        hbytes = text.encode("utf-8")
    except TypeError as exc:
        # e.g. mixed int/str keys that sort_keys cannot order, or an object
        # json cannot represent: a programming error rather than bad data.
        raise TypeError(f"header metadata is not JSON serialisable: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        # ValueError covers NaN/inf and lone surrogates (UnicodeEncodeError).
        raise OhrError(f"header metadata cannot be stored: {exc}") from exc
    n = len(hbytes)
    hbytes += b" " * ((-(PREFIX_SIZE + n)) % ALIGNMENT)
    if len(hbytes) > MAX_HEADER_BYTES:
        raise OhrError(
            f"header is {len(hbytes)} bytes, more than the maximum {MAX_HEADER_BYTES}"
        )
    # Re-read what we are about to write so that encode can never produce a
    # file the reader rejects (e.g. {1: x, "1": y} in meta serialises to a
    # duplicate key).
    _parse_header(hbytes, FORMAT_VERSION, cursor, None)

    head = _PREFIX.pack(MAGIC, FORMAT_VERSION, _crc(hbytes), len(hbytes)) + hbytes
    return head, chunks, cursor


def _pieces(head: bytes, chunks, end: int):
    """The byte pieces of a file, in order: prefix and header, then arrays and padding."""
    yield head
    pos = 0
    for offset, raw in chunks:
        if offset > pos:
            yield bytes(offset - pos)
        yield raw
        pos = offset + raw.nbytes
    if end > pos:
        yield bytes(end - pos)




def write_stream(fileobj, meta: dict, sections: dict) -> int:
    """Write an ``.ohr`` file to the open binary stream `fileobj`, array by array.

    The bytes are exactly those of :func:`encode` with the same arguments, but
    the whole file is never built in memory: the extra memory is about one
    array's padding, whatever the model size. Use it for stdout (``-o -``), a
    pipe or a socket; nothing is atomic here and `fileobj` is neither flushed
    nor closed. Returns the number of bytes written. Errors from
    ``fileobj.write`` propagate unchanged.
    """
    n = 0
    for piece in _pieces(*_plan(meta, sections)):
        fileobj.write(piece)
        n += len(piece) if isinstance(piece, bytes) else piece.nbytes
    return n


# --------------------------------------------------------------------------
# reading


def _parse_prefix(prefix, total: int, where: str | None) -> tuple[int, int, int]:
    """Validate the 24-byte prefix of a `total`-byte file; return (version, crc, N)."""
    got = bytes(prefix[:len(MAGIC)])
    if total == 0:
        raise _fail(where, "not an .ohr file: it is empty")
    if got != MAGIC[:len(got)]:
        if got[:4] == MAGIC[:4]:
            raise _fail(
                where,
                "not an .ohr file: the magic number is damaged (was the file "
                "transferred in text mode, altering line endings?)",
            )
        if got[:4] in _AOGMANEO_MAGICS:
            raise _fail(
                where,
                "not an .ohr file: it is a model in pyaogmaneo's own format, which "
                "neocli.Hierarchy, neocli.ImageEncoder and neocli.aogmaneo read",
            )
        raise _fail(where, "not an .ohr file (bad magic number)")
    if total < PREFIX_SIZE:
        raise _fail(
            where,
            f"not an .ohr file: truncated to {total} bytes, shorter than the "
            f"{PREFIX_SIZE}-byte prefix",
        )
    _, version, crc, n = _PREFIX.unpack(bytes(prefix[:PREFIX_SIZE]))
    if version == 0:
        raise _fail(where, "invalid format version 0")
    if version > FORMAT_VERSION:
        raise _fail(
            where,
            f"the file was written by a newer neocli (format version {version}; "
            f"this version reads up to {FORMAT_VERSION})",
        )
    # Both checks come before anything of size N is allocated or read, so a
    # header claiming to be a terabyte costs nothing.
    if n > MAX_HEADER_BYTES:
        raise _fail(
            where,
            f"header length {n} exceeds the maximum of {MAX_HEADER_BYTES} bytes "
            "(file is corrupted)",
        )
    if n > total - PREFIX_SIZE:
        raise _fail(
            where,
            f"truncated file: header length is {n} bytes but only "
            f"{total - PREFIX_SIZE} bytes follow the prefix",
        )
    if (PREFIX_SIZE + n) % ALIGNMENT:
        raise _fail(
            where,
            f"header length {n} does not align the data region to {ALIGNMENT} "
            "bytes (file is corrupted)",
        )
    return version, crc, n


def _check_entry(sec: str, i: int, entry, where) -> tuple[str, str, tuple, int, int, int]:
    label = f"entry {i} of section {sec!r}"
    if not isinstance(entry, dict):
        raise _fail(where, f"{label} is not a JSON object")
    keys = set(entry)
    if keys != _ENTRY_KEYS:
        missing = sorted(_ENTRY_KEYS - keys)
        extra = sorted(keys - _ENTRY_KEYS)
        detail = []
        if missing:
            detail.append(f"missing keys {missing}")
        if extra:
            detail.append(f"unexpected keys {extra}")
        raise _fail(where, f"{label} has {' and '.join(detail)}")
    name = entry["name"]
    if not isinstance(name, str):
        raise _fail(where, f"{label} has a non-string name")
    label = f"array {name!r} in section {sec!r}"
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise _fail(
            where,
            f"{label} has unsupported dtype {dtype!r} "
            f"(allowed: {', '.join(ALLOWED_DTYPES)})",
        )
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
        raise _fail(
            where, f"{label} has an invalid shape (must be a list of non-negative integers)"
        )
    if len(shape) > _MAX_NDIM:
        raise _fail(where, f"{label} has {len(shape)} dimensions (at most {_MAX_NDIM})")
    for key in ("offset", "nbytes", "crc32"):
        if not _is_uint(entry[key]):
            raise _fail(where, f"{label} has an invalid {key} (must be a non-negative integer)")
    offset, nbytes, crc = entry["offset"], entry["nbytes"], entry["crc32"]
    if crc > 0xFFFFFFFF:
        raise _fail(where, f"{label} has an invalid crc32 (larger than 32 bits)")
    itemsize = np.dtype(dtype).itemsize
    if math.prod(max(d, 1) for d in shape) * itemsize > _MAX_EXTENT:
        raise _fail(where, f"{label} has an impossibly large shape {shape}")
    if nbytes != math.prod(shape) * itemsize:
        raise _fail(
            where,
            f"{label} has nbytes {nbytes} but shape {shape} of {dtype} needs "
            f"{math.prod(shape) * itemsize}",
        )
    if offset % ALIGNMENT:
        raise _fail(where, f"{label} has offset {offset}, which is not {ALIGNMENT}-byte aligned")
    return name, dtype, tuple(shape), offset, nbytes, crc


def _nesting_exceeds(obj, limit: int) -> bool:
    """Whether JSON value `obj` nests containers more than `limit` deep (iteratively)."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _parse_header(hbytes, version: int, data_len: int, where: str | None) -> dict:
    """Parse and validate the N header bytes against a data region of `data_len` bytes."""
    try:
        text = bytes(hbytes).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(
            where, f"header is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    # Counts brackets inside strings too: an over-estimate, cheap and safe.
    containers = text.count("{") + text.count("[")
    if containers > MAX_HEADER_CONTAINERS:
        raise _fail(
            where,
            f"header has {containers} JSON objects/arrays, more than the maximum "
            f"{MAX_HEADER_CONTAINERS} (file is corrupted or hostile)",
        )
    try:
        header = json.loads(
            text,
            object_pairs_hook=_pairs_hook,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
        )
    except _HookError as exc:
        raise _fail(where, f"header is not valid: {exc}") from None
    except RecursionError:
        raise _fail(where, "header is not valid JSON (nested too deeply)") from None
    except ValueError as exc:
        # JSONDecodeError, and int() refusing absurdly long digit strings.
        raise _fail(where, f"header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _fail(where, "header is not a JSON object")
    if _nesting_exceeds(header, MAX_HEADER_DEPTH):
        raise _fail(where, f"header JSON is nested more than {MAX_HEADER_DEPTH} levels deep")
    # UTF-8 text cannot hold surrogates, but a JSON escape can ("\ud800"): such a
    # string cannot be printed (inspect) or written back (encode), so refuse it
    # here. The regex is a cheap pre-check; valid escaped pairs pass the re-encode.
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(header, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _fail(
                where, "header contains a string that is not valid Unicode (a lone surrogate escape)"
            ) from None

    fmt = header.get("format")
    if fmt != FORMAT_NAME:
        raise _fail(where, f"header format is {fmt!r}, expected {FORMAT_NAME!r}")
    hver = header.get("format_version")
    if type(hver) is not int or hver != version:
        raise _fail(
            where,
            f"header format_version {hver!r} does not match the prefix version {version}",
        )
    for key in ("neocli_version", "created_utc"):
        if key in header and not isinstance(header[key], str):
            raise _fail(where, f"header {key} is not a string")

    if "sections" not in header:
        raise _fail(where, "header has no 'sections'")
    sections = header["sections"]
    if not isinstance(sections, dict):
        raise _fail(where, "header 'sections' is not a JSON object")
    for sec in sections:
        if sec not in SECTION_NAMES:
            raise _fail(
                where,
                f"header has unknown section {sec!r} "
                f"(known sections: {', '.join(SECTION_NAMES)})",
            )

    spans = []
    for sec in SECTION_NAMES:
        if sec not in sections:
            continue
        entries = sections[sec]
        if not isinstance(entries, list):
            raise _fail(where, f"section {sec!r} is not a JSON list")
        seen = set()
        for i, entry in enumerate(entries):
            name, _, _, offset, nbytes, _ = _check_entry(sec, i, entry, where)
            if name in seen:
                raise _fail(where, f"duplicate array name {name!r} in section {sec!r}")
            seen.add(name)
            if offset + nbytes > data_len:
                raise _fail(
                    where,
                    f"array {name!r} in section {sec!r} (bytes {offset}..{offset + nbytes} "
                    f"of the data region) lies past the end of the data "
                    f"({data_len} bytes; file is truncated or corrupted)",
                )
            if nbytes:
                spans.append((offset, offset + nbytes, sec, name))
    # Entries may list arrays in any order; once sorted by start, any overlap
    # shows up between neighbours (non-empty spans that pass the check end in
    # increasing order), which also covers overlaps between sections.
    spans.sort()
    for (_, end_a, sec_a, name_a), (start_b, _, sec_b, name_b) in zip(spans, spans[1:]):
        if start_b < end_a:
            raise _fail(
                where,
                f"array {name_b!r} in section {sec_b!r} overlaps array {name_a!r} "
                f"in section {sec_a!r}",
            )
    return header


def _decode(mv: memoryview, where: str | None):
    version, crc, n = _parse_prefix(mv, len(mv), where)
    hbytes = mv[PREFIX_SIZE:PREFIX_SIZE + n]
    if _crc(hbytes) != crc:
        raise _fail(where, "header checksum mismatch (file is corrupted)")
    base = PREFIX_SIZE + n
    header = _parse_header(hbytes, version, len(mv) - base, where)
    return header, base


def decode_header(data) -> dict:
    """Parse and validate the prefix and JSON header of an ``.ohr`` buffer.

    `data` is bytes, bytearray, memoryview or a 1-D uint8 numpy array holding
    the file (at least through the end of its last array: entries lying past
    the end of `data` are rejected). Array checksums are not verified. Returns
    the header dict, including ``sections`` as stored. Raises
    :class:`OhrError` for any malformed input and ``TypeError`` for other
    Python types.
    """
    header, _ = _decode(_as_buffer(data), None)
    return header


def _arrays(mv: memoryview, header: dict, base: int, verify: bool, where):
    out: dict[str, dict[str, np.ndarray]] = {}
    sections = header["sections"]
    for sec in SECTION_NAMES:
        if sec not in sections:
            continue
        arrays = {}
        for e in sections[sec]:
            start = base + e["offset"]
            chunk = mv[start:start + e["nbytes"]]
            if verify and _crc(chunk) != e["crc32"]:
                raise _fail(
                    where,
                    f"checksum mismatch in array {e['name']!r} of section {sec!r} "
                    "(file is corrupted)",
                )
            count = math.prod(e["shape"])
            arr = np.frombuffer(chunk, dtype=e["dtype"], count=count).reshape(e["shape"])
            arrays[e["name"]] = arr
        out[sec] = arrays
    return out


def decode(data, verify: bool = True):
    """Parse a whole ``.ohr`` buffer: header and arrays.

    Returns ``(header, arrays)`` where ``arrays`` is
    ``{section: {name: ndarray}}``, sections in :data:`SECTION_NAMES` order
    (only those present in the file) and arrays in file order. The arrays are
    read-only views over `data`, reshaped to their stored shape; copy them to
    modify, and keep in mind that mutating a bytearray passed as `data` shows
    through. With ``verify=True`` every array checksum is checked.
    """
    mv = _as_buffer(data)
    header, base = _decode(mv, None)
    return header, _arrays(mv, header, base, verify, None)


def _open_for_read(path):
    path = os.fspath(path)
    if not isinstance(path, (str, bytes)):
        raise TypeError(f"path must be str or os.PathLike, got {type(path).__name__}")
    shown = _shown(os.fsdecode(path))
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise OhrError(
            f"cannot read '{shown}': {exc.strerror or exc}"
        ) from exc
    return f, shown


def _read_prefix(f, shown: str) -> tuple[int, int, int, int]:
    """Read and check the prefix of open file `f`; return (size, version, crc, N)."""
    size = os.fstat(f.fileno()).st_size
    prefix = f.read(PREFIX_SIZE)
    # A short read means the file is not what fstat said (a file shrinking
    # under us, a special file); judge by what we actually got.
    total = size if len(prefix) == PREFIX_SIZE else len(prefix)
    return (size, *_parse_prefix(prefix, total, shown))


def read_header(path) -> dict:
    """Read and validate only the prefix and JSON header of the file at `path`.

    Reads 24 bytes, then the N header bytes, and nothing of the array data,
    so it is cheap even on very large models. Validation is the same as
    :func:`decode_header`, with array extents checked against the file size.
    """
    f, shown = _open_for_read(path)
    with f:
        try:
            size, version, crc, n = _read_prefix(f, shown)
            hbytes = f.read(n)
        except OSError as exc:
            raise OhrError(f"cannot read '{shown}': {exc.strerror or exc}") from exc
    if len(hbytes) != n:
        raise _fail(
            shown,
            f"truncated file: header length is {n} bytes but only {len(hbytes)} could be read",
        )
    if _crc(hbytes) != crc:
        raise _fail(shown, "header checksum mismatch (file is corrupted)")
    return _parse_header(hbytes, version, size - PREFIX_SIZE - n, shown)


def read_file(path, verify: bool = True):
    """Read and decode the whole file at `path`; see :func:`decode`.

    The prefix is checked before the rest of the file is read, so pointing this
    at a large file of the wrong kind fails fast. Arrays are read-only views
    over a bytes object private to this call.
    """
    f, shown = _open_for_read(path)
    with f:
        try:
            _read_prefix(f, shown)
            f.seek(0)
            data = f.read()
        except OSError as exc:
            raise OhrError(f"cannot read '{shown}': {exc.strerror or exc}") from exc
    mv = memoryview(data)
    header, base = _decode(mv, shown)
    return header, _arrays(mv, header, base, verify, shown)


# --------------------------------------------------------------------------
# atomic writes


def _current_umask() -> int:
    # os.umask has no read-only form; setting and restoring it races with
    # other threads creating files, so prefer the kernel's report when present.
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files of atomic_write: ".<target>.ohr-<pid>-<mkstemp letters>.tmp".
_TMP_NAME = re.compile(r"^\..+\.ohr-(\d+)-[a-z0-9_]+\.tmp$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but belongs to another user
        return True
    return True


def _remove_orphans(directory: str) -> None:
    """Best effort: delete temporary files left in `directory` by writers that died mid-write."""
    if os.name != "posix":  # os.kill(pid, 0) is not a liveness probe elsewhere
        return
    try:
        names = os.listdir(directory)
    except OSError:
        return
    me = os.getpid()
    for name in names:
        m = _TMP_NAME.match(name)
        if m is None:
            continue
        pid = int(m.group(1))
        # Our own pid: a write in progress in another thread of this process.
        if pid == me or _pid_alive(pid):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
)


def _fspath(path) -> str:
    path = os.fspath(path)
    if not isinstance(path, (str, bytes)):
        raise TypeError(f"path must be str, bytes or os.PathLike, got {type(path).__name__}")
    # Undecodable bytes become surrogate escapes, which os functions turn back
    # into the same bytes: names that are not valid UTF-8 keep working.
    return os.fsdecode(path)


def _shown(path: str) -> str:
    """`path` printable on any terminal (surrogate escapes shown as \\x.. escapes)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _classify_output(path: str, allow_fifo: bool, what: str = "model") -> tuple[str, str]:
    """(path to write, kind) for an output `path`; kind is "file", "new" or "fifo".

    A symlink is followed to its final target (the link itself stays); anything
    that is not a regular file, a FIFO (when allowed) or a missing name is refused
    before anything is written.
    """
    shown = _shown(path)
    if not path:
        raise OhrError(f"cannot write {what}: the output path is empty")
    try:
        st = os.stat(path)  # follows symlinks: the kind of what the link points at
    except FileNotFoundError:
        st = None
    except OSError as exc:  # ELOOP, EACCES on a parent, ENOTDIR ...
        raise OhrError(f"cannot write {what} to '{shown}': {exc.strerror or exc}") from exc
    if st is not None and not stat.S_ISREG(st.st_mode):
        for test, kind in _KINDS:
            if test(st.st_mode):
                break
        else:
            kind = "not a regular file"
        if kind.startswith("a FIFO") and allow_fifo:
            return path, "fifo"
        raise OhrError(f"cannot write {what} to '{shown}': it is {kind}, not a regular file "
                       f"({what}s are written to regular files only; nothing was written)")
    target = os.path.realpath(path) if os.path.islink(path) else path
    return target, "new" if st is None else "file"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)  # links, "..", hard links, bind mounts
    except OSError:  # one does not exist (yet): compare where they would resolve
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_path(path, allow_fifo: bool = False, inputs=(), what: str = "model") -> str:
    """Check, before any work, that a model can be written to `path`; return its kind.

    Returns ``"file"`` (an existing regular file, replaced atomically), ``"new"``
    (no such file yet) or, with ``allow_fifo=True``, ``"fifo"`` (a named pipe the
    model will be streamed into, see :func:`save`). A symlink is judged by what it
    points to: writes go through it to its target and leave the link in place.
    Raises :class:`OhrError` naming the path and the reason for a directory, a
    device, a socket, a FIFO (unless allowed), a missing or unwritable parent
    directory, a read-only existing file, or an empty path. `path` may be str,
    bytes (names that are not valid UTF-8) or os.PathLike.

    `inputs` are the paths the same command reads (data files, the model to
    resume): an output that is one of them, through links, ``..`` or a hard
    link, is refused, since writing it would destroy the input.

    `what` names the file in messages ("cannot write model to ..."; commands that
    write a table pass ``"output"``).
    """
    path = _fspath(path)
    for src in inputs:
        src = _fspath(src)
        if src not in ("", "-") and _same_file(path, src):
            raise OhrError(f"cannot write {what} to '{_shown(path)}': it is the input file '{_shown(src)}' "
                           "(writing it would overwrite the data)")
    target, kind = _classify_output(path, allow_fifo, what)
    if kind == "fifo":
        if not os.access(path, os.W_OK):
            raise OhrError(f"cannot write {what} to '{_shown(path)}': permission denied")
        return kind
    shown = _shown(path)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise OhrError(f"cannot write {what} to '{shown}': directory '{_shown(directory)}' does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OhrError(f"cannot write {what} to '{shown}': directory '{_shown(directory)}' is not writable")
    if kind == "file" and not os.access(target, os.W_OK):
        raise OhrError(f"cannot write {what} to '{shown}': permission denied (the file is read-only)")
    return kind


def _stream_to_fifo(path: str, fill) -> None:
    try:
        f = open(path, "wb")  # blocks until a reader opens the pipe, as `cat > fifo` does
    except OSError as exc:
        raise OhrError(f"cannot write model to '{_shown(path)}': {exc.strerror or exc}") from exc
    try:
        with f:
            fill(f)
    except OSError as exc:
        raise OhrError(f"cannot write model to '{_shown(path)}': {exc.strerror or exc}") from exc


def atomic_write(path, data) -> None:
    """Write `data` to `path` so that readers see either the old file or the new one.

    `data` is bytes-like, or a callable ``fill(f)`` that writes the content to
    the binary file object it is given (how :func:`save` streams a model array
    by array without building it in memory).

    The bytes go to a temporary file in the same directory, are flushed and
    fsynced, given mode ``0o666 & ~umask`` (mkstemp would leave 0o600), and the
    temporary file is renamed over `path`; the directory is then fsynced where
    the platform allows. On any failure, including ``KeyboardInterrupt``, the
    temporary file is removed and `path` is left untouched. ``OSError`` is
    re-raised as :class:`OhrError` ("cannot write model to '<path>': ...") with
    the original as ``__cause__``; other exceptions propagate unchanged.

    Targets: a symlink is written *through*: the temporary file is created next
    to the link's final target, which it replaces, and the link stays. A FIFO
    receives the bytes as a plain stream (atomicity is meaningless for a pipe).
    A directory, device or socket is refused with :class:`OhrError` before
    anything is written (see :func:`check_output_path`).

    A writer killed outright (SIGKILL, power loss) cannot remove its temporary
    file (``.<name>.ohr-<pid>-<random>.tmp``); each write first removes such
    orphans from the directory, for any target name, when their writer process
    no longer exists. Temporary files of live writers are never touched.
    """
    path = _fspath(path)
    if callable(data):
        fill = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        def fill(f, data=data):
            f.write(data)
    else:
        raise TypeError(f"data must be bytes-like or a callable, got {type(data).__name__}")
    target, kind = _classify_output(path, allow_fifo=True)
    if kind == "fifo":
        _stream_to_fifo(path, fill)
        return
    directory = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(target)
    shown = _shown(path)

    def wrap(exc: OSError) -> OhrError:
        return OhrError(f"cannot write model to '{shown}': {exc.strerror or exc}")

    _remove_orphans(directory)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base}.ohr-{os.getpid()}-", suffix=".tmp")
    except OSError as exc:
        raise wrap(exc) from exc

    try:
        try:
            f = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
            mode = 0o666 & ~_current_umask()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            else:  # Windows: only the read-only bit is meaningful anyway.
                os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise wrap(exc) from exc
        raise

    # The rename is durable only once the directory entry is on disk. Failure
    # here cannot be undone (the new file is already in place) and some
    # platforms cannot open directories at all, so it is best effort.
    try:
        dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def save(dest, meta: dict, sections: dict) -> None:
    """Write an ``.ohr`` file to `dest` without building it in memory.

    `dest` is a path (written with :func:`atomic_write`: through symlinks,
    streamed into a FIFO, devices and directories refused) or an open binary
    stream with a ``write`` method (:func:`write_stream`; e.g. ``sys.stdout.buffer``
    for ``-o -``). The bytes are those of ``encode(meta, sections)``; the layout
    and header are validated before the first byte is written.
    """
    if hasattr(dest, "write") and not isinstance(dest, (str, bytes, os.PathLike)):
        write_stream(dest, meta, sections)
        return
    plan = _plan(meta, sections)  # validate (and fail) before the target is touched

    def fill(f):
        for piece in _pieces(*plan):
            f.write(piece)

    atomic_write(dest, fill)
