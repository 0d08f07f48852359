"""Fuzzing the ``.ohr`` readers, in the default suite (issue 4).

Structure-aware mutation driven by hypothesis over real seed models (see
``tests/fuzz/ohr_targets.py``): 10,400 inputs (``-m slow``; a tenth of them in the
default run) through
``Hierarchy(file_name=)``, ``Hierarchy(buffer=)``, ``set_state_from_buffer``,
``set_weights_from_buffer``, ``ImageEncoder(file_name=/buffer=)``, ``neocli
inspect`` (in-process, text and JSON) and the CLI's model loaders. Every input must end in success or a ``NeoError``; a
model that loads must step, stay in range and round-trip. The runs are
derandomised so the suite is reproducible; ``tests/fuzz/fuzz_ohr.py`` (atheris)
is the long, coverage-guided run.

Also here: terabyte claims refused before allocation (traced in-process, and
under ``RLIMIT_AS`` in a subprocess), regressions for what fuzzing found, and
the no-code-execution checks.
"""
from __future__ import annotations

import collections
import json
import os
import random
import subprocess
import sys
import textwrap
import tokenize
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neocli as neo
from neocli import NeoError, ohr
from neocli.cli import _common as cli_common

from conftest import REPO, subprocess_env
from fuzz import ohr_targets as T

SEEDS = T.seed_models()
NAMES = sorted(SEEDS)  # hierarchies
FILES = T.seed_files()  # hierarchies and an ImageEncoder file
FILE_NAMES = sorted(FILES)

# Inputs per harness: 10,400 in all (each file input goes through 6 readers) in the
# slow run (``-m slow``, which .ci/run runs); the default run takes a tenth of each.
# NEOCLI_FUZZ_SCALE=k multiplies the slow counts and draws fresh random inputs (a long run).
SCALE = int(os.environ.get("NEOCLI_FUZZ_SCALE", "1"))
FULL = {"file": 2400, "buffer": 5000, "state": 1500, "weights": 1500}
QUICK = {k: n // 10 for k, n in FULL.items()}


def counts(key: str) -> list:
    """The example counts of one harness: a quick one by default, the full one marked slow."""
    return [pytest.param(QUICK[key], id="quick"),
            pytest.param(FULL[key] * SCALE, id="full", marks=pytest.mark.slow)]


def fuzz_settings(n: int):
    """Reproducible settings for ``n`` examples; per-input time is bounded by ``T.deadline``."""
    return settings(max_examples=n, deadline=None, derandomize=SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def input_path(tmp_path_factory):
    """One file that the file targets overwrite with each input."""
    return T.tmp_model_path(str(tmp_path_factory.mktemp("fuzz")))


def test_seeds_pass_every_target(input_path):
    """The seed models are valid for every reader (else the fuzzers would test nothing)."""
    for name, blob in SEEDS.items():
        res = T.run_file_targets(blob, input_path)
        assert res["file"] and res["buffer"] and res["inspect"] and res["inspect_json"], (name, res)
        h = T.seed_hierarchy(name)
        assert T.run_state_target(h, h.serialize_state_to_buffer().tobytes())
        assert T.run_weights_target(h, h.serialize_weights_to_buffer().tobytes())
    res = T.run_file_targets(FILES["image_encoder"], input_path)
    assert res["image"] and not res["file"] and res["inspect"] and res["inspect_json"], res
    # Only the model written with a codec is a CLI model, only the agent an RL agent.
    assert T.run_file_targets(SEEDS["pred1_cli"], input_path)["cli_load"]
    if T.neo_rl is not None:
        assert T.run_file_targets(SEEDS["rl_agent"], input_path)["rl_load"]


# --------------------------------------------------------------------------
# the mutation harnesses


def mutated(blob: bytes, name: str, family: str, rounds: int, seed: int) -> bytes:
    """``blob`` (the seed file ``name``) after ``rounds`` mutations of ``family``."""
    rnd = random.Random(seed)
    for _ in range(rounds):
        blob = T.mutate_file(rnd, blob, T.other_seeds(name), family)
    return blob


@pytest.mark.parametrize("n", counts("file"))
def test_file_readers(input_path, n):
    """Mutated files through every file reader: success or NeoError, and they agree."""
    outcomes = collections.Counter()
    done = collections.Counter()

    @fuzz_settings(n)
    @given(st.sampled_from(FILE_NAMES), st.sampled_from(T.FAMILIES), st.integers(1, 3), st.integers(0, 2**64 - 1))
    def run(name, family, rounds, seed):
        blob = mutated(FILES[name], name, family, rounds, seed)
        with T.deadline(20):
            res = T.run_file_targets(blob, input_path)
        done["file"] += 1
        outcomes[(family, res["file"] or res["image"])] += 1

    run()
    assert done["file"] >= n
    # CRC-fixed families must get past the checksums: some of their inputs load.
    assert outcomes[("data", True)] > 0 and outcomes[("json", True)] > 0, outcomes
    assert outcomes[("raw", False)] > 0, outcomes


@pytest.mark.parametrize("n", counts("buffer"))
def test_buffer_reader(n):
    """Mutated files through ``Hierarchy(buffer=)`` and, when they load, a step and a round trip."""
    loaded = collections.Counter()
    done = collections.Counter()

    @fuzz_settings(n)
    @given(st.sampled_from(NAMES), st.sampled_from(T.FAMILIES), st.integers(1, 3), st.integers(0, 2**64 - 1))
    def run(name, family, rounds, seed):
        blob = mutated(SEEDS[name], name, family, rounds, seed)
        with T.deadline(20):
            loaded[T.run_buffer_target(blob)] += 1
        done["buffer"] += 1

    run()
    assert done["buffer"] >= n
    assert loaded[True] > 0 and loaded[False] > 0, loaded


@pytest.fixture(scope="module")
def live():
    """One hierarchy per seed for the buffer setters, plus the seeds' state/weights buffers."""
    hs = {n: T.seed_hierarchy(n) for n in NAMES}
    bufs = {n: (h.serialize_state_to_buffer().tobytes(), h.serialize_weights_to_buffer().tobytes())
            for n, h in hs.items()}
    return hs, bufs


@pytest.mark.parametrize("which, n", [pytest.param(w, *c.values, id=f"{k}-{c.id}", marks=c.marks)
                                      for w, k in enumerate(("state", "weights")) for c in counts(k)])
def test_buffer_setters(live, which, n):
    """Mutated state/weights buffers: NeoError with the hierarchy untouched, or stored exactly."""
    hs, bufs = live
    accepted = collections.Counter()
    done = collections.Counter()
    key = ("state", "weights")[which]

    @fuzz_settings(n)
    @given(st.sampled_from(NAMES), st.integers(1, 3), st.integers(0, 2**64 - 1))
    def run(name, rounds, seed):
        rnd = random.Random(seed)
        data = bufs[name][which]
        others = [bufs[o][which] for o in NAMES if o != name]
        for _ in range(rounds):
            data = T.mutate_buffer(rnd, data, others)
        target = T.run_state_target if which == 0 else T.run_weights_target
        with T.deadline(20):
            accepted[target(hs[name], data)] += 1
        done[key] += 1

    run()
    assert done[key] >= n
    assert accepted[True] > 0 and accepted[False] > 0, accepted


# --------------------------------------------------------------------------
# terabyte claims: refused before anything is allocated


def _header_and_region(name="pred1_cli"):
    hb, region = T.split(SEEDS[name])
    return json.loads(hb), region


def terabyte_claims() -> list[tuple[str, bytes]]:
    """Files whose header claims ~1 TB in each place that could drive an allocation."""
    out = []
    h, region = _header_and_region()
    blob = bytearray(SEEDS["pred1_cli"])
    blob[16:24] = T.TB.to_bytes(8, "little")
    out.append(("prefix header length", bytes(blob)))
    for what, upd in (("entry nbytes", dict(dtype="|u1", shape=[T.TB], nbytes=T.TB)),
                      ("entry 2-D shape", dict(dtype="<f4", shape=[2**19, 2**19], nbytes=T.TB)),
                      ("entry offset", dict(offset=T.TB))):
        x = json.loads(json.dumps(h))
        x["sections"]["weights"][0].update(upd)
        out.append((what, T.rebuild(x, region)))
    for what, size in (("architecture 1 TB", [2**20, 2**20, 2]),
                       ("architecture just under the index limit", [1024, 1024, 32])):
        for drop in ((), ("state",), ("weights", "state"), ("weights", "persistent", "state")):
            x = json.loads(json.dumps(h))
            x["architecture"]["layer_descs"][0]["hidden_size"] = size
            for sec in drop:
                del x["sections"][sec]
            out.append((f"{what}, without {drop or 'nothing'}", T.rebuild(x, region)))
    x = json.loads(json.dumps(h))
    x["architecture"]["io_descs"][0]["history_capacity"] = 2**30
    x["architecture"]["io_descs"][0]["io_type"] = "action"
    del x["sections"]["weights"]
    out.append(("actor history 2**30", T.rebuild(x, region)))
    x = json.loads(json.dumps(h))
    x["architecture"]["io_descs"][0]["num_dendrites_per_cell"] = 2**24
    out.append(("decoder dendrites 2**24", T.rebuild(x, region)))
    return out


@pytest.mark.parametrize("what, blob", terabyte_claims(), ids=[w for w, _ in terabyte_claims()])
def test_terabyte_claims_refused_before_allocation(tmp_path, what, blob):
    """Each claim is a NeoError from every reader, with at most a few MB traced."""
    path = str(tmp_path / "claim.ohr")
    tracemalloc.start()
    try:
        with T.deadline(20):
            res = T.run_file_targets(blob, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not res["file"] and not res["buffer"] and not res["cli_load"], res
    assert peak < 16 * 2**20, f"{what}: {peak / 2**20:.1f} MiB traced"


def test_terabyte_claims_under_address_space_limit(tmp_path):
    """Under RLIMIT_AS (current size + 512 MiB) every claim is still a clean NeoError, not a MemoryError."""
    claims = tmp_path / "claims"
    claims.mkdir()
    for k, (_, blob) in enumerate(terabyte_claims()):
        (claims / f"{k:02d}.ohr").write_bytes(blob)
    script = textwrap.dedent("""
        import os, resource, sys
        import neocli as neo
        neo.set_num_threads(1)
        from fuzz import ohr_targets as T
        vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:")][0] * 1024
        limit = vm + 512 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        d = sys.argv[1]
        for f in sorted(os.listdir(d)):
            res = T.run_file_targets(open(os.path.join(d, f), "rb").read(), os.path.join(d, "in.ohr"))
            assert not res["file"], (f, res)
            print(f, "refused")
    """)
    env = subprocess_env(os.path.join(REPO, "tests"))
    r = subprocess.run([sys.executable, "-c", script, str(claims)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("refused") == len(terabyte_claims())


# --------------------------------------------------------------------------
# regressions: what the fuzzers found


def test_missing_sections_refused_before_building():
    """Found by fuzzing: a file without its weights section made the loader allocate the claimed architecture."""
    h, region = _header_and_region()
    h["architecture"]["layer_descs"][0]["hidden_size"] = [1024, 1024, 32]  # 2.4 GB of encoder weights
    h["sections"] = {}
    tracemalloc.start()
    try:
        with pytest.raises(NeoError, match="no weights section"):
            neo.Hierarchy(buffer=T.rebuild(h, region))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


@pytest.mark.parametrize("radix", [1, 0, -5])
def test_codec_radix_below_two_does_not_hang(tmp_path, radix):
    """Found by fuzzing: a header codec with radix < 2 made inspect (and generate/eval) loop forever."""
    h, region = _header_and_region()
    h["codec"]["radix"] = radix
    path = tmp_path / "m.ohr"
    path.write_bytes(T.rebuild(h, region))
    with T.deadline(10):
        text = T._inspect(str(path), json_out=False)
        assert "invalid codec" in text and "radix" in text
        with pytest.raises(NeoError, match="radix"):
            cli_common.load_model(str(path))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [64, 65, 980, 5000])
def test_header_nesting_is_bounded(tmp_path, depth):
    """Found by fuzzing: a header nested ~980 deep parsed but broke ``inspect --json`` (RecursionError).

    Headers may nest at most ``MAX_HEADER_DEPTH`` (64) levels, the root object
    included, whatever the caller's stack depth; the writer refuses what the
    reader would refuse.
    """
    hb, region = T.split(SEEDS["pred1_cli"])
    text = hb.rstrip(b" ").decode()
    text = text.replace('"user":{', '"user":' + _nested(depth - 1) + ',"old_user":{', 1)
    path = tmp_path / "m.ohr"
    res = T.run_file_targets(T.assemble(text.encode(), region), str(path))
    allowed = depth <= ohr.MAX_HEADER_DEPTH
    assert res["file"] == res["inspect_json"] == allowed, res
    meta = {"user": json.loads(_nested(min(depth, 100) - 1))}
    h = T.seed_hierarchy("pred1_cli")
    if allowed:
        h.save_to_file(str(path), meta=meta)
        assert neo.Hierarchy(file_name=str(path)).get_num_layers() == 1
    else:
        with pytest.raises(NeoError, match="nested more than 64"):
            h.save_to_file(str(path), meta=meta)


@pytest.mark.parametrize("where", ["sizes", "training", "params"])
def test_inspect_with_huge_header_numbers(tmp_path, where):
    """Found by fuzzing: a 400-digit integer in the header crashed inspect (OverflowError in isfinite/float)."""
    h, region = _header_and_region()
    big = 10**400
    if where == "sizes":
        h["sizes"] = {"state": big, "weights": -big, "persistent": 2**70, "total": big}
    elif where == "training":
        h["training"]["metrics"][0].update(accuracy=big, symbols_per_s=big, bits_per_symbol=-big)
    else:
        h["params"]["ios"][0]["importance"] = big
    path = tmp_path / "m.ohr"
    path.write_bytes(T.rebuild(h, region))
    text = T._inspect(str(path), json_out=False)
    assert "file" in text and "training" in text
    assert json.loads(T._inspect(str(path), json_out=True))["file"] == str(path)
    if where == "sizes":
        assert "PiB" in text  # absurd sizes are still shown, in PiB
    if where == "params":  # a parameter beyond float32 is refused by the loader ...
        with pytest.raises(NeoError, match="importance must fit in float32"):
            neo.Hierarchy(file_name=str(path))
    else:  # ... sizes and the training record are informational
        assert neo.Hierarchy(file_name=str(path)).get_num_io() == 1


@pytest.mark.parametrize("escape, ok", [("\\ud800", False), ("\\udfff", False), ("x\\udc00\\ud800", False),
                                        ("\\ud83d\\ude00", True), ("\\u00e9", True)])
def test_lone_surrogate_escapes_refused(tmp_path, escape, ok):
    """Found by fuzzing: a header string with a lone surrogate escape loaded, then broke
    inspect (UnicodeEncodeError on stdout) and every rewrite of the model (checkpoint commands)."""
    hb, region = T.split(SEEDS["pred1_cli"])
    text = hb.rstrip(b" ").decode().replace('"note":"fuzz seed"', '"note":"' + escape + '"')
    assert text != hb.rstrip(b" ").decode()
    path = tmp_path / "m.ohr"
    res = T.run_file_targets(T.assemble(text.encode(), region), str(path))
    assert res["file"] is ok and res["inspect"] is ok and res["inspect_json"] is ok, res
    if ok:  # a valid escaped pair is a real character: it loads and is written back as UTF-8
        h = neo.Hierarchy(file_name=str(path))
        h.save_to_file(str(path), meta={"user": ohr.read_header(str(path))["user"]})
        assert ohr.read_header(str(path))["user"]["note"] in ("\U0001F600", "\u00e9")


# Found by the atheris run: an input-only port sized no array, so its size went unchecked.
@pytest.mark.parametrize("how", ["constructor", "file"])
def test_huge_input_only_port_is_refused(how):
    """An IO of 2**32 columns cannot be indexed by the kernels: refuse it up front."""
    if how == "constructor":
        with pytest.raises(NeoError):
            neo.Hierarchy([neo.IODesc((2**31 - 1, 2, 3), neo.none, up_radius=1), neo.IODesc((1, 1, 4))],
                          [neo.LayerDesc((2, 2, 4))])
    else:
        h, region = _header_and_region("two_layers")
        h["architecture"]["io_descs"][0]["size"] = [2**31 - 1, 2, 3]
        with pytest.raises(NeoError):
            neo.Hierarchy(buffer=T.rebuild(h, region))


@pytest.mark.parametrize("iters, ok", [(16, True), (65536, True), (65537, False), (2**29, False)])
def test_history_iters_from_a_file_is_bounded(iters, ok):
    """Found by fuzzing: history_iters = 2**29 in a header loaded, then the first step ran for hours."""
    h, region = _header_and_region("actor")
    h["params"]["ios"][1]["actor"]["history_iters"] = iters
    blob = T.rebuild(h, region)
    if ok:
        assert neo.Hierarchy(buffer=blob).params.ios[1].actor.history_iters == iters
    else:
        with pytest.raises(NeoError, match="history_iters"):
            neo.Hierarchy(buffer=blob)


@pytest.mark.parametrize("field, value", [("n_radius", -1), ("n_radius", -2**31)])
def test_image_encoder_params_checked_on_load(field, value):
    """Found by fuzzing: an ImageEncoder file with n_radius = -1 loaded, then every step failed."""
    hb, region = T.split(FILES["image_encoder"])
    h = json.loads(hb)
    h["params"][field] = value
    with pytest.raises(NeoError, match=field):
        neo.ImageEncoder(buffer=T.rebuild(h, region))


def test_header_container_count_is_bounded():
    """A header of a million tiny objects is refused before json.loads (it would cost ~25x its size)."""
    hb, region = T.split(SEEDS["pred1_cli"])
    text = hb.rstrip(b" ").decode()
    n = ohr.MAX_HEADER_CONTAINERS
    text = text[:-1] + ',"junk":[' + "{}," * n + "{}]}"
    tracemalloc.start()
    try:
        with pytest.raises(NeoError, match="JSON objects/arrays"):
            neo.Hierarchy(buffer=T.assemble(text.encode(), region))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20  # the text itself, not a million dicts


# --------------------------------------------------------------------------
# no code execution on load


def _crafted(mutate):
    h, region = _header_and_region()
    mutate(h)
    return T.rebuild(h, region)


def _set_path(path, value):
    def mutate(h):
        obj = h
        for p in path[:-1]:
            obj = obj[p]
        obj[path[-1]] = value
    return mutate


CRAFTED = [
    ("class key in an IO descriptor", _set_path(("architecture", "io_descs", 0, "__class__"), "os.system"),
     "__class__"),
    ("reduce key in params", _set_path(("params", "__reduce__"), ["os.system", ["true"]]), "__reduce__"),
    ("unknown layer field", _set_path(("architecture", "layer_descs", 0, "loader"), "pickle"), "loader"),
    ("io_type naming a callable", _set_path(("architecture", "io_descs", 0, "io_type"), "os.system"),
     "unknown io_type 'os.system'"),
    ("size as a string", _set_path(("architecture", "io_descs", 0, "size"), "1,1,4"), "size must have 3"),
    ("radius as a float", _set_path(("architecture", "io_descs", 0, "up_radius"), 1.5), "up_radius must be an integer"),
    ("radius as a bool", _set_path(("architecture", "layer_descs", 0, "up_radius"), True),
     "up_radius must be an integer, got bool"),
    ("params as a list", _set_path(("params",), []), "Params must be a JSON object"),
    ("object dtype", _set_path(("sections", "weights", 0, "dtype"), "|O"), "unsupported dtype '|O'"),
    ("void dtype", _set_path(("sections", "weights", 0, "dtype"), "|V8"), "unsupported dtype"),
    ("pickle dtype name", _set_path(("sections", "weights", 0, "dtype"), "object"), "unsupported dtype"),
    ("extra entry key", _set_path(("sections", "weights", 0, "loader"), "np.load"), "unexpected keys"),
    ("unknown section", _set_path(("sections", "code"), []), "unknown section"),
    ("architecture missing", lambda h: h.pop("architecture"), "architecture"),
    ("sections not an object", _set_path(("sections",), [["weights"]]), "'sections' is not a JSON object"),
]


@pytest.mark.parametrize("what, mutate, phrase", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_headers_rejected(tmp_path, what, mutate, phrase):
    """Unexpected keys and types in a header are refused with a NeoError naming the problem."""
    blob = _crafted(mutate)
    with pytest.raises(NeoError) as err:
        neo.Hierarchy(buffer=blob)
    assert phrase.lower() in str(err.value).lower(), str(err.value)
    path = tmp_path / "m.ohr"
    path.write_bytes(blob)
    with pytest.raises(NeoError):
        neo.Hierarchy(file_name=str(path))


def test_header_strings_are_never_executed(tmp_path, monkeypatch):
    """Strings that would run code if evaluated or unpickled stay inert data in every reader."""
    marker = tmp_path / "executed"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    h, region = _header_and_region()
    h["user"] = {"cmd": payload, payload: payload}
    h["codec"]["kind"] = payload
    h["training"]["data_files"] = [payload]
    h["architecture"]["io_descs"][0]["io_type"] = payload
    blob = T.rebuild(h, region)
    path = tmp_path / "m.ohr"
    res = T.run_file_targets(blob, str(path))
    assert res["inspect"] and not res["file"]
    assert payload in T._inspect(str(path), json_out=True)
    assert not marker.exists()


FORBIDDEN_NAMES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "importlib",
                   "__import__", "allow_pickle", "jsonpickle", "yaml"}
FORBIDDEN_CALLS = {"eval", "exec", "compile"}


def _code_names(path):
    """(name, line, next token) for every NAME token of a Python/Cython source, comments and strings excluded."""
    with open(path, "rb") as f:
        toks = [t for t in tokenize.tokenize(f.readline)
                if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE)]
    for k, t in enumerate(toks):
        if t.type == tokenize.NAME:
            prev = toks[k - 1].string if k else ""
            nxt = toks[k + 1].string if k + 1 < len(toks) else ""
            yield t.string, t.start[0], prev, nxt


def package_sources():
    """Every Python and Cython source file of the package."""
    out = []
    for root in (os.path.join(REPO, "neocli"), os.path.join(REPO, "cython_core")):
        for dirpath, _, files in os.walk(root):
            out += [os.path.join(dirpath, f) for f in files if f.endswith((".py", ".pyx", ".pxd"))]
    return sorted(out)


def test_no_code_execution_primitives_in_package():
    """No pickle/marshal/importlib/__import__ anywhere and no eval/exec/compile calls in the package."""
    sources = package_sources()
    assert any(p.endswith("ohr.py") for p in sources) and any(p.endswith("_core.pyx") for p in sources)
    bad = []
    for path in sources:
        for name, line, prev, nxt in _code_names(path):
            if name in FORBIDDEN_NAMES:
                bad.append(f"{path}:{line}: {name}")
            # `re.compile(...)` or `def eval(...)` are fine; a bare builtin call is not.
            elif name in FORBIDDEN_CALLS and nxt == "(" and prev not in (".", "def"):
                bad.append(f"{path}:{line}: {name}(")
    assert not bad, bad


def test_forbidden_name_scan_can_fail(tmp_path):
    """The scanner sees real uses and ignores the same words in comments and strings."""
    src = tmp_path / "x.py"
    src.write_text("import pickle  # eval(x)\ns = 'exec(y)'\nv = eval(s)\nm = re.compile('a')\n")
    names = list(_code_names(str(src)))
    assert [n for n, *_ in names if n in FORBIDDEN_NAMES] == ["pickle"]
    assert [n for n, _, p, nx in names if n in FORBIDDEN_CALLS and nx == "(" and p not in (".", "def")] == ["eval"]
