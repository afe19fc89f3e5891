"""The project's test runs: pytest for our suite, regrtest for CPython's."""

import os
import subprocess
import sys

from pep522 import config, steps, venvs

IGNORE_FILE = config.ROOT / "tests" / "regrtest-ignore.txt"

# The test modules the series changes, and the classes it adds to them: a
# skip of one of those is a PEP 522 check that did not run.
TOUCHED_TESTS = ["test_os", "test_secrets", "test_random"]
PEP522_TEST_CLASSES = [
    "URandomNotReadyTests", "URandomFallbackTests", "StartupNotReadyTests",
    "WaitForSystemRNG_Tests", "TokenBytesWait_Tests", "KernelNotReady_Tests",
    "TestSystemRNGNotReady",
]
# Lib/test/support/rng_helper.py: where its seccomp filter cannot be used,
# fail rather than skip.  Our own runs always set it.
REQUIRE_FILTER = {"PYTHONTEST_REQUIRE_RNG_FILTER": "1"}


def pytest_command():
    """A Python that has pytest: this one, or a venv made for the tests."""
    check = [sys.executable, "-c", "import pytest"]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return [sys.executable, "-m", "pytest"]
    python = venvs.ensure(sys.executable, config.BUILD / "venv-tests",
                          requirements("test"), "pytest",
                          config.BUILD / "logs" / "venv-tests.log")
    return [str(python), "-m", "pytest"]


def requirements(extra):
    """The optional dependencies *extra* from pyproject.toml."""
    import tomllib
    with open(config.ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return project["optional-dependencies"][extra]


def run_pytest(target, args=()):
    env = {**os.environ, "PEP522_VERSION": target.release.version}
    command = [*pytest_command(), "-ra", str(config.ROOT / "tests"), *args]
    return subprocess.run(command, cwd=config.ROOT, env=env).returncode


def ignored_tests(path=IGNORE_FILE):
    """The regrtest patterns in the ignore file, without their reasons."""
    patterns = []
    for line in path.read_text().splitlines():
        pattern = line.split("#", 1)[0].strip()
        if pattern:
            patterns.append(pattern)
    return patterns


def pep522_test_lines(log, outcome):
    """The lines of a verbose (-v) regrtest *log* where a test of the
    series' test classes ended with *outcome* ("ok", "skipped", ...)."""
    text = log.read_text(errors="replace")
    return [line.strip() for line in text.splitlines()
            if f"... {outcome}" in line
            and any(f".{name}" in line for name in PEP522_TEST_CLASSES)]


def skipped_pep522_tests(log):
    """The lines of a verbose (-v) regrtest *log* where one of the series'
    test classes, or one of its tests, was skipped."""
    return pep522_test_lines(log, "skipped")


def regrtest(target, tests, log, extra=(), env=None, wrap=None, where=""):
    """Run CPython's regrtest on *target*; return its exit status.

    *env* adds to the environment; *wrap* turns the command into the one
    to run (e.g. inside a chroot, described by *where*).
    """
    ignores = [arg for p in ignored_tests() for arg in ("--ignore", p)]
    command = [target.python, "-m", "test", *extra, *ignores, *tests]
    if wrap:
        command = wrap(command)
    with steps.Step(f"regrtest: {target.name}{where} "
                    f"{' '.join(tests) or 'all'}", log) as step:
        status = step.run(command, check=False, env=env)
        summary = [line for line in steps.tail(log, 12).splitlines()
                   if line.startswith(("Result:", "Total", "Tests result"))]
        for line in summary:
            steps.say("  " + line)
        if status:
            step.fail(f"regrtest exited with status {status}")
    return status
