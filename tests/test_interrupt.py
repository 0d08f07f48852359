"""Ctrl-C during ``neocli train``: a checkpoint, exit 130, and a resume that ends where an
uninterrupted run ends.

The interrupt is sent only once training has demonstrably started (its first periodic
checkpoint exists) and while most of the data is still ahead, so it always lands
inside the training loop: the test never has a reason to skip. Should the run ever
finish first, that is a failure with the timing in the message, not a skip.
"""
from __future__ import annotations

import shlex
import signal
import subprocess
import time

from neocli import ohr
from conftest import NEOCLI, ohr_sections, subprocess_env

TEXT = ("the cat sat on the mat. the dog sat on the log. a bird sat on the wire.\n" * 6).encode()
EVERY = 1000  # steps between periodic checkpoints; the data is 40 times that


def _train(data, out, ckpt, *extra):
    return [*NEOCLI, "train", str(data), "-o", str(out), "--hidden", "3x3x16", "--quiet", "--threads", "1",
            "--checkpoint-dir", str(ckpt), "--checkpoint-every", str(EVERY), *extra]


def test_ctrl_c_writes_a_checkpoint_and_resume_finishes_identically(tmp_path):
    data = tmp_path / "data.txt"
    data.write_bytes(TEXT * 40)  # 17,280 bytes: two steps (nibbles) per byte
    env = subprocess_env()
    ck = tmp_path / "c dir"  # a space: the printed command must quote it
    p = subprocess.Popen(_train(data, tmp_path / "int.ohr", ck, "--keep", "2"), env=env, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while not list(ck.glob("*.ohr")) and p.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.005)
    started = time.monotonic() - t0
    assert p.poll() is None, f"training ended (exit {p.returncode}) before its first checkpoint was seen"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, started, err.decode())
    assert b"Traceback" not in err
    lines = err.decode().splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith("continue with:"))
    # The next line is the command alone, ready to paste: the data, the checkpoint, the
    # output and the options the resumed run needs to go on as this one would have.
    hint = shlex.split(lines[at + 1])
    ckpt = hint[hint.index("--resume") + 1]
    assert hint == ["neocli", "train", str(data), "--resume", ckpt, "-o", str(tmp_path / "int.ohr"),
                    "--checkpoint-dir", str(ck), "--checkpoint-every", str(EVERY), "--keep", "2",
                    "--threads", "1", "--quiet"], hint
    t = ohr.read_header(ckpt)["training"]
    stopped = t["steps"]
    assert not t["complete"] and EVERY <= stopped < 2 * len(TEXT * 40)
    assert not (tmp_path / "int.ohr").exists()  # a checkpoint directory takes the interrupt checkpoint

    # The pasted command, as it was printed: it goes on checkpointing into "c dir", keeping 2.
    r = subprocess.run([*NEOCLI, *hint[1:]], env=env, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    later = [f for f in ck.glob("*.ohr") if ohr.read_header(f)["training"]["steps"] > stopped]
    assert later and len(list(ck.glob("*.ohr"))) == 2, sorted(f.name for f in ck.glob("*.ohr"))
    r = subprocess.run(_train(data, tmp_path / "full.ohr", tmp_path / "ck-full"), env=env,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    assert ohr.read_header(tmp_path / "int.ohr")["training"]["complete"]
    assert ohr_sections(tmp_path / "int.ohr") == ohr_sections(tmp_path / "full.ohr")
