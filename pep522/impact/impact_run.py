"""Import one module under the simulator, classify what happened, name why.

Each import runs in a fresh interpreter (``-I``: no user site, no current
directory, no PYTHON* variables) that adds the target directory as a site
directory, arms faulthandler to dump every thread's stack at the time
limit, and imports the module, under ``rngsim --never-ready``.  The result
is one of:

* ``ok``: the import finished;
* ``raises``: it failed with BlockingIOError, or with an exception whose
  chain holds one;
* ``waits``: it was still running at the limit with a call held by the
  simulator: a blocking getrandom(), or an open of /dev/random (both
  never return on a kernel whose RNG is not ready);
* ``other``: any other failure, or a time-out without a held call;
* ``not importable``: it fails without the simulator too (the baseline,
  with a longer limit), so it says nothing about PEP 522.  As in the
  stdlib sweep, the baseline runs only when the simulated import is not
  ``ok``.

The culprit of a ``raises`` or ``waits`` is read from the traceback or the
faulthandler dump: the innermost frame in the installed packages (the
caller) and the stdlib call it made (the API), e.g. ``ssl.create_default_
context`` from ``aiohttp/connector.py:911``.  When the caller asked the
kernel directly, the API is read from its source line (``os.urandom``), or
it is a C extension calling getrandom() itself.
"""

import dataclasses
import json
import linecache
import os
import re

from pep522.sim import simrun

# Seconds between the faulthandler dump and killing the process group.
GRACE = 5
# The baseline is only a check that the module imports at all: it gets
# this many times the limit, so that a slow import (litellm retries a
# download for 6 s when there is no network) is not taken for a broken one.
BASELINE_FACTOR = 3

# Arms faulthandler before anything else runs, so even a .pth file that
# blocks is dumped at the limit.
BOOTSTRAP = """if True:
    import faulthandler, site, sys
    target, limit, code = sys.argv[1:]
    faulthandler.dump_traceback_later(float(limit), exit=True)
    site.addsitedir(target)
    exec(compile(code, "<code>", "exec"), {"__name__": "__main__"})
"""
# The frames of that code: the caller when it calls into C itself.
CODE = "<code>"

OK, RAISES, WAITS, OTHER, NOT_IMPORTABLE = (
    "ok", "raises", "waits", "other", "not importable")

# Stdlib functions whose frame does not say what they are.
API_NAMES = {
    ("ssl", "__new__"): "ssl.SSLContext",
    ("random", "random"): "random.SystemRandom.random",
    ("random", "getrandbits"): "random.SystemRandom.getrandbits",
    ("random", "randbytes"): "random.SystemRandom.randbytes",
}
# Calls a caller's source line can make straight into the kernel.
DIRECT_CALLS = [("urandom", "os.urandom"), ("getrandom", "os.getrandom"),
                ("/dev/random", "open /dev/random")]
# The culprit category of a stack: the first of these stdlib packages the
# third-party code called into (secrets, not the random it uses).
CATEGORIES = {
    "ssl": "ssl (OpenSSL seeding)",
    "uuid": "uuid.uuid4",
    "secrets": "secrets",
    "random": "random.SystemRandom",
    "multiprocessing": "multiprocessing authkey",
}

FRAME = re.compile(r'^\s+File "(.*)", line (\d+),? in (.*)$')
THREAD = re.compile(r"^(Current thread|Thread) 0x[0-9a-f]+ ")
IMPORT = re.compile(r"^\s*(?:from\s+(\.*)([\w.]*)\s+import\s+\(?\s*(\w*)"
                    r"|import\s+([\w.]+))")
CALL = re.compile(r"([A-Za-z_][\w.]*)\s*\(")


@dataclasses.dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str


def parse_traceback(text):
    """[(exception line, [Frame, outermost first])] of a printed traceback.

    Chained exceptions come out in the order Python prints them: causes
    first.
    """
    blocks = []
    frames = None
    for line in text.splitlines():
        if line.startswith("Traceback (most recent call last):"):
            frames = []
        elif frames is not None and (match := FRAME.match(line)):
            frames.append(Frame(match[1], int(match[2]), match[3]))
        elif frames is not None and line and not line[0].isspace():
            blocks.append((line, frames))
            frames = None
    return blocks


def parse_dump(text):
    """[[Frame, outermost first] per thread] of a faulthandler dump.

    faulthandler lists the newest thread first, so the main thread is
    the last one.
    """
    threads = []
    for line in text.splitlines():
        if THREAD.match(line):
            threads.append([])
        elif threads and (match := FRAME.match(line)):
            threads[-1].insert(0, Frame(match[1], int(match[2]), match[3]))
    return threads


def exception_type(line):
    return line.split(":", 1)[0].rsplit(".", 1)[-1]


def stdlib_module(file):
    """The dotted name of a stdlib file, or None for the bootstrap."""
    if file.startswith("<frozen "):
        return file[len("<frozen "):-1]
    if file.startswith("<"):
        return None
    match = re.search(r"/(?:Lib|lib/python3\.\d+t?)/(.*)\.py$", file)
    path = match[1] if match else os.path.basename(file)[:-3]
    return path.removesuffix("/__init__").replace("/", ".")


def api_name(frame):
    module = stdlib_module(frame.file)
    top = module.split(".")[0]
    if frame.function == "<module>":
        return f"import {module}"
    return API_NAMES.get((top, frame.function), f"{module}.{frame.function}")


def imported_module(text, file, target):
    """The module an import statement on a source line imports, or None."""
    match = IMPORT.match(text)
    if not match:
        return None
    if match[4]:
        return match[4]
    dots, name, imported = match[1], match[2], match[3]
    if not dots:
        return name
    package = os.path.relpath(os.path.dirname(file), target).split(os.sep)
    package = package[:len(package) - len(dots) + 1]
    return ".".join(package + ([name] if name else [imported]))


def called_module(text, lines, file, target):
    """The module a call on a source line comes from, as the file imports
    it (``SchemaSerializer(`` after ``from pydantic_core import ...``)."""
    source = "".join(lines)
    for name in CALL.findall(text):
        head = re.escape(name.split(".")[0])
        match = re.search(
            rf"^\s*from\s+(\.*[\w.]*)\s+import\s+(?:\([^)]*|[^\n(]*)"
            rf"\b{head}\b|^\s*import\s+([\w.]+)\s+as\s+{head}\b"
            rf"|^\s*import\s+({head})\b", source, re.M)
        if match and match[1]:
            return imported_module(f"from {match[1]} import {name}", file,
                                   target)
        if match:
            return match[2] or match[3]
    return None


def culprit(frames, target, read=linecache.getlines, code=""):
    """{"caller", "api", "category"} of a stack, outermost frame first.

    *target* is the directory the packages are installed in: a frame
    there is third-party, as is one of the *code* the child ran; any
    other frame but the bootstrap's is stdlib.  *read* returns the lines
    of a source file.
    """
    target = str(target).rstrip("/") + "/"
    inside = [i for i, f in enumerate(frames)
              if f.file.startswith(target) or f.file == CODE]
    stdlib = [f for f in frames[inside[-1] + 1 if inside else 0:]
              if stdlib_module(f.file)
              and not f.file.startswith("<frozen importlib")]
    caller = None
    if inside:
        frame = frames[inside[-1]]
        caller = f"{frame.file.removeprefix(target)}:{frame.line}"
    if stdlib:
        modules = [stdlib_module(f.file).split(".")[0] for f in stdlib]
        known = [m for m in modules if m in CATEGORIES]
        category = CATEGORIES[known[0]] if known else modules[0]
        return {"caller": caller, "api": api_name(stdlib[0]),
                "category": category}
    if not inside:
        return {"caller": None, "api": None, "category": "unknown"}
    lines = code.splitlines(True) if frame.file == CODE else read(frame.file)
    text = lines[frame.line - 1] if frame.line <= len(lines) else ""
    for word, api in DIRECT_CALLS:
        if word in text:
            return {"caller": caller, "api": api, "category": api}
    module = (imported_module(text, frame.file, target)
              or called_module(text, lines, frame.file, target))
    return {"caller": caller, "api": f"C extension {module or ''}".strip(),
            "category": "C extension"}


def classify(returncode, stderr, stats, target, code=""):
    """The result of one simulated run: {"class", "detail", culprit}.

    *returncode* is None if the run was killed at the outer limit, *stats*
    the simulator's counts (None if it wrote none), *code* what it ran.
    """
    held = (stats or {}).get("answers", {}).get("held", 0)
    opens = (stats or {}).get("calls", {}).get("dev_random", 0)
    lines = stderr.strip().splitlines()
    if returncode == 0:
        return {"class": OK}
    if returncode is None or any(line.startswith("Timeout (")
                                 for line in lines):
        # The main thread comes last in the dump: blame it first.
        blamed = [culprit(t, target, code=code)
                  for t in reversed(parse_dump(stderr))]
        known = [c for c in blamed if c["api"]]
        found = (known or blamed or [culprit([], target)])[0]
        stack = "" if blamed else "; no stack (killed)"
        if not held:
            return {"class": OTHER, **found,
                    "detail": "timeout, no call held" + stack}
        where = "an open of /dev/random" if opens else "getrandom()"
        return {"class": WAITS, **found,
                "detail": f"blocked in {where}, {held} held" + stack}
    blocks = parse_traceback(stderr)
    raised = [b for b in blocks if exception_type(b[0]) == "BlockingIOError"]
    last = lines[-1] if lines else f"exit status {returncode}"
    if raised:
        return {"class": RAISES, "detail": last,
                **culprit(raised[0][1], target, code=code)}
    return {"class": OTHER, "detail": last}


def command(python, target, code, limit):
    return [str(python), "-I", "-c", BOOTSTRAP, str(target), str(limit),
            code]


def assess(python, target, code, limit, workdir, wrapper=(), tag=""):
    """Run *code* (``import NAME``, or a probe's first use of a package)
    with *python* under the simulator and classify what happened.

    *workdir* is the child's current and home directory (what packages
    write at import lands there) and holds the simulator's stats;
    *wrapper* comes before everything (e.g. unshare --net); *tag* names
    the run, keeping the stats files of concurrent runs apart.
    """
    stats_file = workdir / f"stats-{tag}.json"
    argv = [*wrapper, *simrun.SIM, "--never-ready", "--block-dev-random",
            "--stats", str(stats_file), "--",
            *command(python, target, code, limit)]
    env = {**os.environ, "HOME": str(workdir)}
    ended = simrun.run_limited(argv, limit + GRACE, cwd=workdir, env=env)
    try:
        stats = json.loads(stats_file.read_text())
        stats_file.unlink()
    except (OSError, ValueError):
        stats = None
    result = classify(ended.returncode, ended.stderr, stats, target, code)
    if result["class"] != OK:
        longer = limit * BASELINE_FACTOR
        plain = simrun.run_limited(
            [*wrapper, *command(python, target, code, longer)],
            longer + GRACE, cwd=workdir, env=env)
        if plain.returncode != 0:
            lines = plain.stderr.strip().splitlines()
            slow = plain.timed_out or any(line.startswith("Timeout (")
                                          for line in lines)
            result = {"class": NOT_IMPORTABLE, "detail": (
                f"over {longer:g} s without the simulator" if slow
                else lines[-1] if lines
                else f"exit status {plain.returncode}")}
    return result
