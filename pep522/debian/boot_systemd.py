r"""`make boot-systemd`: a Debian system with systemd that boots with the
series' python3.13 packages, where the PEP's ExecStartPre recipe works.

PEP 522's deployment story is systemd: a service that needs the kernel
RNG waits for it with

    ExecStartPre=/usr/bin/python3 -c \
        "import secrets; secrets.wait_for_system_rng()"

and early-boot code that calls os.urandom() too soon gets an exception
instead of hanging boot.  This command shows both on a real boot:

1. a minimal root filesystem of the release's Debian suite (mmdebstrap
   minbase with systemd, udev, the Debian kernel and initramfs-tools,
   python3), with the .debs of `make debian-packages` or, for the stock
   image, the archive's own python3.13;
2. the units of pep522/debian/systemd_units/: an early oneshot calling
   os.urandom() before systemd-random-seed.service; the recipe unit; an
   end unit after multi-user.target that logs and powers off;
3. an ext4 image made with `mke2fs -d` (no loop mount), fresh for every
   boot, so it never carries a random seed file;
4. booted with QEMU (software emulation, the CPU and boot loader not
   trusted for entropy, no virtio-rng: pep522.boot.machine, this machine's
   architecture in arches.toml), the kernel and initrd taken from the
   image's /boot;
5. the timeline read from the console: the units write their events to
   /dev/kmsg, beside the kernel's "random: crng init done".

Logs, images and the timeline are under build/boot-systemd/<kind>/.
"""

import dataclasses
import hashlib
import pathlib
import re
import shutil
import subprocess

from pep522 import config, options, steps
from pep522.boot import machine
from pep522.builds import arches, build
from pep522.checks import expected
from pep522.debian import chroot, debian_packages
from pep522.errors import Error

UNITS_DIR = pathlib.Path(__file__).resolve().parent / "systemd_units"
GUEST_SCRIPT = "usr/local/lib/pep522/pep522_boot.py"
# Unit name: the target whose .wants/ enables it.
UNITS = {"pep522-early.service": "sysinit.target",
         "pep522-recipe.service": "sysinit.target",
         "pep522-end.service": "multi-user.target"}
# With the architecture's kernel package (arches.toml).
IMAGE_PACKAGES = ("systemd", "systemd-sysv", "udev", "kmod",
                  "initramfs-tools", "python3")
# Our packages in the patched image; the stock one gets the archive's.
PYTHON_DEBS = ["{p}", "{p}-minimal", "lib{p}-minimal", "lib{p}-stdlib"]
HOST_PACKAGES = ["e2fsprogs"]
KINDS = ("patched", "stock")
IMAGE_SPARE_MB = 512
DEFAULT_TIMEOUT = 900
# A fixed machine id: not a first boot (no systemd-firstboot questions),
# and the same image bytes for the same packages.
MACHINE_ID = hashlib.md5(b"cpython-pep522").hexdigest()


def boot_dir(kind):
    return config.BUILD / "boot-systemd" / kind


# --- The root filesystem and its image ---------------------------------------

def image_spec(arch, suite, kind, debs=()):
    return chroot.Spec(suite, variant="minbase",
                       include=(*IMAGE_PACKAGES, arch.kernel_package),
                       debs=tuple(debs), tag=f"boot-{kind}")


def python_debs(pkgs, debs):
    wanted = {name.format(p=pkgs.source) for name in PYTHON_DEBS}
    return [deb for deb in debs
            if debian_packages.deb_version(deb)[0] in wanted]


def install_units(root):
    """Put our units and the guest script into *root*, enabled.

    Also gives it a machine id and removes any random seed file, so that
    every boot starts with the kernel RNG not ready.
    """
    system = root / "etc" / "systemd" / "system"
    for unit, wanted_by in UNITS.items():
        shutil.copyfile(UNITS_DIR / unit, system / unit)
        wants = system / f"{wanted_by}.wants"
        wants.mkdir(exist_ok=True)
        link = wants / unit
        link.unlink(missing_ok=True)
        link.symlink_to(f"/etc/systemd/system/{unit}")
    script = root / GUEST_SCRIPT
    script.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(UNITS_DIR / "pep522_boot.py", script)
    (root / "etc" / "machine-id").write_text(MACHINE_ID + "\n")
    (root / "etc" / "hostname").write_text("pep522\n")
    (root / "var" / "lib" / "systemd" / "random-seed").unlink(
        missing_ok=True)


def boot_files(root):
    """The kernel and the initrd in the image's /boot."""
    found = []
    for pattern in ("vmlinuz-*", "initrd.img-*"):
        paths = sorted((root / "boot").glob(pattern))
        if not paths:
            raise Error(f"{root}/boot has no {pattern}",
                        hint=f"remove {root} and run `make boot-systemd` "
                             "again")
        found.append(paths[-1])
    return found


def du_mb(path):
    proc = subprocess.run(["du", "-sxm", str(path)], capture_output=True,
                          text=True, check=True)
    return int(proc.stdout.split()[0])


def mke2fs_command(root, image, size_mb):
    return ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "root", "-d",
            str(root), str(image), f"{size_mb}M"]


def make_image(root, kind, step):
    """A fresh ext4 image of *root*, and the kernel and initrd beside it."""
    out = boot_dir(kind)
    out.mkdir(parents=True, exist_ok=True)
    vmlinuz, initrd = boot_files(root)
    for path in (vmlinuz, initrd):
        shutil.copyfile(path, out / path.name)
    image = out / "root.ext4"
    image.unlink(missing_ok=True)
    step.run(mke2fs_command(root, image, du_mb(root) + IMAGE_SPARE_MB))
    return image, out / vmlinuz.name, out / initrd.name


# --- Booting -----------------------------------------------------------------

def kernel_args(arch):
    """pep522.boot.machine's kernel arguments (serial console, nothing trusted
    for entropy) with the image as root, the kernel's messages on the
    console (not "quiet") and no rate limit on the units' writes to
    /dev/kmsg."""
    return ["root=/dev/vda", "rw", "printk.devkmsg=on",
            *[arg for arg in machine.kernel_args(arch) if arg != "quiet"]]


def qemu_argv(arch, vmlinuz, initrd, image, serial_log):
    """pep522.boot.machine's QEMU, with the image as a virtio disk."""
    return [*machine.qemu_argv(arch, vmlinuz, initrd, serial_log,
                               kernel_args(arch)),
            "-drive", f"file={image},format=raw,if=virtio"]


# --- The timeline ------------------------------------------------------------

# A kernel message on the console; it may follow other output on its
# line (a login prompt, terminal escapes).
KMSG = re.compile(r"\[\s*([0-9]+\.[0-9]+)\] (.*)$")
# Console lines of interest: the timeline's key, and a pattern on the
# text after the kernel's timestamp.
EVENTS = {
    "systemd": re.compile(r"systemd\[1\]: systemd \S+ running in system"),
    "crng": re.compile(r"random: crng init done"),
    "mark": re.compile(r"pep522-boot: (.*)"),
}


def parse_console(text):
    """{event: (seconds, detail)} from a console log, first of each.

    Events: "systemd" (PID 1 on the root filesystem starts), "crng"
    (crng init done) and, for each "pep522-boot: WHAT [DETAIL]" line, its
    first words: "early start", "early urandom", "early end", "recipe
    wait", "recipe start", "recipe urandom", "recipe end", "recipe
    result", "multi-user reached", "end".
    """
    events = {}
    for line in text.splitlines():
        match = KMSG.search(line)
        if not match:
            continue
        seconds, rest = float(match.group(1)), match.group(2)
        for key, pattern in EVENTS.items():
            found = pattern.search(rest)
            if not found:
                continue
            detail = ""
            if key == "mark":
                words = found.group(1).split(" ", 2)
                key = " ".join(words[:2])
                detail = words[2] if len(words) > 2 else ""
            events.setdefault(key, (seconds, detail))
    return events


# (row title, event) of the timeline table, in boot order.
ROWS = [
    ("kernel starts", None),
    ("systemd (PID 1) starts", "systemd"),
    ("early unit: starts", "early start"),
    ("early unit: os.urandom()", "early urandom"),
    ("early unit: ends", "early end"),
    ("recipe unit: ExecStartPre waits", "recipe wait"),
    ("kernel: crng init done", "crng"),
    ("recipe unit: ExecStart starts", "recipe start"),
    ("recipe unit: os.urandom()", "recipe urandom"),
    ("recipe unit: result", "recipe result"),
    ("multi-user.target reached", "multi-user reached"),
]


def cell(events, key):
    if key is None:
        return "0.00 s"
    if key not in events:
        return "-"
    seconds, detail = events[key]
    return f"{seconds:.2f} s" + (f": {detail}" if detail else "")


def table(results):
    """A Markdown table of the timelines of *results* ({kind: events})."""
    kinds = list(results)
    rows = [["event", *kinds], ["---"] * (len(kinds) + 1)]
    for title, key in ROWS:
        rows.append([title, *(cell(results[k], key) for k in kinds)])
    return ["| " + " | ".join(row) + " |" for row in rows]


PEP522_DETAIL = f"raised errno={expected.EAGAIN} {expected.STRERROR}"


def problems(events):
    """What the patched image's timeline says went wrong (empty: none)."""
    found = []

    def at(key):
        return events.get(key, (None, ""))[0]

    if events.get("early urandom", (0, ""))[1] != PEP522_DETAIL:
        found.append("the early unit's os.urandom() did not raise the PEP "
                     "522 BlockingIOError")
    if at("crng") is None:
        found.append("no `crng init done` on the console")
    elif at("early end") is None or at("early end") > at("crng"):
        found.append("the early unit did not end before the RNG was ready "
                     "(it waited)")
    if at("recipe start") is None or (at("crng") is not None
                                      and at("recipe start") < at("crng")):
        found.append("the recipe unit's ExecStart did not run after "
                     "`crng init done`")
    if events.get("recipe urandom", (0, ""))[1] != "returned 16 bytes":
        found.append("the recipe unit's os.urandom() did not return")
    if events.get("recipe result", (0, ""))[1] != "success":
        found.append("the recipe unit did not succeed")
    if at("multi-user reached") is None:
        found.append("multi-user.target was not reached")
    return found


# --- The command -------------------------------------------------------------

@dataclasses.dataclass
class Boot:
    kind: str
    events: dict
    seconds: float
    log: pathlib.Path


def boot_kind(arch, suite, kind, debs, timeout):
    """Make the image of *kind* and boot it once; its Boot."""
    out = boot_dir(kind)
    root = chroot.ensure(image_spec(arch, suite, kind, debs),
                         out / "logs" / "mmdebstrap.log")
    install_units(root)
    with steps.Step(f"boot-systemd: {kind}: mke2fs -d (ext4 image)",
                    out / "logs" / "image.log") as step:
        image, vmlinuz, initrd = make_image(root, kind, step)
    serial_log = out / "logs" / "boot.serial.log"
    steps.say(f"boot-systemd: {kind}: booting {vmlinuz.name} under QEMU "
              f"(TCG; 1-3 minutes) (log: {steps.display(serial_log)})")
    seconds, _ = machine.run(qemu_argv(arch, vmlinuz, initrd, image,
                                       serial_log),
                             serial_log, f"the boot of the {kind} image",
                             timeout)
    steps.say(f"  done in {seconds:.0f}s")
    return Boot(kind, parse_console(serial_log.read_text(errors="replace")),
                seconds, serial_log)


def run(args):
    release = config.release(args.version)
    chroot.require_root("make boot-systemd")
    arch = arches.get()
    deps_log = config.BUILD / "boot-systemd" / "deps.log"
    machine.ensure_qemu(arch, deps_log)
    build.install_debian_packages(
        build.missing_debian_packages(HOST_PACKAGES), deps_log)
    kinds = args.kinds or KINDS
    pkgs, debs = debian_packages.Packages(release), []
    if "patched" in kinds:
        pkgs, debs = debian_packages.ensure_packages(release)
    boots = {}
    for kind in kinds:
        ours = python_debs(pkgs, debs) if kind == "patched" else ()
        boots[kind] = boot_kind(arch, pkgs.suite, kind, ours, args.timeout)
    lines = table({kind: b.events for kind, b in boots.items()})
    lines.append("")
    for kind, b in boots.items():
        lines.append(f"{kind}: QEMU ran {b.seconds:.0f} s (console log: "
                     f"{steps.display(b.log)})")
    found = problems(boots["patched"].events) if "patched" in boots else []
    lines += [f"FAIL: {problem}" for problem in found]
    out = config.BUILD / "boot-systemd" / "timeline.md"
    out.write_text("\n".join(lines) + "\n")
    for line in lines:
        steps.say(line)
    return 1 if found else 0


def add_parser(sub):
    parser = sub.add_parser(
        "boot-systemd", help="boot Debian with systemd and the series' "
        "packages in QEMU; the PEP's ExecStartPre recipe",
        description="Make a minimal Debian image with systemd and the "
                    "packages of `debian-packages` (and one with the "
                    "archive's python3.13), boot each under QEMU before the "
                    "kernel RNG is ready, and print the timeline of the "
                    "PEP 522 units.")
    options.add_release(parser, tarball=False)
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                        help="seconds a boot may take (default: "
                             f"{DEFAULT_TIMEOUT})")
    parser.add_argument("--only", dest="kinds", choices=KINDS,
                        action="append", help="boot only this image "
                        "(default: both)")
    parser.set_defaults(func=run, kinds=None)
    return parser
