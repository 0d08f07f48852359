"""Transparent decompression of data files, chosen by file name extension.

``open_input(path)`` returns a binary stream of a data file's content: ``.gz``,
``.bz2``, ``.xz`` (and ``.lzma``) files are decompressed with the standard library,
``.zst``/``.zstd`` files with the optional ``zstandard`` package
(``pip install zstandard``, or the ``neocli[zstd]`` extra). Any other name is read
as is.

The rule is the extension only, as ``zcat``-aware tools and fastText users expect:
a gzip file named ``data.txt`` is read as raw bytes (``sniff`` can tell a caller
that it looks compressed, to warn). When the extension promises a format the
first bytes do not have, ``open_input`` raises ``NeoError`` before anything is
read (``--no-decompress``, i.e. ``decompress=False``, reads such a file as is).
A corrupt or truncated compressed stream raises ``NeoError`` naming the file
when the damaged part is reached. Decompression streams: memory stays bounded
whatever the file size.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import zlib
from typing import Any, BinaryIO

from ._errors import NamedError, NeoError, Param

__all__ = ["open_input", "compression_of", "sniff", "FORMATS"]

# extension -> format name; format name -> magic bytes at offset 0.
_EXTENSIONS = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".lzma": "lzma", ".zst": "zstd", ".zstd": "zstd"}
FORMATS = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00", "zstd": b"\x28\xb5\x2f\xfd"}
# Legacy .lzma ("alone") files have no fixed magic; their first byte is the
# properties byte, 0x5d for every file written with default settings.
_LZMA_ALONE = b"\x5d"


def _shown(path: Any) -> str:
    p = os.fsdecode(path)
    return p.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def compression_of(path: Any) -> str | None:
    """The compression format that ``path``'s extension names (``"gzip"`` ...), or None."""
    name = os.fsdecode(os.fspath(path)).lower()
    for ext, fmt in _EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    return None


def sniff(head: bytes) -> str | None:
    """The compression format whose magic bytes start ``head``, or None (``.lzma`` is not sniffed)."""
    for fmt, magic in FORMATS.items():
        if head.startswith(magic):
            return fmt
    return None


class _Checked(io.RawIOBase):
    """A decompressing stream whose read errors become NeoError naming the file."""

    def __init__(self, inner: Any, raw: BinaryIO, where: str, fmt: str) -> None:
        super().__init__()
        self._inner, self._raw, self._where, self._fmt = inner, raw, where, fmt
        self.name = where

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self._inner.read(len(b))
        except NeoError:
            raise
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as e:
            raise NeoError(f"'{self._where}': the {self._fmt} data is corrupt or truncated ({e})") from None
        except Exception as e:  # zstandard.ZstdError is not an OSError
            if type(e).__name__ == "ZstdError":
                raise NeoError(f"'{self._where}': the zstd data is corrupt or truncated ({e})") from None
            raise
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                self._raw.close()
        super().close()


def _zstd_reader(raw: BinaryIO, where: str) -> Any:
    try:
        import zstandard
    except ImportError:
        raise NeoError(f"'{where}' is zstd-compressed (.zst) but the zstandard package is not installed: "
                       "pip install zstandard (or pip install neocli[zstd]), or decompress it first") from None
    # read_across_frames: files made by `zstd` of concatenated inputs hold several frames.
    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)


def open_input(path: Any, decompress: bool = True) -> BinaryIO:
    """A binary stream of the data in the file at ``path``, decompressed by extension.

    With ``decompress=False``, or a name without a compression extension, the
    file is opened as is. Raises ``NeoError`` naming the file when it cannot be
    opened, when its first bytes are not the format its extension names, or when
    a ``.zst`` file needs the missing ``zstandard`` package. The caller closes the
    stream (it is a context manager).
    """
    where = _shown(path)
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise NeoError(f"cannot read '{where}': {e.strerror or e}") from None
    fmt = compression_of(path) if decompress else None
    if fmt is None:
        return raw
    try:
        head = raw.peek(8)[:8] if hasattr(raw, "peek") else b""
        magic = FORMATS.get(fmt, _LZMA_ALONE)
        if not head.startswith(magic):
            what = "is empty" if not head else f"does not start with the {fmt} magic bytes"
            found = sniff(head)
            hint = f" (it looks {found}-compressed)" if found else ""
            raise NamedError(f"'{where}' {what}: its name says {fmt}-compressed but it is not{hint}; "
                             "rename it, or read it as is with ", Param("no_decompress"))
        if fmt == "gzip":
            inner: Any = gzip.GzipFile(fileobj=raw, mode="rb")
        elif fmt == "bzip2":
            inner = bz2.BZ2File(raw, mode="rb")
        elif fmt in ("xz", "lzma"):
            inner = lzma.LZMAFile(raw, mode="rb", format=lzma.FORMAT_AUTO)
        else:
            inner = _zstd_reader(raw, where)
    except BaseException:
        raw.close()
        raise
    return io.BufferedReader(_Checked(inner, raw, where, fmt), buffer_size=1 << 16)
