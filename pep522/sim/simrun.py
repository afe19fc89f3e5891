"""Running a child under the RNG simulator, and reading the result.

The end-to-end suite (tests/test_e2e.py), the variant checks
(pep522/checks/variant_checks.py), the stdlib import sweep and the impact
assessment (pep522/impact/impact.py) all start a child under rngsim and look at
it from the outside: exit status, output, timing and the simulator's
counts of getrandom() calls.  The mechanisms they share live here: the
cheap way of starting the simulator, a run with a time limit that kills
the whole process group, a plain run, a run interrupted by SIGINT while
it waits, and threads that draw at the same time.
"""

import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

from pep522.config import ROOT

# Rather than through `python3 -m pep522`, which imports the whole CLI
# (most of the supervisor's 0.13 s of CPU), the simulator starts through
# rngsim's own parser and run(), and without the site module.
SIM = [sys.executable, "-S", "-c", """if True:
    import argparse, sys
    sys.path.insert(0, sys.argv.pop(1))
    from pep522.sim import rngsim
    parser = argparse.ArgumentParser(prog="pep522")
    rngsim.add_parser(parser.add_subparsers())
    args = parser.parse_args(sys.argv[1:])
    sys.exit(args.func(args))
""", str(ROOT), "rngsim"]
# The same simulator through the command line, as a user starts it.
CLI = [sys.executable, "-m", "pep522", "rngsim"]


@dataclasses.dataclass
class Limited:
    """How a child run with a time limit ended."""

    returncode: int | None   # None: killed at the time limit
    stderr: str

    @property
    def timed_out(self):
        return self.returncode is None


def run_limited(argv, timeout, cwd=ROOT, env=None):
    """Run argv in its own process group, stdout discarded.

    At the time limit the whole group (a supervisor and its child, or
    anything the child started) is killed.  Output that is not UTF-8 is
    kept, with replacement characters.
    """
    proc = subprocess.Popen(argv, cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        return Limited(None, err.decode(errors="replace"))
    return Limited(proc.returncode, err.decode(errors="replace"))


# How long a run may take before it counts as hung (release build).
TIMEOUT = 15
# The interpreter under test ignores the environment and the user site
# directory, and does not put the current directory on sys.path.
ISOLATED = ("-I",)
# Runs that need PYTHONHASHSEED (so that startup draws no random bytes)
# cannot use -I, which ignores it.
FIXED_HASH = {"PYTHONHASHSEED": "0"}
NOT_ISOLATED = ("-s", "-P")
# The time limits of the runs the suite and the variant checks share (a
# variant scales them): how long a waiting child is given to enter
# getrandom() before SIGINT, and how long the threads that wait at once
# keep the RNG not ready; how many threads draw at once.
SETTLE = 0.3
THREADS_READY_AFTER = 1.0
THREADS = 8


@dataclasses.dataclass
class Run:
    """What one run under the simulator produced."""

    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    stats: dict | None

    def json(self):
        """The last line of stdout, parsed as JSON."""
        return json.loads(self.stdout.splitlines()[-1])


def sim_argv(python, options, code, *, stats=None, flags=ISOLATED,
             wrapper=(), sim=SIM):
    """rngsim OPTIONS [--stats FILE] -- [WRAPPER...] PYTHON FLAGS -c CODE.

    *sim* starts the simulator: SIM, or CLI (`python3 -m pep522 rngsim`).
    """
    stats_opt = ["--stats", str(stats)] if stats else []
    return [*sim, *options, *stats_opt, "--", *wrapper, str(python), *flags,
            "-c", textwrap.dedent(code)]


def read_stats(path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def run_sim(python, options, code, tmp_dir, *, flags=ISOLATED, wrapper=(),
            env=None, timeout=TIMEOUT, sim=SIM):
    """Run CODE in PYTHON under rngsim with OPTIONS until it exits.

    The simulator's counts are written to a file in *tmp_dir* and read
    into the Run's stats (with *tmp_dir* None, none are kept).
    """
    stats = (tmp_dir / f"stats-{time.monotonic_ns()}.json"
             if tmp_dir is not None else None)
    argv = sim_argv(python, options, code, stats=stats, flags=flags,
                    wrapper=wrapper, sim=sim)
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return Run(proc.returncode, proc.stdout, proc.stderr,
               time.monotonic() - started,
               read_stats(stats) if stats else None)


def start_sim(python, options, code, stats, env=None, *, flags=ISOLATED,
              sim=SIM):
    return subprocess.Popen(sim_argv(python, options, code, stats=stats,
                                     flags=flags, sim=sim),
                            cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def read_line(proc, timeout=TIMEOUT):
    """The next line the child prints, or "" if none comes in time."""
    if select.select([proc.stdout], [], [], timeout)[0]:
        return proc.stdout.readline()
    return ""


def finish(proc, timeout=TIMEOUT):
    """Wait for a started run; kill it if it does not end in time."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return out, err


def interrupt_wait(python, call, tmp_dir, *, settle=SETTLE, env=None,
                   timeout=TIMEOUT):
    """Send SIGINT to a run while CALL waits for a never-ready RNG.

    The child prints "calling" and makes CALL; *settle* seconds later the
    test sends SIGINT to the supervisor, which forwards it.  The Run's
    elapsed time is from the signal to the exit; its stdout is "" if the
    child never said "calling".
    """
    stats = tmp_dir / f"interrupted-{time.monotonic_ns()}.json"
    proc = start_sim(python, ["--never-ready"], f"""
        import os, secrets
        print("calling", flush=True)
        {call}
    """, stats, env=env)
    try:
        said = read_line(proc, timeout).strip()
        time.sleep(settle)  # let the child enter getrandom()
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        elapsed = time.monotonic() - sent
        _, err = finish(proc, timeout)
    finally:
        proc.kill()
    return Run(proc.returncode, said, err, elapsed, read_stats(stats))


# The child imports only the module CALL names (so that nothing else draws
# random bytes first) and starts `threads` threads that wait at a barrier,
# then each makes CALL `calls` times, recording what it returned or raised.
# It prints, as JSON, one [time.monotonic() at the end, [results]] per
# thread; a result is the value's hex, or "!" and the exception's name and
# errno.
THREADS_CHILD = """
    import json, threading, time, {module}
    barrier = threading.Barrier({threads})
    out = []
    def draw():
        barrier.wait()
        results = []
        for _ in range({calls}):
            try:
                value = {call}
            except OSError as e:
                results.append(f"!{{type(e).__name__}} {{e.errno}}")
            else:
                results.append(value.hex() if isinstance(value, bytes)
                               else "ok")
        out.append([time.monotonic(), results])
    threads = [threading.Thread(target=draw) for _ in range({threads})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out))
"""


def threads_drawing(python, options, call, tmp_dir, *, threads=THREADS,
                    calls=1, flags=ISOLATED, env=None, timeout=TIMEOUT,
                    sim=SIM):
    """Run CALL in *threads* threads at once, *calls* times each."""
    code = THREADS_CHILD.format(threads=threads, calls=calls, call=call,
                                module=call.split(".")[0])
    return run_sim(python, options, code, tmp_dir, flags=flags, env=env,
                   timeout=timeout, sim=sim)
