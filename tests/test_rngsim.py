"""Tests for ``python3 -m pep522 rngsim``, run with the host Python.

They show the simulator is right independently of any patched CPython: the
commands under test are the host interpreter's os.getrandom()/os.urandom().
"""

import errno
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pep522.sim import rngsim, simrun
from pep522.sim.simrun import TIMEOUT, read_line

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not rngsim.supported(),
                                reason=rngsim.UNSUPPORTED)


# The host Python under `python3 -m pep522 rngsim`, through simrun's
# helpers: without interpreter flags, and through the command line.
HOST = {"flags": (), "sim": simrun.CLI}


def rngsim_argv(options, code):
    return simrun.sim_argv(sys.executable, options, code, **HOST)


def run_sim(options, code):
    return simrun.run_sim(sys.executable, options, code, None, **HOST)


def start_sim(options, code):
    return simrun.start_sim(sys.executable, options, code, None, **HOST)


def run_with_stats(tmp_path, options, code):
    tmp_path.mkdir(parents=True, exist_ok=True)
    run = simrun.run_sim(sys.executable, options, code, tmp_path, **HOST)
    assert run.stats is not None, run.stderr
    return run, run.stats


def wait_for_line(proc, timeout=TIMEOUT):
    line = read_line(proc, timeout)
    assert line, "the child printed nothing"
    return line.strip()


def has_output(proc, timeout):
    return bool(select.select([proc.stdout], [], [], timeout)[0])


BLOCKED_CALL = """
    import os, time
    print("calling", flush=True)
    os.getrandom(16)
    print(time.monotonic(), flush=True)
"""


# --- Pure functions -------------------------------------------------------

ARCH = rngsim.ARCHES["x86_64"]


def getrandom_kind(size, flags):
    return rngsim.classify(ARCH, ARCH.nr_getrandom, [0, size, flags, 0, 0, 0])


@pytest.mark.parametrize("flags, kind", [
    (0, "blocking"), (rngsim.GRND_RANDOM, "blocking"),
    (rngsim.GRND_NONBLOCK, "nonblocking"),
    (rngsim.GRND_NONBLOCK | rngsim.GRND_RANDOM, "nonblocking"),
    (rngsim.GRND_INSECURE, "insecure"),
    (rngsim.GRND_INSECURE | rngsim.GRND_NONBLOCK, "insecure"),
    (rngsim.GRND_INSECURE | rngsim.GRND_RANDOM, "invalid"),
    (0x8, "invalid"),
])
def test_classify_getrandom_flags(flags, kind):
    assert getrandom_kind(16, flags) == kind


def test_classify_droppable_mmap_is_vdso_setup():
    args = [0, 4096, 3, rngsim.MAP_DROPPABLE | 0x20, -1, 0]
    assert rngsim.classify(ARCH, ARCH.nr_mmap, args) == "vdso_setup"


@pytest.mark.parametrize("nr", sorted(ARCH.opens))
@pytest.mark.parametrize("opened, kind", [
    ((b"/dev/random", os.O_RDONLY), "dev_random"),
    ((b"/dev/random", os.O_RDONLY | os.O_CLOEXEC), "dev_random"),
    ((b"/dev/random", os.O_RDONLY | os.O_NONBLOCK), "open"),
    ((b"/dev/urandom", os.O_RDONLY), "open"),
    ((b"/dev/randomness", os.O_RDONLY), "open"),
    ((None, 0), "open"),  # the path could not be read
])
def test_classify_opens(nr, opened, kind):
    assert rngsim.classify(ARCH, nr, [0] * 6, opened) == kind


@pytest.mark.parametrize("policy", [rngsim.Policy(),
                                    rngsim.Policy(errno.EPERM),
                                    rngsim.Policy(errno.ENOSYS)])
def test_decide_dev_random_waits_until_ready_whatever_getrandom_does(policy):
    assert rngsim.decide("dev_random", policy, False) == rngsim.HOLD
    assert rngsim.decide("dev_random", policy, True) == rngsim.CONTINUE
    assert rngsim.decide("open", policy, False) == rngsim.CONTINUE


@pytest.mark.parametrize("where", ["middle", "page end"])
def test_read_c_string_from_proc_mem(where):
    import ctypes
    page = os.sysconf("SC_PAGE_SIZE")
    buf = ctypes.create_string_buffer(3 * page)
    base = ctypes.addressof(buf)
    start = base + page - base % page + (100 if where == "middle" else page - 5)
    ctypes.memmove(start, b"/dev/random\0", 12)
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        assert rngsim.read_c_string(fd, start, 12) == b"/dev/random"
        assert rngsim.read_c_string(fd, start, 5) == b"/dev/"
    finally:
        os.close(fd)


@pytest.mark.parametrize("flags, kind", [
    (1 << 32, "blocking"), ((1 << 32) | rngsim.GRND_NONBLOCK, "nonblocking"),
    ((0xFFFF_FFFF << 32) | rngsim.GRND_INSECURE, "insecure")])
def test_classify_reads_only_the_32_bits_of_the_flags(flags, kind):
    """The kernel takes the flags as an unsigned int: what the upper half
    of the register holds does not make a call invalid."""
    assert getrandom_kind(16, flags) == kind


def test_vdso_setup_is_refused_with_einval_in_every_mode():
    for policy in (rngsim.Policy(), rngsim.Policy(errno.ENOSYS)):
        for ready in (False, True):
            assert rngsim.decide("vdso_setup", policy, ready) == errno.EINVAL


@pytest.mark.parametrize("kind, ready, answer", [
    ("blocking", False, rngsim.HOLD),
    ("nonblocking", False, errno.EAGAIN),
    ("insecure", False, rngsim.CONTINUE),
    ("invalid", False, errno.EINVAL),
    ("blocking", True, rngsim.CONTINUE),
    ("nonblocking", True, rngsim.CONTINUE),
    ("invalid", True, errno.EINVAL),
])
def test_decide_default_kernel(kind, ready, answer):
    assert rngsim.decide(kind, rngsim.Policy(), ready) == answer


def test_decide_old_kernel_rejects_insecure_even_when_ready():
    policy = rngsim.Policy(no_insecure=True)
    assert rngsim.decide("insecure", policy, True) == errno.EINVAL


def test_ioctl_numbers():
    assert rngsim.NOTIF_RECV == 0xC0502100
    assert rngsim.NOTIF_SEND == 0xC0182101
    assert rngsim.NOTIF_ID_VALID == 0x40082102


@pytest.mark.parametrize("opens", [False, True])
@pytest.mark.parametrize("arch", sorted(rngsim.ARCHES))
def test_filter_jumps_stay_inside_program(arch, opens):
    prog = rngsim.build_filter(rngsim.ARCHES[arch], opens)
    for pc, (code, jt, jf, _) in enumerate(prog):
        if code & 0x07 == 0x05:  # BPF_JMP
            assert pc + 1 + max(jt, jf) < len(prog)
    assert prog[-1] == (rngsim.BPF_RET_K, 0, 0, rngsim.SECCOMP_RET_ALLOW)


def test_unsupported_arch_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "mips")
    with pytest.raises(rngsim.SimulatorError, match="unsupported"):
        rngsim.supervise(["true"], rngsim.Policy(), None, False)


# --- Readiness ------------------------------------------------------------

NONBLOCKING_CALL = """
    import os
    try:
        print(len(os.getrandom(1, os.GRND_NONBLOCK)))
    except BlockingIOError as e:
        print(e.errno)
"""


def test_nonblocking_fails_with_eagain_before_ready():
    proc = run_sim(["--never-ready"], NONBLOCKING_CALL)
    assert proc.stdout.strip() == str(errno.EAGAIN)


def test_never_ready_is_the_default():
    proc = run_sim([], NONBLOCKING_CALL)
    assert proc.stdout.strip() == str(errno.EAGAIN)


def test_nonblocking_works_after_ready():
    proc = run_sim(["--ready-after", "0"], NONBLOCKING_CALL)
    assert proc.stdout.strip() == "1"


@pytest.mark.parametrize("call", [
    "os.getrandom(16)", "os.urandom(16)",
    "open('/dev/random', 'rb', buffering=0).read(1)"])
def test_blocking_call_returns_when_ready(call, tmp_path):
    started = time.monotonic()
    proc, stats = run_with_stats(
        tmp_path, ["--ready-after", "1", "--block-dev-random"], f"""
        import os, time
        {call}
        print(time.monotonic())
    """)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) - started >= 1.0   # not before ready
    # Blocked in that very call: held once, released once when ready.
    assert (stats["answers"]["held"], stats["answers"]["released"]) == (1, 1)


def test_dev_random_is_not_held_by_default():
    proc = run_sim(["--never-ready"], """
        print(len(open('/dev/random', 'rb', buffering=0).read(1)))
    """)
    assert (proc.returncode, proc.stdout.strip()) == (0, "1"), proc.stderr


def test_nonblocking_open_of_dev_random_is_not_held():
    proc = run_sim(["--never-ready", "--block-dev-random"], """
        import os
        os.close(os.open("/dev/random", os.O_RDONLY | os.O_NONBLOCK))
        with open("/dev/urandom", "rb") as f:
            print(len(f.read(4)))
    """)
    assert (proc.returncode, proc.stdout.strip()) == (0, "4"), proc.stderr


def test_held_call_costs_no_cpu():
    proc = start_sim(["--ready-after", "1"], """
        import os, resource
        def cpu():
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime
        before = cpu()
        os.getrandom(16)
        print(cpu() - before)
    """)
    child_cpu = float(proc.stdout.read())
    assert proc.wait(TIMEOUT) == 0
    # Sleeping in the kernel costs next to nothing (about 1 ms here);
    # polling through the 1 s wait would cost most of it, whatever the load.
    assert child_cpu < 0.5


def test_ready_on_signal_holds_until_sigusr1():
    proc = start_sim(["--ready-on-signal"], BLOCKED_CALL)
    try:
        assert wait_for_line(proc) == "calling"
        assert not has_output(proc, 0.5), "returned before SIGUSR1"
        sent = time.monotonic()
        proc.send_signal(signal.SIGUSR1)
        returned = float(wait_for_line(proc))
        assert returned >= sent
        assert proc.wait(TIMEOUT) == 0
    finally:
        proc.kill()


# --- Kernel variants ------------------------------------------------------

INSECURE_CALL = """
    import os
    try:
        print(len(os.getrandom(8, 4)))  # GRND_INSECURE
    except OSError as e:
        print(e.errno)
"""


def test_insecure_allowed_before_ready():
    assert run_sim([], INSECURE_CALL).stdout.strip() == "8"


def test_insecure_einval_on_old_kernel():
    proc = run_sim(["--no-insecure"], INSECURE_CALL)
    assert proc.stdout.strip() == str(errno.EINVAL)


REFUSED_CALL = """
    import os
    try:
        os.getrandom(16)
    except OSError as e:
        print(e.errno)
    print(len(os.urandom(16)))  # falls back to /dev/urandom
"""


@pytest.mark.parametrize("option, err", [("--no-getrandom", errno.ENOSYS),
                                         ("--eperm", errno.EPERM)])
def test_refused_getrandom_and_urandom_fallback(option, err):
    proc = run_sim([option], REFUSED_CALL)
    assert proc.stdout.split() == [str(err), "16"]


DROPPABLE_MMAP = """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                          ctypes.c_int, ctypes.c_int, ctypes.c_long]
    if {map}:
        # MAP_DROPPABLE | MAP_ANONYMOUS, as for the vDSO getrandom state
        address = libc.mmap(None, 4096, 3, 0x08 | 0x20, -1, 0)
        print(ctypes.get_errno() if address == 2**64 - 1 else "mapped")
"""


def test_droppable_mmap_refused_so_libc_keeps_the_syscall(tmp_path):
    """The mapping is refused with EINVAL, and counted: one more than the
    same program makes without it (with glibc >= 2.41 on Linux >= 6.11,
    as in Debian 13, the interpreter's own getrandom() tries one too)."""
    (tmp_path / "base").mkdir()
    _, base = run_with_stats(tmp_path / "base", [],
                             DROPPABLE_MMAP.format(map=False))
    proc, stats = run_with_stats(tmp_path, [],
                                 DROPPABLE_MMAP.format(map=True))
    assert proc.stdout.strip() == str(errno.EINVAL)
    assert (stats["answers"]["vdso_refused"]
            - base["answers"]["vdso_refused"]) == 1


# --- Threads and signals --------------------------------------------------


def test_many_threads_held_and_all_released(tmp_path):
    # os.urandom() releases the GIL while blocked; 3.11's os.getrandom()
    # does not, so it would serialise the threads.
    run = simrun.threads_drawing(
        sys.executable, ["--ready-after", f"{simrun.THREADS_READY_AFTER:g}"],
        "os.urandom(32)", tmp_path, **HOST)
    assert run.returncode == 0, run.stderr
    values = [results[0] for _, results in run.json()]
    assert len(values) == len(set(values)) == simrun.THREADS
    assert run.stats["answers"]["held"] == simrun.THREADS
    assert run.stats["answers"]["released"] == simrun.THREADS


def test_sigint_interrupts_held_call_and_status_propagates(tmp_path):
    stats_file = tmp_path / "stats.json"
    proc = start_sim(["--stats", str(stats_file)], BLOCKED_CALL)
    try:
        assert wait_for_line(proc) == "calling"
        time.sleep(0.2)  # let the child enter getrandom()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 128 + signal.SIGINT
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in proc.stderr.read()
    stats = json.loads(stats_file.read_text())
    assert stats["answers"]["interrupted"] == 1
    assert stats["exit_status"] == 130


def test_exit_code_propagates():
    assert run_sim([], "raise SystemExit(3)").returncode == 3


def test_killed_by_signal_exits_like_a_shell():
    proc = run_sim([], "import os; os.kill(os.getpid(), 15)")
    assert proc.returncode == 128 + signal.SIGTERM


# --- Stats ------------------------------------------------------------------


def test_stats_content(tmp_path):
    proc, stats = run_with_stats(tmp_path, ["--ready-after", "0.5"], """
        import os
        try:
            os.getrandom(4, os.GRND_NONBLOCK)
        except BlockingIOError:
            pass
        os.getrandom(8, 4)
        os.getrandom(16)
        os.getrandom(32, os.GRND_NONBLOCK)
    """)
    assert proc.returncode == 0
    assert stats["calls"]["blocking"] == 1
    assert stats["calls"]["insecure"] == 1
    assert stats["answers"]["held"] == stats["answers"]["released"] == 1
    assert stats["bytes_before_ready"] == 0
    assert stats["insecure_bytes_before_ready"] == 8
    assert stats["calls_after_ready"] == 1
    assert stats["ready_at"] >= 0.5
    assert stats["exit_status"] == 0


def test_never_ready_stats_have_null_ready_at(tmp_path):
    _, stats = run_with_stats(tmp_path, [], "pass")
    assert stats["ready_at"] is None


def test_one_getrandom_per_urandom_once_ready(tmp_path):
    code = "import os\nfor _ in range({}): os.urandom(16)"
    _, base = run_with_stats(tmp_path, ["--ready-after", "0"], code.format(0))
    _, stats = run_with_stats(tmp_path, ["--ready-after", "0"],
                              code.format(100))
    assert stats["calls_after_ready"] - base["calls_after_ready"] == 100


# --- Errors -----------------------------------------------------------------


def test_missing_command_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "pep522", "rngsim"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "COMMAND is missing" in proc.stderr


def test_command_not_found_exits_127():
    proc = subprocess.run([sys.executable, "-m", "pep522", "rngsim", "--",
                           "no-such-command-rngsim"], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 127
    assert "no-such-command-rngsim" in proc.stderr


# --- Privileges and supervisor death ---------------------------------------


AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup",
             "--clear-groups"]


def python_for_nobody():
    """An interpreter >= 3.11 that the nobody user may run, or None.

    sys.executable may live where nobody cannot reach it (/root/.pyenv).
    The check execs it again, as the simulator does.
    """
    check_code = ("import os, sys; assert sys.version_info >= (3, 11); "
                  "os.execv(sys.argv[1], [sys.argv[1], '-c', ''])")
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
        check = subprocess.run(
            [*AS_NOBODY, python, "-c", check_code, python],
            cwd=ROOT, capture_output=True)
        if check.returncode == 0:
            return python
    return None


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="needs root to switch to the nobody user; as a "
                           "normal user every other test is unprivileged")
@pytest.mark.skipif(shutil.which("setpriv") is None,
                    reason="setpriv (util-linux) is not installed")
def test_works_unprivileged():
    python = python_for_nobody()
    if python is None:
        pytest.skip("no Python >= 3.11 that the nobody user can run")
    argv = [python if arg == sys.executable else arg
            for arg in rngsim_argv(["--ready-after", "0.3"], """
                import os
                try:
                    os.getrandom(1, os.GRND_NONBLOCK)
                except BlockingIOError:
                    print("EAGAIN", os.getuid(), len(os.getrandom(16)))
            """)]
    proc = subprocess.run([*AS_NOBODY, *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.stdout.split() == ["EAGAIN", "65534", "16"], proc.stderr


def test_supervisor_death_releases_with_enosys():
    proc = start_sim([], "print('calling', flush=True)\n"
                     + textwrap.dedent(REFUSED_CALL))
    try:
        assert wait_for_line(proc) == "calling"
        time.sleep(0.2)  # let the child enter getrandom()
        proc.kill()
        # The orphaned child keeps the pipe open until it finishes.
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert out.split() == [str(errno.ENOSYS), "16"]
