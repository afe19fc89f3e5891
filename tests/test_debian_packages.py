"""make debian-packages: the plumbing, without root or a build.

The real run (a trixie chroot, Debian's five interpreter builds, about
half an hour, then the packages installed and tested in fresh chroots)
is too long for `make test`; these tests check in seconds what it runs
and when it reuses what it built.
"""

import json
import pathlib
import shlex
import shutil
import subprocess

import pytest

from conftest import UNDER_MAKE_TEST
from pep522 import steps
from pep522.checks import testing
from pep522.debian import debian, debian_packages

DSC = """\
Format: 3.0 (quilt)
Source: python9.9
Version: 9.9.9-1
Files:
 0123 10 python9.9_9.9.9.orig.tar.xz
 4567 20 python9.9_9.9.9-1.debian.tar.xz
Checksums-Sha256:
 89ab 10 python9.9_9.9.9.orig.tar.xz
"""


@pytest.fixture
def pkgs(fake):
    """The package build of the fake release, its source and our export."""
    pkgs = debian_packages.Packages(fake.release)
    (pkgs.quilt / debian.PATCH_SUBDIR).mkdir(parents=True)
    (pkgs.quilt / debian.PATCH_SUBDIR / "0001-x.patch").write_text("ours\n")
    src = fake.tmp_path / "src"
    src.mkdir()
    dsc = src / "python9.9_9.9.9-1.dsc"
    dsc.write_text(DSC)
    (src / "python9.9_9.9.9.orig.tar.xz").write_text("upstream")
    (src / "python9.9_9.9.9-1.debian.tar.xz").write_text("debian")
    pkgs.dsc = dsc
    return pkgs


def test_sources_of_lists_the_dsc_and_its_files(pkgs):
    names = [p.name for p in debian_packages.sources_of(pkgs.dsc)]
    assert names == ["python9.9_9.9.9-1.dsc", "python9.9_9.9.9.orig.tar.xz",
                     "python9.9_9.9.9-1.debian.tar.xz"]


def test_stamp_follows_debian_files_our_patches_and_options(pkgs,
                                                            monkeypatch):
    stamp = debian_packages.stamp_of(pkgs.dsc, pkgs.quilt)
    assert debian_packages.stamp_of(pkgs.dsc, pkgs.quilt) == stamp
    patch = pkgs.quilt / debian.PATCH_SUBDIR / "0001-x.patch"
    patch.write_text("ours, changed\n")
    changed_patch = debian_packages.stamp_of(pkgs.dsc, pkgs.quilt)
    assert changed_patch != stamp
    pkgs.dsc.with_name("python9.9_9.9.9-1.debian.tar.xz").write_text("new")
    changed_debian = debian_packages.stamp_of(pkgs.dsc, pkgs.quilt)
    assert changed_debian != changed_patch
    monkeypatch.setattr(debian_packages, "BUILD_OPTIONS", "nocheck")
    assert debian_packages.stamp_of(pkgs.dsc, pkgs.quilt) != changed_debian


def test_built_debs_are_reused_only_with_the_same_stamp(pkgs):
    assert debian_packages.built(pkgs, "abc") is None
    pkgs.debs.mkdir(parents=True)
    deb = pkgs.debs / "python9.9_9.9.9-1+pep5221_amd64.deb"
    deb.write_text("deb")
    pkgs.stamp.write_text(json.dumps({"stamp": "abc", "debs": [deb.name]}))
    assert debian_packages.built(pkgs, "abc") == [deb]
    assert debian_packages.built(pkgs, "other") is None
    deb.unlink()   # a stamp without its .debs is no build
    assert debian_packages.built(pkgs, "abc") is None


def test_build_commands():
    assert debian_packages.BUILD_COMMAND[:3] == ["nice", "-n", "19"]
    assert debian_packages.BUILD_COMMAND[3:] == [
        "dpkg-buildpackage", "-B", "-us", "-uc", "-Pnocheck"]
    options = debian_packages.BUILD_OPTIONS.split()
    assert {"nocheck", "nopgo", "nolto"} <= set(options)
    assert debian_packages.build_dep_command() == [
        "apt-get", "build-dep", "-y", "-q", "--arch-only",
        "--build-profiles=nocheck", "./"]


def test_changelog_entry_is_a_local_version(fake):
    argv = debian_packages.dch_command(fake.release)
    assert argv[:3] == ["dch", "--local", "+pep522"]
    assert "patches/9.9" in argv[-1]


def test_testsuite_is_packaged_with_debhelper_only():
    script = debian_packages.TESTSUITE_SCRIPT.format(source="python9.9")
    assert "p=libpython9.9-testsuite" in script
    lines = script.splitlines()
    assert lines[0] == "set -e"
    assert lines[-1] == "dh_builddeb -p$p"
    # No documentation build: binary-indep's python3.X-doc part is left out.
    assert "sphinx" not in script and "Doc/" not in script


def test_deb_version():
    deb = pathlib.Path("libpython3.13-stdlib_3.13.5-2+deb13u5+pep5221_"
                       "amd64.deb")
    assert debian_packages.deb_version(deb) == (
        "libpython3.13-stdlib", "3.13.5-2+deb13u5+pep5221")


def test_test_chroots_hold_ours_or_the_archives(pkgs):
    debs = (pathlib.Path("/b/debs/python9.9_1_amd64.deb"),)
    patched = pkgs.test_spec("patched", debs)
    stock = pkgs.test_spec("stock")
    assert patched.debs == debs and patched.include == ()
    assert set(stock.include) == {
        "python9.9", "python9.9-minimal", "libpython9.9-minimal",
        "libpython9.9-stdlib", "libpython9.9-testsuite"}
    assert patched.root != stock.root != pkgs.build_spec().root
    assert pkgs.build_spec().include == ("devscripts",)


def test_installed_python_runs_in_its_chroot(pkgs):
    installed = debian_packages.Installed(pkgs, "patched",
                                          pathlib.Path("/srv/root"))
    assert installed.python == "/usr/bin/python9.9"
    argv = installed.wrap([installed.python, "-m", "test"],
                          env={"PYTHONTEST_REQUIRE_RNG_FILTER": "1"})
    assert argv[0] == "unshare"
    assert "exec chroot /srv/root " in argv[-1]
    assert "PYTHONTEST_REQUIRE_RNG_FILTER=1" in argv[-1]
    assert shlex.quote("/usr/bin/python9.9") in argv[-1]


SERIES = {"test_os": ["URandomNotReadyTests"],
          "test_secrets": ["TokenBytesWait_Tests"]}
PATCHED_LOG = """\
test_a (test.test_os.URandomNotReadyTests.test_a) ... ok
test_b (test.test_secrets.TokenBytesWait_Tests.test_b) ... ok
Result: SUCCESS
"""


def results_of(log, regrtest="passed", smoke=True):
    found = testing.series_tests(log, testing.expected_classes(
        SERIES, testing.TOUCHED_TESTS))
    return {"packages": ["python9.9 9.9.9-1"], "regrtest": regrtest,
            "regrtest_summary": testing.summary_lines(log),
            "series_tests": found.line(),
            "series_problems": found.problems,
            "series_details": found.details(),
            "smoke": [("os.urandom() raises", smoke)]}


def test_summary_and_verdict(pkgs):
    good = results_of(PATCHED_LOG)
    stock = results_of("Result: SUCCESS\n", smoke=False)
    results = {"patched": good, "stock": stock}
    lines = debian_packages.summary(pkgs, [], results)
    assert ("  the series' tests (2 classes): 2 ran, 2 passed, 0 skipped, "
            "0 failed") in lines
    assert ("  the series' tests (2 classes): 0 ran, 0 passed, 0 skipped, "
            "0 failed; not run: TokenBytesWait_Tests, URandomNotReadyTests"
            ) in lines
    assert "  FAIL os.urandom() raises" in lines
    assert debian_packages.passed(results)
    skipped = results_of(PATCHED_LOG.replace("... ok", "... skipped 'x'", 1))
    assert skipped["series_details"] == [
        "test_os.URandomNotReadyTests.test_a: skipped 'x'"]
    assert not debian_packages.passed({"patched": skipped, "stock": stock})
    # A run in which the series' tests did not run at all is no pass.
    assert not debian_packages.passed({"patched": {**stock, "smoke": [
        ("os.urandom() raises", True)]}, "stock": stock})


# dpkg-dev comes with build-essential, a build dependency: under
# `make test` these run (and fail if it is missing).
needs_dpkg_source = pytest.mark.skipif(
    not shutil.which("dpkg-source") and not UNDER_MAKE_TEST,
    reason="dpkg-source is not installed (dpkg-dev)")

CONTROL = """\
Source: python9.9
Maintainer: Nobody <nobody@example.invalid>

Package: python9.9
Architecture: any
Description: test
 test
"""
CHANGELOG = """\
python9.9 (9.9.9) unstable; urgency=medium

  * Test.

 -- Nobody <nobody@example.invalid>  Thu, 01 Jan 2026 00:00:00 +0000
"""


@needs_dpkg_source
def test_unpack_appends_our_series_to_a_fresh_tree(pkgs, fake):
    """A tiny source package: our patches land in debian/patches/pep522/
    and in its series, after Debian's, without the comment line."""
    top = fake.tmp_path / "pkg" / "python9.9-9.9.9"
    files = {"debian/control": CONTROL, "debian/changelog": CHANGELOG,
             "debian/source/format": "3.0 (native)\n",
             "debian/patches/series": "debian-one.diff\n"}
    for name, text in files.items():
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_text(text)
    subprocess.run(["dpkg-source", "-b", top.name], cwd=top.parent,
                   check=True, capture_output=True)
    dsc = top.parent / "python9.9_9.9.9.dsc"
    (pkgs.quilt / "series").write_text("# PEP 522 (cpython-pep522)\n"
                                       "pep522/0001-x.patch\n")
    for _ in range(2):   # every build starts from a fresh tree
        with steps.Step("unpack", fake.tmp_path / "unpack.log") as step:
            src = debian_packages.unpack(pkgs, dsc, step)
    patches = src / "debian" / "patches"
    assert (patches / "series").read_text() == (
        "debian-one.diff\npep522/0001-x.patch\n")
    assert (patches / "pep522" / "0001-x.patch").read_text() == "ours\n"
