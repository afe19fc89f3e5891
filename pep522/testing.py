"""The project's test runs: pytest for our suite, regrtest for CPython's."""

import os
import subprocess
import sys

from pep522 import config, steps, venvs

IGNORE_FILE = config.ROOT / "tests" / "regrtest-ignore.txt"


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


def regrtest(target, tests, log, extra=(), env=None):
    """Run CPython's regrtest on *target*; return its exit status.

    *env*: variables to add to the environment (a sanitizer's options).
    """
    ignores = [arg for p in ignored_tests() for arg in ("--ignore", p)]
    command = [target.python, "-m", "test", *extra, *ignores, *tests]
    with steps.Step(f"regrtest: {target.name} {' '.join(tests) or 'all'}",
                    log) as step:
        status = step.run(command, check=False, env=env)
        summary = [line for line in steps.tail(log, 12).splitlines()
                   if line.startswith(("Result:", "Total", "Tests result"))]
        for line in summary:
            steps.say("  " + line)
        if status:
            step.fail(f"regrtest exited with status {status}")
    return status
