"""Shared fixtures: a throw-away release with its own pins, cache and series.

The tooling tests run against a tiny fake release (a few files in a
tar.xz), so they exercise the real obtain/tree/export code in seconds
without touching build/ or the real download cache.
"""

import hashlib
import os
import pathlib
import subprocess
import sys
import tarfile

import pytest

from pep522 import config, git
from pep522.release import export, tree

ROOT = pathlib.Path(__file__).resolve().parent.parent

FILES = {
    "README.rst": "This is Python version 9.9.9\n",
    "Lib/secrets.py": "".join(f"line {i}\n" for i in range(1, 31)),
    "Modules/empty.c": "/* empty */\n",
}

# Files in a release tarball are older than anything built from them.
RELEASE_MTIME = 1_000_000_000


def run_tool(*args, env=None, cwd=ROOT):
    """Run the CLI as a user would; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "pep522", *args], cwd=cwd,
                          capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def make_tarball(directory, files=FILES, version="9.9.9"):
    src = directory / f"Python-{version}"
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
        os.utime(src / name, (RELEASE_MTIME, RELEASE_MTIME))
    tarball = directory / f"Python-{version}.tar.xz"
    with tarfile.open(tarball, "w:xz") as tar:
        tar.add(src, arcname=src.name)
    return tarball


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake release 9.9.9 pinned in a private upstream.toml."""
    tarball = make_tarball(tmp_path / "upstream")
    sha = hashlib.sha256(tarball.read_bytes()).hexdigest()
    pins = tmp_path / "upstream.toml"
    pins.write_text(f'default = "9.9.9"\n'
                    f'[releases."9.9.9"]\n'
                    f'tarball = "Python-9.9.9.tar.xz"\n'
                    f'sha256 = "{sha}"\n'
                    f'series = "9.9"\n'
                    f'debian-source = "python9.9"\n'
                    f'debian-suites = ["nowhere"]\n')
    patches = tmp_path / "patches"
    (patches / "9.9").mkdir(parents=True)
    (patches / "9.9" / "series").write_text("# test series\n")
    monkeypatch.setattr(config, "PATCHES", patches)
    monkeypatch.setattr(config, "BUILD", tmp_path / "build")
    monkeypatch.setenv("PEP522_CACHE", str(tmp_path / "cache"))
    release = config.release(path=pins)
    return Fake(release, tarball, tmp_path)


class Fake:
    def __init__(self, release, tarball, tmp_path):
        self.release = release
        self.tarball = tarball
        self.tmp_path = tmp_path
        self.target = config.Target(release)

    def patch_and_export(self):
        """A tree with two commits on top of the pristine release, exported.

        Returns the names of the two patch files.
        """
        tree.ensure(self.target, self.tarball)
        lines = self.target.src.joinpath("Lib/secrets.py").read_text()
        self.commit("Lib/secrets.py",
                    lines.replace("line 3\n", "line three\n"),
                    "secrets: spell out three")
        self.commit("Modules/new.c", "/* new */\n", "Add Modules/new.c")
        return export.export(self.target)

    def commit(self, path, text, subject):
        """Change *path* in the tree and commit it, as a developer would."""
        src = self.target.src
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(text)
        git.git(src, "add", path)
        git.git(src, "commit", "-q", "-m",
                f"{subject}\n\nWhy it matters.\n\nForwarded: not-needed",
                extra_env={"GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z"})


# `make test` builds the patched and the stock release before it runs the
# suite (pep522/checks/testing.py sets these): there, a build that is
# missing is a failure, not a skip.
UNDER_MAKE_TEST = os.environ.get("PEP522_MAKE_TEST") == "1"


def release_under_test():
    """The release `make test` tests: PEP522_VERSION, or the default."""
    return config.release(os.environ.get("PEP522_VERSION") or None)


def built(target):
    """*target*, when its interpreter is built; else a skip (a failure
    under `make test`, which builds it) that says how to build it."""
    if not target.python.exists():
        command = "make" + (f" VERSION={target.release.version}"
                            if "PEP522_VERSION" in os.environ else "") + (
                                " STOCK=1" if target.stock else "")
        message = f"{target.python} is not built: run `{command}`"
        (pytest.fail if UNDER_MAKE_TEST else pytest.skip)(message)
    return target


@pytest.fixture(scope="session")
def patched():
    """The patched build `make test` made (PEP522_VERSION or the default)."""
    return built(config.Target(release_under_test()))


@pytest.fixture(scope="session")
def stock(patched):
    """The same release without the series (`make test` builds it)."""
    return built(config.Target(patched.release, stock=True))
