"""Obtain the pristine upstream tarball and verify it against its pin.

Where the tarball comes from, in order:
1. the file the user named (TARBALL=path),
2. the download cache (see config.cache_dir()),
3. Debian's source package for the release, fetched with apt-get through a
   private configuration (its own sources list, state and cache inside the
   download cache), so it works without root and never touches /etc/apt,
4. a CPython git repository the user names (CPYTHON_GIT=path-or-url, for
   releases whose pin has a commit), exported by gitsource.py.
A tarball's SHA-256 must match upstream.toml; a tarball exported from git
is checked by its commit instead, and cached with its own SHA-256 beside
it so that a corrupted copy is noticed.
"""

import functools
import glob
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess

from pep522 import steps
from pep522.config import cache_dir
from pep522.errors import Error
from pep522.release import gitsource

SYSTEM_SOURCES = pathlib.Path("/etc/apt")
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(functools.partial(f.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path, release):
    """Raise Error unless *path* has the SHA-256 pinned for *release*."""
    actual = sha256_of(path)
    if actual != release.sha256:
        raise Error(f"checksum mismatch for {path}:\n"
                    f"  expected (upstream.toml) {release.sha256}\n"
                    f"  actual                   {actual}\n"
                    f"refusing to use it",
                    hint=f"use the original {release.tarball} from "
                         f"{download_url(release)}")


def download_url(release):
    return (f"https://www.python.org/ftp/python/{release.version}/"
            f"{release.tarball}")


def cached_tarball(release):
    return cache_dir() / release.tarball


def store(path, release):
    """Copy a verified tarball into the cache; return the cached path."""
    cached = cached_tarball(release)
    if path.resolve() != cached.resolve():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".part")
        shutil.copyfile(path, partial)
        partial.replace(cached)
    return cached


def obtain(release, tarball=None, log=None):
    """Return the path of the verified tarball of *release*.

    $CPYTHON_GIT (the make variable, or --cpython-git) names a CPython git
    repository to export the release from when no tarball is at hand.
    """
    cpython_git = os.environ.get("CPYTHON_GIT")
    if tarball:
        path = pathlib.Path(tarball).expanduser()
        if not path.is_file():
            raise Error(f"TARBALL={tarball} does not exist")
        verify(path, release)
        return store(path, release)
    cached = cached_tarball(release)
    if cached.is_file():
        verify(cached, release)
        return cached
    if release.commit and gitsource.cached_export(release).is_file():
        return verify_export(release)
    if release.debian_source:
        try:
            title = (f"obtain: {release.tarball} from Debian's "
                     f"{release.debian_source} source package")
            with steps.Step(title, log) as step:
                orig = debian_download(release, step)
                verify(orig, release)
                return store(orig, release)
        except Error as e:
            reason = str(e)
    else:
        reason = "no Debian source package carries it"
    if release.commit and cpython_git:
        title = (f"obtain: {release.version} from {cpython_git} (tag "
                 f"{gitsource.tag(release)}, commit {release.commit[:12]})")
        with steps.Step(title, log) as step:
            path = gitsource.export(release, cpython_git, step)
        export_info(path).write_text(json.dumps(
            {"commit": release.commit, "sha256": sha256_of(path)}))
        return path
    hint = (f"download {download_url(release)} and run "
            f"`make VERSION={release.version} TARBALL=/path/to/"
            f"{release.tarball}`, or put it in {cache_dir()}/")
    if release.commit:
        hint += (f"; or name a CPython git repository that has the tag "
                 f"{gitsource.tag(release)}: `make VERSION={release.version}"
                 f" CPYTHON_GIT=/path/to/cpython` (a clone of "
                 f"{gitsource.UPSTREAM_GIT}, or that URL itself)")
    raise Error(f"cannot obtain {release.tarball}: {reason}", hint=hint)


def origin(release, path):
    """Where the verified tarball *path* of *release* came from."""
    if path.name == release.tarball:
        return f"{release.tarball}, SHA-256 {release.sha256}"
    return (f"{path.name}, exported from CPython's git tag "
            f"{gitsource.tag(release)}, commit {release.commit}")


def export_info(path):
    return path.with_name(path.name + ".json")


def verify_export(release):
    """The cached git export of *release*, unless it changed since made."""
    path = gitsource.cached_export(release)
    try:
        info = json.loads(export_info(path).read_text())
    except (OSError, ValueError):
        info = {}
    actual = sha256_of(path)
    if info.get("commit") != release.commit or info.get("sha256") != actual:
        raise Error(f"{path} (exported from git) does not match the record "
                    f"made with it ({export_info(path).name}); refusing to "
                    "use it",
                    hint=f"remove {path} and run the command again with "
                         "CPYTHON_GIT=/path/to/cpython")
    return path


# Debian source packages, through a private apt configuration.

def debian_mirror(etc=SYSTEM_SOURCES):
    """The machine's Debian mirror URI and keyring, from its apt sources."""
    entries = []
    for path in sorted(glob.glob(str(etc / "sources.list.d" / "*.sources"))):
        entries += deb822_entries(pathlib.Path(path).read_text())
    for path in [etc / "sources.list",
                 *sorted((etc / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            entries += one_line_entries(path.read_text())
    for uri, keyring in entries:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/"), keyring or DEFAULT_KEYRING
    raise Error(f"no Debian mirror (a URI ending in /debian) in {etc}")


def deb822_entries(text):
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("signed-by")


def one_line_entries(text):
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] not in ("deb", "deb-src"):
            continue
        keyring = None
        if len(words) > 1 and words[1].startswith("["):
            options = []
            for word in words[1:]:
                options.append(word.strip("[]"))
                if word.endswith("]"):
                    break
            for option in options:
                if option.startswith("signed-by="):
                    keyring = option.split("=", 1)[1]
            words = [words[0], *words[len(options) + 1:]]
        if len(words) > 1:
            yield words[1], keyring


class Apt:
    """apt-get and apt-cache with a configuration private to our cache.

    Without *arch* it knows Debian's source packages of *suites*; with
    *arch* (a Debian architecture, e.g. arm64) it knows their binary
    packages of that architecture only, so that `apt-get download` works
    for a foreign architecture without one being added to the host's dpkg.
    """

    def __init__(self, suites, root=None, arch=None):
        self.root = root or cache_dir() / (f"apt-{arch}" if arch else "apt")
        uri, keyring = debian_mirror()
        kind = f"deb [arch={arch} " if arch else "deb-src ["
        lines = [f"{kind}signed-by={keyring}] {uri} {suite} main"
                 for suite in suites]
        sources = self.root / "sources.list"
        for sub in ("sources.list.d", "preferences.d", "lists/partial",
                    "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        sources.write_text("\n".join(lines) + "\n")
        self.options = [
            "-o", f"Dir::Etc::SourceList={sources}",
            "-o", f"Dir::Etc::SourceParts={self.root / 'sources.list.d'}",
            "-o", f"Dir::State::Lists={self.root / 'lists'}",
            "-o", f"Dir::Cache={self.root / 'cache'}",
            "-o", "Debug::NoLocking=1",
        ]
        if arch:
            # Nothing of the host's package state or pins: an empty dpkg
            # status and preferences of our own.
            status = self.root / "status"
            status.touch()
            self.options += [
                "-o", f"APT::Architecture={arch}",
                "-o", f"APT::Architectures={arch}",
                "-o", f"Dir::State::status={status}",
                "-o", f"Dir::Etc::Preferences={self.root / 'preferences'}",
                "-o", "Dir::Etc::PreferencesParts="
                      f"{self.root / 'preferences.d'}",
            ]

    def source_versions(self, package):
        proc = subprocess.run(["apt-cache", *self.options, "showsrc",
                               package], capture_output=True, text=True)
        return [line.split(":", 1)[1].strip()
                for line in proc.stdout.splitlines()
                if line.startswith("Version:")]


def host_suite(os_release=pathlib.Path("/etc/os-release")):
    """The codename of this machine's Debian release, e.g. bookworm."""
    try:
        text = os_release.read_text()
    except OSError:
        text = ""
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    if not match:
        raise Error(f"{os_release} names no VERSION_CODENAME: not Debian?",
                    hint="run this on Debian (or a derivative with "
                         "Debian's archive in its apt sources)")
    return match.group(1)


def upstream_part(debian_version):
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def dpkg_compare(a, b):
    older = ["dpkg", "--compare-versions", a, "lt", b]
    if subprocess.run(older).returncode == 0:
        return -1
    return 0 if a == b else 1


def debian_download(release, step):
    """Download the source package carrying *release*; return its orig."""
    if not shutil.which("apt-get"):
        raise Error("apt-get is not available on this machine")
    apt = Apt(release.debian_suites)
    package = release.debian_source
    step.run(["apt-get", *apt.options, "-q", "update"])
    candidates = [v for v in apt.source_versions(package)
                  if upstream_part(v) == release.version]
    if not candidates:
        raise Error(f"Debian {'/'.join(release.debian_suites)} has no "
                    f"{package} source package of upstream version "
                    f"{release.version}")
    version = max(candidates, key=functools.cmp_to_key(dpkg_compare))
    dest = debian_dir(release)
    dest.mkdir(parents=True, exist_ok=True)
    step.run(["apt-get", *apt.options, "-q", "source", "--download-only",
              f"{package}={version}"], cwd=dest)
    orig = dest / f"{package}_{release.version}.orig.tar.xz"
    if not orig.is_file():
        step.fail(f"apt-get did not produce {orig.name}")
    return orig


def debian_dir(release):
    """Where the Debian source package files of *release* are kept."""
    return cache_dir() / "debian" / release.debian_source
