"""make yocto, make buildroot and make embedded-check on a fake release.

The fakes: the release 9.9.9 of conftest with a two-patch series (one
adds a test class), an OE-core repository whose python3_9.9.9.bb lists
two patches (and one native-only), and a Buildroot repository with two
patches in package/python3.  Their QA tools are the real ones when
OE_CORE_GIT= / BUILDROOT_GIT= name those repositories (copied from
their master branches into the fakes), else small stand-ins that apply
the same rules (CI has neither repository).
"""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from pep522 import git
from pep522.checks import testing
from pep522.errors import Error
from pep522.release import series, source
from pep522.ship import (buildroot, embedded_apply, embedded_bitbake,
                         embedded_check, embedded_headers, embedded_targets,
                         yocto)

TABLE = """\
[targets."oe-core main"]
tool = "yocto"
branch = "main"
version = "9.9.9"
layerseries = "testseries"
bitbake = "main"

[targets."buildroot main"]
tool = "buildroot"
branch = "main"
version = "9.9.9"
own-patches = 2

[targets."oe-core later"]
tool = "yocto"
branch = "later"
version = "9.9.10"
layerseries = "later"
bitbake = "later"
"""

TEST_CLASS = textwrap.dedent("""\
    import unittest


    class NotReadyTests(unittest.TestCase):
        def test_it(self):
            pass
    """)


def diff(path, old, new, start=1):
    """A -p1 patch of *path*: lines *old* become *new* at *start*."""
    body = [f"-{line}" for line in old] + [f"+{line}" for line in new]
    return (f"--- a/{path}\n+++ b/{path}\n"
            f"@@ -{start},{len(old)} +{start},{len(new)} @@\n"
            + "".join(f"{line}\n" for line in body))


# Their patches.  Our first patch changes line 10 of Lib/secrets.py, with
# lines 7-13 as context: a patch of theirs that changes line 7 makes it
# need fuzz, one that adds lines at the top moves it (an offset).
THEIRS_README = diff("README.rst", ["This is Python version 9.9.9"],
                     ["This is Python version 9.9.9", "Built by them."])
THEIRS_MODULE = diff("Modules/empty.c", ["/* empty */"], ["/* theirs */"])
THEIRS_FUZZ = diff("Lib/secrets.py", ["line 7"], ["line seven"], start=7)
THEIRS_OFFSET = diff("Lib/secrets.py", ["line 1"],
                     ["theirs a", "theirs b", "line 1"])
NATIVE = diff("Modules/empty.c", ["/* theirs */"], ["/* native */"])


def yocto_patch(body, status="Inappropriate [oe specific]"):
    return f"Subject: theirs\n\nUpstream-Status: {status}\n\n{body}"


def buildroot_patch(body):
    return ("Subject: theirs\n\nSigned-off-by: Them <them@example.org>\n"
            "Upstream: N/A buildroot specific\n---\n" + body)


@pytest.fixture
def release(fake):
    """The fake release with a series of two patches, one of them adding
    a test class to Lib/test (which the ptest hook must name)."""
    from pep522.release import export, tree
    tree.ensure(fake.target, fake.tarball)
    text = fake.target.src.joinpath("Lib/secrets.py").read_text()
    fake.commit("Lib/secrets.py", text.replace("line 10\n", "line ten\n"),
                "secrets: spell out ten")
    fake.commit("Lib/test/test_secrets.py", TEST_CLASS,
                "test_secrets: a test class")
    export.export(fake.target)
    source.obtain(fake.release, fake.tarball)   # into the fake cache
    return fake.release


@pytest.fixture
def targets(tmp_path):
    path = tmp_path / "embedded.toml"
    path.write_text(TABLE)
    return embedded_targets.load(path)


def make_repo(path, files, branch="main"):
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git.git(path.parent, "init", "-q", "-b", branch, path)
    git.git(path, "add", "-A")
    git.git(path, "commit", "-q", "-m", "fake")
    return path


def real_files(var, branch, paths):
    """{path: text} of *paths* from the real repository $var names, or
    None when it is not set."""
    where = os.environ.get(var)
    if not where:
        return None
    found = {}
    for path in paths:
        listing = git.git(where, "ls-tree", "-r", "--name-only", branch,
                          path).split()
        for name in listing:
            found[name] = git.git(where, "show", f"{branch}:{name}")
    return found


QA_STAND_IN = '''\
import re


def check_upstream_status(fullpath):
    kinda = re.compile(r"^.*upstream.*status.*$", re.IGNORECASE | re.M)
    strict = re.compile(r"^Upstream-Status: (Pending|Submitted|Denied|"
                        r"Inappropriate|Backport|Inactive-Upstream)"
                        r"( .+)?$", re.M)
    text = open(fullpath, encoding="utf-8", errors="ignore").read()
    if not strict.search(text):
        if kinda.search(text):
            return "Malformed Upstream-Status in patch\\n" + fullpath
        return "Missing Upstream-Status in patch\\n" + fullpath
'''


def oe_repo(tmp_path, theirs_secrets=None):
    """The fake OE-core; *theirs_secrets*: a third patch of theirs."""
    recipe = textwrap.dedent("""\
        SRC_URI = "http://www.python.org/ftp/python/${PV}/Python-${PV}.tar.xz \\
                   file://run-ptest \\
                   file://0001-theirs-readme.patch \\
                   file://theirs-module.patch \\
                   file://not-applied.patch;apply=no \\
                   file://theirs-secrets.patch \\
                   "
        SRC_URI:append:class-native = " \\
                   file://0001-native.patch \\
                   "
        SRC_URI[sha256sum] = "0"
        """)
    files = {
        "meta/conf/layer.conf": 'LAYERSERIES_CORENAMES = "testseries"\n',
        "meta/lib/oe/qa.py": QA_STAND_IN,
        "meta/recipes-devtools/python/python3_9.9.9.bb": recipe,
        "meta/recipes-devtools/python/python3/0001-theirs-readme.patch":
            yocto_patch(THEIRS_README),
        "meta/recipes-devtools/python/python3/theirs-module.patch":
            yocto_patch(THEIRS_MODULE),
        "meta/recipes-devtools/python/python3/theirs-secrets.patch":
            yocto_patch(theirs_secrets or diff("README.rst", [
                "Built by them."], ["Built by them, really."], start=2)),
        "meta/recipes-devtools/python/python3/0001-native.patch":
            yocto_patch(NATIVE),
        "meta/recipes-devtools/python/python3/not-applied.patch": "junk\n",
    }
    real = real_files("OE_CORE_GIT", "master", ["meta/lib/oe/qa.py"])
    if real:
        files.update(real)
    return make_repo(tmp_path / "oe-core", files)


APPLY_STAND_IN = """\
#!/bin/bash
# Stand-in for Buildroot's support/scripts/apply-patches.sh: the same
# patch options, in name order.
builddir=$1 patchdir=$2
for p in $(cd "$patchdir" && ls *.patch); do
    echo "Applying $p using patch: "
    patch -F0 -g0 -p1 --no-backup-if-mismatch -d "$builddir" -t -N \\
        < "$patchdir/$p" || { echo "Patch failed!  Please fix $p!"; exit 1; }
done
"""

CHECK_PACKAGE_STAND_IN = """\
#!/usr/bin/env python3
# Stand-in for Buildroot's utils/check-package, patch rules only.
import re, sys
files = [a for a in sys.argv[1:] if a != "-b"]
warnings = lines = 0
for name in files:
    text = open(name).read()
    lines += text.count("\\n")
    if not re.match(r"\\d{1,4}-[^/]*$", name.rsplit("/", 1)[-1]):
        print(f"{name}:0: use name <number>-<description>.patch")
        warnings += 1
    if not re.search(r"^Signed-off-by: .*$", text, re.M):
        print(f"{name}:0: missing Signed-off-by in the header")
        warnings += 1
    if not re.search(r"^Upstream: .*$", text, re.M):
        print(f"{name}:0: missing Upstream in the header")
        warnings += 1
print(f"{lines} lines processed")
print(f"{warnings} warnings generated")
sys.exit(1 if warnings else 0)
"""


def br_repo(tmp_path):
    files = {
        "package/python3/python3.mk":
            "PYTHON3_VERSION_MAJOR = 9.9\n"
            "PYTHON3_VERSION = $(PYTHON3_VERSION_MAJOR).9\n",
        "package/python3/0001-theirs-readme.patch":
            buildroot_patch(THEIRS_README),
        "package/python3/0002-theirs-module.patch":
            buildroot_patch(THEIRS_MODULE),
        "support/scripts/apply-patches.sh": APPLY_STAND_IN,
        "utils/check-package": CHECK_PACKAGE_STAND_IN,
    }
    real = real_files("BUILDROOT_GIT", "master",
                      ["utils", "support/scripts/apply-patches.sh"])
    if real:
        files = {k: v for k, v in files.items()
                 if not k.startswith(("utils/", "support/"))}
        files.update(real)
    return make_repo(tmp_path / "buildroot", files)


def releases_of(release):
    return {release.version: release}


# --- Headers ---------------------------------------------------------------

def test_headers_follow_each_patchs_forwarded_field(release):
    names = series.read(release.series_dir)
    text = (release.series_dir / names[0]).read_text()
    author = re.search(r"^From: (.*)$", text, re.M).group(1)
    for forwarded, status, upstream in [
            ("not-needed", "Inappropriate [downstream PEP 522",
             "N/A downstream PEP 522"),
            ("no", "Pending", "N/A an upstream bug fix"),
            ("https://github.com/python/cpython/pull/1",
             "Submitted [https://github.com/python/cpython/pull/1]",
             "https://github.com/python/cpython/pull/1")]:
        changed = text.replace("Forwarded: not-needed",
                               f"Forwarded: {forwarded}")
        y = embedded_headers.with_trailers(changed, names[0], "yocto")
        b = embedded_headers.with_trailers(changed, names[0], "buildroot")
        assert f"\nUpstream-Status: {status}" in y
        assert f"\nUpstream: {upstream}" in b
        for out in (y, b):
            # After the DEP-3 trailers, before the `---` line; the rest
            # (the DEP-3 form itself, the diff) byte for byte.
            head, rest = out.split("\n---\n", 1)
            assert head.endswith(f"Signed-off-by: {author}")
            assert f"Forwarded: {forwarded}" in head
            assert rest == changed.split("\n---\n", 1)[1]


def test_a_header_without_forwarded_is_refused(release):
    name = series.read(release.series_dir)[0]
    text = (release.series_dir / name).read_text().replace(
        "Forwarded: not-needed\n", "")
    for tool in ("yocto", "buildroot"):
        with pytest.raises(Error, match="no DEP-3 `Forwarded:`"):
            embedded_headers.with_trailers(text, name, tool)


# --- The exports -----------------------------------------------------------

def test_yocto_layer(release, targets, tmp_path):
    before = {p.name: p.read_bytes() for p in release.series_dir.iterdir()}
    layer = yocto.export(release, targets, tmp_path / "meta-pep522")
    conf = (layer / "conf/layer.conf").read_text()
    assert 'LAYERSERIES_COMPAT_pep522 = "testseries"' in conf
    append = (layer / yocto.RECIPE_DIR / "python3_%.bbappend").read_text()
    names = series.read(release.series_dir)
    assert 'FILESEXTRAPATHS:prepend := "${THISDIR}/python3:"' in append
    listed = re.findall(r"file://(\S+)", append)
    assert listed == names + [yocto.PTEST]
    assert 'd.getVar("PV") != "9.9.9"' in append
    for name in names:
        text = (layer / yocto.RECIPE_DIR / "python3" / name).read_text()
        assert "\nUpstream-Status: Inappropriate [" in text
        assert "\nSigned-off-by: cpython-pep522 tooling" in text
    # The ptest hook names the series' classes, read as testing does.
    script = (layer / yocto.RECIPE_DIR / "python3" / yocto.PTEST)
    assert testing.patch_classes(release) == {
        "test_secrets": ["NotReadyTests"]}
    assert "python3 -m test -v test_secrets" in script.read_text()
    assert "-m NotReadyTests" in script.read_text()
    assert os.access(script, os.X_OK)
    # The series itself is untouched.
    assert {p.name: p.read_bytes()
            for p in release.series_dir.iterdir()} == before


def test_buildroot_dir_numbered_after_theirs(release, targets, tmp_path):
    dest = buildroot.export(release, targets, tmp_path / "br")
    names = sorted(p.name for p in (dest / "python3").iterdir())
    assert names == ["0003-secrets-spell-out-ten.patch",
                     "0004-test_secrets-a-test-class.patch"]
    text = (dest / "python3" / names[0]).read_text()
    assert "\nUpstream: N/A downstream PEP 522" in text
    assert 'BR2_GLOBAL_PATCH_DIR="' in (dest / "README").read_text()


def test_export_for_a_release_no_target_ships(release, tmp_path):
    path = tmp_path / "other.toml"
    path.write_text(TABLE.replace('version = "9.9.9"', 'version = "1.0"'))
    with pytest.raises(Error, match="no yocto target .* ships CPython "
                                    "9.9.9"):
        yocto.export(release, embedded_targets.load(path), tmp_path / "l")


@pytest.mark.parametrize("tool", ["yocto", "buildroot"])
def test_export_commands_print_the_directory_last(release, targets, tool,
                                                  monkeypatch, capsys):
    from pep522 import cli, config
    monkeypatch.setattr(config, "release", lambda version=None: release)
    monkeypatch.setattr(embedded_targets, "load", lambda: targets)
    assert cli.main([tool, "--version", "9.9.9"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    expected = {"yocto": config.BUILD / "yocto/9.9.9/meta-pep522",
                "buildroot": config.BUILD / "buildroot/9.9.9"}[tool]
    assert last == str(expected)
    assert expected.is_dir()


# --- The check -------------------------------------------------------------

def run_check(release, targets, tmp_path, oe=True, br=True):
    repos = {"yocto": oe_repo(tmp_path) if oe is True else oe,
             "buildroot": br_repo(tmp_path) if br is True else br}
    return embedded_check.check(targets, releases_of(release), repos,
                                out=tmp_path / "check")


def test_check_passes_and_reports_a_missing_series(release, targets,
                                                   tmp_path, capsys):
    results = run_check(release, targets, tmp_path)
    by_name = {r.target.name: r for r in results}
    yocto_result = by_name["oe-core main"]
    assert yocto_result.problems == []
    # Their two (not the apply=no one), then ours; and the native order.
    assert yocto_result.apply == (
        "quilt: target their 3 + our 2 patches, fuzz 0; ours without "
        "offsets; native their 4 + our 2 patches, fuzz 0; ours without "
        "offsets")
    assert yocto_result.qa.endswith("2/2 pass")
    br_result = by_name["buildroot main"]
    assert br_result.problems == []
    assert br_result.apply == ("apply-patches.sh (patch -F0): their 2 + "
                               "our 2 patches, fuzz 0; ours without offsets")
    assert br_result.qa.endswith("2 patches, 0 warnings")
    assert by_name["oe-core later"].verdict == "pending"
    out = capsys.readouterr().out
    assert "oe-core later: no series for 9.9.10" in out
    table = (tmp_path / "check" / "results.md").read_text()
    assert "pending: series for 9.9.10 not landed" in table
    assert "| oe-core main | 9.9.9 | patches/9.9 |" in table


def test_check_fails_on_fuzz(release, targets, tmp_path):
    oe = oe_repo(tmp_path, theirs_secrets=THEIRS_FUZZ)
    (tmp_path / "br-fuzz").mkdir()
    br = br_repo(tmp_path / "br-fuzz")
    patch = br / "package/python3/0002-theirs-module.patch"
    patch.write_text(buildroot_patch(THEIRS_FUZZ))
    git.git(br, "commit", "-q", "-a", "-m", "fuzz")
    results = run_check(release, targets[:2], tmp_path, oe=oe, br=br)
    yocto_result, br_result = results
    # quilt applies it, with fuzz, which OE-core's patch-fuzz refuses.
    assert any(re.fullmatch(r"target: 0001-secrets-spell-out-ten.patch: "
                            r"Lib/secrets.py needs fuzz [12]", p)
               for p in yocto_result.problems)
    # patch -F0 does not apply it at all.
    assert ("0003-secrets-spell-out-ten.patch does not apply "
            "(Lib/secrets.py)") in br_result.problems
    assert {r.verdict for r in results} == {"FAIL"}


def test_check_fails_on_headers_without_their_fields(
        release, targets, tmp_path, monkeypatch):
    # An exporter that forgot the trailers: their own checks must say so.
    monkeypatch.setattr(embedded_headers, "with_trailers",
                        lambda text, name, tool: text)
    yocto_result, br_result = run_check(release, targets[:2], tmp_path)
    names = series.read(release.series_dir)
    assert [p.split(":")[0] for p in yocto_result.problems] == \
        names + names
    assert any("Missing Upstream-Status" in p
               for p in yocto_result.problems)
    assert any("no Signed-off-by" in p for p in yocto_result.problems)
    assert any("missing Upstream in the header" in p
               for p in br_result.problems)
    assert any("missing Signed-off-by" in p for p in br_result.problems)


def test_check_refuses_a_table_that_does_not_match(release, targets,
                                                   tmp_path):
    path = tmp_path / "wrong.toml"
    path.write_text(TABLE.replace("own-patches = 2", "own-patches = 5")
                    .replace('layerseries = "testseries"',
                             'layerseries = "other"'))
    results = run_check(release, embedded_targets.load(path)[:2], tmp_path)
    assert any("LAYERSERIES_CORENAMES" in p for p in results[0].problems)
    assert any("2 patches in package/python3, embedded.toml says 5" in p
               for p in results[1].problems)


def test_cli_needs_a_repository():
    proc = subprocess.run(
        [sys.executable, "-m", "pep522", "embedded-check"],
        cwd=embedded_targets.config.ROOT, capture_output=True, text=True,
        env={k: v for k, v in os.environ.items()
             if k not in ("OE_CORE_GIT", "BUILDROOT_GIT")})
    assert proc.returncode == 1
    assert "needs OE_CORE_GIT= and/or BUILDROOT_GIT=" in proc.stderr
    assert "fix: make embedded-check OE_CORE_GIT=" in proc.stderr


def test_recipe_patches_orders_and_separates_native():
    theirs, native = embedded_check.recipe_patches(textwrap.dedent("""\
        SRC_URI = "http://x/Python-${PV}.tar.xz file://a.patch \\
                   file://b.diff;striplevel=1 file://c.patch;apply=no"
        SRC_URI:append:class-native = " file://n.patch"
        SRC_URI += "file://d.patch"
        """))
    assert theirs == ["a.patch", "b.diff", "d.patch"]
    assert native == ["n.patch"]


def test_offsets_from_their_patches_are_reported_not_refused(
        release, targets, tmp_path):
    oe = oe_repo(tmp_path, theirs_secrets=THEIRS_OFFSET)
    (result,) = run_check(release, targets[:1], tmp_path, oe=oe, br=None)
    assert result.problems == []
    assert "ours at offsets in Lib/secrets.py (their patches change it)" \
        in result.apply
    # The same offset where no patch of theirs explains it is refused.
    applied = embedded_apply.read_output(
        "Applying patch patches/ours.patch\npatching file Lib/secrets.py\n"
        "Hunk #1 succeeded at 3 (offset 2 lines).\n", ["ours.patch"],
        {"ours.patch"})
    assert embedded_apply.problems(applied, set(), ["ours.patch"]) == [
        "ours.patch: Lib/secrets.py at an offset of 2 lines (no patch of "
        "theirs changes it)"]


def test_bitbake_output_is_judged(targets):
    # BitBake itself is not in CI: what the check makes of its output.
    env = ('PV="9.9.9"\nSRC_URI="http://x/Python-9.9.9.tar.xz '
           'file://run-ptest file://a.patch file://0001-ours.patch"\n')
    problems = []
    line = embedded_bitbake.judge(env, ["a.patch", "0001-ours.patch"],
                                  targets[0], problems)
    assert problems == [] and "SRC_URI has 2 patches" in line
    embedded_bitbake.judge(env, ["0001-ours.patch", "a.patch"], targets[0],
                           problems)
    assert problems == ["bitbake's SRC_URI lists the patches ['a.patch', "
                        "'0001-ours.patch'], expected ['0001-ours.patch', "
                        "'a.patch']"]
    assert embedded_bitbake.failure(
        "ERROR: The following required tools (as specified by HOSTTOOLS) "
        "appear to be unavailable in PATH, please install them in order "
        "to proceed:\n  chrpath cpio gawk\n") == (
            "bitbake: HOSTTOOLS lacks chrpath cpio gawk (apt-get install "
            "chrpath cpio gawk)")
