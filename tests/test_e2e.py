"""End-to-end tests: the patched interpreter under the RNG simulator.

Every test runs the patched build (the ``patched`` fixture,
build/<version>/obj/python) under ``python3 -m pep522 rngsim``, which makes
``getrandom()`` answer as a kernel whose RNG is not ready yet, and checks
the PEP 522 behaviour from the outside: exit status, output, timing and the
simulator's counts of getrandom() calls.  The last test imports every stdlib
module under the simulator, and does the same with stock upstream
(build/<version>-stock) for comparison.  See docs/testing.md, "End-to-end tests".

Tests that need one child process share it through a module-scoped
fixture, so each assertion is its own test without running the child again.
"""

import ast
import concurrent.futures
import dataclasses
import errno
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pep522 import config
from pep522.checks import expected
from pep522.sim import rngsim, simrun
from pep522.sim.simrun import (FIXED_HASH, ISOLATED, NOT_ISOLATED, THREADS,
                           THREADS_READY_AFTER, TIMEOUT, finish,
                           interrupt_wait, read_line, read_stats, run_sim,
                           start_sim, threads_drawing)
from test_rngsim import wait_for_line

ROOT = Path(__file__).resolve().parent.parent

# How long the secrets tests keep the RNG "not ready" before SIGUSR1.
WAIT = 2.0
# CPU time a waiting call may use: a polling loop would use most of the
# WAIT seconds, a call that sleeps in the kernel next to nothing (about
# 1 ms here), whatever the machine's load.
WAIT_CPU_LIMIT = WAIT / 2
CALLS = 100
SWEEP_TIMEOUT = 10
SWEEP_REPORT = config.BUILD / "e2e-sweep.md"

BLOCKING_MESSAGE = expected.STRERROR
NO_URANDOM_MESSAGE = "/dev/urandom (or equivalent) not found"

pytestmark = pytest.mark.skipif(not rngsim.supported(),
                                reason=rngsim.UNSUPPORTED)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def python(patched):
    return patched.python


@pytest.fixture(scope="module")
def release_build(python):
    check = subprocess.run(
        [python, "-I", "-c", "import sys; "
         "print(hasattr(sys, 'gettotalrefcount'))"],
        capture_output=True, text=True, timeout=TIMEOUT)
    return check.stdout.strip() == "False"


# --- Startup and the random module never block -----------------------------

KERNELS = {
    "linux>=5.6": ["--never-ready"],
    # GRND_INSECURE unknown: the interpreter falls back to /dev/urandom.
    "linux<5.6": ["--never-ready", "--no-insecure"],
}


@pytest.fixture(scope="module", params=sorted(KERNELS))
def startup(request, python, tmp):
    return run_sim(python, KERNELS[request.param], """
        import random
        print(random.random())
    """, tmp)


def test_startup_exits_successfully(startup):
    assert startup.returncode == 0, startup.stderr


def test_random_random_returns_a_float(startup):
    assert 0.0 <= float(startup.stdout) < 1.0


def test_startup_writes_nothing_to_stderr(startup, release_build):
    if not release_build:
        pytest.skip("a debug build may write to stderr; the requirement "
                    "is for release builds")
    assert startup.stderr == ""


def test_startup_makes_no_blocking_getrandom_call(startup):
    assert startup.stats["calls"]["blocking"] == 0


# --- os.urandom() and SystemRandom raise BlockingIOError -------------------

RAISING_CALLS = ["os.urandom(16)", "random.SystemRandom().random()",
                 "random.SystemRandom().getrandbits(32)"]


@pytest.fixture(scope="module")
def raised(python, tmp):
    """{call: (exception type name, errno, strerror, args, str)}."""
    run = run_sim(python, ["--never-ready"], f"""
        import json, os, random
        results = {{}}
        for call in {RAISING_CALLS!r}:
            try:
                eval(call)
            except BaseException as e:
                results[call] = [type(e).__name__, e.errno, e.strerror,
                                 list(e.args), str(e)]
            else:
                results[call] = None
        print(json.dumps(results))
    """, tmp)
    assert run.returncode == 0, run.stderr
    return {call: tuple(info) if info else None
            for call, info in run.json().items()}


@pytest.mark.parametrize("call", RAISING_CALLS)
def test_raises_blocking_io_error(raised, call):
    assert raised[call][0] == "BlockingIOError"


@pytest.mark.parametrize("call", RAISING_CALLS)
def test_blocking_io_error_errno_is_eagain(raised, call):
    assert raised[call][1] == errno.EAGAIN


@pytest.mark.parametrize("call", RAISING_CALLS)
def test_blocking_io_error_args(raised, call):
    assert raised[call][3] == [errno.EAGAIN, BLOCKING_MESSAGE]


@pytest.mark.parametrize("call", RAISING_CALLS)
def test_blocking_io_error_str(raised, call):
    assert raised[call][4] == f"[Errno {errno.EAGAIN}] {BLOCKING_MESSAGE}"


# --- secrets waits for the RNG, then returns -------------------------------

@dataclasses.dataclass(frozen=True)
class WaitCase:
    """A call that must wait for the RNG, under rngsim OPTIONS."""

    call: str
    check: object          # the call's result -> bool
    options: tuple = ()
    prelude: str = ""      # run before the call
    waits_in: str = "blocking"   # the kind of call rngsim holds


# Case -> how to run it.  wait_for_system_rng() has three ways to wait:
# getrandom(); /dev/random when getrandom() is refused (EPERM, as under a
# systemd SystemCallFilter=) or missing (ENOSYS); and, without
# os.getrandom(), the PEP's generic path: os.urandom(), /dev/random, poll.
WAITING = {
    "secrets.token_bytes(16)": WaitCase(
        "secrets.token_bytes(16)",
        lambda r: isinstance(r, bytes) and len(r) == 16),
    "secrets.token_hex(16)": WaitCase(
        "secrets.token_hex(16)", lambda r: isinstance(r, str) and len(r) == 32),
    "secrets.token_urlsafe(16)": WaitCase(
        "secrets.token_urlsafe(16)",
        lambda r: isinstance(r, str) and len(r) == 22),
    "secrets.choice('abcdef')": WaitCase(
        "secrets.choice('abcdef')", lambda r: r in "abcdef" and len(r) == 1),
    "secrets.randbelow(1000)": WaitCase(
        "secrets.randbelow(1000)", lambda r: 0 <= r < 1000),
    "secrets.randbits(64)": WaitCase(
        "secrets.randbits(64)", lambda r: 0 <= r < 2**64),
    "secrets.wait_for_system_rng()": WaitCase(
        "secrets.wait_for_system_rng()", lambda r: r is None),
    "wait_for_system_rng(), getrandom() EPERM": WaitCase(
        "secrets.wait_for_system_rng()", lambda r: r is None,
        options=("--eperm",), waits_in="dev_random"),
    "wait_for_system_rng(), getrandom() ENOSYS": WaitCase(
        "secrets.wait_for_system_rng()", lambda r: r is None,
        options=("--no-getrandom",), waits_in="dev_random"),
    "wait_for_system_rng(), no os.getrandom()": WaitCase(
        "secrets.wait_for_system_rng()", lambda r: r is None,
        prelude="del os.getrandom", waits_in="dev_random"),
}

# The child says when it calls; when the call returns it prints
# time.monotonic() (CLOCK_MONOTONIC, the same clock system-wide on Linux,
# so comparable with the test's) and the CPU time the call used.
WAITING_CHILD = """
    import os, secrets, sys, time
    {prelude}
    print("calling", flush=True)
    cpu = time.process_time()
    result = {call}
    returned = time.monotonic()
    cpu = time.process_time() - cpu
    print(returned, cpu, repr(result), flush=True)
"""


@dataclasses.dataclass
class Waited:
    sent: float        # when the test sent SIGUSR1 (ready)
    returned: float    # when the call returned in the child
    cpu: float         # CPU time the call used, waiting included
    result: object
    returncode: int
    stderr: str
    stats: dict


@pytest.fixture(scope="module")
def waited(python, tmp):
    """Run every waiting call at once, keep the RNG unready for WAIT
    seconds, then make it ready for one child after the other."""
    procs = {}
    try:
        for i, (name, case) in enumerate(WAITING.items()):
            stats = tmp / f"waited-{i}.json"
            child = WAITING_CHILD.format(call=case.call, prelude=case.prelude)
            procs[name] = (start_sim(python, ["--ready-on-signal",
                                              "--block-dev-random",
                                              *case.options], child, stats),
                           stats)
        for proc, _ in procs.values():
            assert wait_for_line(proc) == "calling"
        time.sleep(WAIT)
        results = {}
        for name, (proc, stats) in procs.items():
            sent = time.monotonic()
            proc.send_signal(signal.SIGUSR1)
            line = read_line(proc)
            _, err = finish(proc)
            try:
                returned, cpu, result = line.split(" ", 2)
                returned, cpu = float(returned), float(cpu)
                result = ast.literal_eval(result)
            except ValueError:  # it failed: the tests show stderr
                returned = cpu = result = math.nan
            results[name] = Waited(sent, returned, cpu, result,
                                   proc.returncode, err, read_stats(stats))
        return results
    finally:
        for proc, _ in procs.values():
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("case", WAITING)
def test_waiting_call_does_not_return_before_ready(waited, case):
    assert waited[case].returned >= waited[case].sent, waited[case].stderr


@pytest.mark.parametrize("case", WAITING)
def test_waiting_call_exits_successfully(waited, case):
    assert waited[case].returncode == 0, waited[case].stderr


@pytest.mark.parametrize("case", WAITING)
def test_waiting_call_result(waited, case):
    assert WAITING[case].check(waited[case].result), waited[case].result


@pytest.mark.parametrize("case", WAITING)
def test_waiting_call_uses_no_cpu_while_waiting(waited, case):
    assert waited[case].cpu < WAIT_CPU_LIMIT, waited[case].stderr


@pytest.mark.parametrize("case", WAITING)
def test_waiting_call_sleeps_in_one_kernel_call(waited, case):
    stats = waited[case].stats
    assert (stats["answers"]["held"], stats["answers"]["released"]) == (1, 1)
    assert stats["calls"][WAITING[case].waits_in] == 1


# --- One getrandom() per call once ready -----------------------------------

COUNTED_CALLS = ["os.urandom(16)", "secrets.token_bytes(16)",
                 "secrets.token_hex(16)", "secrets.token_urlsafe(16)",
                 "secrets.wait_for_system_rng()"]
COUNTING_CHILD = """
    import os, secrets
    for _ in range({n}):
        {call}
"""


def calls_after_ready(python, tmp, call, n):
    run = run_sim(python, ["--ready-after", "0"],
                  COUNTING_CHILD.format(call=call, n=n), tmp)
    assert run.returncode == 0, run.stderr
    return run.stats["calls_after_ready"]


@pytest.fixture(scope="module")
def baseline_calls(python, tmp):
    """getrandom() calls of startup and teardown: the loop runs 0 times."""
    return calls_after_ready(python, tmp, "pass", 0)


@pytest.mark.parametrize("call", COUNTED_CALLS)
def test_one_getrandom_per_call_once_ready(python, tmp, baseline_calls,
                                           call):
    calls = calls_after_ready(python, tmp, call, CALLS)
    assert calls - baseline_calls == CALLS


# --- Threads ----------------------------------------------------------------


@pytest.fixture(scope="module")
def threads(python, tmp):
    started = time.monotonic()
    run = threads_drawing(python, ["--ready-after",
                                   f"{THREADS_READY_AFTER:g}"],
                          "secrets.token_bytes(32)", tmp, threads=THREADS)
    assert run.returncode == 0, run.stderr
    # The simulator became ready that long after it started, so after this.
    run.ready_not_before = started + THREADS_READY_AFTER
    return run


def test_threads_all_return(threads):
    assert len(threads.json()) == THREADS


def test_threads_return_distinct_values(threads):
    assert len({values[0] for _, values in threads.json()}) == THREADS


def test_threads_return_only_after_ready(threads):
    first = min(returned for returned, _ in threads.json())
    assert first >= threads.ready_not_before


def test_threads_wait_concurrently_in_the_kernel(threads):
    assert threads.stats["answers"]["held"] == THREADS


# --- Ctrl-C while waiting ---------------------------------------------------


@pytest.fixture(scope="module")
def interrupted(python, tmp):
    run = interrupt_wait(python, "secrets.wait_for_system_rng()", tmp)
    assert run.stdout == "calling", run.stderr
    return run


def test_sigint_raises_keyboard_interrupt(interrupted):
    assert interrupted.stderr.rstrip().endswith("KeyboardInterrupt")


def test_sigint_interrupts_wait_for_system_rng(interrupted):
    assert "in wait_for_system_rng" in interrupted.stderr


def test_sigint_exit_status_is_that_of_an_interrupted_python(interrupted):
    # Python re-raises SIGINT on an unhandled KeyboardInterrupt; rngsim
    # turns "killed by signal N" into 128 + N, as a shell does.
    assert interrupted.returncode == 128 + signal.SIGINT


def test_sigint_leaves_no_held_call(interrupted):
    assert interrupted.stats["answers"]["interrupted"] == 1


# --- No getrandom(): /dev/urandom -------------------------------------------

REFUSALS = {"--no-getrandom": "enosys", "--eperm": "eperm"}
FALLBACK_CALLS = {
    "os.urandom(16)": lambda r: isinstance(r, bytes) and len(r) == 16,
    "secrets.token_bytes(16)":
        lambda r: isinstance(r, bytes) and len(r) == 16,
    "random.SystemRandom().random()": lambda r: 0.0 <= r < 1.0,
}


@pytest.fixture(scope="module", params=sorted(REFUSALS))
def fallback(request, python, tmp):
    run = run_sim(python, [request.param], f"""
        import os, random, secrets
        for call in {list(FALLBACK_CALLS)!r}:
            print(repr(eval(call)))
    """, tmp)
    run.option = request.param
    return run


def test_fallback_exits_successfully(fallback):
    assert fallback.returncode == 0, fallback.stderr


@pytest.mark.parametrize("index, call", enumerate(FALLBACK_CALLS))
def test_fallback_call_works(fallback, index, call):
    result = ast.literal_eval(fallback.stdout.splitlines()[index])
    assert FALLBACK_CALLS[call](result), result


def test_fallback_really_had_getrandom_refused(fallback):
    assert fallback.stats["answers"][REFUSALS[fallback.option]] > 0


# --- Neither getrandom() nor /dev/urandom -----------------------------------

# Mount an empty tmpfs over /dev in a new mount namespace, then exec the
# interpreter: "$0" "$@" are the arguments after the script.
HIDE_DEV = 'mount -t tmpfs pep522-e2e /dev && exec "$0" "$@"'
NAMESPACES = {
    "root": ["unshare", "--mount", "--propagation", "private"],
    "user namespace": ["unshare", "--user", "--map-root-user", "--mount",
                       "--propagation", "private"],
}


@pytest.fixture(scope="module")
def without_dev_urandom():
    """A command prefix that runs its command without /dev/urandom."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed: cannot hide "
                    "/dev/urandom in a mount namespace")
    errors = []
    for name, unshare in NAMESPACES.items():
        wrapper = [*unshare, "--", "sh", "-c", HIDE_DEV]
        probe = subprocess.run([*wrapper, "test", "!", "-e", "/dev/urandom"],
                               capture_output=True, text=True,
                               timeout=TIMEOUT)
        if probe.returncode == 0:
            return wrapper
        errors.append(f"{name}: {probe.stderr.strip() or probe.returncode}")
    pytest.skip("cannot mount over /dev in a new mount namespace ("
                + "; ".join(errors) + ")")


# The hash secret needs random bytes at startup unless PYTHONHASHSEED is
# set (see test_startup_without_any_random_source_*), so these runs set it
# (FIXED_HASH) and so cannot use -I (NOT_ISOLATED).


@pytest.mark.parametrize("option", sorted(REFUSALS))
def test_wait_without_dev_random_says_it_cannot_wait(
        python, tmp, without_dev_urandom, option):
    # getrandom() refused and no /dev/random: nothing can tell whether the
    # RNG is ready, so wait_for_system_rng() says so instead of returning.
    run = run_sim(python, [option], "import secrets; "
                  "secrets.wait_for_system_rng()", tmp,
                  flags=NOT_ISOLATED, wrapper=without_dev_urandom,
                  env=FIXED_HASH)
    assert (run.returncode, run.stderr.splitlines()[-1:]) == (
        1, ["FileNotFoundError: [Errno 2] cannot wait for the system random "
            "number generator: No such file or directory: '/dev/random'"]), \
        run.stderr


@pytest.mark.parametrize("option", sorted(REFUSALS))
@pytest.mark.parametrize("call", ["os.urandom(16)", "secrets.token_bytes(16)"])
def test_no_random_source_raises_not_implemented_error(
        python, tmp, without_dev_urandom, option, call):
    run = run_sim(python, [option], f"import os, secrets; {call}", tmp,
                  flags=NOT_ISOLATED, wrapper=without_dev_urandom,
                  env=FIXED_HASH)
    assert (run.returncode, run.stderr.splitlines()[-1:]) == (
        1, [f"NotImplementedError: {NO_URANDOM_MESSAGE}"]), run.stderr


@pytest.mark.parametrize("option", sorted(REFUSALS))
def test_no_random_source_random_module_still_works(
        python, tmp, without_dev_urandom, option):
    # Seeding falls back to the time and the pid.
    run = run_sim(python, [option], "import random; print(random.random())",
                  tmp, flags=NOT_ISOLATED, wrapper=without_dev_urandom,
                  env=FIXED_HASH)
    assert 0.0 <= float(run.stdout) < 1.0, run.stderr


@pytest.fixture(scope="module")
def no_source_startup(python, tmp, without_dev_urandom):
    return run_sim(python, ["--no-getrandom"], "pass", tmp,
                   wrapper=without_dev_urandom)


def test_startup_without_any_random_source_exits_with_status_1(
        no_source_startup):
    # Upstream behaviour, unchanged by the series: Py_Initialize() fails
    # cleanly (exit status 1, not a signal) when the hash secret cannot
    # be drawn from anywhere.
    assert no_source_startup.returncode == 1, no_source_startup.stderr


def test_startup_without_any_random_source_says_why(no_source_startup):
    assert ("_Py_HashRandomization_Init: failed to get random numbers"
            in no_source_startup.stderr)


# --- The stdlib import sweep -------------------------------------------------

SIDE_EFFECTS = {
    "antigravity": "skipped: opens a web browser",
    "this": "skipped: prints the Zen of Python",
}
OK, TIMEOUT_STATUS, NOT_BUILT = "ok", "timeout", "not built"


# The sweep starts the simulator about 560 times: through simrun's cheap
# way of starting it.
def run_limited(argv, timeout=SWEEP_TIMEOUT):
    """Run argv; return "ok", "timeout" or the last line of stderr."""
    ended = simrun.run_limited(argv, timeout)
    if ended.timed_out:
        return TIMEOUT_STATUS
    if ended.returncode == 0:
        return OK
    lines = (ended.stderr.strip().splitlines()
             or [f"exit status {ended.returncode}"])
    return lines[-1]


def sweep_one(python, module):
    """Import module under --never-ready; return its status.

    A module that does not import there is tried again without the
    simulator (the same as trying that first, at half the cost): if it
    fails there too, it is "not importable" on this build, not a failure.
    """
    if module in SIDE_EFFECTS:
        return SIDE_EFFECTS[module]
    code = f"import {module}"
    status = run_limited([*simrun.SIM, "--never-ready", "--", str(python),
                          *ISOLATED, "-c", code])
    if status == OK:
        return status
    plain = run_limited([str(python), *ISOLATED, "-c", code])
    return status if plain == OK else f"not importable: {plain}"


def is_skipped(status):
    return status.startswith(("skipped:", "not importable:", NOT_BUILT))


def sweep(builds, modules):
    """{build name: {module: status}}, importing in parallel."""
    workers = max(4, 2 * (os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {
            name: {m: pool.submit(sweep_one, python, m) for m in modules}
            for name, python in builds.items() if python.exists()}
        return {name: ({m: f.result() for m, f in futures[name].items()}
                       if name in futures else dict.fromkeys(modules,
                                                             NOT_BUILT))
                for name in builds}


def summary(statuses):
    values = list(statuses.values())
    imported = values.count(OK)
    hung = values.count(TIMEOUT_STATUS)
    skipped = sum(is_skipped(v) for v in values)
    failed = len(values) - imported - hung - skipped
    return (f"{imported} imported, {failed} failed, {hung} hung "
            f"({SWEEP_TIMEOUT} s timeout), {skipped} not tried")


def cell(status):
    return status.replace("|", "\\|")


def sweep_table(results):
    """Markdown: counts, then one row per module, builds side by side."""
    names = list(results)
    modules = sorted(next(iter(results.values())))
    lines = ["# stdlib import sweep under `rngsim --never-ready`",
             "",
             f"Each module imported in a fresh interpreter with a "
             f"{SWEEP_TIMEOUT} s limit.",
             ""]
    lines += [f"* {name}: {summary(results[name])}" for name in names]
    lines += ["", "| module | " + " | ".join(names) + " |",
              "| --- |" + " --- |" * len(names)]
    for m in modules:
        lines.append(f"| {m} | "
                     + " | ".join(cell(results[n][m]) for n in names) + " |")
    return "\n".join(lines) + "\n"


def notable_rows(results):
    """The rows of the table where some build did not simply import."""
    names = list(results)
    rows = []
    for m in sorted(next(iter(results.values()))):
        statuses = [results[n][m] for n in names]
        if any(s != OK and not is_skipped(s) for s in statuses):
            rows.append(f"  {m:24} " + "  ".join(f"{s:32}"
                                                 for s in statuses))
    return rows


@pytest.fixture(scope="module")
def swept(patched, stock, python):
    """{build name: {module: status}}; also written to SWEEP_REPORT."""
    modules = subprocess.run(
        [python, *ISOLATED, "-c",
         "import sys; print(*sorted(sys.stdlib_module_names))"],
        capture_output=True, text=True, check=True).stdout.split()
    results = sweep({"patched": Path(python), "stock": stock.python},
                    modules)
    SWEEP_REPORT.parent.mkdir(parents=True, exist_ok=True)
    SWEEP_REPORT.write_text(sweep_table(results))
    return results


def test_sweep_ran_stock_too(swept, capsys):
    # Shown past pytest's capture: the side-by-side comparison.
    with capsys.disabled():
        print(f"\n\nstdlib import sweep under rngsim --never-ready "
              f"(full table: {SWEEP_REPORT}):")
        for name in swept:
            print(f"  {name}: {summary(swept[name])}")
        print(f"  {'module':24} " + "  ".join(f"{n:32}" for n in swept))
        print("\n".join(notable_rows(swept)))
    assert NOT_BUILT not in swept["stock"].values()


def statuses(swept, build, wanted):
    return {m for m, s in swept[build].items() if wanted(s)}


def test_sweep_imports_every_module_stock_imports(swept):
    """Stock is the baseline: under the simulator the patched build
    imports all that stock does (and more: stock's multiprocessing
    waits for the RNG)."""
    ok = {build: statuses(swept, build, lambda s: s == OK)
          for build in swept}
    assert ok["stock"] - ok["patched"] == set(), f"see {SWEEP_REPORT}"
    assert len(ok["patched"]) >= len(ok["stock"]) > 0


def test_sweep_finds_no_more_unimportable_modules_than_stock(swept):
    """"Not importable" (fails without the simulator too) must be what
    stock's build lacks as well, not something the series broke."""
    def missing(s):
        return s.startswith("not importable:")
    assert (statuses(swept, "patched", missing)
            - statuses(swept, "stock", missing)) == set(), (
        f"see {SWEEP_REPORT}")


def test_sweep_raises_no_blocking_io_error(swept):
    failed = sorted(m for m, s in swept["patched"].items()
                    if "BlockingIOError" in s)
    assert failed == [], f"see {SWEEP_REPORT}"


def test_sweep_does_not_hang(swept):
    hung = sorted(m for m, s in swept["patched"].items()
                  if s == TIMEOUT_STATUS)
    assert hung == [], f"see {SWEEP_REPORT}"


def test_sweep_has_no_other_failure(swept):
    failed = sorted(m for m, s in swept["patched"].items()
                    if s != OK and not is_skipped(s))
    assert failed == [], f"see {SWEEP_REPORT}"
