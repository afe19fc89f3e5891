"""Applying a target's own patches and then ours, as its tool does.

Yocto applies a recipe's SRC_URI patches with quilt; Buildroot applies
package/python3/*.patch and then the global patch directory with its
support/scripts/apply-patches.sh (`patch -F0`).  Both refuse fuzz.  We
apply their patches, then ours, read what patch(1) says of every hunk,
and refuse fuzz in any patch; an offset in one of ours is refused too,
unless one of their patches changes that file (then it is theirs that
moved the context, and the offset is reported).
"""

import dataclasses
import re

HUNK = re.compile(r"^Hunk #(\d+) (succeeded|FAILED) at (\d+)"
                  r"(?: \(offset (-?\d+) lines?\))?"
                  r"(?: with fuzz (\d+))?")
FILE = re.compile(r"^(?:patching|checking) file '?(.+?)'?$")
TOUCHED = re.compile(r"^\+\+\+ [^/\s]+/(\S+)")


@dataclasses.dataclass
class Applied:
    """What patch(1) said while one patch was applied."""

    name: str
    ours: bool
    ok: bool = True
    offsets: list = dataclasses.field(default_factory=list)  # [(file, n)]
    fuzz: list = dataclasses.field(default_factory=list)     # [(file, n)]
    failed: list = dataclasses.field(default_factory=list)   # [file]


def touched_files(text):
    """The files a -p1 patch changes."""
    return {m.group(1) for m in map(TOUCHED.match, text.splitlines()) if m}


def applying(line, names):
    """The name of *names* whose application *line* starts, or None."""
    words = line.split()
    if len(words) < 2 or words[0] != "Applying":
        return None
    token = words[2] if words[1] == "patch" and len(words) > 2 else words[1]
    name = token.rsplit("/", 1)[-1]
    return name if name in names else None


def read_output(text, names, ours):
    """[Applied] from the output of applying *names* in order.

    *text* has one "Applying <name>" (quilt: "Applying patch <name>",
    apply-patches.sh: "Applying <name> using ...") line per patch.
    """
    results, current, file = [], None, None
    for line in text.splitlines():
        started = applying(line, names)
        if started:
            current = Applied(started, started in ours)
            results.append(current)
            continue
        if current is None:
            continue
        match = FILE.match(line)
        if match:
            file = match.group(1)
            continue
        match = HUNK.match(line)
        if match:
            if match.group(2) == "FAILED":
                current.ok = False
                current.failed.append(file)
            if match.group(4):
                current.offsets.append((file, int(match.group(4))))
            if match.group(5):
                current.fuzz.append((file, int(match.group(5))))
        elif "FAILED" in line or "can't find file" in line or (
                "Patch failed" in line):
            current.ok = False
    return results


def problems(results, theirs_touch, expected):
    """What is wrong with *results* (a list of strings, empty if
    nothing): a patch of *expected* that did not apply or did not run,
    fuzz, and offsets in ours on files their patches do not touch."""
    found, seen = [], {r.name for r in results}
    for r in results:
        if not r.ok:
            found.append(f"{r.name} does not apply"
                         + (f" ({', '.join(sorted(set(r.failed)))})"
                            if r.failed else ""))
        for file, fuzz in r.fuzz:
            found.append(f"{r.name}: {file} needs fuzz {fuzz}")
        if r.ours:
            for file, offset in r.offsets:
                if file not in theirs_touch:
                    found.append(f"{r.name}: {file} at an offset of "
                                 f"{offset} lines (no patch of theirs "
                                 "changes it)")
    for name in expected:
        if name not in seen:
            found.append(f"{name} was not applied")
    return found


def summary(results):
    """One line: how the patches applied."""
    ours = [r for r in results if r.ours]
    theirs = [r for r in results if not r.ours]
    text = f"their {len(theirs)} + our {len(ours)} patches"
    if all(r.ok and not r.fuzz for r in results):
        text += ", fuzz 0"
    moved = sorted({f for r in ours for f, _ in r.offsets})
    if moved:
        text += (f"; ours at offsets in {', '.join(moved)} (their patches "
                 "change it)")
    elif all(r.ok for r in results):
        text += "; ours without offsets"
    return text
