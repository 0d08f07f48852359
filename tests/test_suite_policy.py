"""The suite's own rules (conftest.py): slow tests stay out of the default run, and under
``NEOCLI_FAIL_ON_SKIP=1`` (what ``.ci/run`` sets) a skip fails the run unless the test
is marked ``allowed_skip``."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SCRATCH = '''
import pytest

def test_runs():
    assert True

def test_skips_with_a_reason():
    pytest.skip("nothing to test here")

@pytest.mark.allowed_skip("may skip, said so")
def test_may_skip():
    pytest.skip("allowed")
'''


def _run(pytester, *, fail_on_skip: bool, body: str = SCRATCH):
    pytester.makeconftest((HERE / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_scratch=body)
    env = {"NEOCLI_FAIL_ON_SKIP": "1" if fail_on_skip else "0"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_an_unexpected_skip_fails_the_run_under_fail_on_skip(pytester):
    r = _run(pytester, fail_on_skip=True)
    r.assert_outcomes(passed=1, skipped=2)
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    out = r.stdout.str()
    assert "test_skips_with_a_reason: nothing to test here" in out
    assert "test_may_skip: allowed" not in out.split("unexpected skips")[1]


def test_an_allowed_skip_passes_under_fail_on_skip(pytester):
    only_allowed = SCRATCH.split("def test_skips_with_a_reason")[0] + SCRATCH.split('pytest.skip("nothing to test here")')[1]
    r = _run(pytester, fail_on_skip=True, body=only_allowed)
    r.assert_outcomes(passed=1, skipped=1)
    assert r.ret == pytest.ExitCode.OK


def test_slow_tests_are_left_out_of_the_default_run(pytestconfig):
    addopts = pytestconfig.getini("addopts")
    assert "-m" in addopts and addopts[addopts.index("-m") + 1] == "not slow", addopts


def test_ci_runs_the_readme_command_the_slow_tests_and_refuses_skips():
    readme = (HERE.parent / "README.md").read_text(encoding="utf-8")
    ci = (HERE.parent / ".ci" / "run").read_text(encoding="utf-8")
    command = "pip install -e '.[test]' && python -m pytest"
    assert command in readme and command + "\n" in ci
    assert "python -m pytest -m slow" in ci and "NEOCLI_FAIL_ON_SKIP=1" in ci
