"""make boot-systemd: the plumbing, without root or QEMU.

The real run (two Debian images made with mmdebstrap, each booted under
QEMU for one to three minutes) is too long for `make test`; these tests
check the units it installs, the image and QEMU command lines and the
timeline it reads from a console log.
"""

import configparser
import pathlib
import subprocess
import sys

from pep522.builds import arches
from pep522.debian import boot_systemd, chroot

RECIPE = ('/usr/bin/python3 -c "import secrets; '
          'secrets.wait_for_system_rng()"')

# A console log of a patched boot, shortened (the lines the parser reads
# and some it must ignore).
PATCHED_LOG = """\
[    0.000000] Linux version 6.12.57+deb13-amd64
[    2.911702] Run /init as init process
[?7h[    9.012345] systemd[1]: systemd 257.9-1~deb13u1 running in system \
mode (+PAM)
[   11.204518] pep522-boot: early start
[   11.255120] pep522-boot: early urandom raised errno=11 system random \
number generator is not ready; see secrets.token_bytes()
Traceback (most recent call last):
BlockingIOError: [Errno 11] system random number generator is not ready; \
see secrets.token_bytes()
[   11.256001] pep522-boot: early end
[  OK  ] Finished pep522-early.service - PEP 522 check: os.urandom() at \
early boot.
[   11.801234] pep522-boot: recipe wait
[   13.112233] random: crng init done
[   13.998877] pep522-boot: recipe start
[   14.010101] pep522-boot: recipe urandom returned 16 bytes
[   14.011111] pep522-boot: recipe end
[   14.012345] pep522-boot: recipe result success
pep522 login: [   55.500000] pep522-boot: multi-user reached
[   57.100000] pep522-boot: end
"""


def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(boot_systemd.UNITS_DIR / name)
    return parser


def test_early_unit_runs_before_the_random_seed():
    early = unit("pep522-early.service")
    assert early["Unit"]["DefaultDependencies"] == "no"
    assert set(early["Unit"]["Before"].split()) == {
        "sysinit.target", "systemd-random-seed.service"}
    assert early["Service"]["Type"] == "oneshot"
    assert "journal" in early["Service"]["StandardError"]


def test_recipe_unit_has_the_peps_exec_start_pre_verbatim():
    text = (boot_systemd.UNITS_DIR / "pep522-recipe.service").read_text()
    assert f"ExecStartPre={RECIPE}\n" in text
    recipe = unit("pep522-recipe.service")
    assert recipe["Unit"]["DefaultDependencies"] == "no"
    assert recipe["Unit"]["After"] == "pep522-early.service"
    # Nothing waits for it: boot goes on while it waits for the RNG.
    assert "Before" not in recipe["Unit"]


def test_end_unit_follows_multi_user():
    end = unit("pep522-end.service")
    assert end["Unit"]["After"] == "multi-user.target"
    assert end["Install"]["WantedBy"] == "multi-user.target"


def test_every_unit_is_enabled_where_its_install_section_says():
    for name, target in boot_systemd.UNITS.items():
        assert unit(name)["Install"]["WantedBy"] == target


def test_guest_script_compiles():
    subprocess.run([sys.executable, "-m", "py_compile",
                    str(boot_systemd.UNITS_DIR / "pep522_boot.py")],
                   check=True)


def test_install_units(tmp_path):
    root = tmp_path / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    seed = root / "var" / "lib" / "systemd" / "random-seed"
    seed.parent.mkdir(parents=True)
    seed.write_bytes(b"seed")
    for _ in range(2):   # idempotent: the cached root is reused
        boot_systemd.install_units(root)
    link = (root / "etc" / "systemd" / "system" / "sysinit.target.wants" /
            "pep522-early.service")
    assert link.is_symlink()
    assert str(link.readlink()) == "/etc/systemd/system/pep522-early.service"
    assert (root / boot_systemd.GUEST_SCRIPT).is_file()
    assert not seed.exists()
    assert len((root / "etc" / "machine-id").read_text().strip()) == 32


X86_64 = arches.get("x86_64")


def test_image_specs():
    deb = pathlib.Path("/b/python3.13_1_amd64.deb")
    patched = boot_systemd.image_spec(X86_64, "trixie", "patched", [deb])
    stock = boot_systemd.image_spec(X86_64, "trixie", "stock")
    assert patched.variant == stock.variant == "minbase"
    assert {"systemd", "systemd-sysv", "linux-image-amd64",
            "initramfs-tools", "python3"} <= set(stock.include)
    assert patched.debs == (deb,) and stock.debs == ()
    assert patched.root != stock.root
    assert isinstance(patched, chroot.Spec)


def test_mke2fs_needs_no_loop_mount():
    argv = boot_systemd.mke2fs_command(pathlib.Path("/r"),
                                       pathlib.Path("/i.ext4"), 900)
    assert argv[0] == "mke2fs"
    assert argv[argv.index("-d") + 1] == "/r"
    assert argv[-2:] == ["/i.ext4", "900M"]


def test_qemu_argv_is_the_early_boot_machine_with_a_disk():
    argv = boot_systemd.qemu_argv(X86_64, "/k", "/i", "/root.ext4",
                                  "/serial.log")
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-cpu") + 1] == "qemu64,-rdrand,-rdseed"
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert "-nodefaults" in argv and "virtio-rng" not in " ".join(argv)
    assert "file=/root.ext4,format=raw,if=virtio" in argv
    append = argv[argv.index("-append") + 1].split()
    assert {"root=/dev/vda", "rw", "console=ttyS0", "random.trust_cpu=off",
            "random.trust_bootloader=off"} <= set(append)
    assert "quiet" not in append


def test_parse_console():
    events = boot_systemd.parse_console(PATCHED_LOG)
    assert events["systemd"] == (9.012345, "")
    assert events["crng"][0] == 13.112233
    assert events["early urandom"] == (11.25512, boot_systemd.PEP522_DETAIL)
    assert events["recipe wait"] == (11.801234, "")
    assert events["recipe urandom"][1] == "returned 16 bytes"
    assert events["end"][0] == 57.1
    assert events["recipe result"] == (14.012345, "success")
    # The end unit also prints pep522.boot.machine's end marker.
    script = (boot_systemd.UNITS_DIR / "pep522_boot.py").read_text()
    assert 'print("@@pep522 done"' in script
    assert boot_systemd.problems(events) == []


def test_problems_of_a_boot_where_the_recipe_did_not_wait():
    log = PATCHED_LOG.replace("[   13.998877] pep522-boot: recipe start",
                              "[   12.998877] pep522-boot: recipe start")
    assert boot_systemd.problems(boot_systemd.parse_console(log)) == [
        "the recipe unit's ExecStart did not run after `crng init done`"]


def test_problems_of_a_stock_boot():
    log = PATCHED_LOG.replace(
        "raised errno=11 system random number generator is not ready; see "
        "secrets.token_bytes()", "returned").replace(
        "[   13.112233] random: crng init done",
        "[   11.112233] random: crng init done")
    found = boot_systemd.problems(boot_systemd.parse_console(log))
    assert "the early unit's os.urandom() did not raise the PEP 522 " \
        "BlockingIOError" in found
    assert "the early unit did not end before the RNG was ready (it " \
        "waited)" in found


def test_timeline_table():
    events = boot_systemd.parse_console(PATCHED_LOG)
    lines = boot_systemd.table({"patched": events, "stock": {}})
    assert lines[0] == "| event | patched | stock |"
    assert "| kernel: crng init done | 13.11 s | - |" in lines
    assert "| recipe unit: os.urandom() | 14.01 s: returned 16 bytes | - |" \
        in lines
