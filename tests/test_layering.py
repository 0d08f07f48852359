"""The layering stays true: import-linter contracts (pyproject.toml), kernels reached only
through the façades, and a CLI of thin commands on the public API only."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "neocli"
CLI = PKG / "cli"
#: The modules that may import the compiled kernels (neocli._core, neocli._image).
FACADES = {"hierarchy.py", "image_encoder.py", "_threads.py", "_model.py", "predictive.py"}
KERNELS = {"_core", "_image", "_predictive"}
MAX_BODY = 40


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _imported_neocli_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every neocli module ``path`` imports, names included
    (``from .. import _core`` gives ``neocli._core``)."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "neocli"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "neocli":
                continue
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is missing: pip install 'neocli[test]' (import-linter)")
    r = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout and "kept" in r.stdout


def test_import_linter_sees_this_checkout():
    # The contracts must be checked on these files, not on another installed copy of neocli.
    r = subprocess.run([sys.executable, "-c", "import grimp, neocli; print(neocli.__file__); "
                        "g = grimp.build_graph('neocli', cache_dir=None); print('neocli.training' in g.modules)"],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       timeout=120)
    assert r.returncode == 0, r.stderr
    path, has_training = r.stdout.splitlines()  # lines: the checkout's path may hold spaces
    assert Path(path).resolve().parent == PKG.resolve() and has_training == "True"


def test_kernels_are_reached_only_through_the_facades():
    offenders = []
    for path in _modules(PKG):
        for line, mod in _imported_neocli_modules(path):
            if mod.split(".")[1:2] and mod.split(".")[1] in KERNELS and path.name not in FACADES:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not offenders, offenders


def test_the_cli_touches_nothing_private_of_the_library():
    offenders = []
    for path in _modules(CLI):
        for line, mod in _imported_neocli_modules(path):
            if not mod.startswith("neocli.cli") and any(_is_private(p) for p in mod.split(".")):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                if owner not in ("self", "cls"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} reads .{node.attr}")
    assert not offenders, offenders


def test_cli_functions_are_short():
    long_ = []
    for path in _modules(CLI):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]  # the docstring is not code
            if body and body[-1].end_lineno - body[0].lineno + 1 > MAX_BODY:
                long_.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: "
                             f"{body[-1].end_lineno - body[0].lineno + 1} lines")
    assert not long_, long_


def test_the_shared_app_imports_no_command():
    commands = {p.stem for p in CLI.glob("*.py")} - {"__init__", "app"}
    imported = {mod.rsplit(".", 1)[-1] for _, mod in _imported_neocli_modules(CLI / "app.py")
                if mod.startswith("neocli.cli.")}
    assert not imported & commands, imported & commands


def test_the_checks_find_what_they_look_for(tmp_path):
    # The AST helpers on a file that breaks every rule (so the tests above can fail).
    bad = CLI / "_layering_probe.py"
    bad.write_text("from .. import _core\nfrom .._errors import NeoError\n\ndef f(h):\n    return h._score\n")
    try:
        mods = [m for _, m in _imported_neocli_modules(bad)]
        assert "neocli._core" in mods and "neocli._errors" in mods
        with pytest.raises(AssertionError, match="reads ._score"):
            test_the_cli_touches_nothing_private_of_the_library()
        with pytest.raises(AssertionError, match="_layering_probe.py:1 imports neocli._core"):
            test_kernels_are_reached_only_through_the_facades()
    finally:
        bad.unlink()


def test_every_library_module_is_under_the_no_cli_contract():
    """A new library module is covered by "the library never imports the CLI" (import-linter
    only checks the modules a contract names), and so is every private one under "the CLI
    imports no private module"."""
    text = (ROOT / "pyproject.toml").read_text()
    contract = text.split('name = "The library never imports the CLI"', 1)[1].split("[[", 1)[0]
    listed = set(re_findall(r'"(neocli[\w.]*)"', contract)) - {"neocli.cli"}
    private = text.split('name = "The CLI imports no private module of the library"', 1)[1].split("[[", 1)[0]
    forbidden = set(re_findall(r'"(neocli\._\w+)"', private))
    modules = {f"neocli.{p.stem}" for p in PKG.glob("*.py") if p.stem not in ("__init__", "__main__")}
    modules |= {f"neocli.{p.name}" for p in PKG.iterdir() if (p / "__init__.py").exists() and p.name != "cli"}
    assert modules - listed == set(), f"add to the no-CLI contract in pyproject.toml: {sorted(modules - listed)}"
    python_private = {m for m in modules if m.split(".")[1].startswith("_")}
    assert python_private - forbidden == set(), f"add to the private-module contract: {sorted(python_private - forbidden)}"


def re_findall(pattern: str, text: str) -> list[str]:
    """``re.findall`` (a helper so the test reads top-down)."""
    import re

    return re.findall(pattern, text)
