"""A Debian chroot made with mmdebstrap, kept under build/chroot/, and
commands run inside it.

The series has to work on the distributions people run, not only on the
machine it was built on.  Debian 13 (trixie) is the default base, and its
C library (glibc 2.41) serves getrandom() from the vDSO on current
kernels, which changes what a seccomp filter sees.  A chroot gives that
userland on this machine's kernel in about two minutes, without a VM.

* ensure(spec) makes the chroot once with `mmdebstrap` (as root) and
  reuses it while the same options would make it again; a new one is
  made beside the old one and swapped in only when complete.
* run(root, argv, binds=...) runs a command inside it in a private mount
  namespace (`unshare --mount`): /proc, /dev, /dev/pts and the requested
  host directories are mounted there for the command only, and vanish
  with the namespace when it exits, even if it fails or is killed.

Both need root; as another user they stop with the command to run.
"""

import dataclasses
import json
import os
import shlex
import shutil
import subprocess

from pep522 import config, steps
from pep522.builds import build
from pep522.errors import Error
from pep522.release import source

HOST_TOOLS = {"mmdebstrap": "mmdebstrap", "unshare": "util-linux"}


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a chroot is made of: suite, mmdebstrap variant, packages.

    *debs* are local .deb files (absolute paths) installed with the
    packages; *tag* tells apart chroots of one suite and variant that
    hold different packages, so that they do not replace each other.
    """

    suite: str
    variant: str = "buildd"
    include: tuple = ()
    components: tuple = ("main",)
    debs: tuple = ()
    tag: str = ""

    @property
    def name(self):
        return "-".join(filter(None, (self.suite, self.variant, self.tag)))

    @property
    def root(self):
        return config.BUILD / "chroot" / self.name

    def stamp(self, mirror):
        return {"suite": self.suite, "variant": self.variant,
                "include": sorted(self.include),
                "components": list(self.components), "mirror": mirror,
                "debs": {str(deb): source.sha256_of(deb)
                         for deb in self.debs}}

    def options(self):
        """mmdebstrap's options for the packages, local .debs included.

        mmdebstrap installs a local .deb given to --include only if the
        new root holds it at the same path: the setup hooks copy it in,
        and a customize hook removes the copies.
        """
        options = [f"--variant={self.variant}",
                   f"--components={','.join(self.components)}"]
        if self.include:
            options.append(f"--include={','.join(self.include)}")
        # A value that starts with "/" is one path: one option per .deb.
        options += [f"--include={deb}" for deb in self.debs]
        for folder in sorted({str(deb.parent) for deb in self.debs}):
            debs = [str(deb) for deb in self.debs
                    if str(deb.parent) == folder]
            options += [
                f'--setup-hook=mkdir -p "$1"{shlex.quote(folder)}',
                f"--setup-hook=copy-in {shlex.join(debs)} "
                f"{shlex.quote(folder)}",
                "--customize-hook=rm -f " + " ".join(
                    f'"$1"{shlex.quote(deb)}' for deb in debs)]
        return options


def require_root(what):
    if os.geteuid() != 0:
        raise Error(f"{what} needs root (mmdebstrap, chroot and mount "
                    "namespaces)", hint="run the same command as root, "
                    "e.g. with sudo")


def ensure_host_tools(log):
    missing = sorted({package for tool, package in HOST_TOOLS.items()
                      if not shutil.which(tool)})
    build.install_debian_packages(missing, log)


def stamp_path(root):
    return root.parent / f"{root.name}.json"


def ensure(spec, log=None):
    """The root directory of the chroot *spec*, made when needed."""
    require_root(f"the {spec.name} chroot")
    log = log or config.BUILD / "chroot" / "logs" / f"{spec.name}.log"
    ensure_host_tools(log.with_name("deps.log"))
    mirror, _ = source.debian_mirror()
    wanted = spec.stamp(mirror)
    try:
        made = json.loads(stamp_path(spec.root).read_text())
    except (OSError, ValueError):
        made = None
    if made == wanted and (spec.root / "usr" / "bin").is_dir():
        return spec.root
    new = spec.root.with_name(spec.root.name + ".new")
    if new.exists():
        shutil.rmtree(new)   # ours, from an interrupted run
    new.parent.mkdir(parents=True, exist_ok=True)
    command = ["mmdebstrap", *spec.options(), spec.suite, new, mirror]
    with steps.Step(f"chroot: mmdebstrap {spec.suite} ({spec.variant}, "
                    f"{len(spec.include) + len(spec.debs)} extra packages) "
                    "into "
                    f"{steps.display(spec.root)}", log) as step:
        try:
            step.run(command)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        stamp_path(spec.root).unlink(missing_ok=True)
        if spec.root.exists():
            shutil.rmtree(spec.root)
        new.rename(spec.root)
        stamp_path(spec.root).write_text(json.dumps(wanted, indent=1))
    return spec.root


def mount_script(root, binds):
    """The shell lines that mount what a command in *root* needs."""
    lines = ["set -e",
             f"mount -t proc proc {shlex.quote(str(root / 'proc'))}",
             f"mount --rbind /dev {shlex.quote(str(root / 'dev'))}",
             f"mount -t tmpfs tmpfs {shlex.quote(str(root / 'tmp'))}"]
    for path in binds:
        inside = root / str(path).lstrip("/")
        lines.append(f"mkdir -p {shlex.quote(str(inside))}")
        lines.append(f"mount --bind {shlex.quote(str(path))} "
                     f"{shlex.quote(str(inside))}")
    return lines


def command(root, argv, binds=(), cwd="/", env=None):
    """The host argv that runs *argv* in *root* in a private namespace.

    Host directories in *binds* appear at the same path inside.  *env*
    replaces the environment inside (with a PATH of the chroot's own).
    """
    inner = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
             "HOME": "/root", "LC_ALL": "C.UTF-8", **(env or {})}
    script = mount_script(root, binds) + [
        "exec chroot " + shlex.quote(str(root)) + " /usr/bin/env -i " +
        " ".join(shlex.quote(f"{k}={v}") for k, v in inner.items()) +
        " /bin/sh -c " + shlex.quote(f"cd {shlex.quote(cwd)} && exec " +
                                     shlex.join(map(str, argv)))]
    return ["unshare", "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", "\n".join(script)]


def run(root, argv, step, binds=(), cwd="/", env=None, check=True):
    """Run *argv* inside *root*, its output appended to *step*'s log."""
    require_root("running a command in a chroot")
    return step.run(command(root, argv, binds, cwd, env), check=check)
