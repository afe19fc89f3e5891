"""make debian: DEP-3 export, and quilt on top of a Debian-style tree.

The real run (Debian's python3.13 source package, a CPython build and
regrtest) takes minutes and the network; these tests exercise the same
functions on the fake release in seconds: the DEP-3 headers, our patches
pushed with quilt after a "Debian" patch that moves their context (an
offset, reported) or conflicts with them (an error), and the overlap
report.
"""

import shutil
import subprocess

import pytest

from conftest import UNDER_MAKE_TEST
from pep522 import steps
from pep522.builds import variants
from pep522.debian import debian
from pep522.errors import Error
from pep522.release import export, tree

# `make` installs quilt with the build dependencies: under `make test`
# these run (and fail if it is missing).
needs_quilt = pytest.mark.skipif(
    not shutil.which("quilt") and not UNDER_MAKE_TEST,
    reason="quilt is not installed (`python3 -m pep522 deps` installs it)")


def exported(fake):
    """Our series for the fake release: one commit changing line 20."""
    tree.ensure(fake.target, fake.tarball)
    text = fake.target.src.joinpath("Lib/secrets.py").read_text()
    fake.commit("Lib/secrets.py", text.replace("line 20\n", "line twenty\n"),
                "secrets: spell out twenty")
    return export.export(fake.target)


def test_dep3_has_explicit_headers(fake):
    names = exported(fake)
    text = (fake.release.series_dir / names[0]).read_text()
    out = debian.dep3(text, names[0])
    head, _, diff = out.partition("\n---\n")
    assert head.splitlines() == [
        "Description: secrets: spell out twenty",
        " Why it matters.",
        "Author: cpython-pep522 tooling <tooling@cpython-pep522.invalid>",
        "Forwarded: not-needed",
        # No Last-Update trailer in the fake commit: the patch's Date.
        "Last-Update: 2026-01-01",
    ]
    # The diff itself is untouched.
    assert text.endswith(diff)
    assert "-line 20\n+line twenty\n" in diff


def test_dep3_long_description_and_trailers():
    mail = ("From 0000000000000000000000000000000000000000 Mon Sep 17 "
            "00:00:00 2001\n"
            "From: A Dev <dev@example.org>\n"
            "Date: Fri, 27 Nov 2026 12:00:00 +0000\n"
            "Subject: [PATCH 2/7] os: a subject that is long enough to be\n"
            " folded\n\n"
            "First paragraph.\n\nSecond paragraph.\n\n"
            "Forwarded: https://example.org/pr/1\n"
            "Last-Update: 2026-11-26\n"
            "---\n diff stat\n\ndiff --git a/x b/x\n")
    out = debian.dep3(mail)
    assert out.startswith(
        "Description: os: a subject that is long enough to be folded\n"
        " First paragraph.\n .\n Second paragraph.\n"
        "Author: A Dev <dev@example.org>\n"
        "Forwarded: https://example.org/pr/1\n"
        "Last-Update: 2026-11-26\n---\n")


def test_dep3_requires_a_forwarded_trailer():
    mail = ("From: A Dev <dev@example.org>\n"
            "Date: Fri, 27 Nov 2026 12:00:00 +0000\n"
            "Subject: x\n\nBody.\n---\ndiff --git a/x b/x\n")
    with pytest.raises(Error, match="Forwarded"):
        debian.dep3(mail)


def test_export_quilt_layout(fake):
    names = exported(fake)
    target = debian.DebianTarget(fake.release)
    assert debian.export_quilt(fake.release, target.quilt) == names
    series = (target.quilt / "series").read_text().splitlines()
    assert series[1:] == [f"pep522/{name}" for name in names]
    assert (target.quilt / "pep522" / names[0]).read_text().startswith(
        "Description: ")


def test_parse_quilt_reports_offsets_and_fuzz():
    output = ("Applying patch pep522/0001-a.patch\n"
              "patching file Lib/os.py\n"
              "Hunk #2 succeeded at 120 (offset 3 lines).\n"
              "patching file Lib/random.py\n"
              "Applying patch pep522/0002-b.patch\n"
              "patching file Doc/x.rst\n"
              "Hunk #1 succeeded at 7 with fuzz 1.\n"
              "Now at patch pep522/0002-b.patch\n")
    assert debian.parse_quilt(output) == [
        ("pep522/0001-a.patch", "Lib/os.py",
         "Hunk #2 succeeded at 120 (offset 3 lines)."),
        ("pep522/0002-b.patch", "Doc/x.rst",
         "Hunk #1 succeeded at 7 with fuzz 1."),
    ]


def debian_tree(fake, target, debian_patch):
    """The fake release with one 'Debian' patch applied by quilt, as
    `dpkg-source -x` leaves a real package."""
    subprocess.run(["tar", "-xf", fake.tarball, "-C", fake.tmp_path],
                   check=True)
    shutil.copytree(fake.tmp_path / "Python-9.9.9", target.src)
    patches = target.src / "debian" / "patches"
    patches.mkdir(parents=True)
    (patches / "debian-change.diff").write_text(debian_patch)
    (patches / "series").write_text("debian-change.diff\n")
    subprocess.run(["quilt", "--quiltrc=-", "push", "-a"], cwd=target.src,
                   env={**debian.QUILT_ENV, "PATH": "/usr/bin:/bin"},
                   check=True, capture_output=True)


# Three lines added at the top: our hunk applies 3 lines further down.
MOVES = ("--- a/Lib/secrets.py\n+++ b/Lib/secrets.py\n"
         "@@ -1,3 +1,6 @@\n+debian 1\n+debian 2\n+debian 3\n"
         " line 1\n line 2\n line 3\n")
# Changes the very line our patch changes.
CONFLICTS = ("--- a/Lib/secrets.py\n+++ b/Lib/secrets.py\n"
             "@@ -19,3 +19,3 @@\n line 19\n-line 20\n+line XX\n line 21\n")


def push(fake, debian_patch):
    names = exported(fake)
    target = debian.DebianTarget(fake.release)
    debian.export_quilt(fake.release, target.quilt)
    debian_tree(fake, target, debian_patch)
    with steps.Step("quilt", target.logs / "quilt.log") as step:
        return target, names, debian.push(target, names, step)


@needs_quilt
def test_push_after_debian_reports_offsets_and_overlaps(fake):
    target, names, offsets = push(fake, MOVES)
    assert offsets == [(f"pep522/{names[0]}", "Lib/secrets.py",
                        "Hunk #1 succeeded at 20 (offset 3 lines).")]
    text = target.src.joinpath("Lib/secrets.py").read_text()
    assert text.startswith("debian 1\n") and "line twenty\n" in text
    assert debian.overlaps(target, names, ["debian-change.diff"]) == {
        "debian-change.diff": ["Lib/secrets.py"]}


@needs_quilt
def test_push_refuses_a_patch_that_does_not_apply_exactly(fake):
    with pytest.raises(Error, match="do not apply on top of Debian's"):
        push(fake, CONFLICTS)


def test_debian_tree_builds_like_the_default_build(fake):
    # pep522.builds.build asks every target for its variant's configure options
    # and environment: Debian's tree is built as the default build.
    target = debian.DebianTarget(fake.release)
    assert variants.configure_args(target) == []
    assert variants.environment(target) == {}
    variants.check_compiler(target)
    assert target.python == target.dir / "obj" / "python"
