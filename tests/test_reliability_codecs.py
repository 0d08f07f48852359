"""Codec side of issue 13: token-id limit, linear words, chars <unk>, encodings,
CSV delimiter / missing values / header prompts, tiny sampling temperatures."""
from __future__ import annotations

import io
import math
import time
import warnings

import numpy as np
import pytest

import neocli as neo
from neocli import NeoError
from neocli.codecs import (MAX_TOKEN_ID, RESET, CharsCodec, CsvCodec, TokensCodec, WordsCodec, _sample_rows,
                           codec_from_dict, make_codec, parse_delimiter)


def syms(codec, data: bytes, **kw):
    return [s for s in codec.symbols(io.BytesIO(data), **kw) if s is not RESET]


# --------------------------------------------------------------------------- item 4: token ids

def test_huge_token_id_refused_at_reading_with_line_and_limit(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("1 2 3\n4 5\n6 99999999999999999999999 7\n")
    with pytest.raises(NeoError, match=r"t\.txt:3: token id 99999999999999999999999 is too large.*16777215"):
        TokensCodec().fit([str(p)])
    with pytest.raises(NeoError, match=":1: .*too large"):
        syms(TokensCodec(), str(1 << 24).encode())


def test_largest_token_id_gives_a_model_that_loads(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(f"0 {MAX_TOKEN_ID}\n")
    c = TokensCodec()
    c.fit([str(p)])
    assert codec_from_dict(c.to_dict()).vocab_size == MAX_TOKEN_ID + 1
    assert c.decode(c.encode(MAX_TOKEN_ID)) == MAX_TOKEN_ID


def test_csv_range_that_a_header_cannot_store_is_refused():
    c = CsvCodec()
    for lo, hi in ((-math.inf, 5), (math.nan, 1), (0, math.inf), (3, 1)):
        with pytest.raises(NeoError, match="finite numbers LO <= HI"):
            c.set_range(lo, hi)
    with pytest.raises(NeoError, match="finite span"):   # every value would decode to inf or nan
        c.set_range(-1e308, 1e308)
    c.set_range(-8e307, 8e307)


def test_codec_options_the_loader_refuses_are_refused_when_made():
    with pytest.raises(NeoError, match="max_vocab"):
        make_codec("words", max_vocab=1 << 25)
    with pytest.raises(NeoError, match="bins"):
        make_codec("csv", bins=1 << 25)


# --------------------------------------------------------------------------- item 14: words linear

def _words_time(n_chars: int) -> float:
    data = ("漢字かな" * (n_chars // 4)).encode()
    t = time.perf_counter()
    out = syms(WordsCodec(), data)
    dt = time.perf_counter() - t
    assert len(out) == 1 and len(out[0]) == n_chars
    return dt


def test_words_on_long_runs_without_whitespace_is_linear():
    # A complexity guard, not a speed target (benchmarks/bench_codecs.py measures):
    # the quadratic version took ~11 s for 1 M characters on the 2-core test machine
    # (minutes for 4 M), the linear one takes ~0.05 s. 3 s separates them under any load.
    assert _words_time(1 << 20) < 3.0


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_words_splits_the_same_at_every_chunk_size(monkeypatch, chunk):
    import neocli.codecs as codecs

    text = "ab  cd\nef\n\n  gh\u3000ij\t kl\n\n\nmno p\u00a0q"
    expected = syms(WordsCodec(), text.encode(), reset_on_blank=False)
    with_resets = list(WordsCodec().symbols(io.BytesIO(text.encode()), reset_on_blank=True))
    monkeypatch.setattr(codecs, "_CHUNK", chunk)
    assert syms(WordsCodec(), text.encode()) == expected
    assert list(WordsCodec().symbols(io.BytesIO(text.encode()), reset_on_blank=True)) == with_resets
    assert expected == text.split()


# --------------------------------------------------------------------------- item 15: chars <unk>

def test_chars_unseen_character_is_unk_scored_and_counted(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("abcabc")
    c = CharsCodec()
    c.fit([str(p)])
    assert c.vocab[0] == "<unk>" and sorted(c.vocab[1:]) == ["a", "b", "c"]
    assert c.is_known("a") and not c.is_known("z")
    unk = c.encode("z")
    assert c.unknown == 1 and np.array_equal(unk, c.encode("<unk>"))
    assert c.decode(unk) == "<unk>"
    assert "<unk>" not in c.candidates()[0]  # never generated
    d = c.to_dict()
    assert d["version"] == 2
    c2 = codec_from_dict(d)
    c2.encode("é")
    assert c2.unknown == 1
    c2.reset_counts()
    assert c2.unknown == 0
    with pytest.raises(NeoError, match="'z' is not in the model's vocabulary"):
        c.parse_prompt(b"az")  # prompts must use known characters


def test_chars_model_without_unk_still_loads_and_says_why_it_fails():
    old = {"kind": "chars", "vocab": ["a", "b"], "radix": 256, "max_vocab": 65536}
    c = codec_from_dict(old)
    assert c.io_size == (1, 1, 2) and c.to_dict() == old
    assert c.decode(c.encode("b")) == "b"
    with pytest.raises(NeoError, match="trained before the chars codec had an <unk>"):
        c.encode("z")
    with pytest.raises(NeoError, match="codec"):
        codec_from_dict({**old, "version": 2})  # a version 2 vocabulary starts with <unk>


def test_eval_of_unseen_chars_through_the_cli_pipeline(tmp_path):
    """The pieces eval uses: encode an unseen character and score it without error."""
    p = tmp_path / "c.txt"
    p.write_text("abab\n")
    c = CharsCodec()
    c.fit([str(p)])
    neo.set_global_state(0)
    h = neo.Hierarchy([neo.IODesc(c.io_size)], [neo.LayerDesc((2, 2, 8))])
    bits = 0.0
    for ch in "abzab":
        cis = c.encode(ch)
        bits += c.bits(h.get_prediction_acts(0), cis)
        h.step([cis], False)
    assert c.unknown == 1 and math.isfinite(bits)


# --------------------------------------------------------------------------- item 16: encodings

def test_text_codecs_decode_with_the_given_encoding():
    text = "çà été\n"
    data = text.encode("latin-1")
    with pytest.raises(NeoError, match="invalid UTF-8"):
        syms(CharsCodec(), data)
    c = CharsCodec(encoding="latin-1")
    assert "".join(syms(c, data)) == text
    assert c.to_dict()["encoding"] == "latin-1"
    assert codec_from_dict(c.to_dict()).encoding == "latin-1"
    assert c.format("é") == "é".encode("latin-1")
    w = WordsCodec(encoding="utf-16")
    assert syms(w, "un deux\n".encode("utf-16")) == ["un", "deux"]
    csv = CsvCodec(header=False, encoding="latin-1")
    assert syms(csv, b"1,2\n") == [(1.0, 2.0)]
    assert "encoding" not in CharsCodec().to_dict()  # the default is not stored: old models unchanged
    with pytest.raises(NeoError, match="unknown text encoding"):
        CharsCodec(encoding="klingon")
    with pytest.raises(NeoError, match="not a text encoding"):
        make_codec("words", encoding="rot13")
    with pytest.raises(NeoError, match="codec"):
        codec_from_dict({"kind": "words", "vocab": ["<unk>"], "encoding": "klingon"})


# --------------------------------------------------------------------------- item 18: CSV

def test_csv_delimiter_option_and_auto_detection():
    assert syms(CsvCodec(header=False, delimiter=";"), b"1;2\n3;4\n") == [(1.0, 2.0), (3.0, 4.0)]
    assert syms(CsvCodec(header=False, delimiter="\t"), b"1\t2\n") == [(1.0, 2.0)]
    assert make_codec("csv", delimiter="auto", header=False).to_dict()["delimiter"] == ","  # until data is read
    auto = make_codec("csv", delimiter="auto")
    assert syms(auto, b"\n\"a;x\"\tb\n1\t2\n") == [(1.0, 2.0)]
    assert auto.delimiter == "\t" and auto.to_dict()["delimiter"] == "\t"
    assert auto.columns == ["a;x", "b"]
    assert parse_delimiter("tab") == "\t" and parse_delimiter("\\t") == "\t" and parse_delimiter(";") == ";"
    assert parse_delimiter("auto") is None
    for bad in ("", ";;", "\"", "1", "a", "."):
        with pytest.raises(NeoError, match="csv_delimiter must be"):
            parse_delimiter(bad)


@pytest.mark.parametrize("cell", ["", "NA", "NaN", "nan", "null", "N/A", " na "])
def test_csv_missing_values_skip_the_row_and_are_counted(tmp_path, cell):
    p = tmp_path / "m.csv"
    p.write_text(f"x,y\n1,2\n{cell},5\n3,4\n")
    c = CsvCodec()
    c.fit([str(p)])
    assert c.lows == [1.0, 2.0] and c.highs == [3.0, 4.0]
    assert c.skipped_rows == 1 and c.missing_cells == 1
    c.reset_counts()
    with open(p, "rb") as f:
        assert list(c.symbols(f)) == [(1.0, 2.0), (3.0, 4.0)]
    assert c.skipped_rows == 1


def test_csv_missing_value_cell_policy_and_error_policy():
    c = CsvCodec(bins=4, header=False, missing="cell", lows=[0.0, 0.0], highs=[1.0, 1.0])
    assert c.io_size == (1, 2, 5)
    rows = syms(c, b"0.9,NA\n")
    assert math.isnan(rows[0][1]) and c.missing_cells == 1 and c.skipped_rows == 0
    cis = c.encode(rows[0])
    assert cis.tolist() == [3, 4]
    back = c.decode(cis)
    assert math.isnan(back[1]) and c.format(back) == b"0.875,NA\n"
    assert codec_from_dict(c.to_dict()).io_size == (1, 2, 5)
    with pytest.raises(NeoError, match="line 2, column 1: missing value"):
        syms(CsvCodec(header=False, missing="error"), b"1,2\nnull,3\n")
    with pytest.raises(NeoError, match="not a finite number"):
        syms(CsvCodec(header=False), b"inf,3\n")


def test_csv_header_row_as_prompt_is_skipped(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("temp,rain\n1,2\n3,4\n")
    c = CsvCodec()
    c.fit([str(p)])
    assert c.prompt_rows(b"temp,rain\n1,2\n") == [(1.0, 2.0)]
    assert c.parse_prompt(b" temp , rain \r\n3,4\n") == [(3.0, 4.0)]
    with pytest.raises(NeoError, match="no column named 'temp'"):
        c.prompt_rows(b"pressure,rain\n1,2\n")  # not the model's header: a real error
    assert c.prompt_rows(b"rain,temp\n2,1\n") == [(1.0, 2.0)]   # found by name
    old = codec_from_dict({k: v for k, v in c.to_dict().items() if k != "by_name"})  # before by_name
    with pytest.raises(NeoError, match="not a number"):
        old.prompt_rows(b"pressure,rain\n1,2\n")
    sel = CsvCodec(select=["rain"])
    sel.fit([str(p)])
    assert sel.prompt_rows(b"temp,rain\n1,2\n") == [(2.0,)]


# --------------------------------------------------------------------------- item 23: tiny temperatures

@pytest.mark.parametrize("t", [5e-324, 1e-300, 1e-45])
def test_tiny_temperature_does_not_overflow(t):
    logits = np.log(np.array([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]]))
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(20):
            assert _sample_rows(logits, t, rng).tolist() == [1, 0]
        c = WordsCodec(["<unk>", "a", "b"])
        probs = np.array([0.1, 0.2, 0.7], dtype=np.float32)
        assert c.choose(probs, t, rng) == "b"


# --------------------------------------------------------------------------- item 16: compressed input

def _compressed(tmp_path, name: str, data: bytes):
    import bz2
    import gzip
    import lzma

    import zstandard

    ext = name.rsplit(".", 1)[-1].lower()
    comp = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
            "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
            "zst": lambda d: zstandard.ZstdCompressor().compress(d)}[ext]
    p = tmp_path / name
    p.write_bytes(comp(data))
    return p


@pytest.mark.parametrize("name", ["d.txt.gz", "d.TXT.GZ", "d.bz2", "d.xz", "d.lzma", "d.zst"])
def test_compressed_input_is_read_decompressed(tmp_path, name):
    from neocli.compression import open_input

    data = ("héllo wörld\n" * 20000).encode()
    p = _compressed(tmp_path, name, data)
    with open_input(p) as f:
        assert f.read() == data
    with open_input(str(p), decompress=False) as f:
        assert f.read() == p.read_bytes()
    c = CharsCodec()
    c.fit([str(p)], opener=open_input)
    assert sorted(c.vocab[1:]) == sorted(set(data.decode()))
    with open_input(p) as f:
        assert len([s for s in WordsCodec().symbols(f) if s is not RESET]) == 40000


def test_extension_without_matching_magic_is_refused(tmp_path):
    from neocli.compression import open_input

    fake = tmp_path / "plain.gz"
    fake.write_bytes(b"just text\n")
    with pytest.raises(NeoError, match=r"plain\.gz' does not start with the gzip magic.*with decompress=False"):
        open_input(fake)
    (tmp_path / "e.xz").write_bytes(b"")
    with pytest.raises(NeoError, match="is empty"):
        open_input(tmp_path / "e.xz")
    # a .bz2 that is really gzip says so
    p = _compressed(tmp_path, "x.gz", b"abc")
    (tmp_path / "x.bz2").write_bytes(p.read_bytes())
    with pytest.raises(NeoError, match="looks gzip-compressed"):
        open_input(tmp_path / "x.bz2")
    # no extension: read as is, even when the content is compressed
    (tmp_path / "noext").write_bytes(p.read_bytes())
    with open_input(tmp_path / "noext") as f:
        assert f.read() == p.read_bytes()


def test_corrupt_compressed_stream_names_the_file(tmp_path):
    from neocli.compression import open_input

    p = _compressed(tmp_path, "t.gz", bytes(range(256)) * 4000)
    p.write_bytes(p.read_bytes()[:-3000])
    with pytest.raises(NeoError, match=r"'.*t\.gz': the gzip data is corrupt or truncated"):
        with open_input(p) as f:
            f.read()


def test_zst_without_zstandard_says_what_to_install(tmp_path, monkeypatch):
    import sys

    from neocli.compression import open_input

    p = _compressed(tmp_path, "d.zst", b"abc")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(NeoError, match="pip install zstandard"):
        open_input(p)
