"""Where things live, and the pinned upstream releases (upstream.toml)."""

import dataclasses
import math
import os
import pathlib
import re
import tomllib

from pep522.errors import Error

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
PATCHES = ROOT / "patches"
PINS = ROOT / "upstream.toml"

# A patched tree of release X lives in build/X; the same release built
# without the series (for side-by-side comparisons) lives in build/X-stock.
# A build variant V (variants.toml) lives in build/X-V and build/X-V-stock.
STOCK_SUFFIX = "-stock"


def cache_dir():
    """The download cache, shared by every checkout of the project."""
    if "PEP522_CACHE" in os.environ:
        return pathlib.Path(os.environ["PEP522_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "cpython-pep522"


@dataclasses.dataclass(frozen=True)
class Release:
    version: str
    tarball: str
    sha256: str
    series: str
    debian_source: str = None
    debian_suites: tuple = ()
    commit: str = None
    port_paths: tuple = ()

    @property
    def series_dir(self):
        return PATCHES / self.series


class BuildDirs:
    """Where a build under self.dir keeps its objects, logs and python.

    Every kind of build (Target, a cross build, Debian's tree) lays out
    its directory the same way, so pep522.builds.build can serve them all.
    """

    @property
    def obj(self):
        return self.dir / "obj"

    @property
    def logs(self):
        return self.dir / "logs"

    @property
    def python(self):
        return self.obj / "python"


@dataclasses.dataclass(frozen=True)
class Target(BuildDirs):
    """One build of a release: patched with its series, or stock; the
    default build or one of the variants of variants.toml."""

    release: Release
    stock: bool = False
    variant: str = ""

    @property
    def name(self):
        return (self.release.version
                + (f"-{self.variant}" if self.variant else "")
                + (STOCK_SUFFIX if self.stock else ""))

    @property
    def dir(self):
        return BUILD / self.name

    @property
    def src(self):
        return self.dir / "src"


def load_pins(path=PINS):
    with open(path, "rb") as f:
        data = tomllib.load(f)
    releases = {}
    for version, pin in data["releases"].items():
        releases[version] = Release(
            version=version,
            tarball=pin["tarball"],
            sha256=pin["sha256"].lower(),
            series=pin["series"],
            debian_source=pin.get("debian-source"),
            debian_suites=tuple(pin.get("debian-suites", ())),
            commit=pin.get("commit"),
            port_paths=tuple(pin.get("port-paths", {}).items()),
        )
    return data["default"], releases


def version_key(version):
    """Sort key of a release number: 3.13.4 before 3.13.12, and a
    pre-release (3.15.0rc1) before its final release."""
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(.*)", version)
    if not match:
        return (math.inf,), version
    *numbers, pre = match.groups()
    return tuple(int(n) for n in numbers) + (not pre,), pre


def release(version=None, path=PINS):
    """The pinned release *version* (the default one if None)."""
    default, releases = load_pins(path)
    version = version or default
    try:
        return releases[version]
    except KeyError:
        supported = ", ".join(sorted(releases, key=version_key))
        raise Error(f"unknown version {version!r}: upstream.toml pins "
                    f"{supported}",
                    hint=f"use one of them, e.g. make VERSION={default}, "
                         "or add a pin to upstream.toml") from None
