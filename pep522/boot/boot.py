"""Early-boot check: the patch on a real Linux kernel whose RNG is not ready.

Every other test runs on a machine whose kernel RNG was initialised long
ago, so what PEP 522 changes (startup and ``os.urandom()`` while the RNG
is not ready) never happens there; rngsim only simulates it.  ``boot``
shows it for real: it boots Debian's own kernel of an architecture of
arches.toml in QEMU (pep522.boot.machine: software emulation, no CPU RNG, no
virtio-rng, boot loader and CPU entropy not trusted), where ``/init``
starts before the kernel has initialised its RNG, and runs the scenarios
of pep522/boot/boot_scenarios/ there as early-boot code, with the patched and
the stock interpreter side by side (pep522.boot.boot_outcomes judges them).
The interpreters are the host's builds for the host's architecture and
cross builds (pep522.builds.cross) for the others; pep522.boot.initramfs
packs each into an image.

Any blocking call (a blocking getrandom(), a read of /dev/random or
/dev/urandom) makes the kernel initialise its RNG for good, so every
scenario that needs "not ready" gets its own boot, or (``--combine``)
shares one boot with scenarios the patched build leaves the RNG alone in.

``--libtest`` boots the patched build once more, with Lib/test in its
image, and runs CPython's PEP 522 test classes and the simulator there
(pep522.boot.guest_tests).
"""

import dataclasses
import pathlib

from pep522 import config, options, steps
from pep522.boot import boot_outcomes, guest_tests, initramfs, machine
from pep522.boot.boot_outcomes import SCENARIOS
from pep522.builds import arches, build, cross, debs
from pep522.errors import Error

DEFAULT_TIMEOUT = 300


def boot_dir(guest):
    """Everything of the check for *guest*: build/boot/<name>/."""
    return config.BUILD / "boot" / guest.name


# --- The interpreters under test -------------------------------------------


def guest_of(target, arch, make=True):
    """The initramfs view of *target*'s build for *arch*: the host build
    natively, a cross build otherwise (built when *make*)."""
    version = ".".join(target.release.version.split(".")[:2])
    if arch.native:
        if make:
            build.built(target)
        return initramfs.Guest(
            target.name, version, target.src, target.obj, target.python,
            target.python, pathlib.Path("/"), "strip",
            "make" + (" STOCK=1" if target.stock else ""))
    built = (cross.cross_build(target, arch) if make
             else cross.CrossTarget(target, arch))
    return initramfs.Guest(
        built.name, version, built.src, built.obj, built.python,
        built.build_python, arch.sysroot, f"{arch.triplet}-strip",
        built.make_hint())


def guests(args, arch, stock):
    """[(title, Guest, asserted)]: patched, and stock if *stock*."""
    release = config.release(args.version)
    wanted = [config.Target(release)]
    if stock:
        wanted.append(config.Target(release, stock=True))
    found = []
    for target in wanted:
        guest = guest_of(target, arch, make=not args.no_build)
        if not guest.python.exists():
            raise Error(f"{steps.display(guest.python)} does not exist",
                        hint=guest.hint)
        title = f"{'stock' if target.stock else 'patched'} " \
            f"{release.version}"
        found.append((title, guest, not target.stock))
    return found


# Where busybox-static puts busybox: /bin in Debian 12, /usr/bin in 13
# (merged /usr: its files moved there).
BUSYBOX_PATHS = ("bin/busybox", "usr/bin/busybox")


def busybox(sysroot):
    """The static busybox unpacked into *sysroot*."""
    for relative in BUSYBOX_PATHS:
        if (sysroot / relative).is_file():
            return sysroot / relative
    raise Error(f"no busybox in {steps.display(sysroot)} (looked for "
                f"{' and '.join(BUSYBOX_PATHS)})",
                hint=f"rm -r {steps.display(sysroot)}* and run the same "
                     "command again, which unpacks busybox-static there")


def image(guest, arch, tests=False):
    """The initramfs of *guest*, rebuilt when its content changed."""
    extra = guest_tests.EXTRA_FILES if tests else {}
    plan = initramfs.file_plan(guest, busybox(arch.sysroot),
                               arch.library_dirs, tests=tests, extra=extra)
    return initramfs.ensure(guest, boot_dir(guest), plan, tests)


# --- Booting ----------------------------------------------------------------


@dataclasses.dataclass
class Boot:
    """One boot: what it ran, the parsed markers, how long it took."""

    steps: list
    marks: dict
    seconds: float
    log: pathlib.Path


def boot(guest, arch, vmlinuz, initrd, what, timeout, accel):
    """Boot once, /init running *what* (scenario numbers or names)."""
    name = "boot-" + "-".join(map(str, what))
    serial_log = boot_dir(guest) / "logs" / f"{name}.serial.log"
    command_line = [*machine.kernel_args(arch),
                    "pep522_scenarios=" + ",".join(map(str, what))]
    argv = machine.qemu_argv(arch, vmlinuz, initrd, serial_log,
                             command_line, accel)
    steps.say(f"boot: {guest.name}, {','.join(map(str, what))} "
              f"(log: {steps.display(serial_log)})")
    listed = ", ".join(map(str, what))
    seconds, marks = machine.run(argv, serial_log,
                                 f"boot of {guest.name} ({listed})", timeout)
    steps.say(f"  done in {seconds:.1f}s")
    return Boot(list(what), marks, seconds, serial_log)


def describe_boots(title, boots):
    """One line per boot: wall time and when the kernel's RNG got ready."""
    for b in boots:
        crng = machine.crng_time(b.marks)
        when = (f"crng init done at {crng:.2f}s uptime" if crng is not None
                else "crng never initialised")
        done = b.marks["done"].get("at", 0)
        init = b.marks.get("boot", {}).get("at", 0)
        steps.say(f"  {title}, {','.join(map(str, b.steps))}: "
                  f"{b.seconds:.1f}s wall, /init started at {init:.2f}s and "
                  f"finished at {done:.2f}s uptime, {when}")


def prepare(args, stock):
    """The architecture, the kernel and the builds of this run."""
    arch = arches.get(args.arch)
    logs = config.BUILD / "boot" / "logs"
    machine.ensure_qemu(arch, logs / "deps.log")
    vmlinuz = machine.kernel(arch, logs / f"kernel-{arch.name}.log")
    debs.ensure_sysroot(arch, logs / f"sysroot-{arch.name}.log")
    return arch, vmlinuz, guests(args, arch, stock)


# --- The subcommand ---------------------------------------------------------


def run_scenarios(args):
    scenarios = boot_outcomes.QUICK if args.quick else args.scenarios
    combine = args.combine or args.quick
    arch, vmlinuz, wanted = prepare(args, stock=not args.no_stock)
    plan = boot_outcomes.boot_plan(scenarios, combine)
    steps.say(f"boot: {arch.name}, kernel {vmlinuz.name}, {args.accel}, "
              f"{len(plan)} boot(s) per build")
    columns, failed = [], []
    for title, guest, asserted in wanted:
        initrd = image(guest, arch)
        outcomes, boots = {}, []
        for scenarios_ in plan:
            result = boot(guest, arch, vmlinuz, initrd, scenarios_,
                          args.timeout, args.accel)
            boots.append(result)
            for n in scenarios_:
                outcomes[n] = boot_outcomes.outcome(n, result.marks)
        describe_boots(title, boots)
        columns.append((title, outcomes, asserted))
        if asserted:
            failed = [(n, p) for n in scenarios for p in outcomes[n].problems]
    steps.say("")
    steps.say(boot_outcomes.table(columns, scenarios))
    steps.say("")
    if failed:
        for n, problem in failed:
            steps.say(f"FAIL scenario {n} ({SCENARIOS[n]}): {problem}")
        return 1
    steps.say(f"boot: all {len(scenarios)} scenarios pass on the patched "
              f"build ({arch.name})")
    return 0


def run_libtest(args):
    # The PEP 522 classes exist on the patched build only.
    arch, vmlinuz, wanted = prepare(args, stock=False)
    (title, guest, _), = wanted
    initrd = image(guest, arch, tests=True)
    timeout = max(args.timeout, guest_tests.TIMEOUT)
    result = boot(guest, arch, vmlinuz, initrd, guest_tests.STEPS, timeout,
                  args.accel)
    describe_boots(title, [result])
    return guest_tests.report(result.log, result.marks, guest, arch)


def run(args):
    return run_libtest(args) if args.libtest else run_scenarios(args)


def add_parser(sub):
    parser = sub.add_parser(
        "boot", help="check the patch at early boot in QEMU",
        description="Boot Debian's kernel in QEMU with its RNG not "
                    "initialised and run the PEP 522 scenarios as early-boot "
                    "code, on the patched and the stock build.")
    options.add_release(parser, tarball=False)
    parser.add_argument("--arch", metavar="ARCH",
                        help="an architecture of arches.toml (default: this "
                        f"machine's, {arches.host_arch()}); another one is "
                        "cross-built")
    parser.add_argument("--scenarios", type=boot_outcomes.parse_scenarios,
                        default=sorted(SCENARIOS), metavar="N,N,...",
                        help="which scenarios to run (default: all)")
    parser.add_argument("--combine", action="store_true",
                        help="run the scenarios that can share a boot in one "
                        "boot (fewer boots; stock then shows the RNG "
                        "initialised by its startup)")
    parser.add_argument("--quick", action="store_true",
                        help="scenarios 1,2,3 in one boot per build")
    parser.add_argument("--libtest", action="store_true",
                        help="instead of the scenarios: CPython's PEP 522 "
                        "test classes and the simulator in one boot of the "
                        "patched build")
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
