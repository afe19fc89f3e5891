"""The early-boot check: its pieces, then one real run in QEMU.

The unit tests start no QEMU; tests/test_cross.py has the pieces that
differ per architecture.  The last test runs `python3 -m pep522 boot
--no-build` (what `make boot-test` runs, on the builds `make test` has
made): every scenario in its own boot, patched and stock, about 3 minutes
of software emulation.
"""

import gzip
import os
import pathlib
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import built, run_tool
from pep522 import config
from pep522.boot import boot, boot_outcomes, initramfs, machine
from pep522.builds import arches
from pep522.errors import Error

GOOD_LOG = """\
[    0.000000] Linux version 6.1.0-56-amd64
@@pep522 boot at=4.70 kernel=6.1.0-56-amd64
@@pep522 s1.begin at=4.75
@@pep522 s1.warmup.1 rc=0 start=4.80 end=5.60
@@pep522 s1.before {"ready": false}
@@pep522 s1.before.kernel ready=0
@@pep522 s1.start_cold.1 rc=0 start=5.64 end=6.10
@@pep522 s1.start_cold.2 rc=0 start=6.20 end=6.60
@@pep522 s1.after_start {"ready": false}
@@pep522 s1.after_start.kernel ready=0
@@pep522 s1.random_cold.1 rc=0 start=6.80 end=7.22
@@pep522 s1.after_random {"ready": false}
1+0 records in
@@pep522 s1.seed rc=0 start=7.87 end=8.95
@@pep522 s1.seed.text 1+0 records out
@@pep522 s1.after_seed {"ready": true}
@@pep522 s1.start_ready.1 rc=0 start=9.65 end=10.13
@@pep522 s1.start_ready.2 rc=0 start=10.20 end=10.60
@@pep522 s1.random_ready.1 rc=0 start=10.70 end=11.14
@@pep522 s1.end at=11.20
@@pep522 s2.before {"ready": false}
@@pep522 s2.call {"errno": 11, "message": "MESSAGE", "outcome": "raised", \
"ready_after": false, "ready_before": false, "seconds": 0.0004, \
"type": "BlockingIOError"}
@@pep522 s2.run rc=1 start=11.65 end=12.38
@@pep522 s2.after {"ready": false}
[    8.970487] random: crng init done
@@pep522 s3.call {"outcome": "returned", "ready_after": true, \
"ready_before": false, "result": 16, "seconds": 1.05}
@@pep522 s3.after {"ready": true}
@@pep522 crng.text [    8.970487] random: crng init done
--- dmesg
@@pep522 done at=16.91
""".replace("\\\n", "").replace("MESSAGE", boot_outcomes.PEP522_MESSAGE)


# --- Kernel command line and QEMU -------------------------------------------

X86_64 = arches.get("x86_64")


def test_kernel_command_line_keeps_the_rng_uninitialised():
    words = machine.kernel_args(X86_64)
    for needed in ("console=ttyS0", "random.trust_cpu=off",
                   "random.trust_bootloader=off", "panic=-1"):
        assert needed in words


def test_qemu_argv():
    argv = machine.qemu_argv(X86_64, "/k/vmlinuz", "/b/initrd.gz",
                             "/b/serial.log", ["console=ttyS0", "x=1"])
    assert argv[0] == "qemu-system-x86_64"
    assert "-nodefaults" in argv  # hence no virtio-rng, no network
    assert argv[argv.index("-cpu") + 1] == "qemu64,-rdrand,-rdseed"
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert "-no-reboot" in argv
    assert argv[argv.index("-serial") + 1] == "file:/b/serial.log"
    assert argv[argv.index("-kernel") + 1] == "/k/vmlinuz"
    assert argv[argv.index("-initrd") + 1] == "/b/initrd.gz"
    assert argv[argv.index("-append") + 1] == "console=ttyS0 x=1"
    assert not any("rng" in word for word in argv)


def test_guest_that_stops_early_is_an_error_with_the_console(tmp_path):
    log = tmp_path / "boot-1.serial.log"
    argv = ["sh", "-c", f"echo '@@pep522 boot at=1'; echo 'Kernel panic' "
            f">> {log}"]
    with pytest.raises(boot.Error, match="ended before /init finished") \
            as error:
        machine.run(argv, log, "boot of x", timeout=30)
    assert "Kernel panic" in str(error.value)
    argv = ["sh", "-c", f"echo '@@pep522 done at=2' >> {log}"]
    seconds, marks = machine.run(argv, log, "boot of x", timeout=30)
    assert marks["done"] == {"at": 2}


def test_guest_that_hangs_is_killed(tmp_path):
    log = tmp_path / "boot-1.serial.log"
    with pytest.raises(boot.Error, match="did not finish in 0.5s") as error:
        machine.run(["sleep", "30"], log, "boot of x", timeout=0.5)
    assert "--timeout" in error.value.hint


def test_boot_plan():
    assert boot_outcomes.boot_plan([1, 2, 3, 4, 5], combine=False) == [
        [1], [2], [3], [4], [5]]
    # Scenario 3 initialises the RNG: it goes last; 4 needs its own boot.
    assert boot_outcomes.boot_plan([3, 4, 2, 1, 5], combine=True) == [
        [1, 5, 2, 3], [4]]
    assert boot_outcomes.boot_plan(boot_outcomes.QUICK,
                                   combine=True) == [[1, 2, 3]]


def test_parse_scenarios():
    assert boot_outcomes.parse_scenarios("3,1, 2") == [1, 2, 3]
    for bad in ("", "6", "one"):
        with pytest.raises(Exception):
            boot_outcomes.parse_scenarios(bad)


# --- Initramfs content -------------------------------------------------------


def fake_guest(tmp_path):
    """A Guest whose src/ and obj/ look like an out-of-tree build."""
    root = tmp_path / "build" / "3.13.5"
    lib = root / "src" / "Lib"
    for name in ("os.py", "random.py", "secrets.py", "turtle.py",
                 "json/__init__.py", "json/tests/test_x.py",
                 "multiprocessing/process.py", "test/test_os.py",
                 "idlelib/idle.py", "idlelib/idle_test/t.py",
                 "tkinter/__init__.py", "ensurepip/__init__.py",
                 "turtledemo/x.py", "__pycache__/os.cpython-313.pyc",
                 "site-packages/README.txt"):
        (lib / name).parent.mkdir(parents=True, exist_ok=True)
        (lib / name).write_text("")
    obj = root / "obj"
    dynload = obj / "build" / "lib.linux-x86_64-3.13"
    dynload.mkdir(parents=True)
    for name in ("_json", "_testcapi", "_tkinter", "_ssl", "xxlimited",
                 "_ctypes_test"):
        (dynload / f"{name}.cpython-313-x86_64-linux-gnu.so").write_text("")
    (dynload / "_sysconfigdata__linux_x86_64-linux-gnu.py").write_text("")
    (obj / "pybuilddir.txt").write_text("build/lib.linux-x86_64-3.13\n")
    (obj / "python").write_text("")
    return initramfs.Guest("3.13.5", "3.13", root / "src", obj,
                           obj / "python", obj / "python",
                           pathlib.Path("/"), "strip", "make")


LIBS = {"lib/x86_64-linux-gnu/libc.so.6":
        pathlib.Path("/lib/x86_64-linux-gnu/libc.so.6"),
        "lib64/ld-linux-x86-64.so.2":
        pathlib.Path("/lib64/ld-linux-x86-64.so.2")}


def test_file_plan_content(tmp_path):
    guest = fake_guest(tmp_path)
    plan = initramfs.file_plan(guest, "/bin/true", X86_64.library_dirs,
                               shared_libs=LIBS)
    lib = "usr/lib/python3.13"
    assert plan["usr/bin/python3.13"] == guest.python
    for name in ("init", "scenarios/guest.py", "bin/busybox",
                 f"{lib}/os.py", f"{lib}/secrets.py",
                 f"{lib}/multiprocessing/process.py",
                 f"{lib}/_sysconfigdata__linux_x86_64-linux-gnu.py",
                 f"{lib}/lib-dynload/_json.cpython-313-x86_64-linux-gnu.so",
                 f"{lib}/lib-dynload/_ssl.cpython-313-x86_64-linux-gnu.so",
                 "lib/x86_64-linux-gnu/libc.so.6",
                 "lib64/ld-linux-x86-64.so.2"):
        assert name in plan, name
    for name in plan:
        parts = name.split("/")
        for excluded in ("test", "tests", "idle_test", "idlelib", "tkinter",
                         "ensurepip", "turtledemo", "__pycache__",
                         "site-packages"):
            assert excluded not in parts, name
        assert not parts[-1].startswith(("_test", "_tkinter", "xx",
                                         "_ctypes_test", "turtle.py")), name


def test_file_plan_with_tests(tmp_path):
    """The image for Lib/test: tests and test modules in, the GUI out."""
    guest = fake_guest(tmp_path)
    plan = initramfs.file_plan(guest, "/bin/true", X86_64.library_dirs,
                               tests=True, shared_libs=LIBS,
                               extra={"scenarios/x.py": pathlib.Path("/x")})
    lib = "usr/lib/python3.13"
    for name in (f"{lib}/test/test_os.py", f"{lib}/json/tests/test_x.py",
                 f"{lib}/lib-dynload/_testcapi.cpython-313-x86_64-linux-gnu"
                 ".so", "scenarios/x.py"):
        assert name in plan, name
    assert not [n for n in plan if "tkinter" in n or "idlelib" in n]


def test_file_plan_not_built(tmp_path):
    guest = fake_guest(tmp_path)
    (guest.obj / "pybuilddir.txt").unlink()
    with pytest.raises(boot.Error, match="not built"):
        initramfs.file_plan(guest, "/bin/true", X86_64.library_dirs,
                            shared_libs=LIBS)


def test_file_plan_of_the_real_build(patched):
    """The interpreter and everything it loads, from the real build."""
    guest = boot.guest_of(patched, X86_64, make=False)
    plan = initramfs.file_plan(guest, shutil.which("true"),
                               X86_64.library_dirs)
    names = set(plan)
    minor = ".".join(patched.release.version.split(".")[:2])
    assert f"usr/bin/python{minor}" in names
    assert any(n.endswith("/libc.so.6") for n in names)
    assert any(n.startswith("lib64/ld-linux") for n in names)
    assert any(n.endswith("/libcrypto.so.3") for n in names)  # _hashlib
    assert f"usr/lib/python{minor}/multiprocessing/process.py" in names
    assert not [n for n in names if "/test/" in n or "idlelib" in n
                or "tkinter" in n]
    for path in plan.values():
        assert path.is_file(), path


def test_needed_libraries_in_a_root(tmp_path):
    """Libraries are found by name in the search path under a root (the
    sysroot of a cross build), recursively, the loader at its own path."""
    python = pathlib.Path(sys.executable).resolve()
    wanted, loader = initramfs.elf_needs(python)
    assert wanted and loader.startswith("/lib")
    root = tmp_path / "sysroot"
    libdir = root / "usr" / "lib" / "here"
    libdir.mkdir(parents=True)
    found = initramfs.needed_libraries([python], "/",
                                       X86_64.library_dirs)
    for guest_path, host in found.items():
        copy = root / guest_path
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(host, copy)
    in_root = initramfs.needed_libraries([python], root,
                                         X86_64.library_dirs)
    assert set(in_root) == set(found)
    assert all(str(path).startswith(str(root)) for path in in_root.values())
    (root / next(n for n in found if "libc.so" in n)).unlink()
    with pytest.raises(boot.Error, match="libc.so.6"):
        initramfs.needed_libraries([python], root, X86_64.library_dirs)


def test_symlinks():
    assert initramfs.symlinks("3.13") == {"usr/bin/python3": "python3.13",
                                          "bin/sh": "busybox"}


# --- cpio --------------------------------------------------------------------


def read_newc(data):
    """[(name, mode, rdev, content)] of a newc archive."""
    entries, at = [], 0
    while True:
        assert data[at:at + 6] == b"070701"
        fields = [int(data[at + 6 + 8 * i:at + 14 + 8 * i], 16)
                  for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        at += 110
        name = data[at:at + namesize - 1].decode()
        at += namesize + (-(110 + namesize) % 4)
        content = data[at:at + filesize]
        at += filesize + (-filesize % 4)
        if name == "TRAILER!!!":
            return entries
        entries.append((name, fields[1], (fields[9], fields[10]), content))


def test_write_initramfs(tmp_path):
    staging = tmp_path / "root"
    (staging / "usr" / "bin").mkdir(parents=True)
    (staging / "usr" / "bin" / "python3.13").write_bytes(b"\x7fELF...")
    (staging / "init").write_text("#!/bin/sh\n")
    (staging / "init").chmod(0o755)
    out = tmp_path / "initramfs.cpio.gz"
    initramfs.write_initramfs(staging, {"bin/sh": "busybox"}, out)
    entries = {name: (mode, rdev, content) for name, mode, rdev, content
               in read_newc(gzip.decompress(out.read_bytes()))}
    assert stat.S_ISDIR(entries["usr"][0])
    assert stat.S_ISDIR(entries["usr/bin"][0])
    for name in ("proc", "sys", "dev", "tmp"):
        assert stat.S_ISDIR(entries[name][0])
    mode, rdev, _ = entries["dev/console"]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    assert stat.S_ISLNK(entries["bin/sh"][0])
    assert entries["bin/sh"][2] == b"busybox"
    assert entries["init"][0] == stat.S_IFREG | 0o755
    assert entries["usr/bin/python3.13"][2] == b"\x7fELF..."
    names = list(entries)
    assert names.index("usr") < names.index("usr/bin") < names.index(
        "usr/bin/python3.13")


def test_fingerprint_changes_with_content(tmp_path):
    path = tmp_path / "f"
    path.write_text("a")
    before = initramfs.fingerprint({"f": path}, {})
    assert initramfs.fingerprint({"f": path}, {}) == before
    path.write_text("ab")
    assert initramfs.fingerprint({"f": path}, {}) != before


# --- Guest scripts -----------------------------------------------------------


def test_init_script_is_valid_shell():
    init = initramfs.GUEST_DIR / "init"
    assert os.access(init, os.X_OK)
    subprocess.run(["sh", "-n", str(init)], check=True)
    text = init.read_text()
    for n in boot_outcomes.SCENARIOS:
        assert f"scenario_{n}()" in text


@pytest.mark.parametrize("mode", ["probe", "urandom", "token_bytes",
                                  "multiprocessing"])
def test_guest_script_on_the_host(mode):
    """On the host the RNG is ready: every call returns at once."""
    guest = initramfs.GUEST_DIR / "guest.py"
    proc = subprocess.run([sys.executable, str(guest),
                           mode, "key"], capture_output=True, text=True,
                          check=True)
    marks = machine.parse_serial(proc.stdout)
    if mode == "probe":
        assert marks["key"] == {"ready": True}
    else:
        assert marks["key"]["outcome"] == "returned"
        assert marks["key"]["ready_before"] is True


# --- Serial log, verdicts, table --------------------------------------------


def test_parse_serial():
    marks = machine.parse_serial("junk @@pep522 a x=1 y=2.5 z=word\r\n"
                              "[ 1.0] kernel line\n"
                              "@@pep522 b {\"ready\": false}\n"
                              "@@pep522 b.text last line: of stderr\n"
                              "@@pep522 c {broken\n")
    assert marks["a"] == {"x": 1, "y": 2.5, "z": "word"}
    assert marks["b"] == {"ready": False}
    assert marks["b.text"] == "last line: of stderr"
    assert marks["c"] == {"unparsed": "{broken"}


def test_good_log_passes():
    marks = machine.parse_serial(GOOD_LOG)
    assert machine.crng_time(marks) == pytest.approx(8.970487)
    for n in (1, 2, 3):
        result = boot_outcomes.outcome(n, marks)
        assert result.ok, result.problems
    assert "BlockingIOError [Errno 11]" in boot_outcomes.outcome(2, marks).cell


def test_stock_like_results_fail():
    marks = machine.parse_serial(GOOD_LOG)
    marks["s1.after_start"] = {"ready": True}
    marks["s1.start_cold.1"] = {"rc": 0, "start": 5.0, "end": 7.0}
    marks["s1.start_cold.2"] = {"rc": 0, "start": 7.0, "end": 9.0}
    outcome = boot_outcomes.outcome(1, marks)
    # A stalled start is caught by the RNG it initialised, not its time.
    assert outcome.problems == ["startup initialised the RNG"]
    assert "2.00s" in outcome.cell
    marks["s2.call"] = {"outcome": "returned", "result": 16, "seconds": 1.1,
                        "ready_before": False, "ready_after": True}
    result = boot_outcomes.outcome(2, marks)
    assert "did not raise BlockingIOError" in " ".join(result.problems)
    assert result.cell.startswith("returned in 1.10s (blocked)")


def test_wrong_message_fails():
    marks = machine.parse_serial(GOOD_LOG)
    marks["s2.call"]["message"] = "[Errno 11] Resource temporarily unavailable"
    assert not boot_outcomes.outcome(2, marks).ok


def test_missing_report_is_a_failure_not_a_crash():
    result = boot_outcomes.outcome(5, {"s5.run": {"rc": 124}})
    assert not result.ok
    assert "exit 124" in result.cell
    assert not boot_outcomes.outcome(1, {}).ok


def test_scenario_4():
    marks = {"s4.before.kernel": {"ready": 0},
             "s4.run": {"rc": 0, "start": 1.0, "end": 2.25},
             "s4.after": {"ready": True}}
    result = boot_outcomes.outcome(4, marks)
    assert result.ok and result.cell.startswith("returned in 1.25s")
    marks["s4.run"]["rc"] = 1
    marks["s4.run.text"] = "AttributeError: no wait_for_system_rng"
    result = boot_outcomes.outcome(4, marks)
    assert not result.ok and "AttributeError" in result.cell


def test_table():
    ok = boot_outcomes.Outcome("raised")
    bad = boot_outcomes.Outcome("returned in 1.00s", ["did not raise"])
    text = boot_outcomes.table([("patched 3.13.5", {2: ok}, True),
                       ("stock 3.13.5", {2: bad}, False)], [2])
    header, rule, row = text.splitlines()
    assert header.split() == ["scenario", "patched", "3.13.5", "stock",
                              "3.13.5"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert "PASS raised" in row
    assert "FAIL" not in row  # stock is reported, not asserted
    assert header.index("stock") == row.index("returned")


def test_subcommand_options():
    import argparse
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    boot.add_parser(sub)
    args = parser.parse_args(["boot"])
    assert args.scenarios == [1, 2, 3, 4, 5] and not args.quick
    assert args.func is boot.run
    args = parser.parse_args(["boot", "--quick", "--no-stock",
                              "--scenarios", "2,1"])
    assert args.quick and args.no_stock and args.scenarios == [1, 2]


def can_boot():
    return os.geteuid() == 0 or shutil.which(X86_64.qemu)


@pytest.mark.skipif(not can_boot(), reason="qemu-system-x86_64 is not "
                    "installed and only root can install it")
def test_real_early_boot_scenarios_pass_on_the_patched_build(
        patched, capsys):
    built(config.Target(patched.release, stock=True))
    proc = run_tool("boot", "--no-build", "--version",
                    patched.release.version)
    with capsys.disabled():
        # The side-by-side table, patched and stock, in the test output.
        print("\n" + proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert "scenarios pass on the patched build" in proc.stdout


@pytest.mark.parametrize("where", boot.BUSYBOX_PATHS)
def test_busybox_of_debian_12_and_13_sysroots(tmp_path, where):
    """busybox-static has it in /bin on Debian 12 and in /usr/bin on 13
    (merged /usr): a sysroot made on either host boots."""
    (tmp_path / where).parent.mkdir(parents=True)
    (tmp_path / where).write_text("busybox")
    assert boot.busybox(tmp_path) == tmp_path / where


def test_a_sysroot_without_busybox_is_an_error(tmp_path):
    with pytest.raises(Error, match="no busybox in"):
        boot.busybox(tmp_path)
