"""tree, checkout and export: the editable tree and the series round trip."""

import pytest

from conftest import RELEASE_MTIME
from pep522 import git
from pep522.errors import Error
from pep522.release import export, series, tree


def test_empty_series_gives_the_pristine_release(fake):
    assert tree.ensure(fake.target, fake.tarball)
    src = fake.target.src
    assert src.joinpath("README.rst").read_text() == (
        "This is Python version 9.9.9\n")
    log = git.git(src, "log", "--format=%s").splitlines()
    assert log == ["Python 9.9.9 release tarball"]
    assert git.git(src, "rev-parse", "upstream").strip() == (
        git.git(src, "rev-parse", "HEAD").strip())
    # Idempotent: nothing to do the second time.
    assert not tree.ensure(fake.target, fake.tarball)


def test_export_writes_format_patch_files_and_series(fake):
    names = fake.patch_and_export()
    assert names == ["0001-secrets-spell-out-three.patch",
                     "0002-Add-Modules-new.c.patch"]
    series_dir = fake.release.series_dir
    assert series.read(series_dir) == names
    assert series.header(series_dir) == ["# test series"]
    text = (series_dir / names[0]).read_text()
    assert text.startswith("From 0000000000000000000000000000000000000000 ")
    assert "Subject: secrets: spell out three\n" in text
    assert "Forwarded: not-needed" in text
    assert "-line 3\n+line three\n" in text


def test_export_round_trip_is_byte_identical(fake):
    names = fake.patch_and_export()
    series_dir = fake.release.series_dir
    first = {n: (series_dir / n).read_bytes() for n in names}
    # Re-make the tree from the exported series (the series changed, the
    # tree holds nothing unexported), then export again.
    (series_dir / "series").write_text(
        (series_dir / "series").read_text() + "# touched\n")
    tree.write_stamp(fake.target.src, "stale")
    assert tree.ensure(fake.target, fake.tarball)
    log = git.git(fake.target.src, "log", "--format=%s").splitlines()
    assert len(log) == 3
    assert export.export(fake.target) == names
    assert {n: (series_dir / n).read_bytes() for n in names} == first


def test_tree_refuses_to_drop_uncommitted_edits(fake):
    tree.ensure(fake.target, fake.tarball)
    edited = fake.target.src / "README.rst"
    edited.write_text("my edit\n")
    (fake.release.series_dir / "series").write_text("# changed\n")
    with pytest.raises(Error, match="uncommitted changes:\n  README.rst"):
        tree.ensure(fake.target, fake.tarball)
    with pytest.raises(Error, match="uncommitted changes"):
        export.export(fake.target)
    assert edited.read_text() == "my edit\n"


def test_tree_refuses_to_drop_unexported_commits(fake):
    tree.ensure(fake.target, fake.tarball)
    fake.commit("README.rst", "committed, not exported\n", "Edit README")
    (fake.release.series_dir / "series").write_text("# changed\n")
    with pytest.raises(Error, match="commits that are not in") as info:
        tree.ensure(fake.target, fake.tarball)
    assert "make export" in info.value.hint
    assert (fake.target.src / "README.rst").read_text() == (
        "committed, not exported\n")


def test_export_refuses_to_overwrite_changed_patches(fake):
    names = fake.patch_and_export()
    patch = fake.release.series_dir / names[0]
    patch.write_text(patch.read_text() + "hand edit\n")
    with pytest.raises(Error, match="has changed since"):
        export.export(fake.target)
    assert patch.read_text().endswith("hand edit\n")


def test_patch_that_does_not_apply_names_patch_and_file(fake):
    names = fake.patch_and_export()
    # A release whose Lib/secrets.py no longer has the context.
    series_dir = fake.release.series_dir
    text = (series_dir / names[0]).read_text()
    (series_dir / names[0]).write_text(text.replace(" line 2\n",
                                                    " line two\n"))
    tree.write_stamp(fake.target.src, "stale")
    before = git.git(fake.target.src, "rev-parse", "HEAD")
    with pytest.raises(Error) as info:
        tree.ensure(fake.target, fake.tarball)
    message = str(info.value)
    assert names[0] in message and "does not apply" in message
    assert "Lib/secrets.py" in message
    # Nothing half-done: the previous tree is still there, unchanged.
    assert git.git(fake.target.src, "rev-parse", "HEAD") == before
    assert not (fake.target.dir / "src.new").exists()


def test_stock_target_ignores_the_series(fake):
    fake.patch_and_export()
    stock = type(fake.target)(fake.release, stock=True)
    tree.ensure(stock, fake.tarball)
    assert stock.src.name == "src" and stock.dir.name == "9.9.9-stock"
    assert git.git(stock.src, "log", "--format=%s").strip() == (
        "Python 9.9.9 release tarball")


def test_files_a_dropped_patch_changed_look_new_to_make(fake):
    names = fake.patch_and_export()
    series_dir = fake.release.series_dir
    (series_dir / names[0]).unlink()
    (series_dir / "series").write_text(names[1] + "\n")
    assert tree.ensure(fake.target, fake.tarball)
    src = fake.target.src
    assert src.joinpath("README.rst").stat().st_mtime == RELEASE_MTIME
    # Back to the release's text, but newer than any object built from
    # the patched version.
    assert "line 3\n" in src.joinpath("Lib/secrets.py").read_text()
    assert src.joinpath("Lib/secrets.py").stat().st_mtime > RELEASE_MTIME
