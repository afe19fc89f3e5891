"""upstream.toml: the pinned releases."""

import pytest

from conftest import run_tool
from pep522 import config
from pep522.errors import Error


def test_default_release_is_debian_trixies_3_13_5():
    release = config.release()
    assert release.version == "3.13.5"
    assert release.tarball == "Python-3.13.5.tar.xz"
    assert release.sha256 == ("93e583f243454e6e9e4588ca2c2662206ad961659863"
                              "277afcdb96801647d640")
    assert "trixie" in release.debian_suites


def test_every_pin_has_a_series_and_a_full_sha256():
    _, releases = config.load_pins()
    assert "3.13.15" in releases
    for release in releases.values():
        assert release.series_dir.joinpath("series").is_file()
        assert len(release.sha256) == 64
        int(release.sha256, 16)


def test_unknown_version_lists_the_supported_ones():
    with pytest.raises(Error) as info:
        config.release("3.99.0")
    assert "unknown version '3.99.0'" in str(info.value)
    assert "3.13.15, 3.13.5" in str(info.value)


def test_cli_unknown_version_is_a_clear_error():
    proc = run_tool("obtain", "--version", "2.7.18")
    assert proc.returncode == 1
    assert "error: unknown version '2.7.18'" in proc.stderr
    assert "3.13.5" in proc.stderr
    assert "Traceback" not in proc.stderr
