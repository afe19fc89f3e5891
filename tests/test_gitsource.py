"""obtain from a CPython git repository: the tag checked against its pin."""

import dataclasses
import os
import pathlib
import tarfile

import pytest

from conftest import FILES
from pep522 import cli, config, git
from pep522.errors import Error
from pep522.release import gitsource, source, tree

# What a CPython repository has and a release tarball has not.
REPO_ONLY = {
    ".github/workflows/build.yml": "on: push\n",
    ".gitignore": "*.o\n",
    ".gitattributes": "*.bat text eol=crlf\n",
    "Misc/NEWS.d/next/Library/2026-01-01.gh-1.abc.rst": "Fixed.\n",
    "Misc/mypy/README": "mypy\n",
}


def make_repo(directory, files):
    repo = directory / "cpython"
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git.git(directory, "init", "-q", "-b", "main", repo)
    git.git(repo, "add", "-A")
    git.git(repo, "commit", "-q", "-m", "Python 9.9.9")
    return repo, git.git(repo, "rev-parse", "HEAD").strip()


def pin(fake, commit):
    """The fake release, with *commit* pinned and no Debian package."""
    pins = fake.tmp_path / "git-pins.toml"
    pins.write_text(f'default = "9.9.9"\n'
                    f'[releases."9.9.9"]\n'
                    f'tarball = "Python-9.9.9.tar.xz"\n'
                    f'sha256 = "{"0" * 64}"\n'
                    f'commit = "{commit}"\n'
                    f'series = "9.9"\n')
    return config.release(path=pins)


@pytest.fixture
def repo(fake, monkeypatch):
    """A CPython-like repository tagged v9.9.9; blurb replaced by a stub."""
    path, commit = make_repo(fake.tmp_path, {**FILES, **REPO_ONLY})
    git.git(path, "tag", "v9.9.9")
    # The real blurb comes from PyPI; test_release_equivalent_tree below
    # runs it on a real release.
    monkeypatch.setattr(gitsource, "merge_news", lambda tree, step: (
        tree / "Misc" / "NEWS").write_text("merged NEWS.d\n"))
    monkeypatch.setenv("CPYTHON_GIT", str(path))
    return path, pin(fake, commit)


def names_in(tarball):
    with tarfile.open(tarball) as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())


def test_export_is_the_release_tree_and_is_cached(fake, repo):
    path, release = repo
    exported = source.obtain(release, log=fake.tmp_path / "obtain.log")
    assert exported == gitsource.cached_export(release)
    assert names_in(exported) == sorted(
        f"Python-9.9.9/{name}" for name in [*FILES, "Misc/NEWS"])
    # Later runs need neither the repository nor its tag.
    git.git(path, "tag", "-d", "v9.9.9")
    assert source.obtain(release) == exported
    # The tree records where its pristine commit came from.
    target = config.Target(release, stock=True)
    tree.ensure(target, exported)
    message = git.git(target.src, "log", "-1", "--format=%b", "upstream")
    assert f"git tag v9.9.9, commit {release.commit}" in message


def test_tag_at_another_commit_is_refused(fake, repo):
    path, release = repo
    (path / "README.rst").write_text("not the release\n")
    git.git(path, "commit", "-q", "-a", "-m", "later")
    git.git(path, "tag", "-f", "v9.9.9")
    moved = git.git(path, "rev-parse", "HEAD").strip()
    with pytest.raises(Error) as info:
        source.obtain(release, log=fake.tmp_path / "obtain.log")
    assert moved in str(info.value) and release.commit in str(info.value)
    assert "refusing" in str(info.value)
    assert not gitsource.cached_export(release).exists()


def test_missing_tag_says_how_to_fetch_it(fake, repo):
    path, release = repo
    git.git(path, "tag", "-d", "v9.9.9")
    with pytest.raises(Error, match="has no tag v9.9.9") as info:
        source.obtain(release, log=fake.tmp_path / "obtain.log")
    assert "fetch --tags" in info.value.hint


def test_url_is_fetched(fake, repo, monkeypatch):
    path, release = repo
    monkeypatch.setenv("CPYTHON_GIT", f"file://{path}")
    exported = source.obtain(release, log=fake.tmp_path / "obtain.log")
    assert "Python-9.9.9/Misc/NEWS" in names_in(exported)


def test_absent_blobs_are_left_out_and_named(fake, repo, capsys):
    path, release = repo
    blob = git.git(path, "rev-parse", "HEAD:Modules/empty.c").strip()
    (path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    exported = source.obtain(release, log=fake.tmp_path / "obtain.log")
    assert "Python-9.9.9/Modules/empty.c" not in names_in(exported)
    assert "left out: Modules/empty.c" in capsys.readouterr().out


def test_changed_cached_export_is_refused(fake, repo):
    _, release = repo
    exported = source.obtain(release, log=fake.tmp_path / "obtain.log")
    exported.write_bytes(b"truncated")
    with pytest.raises(Error, match="does not match the record"):
        source.obtain(release)


def test_nothing_available_names_tarball_and_git(fake, monkeypatch):
    monkeypatch.delenv("CPYTHON_GIT", raising=False)
    release = pin(fake, "1" * 40)
    with pytest.raises(Error) as info:
        source.obtain(release)
    assert "no Debian source package" in str(info.value)
    hint = info.value.hint
    assert "TARBALL=" in hint and "CPYTHON_GIT=" in hint
    assert "tag v9.9.9" in hint and gitsource.UPSTREAM_GIT in hint


def test_cli_option_is_the_make_variable(fake, monkeypatch):
    seen = []
    monkeypatch.setenv("CPYTHON_GIT", "")   # restored after the test
    monkeypatch.setattr(source, "obtain", lambda release, tarball, log: (
        seen.append(os.environ["CPYTHON_GIT"]) or fake.tarball))
    assert cli.main(["obtain", "--cpython-git", "/src/cpython"]) == 0
    assert seen == ["/src/cpython"]


@pytest.mark.skipif(not os.environ.get("CPYTHON_GIT"),
                    reason="needs a CPython git repository with tag v3.13.5:"
                    " run with CPYTHON_GIT=/path/to/cpython (a clone of "
                    "https://github.com/python/cpython.git)")
def test_release_equivalent_tree(tmp_path, monkeypatch):
    """3.13.5 from git has python.org's files, byte for byte, blurb too."""
    official = config.release("3.13.5")
    tarball = source.obtain(official)   # python.org's (cache or Debian)
    # CPython's tag v3.13.5, as `git rev-parse v3.13.5^{commit}` says.
    release = dataclasses.replace(
        official, commit="6cb20a219a860eaf687b2d968b41c480c7461909",
        debian_source=None)
    monkeypatch.setenv("PEP522_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(config, "BUILD", tmp_path / "build")
    exported = source.obtain(release, log=tmp_path / "obtain.log")
    absent = gitsource.absent_blobs(pathlib.Path(os.environ["CPYTHON_GIT"]),
                                    release.commit)
    trees = {}
    for name, path in (("python.org", tarball), ("git", exported)):
        with tarfile.open(path) as tar:
            trees[name] = {m.name: tar.extractfile(m).read()
                           for m in tar.getmembers() if m.isfile()}
    expected = {name: data for name, data in trees["python.org"].items()
                if name.split("/", 1)[1] not in absent}
    assert trees["git"].keys() == expected.keys()
    different = [name for name in expected
                 if trees["git"][name] != expected[name]]
    assert different == []
