"""Run a child under the simulator, many times, with a time limit.

The stdlib import sweep (tests/test_e2e.py) and the impact assessment
(pep522/impact.py) start the simulator hundreds of times each.  They share
the cheap way of starting it and the way of running a child that may hang.
"""

import dataclasses
import os
import signal
import subprocess
import sys

from pep522.config import ROOT

# Rather than through `python3 -m pep522`, which imports the whole CLI
# (most of the supervisor's 0.13 s of CPU), the simulator starts through
# rngsim's own parser and run(), and without the site module.
SIM = [sys.executable, "-S", "-c", """if True:
    import argparse, sys
    sys.path.insert(0, sys.argv.pop(1))
    from pep522 import rngsim
    parser = argparse.ArgumentParser(prog="pep522")
    rngsim.add_parser(parser.add_subparsers())
    args = parser.parse_args(sys.argv[1:])
    sys.exit(args.func(args))
""", str(ROOT), "rngsim"]


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
