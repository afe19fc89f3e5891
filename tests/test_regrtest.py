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

import os
import platform
import subprocess
import textwrap

import pytest

from pep522 import chroot, config, steps, testing
from pep522.errors import Error

# Debian 13, with the shared libraries the host build's extension modules
# link to (same sonames as Debian 12's).
TRIXIE = chroot.Spec("trixie", include=(
    "libffi8", "libssl3t64", "libsqlite3-0", "libbz2-1.0", "liblzma5",
    "zlib1g", "libreadline8t64", "libncursesw6", "libuuid1", "libgdbm6t64",
    "libgdbm-compat4t64"))


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
