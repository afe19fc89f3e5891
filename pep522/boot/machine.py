"""A QEMU machine of one architecture (arches.toml): kernel, argv, a run.

The machine is the same for every check: one CPU without a hardware RNG
instruction, no default devices (so no virtio-rng, network or disk), the
serial console into a log file, and a kernel command line on which
neither the CPU nor the boot loader may credit entropy.  Debian's own
kernel of the architecture is fetched with `apt-get download` through a
private apt configuration (pep522.builds.debs) and only its image is kept,
in the download cache: nothing of the host's boot setup is touched.

A run ends when the guest powers off; it fails when the guest does not
print the end marker before that, or does not power off within its
timeout.  The guest reports with lines "@@pep522 KEY ..." (parse_serial).
"""

import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

from pep522 import config, steps
from pep522.builds import build, debs
from pep522.errors import Error

MARK = "@@pep522"
MEMORY_MB = 1024


def kernel_args(arch):
    """The kernel command line every boot starts with."""
    return [
        f"console={arch.console}",
        # Keep kernel messages off the console (the init dumps dmesg at
        # the end).
        "quiet",
        # A panic (e.g. /init dying) reboots at once, and -no-reboot exits.
        "panic=-1",
        # Neither the CPU nor the boot loader (QEMU passes a seed) may
        # credit entropy: the RNG stays uninitialised until something
        # waits for it.
        "random.trust_cpu=off",
        "random.trust_bootloader=off",
    ]


def ensure_qemu(arch, log):
    """Install the architecture's QEMU from Debian's packages if missing."""
    if not shutil.which(arch.qemu):
        build.install_debian_packages([arch.qemu_package], log)
    if not shutil.which(arch.qemu):
        raise Error(f"{arch.qemu} is not installed",
                    hint=f"apt-get install {arch.qemu_package}")


def kernel_cache(arch):
    return config.cache_dir() / "kernel" / arch.name


def kernel(arch, log):
    """Debian's kernel image for *arch*, downloaded once into the cache."""
    cached = sorted(kernel_cache(arch).glob("vmlinuz-*"))
    if cached:
        return cached[-1]
    apt = debs.apt_for(arch)
    with steps.Step(f"boot: downloading Debian's {arch.debian_arch} kernel "
                    "(only its image is kept)", log) as step:
        package = debs.dependency(apt, step, arch.kernel_package,
                                  "linux-image-")
        with tempfile.TemporaryDirectory(prefix="pep522-kernel-") as tmp:
            deb, = debs.download(apt, [package], tmp, step)
            unpacked = pathlib.Path(tmp) / "x"
            debs.unpack([deb], unpacked, step)
            images = sorted(p for p in unpacked.glob(arch.kernel_image)
                            if p.is_file())
            if not images:
                step.fail(f"{deb.name} has no {arch.kernel_image}")
            kernel_cache(arch).mkdir(parents=True, exist_ok=True)
            dest = kernel_cache(arch) / images[0].name
            partial = dest.with_name(dest.name + ".part")
            shutil.copyfile(images[0], partial)
            partial.replace(dest)
            step.note(f"kept {dest} from {deb.name}")
    return dest


def qemu_argv(arch, vmlinuz, initrd, serial_log, command_line, accel="tcg"):
    return [arch.qemu, "-nodefaults", "-no-user-config",
            "-M", arch.machine, "-accel", accel, "-cpu", arch.cpu,
            "-smp", "1", "-m", str(MEMORY_MB), "-display", "none",
            "-monitor", "none", "-serial", f"file:{serial_log}",
            "-no-reboot", "-kernel", str(vmlinuz), "-initrd", str(initrd),
            "-append", " ".join(command_line)]


def run(argv, serial_log, what, timeout, end="done"):
    """Run QEMU (*argv* writes the console to *serial_log*) until the
    guest powers off; return (seconds, marks).

    Error, with the end of the console, when it does not finish within
    *timeout* seconds or powers off without having printed the *end*
    marker.  QEMU's own output goes to <serial_log>.qemu.log.
    """
    qemu_log = serial_log.with_name(serial_log.name.replace(
        ".serial.log", "") + ".qemu.log")
    serial_log.parent.mkdir(parents=True, exist_ok=True)
    serial_log.write_text("")
    start = time.monotonic()
    with open(qemu_log, "w") as out:
        out.write(" ".join(argv) + "\n")
        out.flush()
        try:
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Error(f"{what} did not finish in {timeout}s; serial log: "
                        f"{steps.display(serial_log)}\n"
                        f"{steps.tail(serial_log)}",
                        hint="see the log; --timeout SECONDS gives it "
                             "longer") from None
    seconds = time.monotonic() - start
    marks = parse_serial(serial_log.read_text(errors="replace"))
    if end not in marks:
        raise Error(f"{what} ended before /init finished; serial log: "
                    f"{steps.display(serial_log)}, qemu: "
                    f"{steps.display(qemu_log)}\n"
                    f"{steps.tail(serial_log) or steps.tail(qemu_log)}")
    return seconds, marks


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
