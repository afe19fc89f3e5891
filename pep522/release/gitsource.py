"""A release tarball made from CPython's git repository, checked by commit.

When python.org's tarball cannot be had (no network to python.org, and no
Debian source package carries the release), the release can still be made
from a CPython git repository the user names (CPYTHON_GIT=path-or-url):
the tag v<version> must resolve to the commit pinned in upstream.toml, so
every byte comes from that commit.  A python.org tarball is that commit's
tree without the files only the repository needs (RELEASE_EXCLUDES), plus
Misc/NEWS merged from Misc/NEWS.d by blurb, as the release manager's
tooling does; for 3.13.5 this gives the tarball's files byte for byte.

The exported tarball is not python.org's file, so its SHA-256 cannot be
checked against the pin; the commit is.  source.py keeps it in the
download cache under a name holding the commit.
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile

from pep522 import config, git, steps, venvs
from pep522.errors import Error

# What release tarballs leave out of the tag's tree.
RELEASE_EXCLUDES = [".github", ".azure-pipelines", ".gitignore",
                    ".gitattributes", "Misc/NEWS.d", "Misc/mypy"]

# Where to get a repository that has every release tag.
UPSTREAM_GIT = "https://github.com/python/cpython.git"


def tag(release):
    """CPython tags release X as vX."""
    return f"v{release.version}"


def cached_export(release):
    return (config.cache_dir() / "git" /
            f"Python-{release.version}+git.{release.commit[:12]}.tar.gz")


def local(where):
    """The repository *where* names on this machine, or None for a URL."""
    path = pathlib.Path(where).expanduser()
    if path.exists():
        return path
    if "://" not in where and ":" not in where:
        raise Error(f"CPYTHON_GIT={where} does not exist",
                    hint=f"give the path of a CPython clone, or a URL "
                         f"such as {UPSTREAM_GIT}")
    return None


def checked_repository(repo, release, step):
    """The git directory of *repo* (fetched if a URL), once its release
    tag is checked to name the pinned commit."""
    name = tag(release)
    path = local(repo)
    if path is None:
        path = config.cache_dir() / "git" / "cpython.git"
        if not path.exists():
            step.run(["git", "init", "-q", "--bare", path], env=git.ENV)
        step.run(["git", "-C", path, "fetch", "-q", "--no-tags", "--depth=1",
                  repo, f"+refs/tags/{name}:refs/tags/{name}"], env=git.ENV)
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--verify",
                           "-q", f"refs/tags/{name}^{{commit}}"],
                          capture_output=True, text=True, env=git.env())
    if proc.returncode != 0:
        raise Error(f"{repo} has no tag {name}",
                    hint=f"fetch the tags (git -C {repo} fetch --tags "
                         f"{UPSTREAM_GIT}) or name a clone that has them")
    commit = proc.stdout.strip()
    if commit != release.commit:
        raise Error(f"tag {name} in {repo} is commit {commit}, but "
                    f"upstream.toml pins {release.commit}; refusing to use "
                    "it",
                    hint=f"use a clone of {UPSTREAM_GIT}, whose {name} is "
                         "the pinned commit")
    return pathlib.Path(git.git(path, "rev-parse", "--absolute-git-dir")
                        .strip())


def absent_blobs(repo, commit):
    """Paths of the commit's files whose blobs the repository lacks.

    Partial mirrors leave out their largest blobs; a release never needs
    them to build (the history map Misc/svnmap.txt, a GIF of the docs).
    """
    listing = git.git(repo, "ls-tree", "-r", "-z", "--full-tree", commit)
    entries = [line.split("\t", 1) for line in listing.split("\0") if line]
    blobs = [(meta.split()[2], path) for meta, path in entries
             if meta.split()[1] == "blob"]
    proc = subprocess.run(["git", "-C", str(repo), "cat-file",
                           "--batch-check"],
                          input="".join(f"{sha}\n" for sha, _ in blobs),
                          capture_output=True, text=True, env=git.env())
    missing = {line.split()[0] for line in proc.stdout.splitlines()
               if line.endswith(" missing")}
    return [path for sha, path in blobs if sha in missing]


def export(release, repo, step):
    """Make the release tarball of *release* from *repo*; return it."""
    path = checked_repository(repo, release, step)
    absent = absent_blobs(path, release.commit)
    if absent:
        steps.say(f"  note: absent from {repo}, left out: "
                  + ", ".join(absent))
    dest = cached_export(release)
    dest.parent.mkdir(parents=True, exist_ok=True)
    top = f"Python-{release.version}"
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        tree = pathlib.Path(tmp) / top
        tree.mkdir()
        index = {"GIT_INDEX_FILE": f"{tmp}/index", **git.ENV}
        # A private index: nothing is written into the user's repository.
        step.run(["git", "--git-dir", path, "read-tree", release.commit],
                 env=index)
        if absent:
            step.run(["git", "--git-dir", path, "--work-tree", tree,
                      "update-index", "--force-remove", "--", *absent],
                     env=index)
        step.run(["git", "--git-dir", path, "--work-tree", tree,
                  "checkout-index", "-a", "-f", f"--prefix={tree}/"],
                 env=index)
        merge_news(tree, step)
        for name in RELEASE_EXCLUDES:
            target = tree / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        date = git.git(path, "log", "-1", "--format=%ct", release.commit)
        partial = dest.with_name(dest.name + ".part")
        step.run(["tar", "-czf", partial, "-C", tmp, "--sort=name",
                  "--owner=0", "--group=0", "--numeric-owner",
                  f"--mtime=@{date.strip()}", top])
        partial.replace(dest)
    return dest


def merge_news(tree, step):
    """Misc/NEWS from Misc/NEWS.d, with blurb as a release is made."""
    python = venvs.ensure(sys.executable, config.BUILD / "venv-blurb",
                          ["blurb"], "blurb", step.log.with_name("blurb.log"))
    step.run([python.parent / "blurb", "merge", "-f", "Misc/NEWS"], cwd=tree)
    news = tree / "Misc" / "NEWS"
    text = news.read_bytes()
    # blurb 2.3 leaves out the final newline python.org's files have.
    if not text.endswith(b"\n"):
        news.write_bytes(text + b"\n")
