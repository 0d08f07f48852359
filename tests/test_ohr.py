"""Tests for the .ohr container format (neocli.ohr)."""

import collections
import errno
import json
import os
import pathlib
import random
import re
import stat
import struct
import time
import zlib

import numpy as np
import pytest

from neocli import ohr
from neocli.ohr import OhrError

FIXED_TIME = "2026-11-25T19:00:00Z"


def sample_sections():
    # Names deliberately out of alphabetical order: the format must keep the
    # caller's order even though the header is written with sort_keys.
    return {
        "state": [("zeta", np.arange(3, dtype=np.int64)), ("alpha", np.array([7, 8], np.uint32))],
        "weights": [
            ("w1", np.arange(6, dtype=np.float32).reshape(2, 3)),
            ("w0", np.arange(5, dtype=np.uint8)),
            ("scalar", np.array(2.5, dtype=np.float64)),
            ("empty", np.zeros((0, 4), dtype=np.int32)),
            ("signed", np.array([-1, 2, -3], dtype=np.int8)),
            ("big", np.array([1, 2], dtype=np.uint64)),
        ],
        "persistent": [("p", np.array([0.25, -1.0], dtype=np.float64))],
    }


def sample_meta():
    return {
        "architecture": {"kind": "hierarchy", "layers": [{"hidden": [4, 4, 16]}]},
        "sizes": {"n": 3},
        "user": {"note": "héllo ✓"},
        "created_utc": FIXED_TIME,
    }


@pytest.fixture
def blob():
    return ohr.encode(sample_meta(), sample_sections())


def split(data):
    """Return (header dict, data region bytes) of an encoded file."""
    (n,) = struct.unpack_from("<Q", data, 16)
    return json.loads(data[24:24 + n]), data[24 + n:]


def forge(header=None, region=b"", *, raw=None, version=1, crc=None, n=None,
          magic=ohr.MAGIC, pad=True):
    """Assemble a file by hand so each reader rule can be broken in isolation."""
    text = raw if raw is not None else json.dumps(header, sort_keys=True).encode()
    if pad:
        text += b" " * ((-(24 + len(text))) % 64)
    crc = zlib.crc32(text) if crc is None else crc
    n = len(text) if n is None else n
    return magic + struct.pack("<IIQ", version, crc, n) + text + region


def reforge(data, mutate):
    header, region = split(data)
    mutate(header)
    return forge(header, region)


def entry(header, section, name):
    return next(e for e in header["sections"][section] if e["name"] == name)


# --------------------------------------------------------------------------
# round trip


def test_round_trip(blob):
    header, arrays = ohr.decode(blob)
    src = sample_sections()
    assert list(arrays) == ["state", "weights", "persistent"]
    for sec, pairs in src.items():
        assert list(arrays[sec]) == [name for name, _ in pairs]
        for name, arr in pairs:
            got = arrays[sec][name]
            assert got.dtype == arr.dtype
            assert got.shape == arr.shape
            np.testing.assert_array_equal(got, arr)
            assert not got.flags.writeable
        assert ohr.section_bytes(arrays[sec]) == b"".join(a.tobytes() for _, a in pairs)
        assert ohr.section_bytes(arrays[sec]) == ohr.section_bytes(pairs)

    assert header["format"] == "neocli-ohr"
    assert header["format_version"] == ohr.FORMAT_VERSION == 1
    assert header["neocli_version"] == ohr.__version__
    assert header["created_utc"] == FIXED_TIME
    for key in ("architecture", "sizes", "user"):
        assert header[key] == sample_meta()[key]
    assert ohr.decode_header(blob) == header


def test_layout_alignment(blob):
    assert blob[:8] == ohr.MAGIC == b"\x89OHR\r\n\x1a\n"
    version, crc, n = struct.unpack_from("<IIQ", blob, 8)
    assert version == 1
    assert (24 + n) % 64 == 0
    assert crc == zlib.crc32(blob[24:24 + n])
    header, arrays = ohr.decode(blob)
    for sec in header["sections"].values():
        for e in sec:
            assert e["offset"] % 64 == 0
    for sec in arrays.values():
        for arr in sec.values():
            if arr.size:
                addr = arr.__array_interface__["data"][0]
                base = np.frombuffer(blob, np.uint8).__array_interface__["data"][0]
                assert (addr - base) % 64 == 0


def test_header_is_sorted_compact_json(blob):
    (n,) = struct.unpack_from("<Q", blob, 16)
    text = blob[24:24 + n].decode("utf-8").rstrip(" ")
    header = json.loads(text)
    assert text == json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert isinstance(header["sections"]["weights"], list)


def test_reproducible_and_timestamp():
    assert ohr.encode(sample_meta(), sample_sections()) == ohr.encode(sample_meta(), sample_sections())
    meta = sample_meta()
    del meta["created_utc"]
    header = ohr.decode_header(ohr.encode(meta, {}))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", header["created_utc"])


def test_reserved_meta_keys_are_filled_by_encode():
    meta = {"format": "x", "format_version": 9, "neocli_version": "0", "sections": 1}
    header = ohr.decode_header(ohr.encode(meta, {}))
    assert header["format"] == "neocli-ohr"
    assert header["format_version"] == 1
    assert header["neocli_version"] == ohr.__version__
    assert header["sections"] == {}


def test_absent_and_empty_sections():
    data = ohr.encode({}, {"weights": [("w", np.ones(3, np.float32))], "persistent": []})
    header, arrays = ohr.decode(data)
    assert list(arrays) == ["weights", "persistent"]
    assert arrays["persistent"] == {}
    assert "state" not in header["sections"]
    header, arrays = ohr.decode(ohr.encode({}, {}))
    assert arrays == {}


def test_big_endian_and_noncontiguous_inputs_are_normalised():
    src = np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]
    header, arrays = ohr.decode(ohr.encode({}, {"weights": {"x": src}}))
    assert arrays["weights"]["x"].dtype.str == "<i4"
    np.testing.assert_array_equal(arrays["weights"]["x"], src)
    assert entry(header, "weights", "x")["dtype"] == "<i4"


def test_trailing_empty_array():
    data = ohr.encode({}, {"weights": [("a", np.ones(3, np.uint8)), ("e", np.zeros(0, np.float32))]})
    _, arrays = ohr.decode(data)
    assert arrays["weights"]["e"].shape == (0,)
    with pytest.raises(OhrError):
        ohr.decode(data[:-1])


def test_numpy_scalars_in_meta():
    header = ohr.decode_header(ohr.encode({"sizes": {"n": np.int64(4), "f": np.float32(0.5)}}, {}))
    assert header["sizes"] == {"n": 4, "f": 0.5}


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "ndarray"])
def test_accepted_buffer_types(blob, kind):
    data = {
        "bytes": lambda b: b,
        "bytearray": bytearray,
        "memoryview": memoryview,
        "ndarray": lambda b: np.frombuffer(b, np.uint8),
    }[kind](blob)
    header, arrays = ohr.decode(data)
    np.testing.assert_array_equal(arrays["persistent"]["p"], [0.25, -1.0])
    assert not arrays["weights"]["w1"].flags.writeable
    assert ohr.decode_header(data) == header


@pytest.mark.parametrize(
    "bad", ["text", [1, 2], 3, None, np.zeros(4, np.float32), np.zeros((2, 2), np.uint8)]
)
def test_wrong_input_type_is_type_error(bad):
    with pytest.raises(TypeError):
        ohr.decode(bad)
    with pytest.raises(TypeError):
        ohr.decode_header(bad)


# --------------------------------------------------------------------------
# encode rejects what it cannot store


def test_encode_rejections():
    w = np.ones(2, np.float32)
    with pytest.raises(OhrError, match="unknown section"):
        ohr.encode({}, {"bogus": [("a", w)]})
    with pytest.raises(OhrError, match="duplicate array name"):
        ohr.encode({}, {"weights": [("a", w), ("a", w)]})
    for dtype in (np.bool_, np.float16, np.complex64, np.int16, object):
        with pytest.raises(OhrError, match="unsupported dtype"):
            ohr.encode({}, {"weights": [("a", np.zeros(2, dtype))]})
    with pytest.raises(TypeError):
        ohr.encode({}, {"weights": [("a", [1, 2, 3])]})
    with pytest.raises(TypeError):
        ohr.encode({}, {"weights": [(1, w)]})
    with pytest.raises(TypeError):
        ohr.encode([], {})
    with pytest.raises(TypeError):
        ohr.encode({"user": object()}, {})
    with pytest.raises(OhrError, match="cannot be stored"):
        ohr.encode({"user": {"x": float("nan")}}, {})
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(OhrError):
        ohr.encode({"user": deep}, {})


# --------------------------------------------------------------------------
# reader rules


def test_prefix_rules(blob):
    cases = [
        (b"", "not an .ohr file: it is empty"),
        (b"PK\x03\x04" + bytes(60), "not an .ohr file"),
        (b"\x89OH", "shorter than the 24-byte prefix"),
        (ohr.MAGIC + bytes(4), "shorter than the 24-byte prefix"),
        (b"\x89OHR\n\x1a\n" + blob[8:], "text mode"),
        (b"{}", "not an .ohr file"),
    ]
    for data, phrase in cases:
        with pytest.raises(OhrError, match=re.escape(phrase)):
            ohr.decode(data)


def test_version_rules(blob):
    header, region = split(blob)
    with pytest.raises(
        OhrError,
        match=re.escape("was written by a newer neocli (format version 2; this version reads up to 1)"),
    ):
        ohr.decode(forge(header, region, version=2))
    with pytest.raises(OhrError, match="invalid format version 0"):
        ohr.decode(forge(header, region, version=0))
    header["format_version"] = 2
    with pytest.raises(OhrError, match="does not match the prefix version"):
        ohr.decode(forge(header, region))
    header["format_version"] = True
    with pytest.raises(OhrError, match="does not match the prefix version"):
        ohr.decode(forge(header, region))


def test_header_length_rules(blob):
    header, region = split(blob)
    start = time.perf_counter()
    with pytest.raises(OhrError, match="exceeds the maximum"):
        ohr.decode(forge(header, region, n=2**40))
    with pytest.raises(OhrError, match="exceeds the maximum"):
        ohr.decode(forge(header, region, n=ohr.MAX_HEADER_BYTES + 1))
    with pytest.raises(OhrError, match="exceeds the maximum"):
        ohr.decode(forge(header, region, n=2**64 - 1))
    assert time.perf_counter() - start < 0.5
    with pytest.raises(OhrError, match="truncated file: header length"):
        ohr.decode(forge(header, region, n=64 * 1000 - 24))
    with pytest.raises(OhrError, match="does not align the data region"):
        ohr.decode(forge(header, region, pad=False))


def test_header_crc_rule(blob):
    header, region = split(blob)
    with pytest.raises(OhrError, match="header checksum mismatch"):
        ohr.decode(forge(header, region, crc=12345))
    flipped = bytearray(blob)
    flipped[40] ^= 0x01
    with pytest.raises(OhrError, match="header checksum mismatch"):
        ohr.decode(bytes(flipped))


@pytest.mark.parametrize(
    "raw, phrase",
    [
        (b'{"format": "neocli-ohr\xff"}', "not valid UTF-8"),
        (b"{not json", "not valid JSON"),
        (b'{"a": 1} trailing', "not valid JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'"neocli-ohr"', "not a JSON object"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"user": {"b": {"c": 1, "c": 1}}}', "duplicate key 'c'"),
        (b'{"x": NaN}', "non-finite number NaN"),
        (b'{"x": Infinity}', "non-finite number Infinity"),
        (b'{"x": -Infinity}', "non-finite number -Infinity"),
        (b'{"x": 1e999}', "non-finite number 1e999"),
        (b'{"x": ' + b"9" * 20000 + b"}", "not valid JSON"),
        (b"[" * 200_000 + b"]" * 200_000, "not valid JSON"),
        (b'{"a":' * 200_000, "not valid JSON"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
    ],
)
def test_header_json_rules(raw, phrase):
    with pytest.raises(OhrError, match=re.escape(phrase)):
        ohr.decode(forge(raw=raw))


def _set(path, value):
    def mutate(header):
        *keys, last = path
        target = header
        for k in keys:
            target = target[k] if not callable(k) else k(target)
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return mutate


_DELETE = object()


def _w1(sections):
    return next(e for e in sections["weights"] if e["name"] == "w1")


def _w0(sections):
    return next(e for e in sections["weights"] if e["name"] == "w0")


@pytest.mark.parametrize(
    "mutate, phrase",
    [
        (_set(["format"], "safetensors"), "header format is 'safetensors'"),
        (_set(["format"], _DELETE), "header format is None"),
        (_set(["created_utc"], 5), "created_utc is not a string"),
        (_set(["sections"], _DELETE), "header has no 'sections'"),
        (_set(["sections"], []), "'sections' is not a JSON object"),
        (_set(["sections", "optimizer"], []), "unknown section 'optimizer'"),
        (_set(["sections", "weights"], {}), "section 'weights' is not a JSON list"),
        (_set(["sections", "weights", 0], "w1"), "entry 0 of section 'weights' is not a JSON object"),
        (_set(["sections", _w1, "crc32"], _DELETE), "missing keys ['crc32']"),
        (_set(["sections", _w1, "extra"], 1), "unexpected keys ['extra']"),
        (_set(["sections", _w1, "name"], 3), "non-string name"),
        (_set(["sections", _w1, "dtype"], "<f2"), "unsupported dtype '<f2'"),
        (_set(["sections", _w1, "dtype"], ">f4"), "unsupported dtype '>f4'"),
        (_set(["sections", _w1, "dtype"], "|b1"), "unsupported dtype '|b1'"),
        (_set(["sections", _w1, "dtype"], 4), "unsupported dtype 4"),
        (_set(["sections", _w1, "shape"], "2,3"), "invalid shape"),
        (_set(["sections", _w1, "shape"], [2, -3]), "invalid shape"),
        (_set(["sections", _w1, "shape"], [2, True]), "invalid shape"),
        (_set(["sections", _w1, "shape"], [2.0, 3]), "invalid shape"),
        (_set(["sections", _w1, "shape"], [1] * 40), "40 dimensions"),
        (_set(["sections", _w1, "shape"], [0, 2**62, 2**62]), "impossibly large shape"),
        (_set(["sections", _w1, "offset"], True), "invalid offset"),
        (_set(["sections", _w1, "offset"], -64), "invalid offset"),
        (_set(["sections", _w1, "offset"], 64.0), "invalid offset"),
        (_set(["sections", _w1, "nbytes"], "24"), "invalid nbytes"),
        (_set(["sections", _w1, "crc32"], False), "invalid crc32"),
        (_set(["sections", _w1, "crc32"], 2**32), "larger than 32 bits"),
        (_set(["sections", _w1, "nbytes"], 20), "has nbytes 20 but shape [2, 3] of <f4 needs 24"),
        (_set(["sections", _w1, "offset"], 65), "not 64-byte aligned"),
        (_set(["sections", _w1, "offset"], 64 * 1000), "past the end of the data"),
        (_set(["sections", _w1, "offset"], 10**30), "past the end of the data"),
        (_set(["sections", _w0, "name"], "w1"), "duplicate array name 'w1' in section 'weights'"),
        (_set(["sections", _w0, "offset"], None), "invalid offset"),
    ],
)
def test_entry_rules(blob, mutate, phrase):
    bad = reforge(blob, mutate)
    with pytest.raises(OhrError, match=re.escape(phrase)):
        ohr.decode(bad)
    with pytest.raises(OhrError, match=re.escape(phrase)):
        ohr.decode_header(bad)


def test_overlap_rules(blob):
    header, _ = split(blob)
    w1 = entry(header, "weights", "w1")

    def same_section(h):
        entry(h, "weights", "w0")["offset"] = w1["offset"]

    def cross_section(h):
        entry(h, "persistent", "p")["offset"] = entry(h, "state", "zeta")["offset"]

    with pytest.raises(OhrError, match="overlaps array") as info:
        ohr.decode(reforge(blob, same_section))
    assert "'w0'" in str(info.value) and "'w1'" in str(info.value)
    with pytest.raises(OhrError, match="overlaps array") as info:
        ohr.decode(reforge(blob, cross_section))
    assert "section 'state'" in str(info.value) and "section 'persistent'" in str(info.value)

    # Empty arrays occupy no bytes, so sharing an offset with one is fine.
    def empty_on_top(h):
        entry(h, "weights", "empty")["offset"] = w1["offset"]

    ohr.decode(reforge(blob, empty_on_top))


def test_array_crc_rule(blob):
    header, region = split(blob)
    start = len(blob) - len(region) + entry(header, "weights", "w1")["offset"]
    bad = bytearray(blob)
    bad[start + 3] ^= 0x40
    bad = bytes(bad)
    with pytest.raises(OhrError, match="checksum mismatch in array 'w1' of section 'weights'"):
        ohr.decode(bad)
    ohr.decode_header(bad)  # header-only parsing does not look at array bytes
    _, arrays = ohr.decode(bad, verify=False)
    assert arrays["weights"]["w1"].shape == (2, 3)


# --------------------------------------------------------------------------
# robustness against arbitrary bytes


def test_truncation_at_every_offset(blob):
    for i in range(len(blob)):
        with pytest.raises(OhrError):
            ohr.decode(blob[:i])
        with pytest.raises(OhrError):
            ohr.decode_header(blob[:i])


def test_truncated_files(tmp_path, blob):
    path = tmp_path / "m.ohr"
    header, _ = split(blob)
    # Every length inside the prefix, around the header boundary, and in the data.
    n = struct.unpack_from("<Q", blob, 16)[0]
    for i in list(range(0, 30)) + list(range(24 + n - 3, 24 + n + 3)) + [len(blob) - 1]:
        path.write_bytes(blob[:i])
        with pytest.raises(OhrError, match=re.escape(str(path))):
            ohr.read_header(path)
        with pytest.raises(OhrError, match=re.escape(str(path))):
            ohr.read_file(path)


def _flip_models():
    """A trained two-layer hierarchy with a prediction and an action port, and a trained
    ImageEncoder: every kind of array (uint8, int8, int32, float32, uint64) in every section."""
    import neocli as neo

    neo.set_global_state(7)
    h = neo.Hierarchy([neo.IODesc((2, 2, 8), neo.prediction, up_radius=1, down_radius=1),
                       neo.IODesc((1, 1, 3), neo.action, history_capacity=8)],
                      [neo.LayerDesc((3, 3, 8), up_radius=1, down_radius=1),
                       neo.LayerDesc((2, 2, 4), up_radius=1, down_radius=1)])
    h.params.ios[1].actor.min_steps = 2
    rng = np.random.default_rng(0)
    for _ in range(20):
        h.step([rng.integers(0, 8, 4), rng.integers(0, 3, 1)], True, float(rng.normal()))
    e = neo.ImageEncoder((3, 3, 8), [neo.ImageVisibleLayerDesc((6, 6, 2), 1)])
    for _ in range(5):
        e.step([rng.integers(0, 256, 72).astype(np.uint8)], True, True)
    return {"hierarchy": (neo.Hierarchy, h), "image_encoder": (neo.ImageEncoder, e)}


def _resave(model) -> bytes:
    # A fixed timestamp makes two saves of the same model the same bytes.
    return model.serialize_to_buffer(meta={"created_utc": FIXED_TIME}).tobytes()


def _step(model, rng) -> None:
    import neocli as neo

    if isinstance(model, neo.Hierarchy):
        sizes = [model.get_io_size(i) for i in range(model.get_num_io())]
        model.step([rng.integers(0, z, w * h) for w, h, z in sizes], True, 0.5)
    else:
        sizes = [model.get_visible_size(v) for v in range(model.get_num_visible_layers())]
        model.step([rng.integers(0, 256, w * h * c).astype(np.uint8) for w, h, c in sizes], True, True)


def _data_flip(data: bytes, rnd: random.Random) -> bytes:
    """Flip bytes inside one array and fix its CRC (and the header's), so the flip reaches the loader."""
    header, region = split(data)
    region = bytearray(region)
    e = rnd.choice([e for sec in header["sections"].values() for e in sec if e["nbytes"] > 0])
    for _ in range(rnd.choice((1, 1, 2, 5))):
        region[e["offset"] + rnd.randrange(e["nbytes"])] ^= rnd.randrange(1, 256)
    e["crc32"] = zlib.crc32(region[e["offset"]:e["offset"] + e["nbytes"]]) & 0xFFFFFFFF
    return forge(header, bytes(region))


@pytest.mark.parametrize("kind", ["hierarchy", "image_encoder"])
def test_random_byte_flips(kind):
    """Every flipped model file is rejected with NeoError, or loads as a model that is
    consistent with itself: saved (B1), loaded and saved again it gives B1 byte for byte,
    and the loaded model and its reload step, then save, identically.

    Half the flips land anywhere (the checksums catch nearly all of them); the other half
    land inside one array and come with corrected checksums, so they reach the loader's
    own validation and, when accepted, the kernels.
    """
    from neocli import NeoError

    cls, model = _flip_models()[kind]
    blob = _resave(model)
    assert cls(buffer=blob).serialize_weights_to_buffer().tobytes() == model.serialize_weights_to_buffer().tobytes()
    rnd = random.Random(1234)
    outcomes = {"raw": collections.Counter(), "data": collections.Counter()}
    for trial in range(200):
        family = ("raw", "data")[trial % 2]
        if family == "raw":
            bad = bytearray(blob)
            for _ in range(rnd.choice((1, 1, 2, 5))):
                bad[rnd.randrange(len(bad))] ^= rnd.randrange(1, 256)
            bad = bytes(bad)
        else:
            bad = _data_flip(blob, rnd)
        try:
            loaded = cls(buffer=bad)
        except NeoError:
            outcomes[family]["rejected"] += 1
            continue
        b1 = _resave(loaded)
        again = cls(buffer=b1)
        assert _resave(again) == b1, (family, trial)
        seed = rnd.randrange(2**32)
        _step(loaded, np.random.default_rng(seed))
        _step(again, np.random.default_rng(seed))
        assert _resave(loaded) == _resave(again), (family, trial)
        outcomes[family]["loaded"] += 1
    # Both paths are exercised: raw flips are caught, corrected ones often load.
    assert outcomes["raw"]["rejected"] > 90, outcomes
    assert outcomes["data"]["loaded"] > 20 and outcomes["data"]["rejected"] > 0, outcomes


def test_random_header_edits_with_valid_crc(blob):
    # Byte flips almost always die at the header CRC; recomputing it drives
    # the mutations into the JSON parser and the entry validation instead.
    header, region = split(blob)
    text = json.dumps(header, sort_keys=True).encode()
    alphabet = b'{}[]",:0123456789-.eE tfnaluNI\\\xff\x00'
    rng = random.Random(99)
    outcomes = set()
    for _ in range(400):
        t = bytearray(text)
        for _ in range(rng.choice((1, 2, 3))):
            pos = rng.randrange(len(t))
            if rng.random() < 0.2:
                del t[pos]
            else:
                t[pos] = rng.choice(alphabet)
        try:
            ohr.decode(forge(raw=bytes(t), region=region))
            outcomes.add("ok")
        except OhrError:
            outcomes.add("error")
    assert "error" in outcomes


# --------------------------------------------------------------------------
# files


def test_read_file_and_header(tmp_path, blob):
    path = tmp_path / "model.ohr"
    ohr.atomic_write(path, blob)
    header, arrays = ohr.read_file(path)
    assert header == ohr.decode_header(blob)
    np.testing.assert_array_equal(arrays["state"]["zeta"], [0, 1, 2])
    assert ohr.read_header(str(path)) == header


def test_read_header_reads_only_prefix_and_header(tmp_path, blob, monkeypatch):
    path = tmp_path / "model.ohr"
    header, region = split(blob)
    # Garbage in the whole data region: the header is still fine, the arrays are not.
    path.write_bytes(blob[: len(blob) - len(region)] + bytes([0xA5]) * len(region))
    assert ohr.read_header(path) == header
    with pytest.raises(OhrError, match="checksum mismatch in array"):
        ohr.read_file(path)

    # And count what read_header actually pulls from the file.
    consumed = []
    real_open = open

    class Spy:
        def __init__(self, f):
            self._f = f

        def read(self, size=-1):
            chunk = self._f.read(size)
            consumed.append(len(chunk))
            return chunk

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    monkeypatch.setattr(ohr, "open", lambda *a, **k: Spy(real_open(*a, **k)), raising=False)
    ohr.read_header(path)
    assert sum(consumed) == len(blob) - len(region)


def test_read_header_checks_arrays_fit_in_file(tmp_path, blob):
    path = tmp_path / "model.ohr"
    path.write_bytes(blob[:-1])
    with pytest.raises(OhrError, match="past the end of the data"):
        ohr.read_header(path)


def test_read_header_huge_claimed_header(tmp_path, blob):
    path = tmp_path / "model.ohr"
    header, region = split(blob)
    path.write_bytes(forge(header, region, n=2**40))
    with pytest.raises(OhrError, match="exceeds the maximum"):
        ohr.read_header(path)
    path.write_bytes(forge(header, region, n=ohr.MAX_HEADER_BYTES - 24))
    with pytest.raises(OhrError, match="truncated file"):
        ohr.read_header(path)


def test_missing_and_wrong_paths(tmp_path):
    missing = tmp_path / "nope.ohr"
    for fn in (ohr.read_header, ohr.read_file):
        with pytest.raises(OhrError, match=re.escape(f"cannot read '{missing}'")):
            fn(missing)
        with pytest.raises(OhrError):
            fn(tmp_path)  # a directory
        with pytest.raises(TypeError):
            fn(3)
    (tmp_path / "text.txt").write_text("hello world, this is not a model file")
    with pytest.raises(OhrError, match="not an .ohr file"):
        ohr.read_file(tmp_path / "text.txt")


# --------------------------------------------------------------------------
# atomic_write


def test_atomic_write_replaces(tmp_path):
    path = tmp_path / "m.ohr"
    ohr.atomic_write(path, b"first")
    ohr.atomic_write(str(path), bytearray(b"second"))
    assert path.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["m.ohr"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_mode_respects_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        ohr.atomic_write(tmp_path / "m.ohr", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.ohr").st_mode) == mode


@pytest.mark.parametrize("target", ["fsync", "replace", "write"])
def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch, target):
    path = tmp_path / "m.ohr"
    path.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    if target == "write":
        real_fdopen = os.fdopen

        class Failing:
            def __init__(self, f):
                self._f = f

            def write(self, data):
                self._f.write(bytes(data)[:2])
                boom()

            def __getattr__(self, name):
                return getattr(self._f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._f.close()

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: Failing(real_fdopen(*a, **k)))
    else:
        monkeypatch.setattr(os, target, boom)
    expected = re.escape(f"cannot write model to '{path}': Input/output error")
    with pytest.raises(OhrError, match=expected) as info:
        ohr.atomic_write(path, b"new contents")
    monkeypatch.undo()
    assert isinstance(info.value.__cause__, OSError)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["m.ohr"]


def test_atomic_write_keyboard_interrupt(tmp_path, monkeypatch):
    path = tmp_path / "m.ohr"
    path.write_bytes(b"old")

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ohr.atomic_write(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["m.ohr"]


def test_atomic_write_bad_targets(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "m.ohr"
    with pytest.raises(OhrError, match="cannot write model to") as info:
        ohr.atomic_write(missing, b"x")
    assert isinstance(info.value.__cause__, FileNotFoundError)
    (tmp_path / "d").mkdir()
    with pytest.raises(OhrError, match="cannot write model to"):
        ohr.atomic_write(tmp_path / "d", b"x")
    assert sorted(os.listdir(tmp_path)) == ["d"]
    assert os.listdir(tmp_path / "d") == []
    with pytest.raises(TypeError):
        ohr.atomic_write(tmp_path / "m.ohr", "text")


def test_full_cycle_through_disk(tmp_path):
    path = pathlib.Path(tmp_path) / "cycle.ohr"
    data = ohr.encode(sample_meta(), sample_sections())
    ohr.atomic_write(path, data)
    assert path.read_bytes() == data
    _, arrays = ohr.read_file(path)
    assert list(arrays["weights"]) == ["w1", "w0", "scalar", "empty", "signed", "big"]
