"""obtain: where the tarball comes from and its checksum."""

import pytest

from conftest import make_tarball
from pep522.errors import Error
from pep522.release import source


def test_tarball_is_verified_and_cached(fake):
    path = source.obtain(fake.release, fake.tarball)
    assert path == source.cached_tarball(fake.release)
    assert path.read_bytes() == fake.tarball.read_bytes()
    # The second time it comes from the cache, without TARBALL.
    assert source.obtain(fake.release) == path


def test_checksum_mismatch_is_refused_with_both_hashes(fake):
    other = make_tarball(fake.tmp_path / "other",
                         files={"README.rst": "tampered\n"})
    with pytest.raises(Error) as info:
        source.obtain(fake.release, other)
    message = str(info.value)
    assert "checksum mismatch" in message
    assert fake.release.sha256 in message
    assert source.sha256_of(other) in message
    assert not source.cached_tarball(fake.release).exists()


def test_corrupt_cache_is_refused_not_used(fake):
    cached = source.cached_tarball(fake.release)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a tarball")
    with pytest.raises(Error, match="checksum mismatch"):
        source.obtain(fake.release)
    assert cached.read_bytes() == b"not a tarball"   # left for the user


def test_missing_tarball_argument(fake):
    with pytest.raises(Error, match="does not exist"):
        source.obtain(fake.release, fake.tmp_path / "nope.tar.xz")


def test_nothing_available_says_what_to_download(fake, monkeypatch):
    monkeypatch.setenv("PATH", str(fake.tmp_path / "empty-path"))
    with pytest.raises(Error) as info:
        source.obtain(fake.release, log=fake.tmp_path / "obtain.log")
    assert "cannot obtain Python-9.9.9.tar.xz" in str(info.value)
    assert "apt-get is not available" in str(info.value)
    hint = info.value.hint
    url = "https://www.python.org/ftp/python/9.9.9/Python-9.9.9.tar.xz"
    assert url in hint
    assert "TARBALL=" in hint
    assert str(source.cached_tarball(fake.release).parent) in hint


def test_mirror_is_read_from_deb822_and_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "other.sources").write_text(
        "Types: deb\nURIs: https://example.org/node\nSuites: x\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
        "Components: main\nSigned-By: /keys/debian.gpg\n")
    assert source.debian_mirror(tmp_path) == ("http://mirror.example/debian",
                                              "/keys/debian.gpg")
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] "
        "http://m.example/debian/ bookworm main\n")
    assert source.debian_mirror(tmp_path) == ("http://m.example/debian",
                                              "/k.gpg")


def test_debian_version_to_upstream():
    assert source.upstream_part("3.13.5-2+deb13u5") == "3.13.5"
    assert source.upstream_part("1:3.13.15-1") == "3.13.15"
