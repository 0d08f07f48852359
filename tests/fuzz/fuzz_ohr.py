"""Coverage-guided fuzzing of the ``.ohr`` readers with atheris (the long run of issue 4).

Usage (from the repository root, after ``pip install -e '.[fuzz]'``)::

    python tests/fuzz/fuzz_ohr.py [--as-limit-mb 1024] [CORPUS_DIR] [libFuzzer flags]

for example::

    python tests/fuzz/fuzz_ohr.py --as-limit-mb 1024 /tmp/ohr-corpus \\
        -max_total_time=3600 -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1

The corpus directory is seeded at start with the tiny models of
``ohr_targets.seed_files()`` (hierarchies with and without state, actors, two
layers, a CLI model with codec, training record and user metadata, an RL agent,
an ImageEncoder) and with the hierarchies' state and weights buffers. The first byte of an input selects the target:

* ``0``: the bytes are a model file, run through ``Hierarchy(file_name=)``,
  ``Hierarchy(buffer=)``, ``ImageEncoder(file_name=/buffer=)``, ``neocli
  inspect`` (text and ``--json``) and the CLI's model loaders; a model that
  loads is stepped, checked and re-saved;
* ``1``/``2``: the rest is a state/weights buffer for the seed chosen by the
  second byte, passed to ``set_state_from_buffer``/``set_weights_from_buffer``.

A custom mutator alternates libFuzzer's byte-level mutations with the
structure-aware mutators of ``ohr_targets`` (which recompute the checksums, so
inputs reach the JSON validation, the loader and the kernels). Any exception
other than ``NeoError`` is a crash (atheris writes ``crash-*``); the address
space is capped with ``RLIMIT_AS`` so a huge allocation surfaces as a
``MemoryError`` crash instead of swapping; libFuzzer's ``-timeout`` catches hangs.
"""
from __future__ import annotations

import hashlib
import os
import random
import resource
import sys
import tempfile

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for `fuzz.ohr_targets`
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repository, for `neocli`

with atheris.instrument_imports(include=["neocli", "fuzz"]):
    import neocli as neo
    from fuzz import ohr_targets as T

SEED_NAMES = sorted(T.seed_models())  # hierarchies: targets of the buffer setters
FILE_NAMES = sorted(T.seed_files())  # and the ImageEncoder file
MODE_FILE, MODE_STATE, MODE_WEIGHTS = 0, 1, 2

_live: dict[str, neo.Hierarchy] = {}
_buffers: dict[str, tuple[bytes, bytes]] = {}
_path = ""


def _setup() -> None:
    global _path
    neo.set_num_threads(1)
    for name in SEED_NAMES:
        h = T.seed_hierarchy(name)
        _live[name] = h
        _buffers[name] = (h.serialize_state_to_buffer().tobytes(), h.serialize_weights_to_buffer().tobytes())
    _path = T.tmp_model_path(tempfile.mkdtemp(prefix="fuzz-ohr-"))


def write_seed_corpus(directory: str) -> int:
    """Write the seed inputs (mode byte + payload) into ``directory``; return how many."""
    os.makedirs(directory, exist_ok=True)
    seeds = [bytes([MODE_FILE]) + blob for blob in T.seed_files().values()]
    for k, name in enumerate(SEED_NAMES):
        state, weights = _buffers[name]
        seeds.append(bytes([MODE_STATE, k]) + state)
        seeds.append(bytes([MODE_WEIGHTS, k]) + weights)
    for data in seeds:
        with open(os.path.join(directory, "seed-" + hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    return len(seeds)


def TestOneInput(data: bytes) -> None:
    """One input: success or NeoError; anything else propagates and is a crash."""
    if not data:
        return
    mode = data[0] % 3
    if mode == MODE_FILE:
        T.run_file_targets(data[1:], _path)
        return
    if len(data) < 2:
        return
    name = SEED_NAMES[data[1] % len(SEED_NAMES)]
    target = T.run_state_target if mode == MODE_STATE else T.run_weights_target
    target(_live[name], data[2:])


def CustomMutator(data: bytes, max_size: int, seed: int) -> bytes:
    """Half libFuzzer's byte mutations, half the structure-aware ones (checksums fixed)."""
    rnd = random.Random(seed)
    if not data or rnd.random() < 0.5:
        return atheris.Mutate(data, max_size)
    mode = data[0] % 3
    if mode == MODE_FILE:
        name = rnd.choice(FILE_NAMES)
        out = bytes([MODE_FILE]) + T.mutate_file(rnd, data[1:], T.other_seeds(name))
    elif len(data) >= 2:
        name = SEED_NAMES[data[1] % len(SEED_NAMES)]
        which = 0 if mode == MODE_STATE else 1
        others = [_buffers[o][which] for o in SEED_NAMES if o != name]
        out = data[:2] + T.mutate_buffer(rnd, data[2:], others)
    else:
        return atheris.Mutate(data, max_size)
    return out[:max_size]


def main(argv: list[str]) -> None:
    """Parse our own flags, seed the corpus, cap the address space and start libFuzzer."""
    limit_mb = 1024
    args = [argv[0]]
    it = iter(argv[1:])
    for a in it:
        if a == "--as-limit-mb":
            limit_mb = int(next(it))
        elif a.startswith("--as-limit-mb="):
            limit_mb = int(a.split("=", 1)[1])
        else:
            args.append(a)
    _setup()
    corpus = [a for a in args[1:] if not a.startswith("-")]
    if corpus:
        n = write_seed_corpus(corpus[0])
        print(f"fuzz_ohr: {n} seed inputs written to {corpus[0]}", file=sys.stderr)
    if limit_mb > 0:
        # On top of what the interpreter already maps: any single allocation of
        # the order of the limit fails as a MemoryError, which atheris reports.
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024
        cap = vm + limit_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        print(f"fuzz_ohr: RLIMIT_AS = {cap / 2**20:.0f} MiB ({limit_mb} MiB above the start-up size)",
              file=sys.stderr)
    atheris.Setup(args, TestOneInput, custom_mutator=CustomMutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
