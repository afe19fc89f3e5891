"""make dist: the patched tarball and the mbox are reproducible.

Runs on the fake release, so `make dist` twice (the second time from a
tree made anew, as on another machine) is checked byte for byte in
seconds.
"""

import hashlib
import shutil
import subprocess
import tarfile

from pep522 import git
from pep522.release import tree
from pep522.ship import dist


def test_dist_twice_gives_the_same_bytes(fake):
    fake.patch_and_export()
    archive, mbox = dist.dist(fake.target, fake.tarball)
    first = archive.read_bytes(), mbox.read_bytes()
    # Another machine: the tree made anew from the series, later.
    shutil.rmtree(fake.target.src)
    archive.unlink()
    archive, mbox = dist.dist(fake.target, fake.tarball)
    assert (archive.read_bytes(), mbox.read_bytes()) == first
    assert archive.name == "Python-9.9.9+pep522.tar.xz"
    assert mbox.name == "pep522-9.9.9.mbox"


def test_tarball_members_are_normalised(fake):
    fake.patch_and_export()
    archive, _ = dist.dist(fake.target, fake.tarball)
    epoch = int(git.git(fake.target.src, "log", "-1", "--format=%at"))
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names[0] == "Python-9.9.9+pep522"
        assert not any(".git" in n.split("/") for n in names)
        assert "Python-9.9.9+pep522/Modules/new.c" in names
        text = tar.extractfile("Python-9.9.9+pep522/Lib/secrets.py").read()
        for m in members:
            assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "root", "root")
            assert m.mtime == epoch
    assert b"line three\n" in text
    # The last patch's date (the fake commits are dated 2026-01-01).
    assert epoch == 1767225600


def test_sha256_file_checks(fake):
    fake.patch_and_export()
    archive, _ = dist.dist(fake.target, fake.tarball)
    line = archive.with_name(archive.name + ".sha256").read_text()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert line == f"{digest}  {archive.name}\n"
    subprocess.run(["sha256sum", "-c", "--quiet",
                    archive.name + ".sha256"], cwd=archive.parent, check=True)


def test_mbox_is_the_series_for_git_am(fake):
    names = fake.patch_and_export()
    _, mbox = dist.dist(fake.target, fake.tarball)
    series_dir = fake.release.series_dir
    assert mbox.read_bytes() == b"".join(
        (series_dir / name).read_bytes() for name in names)
    # dist() already checked `git am` of it gives the patched tree; the
    # messages and authors survive too.
    assert mbox.read_text().count("\nSubject: ") == 2


def test_empty_series_gives_the_pristine_tree(fake):
    tree.ensure(fake.target, fake.tarball)
    archive, mbox = dist.dist(fake.target, fake.tarball)
    assert mbox.read_bytes() == b""
    with tarfile.open(archive) as tar:
        readme = tar.extractfile("Python-9.9.9+pep522/README.rst").read()
    assert readme == b"This is Python version 9.9.9\n"
