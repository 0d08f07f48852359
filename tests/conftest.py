"""Shared fixtures and helpers, and the suite's skip policy.

Thread counts are set explicitly in every test (decisions D15). Helpers several test
files need live here; import them with ``from conftest import ...`` (pytest puts
``tests/`` on ``sys.path``).

Skips: every skip must say why. With ``NEOCLI_FAIL_ON_SKIP=1`` (``.ci/run`` sets it)
a skipped test fails the run unless the test is marked
``@pytest.mark.allowed_skip("why this may skip in CI")``.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import neocli as neo
from neocli import ohr

pytest_plugins = ["pytester"]  # tests/test_suite_policy.py runs the skip policy on a scratch suite

#: The repository root (the directory holding ``neocli/`` and ``tests/``).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: ``seed_state(12345)``: the process-wide generator's state at import (algorithm §4).
DEFAULT_STATE = 2454684463487790647
#: The command line as a subprocess sees it.
NEOCLI = [sys.executable, "-m", "neocli"]


def subprocess_env(*extra_paths: str, **overrides: str) -> dict[str, str]:
    """The environment for a Python subprocess that must import this checkout's neocli.

    The repository (then ``extra_paths``) goes first on ``PYTHONPATH``, whatever was
    there stays behind it; kernels run on one thread unless ``overrides`` say
    otherwise.
    """
    env = dict(os.environ)
    paths = [REPO, *extra_paths] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["OMP_NUM_THREADS"] = "1"
    env.update(overrides)
    return env


def ohr_sections(source) -> dict[str, bytes]:
    """Each section's bytes of an ``.ohr`` file (a path) or of ``.ohr`` bytes, every CRC checked.

    Compares models independently of header timestamps (decisions D6).
    """
    if isinstance(source, (bytes, bytearray, memoryview, np.ndarray)):
        _, secs = ohr.decode(source, verify=True)
    else:
        _, secs = ohr.read_file(str(source), verify=True)
    return {s: ohr.section_bytes(v) for s, v in secs.items()}


def state_bytes(model) -> bytes:
    """``serialize_state_to_buffer()`` as bytes."""
    return model.serialize_state_to_buffer().tobytes()


def weights_bytes(model) -> bytes:
    """``serialize_weights_to_buffer()`` as bytes."""
    return model.serialize_weights_to_buffer().tobytes()


def small_hierarchy(seed: int | None = None, io=(2, 2, 8), hidden=(3, 3, 8), radius: int | None = None,
                    steps: int = 0) -> neo.Hierarchy:
    """A one-layer hierarchy with one prediction port, built after ``set_global_state(seed)``
    (when given), optionally with every radius set to ``radius``, then stepped ``steps``
    times on a fixed pattern (column ``c`` of step ``t`` gets ``(t * (2c + 1)) % Z``)."""
    if seed is not None:
        neo.set_global_state(seed)
    r = {} if radius is None else {"up_radius": radius, "down_radius": radius}
    h = neo.Hierarchy([neo.IODesc(io, neo.prediction, **r)], [neo.LayerDesc(hidden, **r)])
    cols = np.arange(io[0] * io[1])
    for t in range(steps):
        h.step([(t * (2 * cols + 1)) % io[2]])
    return h


@pytest.fixture(autouse=True)
def _one_thread_and_fresh_rng():
    """Each test starts on one thread and from the default global state."""
    neo.set_num_threads(1)
    neo.set_global_state(DEFAULT_STATE)
    yield
    neo.set_num_threads(1)


# ---------------------------------------------------------------- skip policy

def pytest_configure(config):
    config.addinivalue_line("markers", "allowed_skip(reason): this test may skip even under NEOCLI_FAIL_ON_SKIP")
    config._neocli_skips = []


def pytest_collection_modifyitems(config, items):
    """Skip oracle tests cleanly when pyaogmaneo is not installed."""
    try:
        import pyaogmaneo  # noqa: F401
    except ImportError:
        skip = pytest.mark.skip(reason="pyaogmaneo==2.14.4 (the oracle) is not installed")
        for item in items:
            if "oracle" in item.keywords:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        allowed = item.get_closest_marker("allowed_skip") is not None
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if not allowed:
            item.config._neocli_skips.append((item.nodeid, reason))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skips = getattr(config, "_neocli_skips", [])
    if skips and _fail_on_skip():
        terminalreporter.section("unexpected skips (NEOCLI_FAIL_ON_SKIP=1)")
        for nodeid, reason in skips:
            terminalreporter.line(f"{nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if getattr(session.config, "_neocli_skips", []) and _fail_on_skip() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _fail_on_skip() -> bool:
    return os.environ.get("NEOCLI_FAIL_ON_SKIP", "") not in ("", "0")
