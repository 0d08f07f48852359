"""Codecs: how the CLI turns data into CSDRs and back.

A codec reads symbols from a file (streamed), encodes each symbol as one CSDR for a
single prediction IO, decodes predicted CSDRs back into symbols, and writes symbols
as output data. Its description (``to_dict``) is stored in the ``.ohr`` header so
``generate`` and ``eval`` decode exactly as training encoded.

Kinds:

* ``bytes``: any file, byte by byte; a byte is two 16-cell columns (high and low
  nibble) by default, or one 256-cell column (``layout="byte"``).
* ``chars``: UTF-8 text, one Unicode character per step; vocabulary from the data.
* ``words``: whitespace-separated tokens; vocabulary of the most frequent words plus
  an unknown token.
* ``tokens``: integer ids separated by whitespace or newlines.
* ``csv``: numeric columns, one CSDR column per data column, each value binned
  into ``bins`` cells over a range learned from the data (or given).

Vocabulary ids above one column's size are spread over several columns as digits
(base ``radix``), so a 5,000-word vocabulary is 2 columns of 128 cells, not one
column of 5,000.
"""
from __future__ import annotations

import codecs as _pycodecs
import collections
import csv as _csv
import io
import itertools
import math
import re
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import numpy as np

from ._errors import NamedError, NeoError, Param

__all__ = ["Codec", "BytesCodec", "CharsCodec", "WordsCodec", "TokensCodec", "CsvCodec",
           "RESET", "make_codec", "codec_from_dict", "CODEC_KINDS", "MAX_TOKEN_ID", "MISSING_VALUES",
           "parse_delimiter", "check_encoding", "same_encoding",
           "encoding_fields"]


class _Reset:
    """Marks a sequence boundary inside a symbol stream (``--reset-on blank``)."""

    def __repr__(self) -> str:
        return "RESET"


RESET = _Reset()
FLOOR = 1e-6
_CHUNK = 1 << 16
# Largest token id the tokens codec takes: a vocabulary of 2^24 ids is the most a
# model header may claim (see _codec_problem), so every model written loads.
MAX_TOKEN_ID = (1 << 24) - 1


def _digits_layout(n: int, radix: int) -> tuple[int, int]:
    """(columns, cells per column) to hold ids 0..n-1: one column if it fits, else digits."""
    if radix < 2:
        # A radix read from a hostile model header would make the loop below spin forever.
        raise NeoError(f"codec radix must be >= 2, got {radix}")
    if n <= radix:
        return 1, max(n, 2)
    cols = 1
    while radix ** cols < n:
        cols += 1
    return cols, radix


class Codec:
    """Base class: symbols <-> CSDRs for one prediction IO of size ``io_size``."""

    kind = ""

    @property
    def io_size(self) -> tuple[int, int, int]:
        """The CSDR size ``(1, columns, cells)`` of the data port."""
        raise NotImplementedError

    @property
    def needs_fit(self) -> bool:
        """Whether ``fit`` must read the data first (a vocabulary or value range)."""
        return False

    def fit(self, paths: Iterable[str], opener: Callable[[str], BinaryIO] | None = None) -> None:
        """Learn what the codec needs from the data files (one full pass).

        ``opener(path)`` returns a binary stream of a file's data (default
        ``open(path, "rb")``; the CLI passes ``neocli.compression.open_input`` so
        compressed files are read decompressed)."""

    def symbols(self, stream: BinaryIO, reset_on_blank: bool = False, where: str = "") -> Iterator[Any]:
        """Stream the symbols of a binary file object, with ``RESET`` at blank lines if asked."""
        raise NotImplementedError

    def encode(self, symbol: Any) -> np.ndarray:
        """The int32 CSDR of a symbol."""
        raise NotImplementedError

    def decode(self, cis: np.ndarray) -> Any:
        """The symbol a CSDR stands for."""
        raise NotImplementedError

    def format(self, symbol: Any) -> bytes:
        """The output bytes of one symbol (what ``generate`` writes to stdout)."""
        raise NotImplementedError

    def parse_prompt(self, data: bytes) -> list[Any]:
        """The symbols of a prompt; symbols the codec cannot encode are an error."""
        out = []
        for s in self.symbols(io.BytesIO(data), where="prompt"):
            if s is RESET:
                continue
            self.check_known(s, "prompt")
            out.append(s)
        return out

    def check_known(self, symbol: Any, where: str) -> None:
        """Raise if ``symbol`` has no code (an unknown character, say)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, stored in the model header."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for ``inspect``."""
        return f"{self.kind} {self.io_size}"

    def candidates(self) -> tuple[list[Any], np.ndarray] | None:
        """The symbols ``generate`` may emit with their CSDRs (an ``(n, columns)`` array),
        or None when each column is a separate value (CSV) and is sampled on its own."""
        return None

    def choose(self, probs: np.ndarray, temperature: float, rng: np.random.Generator) -> Any:
        """Pick the next symbol from the model's per-column probabilities.

        A symbol spread over several columns (two nibbles of a byte, digits of a
        vocabulary id) is chosen from the joint distribution — the product of its
        columns' probabilities — over the symbols the codec knows, so columns are
        never combined into a symbol the data never had (a nibble model would
        otherwise write bytes such as ``\x60`` that occur nowhere in English text).
        Temperature 0 takes the most likely symbol.
        """
        z = self.io_size[2]
        p = np.asarray(probs, dtype=np.float64).reshape(-1, z)
        cand = self.candidates()
        if cand is None:
            return self.decode(_sample_rows(np.log(np.maximum(p, 1e-30)), temperature, rng))
        symbols, codes = cand
        logp = np.log(np.maximum(p, 1e-30))[np.arange(codes.shape[1]), codes].sum(axis=1)
        return symbols[int(_sample_rows(logp[None, :], temperature, rng)[0])]

    def bits(self, probs: np.ndarray, cis: np.ndarray) -> float:
        """-log2 of the probability given to ``cis``: per column, floored at 1e-6 (decisions D14)."""
        z = self.io_size[2]
        p = probs.reshape(-1, z)[np.arange(cis.shape[0]), cis]
        return float(-np.log2(np.maximum(p, FLOOR)).sum())


def _sample_rows(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``logits`` (log-probabilities) at ``temperature`` (0 = argmax)."""
    if temperature <= 0.0:
        return logits.argmax(axis=1)
    # In log space, so a low temperature does not underflow to all-zero weights;
    # the maximum is subtracted before dividing, so a tiny temperature (5e-324)
    # sends the other logits to -inf (weight 0) instead of overflowing to NaN.
    z = logits - logits.max(axis=1, keepdims=True)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        z = np.exp(z / temperature)
    cum = np.cumsum(z, axis=1)
    u = rng.random(logits.shape[0]) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), logits.shape[1] - 1)


def _to_digits(ids, cols: int, z: int, dtype=np.int32) -> np.ndarray:
    """Ids written in base ``z`` over ``cols`` columns (most significant first): one
    CSDR for an int id, one row per id for an array of ids."""
    out = np.empty(np.shape(ids) + (cols,), dtype=dtype)
    for c in range(cols - 1, -1, -1):
        out[..., c] = ids % z
        ids = ids // z
    return out


def _from_digits(cis: np.ndarray, z: int) -> int:
    """The id a base-``z`` CSDR stands for (inverse of ``_to_digits``)."""
    i = 0
    for c in cis:
        i = i * z + int(c)
    return i


# ---------------------------------------------------------------------------- text helpers

def check_encoding(encoding: Any) -> str:
    """The canonical name of a text encoding (``"utf-8"``, ``"latin-1"`` ...), or NeoError."""
    if not isinstance(encoding, str) or not encoding:
        raise NeoError(f"encoding must be a name such as utf-8 or latin-1, got {encoding!r}")
    try:
        info = _pycodecs.lookup(encoding)
    except LookupError:
        raise NeoError(f"unknown text encoding {encoding!r} (e.g. utf-8, latin-1, cp1252, utf-16)") from None
    if not getattr(info, "_is_text_encoding", True):  # rot13, zlib_codec ...
        raise NeoError(f"{encoding!r} is not a text encoding")
    return {"iso8859-1": "latin-1"}.get(info.name, info.name)


def _enc_label(encoding: str) -> str:
    return "UTF-8" if encoding == "utf-8" else encoding


def _decode_utf8(stream: BinaryIO, where: str, encoding: str = "utf-8") -> Iterator[str]:
    """Stream a binary file as text, with a clear error naming the byte offset of bad input."""
    dec = _pycodecs.getincrementaldecoder(encoding)()
    offset = 0
    while True:
        chunk = stream.read(_CHUNK)
        final = not chunk
        # The decoder may hold the start of a character from the previous chunk;
        # e.start counts from there, not from this chunk.
        held = len(dec.getstate()[0])
        try:
            text = dec.decode(chunk, final=final)
        except UnicodeDecodeError as e:
            raise NamedError(f"{where}: invalid {_enc_label(encoding)} at byte {offset - held + e.start}: "
                             "give the right ", Param("encoding"), ", or use the bytes codec for binary data") from None
        offset += len(chunk)
        if text:
            yield text
        if final:
            return


_BLANK_BYTES = frozenset(b" \t\r\v\f")


class BytesCodec(Codec):
    """Bytes: two 16-cell nibble columns (default) or one 256-cell column."""

    kind = "bytes"

    def __init__(self, layout: str = "nibbles", seen: str | None = None) -> None:
        if layout not in ("nibbles", "byte"):
            raise NeoError(f"bytes layout must be 'nibbles' or 'byte', got {layout!r}")
        self.layout = layout
        # The byte values met in training (a 256-bit set, hex in the header): what
        # generate may write. Absent (an older model) means every byte.
        self._seen = bytearray.fromhex(seen) if seen else bytearray(32)
        self._seen_given = bool(seen)

    @property
    def io_size(self) -> tuple[int, int, int]:
        return (1, 2, 16) if self.layout == "nibbles" else (1, 1, 256)

    def symbols(self, stream, reset_on_blank=False, where=""):
        # A blank line holds only whitespace (so CRLF files and lines of spaces
        # count), the same rule as every other codec.
        seen_newline = line_blank = False
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                return
            for b in chunk:
                if b == 10:
                    if reset_on_blank and seen_newline and line_blank:
                        yield RESET
                    seen_newline = line_blank = True
                elif b not in _BLANK_BYTES:
                    line_blank = False
                yield b

    def encode(self, symbol):
        self._seen[symbol >> 3] |= 1 << (symbol & 7)
        if self.layout == "nibbles":
            return np.array([symbol >> 4, symbol & 15], dtype=np.int32)
        return np.array([symbol], dtype=np.int32)

    def candidates(self):
        bits = np.unpackbits(np.frombuffer(bytes(self._seen), dtype=np.uint8), bitorder="little")
        ids = np.flatnonzero(bits) if bits.any() else np.arange(256)
        codes = _to_digits(ids, 2, 16, np.int64) if self.layout == "nibbles" else ids[:, None]
        return [int(i) for i in ids], codes

    def decode(self, cis):
        return int(cis[0]) << 4 | int(cis[1]) if self.layout == "nibbles" else int(cis[0])

    def format(self, symbol):
        return bytes((symbol,))

    def to_dict(self):
        d: dict[str, Any] = {"kind": self.kind, "layout": self.layout}
        if any(self._seen):
            d["seen"] = bytes(self._seen).hex()
        return d


def _open_all(paths: Iterable[str], opener: Callable[[str], BinaryIO] | None):
    """(path, binary stream) for each data file, opened with ``opener`` (default: plain open)."""
    for p in paths:
        with (opener or _open_rb)(p) as f:
            yield p, f


def _open_rb(path: str) -> BinaryIO:
    return open(path, "rb")


class _VocabCodec(Codec):
    """Shared machinery of codecs with a vocabulary of string symbols.

    ``unknown`` counts the symbols ``encode`` mapped to the unknown token (reset
    it with ``reset_counts``): what ``eval`` reports next to its metrics.
    """

    UNK: str | None = None
    # Whether fit keeps only the max_vocab most frequent symbols (the rest become UNK)
    # or refuses data with more distinct symbols.
    TRUNCATE = True

    def __init__(self, vocab: list[str] | None = None, radix: int = 256, max_vocab: int = 65536,
                 encoding: str = "utf-8") -> None:
        self.vocab: list[str] = list(vocab) if vocab is not None else []
        self.radix = int(radix)
        self.max_vocab = int(max_vocab)
        self.encoding = check_encoding(encoding)
        self.index = {s: i for i, s in enumerate(self.vocab)}
        self.unknown = 0

    def reset_counts(self) -> None:
        """Set ``unknown`` back to 0."""
        self.unknown = 0

    @property
    def needs_fit(self):
        return not self.vocab

    @property
    def io_size(self):
        cols, z = _digits_layout(max(len(self.vocab), 2), self.radix)
        return (1, cols, z)

    def fit(self, paths, opener=None):
        counts: collections.Counter[str] = collections.Counter()
        for p, f in _open_all(paths, opener):
            for s in self.symbols(f, where=p):
                if s is not RESET:
                    counts[s] += 1
        if not counts:
            raise NeoError("the data is empty: nothing to learn a vocabulary from")
        if self.UNK is not None:
            counts.pop(self.UNK, None)  # a literal "<unk>" in the data is the unknown token
        room = self.max_vocab - (1 if self.UNK is not None else 0)
        if not self.TRUNCATE and len(counts) > room:
            # Every symbol of the training data must keep its own code.
            raise NamedError(f"the data has {len(counts)} distinct symbols, more than ", Param("max_vocab"),
                             f" {self.max_vocab}{' minus one for <unk>' if self.UNK else ''}: raise ",
                             Param("max_vocab"), " (or use the bytes codec)")
        common = [s for s, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:room]]
        self.vocab = ([self.UNK] if self.UNK is not None else []) + sorted(common)
        self.index = {s: i for i, s in enumerate(self.vocab)}

    def _id(self, symbol: str) -> int:
        i = self.index.get(symbol)
        if i is None:
            if self.UNK is None:
                raise NeoError(f"symbol {symbol!r} is not in the model's vocabulary")
            self.unknown += 1
            return 0
        return i

    def is_known(self, symbol: str) -> bool:
        """Whether ``symbol`` has its own code (else it is encoded as the unknown token, if any)."""
        return symbol in self.index

    def check_known(self, symbol, where):
        if symbol not in self.index:
            raise NeoError(f"{where}: {symbol!r} is not in the model's vocabulary "
                           f"({len(self.vocab)} symbols)")

    def encode(self, symbol):
        _, cols, z = self.io_size
        return _to_digits(self._id(symbol), cols, z)

    def decode(self, cis):
        i = _from_digits(cis, self.io_size[2])
        return self.vocab[i] if i < len(self.vocab) else (self.vocab[0] if self.vocab else "")

    def candidates(self):
        if not self.vocab:
            return None
        _, cols, z = self.io_size
        ids = np.arange(len(self.vocab))
        if self.UNK is not None and len(self.vocab) > 1:
            ids = ids[1:]  # never generate the unknown token itself
        return [self.vocab[i] for i in ids], _to_digits(ids, cols, z, np.int64)

    def format(self, symbol):
        return symbol.encode(self.encoding)

    def to_dict(self):
        d = {"kind": self.kind, "vocab": self.vocab, "radix": self.radix, "max_vocab": self.max_vocab}
        if self.encoding != "utf-8":  # absent means UTF-8, as in models written before --encoding
            d["encoding"] = self.encoding
        return d

    def describe(self):
        unk = " (with <unk>)" if self.UNK is not None else ""
        enc = f", {self.encoding}" if self.encoding != "utf-8" else ""
        return f"{self.kind}, vocabulary {len(self.vocab)}{unk}{enc}, io {self.io_size}"


class CharsCodec(_VocabCodec):
    """Text, one Unicode character per step.

    Codec version 2 (the default) reserves id 0 for ``<unk>``: a character never
    seen in training is encoded, scored and counted as ``<unk>`` (``unknown``)
    instead of failing, as ``words`` does. Models written before (no ``version``
    in their codec description) have no ``<unk>``; for them an unseen character
    is an error that says so. A prompt must still use known characters.
    """

    kind = "chars"
    TRUNCATE = False
    VERSION = 2

    def __init__(self, vocab=None, radix=256, max_vocab=65536, encoding="utf-8", version=None):
        super().__init__(vocab, radix, max_vocab, encoding)
        # A description without a version is a version-1 model; a new codec is the current version.
        self.version = self.VERSION if version is None and vocab is None else int(version or 1)
        if self.version not in (1, 2):
            raise NeoError(f"chars codec version must be 1 or 2, got {version!r}")
        self.UNK = "<unk>" if self.version >= 2 else None

    def _id(self, symbol):
        if self.UNK is None and symbol not in self.index:
            raise NeoError(f"character {symbol!r} is not in the model's vocabulary, and this model was "
                           "trained before the chars codec had an <unk> symbol: retrain it to score "
                           "unseen characters")
        return super()._id(symbol)

    def symbols(self, stream, reset_on_blank=False, where=""):
        seen_newline = line_blank = False
        for text in _decode_utf8(stream, where or "data", self.encoding):
            for ch in text:
                if ch == "\n":
                    if reset_on_blank and seen_newline and line_blank:
                        yield RESET
                    seen_newline = line_blank = True
                elif not ch.isspace():
                    line_blank = False
                yield ch

    def to_dict(self):
        d = super().to_dict()
        if self.version != 1:
            d["version"] = self.version
        return d


# A word, or a newline (kept: blank lines reset); other whitespace separates words.
# re's \s and str.isspace agree on every character, so splitting matches the old loop.
_WORD_OR_NEWLINE = re.compile(r"[^\s]+|\n")


class WordsCodec(_VocabCodec):
    """Whitespace-separated words; words outside the vocabulary map to ``<unk>``."""

    kind = "words"
    UNK = "<unk>"

    def __init__(self, vocab=None, radix=256, max_vocab=8192, encoding="utf-8"):
        super().__init__(vocab, radix, max_vocab, encoding)

    def symbols(self, stream, reset_on_blank=False, where=""):
        # Linear in the input whatever its shape: a word cut at a chunk edge is kept
        # as a list of pieces joined once, never rescanned or re-concatenated per
        # chunk (4 M characters without whitespace used to take minutes).
        pending: list[str] = []
        newlines = 0
        for text in _decode_utf8(stream, where or "data", self.encoding):
            toks = _WORD_OR_NEWLINE.findall(text)
            words_out: list[str] = []
            if pending:
                if not text[0].isspace():  # the chunk continues the cut word
                    pending.append(toks.pop(0))
                    if not toks and not text[-1].isspace():
                        continue  # the whole chunk is inside one word
                words_out.append("".join(pending))
                pending = []
            if toks and not text[-1].isspace() and toks[-1] != "\n":
                pending = [toks.pop()]
            for tok in words_out + toks:
                if tok == "\n":
                    newlines += 1
                    if reset_on_blank and newlines == 2:
                        yield RESET
                    continue
                newlines = 0
                yield tok
        if pending:
            yield "".join(pending)

    def check_known(self, symbol, where):
        pass  # unknown words are encoded as <unk>, by design

    def format(self, symbol):
        return (symbol + " ").encode(self.encoding)


class TokensCodec(Codec):
    """Integer token ids separated by whitespace or newlines."""

    kind = "tokens"

    def __init__(self, vocab_size: int = 0, radix: int = 256) -> None:
        self.vocab_size = int(vocab_size)
        self.radix = int(radix)

    @property
    def needs_fit(self):
        return self.vocab_size <= 0

    @property
    def io_size(self):
        cols, z = _digits_layout(max(self.vocab_size, 2), self.radix)
        return (1, cols, z)

    def fit(self, paths, opener=None):
        top = -1
        for p, f in _open_all(paths, opener):
            for s in self.symbols(f, where=p):
                if s is not RESET and s > top:
                    top = s
        if top < 0:
            raise NeoError("the data is empty: no token ids found")
        self.vocab_size = top + 1

    def symbols(self, stream, reset_on_blank=False, where=""):
        for lineno, raw in enumerate(stream, 1):
            line = raw.strip()
            if not line:
                if reset_on_blank:
                    yield RESET
                continue
            for tok in line.split():
                try:
                    v = int(tok)
                except ValueError:
                    raise NeoError(f"{where or 'data'}:{lineno}: token {tok.decode('utf-8', 'replace')!r} "
                                   "is not an integer id") from None
                if v < 0:
                    raise NeoError(f"{where or 'data'}:{lineno}: token id {v} is negative")
                if v > MAX_TOKEN_ID:
                    # A larger vocabulary would write a model whose header the loader refuses.
                    raise NeoError(f"{where or 'data'}:{lineno}: token id {v} is too large: the tokens codec "
                                   f"takes ids from 0 to {MAX_TOKEN_ID} (2^24 - 1)")
                if self.vocab_size > 0 and v >= self.vocab_size:
                    raise NeoError(f"{where or 'data'}:{lineno}: token id {v} is outside the model's "
                                   f"vocabulary [0, {self.vocab_size})")
                yield v

    def encode(self, symbol):
        _, cols, z = self.io_size
        return _to_digits(symbol, cols, z)

    def decode(self, cis):
        return min(_from_digits(cis, self.io_size[2]), self.vocab_size - 1)

    def format(self, symbol):
        return f"{symbol}\n".encode()

    def candidates(self):
        if self.vocab_size <= 0:
            return None
        _, cols, z = self.io_size
        return list(range(self.vocab_size)), _to_digits(np.arange(self.vocab_size), cols, z, np.int64)

    def to_dict(self):
        return {"kind": self.kind, "vocab_size": self.vocab_size, "radix": self.radix}

    def describe(self):
        return f"tokens, vocabulary {self.vocab_size}, io {self.io_size}"


# Cells read as a missing value (compared after stripping spaces, case-insensitively).
MISSING_VALUES = ("", "na", "nan", "null", "n/a", "none", "-nan")
_MISSING = frozenset(MISSING_VALUES)
_MISSING_POLICIES = ("skip", "cell", "error")
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|"}
_AUTO_DELIMITERS = (",", ";", "\t", "|")


def parse_delimiter(text: str) -> str | None:
    """A CSV delimiter from user text: one character, a name (``tab``, ``comma``,
    ``semicolon``, ``space``, ``pipe``, or ``\\t``), or ``auto`` (None: detect it)."""
    if not isinstance(text, str):
        raise NamedError(Param("csv_delimiter"), f" must be a string, got {type(text).__name__}")
    if text.lower() == "auto":
        return None
    d = _DELIMITER_NAMES.get(text.lower(), text)
    if len(d) != 1 or d in "\r\n\"" or d.isalnum() or d in ".-+":
        raise NamedError(Param("csv_delimiter"), f" must be one character other than a quote, newline, letter, digit, "
                       f"'.', '-' or '+' (or tab, auto), got {text!r}")
    return d


def _detect_delimiter(line: str) -> str:
    """The delimiter of a CSV file from its first non-blank line: among , ; tab |, the one
    that occurs there most often outside quotes (ties and none: the comma)."""
    bare = re.sub(r'"[^"]*"', "", line)
    best = max(_AUTO_DELIMITERS, key=lambda d: (bare.count(d), -_AUTO_DELIMITERS.index(d)))
    return best if bare.count(best) else ","


class CsvCodec(Codec):
    """Numeric CSV: each data column becomes one CSDR column of ``bins`` cells.

    ``delimiter``: one character (default ``,``) or None/``"auto"`` to detect it from the
    first non-blank line (``,`` ``;`` tab or ``|``, see ``parse_delimiter``); the
    detected character is what ``to_dict`` stores.

    Missing values (cells in :data:`MISSING_VALUES`: empty, ``NA``, ``NaN``,
    ``null``, ``N/A``, ``None``, case-insensitive) follow ``missing``:

    * ``"skip"`` (default): the row is left out (no step, no range update) and
      counted in ``skipped_rows``; its missing cells in ``missing_cells``;
    * ``"cell"``: each column gets one more cell, ``bins``, meaning "missing";
      the row is kept, its missing cells are encoded there (and generated back
      as ``NA``), and counted in ``missing_cells``;
    * ``"error"``: the first missing value stops the run, naming line and column.

    The counters accumulate over every read until ``reset_counts()``. A row of
    only empty cells is a blank line (a sequence boundary with ``--reset-on blank``).
    Infinite values are an error in every policy.
    """

    kind = "csv"

    def __init__(self, bins: int = 32, columns: list[str] | None = None, lows: list[float] | None = None,
                 highs: list[float] | None = None, header: bool | None = None, delimiter: str | None = ",",
                 use: list[int] | None = None, select: list[str] | None = None, missing: str = "skip",
                 encoding: str = "utf-8", by_name: bool = False) -> None:
        if bins < 2:
            raise NamedError(Param("bins"), f" must be >= 2, got {bins}")
        if delimiter == "auto":
            delimiter = None
        if missing not in _MISSING_POLICIES:
            raise NeoError(f"missing must be one of {', '.join(_MISSING_POLICIES)}, got {missing!r}")
        if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1
                                      or delimiter in "\r\n\""):
            raise NeoError(f"delimiter must be one character other than a quote or newline, got {delimiter!r}")
        self.bins = int(bins)
        self.columns = list(columns) if columns is not None else []
        # ``use``: 0-based indices of the CSV columns modelled (None = all of them);
        # ``select``: what the user asked for (names or 1-based numbers), resolved
        # into ``use`` when the first row is read.
        self.use = list(use) if use is not None else None
        self.select = list(select) if select else None
        self.lows = list(lows) if lows is not None else []
        self.highs = list(highs) if highs is not None else []
        for j, (lo, hi) in enumerate(zip(self.lows, self.highs)):
            if not math.isfinite(float(hi) - float(lo)):
                raise NamedError(Param("lows"), "/", Param("highs"), f": column {j + 1} spans {lo}:{hi}, "
                                 "whose width HI-LO is not finite (its values would decode to inf or nan)")
        self.header = header
        # ``by_name``: the columns were named by a header when the model was trained, so a
        # later file with a header is matched by those names, in whatever order (models
        # written before this field, and models trained without a header, go by position).
        self.by_name = bool(by_name)
        self.delimiter = delimiter
        self.missing = missing
        self.encoding = check_encoding(encoding)
        self.fixed_range: tuple[float, float] | None = None
        self.skipped_rows = 0
        self.missing_cells = 0

    def reset_counts(self) -> None:
        """Set ``skipped_rows`` and ``missing_cells`` back to 0."""
        self.skipped_rows = 0
        self.missing_cells = 0

    def set_range(self, low: float, high: float) -> None:
        """Use ``[low, high]`` for every column instead of learning ranges from the data.

        Both must be finite with ``low <= high``: a model header cannot store
        anything else, so such a range would give a model that does not load."""
        lo, hi = float(low), float(high)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise NeoError(f"the CSV value range must be two finite numbers LO <= HI, got {low}:{high}")
        if not math.isfinite(hi - lo):
            raise NamedError(Param("csv_range"), f" must have a finite span HI-LO, got {low}:{high}")
        self.fixed_range = (lo, hi)

    @property
    def needs_fit(self):
        return not self.lows

    @property
    def io_size(self):
        return (1, max(len(self.lows), 1), self.bins + (1 if self.missing == "cell" else 0))

    def _lines(self, text) -> Iterator[str]:
        """The text's lines, with the delimiter detected from the first non-blank one when unset."""
        # Plain loops, not `yield from text`: closing this generator must not close
        # the TextIOWrapper (and with it the caller's stream, stdin say).
        held = []
        if self.delimiter is None:
            for line in text:
                held.append(line)
                if line.strip():
                    break
            self.delimiter = _detect_delimiter(held[-1]) if held else ","
        for line in held:
            yield line
        for line in text:
            yield line

    def _rows(self, stream: BinaryIO, where: str) -> Iterator[tuple[int, list[float] | None]]:
        text = io.TextIOWrapper(stream, encoding=self.encoding, newline="")
        lines = self._lines(text)
        reader = None
        first = True
        pick = None   # this file's indices of the model's columns, found by name in its header
        try:
            # Reading the first line decodes text: inside the try, so bad bytes are a clean error.
            first_line = next(lines, None)
            reader = _csv.reader(itertools.chain([] if first_line is None else [first_line], lines),
                                 delimiter=self.delimiter or ",")
            for row in reader:
                lineno = reader.line_num
                if not row or all(not c.strip() for c in row):
                    yield lineno, None
                    continue
                if first:
                    first = False
                    numeric = all(_is_number(c) or _is_missing(c) for c in row)
                    is_header = self.header
                    if is_header is None:
                        is_header = not numeric
                    elif is_header and numeric and self.columns and self.by_name:
                        # A model matching by name reads a file without a header row by position
                        # (as when the header is detected): a first row of numbers is data.
                        is_header = False
                    names = [c.strip() for c in row] if is_header else None
                    if self.select is not None and self.use is None:
                        self.use = _resolve_columns(self.select, names, len(row))
                    if is_header:
                        if not self.columns:
                            self.columns = names if self.use is None else [names[i] for i in self.use]
                            self.by_name = _distinct(self.columns)
                        elif self.by_name:
                            pick = self._find_columns(names, where)
                        continue
                use = pick if pick is not None else self.use
                if use is not None and (pick is not None or len(row) != len(use)):
                    # A row of the full file (a prompt may also give only the used columns).
                    if len(row) <= max(use):
                        raise NeoError(f"{where or 'data'}: line {lineno}: {len(row)} columns, but column "
                                       f"{max(use) + 1} is used")
                    row = [row[i] for i in use]
                vals = []
                gaps = 0
                for j, cell in enumerate(row):
                    if _is_missing(cell):
                        if self.missing == "error":
                            raise NeoError(f"{where or 'data'}: line {lineno}, column {j + 1}: missing value "
                                           f"{cell!r} (skip such rows with the 'skip' missing-value policy)")
                        gaps += 1
                        vals.append(math.nan)
                        continue
                    try:
                        vals.append(float(cell))
                    except ValueError:
                        raise NeoError(f"{where or 'data'}: line {lineno}, column {j + 1}: "
                                       f"{cell!r} is not a number") from None
                    if not math.isfinite(vals[-1]):
                        raise NeoError(f"{where or 'data'}: line {lineno}, column {j + 1}: "
                                       f"{cell!r} is not a finite number")
                if gaps:
                    self.missing_cells += gaps
                    if self.missing == "skip":
                        self.skipped_rows += 1
                        continue
                yield lineno, vals
        except UnicodeDecodeError as e:
            raise NamedError(f"{where or 'data'}: invalid {_enc_label(self.encoding)} in CSV data "
                             f"({e.reason}): give the right ", Param("encoding")) from None
        except _csv.Error as e:
            raise NeoError(f"{where or 'data'}: line {reader.line_num if reader else 1}: malformed CSV ({e})") from None
        finally:
            lines.close()
            # Leave the caller's stream open; a stream the caller already closed (a generator
            # finalized after its reader stopped early, e.g. `| head`) has nothing to detach.
            if not text.closed:
                text.detach()

    def _find_columns(self, names: list[str], where: str) -> list[int]:
        """The 0-based indices, in a file whose header is ``names``, of the model's columns."""
        out = []
        for c in self.columns:
            if c not in names:
                raise NeoError(f"{where or 'data'}: no column named {c!r}, which the model was trained on "
                               f"(the model's columns: {', '.join(self.columns)}; this file's header: "
                               f"{', '.join(names)})")
            if names.count(c) > 1:
                raise NeoError(f"{where or 'data'}: the header names column {c!r} {names.count(c)} times")
            out.append(names.index(c))
        return out

    def fit(self, paths, opener=None):
        lows: list[float] = []
        highs: list[float] = []
        for p, f in _open_all(paths, opener):
            for lineno, vals in self._rows(f, p):
                if vals is None:
                    continue
                if not lows:
                    lows = [math.inf] * len(vals)
                    highs = [-math.inf] * len(vals)
                if len(vals) != len(lows):
                    raise NeoError(f"{p}: line {lineno}: {len(vals)} columns, expected {len(lows)}")
                # min/max with the value second: a NaN (missing, 'cell' policy) never wins.
                lows = [a if not b < a else b for a, b in zip(lows, vals)]
                highs = [a if not b > a else b for a, b in zip(highs, vals)]
        if not lows:
            raise NeoError("the data is empty: no numeric rows found"
                           + (f" ({self.skipped_rows} rows with missing values skipped)" if self.skipped_rows else ""))
        # A column with only missing values gets the range [0, 0].
        lows = [0.0 if math.isinf(v) else v for v in lows]
        highs = [0.0 if math.isinf(v) else v for v in highs]
        if self.fixed_range is not None:
            lows = [self.fixed_range[0]] * len(lows)
            highs = [self.fixed_range[1]] * len(highs)
        for j, (lo, hi) in enumerate(zip(lows, highs)):
            if not math.isfinite(hi - lo):   # the loader would refuse the model (see __init__)
                raise NamedError(f"column {j + 1} of the data spans {lo:g}:{hi:g}, wider than a float can hold: "
                                 "give a narrower ", Param("csv_range"))
        self.lows, self.highs = lows, highs

    def symbols(self, stream, reset_on_blank=False, where=""):
        n = len(self.lows)
        for lineno, vals in self._rows(stream, where):
            if vals is None:
                if reset_on_blank:
                    yield RESET
                continue
            if n and len(vals) != n:
                raise NeoError(f"{where or 'data'}: line {lineno}: {len(vals)} columns, expected {n}")
            yield tuple(vals)

    def encode(self, symbol):
        lo = np.asarray(self.lows, dtype=np.float64)
        hi = np.asarray(self.highs, dtype=np.float64)
        v = np.asarray(symbol, dtype=np.float64)
        # Halving every term is exact in binary floating point (the ratio is
        # unchanged) and keeps hi - lo finite even for ranges like +-1e308.
        with np.errstate(over="ignore", invalid="ignore"):
            span = np.where(hi > lo, hi * 0.5 - lo * 0.5, 1.0)
            x = (v * 0.5 - lo * 0.5) / span
        # Clip before converting: values far outside the range (or an infinite span)
        # must land in the edge bins, not overflow the integer conversion.
        x = np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)
        cis = np.minimum((x * self.bins).astype(np.int64), self.bins - 1)
        if self.missing == "cell":
            cis = np.where(np.isnan(v), self.bins, cis)
        return cis.astype(np.int32)

    def decode(self, cis):
        lo = np.asarray(self.lows, dtype=np.float64)
        hi = np.asarray(self.highs, dtype=np.float64)
        c = np.asarray(cis, dtype=np.float64)
        vals = lo + (c + 0.5) / self.bins * (hi - lo)
        return tuple(math.nan if k >= self.bins else float(v) for k, v in zip(c, vals))

    def format(self, symbol):
        cells = ("NA" if math.isnan(v) else f"{v:.6g}" for v in symbol)
        return ((self.delimiter or ",").join(cells) + "\n").encode(self.encoding)

    def prompt_rows(self, data: bytes) -> list[Any]:
        """The rows of a ``generate`` prompt, skipping a first row that is the model's header.

        A first non-blank row whose cells are the model's column names (all the
        file's columns, or the used ones) is a header, not data; any other row must
        be numeric. Missing values follow the model's policy.
        """
        # A model that matches columns by name reads a header row as any file's (found by
        # name); a first row of numbers is data, by position, as in a model without names.
        header, self.header = self.header, (None if self.by_name else False)
        try:
            text = data.decode(self.encoding, "replace")
            lines = text.splitlines(keepends=True)
            first = next((k for k, ln in enumerate(lines) if ln.strip()), None)
            if first is not None and self.columns and not self.by_name:
                cells = [c.strip() for c in next(_csv.reader([lines[first]], delimiter=self.delimiter or ","))]
                picked = [cells[i] for i in self.use] if self.use is not None and len(cells) > max(self.use) else cells
                if picked == self.columns:
                    data = "".join(lines[:first] + lines[first + 1:]).encode(self.encoding)
            return [s for s in self.symbols(io.BytesIO(data), where="prompt") if s is not RESET]
        finally:
            self.header = header

    def parse_prompt(self, data):
        return self.prompt_rows(data)

    def to_dict(self):
        d = {"kind": self.kind, "bins": self.bins, "columns": self.columns, "lows": self.lows,
             "highs": self.highs, "header": self.header, "delimiter": self.delimiter or ","}
        if self.use is not None:
            d["use"] = self.use
        if self.by_name:
            d["by_name"] = True
        # Absent means the defaults, as in models written before these options.
        if self.missing != "skip":
            d["missing"] = self.missing
        if self.encoding != "utf-8":
            d["encoding"] = self.encoding
        return d

    def describe(self):
        names = ", ".join(self.columns) if self.columns else f"{len(self.lows)} columns"
        return f"csv, {self.bins} bins, {names}, io {self.io_size}"


def _distinct(names: list[str]) -> bool:
    """Whether ``names`` can find columns by name: none empty, none twice."""
    return bool(names) and all(names) and len(set(names)) == len(names)


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in _MISSING


def _resolve_columns(select: list[str], names: list[str] | None, width: int) -> list[int]:
    """0-based indices of the columns asked for by name or 1-based number."""
    out = []
    for item in select:
        item = item.strip()
        if item.isdigit():
            i = int(item) - 1
            if not 0 <= i < width:
                raise NamedError(Param("csv_columns"), f": column {item} does not exist (the data has {width} columns)")
        elif names is not None and item in names:
            i = names.index(item)
        else:
            known = f"the header has {', '.join(names)}" if names else "the data has no header row"
            raise NamedError(Param("csv_columns"), f": no column named {item!r} ({known})")
        out.append(i)
    if len(set(out)) != len(out):
        raise NamedError(Param("csv_columns"), ": a column is listed twice")
    return out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


#: Codec description fields that do not change how symbols are encoded: the bytes seen in
#: training (merging combines models trained on different data) and whether later CSV files
#: are matched by column name (a model from before ``by_name`` encodes the same columns).
_NOT_ENCODING = ("seen", "by_name")


def encoding_fields(codec: Any) -> Any:
    """A codec description (``Codec.to_dict()``, as stored in model headers) without the
    fields that do not change the encoding (see :func:`same_encoding`); other values as given."""
    return {k: v for k, v in codec.items() if k not in _NOT_ENCODING} if isinstance(codec, dict) else codec


def same_encoding(a: Any, b: Any) -> bool:
    """Whether two codec descriptions (``Codec.to_dict()``, as stored in model headers) encode
    data identically, so that weights trained through one mean the same through the other
    (``checkpoint merge`` requires it). They may differ in ``seen`` (the size of the data
    each was trained on) and ``by_name`` (how later CSV files find their columns)."""
    return encoding_fields(a) == encoding_fields(b)


CODEC_KINDS = {c.kind: c for c in (BytesCodec, CharsCodec, WordsCodec, TokensCodec, CsvCodec)}


def make_codec(kind: str, **options: Any) -> Codec:
    """A new codec of ``kind`` with options (``layout``, ``bins``, ``max_vocab``, ...)."""
    if kind not in CODEC_KINDS:
        raise NeoError(f"unknown codec {kind!r}; choose one of {', '.join(CODEC_KINDS)}")
    codec = CODEC_KINDS[kind](**{k: v for k, v in options.items() if v is not None})
    # Refuse now what the loader would refuse later: every model written must load.
    d = codec.to_dict()
    problem = _codec_problem(kind, {k: v for k, v in d.items() if k != "kind"})
    if problem:
        raise NeoError(f"invalid {kind} codec option: {problem}")
    return codec


def codec_from_dict(data: Any) -> Codec:
    """Rebuild a codec from a model header's ``codec`` object, validating it."""
    # isinstance(str) first: an unhashable "kind" ({} or []) would make `in` raise TypeError.
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or data["kind"] not in CODEC_KINDS:
        raise NeoError("the model has no valid codec description (was it trained with the CLI?)")
    opts = {k: v for k, v in data.items() if k != "kind"}
    problem = _codec_problem(data["kind"], opts)
    if problem:
        raise NeoError(f"the model's codec description is invalid: {problem}")
    try:
        codec = CODEC_KINDS[data["kind"]](**opts)
    except TypeError as e:
        raise NeoError(f"the model's codec description is invalid: {e}") from None
    return codec


# Largest vocabulary / bin count a header may claim: beyond it the IO would not be
# something this CLI trains, and checking it keeps hostile headers cheap.
_MAX_SYMBOLS = 1 << 24


def _codec_problem(kind: str, opts: dict[str, Any]) -> str:
    """Why a header's codec options are unusable, or '' (headers come from strangers)."""
    def is_int(v: Any, lo: int, hi: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    def is_num(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if kind == "bytes":
        if opts.get("layout", "nibbles") not in ("nibbles", "byte"):
            return "layout must be 'nibbles' or 'byte'"
        seen = opts.get("seen")
        if seen is not None and not (isinstance(seen, str) and len(seen) == 64
                                     and all(c in "0123456789abcdef" for c in seen)):
            return "seen must be 64 lowercase hex digits"
    elif kind in ("chars", "words", "tokens"):
        if "radix" in opts and not is_int(opts["radix"], 2, 65536):
            return "radix must be an integer in [2, 65536]"
        if kind == "tokens":
            if not is_int(opts.get("vocab_size", 0), 0, _MAX_SYMBOLS):
                return f"vocab_size must be an integer in [0, {_MAX_SYMBOLS}]"
        else:
            vocab = opts.get("vocab", [])
            if "max_vocab" in opts and not is_int(opts["max_vocab"], 1, _MAX_SYMBOLS):
                return f"max_vocab must be an integer in [1, {_MAX_SYMBOLS}]"
            if (not isinstance(vocab, list) or len(vocab) > _MAX_SYMBOLS
                    or not all(isinstance(v, str) for v in vocab) or len(set(vocab)) != len(vocab)):
                return "vocab must be a list of distinct strings"
            if kind == "chars" and "version" in opts:
                if opts["version"] not in (1, 2) or isinstance(opts["version"], bool):
                    return "version must be 1 or 2"
                if opts["version"] == 2 and vocab and vocab[0] != "<unk>":
                    return "a version 2 vocabulary starts with <unk>"
    elif kind == "csv":
        if not is_int(opts.get("bins", 32), 2, _MAX_SYMBOLS):
            return f"bins must be an integer in [2, {_MAX_SYMBOLS}]"
        lows, highs = opts.get("lows", []), opts.get("highs", [])
        if (not isinstance(lows, list) or not isinstance(highs, list) or len(lows) != len(highs)
                or len(lows) > _MAX_SYMBOLS or not all(is_num(v) for v in lows + highs)):
            return "lows and highs must be lists of finite numbers of the same length"
        if not isinstance(opts.get("columns", []), list) or not all(isinstance(c, str) for c in opts.get("columns", [])):
            return "columns must be a list of strings"
        if opts.get("header") not in (None, True, False):
            return "header must be true, false or null"
        use = opts.get("use")
        if use is not None and (not isinstance(use, list) or len(use) != len(lows)
                                or not all(is_int(i, 0, _MAX_SYMBOLS) for i in use)):
            return "use must list one column index per modelled column"
        if "select" in opts:
            return "unexpected key 'select'"
        if not isinstance(opts.get("by_name", False), bool):
            return "by_name must be true or false"
        if opts.get("by_name") and (len(opts.get("columns", [])) != len(lows) or not _distinct(opts["columns"])):
            return "by_name needs one distinct, non-empty name per modelled column"
        d = opts.get("delimiter", ",")
        if not isinstance(d, str) or len(d) != 1 or d in "\r\n\"":
            return "delimiter must be one character"
        if opts.get("missing", "skip") not in _MISSING_POLICIES:
            return f"missing must be one of {', '.join(_MISSING_POLICIES)}"
    if "encoding" in opts and kind in ("chars", "words", "csv"):
        try:
            check_encoding(opts["encoding"])
        except NeoError as e:
            return str(e)
    return ""
