"""The project's test runs: pytest for our suite, regrtest for CPython's."""

import dataclasses
import fnmatch
import os
import re
import subprocess
import sys

from pep522 import config, git, steps, venvs
from pep522.release import series

IGNORE_FILE = config.ROOT / "tests" / "regrtest-ignore.txt"

# The test modules the series changes, and those that run the test class
# it adds to Lib/test/_test_multiprocessing.py (TestLazyAuthkey).
# test_uuid has a class of the series from 3.13.6 on (0008 uuid); on
# 3.13.5 it runs as a module the series must not break.
TOUCHED_TESTS = ["test_os", "test_secrets", "test_random", "test_uuid"]
# Classes only the series of some releases add, because only those
# releases have the caller they test: 0008 uuid (gh-135244, 3.13.6 on).
RELEASE_SPECIFIC_CLASSES = {"RNGNotReadyTests"}
AUTHKEY_TESTS = ["test_multiprocessing_spawn",
                 "test_multiprocessing_forkserver"]
# Lib/test/support/rng_helper.py: where its seccomp filter cannot be used,
# fail rather than skip.  regrtest() sets it in every run.
REQUIRE_FILTER = {"PYTHONTEST_REQUIRE_RNG_FILTER": "1"}
# What regrtest's --fast-ci (upstream's CI) stands for in 3.13, spelled
# out (Lib/test/libregrtest/cmdline.py; main.py adds the interpreter's
# options): --fast-ci also implies --verbose3, which drops the output of
# a test file that passed, and with it the lines that say which of the
# series' tests ran, so `make test-full` runs these with -v instead.
FAST_CI_PYTHON = ["-u", "-W", "error", "-bb", "-E"]
FAST_CI = ["-j0", "--randomize", "--fail-env-changed", "--rerun",
           "--slowest", "-u", "all,-cpu", "--timeout=600"]


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
    # tests/conftest.py: the release to test; and a missing build is a
    # failure, since cmd_test has just built both.
    env = {**os.environ, "PEP522_VERSION": target.release.version,
           "PEP522_MAKE_TEST": "1"}
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


# --- The series' tests in Lib/test ------------------------------------------
#
# One definition: the TestCase classes that the series adds to Lib/test
# (its support/ helpers aside), read from the patched tree's history, so
# that the list follows the series; and every regrtest run of the series'
# modules checks, in its verbose output, that each of them ran and passed
# and none was skipped (SeriesTests says when a skip is allowed).

PATCHED_FILE = re.compile(r"^\+\+\+ b/Lib/test/(\S+)\.py$")
ADDED_CLASS = re.compile(r"^\+class (\w+)\(([^)]*TestCase[^)]*)\):")


def added_classes(diff):
    """{module: [class]}: the TestCase classes a diff of Lib/test adds.

    *module* is the file's module under Lib/test ("test_os",
    "_test_multiprocessing", "test_x.test_y").
    """
    found, module = {}, None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            match = PATCHED_FILE.match(line)
            module = match.group(1).replace("/", ".") if match else None
            if module and module.startswith("support."):
                module = None
            continue
        match = ADDED_CLASS.match(line)
        if match and module:
            found.setdefault(module, []).append(match.group(1))
    return found


def series_classes(src):
    """{module: [class]}: the test classes the series adds to Lib/test in
    the patched tree *src* (its commits after the tag `upstream`)."""
    return added_classes(git.git(src, "diff", "upstream", "HEAD", "--",
                                 "Lib/test"))


def patch_classes(release=None):
    """The test classes the patch files of *release*'s series add
    (default: the default release's, which every port must keep)."""
    release = release or config.release()
    directory = release.series_dir
    return added_classes("\n".join(
        (directory / name).read_text(errors="replace")
        for name in series.read(directory)))


def runs_module(module, test):
    """Does a regrtest run of *test* run the classes of Lib/test/*module*?

    A private helper module (_test_multiprocessing) is run by the test
    packages named after it (test_multiprocessing_spawn, ...).
    """
    top, run = module.split(".")[0], test.split(".")[0]
    if top.startswith("_"):
        return run.startswith(top[1:] + "_")
    return run == top


def expected_classes(classes, tests, match=()):
    """The classes of *classes* a regrtest of *tests* (every test when
    empty) with the -m patterns *match* runs."""
    return sorted(
        name for module, names in classes.items()
        if not tests or any(runs_module(module, t) for t in tests)
        for name in names
        if not match or any(fnmatch.fnmatchcase(name, p) for p in match))


# unittest -v: "test_x (test.test_os.Class.test_x) ... ok", or in
# test packages "(test.test_multiprocessing_spawn.test_misc.Class.test_x)".
# The result may follow on a later line: after the first line of the
# test's docstring, or after what the test printed.
TEST = re.compile(r"^(\w+) \(test\.([\w.]+)\.(\w+)\.\w+\)")
OUTCOME = (r"(ok|skipped.*|FAIL|ERROR|expected failure|"
           r"unexpected success)\s*$")
RESULT = re.compile(r"\.\.\. " + OUTCOME)
LATE_RESULT = re.compile("^" + OUTCOME)


def parse_results(text):
    """[(module, class, test, outcome)] from regrtest -v output."""
    results, pending = [], None
    for line in text.splitlines():
        line = line.rstrip("\r")
        match = TEST.match(line)
        if match:
            test, module, cls = match.groups()
            result = RESULT.search(line, match.end())
            if result:
                results.append((module, cls, test, result.group(1)))
                pending = None
            else:
                pending = (module, cls, test)
            continue
        if pending:
            result = RESULT.search(line) or LATE_RESULT.match(line)
            if result:
                results.append((*pending, result.group(1)))
                pending = None
    return results


def summary_lines(text):
    """regrtest's closing lines ("Total tests: ...", "Result: ...")."""
    return [line.strip() for line in text.splitlines()[-40:]
            if line.strip().startswith(("Result:", "Total tests:",
                                        "Total test files:"))]


@dataclasses.dataclass
class SeriesTests:
    """What a verbose regrtest output says of the series' classes.

    Every expected class must have run, and every one of its tests passed
    and none failed.  A test of a helper module that several packages run
    (_test_multiprocessing) may skip itself in some of them ("does not
    depend on the start method"), as long as it passed in another: a skip
    is a problem when that test passed nowhere in the run.
    """

    expected: list
    results: list    # [(module, class, test, outcome)] of those classes

    def count(self, *outcomes):
        return sum(r[3].split(" ")[0] in outcomes for r in self.results)

    def passed(self):
        return {(r[1], r[2]) for r in self.results if r[3] == "ok"}

    def bad(self):
        """The results that are problems: failures, and skips of tests
        that passed nowhere."""
        passed = self.passed()
        return [r for r in self.results if r[3] != "ok" and not (
            r[3].startswith("skipped") and (r[1], r[2]) in passed)]

    @property
    def problems(self):
        problems = []
        if not self.expected:
            problems.append("these tests hold none of the series' test "
                            "classes")
        ran = {r[1] for r in self.results}
        missing = [name for name in self.expected if name not in ran]
        if missing:
            problems.append(f"not run: {', '.join(missing)}")
        bad = self.bad()
        skipped = sum(r[3].startswith("skipped") for r in bad)
        if skipped:
            problems.append(f"{skipped} of the series' tests skipped")
        if len(bad) - skipped:
            problems.append(f"{len(bad) - skipped} of the series' tests "
                            "failed")
        return problems

    def line(self):
        failed = len(self.results) - self.count("ok", "skipped")
        return (f"the series' tests ({len(self.expected)} classes): "
                f"{len(self.results)} ran, {self.count('ok')} passed, "
                f"{self.count('skipped')} skipped, {failed} failed")

    def details(self):
        """The tests that are problems, one line each."""
        return [f"{m}.{c}.{t}: {o}" for m, c, t, o in self.bad()]


def series_tests(text, expected):
    """SeriesTests of the classes *expected* in regrtest -v output."""
    return SeriesTests(list(expected), [r for r in parse_results(text)
                                        if r[1] in expected])


def series_run(text, series, tests, match=()):
    """SeriesTests of the classes of *series* (series_classes()) that a
    regrtest -v of *tests* with the -m patterns *match* runs."""
    return series_tests(text, expected_classes(series, tests, match))


def totals(text):
    """regrtest's closing lines, with its reports of leaked references."""
    return summary_lines(text) + [line.strip() for line in
                                  text.splitlines()[-40:] if "leaked" in line]


def skip_reasons(text):
    """The reasons regrtest gave for skipping tests, each once, sorted."""
    return sorted({line.split(" skipped -- ", 1)[1].strip()
                   for line in text.splitlines() if " skipped -- " in line})


def regrtest(target, tests, log, extra=(), env=None, wrap=None, where="",
             series=None, match=(), python_opts=()):
    """Run CPython's regrtest on *target*; return its exit status.

    *env* adds to the environment (REQUIRE_FILTER always); *wrap(argv,
    env)* turns the command into the one to run (e.g. inside a chroot,
    described by *where*).  *match* are regrtest -m patterns,
    *python_opts* the interpreter's options.  With
    *series* (series_classes()), the run is verbose, and fails unless
    every class of it that *tests* hold ran and passed and none was
    skipped.  A failure raises Error.
    """
    env = {**REQUIRE_FILTER, **(env or {})}
    extra = list(extra)
    if series is not None and "-v" not in extra:
        extra.append("-v")
    ignores = [arg for p in ignored_tests() for arg in ("--ignore", p)]
    patterns = [arg for p in match for arg in ("-m", p)]
    command = [target.python, *python_opts, "-m", "test", *extra, *patterns,
               *ignores, *tests]
    if wrap:
        command, env = wrap(command, env), None
    with steps.Step(f"regrtest: {target.name}{where} "
                    f"{' '.join(tests) or 'all'}", log) as step:
        status = step.run(command, check=False, env=env)
        text = log.read_text(errors="replace")
        for line in summary_lines(text):
            steps.say("  " + line)
        problems = [f"regrtest exited with status {status}"] if status else []
        if series is not None:
            found = series_run(text, series, tests, match)
            steps.say("  " + found.line())
            for line in found.details()[:20]:
                steps.say("    " + line)
            problems += found.problems
        if problems:
            step.fail("; ".join(problems))
    return status
