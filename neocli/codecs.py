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
import math
from typing import Any, BinaryIO, Iterable, Iterator

import numpy as np

from ._errors import NeoError

__all__ = ["Codec", "BytesCodec", "CharsCodec", "WordsCodec", "TokensCodec", "CsvCodec",
           "RESET", "make_codec", "codec_from_dict", "CODEC_KINDS"]


class _Reset:
    """Marks a sequence boundary inside a symbol stream (``--reset-on blank``)."""

    def __repr__(self) -> str:
        return "RESET"


RESET = _Reset()
FLOOR = 1e-6
_CHUNK = 1 << 16


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

    def fit(self, paths: Iterable[str]) -> None:
        """Learn what the codec needs from the data files (one full pass)."""

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
    # In log space, so a low temperature does not underflow to all-zero weights.
    z = logits / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
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

def _decode_utf8(stream: BinaryIO, where: str) -> Iterator[str]:
    """Stream a binary file as text, with a clear error naming the byte offset of bad UTF-8."""
    dec = _pycodecs.getincrementaldecoder("utf-8")()
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
            raise NeoError(f"{where}: invalid UTF-8 at byte {offset - held + e.start}: "
                           "use --codec bytes for binary data") from None
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


class _VocabCodec(Codec):
    """Shared machinery of codecs with a vocabulary of string symbols."""

    UNK: str | None = None

    def __init__(self, vocab: list[str] | None = None, radix: int = 256, max_vocab: int = 65536) -> None:
        self.vocab: list[str] = list(vocab) if vocab is not None else []
        self.radix = int(radix)
        self.max_vocab = int(max_vocab)
        self.index = {s: i for i, s in enumerate(self.vocab)}

    @property
    def needs_fit(self):
        return not self.vocab

    @property
    def io_size(self):
        cols, z = _digits_layout(max(len(self.vocab), 2), self.radix)
        return (1, cols, z)

    def fit(self, paths):
        counts: collections.Counter[str] = collections.Counter()
        for p in paths:
            with open(p, "rb") as f:
                for s in self.symbols(f, where=p):
                    if s is not RESET:
                        counts[s] += 1
        if not counts:
            raise NeoError("the data is empty: nothing to learn a vocabulary from")
        if self.UNK is not None:
            counts.pop(self.UNK, None)  # a literal "<unk>" in the data is the unknown token
        elif len(counts) > self.max_vocab:
            # Without an unknown symbol, a character left out could not be encoded.
            raise NeoError(f"the data has {len(counts)} distinct symbols, more than --max-vocab "
                           f"{self.max_vocab}: raise --max-vocab (or use --codec bytes)")
        room = self.max_vocab - (1 if self.UNK is not None else 0)
        common = [s for s, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:room]]
        self.vocab = ([self.UNK] if self.UNK is not None else []) + sorted(common)
        self.index = {s: i for i, s in enumerate(self.vocab)}

    def _id(self, symbol: str) -> int:
        i = self.index.get(symbol)
        if i is None:
            if self.UNK is None:
                raise NeoError(f"symbol {symbol!r} is not in the model's vocabulary")
            return 0
        return i

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

    def to_dict(self):
        return {"kind": self.kind, "vocab": self.vocab, "radix": self.radix, "max_vocab": self.max_vocab}

    def describe(self):
        return f"{self.kind}, vocabulary {len(self.vocab)}, io {self.io_size}"


class CharsCodec(_VocabCodec):
    """UTF-8 text, one Unicode character per step."""

    kind = "chars"

    def symbols(self, stream, reset_on_blank=False, where=""):
        seen_newline = line_blank = False
        for text in _decode_utf8(stream, where or "data"):
            for ch in text:
                if ch == "\n":
                    if reset_on_blank and seen_newline and line_blank:
                        yield RESET
                    seen_newline = line_blank = True
                elif not ch.isspace():
                    line_blank = False
                yield ch

    def format(self, symbol):
        return symbol.encode("utf-8")


class WordsCodec(_VocabCodec):
    """Whitespace-separated words; words outside the vocabulary map to ``<unk>``."""

    kind = "words"
    UNK = "<unk>"

    def __init__(self, vocab=None, radix=256, max_vocab=8192):
        super().__init__(vocab, radix, max_vocab)

    def symbols(self, stream, reset_on_blank=False, where=""):
        pending = ""
        newlines = 0
        for text in _decode_utf8(stream, where or "data"):
            text = pending + text
            # Keep a trailing partial word for the next chunk.
            cut = len(text)
            while cut > 0 and not text[cut - 1].isspace():
                cut -= 1
            pending = text[cut:]
            for tok in _split_keep_newlines(text[:cut]):
                if tok == "\n":
                    newlines += 1
                    if reset_on_blank and newlines == 2:
                        yield RESET
                    continue
                newlines = 0
                yield tok
        if pending:
            yield pending

    def check_known(self, symbol, where):
        pass  # unknown words are encoded as <unk>, by design

    def format(self, symbol):
        return (symbol + " ").encode("utf-8")


def _split_keep_newlines(text: str) -> Iterator[str]:
    word = []
    for ch in text:
        if ch.isspace():
            if word:
                yield "".join(word)
                word = []
            if ch == "\n":
                yield "\n"
        else:
            word.append(ch)
    if word:
        yield "".join(word)


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

    def fit(self, paths):
        top = -1
        for p in paths:
            with open(p, "rb") as f:
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


class CsvCodec(Codec):
    """Numeric CSV: each data column becomes one CSDR column of ``bins`` cells."""

    kind = "csv"

    def __init__(self, bins: int = 32, columns: list[str] | None = None, lows: list[float] | None = None,
                 highs: list[float] | None = None, header: bool | None = None, delimiter: str = ",",
                 use: list[int] | None = None, select: list[str] | None = None) -> None:
        if bins < 2:
            raise NeoError(f"--bins must be >= 2, got {bins}")
        self.bins = int(bins)
        self.columns = list(columns) if columns is not None else []
        # ``use``: 0-based indices of the CSV columns modelled (None = all of them);
        # ``select``: what the user asked for (names or 1-based numbers), resolved
        # into ``use`` when the first row is read.
        self.use = list(use) if use is not None else None
        self.select = list(select) if select else None
        self.lows = list(lows) if lows is not None else []
        self.highs = list(highs) if highs is not None else []
        self.header = header
        self.delimiter = delimiter
        self.fixed_range: tuple[float, float] | None = None

    def set_range(self, low: float, high: float) -> None:
        """Use ``[low, high]`` for every column instead of learning ranges from the data."""
        self.fixed_range = (float(low), float(high))

    @property
    def needs_fit(self):
        return not self.lows

    @property
    def io_size(self):
        return (1, max(len(self.lows), 1), self.bins)

    def _rows(self, stream: BinaryIO, where: str) -> Iterator[tuple[int, list[float] | None]]:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        reader = _csv.reader(text, delimiter=self.delimiter)
        first = True
        try:
            for row in reader:
                lineno = reader.line_num
                if not row or all(not c.strip() for c in row):
                    yield lineno, None
                    continue
                if first:
                    first = False
                    is_header = self.header
                    if is_header is None:
                        is_header = not all(_is_number(c) for c in row)
                    names = [c.strip() for c in row] if is_header else None
                    if self.select is not None and self.use is None:
                        self.use = _resolve_columns(self.select, names, len(row))
                    if is_header:
                        if not self.columns:
                            self.columns = names if self.use is None else [names[i] for i in self.use]
                        continue
                if self.use is not None and len(row) != len(self.use):
                    # A row of the full file (a prompt may also give only the used columns).
                    if len(row) <= max(self.use):
                        raise NeoError(f"{where or 'data'}: line {lineno}: {len(row)} columns, but column "
                                       f"{max(self.use) + 1} is used")
                    row = [row[i] for i in self.use]
                vals = []
                for j, cell in enumerate(row):
                    try:
                        vals.append(float(cell))
                    except ValueError:
                        raise NeoError(f"{where or 'data'}: line {lineno}, column {j + 1}: "
                                       f"{cell!r} is not a number") from None
                    if not math.isfinite(vals[-1]):
                        raise NeoError(f"{where or 'data'}: line {lineno}, column {j + 1}: "
                                       f"{cell!r} is not a finite number")
                yield lineno, vals
        except UnicodeDecodeError as e:
            raise NeoError(f"{where or 'data'}: invalid UTF-8 in CSV data ({e.reason})") from None
        except _csv.Error as e:
            raise NeoError(f"{where or 'data'}: line {reader.line_num}: malformed CSV ({e})") from None
        finally:
            text.detach()

    def fit(self, paths):
        lows: list[float] = []
        highs: list[float] = []
        for p in paths:
            with open(p, "rb") as f:
                for lineno, vals in self._rows(f, p):
                    if vals is None:
                        continue
                    if not lows:
                        lows, highs = list(vals), list(vals)
                    if len(vals) != len(lows):
                        raise NeoError(f"{p}: line {lineno}: {len(vals)} columns, expected {len(lows)}")
                    lows = [min(a, b) for a, b in zip(lows, vals)]
                    highs = [max(a, b) for a, b in zip(highs, vals)]
        if not lows:
            raise NeoError("the data is empty: no numeric rows found")
        if self.fixed_range is not None:
            lows = [self.fixed_range[0]] * len(lows)
            highs = [self.fixed_range[1]] * len(highs)
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
        # Halving every term is exact in binary floating point (the ratio is
        # unchanged) and keeps hi - lo finite even for ranges like +-1e308.
        with np.errstate(over="ignore", invalid="ignore"):
            span = np.where(hi > lo, hi * 0.5 - lo * 0.5, 1.0)
            x = (np.asarray(symbol, dtype=np.float64) * 0.5 - lo * 0.5) / span
        # Clip before converting: values far outside the range (or an infinite span)
        # must land in the edge bins, not overflow the integer conversion.
        x = np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)
        return np.minimum((x * self.bins).astype(np.int64), self.bins - 1).astype(np.int32)

    def decode(self, cis):
        lo = np.asarray(self.lows, dtype=np.float64)
        hi = np.asarray(self.highs, dtype=np.float64)
        return tuple(float(v) for v in lo + (np.asarray(cis, dtype=np.float64) + 0.5) / self.bins * (hi - lo))

    def format(self, symbol):
        return (self.delimiter.join(f"{v:.6g}" for v in symbol) + "\n").encode()

    def parse_prompt(self, data):
        header, self.header = self.header, False
        try:
            return [s for s in self.symbols(io.BytesIO(data), where="prompt") if s is not RESET]
        finally:
            self.header = header

    def to_dict(self):
        d = {"kind": self.kind, "bins": self.bins, "columns": self.columns, "lows": self.lows,
             "highs": self.highs, "header": self.header, "delimiter": self.delimiter}
        if self.use is not None:
            d["use"] = self.use
        return d

    def describe(self):
        names = ", ".join(self.columns) if self.columns else f"{len(self.lows)} columns"
        return f"csv, {self.bins} bins, {names}, io {self.io_size}"


def _resolve_columns(select: list[str], names: list[str] | None, width: int) -> list[int]:
    """0-based indices of the columns asked for by name or 1-based number."""
    out = []
    for item in select:
        item = item.strip()
        if item.isdigit():
            i = int(item) - 1
            if not 0 <= i < width:
                raise NeoError(f"--csv-columns: column {item} does not exist (the data has {width} columns)")
        elif names is not None and item in names:
            i = names.index(item)
        else:
            known = f"the header has {', '.join(names)}" if names else "the data has no header row"
            raise NeoError(f"--csv-columns: no column named {item!r} ({known})")
        out.append(i)
    if len(set(out)) != len(out):
        raise NeoError("--csv-columns: a column is listed twice")
    return out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


CODEC_KINDS = {c.kind: c for c in (BytesCodec, CharsCodec, WordsCodec, TokensCodec, CsvCodec)}


def make_codec(kind: str, **options: Any) -> Codec:
    """A new codec of ``kind`` with options (``layout``, ``bins``, ``max_vocab``, ...)."""
    if kind not in CODEC_KINDS:
        raise NeoError(f"unknown codec {kind!r}; choose one of {', '.join(CODEC_KINDS)}")
    return CODEC_KINDS[kind](**{k: v for k, v in options.items() if v is not None})


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
        d = opts.get("delimiter", ",")
        if not isinstance(d, str) or len(d) != 1 or d in "\r\n\"":
            return "delimiter must be one character"
    return ""
