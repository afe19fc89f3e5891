"""CPython's PEP 522 test classes and the simulator, inside the guest.

`boot --libtest` boots the patched build once with Lib/test in its image.
/init makes the kernel RNG ready (the other tests of these modules call
os.urandom()), then runs `python3 -m test test_os test_secrets
test_random -v`: the PEP 522 classes simulate a not-ready RNG themselves,
with the seccomp helper of Lib/test/support/rng_helper.py, whose syscall
numbers and audit architecture are per architecture.  Then it runs the
project's simulator (pep522/sim/rngsim.py, stdlib and ctypes) under the same
interpreter (boot_scenarios/guest.py, mode rngsim).

The PEP 522 classes are the test classes the series adds to those modules
(testing.series_classes: read from the patched tree's git history, so the
count follows the series); each must run and pass, none may skip.
boot_scenarios/libtest-ignore.txt leaves out, with reasons, the few other
tests that the minimal guest (not the series) makes fail.
"""

import pathlib

from pep522 import steps
from pep522.boot import initramfs
from pep522.checks import testing
from pep522.sim import rngsim

# What /init runs (boot_scenarios/init: scenario_libtest, scenario_rngsim)
# and the files it needs beyond the scenarios' own.
STEPS = ["libtest", "rngsim"]
EXTRA_FILES = {"scenarios/rngsim.py": pathlib.Path(rngsim.__file__),
               "scenarios/libtest-ignore.txt":
               initramfs.GUEST_DIR / "libtest-ignore.txt"}
TEST_MODULES = testing.TOUCHED_TESTS
# The whole boot: test_os alone takes minutes under software emulation.
TIMEOUT = 1800

def report(log, marks, guest, arch):
    """Print what ran in the guest; 0 when every PEP 522 test ran and
    passed, none was skipped and the simulator behaved."""
    text = log.read_text(errors="replace")
    found = testing.series_run(text, testing.series_classes(guest.src),
                               TEST_MODULES)
    run = marks.get("libtest.run", {})
    steps.say(f"Lib/test on {arch.name} ({guest.name}): "
              f"{' '.join(TEST_MODULES)} exited {run.get('rc')} in "
              f"{run.get('end', 0) - run.get('start', 0):.0f}s")
    for line in testing.summary_lines(text):
        steps.say(f"  {line}")
    steps.say(f"  {found.line()}: {', '.join(found.expected)}")
    for line in found.details():
        steps.say(f"    {line}")
    problems = []
    if run.get("rc") != 0:
        problems.append(f"regrtest exited {run.get('rc')}")
    problems += found.problems
    problems += rngsim_problems(marks)
    for problem in problems:
        steps.say(f"FAIL {problem}")
    steps.say(f"log: {steps.display(log)}")
    return 1 if problems else 0


# The simulator's cases (boot_scenarios/guest.py, RNGSIM_CASES): the
# child's exit status, and the answer the simulator must have given at
# least once: EAGAIN to os.urandom(), a held (blocking) getrandom() for
# secrets.token_bytes() that waits, and one long-wait RuntimeWarning (exit
# status 11) when that wait outlasts the warning's threshold.
RNGSIM_EXPECTED = {"urandom_ready_after_20s": (3, "eagain"),
                   "token_bytes_ready_after_5s": (0, "held"),
                   "long_wait_warns_once": (11, "held")}


def rngsim_problems(marks):
    """Print the simulator's cases; return what went wrong."""
    problems = []
    for case, (status, answer) in RNGSIM_EXPECTED.items():
        result = marks.get(f"rngsim.{case}")
        if not isinstance(result, dict):
            problems.append(f"rngsim {case}: no report")
            continue
        steps.say(f"  rngsim {case}: " + (result.get("error") or (
            f"exit {result['exit_status']} in {result['seconds']:.2f}s, "
            f"getrandom calls {result['calls']}, answers "
            f"{result['answers']}")))
        if result.get("exit_status") != status:
            problems.append(f"rngsim {case}: exit status "
                            f"{result.get('exit_status')}, not {status}")
        elif not result.get("answers", {}).get(answer):
            problems.append(f"rngsim {case}: no getrandom() answered "
                            f"{answer!r}")
    return problems
