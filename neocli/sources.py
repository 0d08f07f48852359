"""Data sources for training and evaluation: paths or ``-`` (stdin), streamed, spooled when needed.

stdin is streamed when one pass suffices; when more are needed (several epochs, a
vocabulary or range learned from the data, a resumed run that must check its data)
it is spooled to a temporary file first, never held whole in memory.

Errors are :class:`~neocli.errors.NeoError` and name files, not command-line flags.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator, Union

from ._errors import NeoError
from .compression import compression_of, open_input

#: What may name a data source: a path (str, bytes or os.PathLike) or ``"-"`` for stdin.
PathLike = Union[str, bytes, "os.PathLike[Any]"]


@dataclass
class Source:
    """One data input: a file path, or a stream read once (stdin, or a FIFO / process
    substitution named by ``pipe``), possibly spooled to ``path``."""

    name: str
    path: str | bytes | None
    stdin: bool = False
    pipe: str | bytes | None = None
    decompress: bool = True

    def open(self) -> BinaryIO:
        """A binary stream of the data (stdin itself when it was not spooled), decompressed
        by the file's extension unless ``decompress`` is False."""
        if self.path is None and self.pipe is not None:
            return open(self.pipe, "rb")
        if self.path is None:
            return sys.stdin.buffer
        if self.stdin or self.pipe is not None:
            return open(self.path, "rb")  # a spooled copy: its temp name says nothing of the format
        return open_input(self.path, self.decompress)


@dataclass
class Sources:
    """The data of one run, with a temp directory for a spooled stdin (``close()`` removes it)."""

    items: list[Source]
    tmpdir: str | None = None
    _hash: str | None = field(default=None)

    def paths(self) -> list[str | bytes]:
        """The file paths (only valid when nothing is streamed from stdin)."""
        return [s.path for s in self.items if s.path is not None]

    def opener(self) -> tuple[list[str], Any]:
        """``(names, opener)`` for ``Codec.fit``: the names shown in messages (``<stdin>``,
        never a spool file's temporary path) and a function opening each one's data."""
        by_name = {s.name: s for s in self.items if s.path is not None}
        return list(by_name), lambda name: by_name[name].open()

    @property
    def names(self) -> list[str]:
        """The names shown in messages and records (``<stdin>`` for stdin)."""
        return [s.name for s in self.items]

    @property
    def streamed(self) -> bool:
        """Whether stdin is read directly (a single pass only)."""
        return any(s.path is None for s in self.items)

    def total_bytes(self) -> int | None:
        """The size of all files, or None while stdin is streamed (or a file is compressed:
        its size on disk is not the size of its data; a reader counts those bytes as it goes,
        see :class:`ByteCount`)."""
        if self.streamed or any(s.decompress and compression_of(s.path) for s in self.items
                                if not s.stdin and s.pipe is None):
            return None
        return sum(os.path.getsize(p) for p in self.paths())

    def sha256(self) -> str | None:
        """sha256 over all data in order (None while stdin is streamed)."""
        if self.streamed:
            return self._hash
        if self._hash is None:
            self._hash = self.prefix_sha256(None)[0]
        return self._hash

    def prefix_sha256(self, limit: int | None) -> tuple[str, int]:
        """(sha256, bytes hashed) of the first ``limit`` bytes of the data in order
        (all of it for None); fewer bytes are hashed when the data is shorter."""
        h, n = hashlib.sha256(), 0
        for p in self.paths():
            with open(p, "rb") as f:
                while limit is None or n < limit:
                    chunk = f.read(1 << 20 if limit is None else min(1 << 20, limit - n))
                    if not chunk:
                        break
                    h.update(chunk)
                    n += len(chunk)
        return h.hexdigest(), n

    def close(self) -> None:
        """Remove a spooled copy of stdin."""
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self) -> "Sources":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _display(name: Any) -> str:
    return os.fsdecode(name) if isinstance(name, bytes) else str(name)


def as_list(sources: Any) -> list[Any]:
    """One source or an iterable of them, as a list of ``str``/``bytes`` paths or ``"-"``."""
    if isinstance(sources, (str, bytes, os.PathLike)):
        sources = [sources]
    out = []
    for s in sources:
        if isinstance(s, os.PathLike):
            s = os.fspath(s)
        if not isinstance(s, (str, bytes)):
            raise NeoError(f"sources: expected paths or '-', got {type(s).__name__}")
        out.append(s)
    return out


def check_input(path: Any, what: str = "data") -> None:
    """Fail if ``path`` is not an existing, readable regular file (or a readable stream)."""
    shown = _display(path)
    if not os.path.exists(path):
        raise NeoError(f"{what} file '{shown}' does not exist")
    if os.path.isdir(path):
        raise NeoError(f"'{shown}' is a directory, not a {what} file")
    if not os.access(path, os.R_OK):
        raise NeoError(f"{what} file '{shown}' is not readable")


def is_stream(path: Any) -> bool:
    """Whether ``path`` names data that can be read only once: a FIFO, a pipe such as
    bash's ``<(cmd)`` (``/dev/fd/N``), a character device."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _spool(tmpdir: str, k: int, stream: BinaryIO) -> str:
    path = os.path.join(tmpdir, f"input-{k}")
    with open(path, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    return path


def open_sources(names: Iterable[Any], need_multiple_passes: bool, what: str = "data",
                 decompress: bool = True) -> Sources:
    """Check the inputs exist and are readable; stream stdin and pipes (FIFOs, ``<(cmd)``)
    once, or spool them to a temporary directory if several passes are needed.

    Files are decompressed by extension (``.gz``, ``.bz2``, ``.xz``, ``.zst``) unless
    ``decompress`` is False. If spooling fails or is interrupted, nothing is left behind.
    """
    names = as_list(names)
    if not names:
        raise NeoError(f"no {what} given")
    if sum(1 for n in names if n in ("-", b"-")) > 1:
        raise NeoError("'-' (stdin) can be given only once")
    for name in names:
        if name not in ("-", b"-"):
            check_input(name, what)
    streams = [n for n in names if n in ("-", b"-") or is_stream(n)]
    if len(streams) > 1 and not need_multiple_passes:
        need_multiple_passes = True  # several one-shot streams are read one after the other: keep each
    srcs = Sources([])
    try:
        for k, name in enumerate(names):
            std = name in ("-", b"-")
            shown = "<stdin>" if std else _display(name)
            if not (std or name in streams):
                srcs.items.append(Source(shown, name, decompress=decompress))
            elif not need_multiple_passes:
                srcs.items.append(Source(shown, None, stdin=std, pipe=None if std else name))
            else:
                srcs.tmpdir = srcs.tmpdir or tempfile.mkdtemp(prefix="neocli-stdin-")
                if std:
                    path = _spool(srcs.tmpdir, k, sys.stdin.buffer)
                else:
                    with open(name, "rb") as f:
                        path = _spool(srcs.tmpdir, k, f)
                srcs.items.append(Source(shown, path, stdin=std, pipe=None if std else name))
    except BaseException:
        srcs.close()
        raise
    return srcs


class CountingDigest:
    """A sha256 that also counts the bytes it has seen (for a streamed stdin)."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.n = 0

    def update(self, data: bytes) -> None:
        """Hash and count ``data``."""
        self.h.update(data)
        self.n += len(data)

    def hexdigest(self) -> str:
        """The hash of everything seen so far."""
        return self.h.hexdigest()


class ByteCount:
    """A digest that only counts the bytes it is given (for :class:`HashingReader`): the size
    of data as the codec reads it, decompressed, which no file size tells in advance."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, data: bytes) -> None:
        """Count ``data``."""
        self.n += len(data)


class HashingReader(io.BufferedIOBase):
    """Wraps a binary stream and hashes (or counts, with :class:`ByteCount`) what is read.

    A buffered binary stream as far as ``io.TextIOWrapper`` is concerned (text codecs wrap
    it), but closing it leaves the stream it wraps open (stdin stays open)."""

    def __init__(self, stream: BinaryIO, digest: Any, guard: Any = None) -> None:
        super().__init__()
        self._s = stream
        self._h = digest
        # ``guard.reading`` is set while a read may block (a terminal, a pipe), so a stop
        # signal can end the wait instead of waiting for data that may never come.
        self._g = guard

    def _read(self, fn: Any, *args: Any) -> bytes:
        if self._g is None:
            return fn(*args)
        self._g.reading = True
        try:
            return fn(*args)
        finally:
            self._g.reading = False

    def read(self, n: int = -1) -> bytes:
        """Read and hash up to ``n`` bytes."""
        # One system call when data is waiting: a pipe or a terminal delivers what it has
        # instead of blocking until a whole chunk arrives (codecs loop until b"").
        fn = getattr(self._s, "read1", self._s.read) if n is not None and n > 0 else self._s.read
        b = self._read(fn, n)
        self._h.update(b)
        return b

    def read1(self, n: int = -1) -> bytes:
        """Read and hash up to ``n`` bytes with at most one system call."""
        b = self._read(getattr(self._s, "read1", self._s.read), n)
        self._h.update(b)
        return b

    def readline(self, size: int | None = -1) -> bytes:
        """Read and hash one line (at most ``size`` bytes)."""
        line = self._read(self._s.readline, -1 if size is None else size)
        self._h.update(line)
        return line

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def readable(self) -> bool:
        """Always readable."""
        return True

    def close(self) -> None:
        """Nothing to close: stdin stays open."""


def check_output(path: Any) -> None:
    """Fail fast if a file cannot be written at ``path`` (before any work is done)."""
    shown = _display(path)
    d = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise NeoError(f"cannot write '{shown}': it is a directory")
    if os.path.exists(path) and not os.path.isfile(path):
        raise NeoError(f"cannot write '{shown}': it is not a regular file (a device, FIFO or socket); "
                       "nothing was written")
    if not os.path.isdir(d):
        raise NeoError(f"cannot write '{shown}': directory '{_display(d)}' does not exist")
    if not os.access(d, os.W_OK | os.X_OK):
        raise NeoError(f"cannot write '{shown}': directory '{_display(d)}' is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise NeoError(f"cannot write '{shown}': permission denied")


def prepare_directory(path: Any) -> None:
    """Create a directory (for checkpoints) if needed and check it is writable."""
    os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise NeoError(f"checkpoint directory '{_display(path)}' is not writable")


__all__ = ["Source", "Sources", "open_sources", "check_input", "check_output", "prepare_directory",
           "HashingReader", "CountingDigest", "ByteCount", "as_list"]
