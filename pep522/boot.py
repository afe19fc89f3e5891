"""Early-boot check: the patch on a real Linux kernel whose RNG is not ready.

Every other test runs on a machine whose kernel RNG was initialised long
ago, so what PEP 522 changes (startup and ``os.urandom()`` while the RNG
is not ready) never happens there; rngsim only simulates it.  ``boot``
shows it for real: it boots Debian's own kernel in QEMU (software
emulation, no RDRAND/RDSEED, no virtio-rng, boot loader and CPU entropy
not trusted), where ``/init`` starts before the kernel has initialised its
RNG, and runs the scenarios of pep522/boot_scenarios/ there as early-boot
code, with the patched and the stock interpreter side by side.

What it needs, installed from Debian's packages when missing:
qemu-system-x86 and busybox-static.  The kernel package is downloaded with
``apt-get download`` and only its ``vmlinuz`` kept, in the download cache:
nothing of the host's own boot setup is touched.  The initramfs (a newc
cpio written here, so no root is needed for its /dev/console node) holds
busybox, the interpreter, the shared libraries it and its extension
modules need, and the standard library without tests, IDLE, tkinter and
the like, precompiled.  It is rebuilt only when what goes into it changes.

Any blocking call (a blocking getrandom(), a read of /dev/random or
/dev/urandom) makes the kernel initialise its RNG for good, so every
scenario that needs "not ready" gets its own boot, or (``--combine``)
shares one boot with scenarios the patched build leaves the RNG alone in.
"""

import argparse
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
import tempfile
import time

from pep522 import build, config, options, steps
from pep522.errors import Error

GUEST_DIR = pathlib.Path(__file__).resolve().parent / "boot_scenarios"
MARK = "@@pep522"

QEMU = "qemu-system-x86_64"
BUSYBOX = "busybox"
# Debian package that provides each host tool, installed when it is missing.
HOST_TOOLS = {QEMU: "qemu-system-x86", BUSYBOX: "busybox-static"}
KERNEL_META_PACKAGE = "linux-image-amd64"

# The guest: one CPU without RDRAND/RDSEED, no default devices (so no
# virtio-rng), enough memory for the unpacked initramfs.
CPU = "qemu64,-rdrand,-rdseed"
MEMORY_MB = 1024
KERNEL_ARGS = [
    "console=ttyS0",
    # Keep kernel messages off the console (the init dumps dmesg at the end).
    "quiet",
    # A panic (e.g. /init dying) reboots at once, and -no-reboot exits.
    "panic=-1",
    # Neither the CPU nor the boot loader (QEMU passes a seed) may credit
    # entropy: the RNG stays uninitialised until something waits for it.
    "random.trust_cpu=off",
    "random.trust_bootloader=off",
]
DEFAULT_TIMEOUT = 300

# Scenario numbers and what the table calls them.
SCENARIOS = {
    1: "startup, import random",
    2: "os.urandom(16)",
    3: "secrets.token_bytes(16)",
    4: "wait_for_system_rng() first",
    5: "import multiprocessing",
}
# Scenarios reported on several rows of the table.
ROWS = {1: ["startup: not ready / ready", "import random: not ready / ready"]}
# Scenario 4 must be the first command of its boot: it is never combined.
ALONE = {4}
# The order in which combinable scenarios share a boot: those that leave
# the RNG uninitialised on the patched build first, the one that
# initialises it (3) last.
COMBINED_ORDER = [1, 5, 2, 3]
QUICK = [1, 2, 3]

# PEP 522's exception for os.urandom() while the RNG is not ready.
EAGAIN = 11
PEP522_MESSAGE = ("[Errno 11] system random number generator is not ready; "
                  "see secrets.token_bytes()")
# "About as long": the stall we look for is the kernel's jitter entropy
# collection, about a second; software emulation on a busy host adds noise
# of a few tenths.  The best start while not ready may be at most this much
# (or 50%) slower than the best once ready.
STALL_TOLERANCE = 0.5

# What the initramfs leaves out of the standard library.
EXCLUDED_LIB_DIRS = {"test", "tests", "idle_test", "idlelib", "tkinter",
                     "turtledemo", "ensurepip", "pydoc_data", "lib2to3",
                     "site-packages", "venv", "__phello__", "__pycache__"}
EXCLUDED_LIB_FILES = {"turtle.py", "__hello__.py", "antigravity.py",
                      "this.py"}
EXCLUDED_EXTENSIONS = ("_test", "_xxtest", "xx", "_ctypes_test", "_tkinter")
# Bump when the initramfs layout changes, to force a rebuild.
INITRAMFS_FORMAT = 1


def boot_dir(target):
    """Everything of the check for *target*: build/boot/<name>/."""
    return config.BUILD / "boot" / target.name


# --- Host tools and the kernel --------------------------------------------


def ensure_host_tools(log):
    """Install qemu and busybox from Debian's packages when missing."""
    missing = [package for tool, package in HOST_TOOLS.items()
               if not shutil.which(tool)]
    build.install_debian_packages(missing, log)
    for tool in HOST_TOOLS:
        if not shutil.which(tool):
            raise Error(f"{tool} is not installed",
                        hint=f"apt-get install {HOST_TOOLS[tool]}")


def kernel_cache():
    return config.cache_dir() / "kernel"


def cached_kernel():
    """The newest vmlinuz in the cache, or None."""
    found = sorted(kernel_cache().glob("vmlinuz-*"))
    return found[-1] if found else None


def kernel_package(step):
    """The versioned package linux-image-amd64 depends on, e.g.
    linux-image-6.1.0-30-amd64: the meta package carries no kernel."""
    for attempt in range(2):
        proc = subprocess.run(["apt-cache", "depends", KERNEL_META_PACKAGE],
                              capture_output=True, text=True)
        step.note(proc.stdout + proc.stderr)
        for line in proc.stdout.splitlines():
            words = line.split()
            if (words[:1] == ["Depends:"] and len(words) == 2
                    and words[1].startswith("linux-image-")):
                return words[1]
        if attempt == 0 and os.geteuid() == 0:
            step.run(["apt-get", "-q", "update"])
    raise Error(f"apt knows no {KERNEL_META_PACKAGE} package",
                hint="sudo apt-get update")


def kernel(log):
    """Debian's kernel image, downloaded once into the cache."""
    cached = cached_kernel()
    if cached:
        return cached
    with steps.Step("boot: downloading Debian's kernel (only vmlinuz is "
                    "kept)", log) as step:
        package = kernel_package(step)
        with tempfile.TemporaryDirectory(prefix="pep522-kernel-") as tmp:
            tmp = pathlib.Path(tmp)
            if step.run(["apt-get", "-q", "download", package], cwd=tmp,
                        check=False) != 0 and os.geteuid() == 0:
                step.run(["apt-get", "-q", "update"])
                step.run(["apt-get", "-q", "download", package], cwd=tmp)
            debs = list(tmp.glob("*.deb"))
            if not debs:
                step.fail(f"apt-get download {package} produced no .deb",
                          hint="sudo apt-get update")
            step.run(["dpkg-deb", "-x", debs[0], tmp / "x"])
            images = sorted((tmp / "x" / "boot").glob("vmlinuz-*"))
            if not images:
                step.fail(f"{debs[0].name} has no boot/vmlinuz-*")
            kernel_cache().mkdir(parents=True, exist_ok=True)
            dest = kernel_cache() / images[0].name
            partial = dest.with_name(dest.name + ".part")
            shutil.copyfile(images[0], partial)
            partial.replace(dest)
            step.note(f"kept {dest} from {debs[0].name}")
    return dest


# --- What goes into the initramfs -----------------------------------------


def make_hint(target):
    return "make" + (" STOCK=1" if target.stock else "")


def build_lib_dir(target):
    """The extension modules of an out-of-tree build (pybuilddir.txt)."""
    try:
        name = (target.obj / "pybuilddir.txt").read_text().strip()
    except OSError:
        raise Error(f"{steps.display(target.obj)} is not built "
                    "(no pybuilddir.txt)", hint=make_hint(target)) from None
    return target.obj / name


def python_version(target):
    """"3.13" for a build of 3.13.x: the name of its lib directory."""
    return ".".join(target.release.version.split(".")[:2])


def stdlib_files(lib):
    """Relative paths of the pure-Python stdlib we ship, from src/Lib."""
    for dirpath, dirnames, filenames in os.walk(lib):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in EXCLUDED_LIB_DIRS)
        for name in sorted(filenames):
            path = pathlib.Path(dirpath) / name
            if path.parent == lib and name in EXCLUDED_LIB_FILES:
                continue
            if name.endswith((".pyc", ".pyo")):
                continue
            yield path.relative_to(lib)


def wanted_extension(name):
    """Whether a lib-dynload file is shipped: no test or GUI modules."""
    return not name.startswith(EXCLUDED_EXTENSIONS)


def file_plan(target, busybox_path, shared_libs=None):
    """{path in the initramfs: host file} for every regular file.

    *shared_libs* maps the binaries to the libraries they need; by default
    it is asked of ldd.
    """
    version = python_version(target)
    lib = f"usr/lib/python{version}"
    plan = {f"usr/bin/python{version}": target.python,
            "bin/busybox": pathlib.Path(busybox_path),
            "init": GUEST_DIR / "init",
            "scenarios/guest.py": GUEST_DIR / "guest.py"}
    for rel in stdlib_files(target.src / "Lib"):
        plan[f"{lib}/{rel.as_posix()}"] = target.src / "Lib" / rel
    builddir = build_lib_dir(target)
    extensions = []
    for path in sorted(builddir.iterdir()):
        if path.suffix == ".so" and wanted_extension(path.name):
            plan[f"{lib}/lib-dynload/{path.name}"] = path
            extensions.append(path)
        elif path.suffix == ".py":  # _sysconfigdata_*.py
            plan[f"{lib}/{path.name}"] = path
    binaries = [target.python, pathlib.Path(busybox_path), *extensions]
    if shared_libs is None:
        shared_libs = needed_libraries(binaries)
    for needed in shared_libs:
        plan[needed.lstrip("/")] = pathlib.Path(os.path.realpath(needed))
    return plan


LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def parse_ldd(output):
    """The library paths in ldd's output; Error for a missing one."""
    missing = [line.split()[0] for line in output.splitlines()
               if "not found" in line]
    if missing:
        raise Error(f"shared libraries not found: {', '.join(missing)}")
    return sorted({m.group(1) for m in map(LDD_LINE.search,
                                           output.splitlines()) if m})


def needed_libraries(binaries):
    """The shared libraries *binaries* load, as ldd resolves them here."""
    proc = subprocess.run(["ldd", *map(str, binaries)], capture_output=True,
                          text=True)
    # A static binary makes ldd exit 1 ("not a dynamic executable").
    return parse_ldd(proc.stdout)


def symlinks(version, busybox_applets):
    """{path: target} of the symbolic links of the initramfs."""
    links = {"usr/bin/python3": f"python{version}"}
    for applet in busybox_applets:
        if applet != "busybox":
            links[f"bin/{applet}"] = "busybox"
    return links


DIRECTORIES = ["dev", "proc", "sys", "tmp", "root", "etc"]
# The kernel opens /dev/console for /init before anything is mounted.
DEVICES = {"dev/console": (stat.S_IFCHR | 0o600, 5, 1),
           "dev/null": (stat.S_IFCHR | 0o666, 1, 3)}


def busybox_applets(busybox_path):
    proc = subprocess.run([str(busybox_path), "--list"], capture_output=True,
                          text=True)
    applets = proc.stdout.split()
    if proc.returncode != 0 or "sh" not in applets:
        raise Error(f"{busybox_path} --list did not list a shell",
                    hint="apt-get install busybox-static")
    return applets


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


# --- Building the initramfs -------------------------------------------------


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


def stage(plan, staging, target, step):
    """Copy *plan* into *staging* and precompile the standard library.

    Precompiled, so that no start in the guest compiles anything (the
    first start would otherwise be the slow one).  The interpreter under
    test compiles it, for the right magic number; unchecked-hash pycs do
    not depend on file times.
    """
    if staging.exists():
        shutil.rmtree(staging)
    for name, source in plan.items():
        dest = staging / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
    lib = staging / "usr" / "lib" / f"python{python_version(target)}"
    strip_debug_info(staging, target, step)
    step.run([target.python, "-m", "compileall", "-q", "-j0",
              "--invalidation-mode", "unchecked-hash",
              "-s", staging, "-p", "/", lib])


def strip_debug_info(staging, target, step):
    """Drop the debug info of the staged interpreter and extension modules.

    It is most of their size (the build uses -g), and a smaller initramfs
    boots faster; the code is untouched.  The build itself is not changed.
    """
    if not shutil.which("strip"):
        step.note("strip is not installed: debug info kept")
        return
    version = python_version(target)
    binaries = [staging / "usr" / "bin" / f"python{version}",
                *sorted((staging / "usr" / "lib" / f"python{version}" /
                         "lib-dynload").glob("*.so"))]
    step.run(["strip", "--strip-debug", *binaries])


def initramfs(target):
    """The initramfs for *target*, rebuilt only when its content changed."""
    where = boot_dir(target)
    out = where / "initramfs.cpio.gz"
    stamp = where / "initramfs.json"
    busybox_path = shutil.which(BUSYBOX)
    plan = file_plan(target, busybox_path)
    links = symlinks(python_version(target), busybox_applets(busybox_path))
    digest = fingerprint(plan, links)
    try:
        if json.loads(stamp.read_text())["fingerprint"] == digest \
                and out.is_file():
            return out
    except (OSError, ValueError, KeyError):
        pass
    with steps.Step(f"boot: initramfs for {target.name} ({len(plan)} "
                    "files)", where / "logs" / "initramfs.log") as step:
        stamp.unlink(missing_ok=True)
        stage(plan, where / "root", target, step)
        write_initramfs(where / "root", links, out)
        step.note(f"{out}: {out.stat().st_size} bytes")
    stamp.write_text(json.dumps({"fingerprint": digest}))
    return out


# --- Booting ----------------------------------------------------------------


def kernel_command_line(scenarios):
    return " ".join([*KERNEL_ARGS,
                     "pep522_scenarios=" + ",".join(map(str, scenarios))])


def qemu_argv(vmlinuz, initrd, serial_log, scenarios, accel="tcg"):
    return [QEMU, "-nodefaults", "-no-user-config",
            "-accel", accel, "-cpu", CPU, "-smp", "1",
            "-m", str(MEMORY_MB), "-display", "none", "-monitor", "none",
            "-serial", f"file:{serial_log}", "-no-reboot",
            "-kernel", str(vmlinuz), "-initrd", str(initrd),
            "-append", kernel_command_line(scenarios)]


@dataclasses.dataclass
class Boot:
    """One boot: its scenarios, the parsed markers, how long it took."""

    scenarios: list
    marks: dict
    seconds: float
    log: pathlib.Path


def boot(target, vmlinuz, initrd, scenarios, timeout, accel):
    """Boot once running *scenarios*; return the parsed serial log."""
    logs = boot_dir(target) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    name = "boot-" + "-".join(map(str, scenarios))
    serial_log = logs / f"{name}.serial.log"
    qemu_log = logs / f"{name}.qemu.log"
    serial_log.write_text("")
    argv = qemu_argv(vmlinuz, initrd, serial_log, scenarios, accel)
    steps.say(f"boot: {target.name}, scenario "
              f"{','.join(map(str, scenarios))} "
              f"(log: {steps.display(serial_log)})")
    start = time.monotonic()
    with open(qemu_log, "w") as out:
        out.write(" ".join(argv) + "\n")
        out.flush()
        try:
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Error(f"boot of {target.name} (scenarios {scenarios}) did "
                        f"not finish in {timeout}s; serial log: "
                        f"{steps.display(serial_log)}\n"
                        f"{steps.tail(serial_log)}",
                        hint="see the log; --timeout SECONDS gives it "
                             "longer") from None
    seconds = time.monotonic() - start
    marks = parse_serial(serial_log.read_text(errors="replace"))
    if "done" not in marks:
        raise Error(f"boot of {target.name} (scenarios {scenarios}) ended "
                    f"before /init finished; serial log: "
                    f"{steps.display(serial_log)}, qemu: "
                    f"{steps.display(qemu_log)}\n"
                    f"{steps.tail(serial_log) or steps.tail(qemu_log)}")
    steps.say(f"  done in {seconds:.1f}s")
    return Boot(list(scenarios), marks, seconds, serial_log)


def parse_value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_serial(text):
    """{KEY: values} from the "@@pep522 KEY ..." lines of a serial log.

    Values are a JSON object, "k=v" words, or (KEY ending in ".text") the
    rest of the line.  The marker may follow other output on its line.
    """
    marks = {}
    for line in text.splitlines():
        at = line.find(MARK + " ")
        if at < 0:
            continue
        key, _, rest = line[at + len(MARK) + 1:].strip().partition(" ")
        rest = rest.strip()
        if key.endswith(".text"):
            marks[key] = rest
        elif rest.startswith("{"):
            try:
                marks[key] = json.loads(rest)
            except ValueError:
                marks[key] = {"unparsed": rest}
        else:
            marks[key] = {k: parse_value(v) for k, _, v in
                          (word.partition("=") for word in rest.split())}
    return marks


CRNG_LINE = re.compile(r"\[\s*([0-9.]+)\]\s*random: crng init done")


def crng_time(marks):
    """Uptime (seconds) at which the kernel logged "crng init done"."""
    match = CRNG_LINE.search(marks.get("crng.text", ""))
    return float(match.group(1)) if match else None


# --- Plans, verdicts, table ------------------------------------------------


def boot_plan(scenarios, combine):
    """The boots that run *scenarios*: a list of scenario lists."""
    scenarios = sorted(set(scenarios))
    if not combine:
        return [[s] for s in scenarios]
    shared = [s for s in COMBINED_ORDER if s in scenarios]
    plan = [shared] if shared else []
    return plan + [[s] for s in scenarios if s in ALONE]


def elapsed(mark):
    return mark["end"] - mark["start"]


def ready(marks, key):
    """The RNG state a probe reported: True, False or None (no probe)."""
    value = marks.get(key)
    return value.get("ready") if isinstance(value, dict) else None


class Outcome:
    """One scenario on one build: its table cells and failed assertions.

    *cell* is one string, or a list of them for a scenario with several
    rows (ROWS).
    """

    def __init__(self, cell, problems=()):
        self.cells = [cell] if isinstance(cell, str) else list(cell)
        self.problems = list(problems)

    @property
    def cell(self):
        return "; ".join(self.cells)

    @property
    def ok(self):
        return not self.problems


def check(problems, condition, what):
    if not condition:
        problems.append(what)


def rng_word(is_ready):
    """The RNG state after a step, as the table says it."""
    return {True: "RNG ready after", False: "RNG not ready after"}.get(
        is_ready, "RNG state unknown")


def runs(marks, key):
    """The times of KEY.1, KEY.2, ... (a repeated start), in order."""
    found = []
    while f"{key}.{len(found) + 1}" in marks:
        found.append(marks[f"{key}.{len(found) + 1}"])
    if not found:
        raise KeyError(key)
    return found


def startup_times(marks, name, problems):
    """(first, best) while not ready and best once ready, for *name*."""
    cold = runs(marks, f"s1.{name}_cold")
    warm = runs(marks, f"s1.{name}_ready")
    for run_ in cold + warm:
        check(problems, run_["rc"] == 0, f"python3 ({name}) exited with "
              f"status {run_['rc']}")
    return (elapsed(cold[0]), min(map(elapsed, cold)),
            min(map(elapsed, warm)))


def about_as_long(cold, warm):
    """Whether a start while not ready is no slower than *warm* plus noise.

    Best runs are compared: a stall in one run initialises the RNG, which
    the probes catch, so only noise makes the best of a few runs differ.
    """
    return cold <= max(warm + STALL_TOLERANCE, warm * 1.5)


def outcome_1(marks):
    problems = []
    check(problems, ready(marks, "s1.before") is False,
          "RNG was already ready before startup")
    start = startup_times(marks, "start", problems)
    imp = startup_times(marks, "random", problems)
    check(problems, ready(marks, "s1.after_start") is False,
          "startup initialised the RNG")
    check(problems, ready(marks, "s1.after_random") is False,
          "import random initialised the RNG")
    check(problems, ready(marks, "s1.after_seed") is True,
          "a blocking read did not initialise the RNG")
    check(problems, about_as_long(start[1], start[2]),
          f"startup took {start[1]:.2f}s, {start[2]:.2f}s once ready")
    check(problems, about_as_long(imp[1], imp[2]),
          f"import random took {imp[1]:.2f}s, {imp[2]:.2f}s once ready")
    return Outcome([startup_cell(start, ready(marks, "s1.after_start")),
                    startup_cell(imp, ready(marks, "s1.after_random"))],
                   problems)


def startup_cell(times, is_ready):
    """"first (best) / ready" seconds and the RNG state afterwards."""
    first, best, warm = times
    best_text = f" (best {best:.2f}s)" if f"{best:.2f}" != f"{first:.2f}" \
        else ""
    return f"{first:.2f}s{best_text} / {warm:.2f}s; {rng_word(is_ready)}"


def call_cell(call):
    """"raised X" or "returned" with the time and RNG state after."""
    if call.get("outcome") == "raised":
        what = f"{call['type']}"
        if call.get("errno") is not None:
            what += f" [Errno {call['errno']}]"
    else:
        what = "returned"
    blocked = (call.get("ready_before") is False
               and call.get("ready_after") is True)
    return (f"{what} in {call.get('seconds', 0):.2f}s"
            f"{' (blocked)' if blocked else ''}; "
            f"{rng_word(call.get('ready_after'))}")


def call_of(marks, n):
    """The guest's report of scenario *n*'s call, or an Error."""
    call = marks.get(f"s{n}.call")
    if not isinstance(call, dict) or "outcome" not in call:
        run = marks.get(f"s{n}.run", {})
        text = marks.get(f"s{n}.run.text", "no report")
        return None, Outcome(f"no result (exit {run.get('rc')}: {text})",
                             ["the scenario did not report"])
    return call, None


def outcome_2(marks):
    call, failed = call_of(marks, 2)
    if failed:
        return failed
    problems = []
    check(problems, call["ready_before"] is False,
          "RNG was already ready before the call")
    check(problems, call["outcome"] == "raised"
          and call["type"] == "BlockingIOError",
          "os.urandom() did not raise BlockingIOError")
    if call["outcome"] == "raised":
        check(problems, call["errno"] == EAGAIN,
              f"errno {call['errno']}, not EAGAIN")
        check(problems, call["message"] == PEP522_MESSAGE,
              f"message {call['message']!r}")
    check(problems, call["ready_after"] is False,
          "the call initialised the RNG")
    return Outcome(call_cell(call), problems)


def outcome_3(marks):
    call, failed = call_of(marks, 3)
    if failed:
        return failed
    problems = []
    check(problems, call["ready_before"] is False,
          "RNG was already ready before the call")
    check(problems, call["outcome"] == "returned" and call["result"] == 16,
          "secrets.token_bytes(16) did not return 16 bytes")
    check(problems, call["ready_after"] is True
          and ready(marks, "s3.after") is True,
          "RNG not ready after the call")
    return Outcome(call_cell(call), problems)


def outcome_4(marks):
    problems = []
    run = marks.get("s4.run", {})
    check(problems, marks.get("s4.before.kernel", {}).get("ready") == 0,
          "RNG was already ready at the first command")
    check(problems, run.get("rc") == 0,
          f"exit status {run.get('rc')}: {marks.get('s4.run.text', '')}")
    check(problems, ready(marks, "s4.after") is True,
          "RNG not ready after wait_for_system_rng()")
    if not run:
        return Outcome("did not run", problems)
    if run["rc"] == 0:
        cell = f"returned in {elapsed(run):.2f}s"
    else:
        error = marks.get("s4.run.text", "").split(":")[0] or "failed"
        cell = f"{error} (exit {run['rc']}) in {elapsed(run):.2f}s"
    return Outcome(f"{cell}; {rng_word(ready(marks, 's4.after'))}",
                   problems)


def outcome_5(marks):
    call, failed = call_of(marks, 5)
    if failed:
        return failed
    problems = []
    check(problems, call["ready_before"] is False,
          "RNG was already ready before the import")
    check(problems, call["outcome"] == "returned",
          f"import raised {call.get('type')}: {call.get('message')}")
    check(problems, call["ready_after"] is False,
          "the import waited for the RNG (it is ready afterwards)")
    return Outcome(call_cell(call), problems)


OUTCOMES = {1: outcome_1, 2: outcome_2, 3: outcome_3, 4: outcome_4,
            5: outcome_5}


def outcome(n, marks):
    try:
        return OUTCOMES[n](marks)
    except (KeyError, TypeError) as e:
        return Outcome(f"incomplete report (missing {e})",
                       [f"incomplete report (missing {e})"])


def format_table(header, rows):
    """A plain-text table: *header* and *rows* are lists of strings."""
    widths = [max(len(row[i]) for row in [header, *rows])
              for i in range(len(header))]

    def line(row):
        return "  ".join(cell.ljust(w) for cell, w in
                         zip(row, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, rows)])


def table(columns, scenarios):
    """*columns*: [(title, {scenario: Outcome}, asserted)]."""
    header = ["scenario", *[title for title, _, _ in columns]]
    rows = []
    for n in scenarios:
        labels = ROWS.get(n, [SCENARIOS[n]])
        for i, label in enumerate(labels):
            row = [f"{n} {label}" if i == 0 else f"  {label}"]
            for _, outcomes, asserted in columns:
                result = outcomes[n]
                cells = result.cells + [""] * len(labels)
                mark = ("PASS " if result.ok else "FAIL ") if asserted \
                    else ""
                row.append((mark if i == 0 else " " * len(mark)) + (
                    cells[i] if len(result.cells) == len(labels)
                    else result.cell if i == 0 else ""))
            rows.append(row)
    return format_table(header, rows)


# --- The subcommand ---------------------------------------------------------


def run_target(target, vmlinuz, plan, timeout, accel):
    """Boot *target* once per plan entry; {scenario: Outcome}, boots."""
    initrd = initramfs(target)
    outcomes, boots = {}, []
    for scenarios in plan:
        result = boot(target, vmlinuz, initrd, scenarios, timeout, accel)
        boots.append(result)
        for n in scenarios:
            outcomes[n] = outcome(n, result.marks)
    return outcomes, boots


def describe_boots(title, boots):
    """One line per boot: wall time and when the kernel's RNG got ready."""
    for b in boots:
        crng = crng_time(b.marks)
        when = (f"crng init done at {crng:.2f}s uptime" if crng is not None
                else "crng never initialised")
        done = b.marks["done"].get("at", 0)
        steps.say(f"  {title}, scenario {','.join(map(str, b.scenarios))}: "
                  f"{b.seconds:.1f}s wall, /init finished at {done:.2f}s "
                  f"uptime, {when}")


def targets(args):
    release = config.release(args.version)
    wanted = [config.Target(release)]
    if not args.no_stock:
        wanted.append(config.Target(release, stock=True))
    for target in wanted:
        if args.no_build:
            if not target.python.exists():
                raise Error(f"{steps.display(target.python)} does not exist",
                            hint=make_hint(target))
        else:
            build.built(target)
    return wanted


def parse_scenarios(text):
    try:
        chosen = sorted({int(n) for n in text.split(",") if n.strip()})
    except ValueError:
        chosen = []
    if not chosen or not set(chosen) <= set(SCENARIOS):
        raise argparse.ArgumentTypeError(
            f"a comma-separated list of {', '.join(map(str, SCENARIOS))}")
    return chosen


def run(args):
    scenarios = QUICK if args.quick else args.scenarios
    combine = args.combine or args.quick
    log_dir = config.BUILD / "boot" / "logs"
    ensure_host_tools(log_dir / "deps.log")
    vmlinuz = kernel(log_dir / "kernel.log")
    wanted = targets(args)
    plan = boot_plan(scenarios, combine)
    accel = args.accel
    steps.say(f"boot: kernel {vmlinuz.name}, {accel}, "
              f"{len(plan)} boot(s) per build")
    columns, failed = [], []
    for target in wanted:
        outcomes, boots = run_target(target, vmlinuz, plan, args.timeout,
                                     accel)
        title = ("stock " if target.stock else "patched ") + \
            target.release.version
        describe_boots(title, boots)
        columns.append((title, outcomes, not target.stock))
        if not target.stock:
            failed = [(n, p) for n in scenarios for p in outcomes[n].problems]
    steps.say("")
    steps.say(table(columns, scenarios))
    steps.say("")
    if failed:
        for n, problem in failed:
            steps.say(f"FAIL scenario {n} ({SCENARIOS[n]}): {problem}")
        return 1
    steps.say(f"boot: all {len(scenarios)} scenarios pass on the patched "
              "build")
    return 0


def add_parser(sub):
    parser = sub.add_parser(
        "boot", help="check the patch at early boot in QEMU",
        description="Boot Debian's kernel in QEMU with its RNG not "
                    "initialised and run the PEP 522 scenarios as early-boot "
                    "code, on the patched and the stock build.")
    options.add_release(parser, tarball=False)
    parser.add_argument("--scenarios", type=parse_scenarios,
                        default=sorted(SCENARIOS), metavar="N,N,...",
                        help="which scenarios to run (default: all)")
    parser.add_argument("--combine", action="store_true",
                        help="run the scenarios that can share a boot in one "
                        "boot (fewer boots; stock then shows the RNG "
                        "initialised by its startup)")
    parser.add_argument("--quick", action="store_true",
                        help="scenarios 1,2,3 in one boot per build")
    parser.add_argument("--no-stock", action="store_true",
                        help="only the patched build (no side-by-side)")
    parser.add_argument("--no-build", action="store_true",
                        help="use the builds as they are, do not run make")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        metavar="SECONDS",
                        help=f"per boot (default: {DEFAULT_TIMEOUT})")
    parser.add_argument("--accel", choices=["tcg", "kvm"], default="tcg",
                        help="QEMU accelerator (default: tcg, the software "
                        "emulation the measured times are for)")
    parser.set_defaults(func=run)
    return parser
