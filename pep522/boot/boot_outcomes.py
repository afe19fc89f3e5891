"""The early-boot scenarios: which boots run them, their verdicts, the table.

The guest (pep522/boot/boot_scenarios/init and guest.py) reports each scenario
with "@@pep522 KEY ..." lines; this turns them into one Outcome per
scenario and build: the table cell, and for the patched build the
assertions that failed.  The same for every architecture.
"""

import argparse

from pep522.checks import expected

# Scenario numbers and what the table calls them.
SCENARIOS = {
    1: "startup, import random",
    2: "os.urandom(16)",
    3: "secrets.token_bytes(16)",
    4: "wait_for_system_rng() first",
    5: "import multiprocessing",
}
# Scenarios reported on several rows of the table.
ROWS = {1: ["startup: not ready / ready", "import random: not ready / ready"]}
# Scenario 4 must be the first command of its boot: it is never combined.
ALONE = {4}
# The order in which combinable scenarios share a boot: those that leave
# the RNG uninitialised on the patched build first, the one that
# initialises it (3) last.
COMBINED_ORDER = [1, 5, 2, 3]
QUICK = [1, 2, 3]

# PEP 522's exception for os.urandom() while the RNG is not ready.
EAGAIN = expected.EAGAIN
PEP522_MESSAGE = expected.MESSAGE
def boot_plan(scenarios, combine):
    """The boots that run *scenarios*: a list of scenario lists."""
    scenarios = sorted(set(scenarios))
    if not combine:
        return [[s] for s in scenarios]
    shared = [s for s in COMBINED_ORDER if s in scenarios]
    plan = [shared] if shared else []
    return plan + [[s] for s in scenarios if s in ALONE]


def elapsed(mark):
    return mark["end"] - mark["start"]


def ready(marks, key):
    """The RNG state a probe reported: True, False or None (no probe)."""
    value = marks.get(key)
    return value.get("ready") if isinstance(value, dict) else None


class Outcome:
    """One scenario on one build: its table cells and failed assertions.

    *cell* is one string, or a list of them for a scenario with several
    rows (ROWS).
    """

    def __init__(self, cell, problems=()):
        self.cells = [cell] if isinstance(cell, str) else list(cell)
        self.problems = list(problems)

    @property
    def cell(self):
        return "; ".join(self.cells)

    @property
    def ok(self):
        return not self.problems


def check(problems, condition, what):
    if not condition:
        problems.append(what)


def rng_word(is_ready):
    """The RNG state after a step, as the table says it."""
    return {True: "RNG ready after", False: "RNG not ready after"}.get(
        is_ready, "RNG state unknown")


def runs(marks, key):
    """The times of KEY.1, KEY.2, ... (a repeated start), in order."""
    found = []
    while f"{key}.{len(found) + 1}" in marks:
        found.append(marks[f"{key}.{len(found) + 1}"])
    if not found:
        raise KeyError(key)
    return found


def startup_times(marks, name, problems):
    """(first, best) while not ready and best once ready, for *name*."""
    cold = runs(marks, f"s1.{name}_cold")
    warm = runs(marks, f"s1.{name}_ready")
    for run_ in cold + warm:
        check(problems, run_["rc"] == 0, f"python3 ({name}) exited with "
              f"status {run_['rc']}")
    return (elapsed(cold[0]), min(map(elapsed, cold)),
            min(map(elapsed, warm)))


def outcome_1(marks):
    problems = []
    check(problems, ready(marks, "s1.before") is False,
          "RNG was already ready before startup")
    start = startup_times(marks, "start", problems)
    imp = startup_times(marks, "random", problems)
    check(problems, ready(marks, "s1.after_start") is False,
          "startup initialised the RNG")
    check(problems, ready(marks, "s1.after_random") is False,
          "import random initialised the RNG")
    check(problems, ready(marks, "s1.after_seed") is True,
          "a blocking read did not initialise the RNG")
    # The times are shown, not asserted: the stall to catch (waiting for
    # the kernel's entropy, about a second) initialises the RNG, which the
    # probes above see, while software emulation on a loaded host makes
    # a start take 0.7-1.6 s either way.
    return Outcome([startup_cell(start, ready(marks, "s1.after_start")),
                    startup_cell(imp, ready(marks, "s1.after_random"))],
                   problems)


def startup_cell(times, is_ready):
    """"first (best) / ready" seconds and the RNG state afterwards."""
    first, best, warm = times
    best_text = f" (best {best:.2f}s)" if f"{best:.2f}" != f"{first:.2f}" \
        else ""
    return f"{first:.2f}s{best_text} / {warm:.2f}s; {rng_word(is_ready)}"


def call_cell(call):
    """"raised X" or "returned" with the time and RNG state after."""
    if call.get("outcome") == "raised":
        what = f"{call['type']}"
        if call.get("errno") is not None:
            what += f" [Errno {call['errno']}]"
    else:
        what = "returned"
    blocked = (call.get("ready_before") is False
               and call.get("ready_after") is True)
    return (f"{what} in {call.get('seconds', 0):.2f}s"
            f"{' (blocked)' if blocked else ''}; "
            f"{rng_word(call.get('ready_after'))}")


def call_of(marks, n):
    """The guest's report of scenario *n*'s call, or an Error."""
    call = marks.get(f"s{n}.call")
    if not isinstance(call, dict) or "outcome" not in call:
        run = marks.get(f"s{n}.run", {})
        text = marks.get(f"s{n}.run.text", "no report")
        return None, Outcome(f"no result (exit {run.get('rc')}: {text})",
                             ["the scenario did not report"])
    return call, None


def outcome_2(marks):
    call, failed = call_of(marks, 2)
    if failed:
        return failed
    problems = []
    check(problems, call["ready_before"] is False,
          "RNG was already ready before the call")
    check(problems, call["outcome"] == "raised"
          and call["type"] == "BlockingIOError",
          "os.urandom() did not raise BlockingIOError")
    if call["outcome"] == "raised":
        check(problems, call["errno"] == EAGAIN,
              f"errno {call['errno']}, not EAGAIN")
        check(problems, call["message"] == PEP522_MESSAGE,
              f"message {call['message']!r}")
    check(problems, call["ready_after"] is False,
          "the call initialised the RNG")
    return Outcome(call_cell(call), problems)


def outcome_3(marks):
    call, failed = call_of(marks, 3)
    if failed:
        return failed
    problems = []
    check(problems, call["ready_before"] is False,
          "RNG was already ready before the call")
    check(problems, call["outcome"] == "returned" and call["result"] == 16,
          "secrets.token_bytes(16) did not return 16 bytes")
    check(problems, call["ready_after"] is True
          and ready(marks, "s3.after") is True,
          "RNG not ready after the call")
    return Outcome(call_cell(call), problems)


def outcome_4(marks):
    problems = []
    run = marks.get("s4.run", {})
    check(problems, marks.get("s4.before.kernel", {}).get("ready") == 0,
          "RNG was already ready at the first command")
    check(problems, run.get("rc") == 0,
          f"exit status {run.get('rc')}: {marks.get('s4.run.text', '')}")
    check(problems, ready(marks, "s4.after") is True,
          "RNG not ready after wait_for_system_rng()")
    if not run:
        return Outcome("did not run", problems)
    if run["rc"] == 0:
        cell = f"returned in {elapsed(run):.2f}s"
    else:
        error = marks.get("s4.run.text", "").split(":")[0] or "failed"
        cell = f"{error} (exit {run['rc']}) in {elapsed(run):.2f}s"
    return Outcome(f"{cell}; {rng_word(ready(marks, 's4.after'))}",
                   problems)


def outcome_5(marks):
    call, failed = call_of(marks, 5)
    if failed:
        return failed
    problems = []
    check(problems, call["ready_before"] is False,
          "RNG was already ready before the import")
    check(problems, call["outcome"] == "returned",
          f"import raised {call.get('type')}: {call.get('message')}")
    check(problems, call["ready_after"] is False,
          "the import waited for the RNG (it is ready afterwards)")
    return Outcome(call_cell(call), problems)


OUTCOMES = {1: outcome_1, 2: outcome_2, 3: outcome_3, 4: outcome_4,
            5: outcome_5}


def outcome(n, marks):
    try:
        return OUTCOMES[n](marks)
    except (KeyError, TypeError) as e:
        return Outcome(f"incomplete report (missing {e})",
                       [f"incomplete report (missing {e})"])


def format_table(header, rows):
    """A plain-text table: *header* and *rows* are lists of strings."""
    widths = [max(len(row[i]) for row in [header, *rows])
              for i in range(len(header))]

    def line(row):
        return "  ".join(cell.ljust(w) for cell, w in
                         zip(row, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, rows)])


def table(columns, scenarios):
    """*columns*: [(title, {scenario: Outcome}, asserted)]."""
    header = ["scenario", *[title for title, _, _ in columns]]
    rows = []
    for n in scenarios:
        labels = ROWS.get(n, [SCENARIOS[n]])
        for i, label in enumerate(labels):
            row = [f"{n} {label}" if i == 0 else f"  {label}"]
            for _, outcomes, asserted in columns:
                result = outcomes[n]
                cells = result.cells + [""] * len(labels)
                mark = ("PASS " if result.ok else "FAIL ") if asserted \
                    else ""
                row.append((mark if i == 0 else " " * len(mark)) + (
                    cells[i] if len(result.cells) == len(labels)
                    else result.cell if i == 0 else ""))
            rows.append(row)
    return format_table(header, rows)


def parse_scenarios(text):
    try:
        chosen = sorted({int(n) for n in text.split(",") if n.strip()})
    except ValueError:
        chosen = []
    if not chosen or not set(chosen) <= set(SCENARIOS):
        raise argparse.ArgumentTypeError(
            f"a comma-separated list of {', '.join(map(str, SCENARIOS))}")
    return chosen
