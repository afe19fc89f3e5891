"""The architectures we boot and cross-build for (arches.toml)."""

import dataclasses
import platform
import tomllib

from pep522 import config
from pep522.errors import Error

ARCHES = config.ROOT / "arches.toml"

CROSS_KEYS = ("triplet", "cross-packages", "sysroot-packages",
              "configure-cache", "configure-env")


@dataclasses.dataclass(frozen=True)
class Arch:
    """One block of arches.toml; see its header for what each key means."""

    name: str
    debian_arch: str
    guest_packages: tuple
    qemu: str
    qemu_package: str
    machine: str
    cpu: str
    console: str
    kernel_package: str
    kernel_image: str
    library_dirs: tuple
    triplet: str = ""
    cross_packages: tuple = ()
    sysroot_packages: tuple = ()
    configure_cache: tuple = ()   # (name, value) pairs
    configure_env: tuple = ()     # (name, template) pairs

    @property
    def native(self):
        """Whether the host builds for it without a cross toolchain."""
        return self.name == host_arch()

    @property
    def sysroot(self):
        """The Debian packages of this architecture, unpacked: the guest's
        busybox and, when cross-building, its libraries."""
        return config.BUILD / f"sysroot-{self.name}"

    def cross_env(self):
        """configure's environment for a cross build into the sysroot."""
        fill = {"sysroot": self.sysroot, "triplet": self.triplet}
        return {**dict(self.configure_cache),
                **{k: v.format(**fill) for k, v in self.configure_env}}


def host_arch():
    return platform.machine()


def load(path=ARCHES):
    """{name: Arch} from *path*."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    fields = {f.name for f in dataclasses.fields(Arch)} - {"name"}
    arches = {}
    for name, block in data.items():
        values = {}
        for key, value in block.items():
            field = key.replace("-", "_")
            if field not in fields:
                raise Error(f"{path}: [{name}] has an unknown key {key!r}")
            if isinstance(value, dict):
                value = tuple(sorted(value.items()))
            elif isinstance(value, list):
                value = tuple(value)
            values[field] = value
        try:
            arches[name] = Arch(name=name, **values)
        except TypeError as e:
            raise Error(f"{path}: [{name}]: {e}") from None
    return arches


def get(name=None, path=ARCHES):
    """The Arch called *name* (default: the host's); Error if unknown or
    if a foreign one lacks the keys a cross build needs."""
    arches = load(path)
    name = name or host_arch()
    if name not in arches:
        raise Error(f"unknown architecture {name!r}: {path.name} has "
                    f"{', '.join(sorted(arches))}",
                    hint=f"use one of them, e.g. ARCH={sorted(arches)[0]}")
    arch = arches[name]
    missing = [key for key in CROSS_KEYS
               if not arch.native and not getattr(arch, key.replace("-", "_"))]
    if missing:
        raise Error(f"{path.name}: [{name}] is not this machine's "
                    f"architecture ({host_arch()}) and lacks the cross "
                    f"build keys {', '.join(missing)}")
    return arch
