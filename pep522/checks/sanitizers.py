"""Sanitizer reports: read them from the logs and sort them.

The variant checks run ASan/UBSan and TSan builds with log_path set, so
each process writes its reports to its own file.  This module splits those
files into reports, says which are in the code the series changes (the
innermost frame of one of its stacks, the sanitizer's own frames left out,
is a function the series' C hunks change) and which are in untouched
upstream code, and gives each a signature (the kind and the innermost
frames of the first two stacks: the two accesses of a race, or the access
and the free of a use-after-free) to compare with stock's reports.
"""

import dataclasses
import re
import subprocess

# The first line of a report, per sanitizer; the kind follows it.
STARTS = [
    ("TSan", re.compile(r"WARNING: ThreadSanitizer: (.+?)(?: \(pid=\d+\))?$")),
    ("ASan", re.compile(r"ERROR: AddressSanitizer: (\S+)")),
    ("UBSan", re.compile(r"(\S+:\d+):\d+: runtime error: (.+)$")),
]
# The values in a UBSan message ("2147483647 + 1") vary from run to run.
VALUE = re.compile(r"-?\b(?:0x[0-9a-f]+|\d+)\b")
# TSan names the global a race is on: "Location is global 'flag.1' of ...".
LOCATION = re.compile(r"^\s+Location is global '([^'.]+)")
# "SUMMARY: ThreadSanitizer: ..." ends a report.
END = re.compile(r"^SUMMARY: \w+Sanitizer")
# "    #0 0x4a2b3c in func file.c:12:3" (ASan/UBSan) or
# "    #0 func file.c:12 (python+0x1234)" (TSan).
FRAME = re.compile(r"^\s+#(\d+)\s+(?:0x[0-9a-f]+\s+in\s+)?(\S+)\s+(\S*)")
# Frames of the sanitizer's runtime (its interceptors of libc functions).
RUNTIME = "/libsanitizer/"
# How many innermost frames of how many stacks make a report's signature.
SIGNATURE_FRAMES = 2
SIGNATURE_STACKS = 2
# C files whose changed functions count as the series' code.
C_FILES = ("*.c", "*.h")


@dataclasses.dataclass
class Report:
    sanitizer: str
    kind: str
    stacks: list            # [[(function, location), ...], ...]
    text: str
    variable: str = ""      # the global a race is on

    @property
    def innermost(self):
        """The function each stack is in."""
        return {stack[0][0] for stack in self.stacks if stack}

    @property
    def signature(self):
        """The kind and the innermost frames of the first stacks."""
        tops = tuple(function for stack in self.stacks[:SIGNATURE_STACKS]
                     for function, _ in stack[:SIGNATURE_FRAMES])
        return (self.sanitizer, self.kind, tops, self.variable)

    def title(self):
        sanitizer, kind, tops, variable = self.signature
        on = f" on {variable}" if variable else ""
        return f"{sanitizer} {kind}{on} in {' / '.join(tops) or '?'}"


def parse(text):
    """The reports in one log's *text*, in order."""
    reports = []
    current = None
    for line in text.splitlines():
        for sanitizer, start in STARTS:
            match = start.search(line)
            if match:
                kind = match.group(1).strip()
                if match.lastindex == 2:  # UBSan: where, then what
                    kind += ": " + VALUE.sub("N", match.group(2).strip())
                current = Report(sanitizer, kind, [], "")
                reports.append(current)
                break
        if current is None:
            continue
        current.text += line + "\n"
        location = LOCATION.match(line)
        if location:
            current.variable = location.group(1)
        frame = FRAME.match(line)
        if frame:
            if frame.group(1) == "0" or not current.stacks:
                current.stacks.append([])
            if RUNTIME not in frame.group(3):
                current.stacks[-1].append((frame.group(2), frame.group(3)))
        if END.match(line):
            current = None
    return reports


def read_logs(directory):
    """Every report in the sanitizer logs under *directory*."""
    reports = []
    for path in sorted(directory.glob("*")):
        if path.is_file():
            reports += parse(path.read_text(errors="replace"))
    return reports


# "@@ -141,6 +141,9 @@ py_getrandom(void *buffer, ...)": with -U0 the
# context after the second @@ is the function the changed lines are in.
HUNK = re.compile(r"^@@ [^@]* @@ .*?([A-Za-z_]\w*)\s*\(")


def changed_functions(src, base="upstream"):
    """The C functions the series changes in the tree *src*."""
    diff = subprocess.run(
        ["git", "-C", str(src), "diff", "-U0", base, "HEAD", "--",
         *C_FILES], capture_output=True, text=True, check=True).stdout
    return {match.group(1) for match in map(HUNK.match, diff.splitlines())
            if match}


def classify(reports, ours):
    """(reports in the functions *ours*, the others)."""
    touching = [r for r in reports if r.innermost & ours]
    return touching, [r for r in reports if not r.innermost & ours]


def unique(reports):
    """One report per signature, with how many times it was seen."""
    seen = {}
    for report in reports:
        seen.setdefault(report.signature, [report, 0])[1] += 1
    return list(seen.values())
