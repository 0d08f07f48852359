"""Shared pieces of the ``.ohr`` fuzz harnesses: seed models, mutators, targets, the rule.

The rule every harness enforces: whatever bytes arrive, each reader either
succeeds or raises :class:`neocli.NeoError`. Anything else — another exception
type, a crash, a hang, a huge allocation — is a bug. A model that loads must
also *work*: it steps, its predictions and hidden CSDRs stay in range, and it
saves and reloads to the same bytes (kernels run without bounds checks, so a
loader that accepts inconsistent data would show up here as a wrong index or a
segfault).

The mutators are plain functions of a ``random.Random``, so the hypothesis
suite (which draws the seed model, the mutation family, the number of rounds
and the random seed) and the atheris custom mutator share them.
Structure-aware mutators re-serialise the header and recompute the header CRC
— and, for data edits, the array CRCs — so that inputs get past the checksums
into the JSON validation, the architecture checks and the kernels.

Readers under test: ``Hierarchy(file_name=)``, ``Hierarchy(buffer=)``,
``set_state_from_buffer``, ``set_weights_from_buffer``, ``ImageEncoder(file_name=)``
and ``ImageEncoder(buffer=)``, ``neocli inspect`` (text and ``--json``,
in-process), the CLI's ``load_model`` and, when gymnasium is installed,
``neocli.rl.load_agent``.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import signal
import struct
import zlib

import numpy as np

import neocli as neo
from neocli import NeoError, ohr
from neocli.cli import _common as cli_common
from neocli.cli import inspect as cli_inspect
from neocli.codecs import TokensCodec
from neocli.image_encoder import ImageEncoder, ImageVisibleLayerDesc

try:  # the RL agent loader reads its own header object; fuzz it when it is available
    import gymnasium
    from neocli import rl as neo_rl
except ImportError:  # pragma: no cover - the rl extra is not installed
    gymnasium = neo_rl = None

__all__ = [
    "FuzzFailure", "FAMILIES", "seed_models", "seed_files", "seed_hierarchy", "split", "assemble", "rebuild",
    "mutate_file", "mutate_buffer", "run_file_targets", "run_buffer_target",
    "run_state_target", "run_weights_target", "exercise", "deadline", "TB",
]

TB = 2**40
_PREFIX = struct.Struct("<8sIIQ")


class FuzzFailure(AssertionError):
    """A reader broke the rule (or a loaded model misbehaved)."""


class Hang(FuzzFailure):
    """One input took longer than the harness allows."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise :class:`Hang` if the block runs longer than ``seconds`` (main thread only)."""
    def _alarm(signum, frame):
        raise Hang(f"input took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------
# seed models: a few tiny hierarchies covering every section kind


def _train(h: neo.Hierarchy, steps: int, seed: int) -> None:
    rs = np.random.RandomState(seed)
    for t in range(steps):
        inputs = []
        for i in range(h.get_num_io()):
            w, hh, z = h.get_io_size(i)
            inputs.append(rs.randint(0, z, size=w * hh).astype(np.int32))
        h.step(inputs, True, float(rs.uniform(-1, 1)))


def _cli_meta() -> dict:
    codec = TokensCodec(vocab_size=4, radix=4)
    return {
        "codec": codec.to_dict(),
        "training": {
            "epoch": 1, "epochs": 2, "steps": 12, "position": 5, "complete": False, "seed": 3,
            "fresh": False, "data_sha256": "ab" * 32, "data_files": ["a.txt", "b.txt"],
            "started_utc": "2026-01-01T00:00:00Z", "updated_utc": "2026-01-01T00:01:00Z",
            "metrics": [{"epoch": 1, "accuracy": 0.5, "bits_per_symbol": 1.5,
                         "symbols_per_s": 1000.0, "symbols": 12}],
            "partial": {"scored": 3, "correct": 1, "bits": 2.5, "symbols": 5, "seconds": 0.1},
        },
        "user": {"note": "fuzz seed", "n": 3, "nested": {"a": [1, 2.5, None, True]}},
        "created_utc": "2026-01-01T00:00:00Z",
    }


def _build_seeds() -> dict[str, bytes]:
    P, A, N = neo.prediction, neo.action, neo.none
    out = {}
    state = neo.get_global_state()
    try:
        neo.set_global_state(11)
        h = neo.Hierarchy([neo.IODesc((1, 1, 4), P, num_dendrites_per_cell=2, up_radius=1, down_radius=1)],
                          [neo.LayerDesc((2, 2, 4), num_dendrites_per_cell=2, up_radius=1, down_radius=1)])
        _train(h, 12, 1)
        out["pred1_cli"] = bytes(h._encode(_cli_meta()))
        out["pred1_nostate"] = bytes(h._encode({"created_utc": "2026-01-01T00:00:00Z"}, include_state=False))

        neo.set_global_state(12)
        h = neo.Hierarchy([neo.IODesc((1, 2, 3), N, up_radius=1),
                           neo.IODesc((2, 1, 5), P, num_dendrites_per_cell=2, up_radius=0, down_radius=1)],
                          [neo.LayerDesc((2, 1, 4), num_dendrites_per_cell=2, up_radius=1, down_radius=1),
                           neo.LayerDesc((1, 1, 3), num_dendrites_per_cell=2, up_radius=1, recurrent_radius=-1,
                                         down_radius=1)])
        _train(h, 10, 2)
        out["two_layers"] = bytes(h._encode({"created_utc": "2026-01-01T00:00:00Z"}))

        neo.set_global_state(13)
        h = neo.Hierarchy([neo.IODesc((2, 1, 4), N, up_radius=1),
                           neo.IODesc((1, 1, 3), A, num_dendrites_per_cell=2, value_num_dendrites_per_cell=2,
                                      up_radius=0, down_radius=1, history_capacity=4)],
                          [neo.LayerDesc((2, 2, 3), num_dendrites_per_cell=2, up_radius=1, down_radius=1)])
        h.params.ios[1].actor.min_steps = 1
        h.params.ios[1].actor.history_iters = 2
        _train(h, 9, 3)
        out["actor"] = bytes(h._encode({"created_utc": "2026-01-01T00:00:00Z"}))

        neo.set_global_state(14)
        h = neo.Hierarchy([neo.IODesc((1, 1, 3), P, num_dendrites_per_cell=1, up_radius=0, down_radius=0),
                           neo.IODesc((1, 1, 2), A, num_dendrites_per_cell=1, value_num_dendrites_per_cell=1,
                                      up_radius=0, down_radius=0, history_capacity=3)],
                          [neo.LayerDesc((1, 1, 3), num_dendrites_per_cell=1, up_radius=0, recurrent_radius=0,
                                         down_radius=0),
                           neo.LayerDesc((1, 1, 2), num_dendrites_per_cell=1, up_radius=0, recurrent_radius=0,
                                         down_radius=0)])
        h.params.ios[1].actor.min_steps = 1
        _train(h, 2, 4)  # history only partly filled: slots past history_size are garbage
        out["actor_two_layers"] = bytes(h._encode({"created_utc": "2026-01-01T00:00:00Z",
                                                   "user": {"k": "v"}}))
        if neo_rl is not None:
            out["rl_agent"] = _rl_seed()
    finally:
        neo.set_global_state(state)
    return out


def _rl_seed() -> bytes:
    """A tiny CartPole agent as ``neocli.rl.save_agent`` writes it (``rl`` header object)."""
    enc = neo_rl.encoding_for_env(gymnasium.make("CartPole-v1"), bins=4)
    h = neo_rl.build_hierarchy(enc, layers=[neo.LayerDesc((2, 2, 4), num_dendrites_per_cell=2, up_radius=1,
                                                           down_radius=1)],
                               seed=5, up_radius=1, down_radius=1, history_capacity=4)
    h.params.ios[1].actor.min_steps = 1
    _train(h, 6, 5)
    meta = {"rl": neo_rl.agent_meta(enc, neo_rl.Protocol()), "created_utc": "2026-01-01T00:00:00Z",
            "training": {"kind": "rl", "env": "CartPole-v1", "episode": 3, "episodes": 10,
                         "returns": [12.0, 30.0, 9.0], "steps": 51}}
    return bytes(h._encode(meta))


_SEEDS: dict[str, bytes] | None = None


def seed_models() -> dict[str, bytes]:
    """``{name: .ohr bytes}`` of the seed models (built once per process, deterministic)."""
    global _SEEDS
    if _SEEDS is None:
        _SEEDS = _build_seeds()
    return _SEEDS


_IMAGE_SEEDS: dict[str, bytes] | None = None


def _build_image_seeds() -> dict[str, bytes]:
    state = neo.get_global_state()
    try:
        neo.set_global_state(15)
        e = ImageEncoder((2, 2, 4), [ImageVisibleLayerDesc((3, 3, 1), 1), ImageVisibleLayerDesc((2, 2, 3), 1)])
    finally:
        neo.set_global_state(state)
    rs = np.random.RandomState(6)
    for _ in range(4):
        e.step([rs.randint(0, 256, size=9).astype(np.uint8), rs.randint(0, 256, size=12).astype(np.uint8)],
               True, True)
    e.reconstruct(e.get_hidden_cis())
    return {"image_encoder": bytes(e._encode({"created_utc": "2026-01-01T00:00:00Z", "user": {"k": 1}}))}


def seed_files() -> dict[str, bytes]:
    """Every seed file: the hierarchies of :func:`seed_models` and an ImageEncoder file."""
    global _IMAGE_SEEDS
    if _IMAGE_SEEDS is None:
        _IMAGE_SEEDS = _build_image_seeds()
    return {**seed_models(), **_IMAGE_SEEDS}


def seed_hierarchy(name: str) -> neo.Hierarchy:
    """A fresh hierarchy loaded from seed ``name``."""
    return neo.Hierarchy(buffer=seed_models()[name])


# --------------------------------------------------------------------------
# container surgery


def split(blob: bytes):
    """``(header_text, region)`` of a well-formed-enough file, or ``None``."""
    if len(blob) < 24:
        return None
    (n,) = struct.unpack_from("<Q", blob, 16)
    if n > len(blob) - 24:
        return None
    return blob[24:24 + n], blob[24 + n:]


def assemble(hbytes: bytes, region: bytes, version: int = ohr.FORMAT_VERSION) -> bytes:
    """A file with a correct prefix (CRC, length, alignment padding) around ``hbytes``."""
    hbytes = hbytes + b" " * ((-(24 + len(hbytes))) % 64)
    return _PREFIX.pack(ohr.MAGIC, version, zlib.crc32(hbytes) & 0xFFFFFFFF, len(hbytes)) + hbytes + region


# Placeholders json.dumps cannot produce directly, substituted into the text.
_DEEP = "\x00deep\x00"
_BIGINT = "\x00bigint\x00"
_NAN = "\x00nan\x00"
_INF = "\x00inf\x00"


def rebuild(header, region: bytes, rnd=None) -> bytes:
    """Serialise a (mutated) header object and assemble a file with fixed CRC and padding."""
    text = json.dumps(header, separators=(",", ":"))
    if rnd is not None:
        depth = rnd.choice((50, 500, 900, 990, 1100, 5000, 100_000))
        text = text.replace(json.dumps(_DEEP), "[" * depth + "]" * depth)
        text = text.replace(json.dumps(_BIGINT), "9" * rnd.choice((20, 400, 4300, 5000)))
    text = text.replace(json.dumps(_NAN), "NaN").replace(json.dumps(_INF), "1e999")
    return assemble(text.encode("utf-8", "surrogatepass"), region)


NASTY = [
    None, True, False, 0, -1, 1, 2, 3, 7, 63, 64, 255, 256, 65535, 2**31 - 1, 2**31, -2**31 - 1,
    2**32, 2**32 + 1, TB, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**64 + 64, -2**63, 10**30, 0.5, -0.0,
    1.0, 1e308, -1e308, 5e-324, "", "x", "prediction", "action", "none", "|u1", "<f4", "<i4", ">i4",
    "O", "bytes", "tokens", "csv", "chars", "words", "rl", "\ud800", "\udc00\ud800", "\ud83d\ude00", "é" * 3,
    [], {}, [1], [[]], [0, 0, 0],
    [1, 1, 1], [-1, 2, 3], [TB], [2**20, 2**20, 2**10], [TB, 1, 1], {"": None}, {"kind": "bytes"},
    {"__class__": "os.system"}, _DEEP, _BIGINT, _NAN, _INF,
]


def _nodes(obj, path=()):
    """Every (path, value) in a JSON tree (bounded: headers of the seeds are small)."""
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _nodes(v, path + (i,))


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _set(obj, path, value):
    if not path:
        return value
    _get(obj, path[:-1])[path[-1]] = value
    return obj


def _entries(header):
    secs = header.get("sections") if isinstance(header, dict) else None
    out = []
    if isinstance(secs, dict):
        for sec, lst in secs.items():
            if isinstance(lst, list):
                out += [e for e in lst if isinstance(e, dict)]
    return out


def _claim_terabyte(rnd, header):
    """Make the header claim about a terabyte somewhere it matters."""
    if not isinstance(header, dict):
        return header
    kind = rnd.randrange(6)
    ents = _entries(header)
    if kind == 0 and ents:
        e = rnd.choice(ents)
        e.update(dtype="|u1", shape=[TB], nbytes=TB)
    elif kind == 1 and ents:
        e = rnd.choice(ents)
        e.update(dtype="<f4", shape=[2**19, 2**19], nbytes=TB)
    elif kind == 2 and ents:
        e = rnd.choice(ents)
        e.update(offset=TB - TB % 64)
    elif kind == 3 and isinstance(header.get("architecture"), dict):
        arch = header["architecture"]
        for d in arch.get("layer_descs") or []:
            if isinstance(d, dict):
                d["hidden_size"] = rnd.choice(([2**14, 2**14, 2**12], [1024, 1024, 1024], [TB, 1, 2]))
        if rnd.random() < 0.5 and isinstance(header.get("sections"), dict):
            for sec in rnd.sample(["state", "weights", "persistent"], rnd.randrange(1, 4)):
                header["sections"].pop(sec, None)
    elif kind == 4 and isinstance(header.get("architecture"), dict):
        for d in header["architecture"].get("io_descs") or []:
            if isinstance(d, dict):
                d[rnd.choice(("history_capacity", "num_dendrites_per_cell", "value_num_dendrites_per_cell",
                              "up_radius", "down_radius"))] = rnd.choice((2**20, 2**31 - 1, 2**30, 46340))
        if rnd.random() < 0.5 and isinstance(header.get("sections"), dict):
            header["sections"].pop(rnd.choice(["state", "weights", "persistent"]), None)
    else:
        header["sizes"] = {"state": TB, "weights": TB, "persistent": TB, "total": 3 * TB}
    return header


_PARSED: dict[bytes, dict] = {}


def _parsed_header(blob: bytes) -> dict:
    """A fresh copy of the parsed header of a (valid) seed, parsed once."""
    if blob not in _PARSED:
        _PARSED[blob] = json.loads(split(blob)[0])
    return copy.deepcopy(_PARSED[blob])


def _json_edit(rnd, header, others):
    """One structural edit of the parsed header."""
    nodes = list(_nodes(header))
    path, node = rnd.choice(nodes)
    op = rnd.randrange(9)
    if op == 0:
        header = _set(header, path, copy.deepcopy(rnd.choice(NASTY)))
    elif op == 1 and path:
        parent = _get(header, path[:-1])
        del parent[path[-1]]
    elif op == 2 and isinstance(node, dict):
        node[rnd.choice(("extra", "__class__", "__reduce__", "sections", "kind", "name", "dtype", "size",
                         "io_type", "hidden_size", "vocab", "radix", "rl", "returns", "encoding", "protocol",
                         "image_encoders"))] = copy.deepcopy(rnd.choice(NASTY))
    elif op == 3 and isinstance(node, list) and node:
        node.insert(rnd.randrange(len(node) + 1), copy.deepcopy(rnd.choice(node)))
    elif op == 4 and type(node) is int:
        header = _set(header, path, rnd.choice((node + 1, node - 1, -node, node * 2**rnd.randrange(1, 40),
                                                node + 2**32, node ^ (1 << rnd.randrange(64)))))
    elif op == 5:
        header = _claim_terabyte(rnd, header)
    elif op == 6 and others:
        # Transplant a subtree from another seed: architectures and arrays disagree.
        donor = _parsed_header(rnd.choice(others))
        key = rnd.choice(("architecture", "params", "sections", "codec", "training"))
        if isinstance(header, dict) and key in donor:
            header[key] = donor[key]
    elif op == 7 and isinstance(node, list) and len(node) > 1:
        i, j = rnd.randrange(len(node)), rnd.randrange(len(node))
        node[i], node[j] = node[j], node[i]
    elif op == 8 and isinstance(node, str):
        header = _set(header, path, node[: rnd.randrange(len(node) + 1)] + rnd.choice(("", "x", "\x00", "é")))
    return header


_ALPHABET = b'{}[]",:0123456789-+.eE tfnaluNI\\/\xff\x00\n'


def _mutate_raw(rnd, blob: bytes) -> bytes:
    b = bytearray(blob)
    op = rnd.randrange(6)
    if op == 0 and b:  # byte flips, biased towards the prefix and header
        for _ in range(rnd.choice((1, 1, 2, 4, 8))):
            lim = len(b) if rnd.random() < 0.5 else min(len(b), 512)
            b[rnd.randrange(lim)] ^= rnd.randrange(1, 256)
    elif op == 1:
        del b[rnd.randrange(len(b) + 1):]
    elif op == 2:
        b += bytes(rnd.randrange(256) for _ in range(rnd.choice((1, 7, 64, 300)))) if rnd.random() < 0.5 \
            else bytes(rnd.choice((1, 63, 64, 4096)))
    elif op == 3 and b:
        i = rnd.randrange(len(b))
        j = min(len(b), i + rnd.randrange(1, 128))
        if rnd.random() < 0.5:
            del b[i:j]
        else:
            b[i:i] = b[i:j]
    elif op == 4 and len(b) >= 24:  # a nasty prefix field
        field = rnd.choice(((8, "<I"), (12, "<I"), (16, "<Q")))
        val = rnd.choice((0, 1, 2, 24, 40, 64, 2**31, 2**32 - 1, TB, ohr.MAX_HEADER_BYTES + 64, 2**64 - 1,
                          len(b) - 24, len(b) - 23, len(b)))
        if field[1] == "<I":
            val &= 0xFFFFFFFF
        struct.pack_into(field[1], b, field[0], val)
    elif b:
        b[rnd.randrange(len(b))] = rnd.choice(_ALPHABET)
    return bytes(b)


def _mutate_header_text(rnd, hbytes: bytes, region: bytes) -> bytes:
    t = bytearray(hbytes.rstrip(b" "))
    for _ in range(rnd.choice((1, 1, 2, 3))):
        if not t:
            break
        pos = rnd.randrange(len(t))
        r = rnd.random()
        if r < 0.2:
            del t[pos:pos + rnd.randrange(1, 16)]
        elif r < 0.4:
            t[pos:pos] = rnd.choice((b"{", b"[", b'"', b",", b'"a":1,', b"-", b"9" * 30, b"\\u", b"\xc3",
                                     b'"sections":{},', b"1e999", b"NaN", b"Infinity"))
        elif r < 0.5:  # duplicate a key/value chunk: duplicate keys
            j = min(len(t), pos + rnd.randrange(1, 64))
            t[pos:pos] = t[pos:j]
        else:
            t[pos] = rnd.choice(_ALPHABET)
    return assemble(bytes(t), region)


def _nasty_array_bytes(rnd, dtype: str, count: int) -> bytes:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        pool = [np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45, -0.0, 0.0, 1.0, -1.0, 1e30]
    elif dt.kind == "i":
        info = np.iinfo(dt)
        pool = [-1, 0, 1, 2, 3, 4, 5, 16, 255, info.max, info.min, info.max // 2]
    else:
        info = np.iinfo(dt)
        pool = [0, 1, 2, 3, 4, 255, info.max, info.max // 2]
    vals = np.array([rnd.choice(pool) for _ in range(count)]).astype(dt, casting="unsafe")
    return vals.astype(dt.newbyteorder("<")).tobytes()


def _mutate_data(rnd, header, region: bytes):
    """Edit array bytes in the data region and recompute their CRCs."""
    region = bytearray(region)
    ents = [e for e in _entries(header)
            if isinstance(e.get("offset"), int) and isinstance(e.get("nbytes"), int) and e["nbytes"] > 0
            and e["offset"] + e["nbytes"] <= len(region) and e.get("dtype") in ohr.ALLOWED_DTYPES]
    if not ents:
        return header, bytes(region)
    for _ in range(rnd.choice((1, 1, 2, 3))):
        e = rnd.choice(ents)
        start, n = e["offset"], e["nbytes"]
        size = np.dtype(e["dtype"]).itemsize
        r = rnd.random()
        if r < 0.4:  # a few nasty elements
            for _ in range(rnd.choice((1, 2, 5))):
                k = rnd.randrange(n // size)
                region[start + k * size:start + (k + 1) * size] = _nasty_array_bytes(rnd, e["dtype"], 1)
        elif r < 0.6:  # the whole array nasty
            region[start:start + n] = _nasty_array_bytes(rnd, e["dtype"], n // size)
        else:
            for _ in range(rnd.choice((1, 3, 10))):
                region[start + rnd.randrange(n)] ^= rnd.randrange(1, 256)
        e["crc32"] = zlib.crc32(bytes(region[start:start + n])) & 0xFFFFFFFF
    return header, bytes(region)


FAMILIES = ("raw", "text", "json", "data")


def mutate_file(rnd, blob: bytes, others=(), family: str | None = None) -> bytes:
    """One random mutation of ``.ohr`` bytes from ``family`` (random when None).

    ``raw``: byte flips, truncation, splices, nasty prefix fields (checksums
    left broken); ``text``: edits of the header JSON text; ``json``: structural
    edits of the parsed header (nasty values, wrong types, unexpected keys, deep
    nesting, terabyte claims, subtrees transplanted from ``others``); ``data``:
    nasty array contents. All but ``raw`` recompute the header CRC (and ``data``
    the array CRCs) so that deeper code is reached. Falls back to ``raw`` when
    ``blob`` cannot be split.
    """
    parts = split(blob)
    if family is None:
        family = rnd.choices(FAMILIES, weights=(2, 2, 4, 2))[0]
    if parts is None or family == "raw":
        return _mutate_raw(rnd, blob)
    hbytes, region = parts
    if family == "text":
        return _mutate_header_text(rnd, hbytes, region)
    try:
        header = json.loads(hbytes)
        if family == "json":
            for _ in range(rnd.choice((1, 1, 2, 3))):
                header = _json_edit(rnd, header, list(others))
            if rnd.random() < 0.2:
                header, region = _mutate_data(rnd, header, region)
            return rebuild(header, region, rnd)
        header, region = _mutate_data(rnd, header, region)
        if rnd.random() < 0.1:
            header = _json_edit(rnd, header, list(others))
        return rebuild(header, region, rnd)
    except (ValueError, RecursionError, TypeError, AttributeError, KeyError, IndexError):
        # Not JSON, nested too deeply for the recursive helpers here, or shaped
        # unlike a header after earlier mutations (the atheris mutator chains
        # them): edit the text instead.
        return _mutate_header_text(rnd, hbytes, region)


def mutate_buffer(rnd, buf: bytes, others=()) -> bytes:
    """One random mutation of a state or weights buffer (raw layout, no checksums)."""
    b = bytearray(buf)
    op = rnd.randrange(7)
    if op == 0 and b:
        for _ in range(rnd.choice((1, 2, 8))):
            b[rnd.randrange(len(b))] ^= rnd.randrange(1, 256)
    elif op in (1, 2) and len(b) >= 4:  # int32 words: cell indices, ring start/size
        for _ in range(rnd.choice((1, 1, 3))):
            k = rnd.randrange(len(b) // 4) * 4
            b[k:k + 4] = struct.pack("<i", rnd.choice((-1, -2**31, 2**31 - 1, 1, 2, 3, 4, 5, 16, 255, 256)))
    elif op == 3 and len(b) >= 4:  # float32 words
        k = rnd.randrange(len(b) // 4) * 4
        b[k:k + 4] = struct.pack("<f", rnd.choice((float("nan"), float("inf"), -float("inf"), 3.4e38, -0.0)))
    elif op == 4:
        del b[rnd.randrange(len(b) + 1):]
    elif op == 5:
        b += bytes(rnd.choice((1, 4, 64)))
    elif others:
        return rnd.choice(list(others))
    return bytes(b)


# --------------------------------------------------------------------------
# targets


def _check_range(what: str, arr: np.ndarray, size: int, z: int) -> None:
    if arr.shape != (size,) or (size and (arr.min() < 0 or arr.max() >= z)):
        raise FuzzFailure(f"{what} out of range after loading: shape {arr.shape}, values {arr[:8]}, z={z}")


def _state_weights(h: neo.Hierarchy) -> tuple[bytes, bytes]:
    return h.serialize_state_to_buffer().tobytes(), h.serialize_weights_to_buffer().tobytes()


def exercise(h: neo.Hierarchy) -> None:
    """Use a freshly loaded hierarchy: step, read everything back, save and reload.

    A ``NeoError`` here is a failure too: a model the loader accepted must work
    with valid inputs.
    """
    try:
        num_io, num_layers = h.get_num_io(), h.get_num_layers()
        sizes = [h.get_io_size(i) for i in range(num_io)]
        # An input-only port's size is not backed by any array, so a header may give
        # it billions of columns (see test_fuzz.test_huge_input_only_port_is_refused);
        # building such an input here would itself be the huge allocation.
        steppable = sum(w * hh for w, hh, _ in sizes) <= 1 << 20
        for rep in range(2):
            before = h.serialize_to_buffer()
            again = neo.Hierarchy(buffer=before)
            if _state_weights(again) != _state_weights(h):
                raise FuzzFailure("a loaded model does not survive serialize_to_buffer -> Hierarchy(buffer=)")
            if not steppable:
                break
            inputs = [(np.arange(w * hh, dtype=np.int32) + rep) % z for w, hh, z in sizes]
            h.step(inputs, learn_enabled=rep == 0, reward=0.5, mimic=0.0)
            for i, (w, hh, z) in enumerate(sizes):
                if h.get_io_type(i) == neo.none:
                    continue
                _check_range(f"IO {i} prediction", h.get_prediction_cis(i), w * hh, z)
                _check_range(f"IO {i} sample", h.sample_prediction(i, 1.0), w * hh, z)
                if h.get_prediction_acts(i).shape != (w * hh * z,):
                    raise FuzzFailure(f"IO {i} prediction acts have the wrong shape")
            for layer in range(num_layers):
                hw, hh_, hz = h.get_hidden_size(layer)
                _check_range(f"layer {layer} hidden", h.get_hidden_cis(layer), hw * hh_, hz)
    except NeoError as e:
        raise FuzzFailure(f"a model that loaded fails with valid inputs: {e!r}") from e


def exercise_image(e: ImageEncoder) -> None:
    """Use a freshly loaded ImageEncoder: round trip, step, reconstruct, check ranges."""
    try:
        again = ImageEncoder(buffer=e.serialize_to_buffer())
        if (again.serialize_state_to_buffer().tobytes(), again.serialize_weights_to_buffer().tobytes()) != (
                e.serialize_state_to_buffer().tobytes(), e.serialize_weights_to_buffer().tobytes()):
            raise FuzzFailure("a loaded ImageEncoder does not survive serialize_to_buffer -> ImageEncoder(buffer=)")
        sizes = [e.get_visible_size(i) for i in range(e.get_num_visible_layers())]
        if sum(w * h * c for w, h, c in sizes) > 1 << 20:
            return  # see exercise(): building the input would be the huge allocation
        e.step([np.arange(w * h * c, dtype=np.int64).astype(np.uint8) for w, h, c in sizes], True, True)
        hw, hh, hz = e.get_hidden_size()
        _check_range("image encoder hidden", e.get_hidden_cis(), hw * hh, hz)
        e.reconstruct(e.get_hidden_cis())
        for i, (w, h, c) in enumerate(sizes):
            if e.get_reconstruction(i).shape != (w * h * c,):
                raise FuzzFailure(f"reconstruction {i} has the wrong shape")
    except NeoError as exc:
        raise FuzzFailure(f"an ImageEncoder that loaded fails with valid inputs: {exc!r}") from exc


def _loaded(factory) -> bool:
    """Call ``factory``; True if it produced a hierarchy (then exercised), False on NeoError."""
    try:
        h = factory()
    except NeoError:
        return False
    exercise(h)
    return True


def run_buffer_target(data: bytes) -> bool:
    """``Hierarchy(buffer=data)``; True if it loaded."""
    return _loaded(lambda: neo.Hierarchy(buffer=data))


# A strict UTF-8 stream, as a real stdout is: text that cannot be encoded (a lone
# surrogate from a JSON escape) must fail here too. One stream for the whole run:
# click caches a wrapper per stream object and never lets go of it, so a fresh
# stream per input would leak (~2 KB each) and end a long atheris run at RLIMIT_AS.
_OUT_RAW = io.BytesIO()
_OUT = io.TextIOWrapper(_OUT_RAW, encoding="utf-8", errors="strict", newline="\n")


def _inspect(path: str, json_out: bool) -> str:
    _OUT.flush()
    _OUT_RAW.seek(0)
    _OUT_RAW.truncate()
    with contextlib.redirect_stdout(_OUT):
        # __wrapped__: the command body without the CLI's error wrapper, so that
        # an exception that is not a NeoError is seen as what it is.
        cli_inspect.inspect.__wrapped__(path, json_out=json_out)
        _OUT.flush()
    return _OUT_RAW.getvalue().decode("utf-8")


def run_file_targets(data: bytes, path: str) -> dict[str, bool]:
    """Write ``data`` to ``path`` and run every file reader over it.

    Returns ``{target: loaded}``. ``Hierarchy(file_name=)`` and
    ``Hierarchy(buffer=)`` must agree on whether the bytes are a model.
    """
    with open(path, "wb") as f:
        f.write(data)
    res = {}
    try:
        h = neo.Hierarchy(file_name=path)
        res["file"] = True
    except NeoError:
        res["file"] = False
    try:
        hb = neo.Hierarchy(buffer=data)
        res["buffer"] = True
    except NeoError:
        res["buffer"] = False
    if res["file"] != res["buffer"]:
        raise FuzzFailure(f"file and buffer loaders disagree: {res}")
    if res["file"]:
        if _state_weights(h) != _state_weights(hb):
            raise FuzzFailure("file and buffer loaders produced different models")
        exercise(h)
    for json_out in (False, True):
        try:
            text = _inspect(path, json_out)
            res[f"inspect{'_json' if json_out else ''}"] = True
            if json_out:
                json.loads(text)
        except NeoError:
            res[f"inspect{'_json' if json_out else ''}"] = False
    try:
        e = ImageEncoder(file_name=path)
        res["image"] = True
    except NeoError:
        res["image"] = False
    try:
        eb = ImageEncoder(buffer=data)
        res["image_buffer"] = True
    except NeoError:
        res["image_buffer"] = False
    if res["image"] != res["image_buffer"]:
        raise FuzzFailure(f"ImageEncoder file and buffer loaders disagree: {res}")
    if res["image"]:
        if res["file"]:
            raise FuzzFailure("the same bytes loaded as a Hierarchy and as an ImageEncoder")
        if e.serialize_weights_to_buffer().tobytes() != eb.serialize_weights_to_buffer().tobytes():
            raise FuzzFailure("ImageEncoder file and buffer loaders produced different encoders")
        exercise_image(e)
    loaders = [("cli_load", cli_common.load_model, "the CLI")]
    if neo_rl is not None:
        loaders.append(("rl_load", neo_rl.load_agent, "neocli.rl.load_agent"))
    for key, load, who in loaders:
        try:
            load(path)
            res[key] = True
        except NeoError:
            res[key] = False
        if res[key] and not res["file"]:
            raise FuzzFailure(f"{who} loaded a model that Hierarchy(file_name=) rejects")
    return res


def _run_set_target(h: neo.Hierarchy, what: str, data: bytes) -> bool:
    """``h.set_<what>_from_buffer(data)``: rejected with NeoError and nothing changed, or
    stored exactly (read back byte for byte; the state's ring slots past history_size
    included, they are kept as given) and the hierarchy still works."""
    before = _state_weights(h) + (h.get_rng_state(),)
    setter = f"set_{what}_from_buffer"
    try:
        getattr(h, setter)(data)
    except NeoError:
        if _state_weights(h) + (h.get_rng_state(),) != before:
            raise FuzzFailure(f"{setter} changed the hierarchy before rejecting the buffer") from None
        return False
    if getattr(h, f"serialize_{what}_to_buffer")().tobytes() != bytes(data):
        raise FuzzFailure(f"{setter} did not store what it was given")
    exercise(h)
    return True


def run_state_target(h: neo.Hierarchy, data: bytes) -> bool:
    """``h.set_state_from_buffer(data)``; on success the hierarchy must work and round-trip."""
    return _run_set_target(h, "state", data)


def run_weights_target(h: neo.Hierarchy, data: bytes) -> bool:
    """``h.set_weights_from_buffer(data)``; on success the weights must read back identically."""
    return _run_set_target(h, "weights", data)


def other_seeds(name: str) -> list[bytes]:
    """Every seed file except ``name`` (donors for transplanted header subtrees)."""
    return [b for k, b in seed_files().items() if k != name]


def tmp_model_path(directory: str) -> str:
    """Where the file targets write their input."""
    return os.path.join(directory, "fuzz-input.ohr")
