"""CPython's own regression tests for what the series touches.

They run regrtest on the build `make test` has just made (PEP522_VERSION,
default: the default release), so a change to the series that breaks
CPython's tests fails our suite too: on this machine, and in a Debian 13
(trixie) chroot, whose C library (glibc 2.41) serves getrandom() from the
vDSO on Linux 6.11 and newer, where a seccomp filter sees no syscall
unless the C library's MAP_DROPPABLE mapping is refused.  Every run sets
PYTHONTEST_REQUIRE_RNG_FILTER, so the series' tests fail rather than skip
where their filter cannot be used, and checks in its verbose log that
every test class the series adds (testing.series_classes, read from the
patched tree) ran and passed, and that none was skipped.
"""

import argparse
import os
import platform
import subprocess
import textwrap

import pytest

from pep522 import cli, config, steps
from pep522.checks import testing
from pep522.debian import chroot
from pep522.errors import Error

# Debian 13, with the shared libraries the host build's extension modules
# link to (same sonames as Debian 12's).
TRIXIE = chroot.Spec("trixie", include=(
    "libffi8", "libssl3t64", "libsqlite3-0", "libbz2-1.0", "liblzma5",
    "zlib1g", "libreadline8t64", "libncursesw6", "libuuid1", "libgdbm6t64",
    "libgdbm-compat4t64"))


# --- The series' test classes, and regrtest -v output -------------------

REGRTEST_OUTPUT = """\
0:00:01 load avg: 0.20 [1/3] test_os
test_urandom_raises_blockingioerror \
(test.test_os.URandomNotReadyTests.test_urandom_raises_blockingioerror) \
... ok
test_urandom_uncaught (test.test_os.URandomNotReadyTests.\
test_urandom_uncaught) ... skipped 'no seccomp'
test_access (test.test_os.FileTests.test_access) ... ok
test_waits_once (test.test_secrets.KernelNotReady_Tests.test_waits_once) \
... some output
FAIL
test_x (test.test_random.TestSystemRNGNotReady.test_x) ... ERROR
test_doc (test.test_multiprocessing_spawn.test_misc.TestLazyAuthkey.test_doc)
The first line of its docstring ... ok
Total tests: run=5 skipped=1
Result: FAILURE
"""


def test_parse_regrtest_verbose_output():
    results = testing.parse_results(REGRTEST_OUTPUT)
    assert results == [
        ("test_os", "URandomNotReadyTests",
         "test_urandom_raises_blockingioerror", "ok"),
        ("test_os", "URandomNotReadyTests", "test_urandom_uncaught",
         "skipped 'no seccomp'"),
        ("test_os", "FileTests", "test_access", "ok"),
        ("test_secrets", "KernelNotReady_Tests", "test_waits_once", "FAIL"),
        ("test_random", "TestSystemRNGNotReady", "test_x", "ERROR"),
        ("test_multiprocessing_spawn.test_misc", "TestLazyAuthkey",
         "test_doc", "ok")]
    assert testing.summary_lines(REGRTEST_OUTPUT) == [
        "Total tests: run=5 skipped=1", "Result: FAILURE"]


SERIES = {"test_os": ["URandomNotReadyTests", "StartupNotReadyTests"],
          "test_secrets": ["KernelNotReady_Tests"],
          "test_random": ["TestSystemRNGNotReady"],
          "_test_multiprocessing": ["TestLazyAuthkey"]}


def test_the_series_tests_of_a_run_must_all_run_and_pass():
    expected = testing.expected_classes(SERIES, testing.TOUCHED_TESTS)
    assert "TestLazyAuthkey" not in expected
    found = testing.series_tests(REGRTEST_OUTPUT, expected)
    assert found.line() == ("the series' tests (4 classes): 4 ran, "
                            "1 passed, 1 skipped, 2 failed")
    assert found.problems == ["not run: StartupNotReadyTests",
                              "1 of the series' tests skipped",
                              "2 of the series' tests failed"]
    assert found.details()[0] == ("test_os.URandomNotReadyTests."
                                  "test_urandom_uncaught: skipped "
                                  "'no seccomp'")


def test_the_authkey_class_runs_in_the_multiprocessing_packages():
    expected = testing.expected_classes(
        SERIES, ["test_multiprocessing_spawn"], match=["TestLazyAuthkey"])
    assert expected == ["TestLazyAuthkey"]
    assert testing.series_tests(REGRTEST_OUTPUT, expected).problems == []
    assert testing.expected_classes(SERIES, ["test_os"], ["*authkey*"]) == []


AUTHKEY_RUN = """\
test_a (test.test_multiprocessing_spawn.test_misc.TestLazyAuthkey.test_a) ... ok
test_a (test.test_multiprocessing_forkserver.test_misc.TestLazyAuthkey.\
test_a) ... skipped 'does not depend on the start method'
test_b (test.test_multiprocessing_forkserver.test_misc.TestLazyAuthkey.\
test_b) ... skipped 'no forkserver'
"""


def test_a_skip_is_a_problem_unless_the_test_passed_in_another_package():
    found = testing.series_tests(AUTHKEY_RUN, ["TestLazyAuthkey"])
    assert found.line() == ("the series' tests (1 classes): 3 ran, 1 passed, "
                            "2 skipped, 0 failed")
    assert found.problems == ["1 of the series' tests skipped"]
    assert found.details() == [
        "test_multiprocessing_forkserver.test_misc.TestLazyAuthkey.test_b: "
        "skipped 'no forkserver'"]


def test_a_run_of_none_of_the_series_tests_is_a_failure():
    found = testing.series_tests("Total tests: run=0\nResult: SUCCESS\n",
                                 testing.expected_classes(
                                     SERIES, testing.TOUCHED_TESTS))
    assert found.problems == [
        "not run: KernelNotReady_Tests, StartupNotReadyTests, "
        "TestSystemRNGNotReady, URandomNotReadyTests"]
    assert testing.series_tests("", []).problems == [
        "these tests hold none of the series' test classes"]


def test_the_series_classes_are_read_from_a_diff():
    diff = (
        "+++ b/Lib/test/test_os.py\n"
        "+class URandomNotReadyTests(unittest.TestCase):\n"
        "+class _Helper(dict):\n"
        " class FileTests(unittest.TestCase):\n"
        "+++ b/Lib/test/support/rng_helper.py\n"
        "+class Filtered(unittest.TestCase):\n"
        "+++ b/Lib/test/test_pkg/test_misc.py\n"
        "+class Added(unittest.TestCase):\n"
        "+++ b/Lib/secrets.py\n"
        "+class Other(unittest.TestCase):\n")
    assert testing.added_classes(diff) == {
        "test_os": ["URandomNotReadyTests"],
        "test_pkg.test_misc": ["Added"]}


def test_the_series_classes_of_the_tree_are_the_reference_ones(patched):
    """Every class the default release's series adds is in the patched
    tree of the release under test, and in a module the regrtest runs of
    the tool run (3.15 moved test_os into a package: test_os.test_os)."""
    classes = testing.series_classes(patched.src)
    reference = testing.patch_classes()
    runs = testing.TOUCHED_TESTS + testing.AUTHKEY_TESTS
    found = testing.expected_classes(classes, runs)
    wanted = sorted(c for cs in reference.values() for c in cs)
    assert sorted(set(found) - testing.RELEASE_SPECIFIC_CLASSES) == wanted
    # And every class the tree adds is run by the tool's regrtest runs.
    assert sorted(found) == sorted(c for cs in classes.values() for c in cs)


def test_every_series_adds_the_same_test_classes():
    """The series of every pinned release adds the classes of the default
    one: a class removed from (or renamed in) one series alone fails
    here, before any regrtest could miss it."""
    def names(release):
        return sorted(c for cs in testing.patch_classes(release).values()
                      for c in cs)
    reference = names(config.release())
    assert len(reference) == 9
    for version in config.load_pins()[1]:
        got = names(config.release(version))
        extra = set(got) - set(reference)
        assert set(reference) <= set(got) and \
            extra <= testing.RELEASE_SPECIFIC_CLASSES, (
            f"{version}: {sorted(set(got) ^ set(reference))} differ")


def test_test_full_is_verbose_and_fails_without_the_series_tests(
        fake, monkeypatch):
    """`make test-full`: upstream's --fast-ci options but verbose (its
    --verbose3 would hide which tests ran), the filter required, and a
    failure when a class of the series did not run."""
    target = config.Target(fake.release)
    monkeypatch.setattr(cli, "prepare", lambda args: target)
    monkeypatch.setattr(cli.build, "build", lambda *a, **kw: None)
    monkeypatch.setattr(testing, "series_classes",
                        lambda src: {"test_os": ["URandomNotReadyTests"]})
    monkeypatch.setattr(testing, "IGNORE_FILE", fake.tmp_path / "ignore")
    (fake.tmp_path / "ignore").write_text("")
    target.python.parent.mkdir(parents=True)
    args = argparse.Namespace(configure_args="")
    for line, ok in (("test_a (test.test_os.URandomNotReadyTests.test_a) "
                      "... ok", True), ("test_b (test.test_os.Other.test_b)"
                                        " ... ok", False)):
        target.python.write_text(
            f"#!/bin/sh\necho '{line}'\necho \"env "
            "$PYTHONTEST_REQUIRE_RNG_FILTER\"\necho 'Result: SUCCESS'\n")
        target.python.chmod(0o755)
        if ok:
            assert cli.cmd_test_full(args) == 0
        else:
            with pytest.raises(Error, match="not run: URandomNotReadyTests"):
                cli.cmd_test_full(args)
        log = (target.logs / "regrtest-full.log").read_text()
        assert " -v " in log and "--fast-ci" not in log and "env 1" in log
        assert " -W error -bb -E -m test -j0 --randomize " in log


# --- regrtest runs ------------------------------------------------------------

@pytest.fixture(scope="module")
def series(patched):
    return testing.series_classes(patched.src)


def run_regrtest(target, tests, log, extra, **kwargs):
    try:
        testing.regrtest(target, tests, log, extra=extra, **kwargs)
    except Error as e:
        pytest.fail(str(e))


def test_regrtest_of_touched_modules_passes(patched, series):
    run_regrtest(patched, testing.TOUCHED_TESTS,
                 patched.logs / "regrtest.log", ["-j2"], series=series)


# The series' multiprocessing class alone: the whole of those modules
# takes several minutes (`make test-full` runs them).
def test_regrtest_of_multiprocessing_authkey_passes(patched, series):
    run_regrtest(patched, testing.AUTHKEY_TESTS,
                 patched.logs / "regrtest-multiprocessing.log", ["-j2"],
                 series=series, match=["TestLazyAuthkey"])


@pytest.fixture(scope="module")
def trixie():
    if os.geteuid() != 0:
        pytest.skip("the Debian 13 chroot needs root (mmdebstrap, chroot, "
                    "mount namespaces); CI runs as root")
    try:
        return chroot.ensure(TRIXIE)
    except Error as e:
        pytest.fail(str(e))


def in_chroot(root, argv, log):
    """Run *argv* in the chroot with the project mounted; its output."""
    with steps.Step(f"chroot: {argv[0]} in {root.name}", log) as step:
        status = chroot.run(root, argv, step, binds=[config.ROOT],
                            check=False)
    return status, log.read_text(errors="replace")


def test_chroot_has_glibc_2_41(patched, trixie):
    status, out = in_chroot(trixie, [
        patched.python, "-c",
        "import os; print(os.confstr('CS_GNU_LIBC_VERSION'))"],
        patched.logs / "chroot-libc.log")
    assert status == 0 and "glibc 2.41" in out, out


# Without refusing MAP_DROPPABLE, a filter that fails every getrandom()
# syscall with EAGAIN does not stop glibc's getrandom() from working: the
# bytes come from the vDSO.  This is what made the series' tests skip on
# Debian 13 before their filter refused that mapping.
VDSO_PROBE = textwrap.dedent("""
    import ctypes, platform, sys
    NR = {"x86_64": 318, "aarch64": 278}[platform.machine()]
    ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(1)
    libc.getrandom(buf, 1, 1)   # glibc maps its vDSO state here
    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                    ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]
    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort),
                    ("filter", ctypes.POINTER(Insn))]
    program = [(0x20, 0, 0, 4), (0x15, 0, 3, ARCH), (0x20, 0, 0, 0),
               (0x15, 0, 1, NR), (0x06, 0, 0, 0x00050000 | 11),
               (0x06, 0, 0, 0x7FFF0000)]
    insns = (Insn * len(program))(*[Insn(*i) for i in program])
    assert libc.prctl(38, 1, 0, 0, 0) == 0
    assert libc.prctl(22, 2, ctypes.byref(Prog(len(program), insns)),
                      0, 0) == 0
    print("syscall", libc.syscall(NR, buf, 1, 1), ctypes.get_errno())
    print("getrandom", libc.getrandom(buf, 1, 1))
""")


def test_chroot_glibc_serves_getrandom_from_the_vdso(patched, trixie):
    major, minor = map(int, platform.release().split(".")[:2])
    if (major, minor) < (6, 11):
        pytest.skip(f"Linux {platform.release()} has no vDSO getrandom() "
                    "(6.11 and newer)")
    status, out = in_chroot(trixie, [patched.python, "-c", VDSO_PROBE],
                            patched.logs / "chroot-vdso.log")
    assert status == 0, out
    assert "syscall -1 11" in out       # the filter works...
    assert "getrandom 1" in out          # ...and glibc does not need it


def test_regrtest_in_debian_13_chroot(patched, trixie, series):
    run_regrtest(patched, testing.TOUCHED_TESTS,
                 patched.logs / "regrtest-trixie.log", [],
                 wrap=lambda argv, env: chroot.command(
                     trixie, argv, binds=[config.ROOT], cwd="/tmp", env=env),
                 where=" in the Debian 13 chroot", series=series)
