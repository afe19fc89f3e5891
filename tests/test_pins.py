"""upstream.toml: the pinned releases."""

import pytest

from conftest import release_under_test, run_tool
from pep522 import config
from pep522.errors import Error
from pep522.release import series, source


@pytest.mark.parametrize("version", config.load_pins()[1])
def test_every_pin_is_consistent(version):
    """The fields of a pin agree with each other and with patches/."""
    release = config.release(version)
    major_minor = ".".join(version.split(".")[:2])
    if release.tarball:
        assert release.tarball == f"Python-{version}.tar.xz"
    if release.debian_source:
        assert release.debian_source == f"python{major_minor}"
    assert release.series == major_minor or release.series == version
    assert series.read(release.series_dir)   # every listed patch exists
    assert len(release.sha256) == 64
    int(release.sha256, 16)


def test_the_cached_tarball_matches_its_pin():
    """The pin is the hash of the real tarball (`make` cached it)."""
    release = release_under_test()
    path = source.cached_tarball(release)
    if not path.is_file():
        pytest.skip(f"{path} is not cached: run `make obtain`")
    assert source.sha256_of(path) == release.sha256


def test_unknown_version_lists_the_supported_ones():
    with pytest.raises(Error) as info:
        config.release("3.99.0")
    assert "unknown version '3.99.0'" in str(info.value)
    # In release order, not string order.
    assert "3.13.4, 3.13.5, 3.13.12, 3.13.15, 3.14." in str(info.value)


def test_cli_unknown_version_is_a_clear_error():
    proc = run_tool("obtain", "--version", "2.7.18")
    assert proc.returncode == 1
    assert "error: unknown version '2.7.18'" in proc.stderr
    assert "3.13.5" in proc.stderr
    assert "Traceback" not in proc.stderr
