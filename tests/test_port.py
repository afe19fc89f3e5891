"""port: a series carried to another release with `git am -3`.

The source release is the fake 9.9.9 with a two-patch series; the new
release 9.10.0 is the same files with what upstream changed in between.
"""

import hashlib

import pytest

from conftest import FILES, make_tarball
from pep522 import config, git
from pep522.errors import Error
from pep522.release import export, port, port_git, port_update, series, source


def new_release(fake, files, moves=""):
    """Pin 9.10.0 (series 9.10) made of *files*; return it."""
    tarball = make_tarball(fake.tmp_path / "upstream-new", files, "9.10.0")
    sha = hashlib.sha256(tarball.read_bytes()).hexdigest()
    pins = fake.tmp_path / "port-pins.toml"
    pins.write_text(f'default = "9.9.9"\n'
                    f'[releases."9.10.0"]\n'
                    f'tarball = "Python-9.10.0.tar.xz"\n'
                    f'sha256 = "{sha}"\n'
                    f'series = "9.10"\n'
                    f'port-paths = {{{moves}}}\n')
    release = config.release("9.10.0", path=pins)
    source.obtain(release, tarball)   # into the cache, as `obtain` would
    return release


@pytest.fixture
def ported(fake):
    """The fake series, exported and its release in the cache."""
    fake.patch_and_export()
    source.obtain(fake.release, fake.tarball)
    return fake


def log_of(target):
    return git.git(target.src, "log", "--format=%s",
                   "upstream..HEAD").splitlines()


def conflicting(ported):
    """9.10.0 changed the line the first patch changes."""
    lines = FILES["Lib/secrets.py"].replace("line 3\n", "line 3 (new)\n")
    return new_release(ported, {**FILES, "Lib/secrets.py": lines})


def test_clean_port_then_export(ported):
    lines = FILES["Lib/secrets.py"].replace("line 20\n", "line twenty\n")
    release = new_release(ported, {**FILES, "Lib/secrets.py": lines})
    port.port(release, ported.release)
    target = config.Target(release)
    assert log_of(target) == ["Add Modules/new.c", "secrets: spell out three"]
    text = (target.src / "Lib/secrets.py").read_text()
    assert "line three\n" in text and "line twenty\n" in text
    names = export.export(target)
    assert series.read(release.series_dir) == names
    header = series.header(release.series_dir)
    assert header[0].startswith("# PEP 522 for CPython 9.10.0: the series "
                                "of patches/9.9")
    assert "-line 3\n+line three\n" in (
        release.series_dir / names[0]).read_text()


def test_conflict_stops_naming_patch_and_file(ported):
    release = conflicting(ported)
    with pytest.raises(Error) as info:
        port.port(release, ported.release)
    message = str(info.value)
    assert "stopped at 0001-secrets-spell-out-three.patch" in message
    assert "conflicts in: Lib/secrets.py" in message
    assert "git am --continue" in info.value.hint
    assert "make export VERSION=9.10.0" in info.value.hint
    # The tree is left for the maintainer, mid-`git am`, with both sides.
    src = config.Target(release).src
    assert (src / ".git" / "rebase-apply").is_dir()
    assert "<<<<<<<" in (src / "Lib/secrets.py").read_text()
    assert log_of(config.Target(release)) == []


RESOLVED = FILES["Lib/secrets.py"].replace("line 3\n", "line three (new)\n")


def port_resolving_conflict(ported):
    """Port to a release whose change conflicts; resolve it and go on, as a
    maintainer would.  Returns the release and its target."""
    release = conflicting(ported)
    target = config.Target(release)
    with pytest.raises(Error):
        port.port(release, ported.release)
    (target.src / "Lib/secrets.py").write_text(RESOLVED)
    git.git(target.src, "add", "Lib/secrets.py")
    port.resume(release)
    return release, target


def test_resolved_conflict_continues_and_is_replayed(ported):
    release, target = port_resolving_conflict(ported)
    assert log_of(target) == ["Add Modules/new.c", "secrets: spell out three"]
    export.export(target)
    # Porting again (say the source series changed) replays the recorded
    # resolution and goes on by itself.
    port.port(release, ported.release)
    assert log_of(target) == ["Add Modules/new.c", "secrets: spell out three"]
    assert (target.src / "Lib/secrets.py").read_text() == RESOLVED


def test_moved_file_gets_the_change(ported):
    files = dict(FILES)
    files["Lib/secrets/__init__.py"] = files.pop("Lib/secrets.py")
    release = new_release(ported, files, '"Lib/secrets.py" = '
                          '"Lib/secrets/__init__.py"')
    port.port(release, ported.release)
    target = config.Target(release)
    assert "line three\n" in (
        target.src / "Lib/secrets/__init__.py").read_text()
    assert not (target.src / "Lib/secrets.py").exists()


def test_unexported_work_is_never_dropped(ported):
    release = conflicting(ported)
    target = config.Target(release)
    with pytest.raises(Error):
        port.port(release, ported.release)
    with pytest.raises(Error, match="a port is in progress") as info:
        port.port(release, ported.release)
    assert "CONTINUE=1" in info.value.hint
    assert "<<<<<<<" in (target.src / "Lib/secrets.py").read_text()


def test_continue_without_a_port_is_an_error(ported):
    release = conflicting(ported)
    with pytest.raises(Error, match="no port is in progress"):
        port.resume(release)


def test_port_onto_itself_is_refused(ported):
    with pytest.raises(Error, match="onto itself"):
        port.port(ported.release, ported.release)


# Bringing an earlier port up to date (SINCE=<rev>).

def commit_patches(fake):
    """Record the project's patches/ in git, as the project does."""
    git.git(fake.tmp_path, "init", "-q", "-b", "main")
    git.git(fake.tmp_path, "add", "patches")
    git.git(fake.tmp_path, "commit", "-q", "-m", "the series")


def hand_port(ported):
    """9.10.0 ported by hand: the conflict resolved, a change of its own."""
    release, target = port_resolving_conflict(ported)
    # Patch 2 needs more on this release: amended in, as a maintainer would.
    (target.src / "Modules/new.c").write_text("/* new, for 9.10 */\n")
    git.git(target.src, "commit", "-q", "-a", "--amend", "--no-edit")
    export.export(target)
    return release, target


def rewrite_source_series(fake, first_text, first_subject):
    """The source series after review: patch 1 rewritten, patch 3 added."""
    src = fake.target.src
    git.git(src, "reset", "-q", "--hard", "upstream")
    fake.commit("Lib/secrets.py", first_text, first_subject)
    fake.commit("Modules/new.c", "/* new */\n", "Add Modules/new.c")
    fake.commit("README.rst", "This is Python 9.9.9 with PEP 522\n",
                "README: say so")
    export.export(fake.target)


def test_update_carries_only_the_changes(ported):
    commit_patches(ported)
    release, target = hand_port(ported)
    text = FILES["Lib/secrets.py"].replace("line 3\n", "line three\n")
    rewrite_source_series(ported, text.replace("line 9\n", "line nine\n"),
                          "secrets: spell out three and nine")
    port_update.update(release, ported.release, "HEAD")
    assert log_of(target) == ["README: say so", "Add Modules/new.c",
                              "secrets: spell out three and nine"]
    secrets = (target.src / "Lib/secrets.py").read_text()
    assert "line three (new)\n" in secrets   # the earlier resolution
    assert "line nine\n" in secrets           # the new change
    assert (target.src / "Modules/new.c").read_text() == (
        "/* new, for 9.10 */\n")             # the port's own change
    assert not port_git.in_progress(target.src)
    names = export.export(target)
    assert names[0] == "0001-secrets-spell-out-three-and-nine.patch"


def test_update_conflict_names_the_change(ported):
    commit_patches(ported)
    release, target = hand_port(ported)
    text = FILES["Lib/secrets.py"].replace("line 3\n", "line THREE\n")
    rewrite_source_series(ported, text, "secrets: shout three")
    with pytest.raises(Error) as info:
        port_update.update(release, ported.release, "HEAD")
    message = str(info.value)
    assert ("stopped at the change to "
            "0001-secrets-shout-three.patch") in message
    assert "conflicts in: Lib/secrets.py" in message
    assert "git rebase --continue" in info.value.hint
    assert port_git.in_progress(target.src) == "rebase"


def test_update_needs_the_old_series(ported):
    commit_patches(ported)
    release, _ = hand_port(ported)
    with pytest.raises(Error, match="cannot read .* at nosuchrev"):
        port_update.update(release, ported.release, "nosuchrev")
