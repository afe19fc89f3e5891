"""Simulate a kernel whose random number generator is not ready yet.

Every test machine has an initialised kernel RNG, so the code paths that
PEP 522 is about (``getrandom()`` blocking, or failing with EAGAIN) never run
there.  ``rngsim`` runs a command under a supervisor that makes the
``getrandom()`` system call behave as it does early at boot.

Mechanism (seccomp user notification, seccomp_unotify(2)):

* The supervisor forks.  The child sets PR_SET_NO_NEW_PRIVS (so that an
  unprivileged user may install a filter), installs a classic BPF filter with
  SECCOMP_FILTER_FLAG_NEW_LISTENER and passes the listener fd to the
  supervisor over a socketpair, then closes its own copy and execs COMMAND.
* The filter kills the process for a foreign syscall ABI (it could not be
  classified), turns ``getrandom`` and ``mmap(MAP_DROPPABLE)`` (and, with
  --block-dev-random, the open system calls) into user notifications and
  allows everything else in the kernel, at full speed.
* The supervisor reads notifications (SECCOMP_IOCTL_NOTIF_RECV) and answers
  each one (SECCOMP_IOCTL_NOTIF_SEND) with an errno or with
  SECCOMP_USER_NOTIF_FLAG_CONTINUE, which lets the real kernel run the call.
  A blocking call before readiness gets no answer at all: the calling thread
  sleeps in the kernel until the supervisor releases it.  With
  --block-dev-random, an open of ``/dev/random`` (without O_NONBLOCK) is
  held the same way, because a read of /dev/random blocks until the RNG is
  ready: the supervisor reads the path from the caller's memory
  (/proc/PID/mem) and lets every other open run at once.  Held calls whose
  thread was interrupted by a signal disappear (SECCOMP_IOCTL_NOTIF_ID_VALID
  turns false); they are counted as "interrupted".

vDSO getrandom: glibc >= 2.41 and Go >= 1.24 generate random bytes in the
vDSO, without a system call, once they have mapped a state area with
``mmap(..., MAP_DROPPABLE | MAP_ANONYMOUS, ...)`` (the mapping parameters
come from the vDSO function itself, so there is no syscall to refuse there).
The supervisor answers that mmap with EINVAL, what a kernel without
MAP_DROPPABLE (and so without vDSO getrandom) answers; both libraries then
fall back to the system call.  Stats call this "vdso_setup"/"vdso_refused".

Signals: SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR2 and (unless
--ready-on-signal uses it) SIGUSR1 sent to the supervisor are forwarded to
the child, except those the terminal sent to the whole process group (the
child got its own copy).  The supervisor reads them from a signalfd, which
also wakes it when the child exits.

If the supervisor dies, the kernel closes the listener: pending and future
notified calls fail with ENOSYS.  Nothing hangs; the program sees "no
getrandom" (os.urandom() falls back to /dev/urandom).  With
--block-dev-random every open() fails then too, which is why holding
/dev/random is an option rather than the default.

Exit status: the child's exit code; if the child was killed by signal N the
supervisor exits with 128 + N, as a shell does.  125 means rngsim itself
failed, 126 that COMMAND could not be executed, 127 that it was not found.
"""

import argparse
import ctypes
import errno
import fcntl
import json
import math
import os
import platform
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

# --- Kernel ABI ----------------------------------------------------------


@dataclass(frozen=True)
class Arch:
    """Syscall numbers and the AUDIT_ARCH value of one native ABI."""

    audit_arch: int
    nr_seccomp: int
    nr_getrandom: int
    nr_mmap: int
    # open(path, flags), openat(dirfd, path, flags), openat2(dirfd, path,
    # how): the index of the path argument in each, by syscall number.
    opens: dict
    # Syscall numbers at or above this belong to another ABI (x32).
    foreign_nr_base: int = 0


NR_OPENAT2 = 437  # the same on every architecture
ARCHES = {
    "x86_64": Arch(0xC000003E, 317, 318, 9,
                   opens={2: 0, 257: 1, NR_OPENAT2: 1},
                   foreign_nr_base=0x40000000),
    "aarch64": Arch(0xC00000B7, 277, 278, 222,
                    opens={56: 1, NR_OPENAT2: 1}),
}

PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_NOTIF_SIZES = 3
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1

GRND_NONBLOCK = 0x1
GRND_RANDOM = 0x2
GRND_INSECURE = 0x4
MAP_TYPE = 0x0F
MAP_DROPPABLE = 0x08
O_NONBLOCK = 0o4000  # x86_64 and aarch64
DEV_RANDOM = b"/dev/random"

# Classic BPF opcodes used by the filter.
BPF_LD_W_ABS = 0x20
BPF_ALU_AND_K = 0x54
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort),
                ("filter", ctypes.POINTER(SockFilter))]


class SeccompData(ctypes.Structure):
    _fields_ = [("nr", ctypes.c_int), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64),
                ("args", ctypes.c_uint64 * 6)]


class SeccompNotif(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("data", SeccompData)]


class SeccompNotifResp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64),
                ("error", ctypes.c_int32), ("flags", ctypes.c_uint32)]


class SeccompNotifSizes(ctypes.Structure):
    _fields_ = [("notif", ctypes.c_uint16), ("resp", ctypes.c_uint16),
                ("data", ctypes.c_uint16)]


def _ioc(direction, nr, size):
    """_IOC() of the asm-generic ioctl encoding (x86_64 and aarch64)."""
    return direction << 30 | size << 16 | ord("!") << 8 | nr


_IOC_WRITE, _IOC_READ = 1, 2
NOTIF_RECV = _ioc(_IOC_READ | _IOC_WRITE, 0, ctypes.sizeof(SeccompNotif))
NOTIF_SEND = _ioc(_IOC_READ | _IOC_WRITE, 1, ctypes.sizeof(SeccompNotifResp))
NOTIF_ID_VALID = _ioc(_IOC_WRITE, 2, ctypes.sizeof(ctypes.c_uint64))
NOTIF_SET_FLAGS = _ioc(_IOC_WRITE, 4, ctypes.sizeof(ctypes.c_uint64))
SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP = 1

_ARCH_OFFSET = SeccompData.arch.offset
_NR_OFFSET = SeccompData.nr.offset
# Low 32 bits of args[3] (mmap flags); both supported ABIs are little endian.
_MMAP_FLAGS_OFFSET = SeccompData.args.offset + 3 * 8

_libc = ctypes.CDLL(None, use_errno=True)


class SimulatorError(Exception):
    """rngsim itself cannot go on; the message is for the user."""


UNSUPPORTED = "rngsim needs Linux on x86_64 or aarch64"


def supported():
    """Can the simulator run here (Linux, an architecture of ARCHES)?"""
    return sys.platform == "linux" and platform.machine() in ARCHES


def build_filter(arch, opens=False):
    """Return the BPF program as a list of (code, jt, jf, k).

    *opens*: also notify the open system calls (for /dev/random).

    Jump targets are written as labels and resolved at the end (classic
    BPF jumps are relative to the next instruction).
    """
    notified = [arch.nr_getrandom, *(sorted(arch.opens) if opens else [])]
    prog = [(BPF_LD_W_ABS, 0, 0, _ARCH_OFFSET),
            (BPF_JEQ_K, 1, 0, arch.audit_arch),
            (BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
            (BPF_LD_W_ABS, 0, 0, _NR_OFFSET)]
    if arch.foreign_nr_base:
        prog += [(BPF_JGE_K, 0, 1, arch.foreign_nr_base),
                 (BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS)]
    prog += [(BPF_JEQ_K, "notify", 0, nr) for nr in notified]
    prog += [(BPF_JEQ_K, 0, "allow", arch.nr_mmap),
             (BPF_LD_W_ABS, 0, 0, _MMAP_FLAGS_OFFSET),
             (BPF_ALU_AND_K, 0, 0, MAP_TYPE),
             (BPF_JEQ_K, 0, "allow", MAP_DROPPABLE)]
    labels = {"notify": len(prog), "allow": len(prog) + 1}
    prog += [(BPF_RET_K, 0, 0, SECCOMP_RET_USER_NOTIF),
             (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)]

    def offset(pc, target):
        return labels[target] - pc - 1 if isinstance(target, str) else target

    return [(code, offset(pc, jt), offset(pc, jf), k)
            for pc, (code, jt, jf, k) in enumerate(prog)]


def _check(result):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def _seccomp(arch, operation, flags, pointer):
    return _check(_libc.syscall(ctypes.c_long(arch.nr_seccomp),
                                ctypes.c_long(operation),
                                ctypes.c_long(flags), pointer))


def probe_user_notif(arch):
    """Fail clearly if this kernel has no seccomp user notification."""
    sizes = SeccompNotifSizes()
    try:
        _seccomp(arch, SECCOMP_GET_NOTIF_SIZES, 0, ctypes.byref(sizes))
    except OSError as e:
        raise SimulatorError(
            f"seccomp user notification is unavailable ({e.strerror}); "
            "it needs Linux >= 5.5 built with CONFIG_SECCOMP_FILTER") from e
    if sizes.notif < ctypes.sizeof(SeccompNotif):
        raise SimulatorError("unexpected struct seccomp_notif size "
                             f"{sizes.notif}")


def install_filter(arch, opens=False):
    """Install the filter on the calling thread; return the listener fd."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
    insns = build_filter(arch, opens)
    array = (SockFilter * len(insns))(*insns)
    prog = SockFprog(len(insns), array)
    return _seccomp(arch, SECCOMP_SET_MODE_FILTER,
                    SECCOMP_FILTER_FLAG_NEW_LISTENER, ctypes.byref(prog))


# --- Policy: what a not-yet-ready kernel answers ---------------------------

NONBLOCKING, BLOCKING, INSECURE, VDSO_SETUP, INVALID = (
    "nonblocking", "blocking", "insecure", "vdso_setup", "invalid")
# Opens: of /dev/random (which blocks until the RNG is ready), and others.
DEV_RANDOM_OPEN, OTHER_OPEN = "dev_random", "open"
CONTINUE, HOLD = "continue", "hold"


def classify(arch, nr, args, opened=None):
    """Return the kind of a notified call from its number and arguments.

    For an open, *opened* is (path, flags) as read from the caller's
    memory (path None if it could not be read).
    """
    if nr == arch.nr_mmap:
        # The filter only notifies MAP_DROPPABLE mappings: vDSO state.
        return VDSO_SETUP
    if nr in arch.opens:
        path, flags = opened
        return (DEV_RANDOM_OPEN if path == DEV_RANDOM
                and not flags & O_NONBLOCK else OTHER_OPEN)
    flags = args[2] & 0xFFFFFFFF
    known = GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE
    if flags & ~known or flags & (GRND_INSECURE | GRND_RANDOM) == (
            GRND_INSECURE | GRND_RANDOM):
        return INVALID  # the kernel answers EINVAL, ready or not
    if flags & GRND_INSECURE:
        return INSECURE
    if flags & GRND_NONBLOCK:
        return NONBLOCKING
    return BLOCKING  # GRND_RANDOM blocks like no flag at all


@dataclass(frozen=True)
class Policy:
    """Which kernel is simulated."""

    refuse_errno: int = 0      # ENOSYS or EPERM for every getrandom
    no_insecure: bool = False  # kernel < 5.6: GRND_INSECURE unknown
    dev_random: bool = False   # opens of /dev/random wait until ready


def decide(kind, policy, ready):
    """Return CONTINUE, HOLD or an errno for a call of this kind."""
    if kind == VDSO_SETUP:
        return errno.EINVAL
    if kind == OTHER_OPEN or (kind == DEV_RANDOM_OPEN and ready):
        return CONTINUE
    if kind == DEV_RANDOM_OPEN:
        return HOLD  # whatever getrandom() does: /dev/random waits
    if policy.refuse_errno:
        return policy.refuse_errno
    if kind == INVALID or (kind == INSECURE and policy.no_insecure):
        return errno.EINVAL
    if ready or kind == INSECURE:
        return CONTINUE
    return errno.EAGAIN if kind == NONBLOCKING else HOLD


# --- Statistics ------------------------------------------------------------

_ANSWER_NAMES = {errno.EAGAIN: "eagain", errno.ENOSYS: "enosys",
                 errno.EPERM: "eperm", errno.EINVAL: "einval"}


@dataclass
class Stats:
    calls: dict = field(default_factory=lambda: dict.fromkeys(
        (NONBLOCKING, BLOCKING, INSECURE, VDSO_SETUP, INVALID,
         DEV_RANDOM_OPEN), 0))
    answers: dict = field(default_factory=lambda: dict.fromkeys(
        ("eagain", "enosys", "eperm", "einval", "vdso_refused", "held",
         "released", "interrupted", "continued"), 0))
    bytes_before_ready: int = 0
    insecure_bytes_before_ready: int = 0
    calls_after_ready: int = 0
    ready_at: float | None = None
    exit_status: int | None = None

    def count_call(self, kind, ready):
        self.calls[kind] += 1
        if ready and kind not in (VDSO_SETUP, DEV_RANDOM_OPEN):
            self.calls_after_ready += 1

    def count_bytes(self, kind, size, ready):
        """Keep the counters honest: count whatever ran before
        readiness."""
        if not ready:
            if kind == INSECURE:
                self.insecure_bytes_before_ready += size
            else:
                self.bytes_before_ready += size

    def count_answer(self, kind, answer):
        if kind == VDSO_SETUP and answer == errno.EINVAL:
            self.answers["vdso_refused"] += 1
        elif isinstance(answer, int):
            self.answers[_ANSWER_NAMES[answer]] += 1
        else:
            self.answers["held" if answer == HOLD else "continued"] += 1


# --- The supervisor -------------------------------------------------------

FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
             signal.SIGUSR1, signal.SIGUSR2)
SFD_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC  # same values as O_*
SIGINFO_SIZE = 128
SI_KERNEL = 0x80


def open_signalfd(signums):
    """Block signums and return a signalfd that reports them.

    A signalfd, unlike a Python handler, tells who sent the signal: a
    terminal sends SIGINT to the whole foreground process group, child
    included, and forwarding it would deliver it twice.
    """
    mask = ctypes.create_string_buffer(128)  # glibc sigset_t
    _libc.sigemptyset(mask)
    for signum in signums:
        _libc.sigaddset(mask, signum)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    return _check(_libc.signalfd(-1, mask, SFD_NONBLOCK_CLOEXEC)), old


class Listener:
    """The seccomp plumbing: the listener of one child's filter.

    It receives the notified calls, answers them, tells whether a call is
    still pending, and reads what an open names from the caller's memory.
    """

    def __init__(self, fd, arch):
        self.fd = fd
        self.arch = arch

    def receive(self):
        """The next notified call, or None if it was interrupted first."""
        notif = SeccompNotif()
        try:
            fcntl.ioctl(self.fd, NOTIF_RECV, notif, True)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None  # interrupted before we could read it
            raise
        return notif

    def send(self, notif_id, answer):
        """Answer one call; return False if it no longer exists."""
        resp = SeccompNotifResp(id=notif_id)
        if answer == CONTINUE:
            resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE
        else:
            resp.error = -answer
        try:
            fcntl.ioctl(self.fd, NOTIF_SEND, resp, True)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            if e.errno == errno.EINVAL and answer == CONTINUE:
                raise SimulatorError(
                    "the kernel rejects SECCOMP_USER_NOTIF_FLAG_CONTINUE "
                    "(needs Linux >= 5.5)") from e
            raise
        return True

    def valid(self, notif_id):
        """Is the call still pending (its thread neither interrupted nor
        dead)?"""
        try:
            fcntl.ioctl(self.fd, NOTIF_ID_VALID,
                        ctypes.c_uint64(notif_id), True)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    def read_open(self, notif):
        """(path, flags) of a notified open, path None if unreadable.

        Only as much of the path as /dev/random needs is read.  The call
        must still be pending afterwards: otherwise the memory read may
        belong to another program (the caller exec'd meanwhile).
        """
        nr, args = notif.data.nr, notif.data.args
        path_arg = self.arch.opens[nr]
        try:
            fd = os.open(f"/proc/{notif.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None, 0
        try:
            path = read_c_string(fd, args[path_arg], len(DEV_RANDOM) + 1)
            if nr == NR_OPENAT2:  # flags: the first field of struct open_how
                flags = int.from_bytes(os.pread(fd, 8, args[2]), "little")
            else:
                flags = args[path_arg + 1]
        except OSError:
            return None, 0
        finally:
            os.close(fd)
        return (path, flags) if self.valid(notif.id) else (None, 0)


class Clock:
    """When the simulated RNG becomes ready: at a deadline (--ready-after),
    on SIGUSR1 (--ready-on-signal), or never."""

    def __init__(self, started, deadline, on_signal):
        self.started = started
        self.deadline = deadline
        self.on_signal = on_signal
        self.ready = False

    def elapsed(self):
        return round(time.monotonic() - self.started, 6)

    def timeout_ms(self):
        """How long the supervisor may sleep before the deadline."""
        if self.ready or self.deadline is None:
            return None
        return max(0, math.ceil((self.deadline - time.monotonic()) * 1000))

    def due(self):
        """Has the deadline passed while the RNG is still not ready?"""
        return (not self.ready and self.deadline is not None
                and time.monotonic() >= self.deadline)


class Answers:
    """The per-syscall answers: each notified call is classified, counted
    and answered as the policy says; blocking calls are held until the
    RNG becomes ready."""

    def __init__(self, listener, policy, clock, stats):
        self.listener = listener
        self.policy = policy
        self.clock = clock
        self.stats = stats
        self.held = {}  # notification id -> requested size

    def _continue(self, notif_id, kind, size):
        if not self.listener.send(notif_id, CONTINUE):
            return False
        self.stats.count_bytes(kind, size, self.clock.ready)
        return True

    def on_notification(self):
        notif = self.listener.receive()
        if notif is None:
            return
        nr, args = notif.data.nr, notif.data.args
        opened = (self.listener.read_open(notif)
                  if nr in self.listener.arch.opens else None)
        kind = classify(self.listener.arch, nr, args, opened)
        if kind == OTHER_OPEN:
            # Not ours to count: let it run.
            self.listener.send(notif.id, CONTINUE)
            return
        size = args[1] if kind != DEV_RANDOM_OPEN else 0
        self.stats.count_call(kind, self.clock.ready)
        answer = decide(kind, self.policy, self.clock.ready)
        self.stats.count_answer(kind, answer)
        if answer == HOLD:
            self.held[notif.id] = size
            return
        sent = (self._continue(notif.id, kind, size) if answer == CONTINUE
                else self.listener.send(notif.id, answer))
        if not sent:
            self.stats.answers["interrupted"] += 1

    def become_ready(self):
        self.clock.ready = True
        self.stats.ready_at = self.clock.elapsed()
        for notif_id, size in self.held.items():
            outcome = ("released" if self._continue(notif_id, BLOCKING, size)
                       else "interrupted")
            self.stats.answers[outcome] += 1
        self.held.clear()

    def drop_interrupted(self):
        """Forget held calls whose thread was interrupted or has died."""
        for notif_id in [i for i in self.held
                         if not self.listener.valid(i)]:
            del self.held[notif_id]
            self.stats.answers["interrupted"] += 1


class Supervisor:
    """Serves one child until it exits: its notified calls (Answers), its
    readiness clock, and the signals for it (forwarded, or SIGUSR1 to make
    the RNG ready)."""

    def __init__(self, listener, pid, policy, ready_on_signal, deadline,
                 started):
        self.pid = pid
        self.stats = Stats()
        self.clock = Clock(started, deadline, ready_on_signal)
        self.listener = Listener(listener, ARCHES[platform.machine()])
        self.answers = Answers(self.listener, policy, self.clock, self.stats)
        self.wait_status = None

    def on_signals(self, sigfd):
        data = os.read(sigfd, SIGINFO_SIZE * 16)
        for offset in range(0, len(data), SIGINFO_SIZE):
            signo, _, code = struct.unpack_from("<Iii", data, offset)
            if signo == signal.SIGCHLD:
                self._reap()
            elif signo == signal.SIGUSR1 and self.clock.on_signal:
                if not self.clock.ready:
                    self.answers.become_ready()
            elif code != SI_KERNEL:
                # SI_KERNEL: sent by the terminal to the whole process
                # group, so the child has its own copy already.
                os.kill(self.pid, signo)

    def _reap(self):
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid:
            self.wait_status = status

    def serve(self, sigfd):
        """Answer calls until the child exits; return its wait status."""
        poller = select.poll()
        poller.register(self.listener.fd, select.POLLIN)
        poller.register(sigfd, select.POLLIN)
        while self.wait_status is None:
            if self.clock.due():
                self.answers.become_ready()
            for fd, events in poller.poll(self.clock.timeout_ms()):
                if fd == sigfd:
                    self.on_signals(sigfd)
                elif events & select.POLLIN:
                    self.answers.on_notification()
                else:
                    # POLLHUP: no process uses the filter any more.
                    poller.unregister(self.listener.fd)
            if self.answers.held:
                self.answers.drop_interrupted()
        self.answers.drop_interrupted()
        return self.wait_status


def read_c_string(fd, address, limit):
    """At most *limit* bytes of the C string at *address* of /proc/PID/mem
    *fd*, without its NUL.  Never reads past the string's page unless the
    string goes on."""
    page = os.sysconf("SC_PAGE_SIZE")
    data = os.pread(fd, min(limit, page - address % page), address)
    if b"\0" not in data and 0 < len(data) < limit:
        data += os.pread(fd, limit - len(data), address + len(data))
    return data.split(b"\0", 1)[0]


# --- Process plumbing -------------------------------------------------------


def _exec_child(sock, arch, opens, command, old_mask):
    """In the forked child: install the filter, hand over fd, exec."""
    code = 125
    try:
        try:
            listener = install_filter(arch, opens)
        except OSError as e:
            print(f"rngsim: cannot install the seccomp filter: {e.strerror}",
                  file=sys.stderr)
            return
        socket.send_fds(sock, [b"L"], [listener])
        # Only the supervisor may hold the listener: if it dies, the
        # kernel must see the listener closed and answer ENOSYS.
        os.close(listener)
        sock.close()
        # Undo what Python and the supervisor changed, as a shell would.
        for signum in (signal.SIGPIPE, signal.SIGXFSZ) + FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        try:
            os.execvp(command[0], command)
        except OSError as e:
            code = 127 if e.errno == errno.ENOENT else 126
            print(f"rngsim: {command[0]}: {e.strerror}", file=sys.stderr)
    finally:
        sys.stderr.flush()
        os._exit(code)


def _sync_wake_up(listener):
    """Ask Linux >= 6.6 to switch directly between caller and supervisor.

    A call then costs a context switch on one CPU instead of a cross-CPU
    wake-up each way.  Older kernels refuse with EINVAL; that only costs
    speed.
    """
    try:
        fcntl.ioctl(listener, NOTIF_SET_FLAGS,
                    SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise


def _exit_code(wait_status):
    code = os.waitstatus_to_exitcode(wait_status)
    if code >= 0:
        return code
    if -code == signal.SIGSYS:
        print("rngsim: command killed by SIGSYS: a syscall of a foreign ABI "
              "(e.g. 32-bit) cannot be simulated", file=sys.stderr)
    return 128 - code


def supervise(command, policy, deadline_after, ready_on_signal):
    """Run command under the simulator; return (exit code, Stats)."""
    arch = ARCHES.get(platform.machine()) if sys.platform == "linux" else None
    if arch is None:
        raise SimulatorError(f"unsupported platform {sys.platform} "
                             f"{platform.machine()} (Linux x86_64 or "
                             "aarch64 only)")
    probe_user_notif(arch)
    sigfd, old_mask = open_signalfd(FORWARDED + (signal.SIGCHLD,))
    parent_sock, child_sock = socket.socketpair()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        parent_sock.close()
        _exec_child(child_sock, arch, policy.dev_random, command, old_mask)
    child_sock.close()
    _, fds, _, _ = socket.recv_fds(parent_sock, 1, 1)
    parent_sock.close()
    if not fds:  # the child failed before exec and said why
        return _exit_code(os.waitpid(pid, 0)[1]), Stats()
    deadline = None if deadline_after is None else started + deadline_after
    _sync_wake_up(fds[0])
    sup = Supervisor(fds[0], pid, policy, ready_on_signal, deadline, started)
    try:
        status = sup.serve(sigfd)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(fds[0])
        os.close(sigfd)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return _exit_code(status), sup.stats


def write_stats(path, stats):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(stats.__dict__, f, indent=2)
        f.write("\n")


def run(args):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        args.parser.error("COMMAND is missing")
    refuse = errno.ENOSYS if args.no_getrandom else (
        errno.EPERM if args.eperm else 0)
    policy = Policy(refuse_errno=refuse, no_insecure=args.no_insecure,
                    dev_random=args.block_dev_random)
    try:
        code, stats = supervise(command, policy, args.ready_after,
                                args.ready_on_signal)
    except SimulatorError as e:
        print(f"rngsim: {e}", file=sys.stderr)
        return 125
    stats.exit_status = code
    if args.stats:
        write_stats(args.stats, stats)
    return code


def _seconds(text):
    value = float(text)
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"not a duration: {text}")
    return value


def add_parser(sub):
    parser = sub.add_parser(
        "rngsim", help="run a command as if the kernel RNG were not ready",
        description="Run COMMAND with getrandom() behaving as on a kernel "
                    "whose RNG is not initialised yet (never, by default).")
    ready = parser.add_mutually_exclusive_group()
    ready.add_argument("--never-ready", action="store_true",
                       help="the RNG never becomes ready (default)")
    ready.add_argument("--ready-after", type=_seconds, metavar="SECONDS",
                       help="ready SECONDS after COMMAND starts")
    ready.add_argument("--ready-on-signal", action="store_true",
                       help="ready when the supervisor receives SIGUSR1")
    kernel = parser.add_mutually_exclusive_group()
    kernel.add_argument("--no-getrandom", action="store_true",
                        help="every getrandom() fails with ENOSYS")
    kernel.add_argument("--eperm", action="store_true",
                        help="every getrandom() fails with EPERM")
    kernel.add_argument("--no-insecure", action="store_true",
                        help="GRND_INSECURE fails with EINVAL (Linux < 5.6)")
    parser.add_argument("--block-dev-random", action="store_true",
                        help="opens of /dev/random wait until the RNG is "
                        "ready, as its reads do (intercepts every open)")
    parser.add_argument("--stats", metavar="FILE",
                        help="write call and answer counts as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        metavar="-- COMMAND...")
    parser.set_defaults(func=run, parser=parser)
    return parser
