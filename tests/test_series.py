"""Quilt series files."""

import pytest

from pep522.errors import Error
from pep522.release import series


def write(directory, text, *patches):
    directory.mkdir(exist_ok=True)
    (directory / "series").write_text(text)
    for name in patches:
        (directory / name).write_text("patch\n")


def test_names_in_order_without_comments_and_blanks(tmp_path):
    write(tmp_path, "# header\n\n0002-b.patch\n0001-a.patch -p1 # why\n"
          "  # indented comment\n", "0001-a.patch", "0002-b.patch")
    assert series.read(tmp_path) == ["0002-b.patch", "0001-a.patch"]
    assert series.header(tmp_path) == ["# header"]


def test_empty_series_is_valid(tmp_path):
    write(tmp_path, "# nothing yet\n")
    assert series.read(tmp_path) == []


def test_missing_series_file(tmp_path):
    with pytest.raises(Error, match="series does not exist"):
        series.read(tmp_path)


def test_listed_patch_must_exist(tmp_path):
    write(tmp_path, "0001-a.patch\n")
    with pytest.raises(Error, match=r"series:1: 0001-a.patch does not exist"):
        series.read(tmp_path)


def test_only_p1_patches(tmp_path):
    write(tmp_path, "0001-a.patch -p0\n", "0001-a.patch")
    with pytest.raises(Error, match="unsupported options '-p0'"):
        series.read(tmp_path)


def test_digest_changes_with_content(tmp_path):
    write(tmp_path, "0001-a.patch\n", "0001-a.patch")
    before = series.digest(tmp_path, ["0001-a.patch"])
    (tmp_path / "0001-a.patch").write_text("patch, edited\n")
    assert series.digest(tmp_path, ["0001-a.patch"]) != before
