"""The CLI side of the reliability rules (README "Reliability": outputs, inputs, checkpoints,
signals): one or more tests per defect of the new-user trial, driven as a user would.

Library-level tests of the same rules are in tests/test_reliability_lib.py and
tests/test_reliability_codecs.py; these check what a user sees: exit codes, messages,
files left behind. Tiny architectures keep the file fast.
"""
from __future__ import annotations

import gzip
import json
import os
import platform
import pty
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neocli import checkpoints, memory, ohr, training
from neocli.cli.app import app
import neocli.cli

neocli.cli.register()  # every command on the shared app

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("the cat sat on the mat. the dog sat on the log.\n" * 6).encode()
TINY = ["--hidden", "2x2x8", "--layers", "1", "--quiet"]


def run(*args, input=None):
    """The CLI in-process; stdout and stderr apart."""
    return CliRunner().invoke(app, [a if isinstance(a, str) else os.fsdecode(a) for a in args], input=input,
                              catch_exceptions=False)


def cli(*args, **kw):
    """The CLI in a subprocess (``python -m neocli``), for signals, terminals and byte names."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **kw.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "neocli", *args], env=env, **kw)


def cli_run(*args, timeout=60, **kw):
    p = cli(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err.decode("utf-8", "replace")


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "data.txt"
    p.write_bytes(TEXT)
    return p


def arrays(path):
    _, secs = ohr.read_file(path)
    return {k: {n: a.tobytes() for n, a in v.items()} for k, v in secs.items() if k != "state"}


def model_bytes_ok(path):
    return ohr.read_header(path)["training"]["complete"] is True


# --------------------------------------------------------------------------- 1. what -o accepts


def test_01_output_device_and_directory_refused_before_training(tmp_path, data):
    for target in ("/dev/null", str(tmp_path)):
        r = run("train", data, "-o", target, *TINY)
        assert r.exit_code == 2, r.stderr
        assert "not a regular file" in r.stderr and "saved" not in r.stderr
    assert os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_01_output_symlink_is_written_through(tmp_path, data):
    target = tmp_path / "real.ohr"
    link = tmp_path / "link.ohr"
    link.symlink_to(target.name)
    assert run("train", data, "-o", link, *TINY).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == "real.ohr"
    assert model_bytes_ok(target)


def test_01_output_fifo_receives_the_model_as_a_stream(tmp_path, data):
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    got = {}

    def reader():
        with open(fifo, "rb") as f:
            got["bytes"] = f.read()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert run("train", data, "-o", fifo, *TINY).exit_code == 0
    t.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a FIFO, not replaced by a file
    header, _ = ohr.decode(got["bytes"])
    assert header["training"]["complete"] is True


# --------------------------------------------------------------------------- 2. rotation


def test_02_runs_sharing_a_checkpoint_dir_keep_their_own_checkpoints(tmp_path, data):
    d = tmp_path / "ck"
    for out in ("a.ohr", "b.ohr"):
        r = run("train", data, "-o", tmp_path / out, "--epochs", "3", "--checkpoint-dir", d,
                "--checkpoint-every", "100", "--keep", "2", *TINY)
        assert r.exit_code == 0, r.stderr
    by_run = {}
    for c in checkpoints.list_checkpoints(str(d)):
        by_run.setdefault(c.run_id, []).append(c)
    runs = {ohr.read_header(tmp_path / o)["training"]["run_id"] for o in ("a.ohr", "b.ohr")}
    assert set(by_run) == runs  # the second run left the first run's checkpoints alone
    assert all(len(v) == 2 for v in by_run.values())
    for rid, cs in by_run.items():
        assert all(c.name.startswith(f"ckpt-{rid}-") for c in cs)


# --------------------------------------------------------------------------- 3. output = input


@pytest.mark.parametrize("how", ["same", "link", "dotdot", "hardlink"])
def test_03_output_that_is_the_data_is_refused_before_reading(tmp_path, data, how):
    out = {"same": data, "dotdot": tmp_path / "sub" / ".." / data.name}.get(how)
    (tmp_path / "sub").mkdir()
    if how == "link":
        out = tmp_path / "alias.txt"
        out.symlink_to(data)
    if how == "hardlink":
        out = tmp_path / "hard.txt"
        os.link(data, out)
    r = run("train", data, "-o", out, *TINY)
    assert r.exit_code == 2 and "input file" in r.stderr, r.stderr
    assert data.read_bytes() == TEXT


# --------------------------------------------------------------------------- 4. token ids


def test_04_token_id_beyond_the_limit_is_refused_naming_line_and_limit(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("1 2 3\n4 99999999999999999999999 5\n")
    r = run("train", p, "-o", tmp_path / "m.ohr", "--codec", "tokens", *TINY)
    assert r.exit_code == 1 and ":2:" in r.stderr and "16777215" in r.stderr, r.stderr
    assert not (tmp_path / "m.ohr").exists()


# --------------------------------------------------------------------------- 5. pipes as data


def _feed_fifo(path, payload, times):
    def w():
        for _ in range(times):
            with open(path, "wb") as f:
                f.write(payload)
    t = threading.Thread(target=w, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("extra", [["--epochs", "2"], ["--codec", "chars"], []])
def test_05_fifo_data_streams_like_stdin(tmp_path, data, extra):
    ref = tmp_path / "ref.ohr"
    assert run("train", data, "-o", ref, *TINY, *extra).exit_code == 0
    fifo = tmp_path / "data.fifo"
    os.mkfifo(fifo)
    _feed_fifo(fifo, TEXT, 1)  # written once: a second open would block forever
    code, _, err = cli_run("train", str(fifo), "-o", str(tmp_path / "f.ohr"), *TINY, *extra, timeout=60)
    assert code == 0, err
    assert arrays(tmp_path / "f.ohr") == arrays(ref)


def test_05_process_substitution(tmp_path, data):
    ref = tmp_path / "ref.ohr"
    assert run("train", data, "-o", ref, "--epochs", "2", *TINY).exit_code == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = f'"{sys.executable}" -m neocli train <(cat "{data}") -o "{tmp_path}/p.ohr" --epochs 2 ' + " ".join(TINY)
    p = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert arrays(tmp_path / "p.ohr") == arrays(ref)


# --------------------------------------------------------------------------- 6. memory


def test_06_model_larger_than_memory_is_refused_before_reading_unless_forced(tmp_path, data, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)
    r = run("train", data, "-o", tmp_path / "m.ohr", "--hidden", "8x8x32", "--quiet")
    assert r.exit_code == 1 and "memory" in r.stderr and "--force" in r.stderr, r.stderr
    assert not (tmp_path / "m.ohr").exists()
    r = run("train", data, "-o", tmp_path / "m.ohr", "--hidden", "8x8x32", "--quiet", "--force")
    assert r.exit_code == 0, r.stderr


# --------------------------------------------------------------------------- 7. file names


def test_07_names_that_are_not_utf8_work(tmp_path):
    d = os.fsencode(tmp_path) + b"/d\xff\xfe.txt"
    m = os.fsencode(tmp_path) + b"/m\xe9.ohr"
    with open(d, "wb") as f:
        f.write(TEXT)
    p = subprocess.run([sys.executable, "-m", "neocli", "train", d, "-o", m, *TINY], capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, timeout=60)
    assert p.returncode == 0, p.stderr
    assert ohr.read_header(m)["training"]["complete"] is True
    p = subprocess.run([sys.executable, "-m", "neocli", "eval", m, d], capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, timeout=60)
    assert p.returncode == 0 and b"accuracy" in p.stdout, p.stderr


def test_07_every_path_is_checked_before_work(tmp_path, data):
    r = run("train", data, tmp_path / "missing.txt", "-o", tmp_path / "m.ohr", *TINY)
    assert r.exit_code == 1 and "missing.txt" in r.stderr
    r = run("train", data, "-o", tmp_path / "nodir" / "m.ohr", *TINY)
    assert r.exit_code == 1 and "does not exist" in r.stderr


# --------------------------------------------------------------------------- 8. option checks


@pytest.mark.parametrize("rng", ["-inf:5", "nan:1", "0:inf", "3:1"])
def test_08_non_finite_csv_range_is_a_usage_error_before_reading(tmp_path, rng):
    r = run("train", tmp_path / "never-read.csv", "-o", tmp_path / "m.ohr", "--codec", "csv", "--csv-range", rng)
    assert r.exit_code == 2 and "--csv-range" in r.stderr, r.stderr


# --------------------------------------------------------------------------- 9. interrupted -o


def _interrupted_model(path, data):
    res = training.train([str(data)], training.TrainOptions(architecture=training.Architecture(hidden="2x2x8",
                                                                                               layers=1)))
    res.record["complete"] = False
    res.record["position"] = 10
    training.save_model(path, res.model, res.codec, res.record)


def test_09_interrupted_model_at_output_is_not_replaced_silently(tmp_path, data):
    out = tmp_path / "m.ohr"
    _interrupted_model(out, data)
    before = out.read_bytes()
    r = run("train", data, "-o", out, *TINY)
    assert r.exit_code == 1 and f"--resume '{out}' -o '{out}'" in r.stderr and "--force" in r.stderr, r.stderr
    assert out.read_bytes() == before
    assert run("train", data, "-o", out, *TINY, "--force").exit_code == 0
    assert model_bytes_ok(out)


# --------------------------------------------------------------------------- 10. prune


def test_10_prune_leaves_finished_models_and_other_runs(tmp_path, data):
    d = tmp_path / "ck"
    d.mkdir()
    assert run("train", data, "-o", d / "final.ohr", "--epochs", "3", "--checkpoint-dir", d,
               "--checkpoint-every", "100", *TINY).exit_code == 0
    before = {c.name for c in checkpoints.list_checkpoints(str(d)) if c.is_checkpoint}
    assert len(before) >= 3
    r = run("checkpoint", "prune", d, "--keep", "1")
    assert r.exit_code == 0, r.stderr
    left = sorted(os.listdir(d))
    assert "final.ohr" in left and len([n for n in left if n.startswith("ckpt-")]) == 1
    assert max(before) in left  # the newest


# --------------------------------------------------------------------------- 11, 12, 22. signals


def _wait_for(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def _start_blocked_on_stdin(tmp_path, stdin, feed):
    """A training run reading a stdin that stays open, stopped in the loop (a checkpoint exists)."""
    d = tmp_path / "ck"
    p = cli("train", "-", "-o", str(tmp_path / "m.ohr"), "--checkpoint-dir", str(d), "--checkpoint-every", "50",
            *TINY, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feed()
    assert _wait_for(lambda: d.is_dir() and any(n.endswith(".ohr") for n in os.listdir(d))), "never started"
    _wait_until_blocked(p.pid, quiet=0.5)  # now blocked reading stdin, waiting for more
    return p, d


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_11_sigterm_and_sighup_write_a_checkpoint(tmp_path, sig, code):
    r, w = os.pipe()
    p, d = _start_blocked_on_stdin(tmp_path, r, lambda: os.write(w, TEXT[:120]))
    os.close(r)
    try:
        p.send_signal(sig)
        out, err = p.communicate(timeout=10)
    finally:
        os.close(w)
    err = err.decode()
    assert p.returncode == code, err
    ck = re.search(r"--resume (\S+) -o (\S+)", err)
    assert ck and ck.group(2) == str(tmp_path / "m.ohr"), err  # 22: the hint has the -o it needs
    header = ohr.read_header(ck.group(1))
    assert header["training"]["complete"] is False and header["training"]["steps"] == 120


def test_12_ctrl_c_while_reading_a_terminal_stops_promptly(tmp_path):
    master, slave = pty.openpty()
    try:
        p, d = _start_blocked_on_stdin(tmp_path, slave, lambda: os.write(master, TEXT[:120]))
        p.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        out, err = p.communicate(timeout=10)
        assert p.returncode == 130 and time.monotonic() - t0 < 10, err
        assert b"interrupted: checkpoint written" in err
    finally:
        os.close(master)
        os.close(slave)


def test_22_epoch_numbers_agree_between_messages_names_and_inspect(tmp_path, data):
    d = tmp_path / "ck"
    p = cli("train", "-", "-o", str(tmp_path / "m.ohr"), "--checkpoint-dir", str(d), "--checkpoint-every", "50",
            *TINY, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(TEXT[:120])
    p.stdin.flush()
    assert _wait_for(lambda: d.is_dir() and any(n.endswith(".ohr") for n in os.listdir(d)))
    _wait_until_blocked(p.pid, quiet=0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=10)
    err = err.decode()
    m = re.search(r"checkpoint written to '(\S+)' \(epoch (\d+), (\d+) steps\)", err)
    assert m, err
    name_epoch = int(re.search(r"-e(\d+)-s", m.group(1)).group(1))
    r = run("inspect", m.group(1))
    assert f"resumable at epoch {m.group(2)}," in r.stdout
    assert name_epoch == int(m.group(2)) == 1


def test_22_options_given_with_resume_equal_accepted_conflicting_refused(tmp_path, data):
    ck = tmp_path / "ck.ohr"
    _interrupted_model(ck, data)
    r = run("train", data, "--resume", ck, "-o", tmp_path / "a.ohr", "--reset-on", "blank", "--quiet")
    assert r.exit_code == 1 and "reset" in r.stderr, r.stderr
    r = run("train", data, "--resume", ck, "-o", tmp_path / "b.ohr", "--seed", "7", "--quiet")
    assert r.exit_code == 1 and "seed" in r.stderr, r.stderr
    r = run("train", data, "--resume", ck, "-o", tmp_path / "c.ohr", "--reset-on", "file", "--hidden", "2x2x8",
            "--quiet")
    assert r.exit_code == 0, r.stderr


# --------------------------------------------------------------------------- 13. spooled stdin


def test_13_spooled_stdin_leaks_nothing_and_messages_say_stdin(tmp_path, monkeypatch):
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(spool))
    r = run("train", "-", "-o", tmp_path / "m.ohr", "--codec", "tokens", "--epochs", "2", *TINY,
            input=b"1 2 3\n4 x 5\n")
    assert r.exit_code == 1 and "<stdin>" in r.stderr and str(spool) not in r.stderr, r.stderr
    assert os.listdir(spool) == []


# --------------------------------------------------------------------------- 14. words codec speed


def test_14_words_on_text_without_whitespace_trains(tmp_path):
    # The linear-time reader is measured in benchmarks/bench_codecs.py and checked at library
    # level (tests/test_reliability_codecs.py); here: a long CJK run goes through the CLI.
    p = tmp_path / "cjk.txt"
    p.write_text("\u4e2d\u6587" * 50000, encoding="utf-8")
    t0 = time.monotonic()
    r = run("train", p, "-o", tmp_path / "m.ohr", "--codec", "words", *TINY)
    assert r.exit_code == 0, r.stderr
    assert time.monotonic() - t0 < 20


# --------------------------------------------------------------------------- 15. <unk>


def test_15_eval_scores_and_reports_unseen_characters(tmp_path, data):
    m = tmp_path / "m.ohr"
    assert run("train", data, "-o", m, "--codec", "chars", *TINY).exit_code == 0
    held = tmp_path / "held.txt"
    held.write_text("the cat sat on the mat. QXZ\n")
    r = run("eval", m, held, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["unknown"] == 3
    r = run("eval", m, held)
    assert "3 unknown" in r.stdout


# --------------------------------------------------------------------------- 16. decoding


def test_16_compressed_input_decompressed_unless_told_not_to(tmp_path, data):
    gz = tmp_path / "data.txt.gz"
    gz.write_bytes(gzip.compress(TEXT))
    raw = tmp_path / "raw.bin"
    raw.write_bytes(gz.read_bytes())
    for args, ref in (((gz,), data), ((gz, "--no-decompress"), raw)):
        assert run("train", ref, "-o", tmp_path / "ref.ohr", *TINY).exit_code == 0
        r = run("train", *args, "-o", tmp_path / "z.ohr", *TINY)
        assert r.exit_code == 0, r.stderr
        assert arrays(tmp_path / "z.ohr") == arrays(tmp_path / "ref.ohr")


def _eval_json(*args, input=None):
    r = run("eval", *args, "--json", input=input)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    for k in ("symbols_per_s", "data", "partial"):
        out.pop(k)
    return out


def test_16_eval_of_compressed_input_gives_bits_per_byte_of_the_data(tmp_path, data):
    # bits/byte counts the bytes of the data the codec read, decompressed: a compressed
    # file scores exactly as its plain copy, stdin too; --no-decompress scores the raw bytes.
    import bz2
    import lzma

    import zstandard

    m = tmp_path / "m.ohr"
    assert run("train", data, "-o", m, *TINY).exit_code == 0
    plain = _eval_json(m, data)
    assert plain["bits_per_byte"] == pytest.approx(plain["bits_per_symbol"] * plain["scored"] / len(TEXT))
    for ext, pack in ((".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress),
                      (".zst", zstandard.ZstdCompressor().compress)):
        z = tmp_path / f"data.txt{ext}"
        z.write_bytes(pack(TEXT))
        assert _eval_json(m, z) == plain, ext
        r = run("eval", m, z)
        assert f"bits/byte {plain['bits_per_byte']:.3f}" in r.stdout, (ext, r.stdout)
    assert _eval_json(m, "-", input=TEXT) == plain  # streamed stdin: no size known in advance either
    raw = _eval_json(m, z, "--no-decompress")
    assert raw["symbols"] == z.stat().st_size
    assert raw["bits_per_byte"] == pytest.approx(raw["bits_per_symbol"] * raw["scored"] / z.stat().st_size)


def test_16_csv_eval_from_stdin_and_gz_equals_the_file(tmp_path):
    # Text codecs wrap the counted stream in io.TextIOWrapper (this crashed with a traceback
    # for a streamed stdin before).
    csv = tmp_path / "s.csv"
    body = "x\n" + "".join(f"{(7 * k) % 13}\n" for k in range(60))
    csv.write_text(body)
    m = tmp_path / "m.ohr"
    assert run("train", csv, "-o", m, "--codec", "csv", *TINY).exit_code == 0
    plain = _eval_json(m, csv)
    assert plain["bits_per_byte"] == pytest.approx(plain["bits_per_symbol"] * plain["scored"] / len(body))
    assert _eval_json(m, "-", input=body.encode()) == plain
    gz = tmp_path / "s.csv.gz"
    gz.write_bytes(gzip.compress(body.encode()))
    assert _eval_json(m, gz) == plain


def test_16_encoding_flag(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1") * 5)
    r = run("train", p, "-o", tmp_path / "m.ohr", "--codec", "chars", *TINY)
    assert r.exit_code == 1 and "--encoding" in r.stderr or "encoding" in r.stderr, r.stderr
    r = run("train", p, "-o", tmp_path / "m.ohr", "--codec", "chars", "--encoding", "latin-1", *TINY)
    assert r.exit_code == 0, r.stderr
    assert ohr.read_header(tmp_path / "m.ohr")["codec"]["encoding"] == "latin-1"
    r = run("train", p, "-o", tmp_path / "m2.ohr", "--encoding", "no-such-codec", *TINY)
    assert r.exit_code == 2


# --------------------------------------------------------------------------- 17. eval interrupted


def _cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _reading_stdin(pid):
    """True when the process's main thread sits in read(0, ...) or, on a machine where
    /proc/PID/syscall cannot be read or the read syscall's number is not known, when it
    is asleep."""
    read_nr = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())
    try:
        if read_nr is None:
            raise OSError("unknown read syscall number")
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
        return len(fields) > 1 and fields[0] == read_nr and int(fields[1], 16) == 0
    except (OSError, ValueError):
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "S"


def _wait_until_blocked(pid, quiet=1.0, timeout=60.0):
    """Wait until the process is blocked reading stdin and has used no CPU for ``quiet``
    seconds (so it has consumed what it was given): a fixed sleep is too short on a loaded
    machine, and a quiet CPU alone could be a process starved of a core or waiting on disk."""
    end = time.monotonic() + timeout
    last, since = _cpu_ticks(pid), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        now = _cpu_ticks(pid)
        if now != last or not _reading_stdin(pid):
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet and now > 0:
            return
    raise AssertionError("the process never settled in a read of stdin")


def test_17_eval_ctrl_c_prints_the_metrics_so_far(tmp_path, data):
    m = tmp_path / "m.ohr"
    assert run("train", data, "-o", m, *TINY).exit_code == 0
    p = cli("eval", str(m), "-", "--json", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(TEXT * 20)
    p.stdin.flush()
    _wait_until_blocked(p.pid)  # imported, loaded and scored what it was given; now waiting for more
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 130, err
    got = json.loads(out)
    assert got["partial"] is True and got["symbols"] == len(TEXT) * 20 and got["accuracy"] is not None


# --------------------------------------------------------------------------- 18. CSV


def test_18_csv_delimiter_missing_policy_counts_and_header_prompt(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a;b\n" + "".join(f"{i % 5};{(i * 3) % 7}\n" for i in range(40)) + "NA;1\n2;\n")
    m = tmp_path / "m.ohr"
    r = run("train", p, "-o", m, "--codec", "csv", "--csv-delimiter", ";", "--hidden", "2x2x8", "--layers", "1")
    assert r.exit_code == 0, r.stderr
    assert "skipped rows 2" in r.stderr and "missing cells 2" in r.stderr
    r = run("train", p, "-o", tmp_path / "e.ohr", "--codec", "csv", "--csv-delimiter", ";", "--csv-missing",
            "error", *TINY)
    assert r.exit_code == 1 and "line 42" in r.stderr, r.stderr
    r = run("train", p, "-o", tmp_path / "x.ohr", "--codec", "csv", "--csv-missing", "drop", *TINY)
    assert r.exit_code == 2 and "--csv-missing" in r.stderr
    r = run("generate", m, "--prompt", "a;b\n1;2\n", "--length", "2")
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 2, r.stderr


# --------------------------------------------------------------------------- 19. --plot


def test_19_rl_plot_path_is_checked_before_training(tmp_path):
    pytest.importorskip("gymnasium", reason="rl needs gymnasium")
    t0 = time.monotonic()
    r = run("rl", "train", "--env", "CartPole-v1", "-o", tmp_path / "a.ohr", "--plot", tmp_path / "no" / "c.png")
    assert r.exit_code in (1, 2) and "c.png" in r.stderr, r.stderr
    assert not (tmp_path / "a.ohr").exists() and time.monotonic() - t0 < 10


# --------------------------------------------------------------------------- 20. merge errors


def test_20_merge_error_is_short(tmp_path, data):
    a, b = tmp_path / "a.ohr", tmp_path / "b.ohr"
    assert run("train", data, "-o", a, "--codec", "chars", *TINY).exit_code == 0
    assert run("train", data, "-o", b, "--hidden", "3x3x8", "--layers", "1", "--quiet").exit_code == 0
    r = run("checkpoint", "merge", a, b, "-o", tmp_path / "c.ohr")
    assert r.exit_code != 0
    assert max(len(line) for line in r.stderr.splitlines()) < 600, r.stderr


# --------------------------------------------------------------------------- 21. models through pipes


def test_21_models_pipe_through_stdout_and_stdin(tmp_path, data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("train", data, "-o", "-", *TINY)
    assert r.exit_code == 0, r.stderr
    assert not os.path.exists(tmp_path / "-")
    model = r.stdout_bytes
    header, _ = ohr.decode(model)
    assert header["training"]["complete"] is True
    (tmp_path / "m.ohr").write_bytes(model)
    for cmd in (["generate", "-", "--prompt", "the ", "--length", "5"], ["inspect", "-"]):
        r1, r2 = run(*cmd, input=model), run(*[("m.ohr" if a == "-" else a) for a in cmd])
        assert r1.exit_code == 0, r1.stderr
        assert r1.stdout.replace("-", "m.ohr", 1) == r2.stdout or cmd[0] == "inspect"
    r = run("eval", "-", data, "--json", input=model)
    assert r.exit_code == 0 and json.loads(r.stdout)["symbols"] == len(TEXT)
    r = run("eval", "-", "-", input=model)
    assert r.exit_code == 2 and "stdin" in r.stderr


# --------------------------------------------------------------------------- 23. seeds and tiny sizes


@pytest.mark.parametrize("seed", ["-1", str(2**64), "x"])
def test_23_out_of_range_seed_is_a_usage_error(tmp_path, data, seed):
    r = run("train", data, "-o", tmp_path / "m.ohr", "--seed", seed, *TINY)
    assert r.exit_code == 2 and not (tmp_path / "m.ohr").exists()


def test_23_tiny_hidden_size_trains_and_generates(tmp_path, data):
    m = tmp_path / "m.ohr"
    r = run("train", data, "-o", m, "--hidden", "1x1x2", "--layers", "1", "--quiet")
    assert r.exit_code == 0, r.stderr
    r = run("generate", m, "--prompt", "the", "--length", "5", "--temperature", "1e-30")
    assert r.exit_code == 0 and len(r.stdout_bytes) == 5


# --------------------------------------------------------------------------- 24. -h, --debug, completion


def test_24_help_alias_debug_anywhere_and_completion():
    from neocli.cli.app import hoist_debug

    for args in (["-h"], ["train", "-h"], ["eval", "-h"]):
        r = run(*args)
        assert r.exit_code == 0 and "Usage" in r.stdout
    assert hoist_debug(["train", "x", "--debug", "--", "--debug"]) == ["--debug", "train", "x", "--", "--debug"]
    code, out, err = cli_run("train", "/nonexistent/data", "-o", "/tmp/never.ohr", "--debug")
    assert code == 1 and "Traceback" in err, err
    code, out, err = cli_run("--debug", "train", "/nonexistent/data", "-o", "/tmp/never.ohr")
    assert code == 1 and "Traceback" in err, err
    assert "--install-completion" in run("--help").stdout


# --------------------------------------------------------------------------- 25. help text


@pytest.mark.parametrize("cmd", ["train", "eval", "generate"])
def test_25_help_has_real_metavars_and_groups(cmd):
    r = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for bad in ("<str>", "<int>", "<float>", "<bool>", "<list", " INTEGER ", " FLOAT "):
        assert bad not in r.stdout, (bad, r.stdout)
    panels = re.findall(r"╭─ ([^─]+) ─", r.stdout)
    assert len([p for p in panels if p.strip() not in ("Arguments", "Options")]) >= 2, panels


# --------------------------------------------------------------------------- 26. one rule, no silent surprises


def test_26_eval_metrics_go_to_stdout_in_every_mode(tmp_path, data):
    m = tmp_path / "m.ohr"
    assert run("train", data, "-o", m, *TINY).exit_code == 0
    for extra in ([], ["--json"], ["--learn"], ["--learn", "--json"]):
        r = run("eval", m, data, *extra)
        assert r.exit_code == 0 and "accuracy" in r.stdout and "accuracy" not in r.stderr, (extra, r.stderr)


def test_26_csv_files_with_different_column_counts_name_file_and_line(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("".join(f"{i},{i % 3}\n" for i in range(10)))
    b.write_text("".join(f"{i},{i % 3}\n" for i in range(3)) + "1,2,3\n")
    r = run("train", a, b, "-o", tmp_path / "m.ohr", "--codec", "csv", *TINY)
    assert r.exit_code == 1 and "b.csv" in r.stderr and "line 4" in r.stderr, r.stderr


def test_26_inspect_keeps_one_line_per_value_and_says_when_it_cuts(tmp_path, data):
    m = tmp_path / "m.ohr"
    long = "x" * 500
    assert run("train", data, "-o", m, "--meta", "note=two\nlines", "--meta", f"long={long}", *TINY).exit_code == 0
    out = run("inspect", m).stdout
    user = out[out.index("\nuser\n"):].splitlines()[2:]
    assert len(user) == 2, user
    assert "two\\nlines" in user[0] or "two\\nlines" in user[1]
    assert "more characters" in out and long not in out
    assert json.loads(run("inspect", m, "--json").stdout)["header"]["user"]["long"] == long
