"""The pieces of the check that differ per architecture, in seconds.

The real cross build and the aarch64 boots take many minutes and stay out
of `make test` (`make ARCH=aarch64`, `make boot-test ARCH=aarch64`,
`make boot-libtest ARCH=aarch64`; see docs/early-boot.md).  These tests
cover what they are made of: the architecture data, the QEMU argv, the
private apt configuration of a foreign architecture, the cross configure
and its sysroot, and the parsing of the guest's Lib/test run.
"""

import pathlib

import pytest

from pep522 import config
from pep522.boot import boot, guest_tests, initramfs, machine
from pep522.builds import arches, cross, debs
from pep522.errors import Error
from pep522.release import source

AARCH64 = arches.get("aarch64")


# --- arches.toml -------------------------------------------------------------


def test_every_architecture_has_its_machine():
    for arch in arches.load().values():
        assert arch.qemu.startswith("qemu-system-")
        assert arch.cpu and arch.console and arch.library_dirs
        assert arch.kernel_package.startswith("linux-image-")
        assert "busybox-static" in arch.guest_packages


def test_aarch64_is_cross_built_on_x86_64(monkeypatch):
    monkeypatch.setattr(arches, "host_arch", lambda: "x86_64")
    assert not arches.get("aarch64").native
    assert arches.get().name == "x86_64" and arches.get().native
    assert AARCH64.triplet == "aarch64-linux-gnu"
    assert "gcc-aarch64-linux-gnu" in AARCH64.cross_packages
    assert "libffi-dev" in AARCH64.sysroot_packages  # ctypes


def test_cross_env_looks_only_in_the_sysroot():
    env = AARCH64.cross_env()
    assert env["ac_cv_file__dev_ptmx"] == "yes"
    assert env["ac_cv_file__dev_ptc"] == "no"
    assert env["ac_cv_buggy_getaddrinfo"] == "no"
    sysroot = str(AARCH64.sysroot)
    assert env["PKG_CONFIG_SYSROOT_DIR"] == sysroot
    for path in env["PKG_CONFIG_LIBDIR"].split(":"):
        assert path.startswith(sysroot + "/")
    assert "{" not in " ".join(env.values())


def test_bad_arches_file(tmp_path):
    path = tmp_path / "arches.toml"
    path.write_text('[sparc]\nqemu = "qemu-system-sparc"\ncolour = "red"\n')
    with pytest.raises(Error, match="unknown key 'colour'"):
        arches.load(path)
    with pytest.raises(Error, match="unknown architecture 'mips'") as e:
        arches.get("mips")
    assert e.value.hint.startswith("use one of them")


def test_foreign_arch_without_cross_keys(tmp_path, monkeypatch):
    text = arches.ARCHES.read_text().split("[aarch64]")[0]
    path = tmp_path / "arches.toml"
    path.write_text(text.replace("[x86_64]", "[riscv64]"))
    monkeypatch.setattr(arches, "host_arch", lambda: "x86_64")
    with pytest.raises(Error, match="lacks the cross build keys triplet"):
        arches.get("riscv64", path)


# --- The aarch64 machine -----------------------------------------------------


def test_aarch64_qemu_argv():
    argv = machine.qemu_argv(AARCH64, "/k/vmlinuz", "/b/initrd.gz",
                             "/b/serial.log", machine.kernel_args(AARCH64))
    assert argv[0] == "qemu-system-aarch64"
    # No RNG seed in the device tree, no RNDR in the CPU, no virtio-rng.
    assert argv[argv.index("-M") + 1] == "virt,dtb-randomness=off"
    assert argv[argv.index("-cpu") + 1] == "cortex-a57"
    assert "-nodefaults" in argv
    assert not any("virtio-rng" in word for word in argv)
    append = argv[argv.index("-append") + 1].split()
    for word in ("console=ttyAMA0", "random.trust_cpu=off",
                 "random.trust_bootloader=off"):
        assert word in append


def test_kernel_cache_is_per_architecture():
    assert machine.kernel_cache(AARCH64) != machine.kernel_cache(
        arches.get("x86_64"))


# --- Debian packages of a foreign architecture ------------------------------


def test_private_apt_of_arm64(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "debian_mirror",
                        lambda: ("http://mirror/debian", "/k.gpg"))
    apt = source.Apt(["bookworm"], root=tmp_path / "apt", arch="arm64")
    assert (tmp_path / "apt" / "sources.list").read_text() == \
        "deb [arch=arm64 signed-by=/k.gpg] http://mirror/debian bookworm " \
        "main\n"
    assert set(apt.options[::2]) == {"-o"}
    pairs = apt.options[1::2]
    assert "APT::Architecture=arm64" in pairs
    assert "APT::Architectures=arm64" in pairs
    # Nothing of the host's dpkg state: an empty status of our own.
    status = next(p for p in pairs if p.startswith("Dir::State::status="))
    assert status.split("=", 1)[1].startswith(str(tmp_path))
    # Source packages, as before: no architecture.
    plain = source.Apt(["trixie"], root=tmp_path / "src")
    assert (tmp_path / "src" / "sources.list").read_text().startswith(
        "deb-src [signed-by=/k.gpg]")
    assert not any("Architecture" in o for o in plain.options)


def test_host_suite(tmp_path):
    path = tmp_path / "os-release"
    path.write_text('NAME="Debian GNU/Linux"\nVERSION_CODENAME=bookworm\n')
    assert source.host_suite(path) == "bookworm"
    path.write_text('NAME="Something"\n')
    with pytest.raises(Error, match="VERSION_CODENAME"):
        source.host_suite(path)


def test_relative_symlinks(tmp_path):
    root = tmp_path / "sysroot"
    (root / "lib" / "t").mkdir(parents=True)
    (root / "lib" / "t" / "libz.so.1").write_text("z")
    (root / "usr" / "lib" / "t").mkdir(parents=True)
    link = root / "usr" / "lib" / "t" / "libz.so"
    link.symlink_to("/lib/t/libz.so.1")
    debs.relative_symlinks(root)
    assert not str(link.readlink()).startswith("/")
    assert link.read_text() == "z"


# --- The cross build ---------------------------------------------------------


def test_cross_target_and_configure(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "BUILD", tmp_path / "build")
    monkeypatch.setattr(cross, "build_triplet", lambda c: "x86_64-pc-linux")
    target = config.Target(config.release("3.13.5"), stock=True)
    built = cross.CrossTarget(target, AARCH64)
    assert built.name == "3.13.5-stock-aarch64"
    assert built.obj == tmp_path / "build" / "3.13.5-stock-aarch64" / "obj"
    assert built.src == target.src   # one tree, two builds
    assert built.make_hint() == "make ARCH=aarch64 STOCK=1"
    args = cross.configure_args(built)
    assert "--host=aarch64-linux-gnu" in args
    assert f"--with-build-python={target.python}" in args
    assert "--build=x86_64-pc-linux" in args


def test_missing_required_modules(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "BUILD", tmp_path / "build")
    built = cross.CrossTarget(config.Target(config.release()), AARCH64)
    lib = built.obj / "build" / "lib.linux-aarch64-3.13"
    lib.mkdir(parents=True)
    (built.obj / "pybuilddir.txt").write_text("build/lib.linux-aarch64-3.13")
    (lib / "zlib.cpython-313-aarch64-linux-gnu.so").write_text("")
    assert cross.missing_modules(built) == ["_ctypes", "_ssl"]


def test_guest_of_a_cross_build(tmp_path, monkeypatch):
    """The image of a cross build: its binary, the host build compiles
    the stdlib, libraries come from the sysroot."""
    monkeypatch.setattr(config, "BUILD", tmp_path / "build")
    monkeypatch.setattr(arches, "host_arch", lambda: "x86_64")
    target = config.Target(config.release("3.13.5"))
    guest = boot.guest_of(target, arches.get("aarch64"), make=False)
    assert guest.python == tmp_path / "build" / "3.13.5-aarch64" / "obj" / \
        "python"
    assert guest.compiler == target.python
    assert guest.root == tmp_path / "build" / "sysroot-aarch64"
    assert guest.version == "3.13"
    assert guest.strip == "aarch64-linux-gnu-strip"


# --- Lib/test in the guest ---------------------------------------------------


def test_rngsim_report():
    marks = {"rngsim.urandom_ready_after_20s": {
                 "exit_status": 3, "seconds": 0.4, "calls": {},
                 "answers": {"eagain": 3, "held": 0}},
             "rngsim.token_bytes_ready_after_5s": {
                 "exit_status": 0, "seconds": 5.1, "calls": {},
                 "answers": {"eagain": 3, "held": 1}},
             "rngsim.long_wait_warns_once": {
                 "exit_status": 11, "seconds": 5.1, "calls": {},
                 "answers": {"eagain": 3, "held": 1}}}
    assert guest_tests.rngsim_problems(marks) == []
    marks["rngsim.urandom_ready_after_20s"]["exit_status"] = 0
    marks["rngsim.token_bytes_ready_after_5s"]["answers"]["held"] = 0
    # No warning (10), or two (12): the long-wait warning is once.
    marks["rngsim.long_wait_warns_once"]["exit_status"] = 12
    assert guest_tests.rngsim_problems(marks) == [
        "rngsim urandom_ready_after_20s: exit status 0, not 3",
        "rngsim token_bytes_ready_after_5s: no getrandom() answered 'held'",
        "rngsim long_wait_warns_once: exit status 12, not 11"]
    del marks["rngsim.long_wait_warns_once"]
    assert guest_tests.rngsim_problems(marks)[-1] == (
        "rngsim long_wait_warns_once: no report")


def test_guest_files_for_libtest():
    assert pathlib.Path(
        guest_tests.EXTRA_FILES["scenarios/rngsim.py"]).is_file()
    text = (initramfs.GUEST_DIR / "init").read_text()
    for name in guest_tests.STEPS:
        assert f"scenario_{name}()" in text
