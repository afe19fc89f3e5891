"""CPython's PEP 522 test classes and the simulator, inside the guest.

`boot --libtest` boots the patched build once with Lib/test in its image.
/init makes the kernel RNG ready (the other tests of these modules call
os.urandom()), then runs `python3 -m test test_os test_secrets
test_random -v`: the PEP 522 classes simulate a not-ready RNG themselves,
with the seccomp helper of Lib/test/support/rng_helper.py, whose syscall
numbers and audit architecture are per architecture.  Then it runs the
project's simulator (pep522/rngsim.py, stdlib and ctypes) under the same
interpreter (boot_scenarios/guest.py, mode rngsim).

The PEP 522 classes are the test classes the series adds to those modules,
read from the patched tree's git history, so the count follows the series.
boot_scenarios/libtest-ignore.txt leaves out, with reasons, the few other
tests that the minimal guest (not the series) makes fail.
"""

import pathlib
import re

from pep522 import git, initramfs, rngsim, steps

# What /init runs (boot_scenarios/init: scenario_libtest, scenario_rngsim)
# and the files it needs beyond the scenarios' own.
STEPS = ["libtest", "rngsim"]
EXTRA_FILES = {"scenarios/rngsim.py": pathlib.Path(rngsim.__file__),
               "scenarios/libtest-ignore.txt":
               initramfs.GUEST_DIR / "libtest-ignore.txt"}
TEST_MODULES = ["test_os", "test_secrets", "test_random"]
# The whole boot: test_os alone takes minutes under software emulation.
TIMEOUT = 1800

# unittest -v: "test_x (test.test_os.Class.test_x) ... ok"; a result may
# follow on a later line when the test printed something.
TEST = re.compile(r"^(\w+) \(test\.(\w+)\.(\w+)\.\w+\)")
OUTCOME = (r"(ok|skipped.*|FAIL|ERROR|expected failure|"
           r"unexpected success)\s*$")
RESULT = re.compile(r"\.\.\. " + OUTCOME)
LATE_RESULT = re.compile("^" + OUTCOME)
CLASS_ADDED = re.compile(r"^\+class (\w+)\(", re.M)


def pep522_classes(src):
    """{module: [class]}: the test classes the series adds."""
    found = {}
    for module in TEST_MODULES:
        diff = git.git(src, "diff", "upstream", "HEAD", "--",
                       f"Lib/test/{module}.py", f"Lib/test/{module}")
        found[module] = CLASS_ADDED.findall(diff)
    return found


def parse_results(text):
    """[(module, class, test, result)] from regrtest -v output."""
    results, pending = [], None
    for line in text.splitlines():
        line = line.rstrip("\r")
        match = TEST.match(line)
        if match:
            test, module, cls = match.groups()
            result = RESULT.search(line, match.end())
            if result:
                results.append((module, cls, test, result.group(1)))
                pending = None
            else:
                pending = (module, cls, test)
            continue
        late = LATE_RESULT.match(line)
        if late and pending:
            results.append((*pending, late.group(1)))
            pending = None
    return results


def summarize(results, classes):
    """Counts over the PEP 522 classes: {ran, ok, skipped, failed},
    and the skip reasons and failures by test."""
    wanted = {(m, c) for m, names in classes.items() for c in names}
    mine = [r for r in results if (r[0], r[1]) in wanted]
    counts = {"ran": len(mine),
              "ok": sum(r[3] in ("ok", "expected failure") for r in mine),
              "skipped": sum(r[3].startswith("skipped") for r in mine)}
    counts["failed"] = counts["ran"] - counts["ok"] - counts["skipped"]
    details = [f"{m}.{c}.{t}: {r}" for m, c, t, r in mine if r != "ok"]
    return counts, details


def regrtest_summary(text):
    """regrtest's own closing lines ("Result: ...", "Total tests: ...")."""
    return [line.strip() for line in text.splitlines()
            if line.strip().startswith(("Result:", "Total tests:",
                                        "Total test files:"))]


def report(log, marks, guest, arch):
    """Print what ran in the guest; 0 when every PEP 522 test passed,
    none was skipped and the simulator behaved."""
    text = log.read_text(errors="replace")
    classes = pep522_classes(guest.src)
    counts, details = summarize(parse_results(text), classes)
    run = marks.get("libtest.run", {})
    steps.say(f"Lib/test on {arch.name} ({guest.name}): "
              f"{' '.join(TEST_MODULES)} exited {run.get('rc')} in "
              f"{run.get('end', 0) - run.get('start', 0):.0f}s")
    for line in regrtest_summary(text):
        steps.say(f"  {line}")
    names = ", ".join(sorted(c for cs in classes.values() for c in cs))
    steps.say(f"  PEP 522 classes ({names}): "
              f"{counts['ran']} tests, {counts['ok']} passed, "
              f"{counts['skipped']} skipped, {counts['failed']} failed")
    for line in details:
        steps.say(f"    {line}")
    problems = []
    if run.get("rc") != 0:
        problems.append(f"regrtest exited {run.get('rc')}")
    if counts["ran"] == 0:
        problems.append("no PEP 522 test ran")
    if counts["skipped"] or counts["failed"]:
        problems.append(f"{counts['skipped']} PEP 522 tests skipped, "
                        f"{counts['failed']} failed")
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
