"""Data sources for the CLI: paths or ``-`` (stdin), streamed, spooled when needed.

Decisions D13: stdin is streamed when one pass suffices; when more are needed
(several epochs, a vocabulary or range learned from the data, ``--resume``) it is
spooled to a temporary file first, never held whole in memory.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from .app import CliError


@dataclass
class Source:
    """One data input: a file path, or stdin (possibly spooled to ``path``)."""

    name: str
    path: str | None
    stdin: bool = False

    def open(self) -> BinaryIO:
        """A binary stream of the data (stdin itself when it was not spooled)."""
        if self.path is None:
            return sys.stdin.buffer
        return open(self.path, "rb")


@dataclass
class Sources:
    """The data of one command, with a temp directory for a spooled stdin."""

    items: list[Source]
    tmpdir: str | None = None
    _hash: str | None = field(default=None)

    def paths(self) -> list[str]:
        """The file paths (only valid when nothing is streamed from stdin)."""
        return [s.path for s in self.items if s.path is not None]

    @property
    def streamed(self) -> bool:
        """Whether stdin is read directly (a single pass only)."""
        return any(s.path is None for s in self.items)

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


def open_sources(names: list[str], need_multiple_passes: bool, what: str = "data") -> Sources:
    """Check the inputs exist and are readable files; spool stdin if several passes are needed."""
    if not names:
        raise CliError(f"no {what} given")
    if names.count("-") > 1:
        raise CliError("'-' (stdin) can be given only once")
    items: list[Source] = []
    tmpdir = None
    for name in names:
        if name == "-":
            if need_multiple_passes:
                tmpdir = tempfile.mkdtemp(prefix="neocli-stdin-")
                path = os.path.join(tmpdir, "stdin")
                with open(path, "wb") as out:
                    shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
                items.append(Source("<stdin>", path, stdin=True))
            else:
                items.append(Source("<stdin>", None, stdin=True))
            continue
        if not os.path.exists(name):
            raise CliError(f"{what} file '{name}' does not exist")
        if os.path.isdir(name):
            raise CliError(f"'{name}' is a directory, not a {what} file")
        if not os.access(name, os.R_OK):
            raise CliError(f"{what} file '{name}' is not readable")
        items.append(Source(name, name))
    return Sources(items, tmpdir)


class HashingReader:
    """Wraps a binary stream and hashes what is read (for a streamed stdin)."""

    def __init__(self, stream: BinaryIO, digest) -> None:
        self._s = stream
        self._h = digest

    def read(self, n: int = -1) -> bytes:
        """Read and hash up to ``n`` bytes."""
        b = self._s.read(n)
        self._h.update(b)
        return b

    def __iter__(self) -> Iterator[bytes]:
        for line in self._s:
            self._h.update(line)
            yield line

    def readable(self) -> bool:
        """Always readable."""
        return True

    def close(self) -> None:
        """Nothing to close: stdin stays open."""


def check_writable(path: str) -> None:
    """Fail fast if ``path`` cannot be written (before any training)."""
    d = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise CliError(f"output '{path}' is a directory")
    if not os.path.isdir(d):
        raise CliError(f"cannot write '{path}': directory '{d}' does not exist")
    if not os.access(d, os.W_OK | os.X_OK):
        raise CliError(f"cannot write '{path}': directory '{d}' is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError(f"cannot write '{path}': permission denied")
