"""Cross-build a release for another architecture (arches.toml).

The patched (or stock) tree of build/<version>/src is configured a second
time, out of tree, in build/<version>[-stock]-<arch>/obj, for the
architecture's triplet: Debian's cross compiler, the host build of the
same tree as --with-build-python, and the libraries of the modules that
need one (ctypes, zlib, ssl) from the architecture's Debian packages
unpacked into build/sysroot-<arch> (pep522.builds.debs).  pkg-config looks only
there, so nothing of the host's libraries leaks in.

A stamp records what the build was made from (release, series, configure
arguments and environment); while none of it changes, a re-run builds
nothing.
"""

import dataclasses
import json
import os
import shlex
import shutil
import subprocess

from pep522 import config, options, steps
from pep522.builds import arches, build, debs
from pep522.errors import Error

# The extension modules the checks in the guest need: ctypes for the
# seccomp helper of Lib/test and for rngsim, zlib and ssl for the test
# modules that import them.
REQUIRED_MODULES = ("_ctypes", "zlib", "_ssl")


@dataclasses.dataclass(frozen=True)
class CrossTarget(config.BuildDirs):
    """A build of *target*'s tree for *arch*; it reads like a Target."""

    target: config.Target
    arch: arches.Arch

    @property
    def release(self):
        return self.target.release

    @property
    def stock(self):
        return self.target.stock

    @property
    def name(self):
        return f"{self.target.name}-{self.arch.name}"

    @property
    def dir(self):
        return config.BUILD / self.name

    @property
    def src(self):
        return self.target.src

    @property
    def build_python(self):
        """The host interpreter of the same tree, which runs the build's
        Python steps and compiles the guest's standard library."""
        return self.target.python

    def make_hint(self):
        return (f"make ARCH={self.arch.name}"
                + (" STOCK=1" if self.stock else ""))


def stamp_path(cross):
    return cross.obj / ".pep522-cross.json"


def read_stamp(cross):
    try:
        stamp = json.loads(stamp_path(cross).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def build_triplet(cross):
    """The host's GNU triplet, as the tree's config.guess says."""
    proc = subprocess.run([cross.src / "config.guess"], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise Error(f"{cross.src}/config.guess failed: {proc.stderr}")
    return proc.stdout.strip()


def configure_args(cross):
    return [f"--host={cross.arch.triplet}", f"--build={build_triplet(cross)}",
            f"--with-build-python={cross.build_python}", "--prefix=/usr"]


def series_digest(target):
    """Which series the tree was made from (tree.py's stamp)."""
    stamp = json.loads((target.src / ".git" / "pep522.json").read_text())
    return stamp["series"]


def ensure_toolchain(arch, log):
    """Install the cross toolchain from the host's Debian when missing."""
    build.install_debian_packages(
        build.missing_debian_packages(list(arch.cross_packages)), log)
    compiler = f"{arch.triplet}-gcc"
    if not shutil.which(compiler):
        raise Error(f"{compiler} is not installed",
                    hint=f"apt-get install {' '.join(arch.cross_packages)}")


def missing_modules(cross):
    """The REQUIRED_MODULES the build did not produce."""
    try:
        builddir = (cross.obj / "pybuilddir.txt").read_text().strip()
    except OSError:
        return list(REQUIRED_MODULES)
    names = [p.name for p in (cross.obj / builddir).glob("*.so")]
    return [m for m in REQUIRED_MODULES
            if not any(n.startswith(m + ".") for n in names)]


def cross_build(target, arch, tarball=None):
    """Build *target*'s tree for *arch*; return the CrossTarget."""
    cross = CrossTarget(target, arch)
    ensure_toolchain(arch, cross.logs / "deps.log")
    build.built(target, tarball)   # the tree, and the host build of it
    debs.ensure_sysroot(arch, cross.logs / "sysroot.log")
    env = {**build.CONFIGURE_ENV, **arch.cross_env()}
    args = configure_args(cross)
    key = {"release": target.release.version,
           "series": series_digest(target), "args": args, "env": env}
    stamp = read_stamp(cross)
    if stamp.get("key") == key and stamp.get("built") \
            and cross.python.exists():
        return cross
    cross.obj.mkdir(parents=True, exist_ok=True)
    configured = stamp.get("key", {})
    if (configured.get("args"), configured.get("env")) != (args, env) \
            or not (cross.obj / "Makefile").exists():
        stamp_path(cross).unlink(missing_ok=True)
        with steps.Step(f"configure: {cross.name} {shlex.join(args[:1])}",
                        cross.logs / "configure.log") as step:
            step.run([cross.src / "configure", *args], cwd=cross.obj,
                     env=env)
    stamp_path(cross).write_text(json.dumps({"key": key, "built": False}))
    jobs = os.cpu_count() or 1
    with steps.Step(f"make: cross-compiling {cross.name} with make -j{jobs}",
                    cross.logs / "make.log") as step:
        step.run(["make", f"-j{jobs}"], cwd=cross.obj)
        build.report_missing_modules(step)
        missing = missing_modules(cross)
        if missing:
            step.fail(f"the cross build has no {', '.join(missing)}: its "
                      f"library is missing from {arches.ARCHES.name}'s "
                      f"sysroot-packages or was not found by configure "
                      f"(see {steps.display(cross.logs / 'configure.log')})")
    stamp_path(cross).write_text(json.dumps({"key": key, "built": True}))
    return cross


def run(args):
    arch = arches.get(args.arch)
    if arch.native:
        raise Error(f"{arch.name} is this machine's architecture: nothing "
                    "to cross-build", hint="make")
    target = config.Target(config.release(args.version), stock=args.stock)
    cross = cross_build(target, arch, args.tarball)
    steps.say(steps.display(cross.python))
    return 0


def add_parser(sub):
    parser = sub.add_parser(
        "cross", help="cross-build for another architecture",
        description="Cross-build the patched (or stock) release for an "
                    "architecture of arches.toml with Debian's cross "
                    "toolchain.")
    options.add_release(parser)
    parser.add_argument("--stock", action="store_true",
                        help="the release without the series")
    parser.add_argument("--arch", required=True,
                        help="an architecture of arches.toml, e.g. aarch64")
    parser.set_defaults(func=run)
    return parser
