"""The initramfs a QEMU guest boots: busybox, one interpreter, its stdlib.

It is a gzipped newc cpio written here (so its /dev/console node needs no
root) holding: static busybox and /init; the interpreter as
/usr/bin/python<X.Y>; the standard library from the tree's Lib/ without
tests, IDLE, tkinter and the like (with tests, for a run of Lib/test, when
asked); the build's extension modules; and the shared libraries these
load, found by reading their ELF headers (readelf) in the architecture's
library directories, on the host for a native build and in the sysroot
for a cross build.  The standard library is precompiled by a host
interpreter of the same tree.  The image is rebuilt only when what goes
into it changes.
"""

import dataclasses
import gzip
import hashlib
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess

from pep522 import steps
from pep522.errors import Error

GUEST_DIR = pathlib.Path(__file__).resolve().parent / "boot_scenarios"

# What the initramfs leaves out of the standard library.
EXCLUDED_LIB_DIRS = {"test", "tests", "idle_test", "idlelib", "tkinter",
                     "turtledemo", "ensurepip", "pydoc_data", "lib2to3",
                     "site-packages", "venv", "__phello__", "__pycache__"}
EXCLUDED_LIB_FILES = {"turtle.py", "__hello__.py", "antigravity.py",
                      "this.py"}
EXCLUDED_EXTENSIONS = ("_test", "_xxtest", "xx", "_ctypes_test", "_tkinter")
# With tests (a run of Lib/test in the guest), the test packages and the
# test extension modules go in too; the GUI and the rest still stay out.
TEST_LIB_DIRS = {"test", "tests", "__phello__"}
TEST_EXTENSIONS = ("_test", "_xxtest", "xx", "_ctypes_test")
# Bump when the initramfs layout changes, to force a rebuild.
INITRAMFS_FORMAT = 2

DIRECTORIES = ["dev", "proc", "sys", "tmp", "root", "etc"]
# The kernel opens /dev/console for /init before anything is mounted.
DEVICES = {"dev/console": (stat.S_IFCHR | 0o600, 5, 1),
           "dev/null": (stat.S_IFCHR | 0o666, 1, 3)}


@dataclasses.dataclass(frozen=True)
class Guest:
    """One interpreter build, as the initramfs takes it.

    *python* is the binary shipped; *compiler* a host interpreter of the
    same tree, which byte-compiles the standard library (the same as
    *python* for a native build); *root* where the libraries it loads
    are looked up ("/" natively, the sysroot when cross-built); *strip*
    the binutils strip for its architecture; *hint* the command that
    builds it.
    """

    name: str
    version: str
    src: pathlib.Path
    obj: pathlib.Path
    python: pathlib.Path
    compiler: pathlib.Path
    root: pathlib.Path
    strip: str
    hint: str


# --- What goes into it ------------------------------------------------------


def build_lib_dir(guest):
    """The extension modules of an out-of-tree build (pybuilddir.txt)."""
    try:
        name = (guest.obj / "pybuilddir.txt").read_text().strip()
    except OSError:
        raise Error(f"{steps.display(guest.obj)} is not built "
                    "(no pybuilddir.txt)", hint=guest.hint) from None
    return guest.obj / name


def stdlib_files(lib, tests=False):
    """Relative paths of the pure-Python stdlib we ship, from src/Lib."""
    excluded = EXCLUDED_LIB_DIRS - (TEST_LIB_DIRS if tests else set())
    for dirpath, dirnames, filenames in os.walk(lib):
        dirnames[:] = sorted(d for d in dirnames if d not in excluded)
        for name in sorted(filenames):
            path = pathlib.Path(dirpath) / name
            if path.parent == lib and name in EXCLUDED_LIB_FILES:
                continue
            if name.endswith((".pyc", ".pyo")):
                continue
            yield path.relative_to(lib)


def wanted_extension(name, tests=False):
    """Whether a lib-dynload file is shipped: no test or GUI modules."""
    excluded = tuple(e for e in EXCLUDED_EXTENSIONS
                     if not (tests and e in TEST_EXTENSIONS))
    return not name.startswith(excluded)


def file_plan(guest, busybox, library_dirs, tests=False, extra=None,
              shared_libs=None):
    """{path in the initramfs: host file} for every regular file.

    *extra* adds files ({path: host file}); *shared_libs* ({path in the
    guest: host file}) replaces the lookup of the libraries the binaries
    need (see needed_libraries).
    """
    lib = f"usr/lib/python{guest.version}"
    plan = {f"usr/bin/python{guest.version}": guest.python,
            "bin/busybox": pathlib.Path(busybox),
            "init": GUEST_DIR / "init",
            "scenarios/guest.py": GUEST_DIR / "guest.py",
            **(extra or {})}
    for rel in stdlib_files(guest.src / "Lib", tests):
        plan[f"{lib}/{rel.as_posix()}"] = guest.src / "Lib" / rel
    extensions = []
    for path in sorted(build_lib_dir(guest).iterdir()):
        if path.suffix == ".so" and wanted_extension(path.name, tests):
            plan[f"{lib}/lib-dynload/{path.name}"] = path
            extensions.append(path)
        elif path.suffix == ".py":  # _sysconfigdata_*.py
            plan[f"{lib}/{path.name}"] = path
    if shared_libs is None:
        shared_libs = needed_libraries([guest.python, *extensions],
                                       guest.root, library_dirs)
    plan.update(shared_libs)
    return plan


NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[(.+)\]")
INTERPRETER = re.compile(r"Requesting program interpreter: (/[^\]]+)\]")


def elf_needs(path):
    """The DT_NEEDED names and the program interpreter (or None) of an
    ELF file, whatever its architecture."""
    proc = subprocess.run(["readelf", "-d", "-l", "-W", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise Error(f"readelf cannot read {path}: {proc.stderr.strip()}",
                    hint="apt-get install binutils")
    interpreter = INTERPRETER.search(proc.stdout)
    return (NEEDED.findall(proc.stdout),
            interpreter.group(1) if interpreter else None)


def needed_libraries(binaries, root, library_dirs):
    """{path in the guest: host file} of every library *binaries* load.

    Libraries are looked up by name in *library_dirs* (the guest's search
    path, relative to *root*), recursively; the loader at its own path.
    """
    found, missing = {}, []
    queue = [pathlib.Path(b) for b in binaries]
    seen = set()
    while queue:
        path = queue.pop()
        names, interpreter = elf_needs(path)
        wanted = [(name, None) for name in names]
        if interpreter:
            wanted.append((interpreter.lstrip("/"), interpreter))
        for name, absolute in wanted:
            if name in seen:
                continue
            seen.add(name)
            candidates = ([absolute.lstrip("/")] if absolute else
                          [f"{d}/{name}" for d in library_dirs])
            for guest_path in candidates:
                host = pathlib.Path(root) / guest_path
                if host.exists():
                    real = pathlib.Path(os.path.realpath(host))
                    found[guest_path] = real
                    queue.append(real)
                    break
            else:
                missing.append(f"{name} (needed by {path.name})")
    if missing:
        raise Error(f"shared libraries not found under {root} in "
                    f"{', '.join(library_dirs)}: {', '.join(missing)}")
    return found


def symlinks(version):
    """{path: target} of the symbolic links of the initramfs.  /init makes
    busybox's applet links itself (busybox --install)."""
    return {"usr/bin/python3": f"python{version}", "bin/sh": "busybox"}


# --- newc cpio --------------------------------------------------------------


class Cpio:
    """A writer of the "newc" cpio format the kernel unpacks as initramfs.

    Written here rather than by cpio(1) so that device nodes and root
    ownership need no root privileges.
    """

    def __init__(self, stream):
        self.stream = stream
        self.inode = 0

    def _entry(self, name, mode, data=b"", mtime=0, rdev=(0, 0)):
        self.inode += 1
        encoded = name.encode() + b"\0"
        fields = [self.inode, mode, 0, 0, 1, mtime, len(data), 0, 0,
                  rdev[0], rdev[1], len(encoded), 0]
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.stream.write(header + encoded)
        self.stream.write(b"\0" * (-(len(header) + len(encoded)) % 4))
        self.stream.write(data)
        self.stream.write(b"\0" * (-len(data) % 4))

    def directory(self, name, mtime=0):
        self._entry(name, stat.S_IFDIR | 0o755, mtime=mtime)

    def file(self, name, data, mode=0o644, mtime=0):
        self._entry(name, stat.S_IFREG | mode, data, mtime)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def device(self, name, mode, major, minor):
        self._entry(name, mode, rdev=(major, minor))

    def close(self):
        self._entry("TRAILER!!!", 0)


def parent_dirs(paths):
    """Every directory above *paths*, parents first."""
    dirs = set()
    for path in paths:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def write_initramfs(staging, links, out):
    """Pack the *staging* tree, *links* and the device nodes into *out*."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(staging):
        dirnames.sort()
        for name in sorted(filenames):
            path = pathlib.Path(dirpath) / name
            files[path.relative_to(staging).as_posix()] = path
    dirs = parent_dirs([*files, *links, *DEVICES]) + DIRECTORIES
    partial = out.with_name(out.name + ".part")
    with gzip.GzipFile(partial, "wb", compresslevel=6, mtime=0) as stream:
        archive = Cpio(stream)
        for name in dict.fromkeys(dirs):
            archive.directory(name)
        for name, (mode, major, minor) in DEVICES.items():
            archive.device(name, mode, major, minor)
        for name, target in sorted(links.items()):
            archive.symlink(name, target)
        for name, path in files.items():
            info = path.stat()
            archive.file(name, path.read_bytes(), info.st_mode & 0o777,
                         int(info.st_mtime))
        archive.close()
    partial.replace(out)


# --- Building it ------------------------------------------------------------


def fingerprint(plan, links):
    """A digest of everything that goes into the initramfs."""
    digest = hashlib.sha256(f"format {INITRAMFS_FORMAT}\n".encode())
    for name, path in sorted(plan.items()):
        info = path.stat()
        digest.update(f"{name} {path} {info.st_size} "
                      f"{info.st_mtime_ns}\n".encode())
    for name, target in sorted(links.items()):
        digest.update(f"{name} -> {target}\n".encode())
    return digest.hexdigest()


def stage(plan, staging, guest, step, tests=False):
    """Copy *plan* into *staging* and precompile the standard library.

    Precompiled, so that no start in the guest compiles anything (the
    first start would otherwise be the slow one).  A host interpreter of
    the same tree compiles it, for the right magic number; unchecked-hash
    pycs do not depend on file times.  Lib/test holds files that must not
    compile (bad syntax on purpose), so with *tests* errors are allowed.
    """
    if staging.exists():
        shutil.rmtree(staging)
    for name, source in plan.items():
        dest = staging / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
    lib = staging / "usr" / "lib" / f"python{guest.version}"
    strip_debug_info(staging, guest, step)
    step.run([guest.compiler, "-m", "compileall", "-q", "-j0",
              "--invalidation-mode", "unchecked-hash",
              "-s", staging, "-p", "/", lib], check=not tests)


def strip_debug_info(staging, guest, step):
    """Drop the debug info of the staged interpreter and extension modules.

    It is most of their size (the build uses -g), and a smaller initramfs
    boots faster; the code is untouched.  The build itself is not changed.
    """
    if not shutil.which(guest.strip):
        step.note(f"{guest.strip} is not installed: debug info kept")
        return
    binaries = [staging / "usr" / "bin" / f"python{guest.version}",
                *sorted((staging / "usr" / "lib" / f"python{guest.version}" /
                         "lib-dynload").glob("*.so"))]
    step.run([guest.strip, "--strip-debug", *binaries])


def ensure(guest, where, plan, tests=False):
    """The initramfs of *plan* in *where*, rebuilt only when it changed."""
    suffix = "-tests" if tests else ""
    out = where / f"initramfs{suffix}.cpio.gz"
    stamp = where / f"initramfs{suffix}.json"
    links = symlinks(guest.version)
    digest = fingerprint(plan, links)
    try:
        if json.loads(stamp.read_text())["fingerprint"] == digest \
                and out.is_file():
            return out
    except (OSError, ValueError, KeyError):
        pass
    with steps.Step(f"boot: initramfs{suffix} for {guest.name} "
                    f"({len(plan)} files)",
                    where / "logs" / f"initramfs{suffix}.log") as step:
        stamp.unlink(missing_ok=True)
        stage(plan, where / f"root{suffix}", guest, step, tests)
        write_initramfs(where / f"root{suffix}", links, out)
        step.note(f"{out}: {out.stat().st_size} bytes")
    stamp.write_text(json.dumps({"fingerprint": digest}))
    return out
