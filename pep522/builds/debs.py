"""Debian binary packages of any architecture, without installing them.

The guest's kernel and busybox, and a cross build's libraries, come from
the host's Debian release for the guest's architecture.  They are fetched
with `apt-get download` through a private apt configuration of that
architecture (source.Apt) and unpacked with `dpkg-deb -x`: the host's dpkg
database, its architectures and its /etc/apt are never changed, and no
root is needed.
"""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

from pep522 import steps
from pep522.errors import Error
from pep522.release import source


def apt_for(arch):
    """The private apt configuration for *arch*'s Debian packages."""
    return source.Apt([source.host_suite()], arch=arch.debian_arch)


def has_lists(apt):
    return any((apt.root / "lists").glob("*_Packages*"))


def update(apt, step):
    step.run(["apt-get", *apt.options, "-q", "update"])


def apt_cache(apt, step, *args):
    proc = subprocess.run(["apt-cache", *apt.options, *args],
                          capture_output=True, text=True)
    step.note(f"$ apt-cache {' '.join(args)}\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def dependency(apt, step, meta, prefix):
    """The one dependency of *meta* named *prefix*..., e.g. the versioned
    kernel package linux-image-arm64 depends on."""
    if not has_lists(apt):
        update(apt, step)
    for line in apt_cache(apt, step, "depends", meta).splitlines():
        words = line.split()
        if (words[:1] == ["Depends:"] and len(words) == 2
                and words[1].startswith(prefix)):
            return words[1]
    raise Error(f"apt knows no {meta} package in Debian "
                f"{source.host_suite()}; log: {steps.display(step.log)}",
                hint=f"check the network to Debian's archive; "
                     f"rm -r {apt.root}/lists to refresh its lists")


def download(apt, packages, dest, step):
    """`apt-get download` *packages* into *dest*; return the .deb paths."""
    if not has_lists(apt):
        update(apt, step)
    command = ["apt-get", *apt.options, "-q", "download", *packages]
    if step.run(command, cwd=dest, check=False) != 0:
        update(apt, step)   # the lists may name versions no longer there
        if step.run(command, cwd=dest, check=False) != 0:
            step.fail(f"apt-get download {' '.join(packages)} failed",
                      hint="check the network to Debian's archive (the "
                           "machine's apt sources name it), then run the "
                           "command again")
    debs = sorted(pathlib.Path(dest).glob("*.deb"))
    if len(debs) != len(packages):
        step.fail(f"apt-get download {' '.join(packages)} gave "
                  f"{len(debs)} .deb files")
    return debs


def unpack(debs, root, step):
    for deb in debs:
        step.run(["dpkg-deb", "-x", deb, root])
    relative_symlinks(root)


def relative_symlinks(root):
    """Point the absolute symbolic links under *root* inside *root*.

    A -dev package's libz.so -> /lib/<triplet>/libz.so.1 would otherwise
    name the host's file, which is not there (or is the wrong one).
    """
    root = pathlib.Path(root)
    for link in root.rglob("*"):
        if link.is_symlink() and os.readlink(link).startswith("/"):
            dest = root / os.readlink(link).lstrip("/")
            link.unlink()
            link.symlink_to(os.path.relpath(dest, link.parent))


def ensure_sysroot(arch, log):
    """arch.sysroot with every package *arch* needs unpacked, once.

    The guest's packages always; for a cross build also the libraries of
    its sysroot.  A stamp records which packages it holds.
    """
    packages = sorted({*arch.guest_packages,
                       *(() if arch.native else arch.sysroot_packages)})
    root = arch.sysroot
    stamp = root.parent / f"{root.name}.json"
    try:
        if json.loads(stamp.read_text())["packages"] == packages \
                and root.is_dir():
            return root
    except (OSError, ValueError, KeyError):
        pass
    apt = apt_for(arch)
    with steps.Step(f"sysroot: {len(packages)} {arch.debian_arch} packages "
                    f"into {steps.display(root)}", log) as step:
        stamp.unlink(missing_ok=True)
        if root.exists():
            shutil.rmtree(root)   # ours: made from packages only
        with tempfile.TemporaryDirectory(prefix="pep522-debs-") as tmp:
            debs = download(apt, packages, tmp, step)
            unpack(debs, root, step)
            step.note("\n".join(deb.name for deb in debs))
    stamp.write_text(json.dumps({"packages": packages}))
    return root
