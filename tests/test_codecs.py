"""Codecs: how data becomes CSDRs, and how hostile codec descriptions are refused."""
from __future__ import annotations

import io

import numpy as np
import pytest

from neocli import NeoError
from neocli.codecs import RESET, BytesCodec, CharsCodec, CsvCodec, TokensCodec, WordsCodec, codec_from_dict


def _resets(codec, data: bytes) -> int:
    return sum(s is RESET for s in codec.symbols(io.BytesIO(data), reset_on_blank=True))


@pytest.mark.parametrize("make", [BytesCodec, CharsCodec, WordsCodec])
@pytest.mark.parametrize("data, n", [
    (b"ab\n\ncd\n", 1),
    (b"ab\r\n\r\ncd\r\n", 1),        # CRLF
    (b"ab\n  \t\ncd\n", 1),          # a line of spaces is blank
    (b"ab\n x\ncd\n", 0),            # not blank
    (b"ab\ncd\n", 0),
])
def test_blank_lines_reset_the_same_way_in_every_text_codec(make, data, n):
    assert _resets(make(), data) == n


def test_tokens_and_csv_follow_the_same_blank_line_rule():
    assert _resets(TokensCodec(), b"1 2\n  \r\n3\n") == 1
    c = CsvCodec(header=False)
    assert _resets(c, b"1,2\n  \n3,4\n") == 1


def test_invalid_utf8_offset_is_exact_across_chunk_boundaries(monkeypatch):
    import neocli.codecs as codecs

    monkeypatch.setattr(codecs, "_CHUNK", 4)
    # "aé" is 3 bytes; then a valid 2-byte char split across the chunk edge, then bad.
    data = "abé".encode() + "é".encode() + b"\xff" + b"zz"
    bad_at = data.index(b"\xff")
    with pytest.raises(NeoError, match=f"byte {bad_at}"):
        list(CharsCodec().symbols(io.BytesIO(data), where="x"))


def test_literal_unk_in_words_data_is_not_a_second_vocabulary_entry(tmp_path):
    p = tmp_path / "w.txt"
    p.write_text("a b <unk> a c <unk>\n")
    c = WordsCodec()
    c.fit([str(p)])
    assert c.vocab.count("<unk>") == 1 and c.vocab[0] == "<unk>"


def test_chars_with_more_symbols_than_max_vocab_fails_at_fit_time(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("abcdef")
    with pytest.raises(NeoError, match="raise max_vocab"):
        CharsCodec(max_vocab=3).fit([str(p)])


def test_csv_values_far_outside_the_range_land_in_the_edge_bins():
    # The widest ranges a codec takes (an infinite span HI-LO is refused, see below).
    c = CsvCodec(bins=8, lows=[0.0, -8e307], highs=[10.0, 8e307], header=False)
    assert c.encode((1e300, 0.0)).tolist()[0] == 7
    assert c.encode((-1e300, 1e308)).tolist() == [0, 7]


def test_malformed_csv_is_a_clean_error_with_the_line():
    import csv

    old = csv.field_size_limit(10)
    try:
        with pytest.raises(NeoError, match="line 2"):
            list(CsvCodec(header=False).symbols(io.BytesIO(b"1,2\n3," + b"4" * 50 + b"\n")))
    finally:
        csv.field_size_limit(old)


@pytest.mark.parametrize("desc", [
    {"kind": "tokens", "vocab_size": 10, "radix": 1},
    {"kind": "tokens", "vocab_size": -1},
    {"kind": "tokens", "vocab_size": 10**12},
    {"kind": "words", "vocab": ["a", "a"]},
    {"kind": "words", "vocab": ["a", 3]},
    {"kind": "chars", "vocab": "abc"},
    {"kind": "chars", "vocab": ["a"], "radix": True},
    {"kind": "csv", "bins": 1, "lows": [0], "highs": [1]},
    {"kind": "csv", "bins": 8, "lows": [0], "highs": [1, 2]},
    {"kind": "csv", "bins": 8, "lows": [0], "highs": [float("nan")]},
    {"kind": "csv", "bins": 8, "lows": [0], "highs": [1], "delimiter": ""},
    {"kind": "csv", "bins": 8, "lows": [0], "highs": [1], "header": "yes"},
    {"kind": "bytes", "layout": "bits"},
    {"kind": "bytes", "colour": 3},
])
def test_hostile_codec_descriptions_are_refused(desc):
    with pytest.raises(NeoError, match="codec"):
        codec_from_dict(desc)


def test_valid_codec_descriptions_round_trip():
    for c in (BytesCodec("byte"), WordsCodec(["<unk>", "a"]), TokensCodec(300, 16),
              CsvCodec(8, ["x"], [0.0], [1.0], True)):
        d = c.to_dict()
        assert codec_from_dict(d).to_dict() == d
    assert np.array_equal(TokensCodec(300, 16).encode(299), codec_from_dict(TokensCodec(300, 16).to_dict()).encode(299))


def _nibble_probs(hi: dict[int, float], lo: dict[int, float]) -> np.ndarray:
    p = np.full((2, 16), 1e-4, dtype=np.float32)
    for k, v in hi.items():
        p[0, k] = v
    for k, v in lo.items():
        p[1, k] = v
    return p.reshape(-1)


def test_bytes_generation_picks_the_most_likely_known_byte_not_per_column_maxima():
    c = BytesCodec()
    for b in b"ap":  # 0x61, 0x70 seen in training
        c.encode(b)
    # Column maxima would give 0x60 ("`"), a byte never seen; of the known bytes
    # "a" has 0.6*0.45 = 0.27 and "p" 0.4*0.55 = 0.22.
    probs = _nibble_probs({6: 0.6, 7: 0.4}, {0: 0.55, 1: 0.45})
    rng = np.random.default_rng(0)
    assert c.choose(probs, 0.0, rng) == ord("a")
    assert {c.choose(probs, 1.0, rng) for _ in range(200)} == {ord("a"), ord("p")}


def test_joint_choice_is_the_argmax_of_the_product():
    c = BytesCodec()
    for b in (0x61, 0x70):
        c.encode(b)
    probs = _nibble_probs({6: 0.6, 7: 0.4}, {1: 0.3, 0: 0.7})
    # a = 0.6*0.3 = 0.18, p = 0.4*0.7 = 0.28
    assert c.choose(probs, 0.0, np.random.default_rng(0)) == 0x70


def test_seen_bytes_survive_the_header_round_trip_and_low_temperatures_do_not_underflow():
    c = BytesCodec()
    for b in b"hello":
        c.encode(b)
    d = c.to_dict()
    c2 = codec_from_dict(d)
    assert c2.to_dict() == d
    probs = np.full(32, 1.0 / 16, dtype=np.float32)
    picks = {c2.choose(probs, 1e-6, np.random.default_rng(s)) for s in range(20)}
    assert picks <= set(b"helo")


def test_vocab_generation_never_emits_unk_and_covers_digit_layouts():
    words = ["<unk>"] + [f"w{i}" for i in range(299)]
    c = WordsCodec(words, radix=16)  # 300 ids over 3 columns of 16
    assert c.io_size == (1, 3, 16)
    probs = np.full(3 * 16, 1.0 / 16, dtype=np.float32)
    rng = np.random.default_rng(1)
    picks = [c.choose(probs, 1.0, rng) for _ in range(300)]
    assert "<unk>" not in picks and all(p in c.index for p in picks)
    target = c.encode("w123")
    sharp = np.full((3, 16), 1e-3, dtype=np.float32)
    sharp[np.arange(3), target] = 0.9
    assert c.choose(sharp.reshape(-1), 0.0, rng) == "w123"


def test_the_cli_scorer_agrees_with_the_metric_definition():
    """h._score (one kernel call) equals D14 computed from the public API."""
    import neocli as neo

    neo.set_global_state(4)
    h = neo.Hierarchy([neo.IODesc((1, 2, 16), neo.prediction)], [neo.LayerDesc((3, 3, 8))])
    c = BytesCodec()
    rng = np.random.default_rng(0)
    for b in rng.integers(97, 105, 200):
        cis = c.encode(int(b))
        hit, bits = h._score(0, cis, 1e-6)
        assert hit == np.array_equal(h.get_prediction_cis(0), cis)
        assert bits == pytest.approx(c.bits(h.get_prediction_acts(0), cis), rel=1e-5)
        h.step([cis])
    with pytest.raises(NeoError):
        h._score(0, np.array([1, 16], dtype=np.int32), 1e-6)


def _csv_rows(codec, text: str):
    return [s for s in codec.symbols(io.BytesIO(text.encode())) if s is not RESET]


def test_csv_header_without_by_name_keeps_positions_and_by_name_finds_columns():
    old = {"kind": "csv", "bins": 8, "columns": ["b"], "lows": [0.0], "highs": [10.0], "header": None,
           "delimiter": ",", "use": [1]}
    swapped = "b,a\n7,1\n8,2\n"
    # A model written before by_name: position 2, whatever the header says (as it always did).
    assert _csv_rows(codec_from_dict(old), swapped) == [(1.0,), (2.0,)]
    new = codec_from_dict({**old, "by_name": True})
    assert _csv_rows(new, swapped) == [(7.0,), (8.0,)]
    assert _csv_rows(new, "a,b\n1,7\n") == [(7.0,)]
    assert _csv_rows(new, "1,7\n") == [(7.0,)]          # no header: by position
    with pytest.raises(NeoError, match=r"no column named 'b'.*this file's header: x, y"):
        _csv_rows(new, "x,y\n1,2\n")
    assert new.to_dict()["by_name"] is True and "by_name" not in codec_from_dict(old).to_dict()


@pytest.mark.parametrize("bad", [{"by_name": 1}, {"by_name": "yes"}, {"by_name": True, "columns": []},
                                 {"by_name": True, "columns": ["b", "b"], "lows": [0.0, 0.0], "highs": [1.0, 1.0],
                                  "use": [0, 1]}])
def test_csv_by_name_hostile_values_are_refused(bad):
    d = {"kind": "csv", "bins": 8, "columns": ["b"], "lows": [0.0], "highs": [10.0], "use": [1], **bad}
    with pytest.raises(NeoError, match="by_name"):
        codec_from_dict(d)


def test_csv_range_span_must_be_finite():
    with pytest.raises(NeoError, match="lows/highs"):
        CsvCodec(lows=[-1e308], highs=[1e308])
    with pytest.raises(NeoError, match="csv_range"):
        CsvCodec().set_range(-1e308, 1e308)
    from neocli.streaming import Detector
    with pytest.raises(NeoError, match="ranges"):
        Detector(["a"], [(-1e308, 1e308)])
    CsvCodec(lows=[-1e307], highs=[1e307])   # wide but finite is fine


def test_same_encoding_ignores_only_seen_and_by_name():
    # checkpoint merge asks the library which codec fields may differ (README "checkpoint").
    from neocli.codecs import encoding_fields, make_codec, same_encoding
    a = make_codec("bytes").to_dict()
    assert same_encoding(a, {**a, "seen": 12345}) and same_encoding({**a, "by_name": True}, a)
    assert not same_encoding(a, make_codec("bytes", layout="byte").to_dict())
    assert not same_encoding(a, {**a, "kind": "chars"}) and not same_encoding(a, None)
    assert encoding_fields({**a, "seen": 1, "by_name": False}) == {k: v for k, v in a.items() if k != "seen"}
