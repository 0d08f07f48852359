"""Start-up of the command line: a command loads only what it uses.

``neocli detect`` runs once per file in shell loops, so its start-up is part of its speed
(README "Anomaly detection"); these tests keep the training, RL and Dask code, the optional
heavy dependencies out of it, and check that the shortcut taken for that (registering
only the command being run) changes nothing a user sees.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


import neocli.cli
from neocli.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[1]
#: Never needed to score one CSV file with Unix-second timestamps.
HEAVY = ["dask", "distributed", "river", "gymnasium", "matplotlib", "dateutil",
         "neocli.training", "neocli.rl", "neocli.distributed", "neocli.image_encoder", "tqdm"]


def _loaded_after(code: str) -> list[str]:
    """The HEAVY modules in sys.modules after running ``code`` in a fresh interpreter."""
    probe = code + f"\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_registering_detect_imports_no_heavy_module():
    assert _loaded_after("import neocli.cli\nneocli.cli.register('detect')") == []


def test_a_real_detect_run_imports_no_heavy_module(tmp_path):
    data = tmp_path / "s.csv"
    data.write_text("timestamp,value\n" + "".join(f"{1700000000 + 60 * i},{i % 7}\n" for i in range(60)))
    out = tmp_path / "o.csv"
    argv = ["neocli", "detect", str(data), "--columns", "value", "--time-column", "timestamp", "--threads", "1",
            "--quiet", "-o", str(out)]
    code = (f"import sys\nsys.argv = {argv!r}\nfrom neocli.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n")
    assert _loaded_after(code) == []
    assert len(out.read_text().splitlines()) == 61  # the header and one row per input row


def test_the_heavy_modules_are_seen_when_they_are_loaded():
    # The probe itself can fail: registering every command does load the training code.
    loaded = _loaded_after("import neocli.cli\nneocli.cli.register()")
    assert "neocli.training" in loaded and "neocli.rl" in loaded


def test_a_command_is_registered_when_first_looked_up():
    # In a fresh interpreter: nothing is registered on import, --version registers nothing,
    # and invoking a command (as CliRunner does, without neocli.cli.main) registers it alone.
    code = ("import json, sys\nfrom typer.testing import CliRunner\nfrom neocli.cli.app import app\n"
            "def cmds():\n    return sorted(m for m in sys.modules if m.startswith('neocli.cli.') and m[11] != '_'"
            " and m != 'neocli.cli.app')\n"
            "seen = [cmds()]\nr = CliRunner().invoke(app, ['--version'])\nassert r.exit_code == 0, r.output\n"
            "seen.append(cmds())\nr = CliRunner().invoke(app, ['eval', '--help'])\nassert r.exit_code == 0, r.output\n"
            "seen.append(cmds())\nr = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
            "seen.append(cmds())\nprint(json.dumps(seen))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    before, after_version, after_eval, after_help = json.loads(r.stdout.strip().splitlines()[-1])
    assert before == [] and after_version == [] and after_eval == ["neocli.cli.eval"]
    assert {f"neocli.cli.{m}" for m in neocli.cli.COMMANDS.values()} <= set(after_help)


def test_commands_names_every_registered_command():
    neocli.cli.register()
    app = cli_app.app
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == set(neocli.cli.COMMANDS)


def test_version_alone_needs_no_command():
    r = subprocess.run([sys.executable, "-m", "neocli", "--version"], capture_output=True, text=True, timeout=120,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and r.stdout.startswith("neocli ")
