"""Configure and compile a tree out of tree, in build/<version>/obj."""

import json
import os
import shlex
import shutil
import subprocess

from pep522 import config, steps
from pep522.builds import variants
from pep522.errors import Error
from pep522.release import source, tree

DEFAULT_PREFIX = "/usr/local"

# The tree is a git repository, which would make the build embed its
# commit in sys.version ("tags/upstream-dirty:..."); configure as for the
# release tarball.
CONFIGURE_ENV = {"ac_cv_prog_HAS_GIT": "not-found"}

# What CPython needs on Debian to build with every module our tests use
# (the devguide's list, less the optional debugging tools), and what the
# tool needs around it on a minimal system: Debian's python3 has neither
# pytest nor venv (ensurepip) without these packages, quilt applies the
# series to Debian's package.
DEBIAN_BUILD_DEPS = [
    "build-essential", "pkg-config", "git", "xz-utils", "libssl-dev",
    "libffi-dev", "zlib1g-dev", "libbz2-dev", "liblzma-dev",
    "libsqlite3-dev", "libreadline-dev", "libncurses-dev", "uuid-dev",
    "libgdbm-dev", "libgdbm-compat-dev", "tk-dev",
    "python3-pytest", "python3-venv", "quilt", "ca-certificates",
]


def missing_debian_packages(packages):
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n",
         *packages], capture_output=True, text=True)
    installed = {line.split()[0] for line in proc.stdout.splitlines()
                 if line.split()[1:2] == ["ii"]}
    return [p for p in packages if p not in installed]


def install_debian_packages(packages, log):
    """Install *packages* as root, or say how when we are not root."""
    if not packages:
        return
    command = f"apt-get install -y {' '.join(packages)}"
    if os.geteuid() != 0:
        raise Error(f"missing Debian packages: {' '.join(packages)}",
                    hint=f"sudo {command}")
    with steps.Step(f"deps: installing {' '.join(packages)}", log) as step:
        step.run(["apt-get", "-q", "update"])
        step.run(["apt-get", "-q", "install", "-y",
                  "--no-install-recommends", *packages],
                 env={"DEBIAN_FRONTEND": "noninteractive"})


def ensure_build_deps(log):
    if shutil.which("dpkg-query"):
        install_debian_packages(missing_debian_packages(DEBIAN_BUILD_DEPS),
                                log)
    missing = [tool for tool in ("cc", "make", "git", "tar", "xz")
               if not shutil.which(tool)]
    if missing:
        raise Error(f"missing build tools: {', '.join(missing)}",
                    hint="install a C compiler, make, git, tar and xz")


def configure_stamp(target):
    return target.obj / ".pep522-configure.json"


def configured(target):
    """How the tree was last configured: {"args": [...], "env": {...}}."""
    try:
        stamp = json.loads(configure_stamp(target).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def configured_prefix(target):
    """The --prefix *target* was last configured with (or the default)."""
    previous = configured(target)
    return (previous["args"][0].split("=", 1)[1] if previous
            else DEFAULT_PREFIX)


def build(target, configure_args="", prefix=None):
    """Configure (when the options changed) and make; return the python.

    Without *prefix*, the tree keeps the prefix it was configured with.
    """
    ensure_build_deps(target.logs / "deps.log")
    variants.check_compiler(target)
    env = {**CONFIGURE_ENV, **variants.environment(target)}
    previous = configured(target)
    if prefix is None:
        prefix = configured_prefix(target)
    args = [f"--prefix={prefix}", *variants.configure_args(target),
            *shlex.split(configure_args)]
    wanted = {"args": args, "env": CONFIGURE_ENV}
    target.obj.mkdir(parents=True, exist_ok=True)
    if wanted != previous or not (target.obj / "Makefile").exists():
        configure_stamp(target).unlink(missing_ok=True)
        with steps.Step(f"configure: {target.name} {shlex.join(args)}",
                        target.logs / "configure.log") as step:
            step.run([target.src / "configure", *args], cwd=target.obj,
                     env=env)
        configure_stamp(target).write_text(json.dumps(wanted))
    jobs = os.cpu_count() or 1
    with steps.Step(f"make: compiling {target.name} with make -j{jobs}",
                    target.logs / "make.log") as step:
        step.run(["make", f"-j{jobs}"], cwd=target.obj, env=env)
        report_missing_modules(step)
        step.run([target.python, "-c", "import sys; print(sys.version)"],
                 env=env)
    return target.python


def prepare(target, tarball=None):
    """obtain + tree: the verified release unpacked and patched."""
    path = source.obtain(target.release, tarball,
                         log=target.logs / "obtain.log")
    tree.ensure(target, path)
    return target


def built(target, tarball=None, configure_args=""):
    """The interpreter of *target*, obtained, patched and built as needed."""
    prepare(target, tarball)
    return build(target, configure_args)


def report_missing_modules(step):
    """Say which optional extension modules the build left out."""
    lines = step.log.read_text(errors="replace").splitlines()
    for number, line in enumerate(lines):
        if ("necessary bits to build these optional modules were not found"
                in line or "Failed to build these modules" in line):
            names = " ".join(lines[number + 1:number + 2])
            steps.say(f"  note: {line.strip()} {names.strip()}")


def link_default(target):
    """The path to show for *target*'s interpreter.

    For the default release's patched build, that is build/python, which
    this points at it; for any other build, its own obj/python.
    """
    default, _ = config.load_pins()
    if target.stock or target.variant or target.release.version != default:
        return target.python
    link = config.BUILD / "python"
    relative = target.python.relative_to(config.BUILD)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(relative)
    return link


def install(target, prefix=None, configure_args=""):
    """`make install` through CPython's own targets, under *prefix*
    (without one, the prefix the tree is configured with); return the
    installed python3."""
    build(target, configure_args, prefix)
    prefix = configured_prefix(target)
    with steps.Step(f"install: {target.name} into {prefix}",
                    target.logs / "install.log") as step:
        step.run(["make", "install"], cwd=target.obj)
    return os.path.join(prefix, "bin", "python3")
