"""`make debian`: our series inside Debian's own python3.13 source package.

Distributions are the main consumers of the series, and Debian's package
already carries some sixty patches of its own.  Saying "it should apply"
is not enough, so this command does what a Debian packager would do:

1. export the series as a quilt series with DEP-3 headers
   (build/debian/<version>/patches/: pep522/*.patch and a `series`
   fragment to append to debian/patches/series);
2. fetch Debian's source package through the private apt configuration
   of pep522.release.source (nothing on the system changes), unpack it with
   `dpkg-source -x` (which applies Debian's patches);
3. append our patches and `quilt push -a --fuzz=0`, reporting any hunk
   that applied at an offset, and the Debian patches touching our files;
4. build the combined tree out of tree with our normal configure
   defaults (pep522.builds.build) and run the regrtest of the modules we touch
   plus a few smoke checks of the patched behaviour under the RNG
   simulator.
"""

import email.parser
import email.policy
import email.utils
import functools
import hashlib
import json
import platform
import re
import shlex
import shutil
import subprocess
import sys

from pep522 import config, options, steps
from pep522.builds import build
from pep522.checks import expected, testing
from pep522.errors import Error
from pep522.release import series, source
from pep522.sim import rngsim

PATCH_SUBDIR = "pep522"   # our patches live in debian/patches/pep522/
QUILT_ENV = {"QUILT_PATCHES": "debian/patches", "QUILT_PC": ".pc",
             "LC_ALL": "C"}
SMOKE_TIMEOUT = 60


# --- Paths ------------------------------------------------------------------

class DebianTarget(config.BuildDirs):
    """The combined Debian + PEP 522 tree of a release, and its build.

    It quacks like config.Target where pep522.builds.build and
    pep522.checks.testing need it (name, src, obj, logs, python), so the normal build is reused.
    """

    variant = ""   # built as the default build, not a variants.toml one

    def __init__(self, release):
        self.release = release
        self.name = f"debian-{release.version}"
        self.dir = config.BUILD / "debian" / release.version
        self.src = self.dir / "src"
        self.quilt = self.dir / "patches"
        self.state = self.dir / "state.json"


# --- DEP-3 export ------------------------------------------------------------

def split_mail(text):
    """A format-patch file as (headers, description, rest).

    *description* is the commit message body; *rest* starts at the `---`
    line that opens the diffstat, and is kept byte for byte.
    """
    head, sep, body = text.partition("\n\n")
    if not sep:
        raise Error("not a git format-patch file (no blank line after the "
                    "mail headers)")
    match = re.search(r"^---$", body, re.M)
    if not match:
        raise Error("not a git format-patch file (no `---` line before the "
                    "diff)")
    headers = email.parser.HeaderParser(policy=email.policy.default).parsestr(
        head.split("\n", 1)[1] if head.startswith("From ") else head)
    return headers, body[:match.start()], body[match.start():]


TRAILER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): (.*)$")
DEP3_TRAILERS = ("Forwarded", "Last-Update", "Bug", "Bug-Debian", "Origin",
                 "Applied-Upstream", "Reviewed-by")


def split_trailers(message):
    """The commit message without its DEP-3 trailers, and the trailers."""
    lines = message.rstrip("\n").split("\n")
    trailers = {}
    while lines and TRAILER.match(lines[-1]):
        key, value = TRAILER.match(lines[-1]).groups()
        if key not in DEP3_TRAILERS:
            break
        trailers[key] = value
        lines.pop()
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines), trailers


def dep3(text, name="patch"):
    """Turn one format-patch file into a quilt patch with DEP-3 headers.

    DEP-3 accepts From/Subject, but packagers' tools (and reviewers)
    expect the explicit fields, so we write Description (the subject,
    then the commit message as the long description), Author, Forwarded
    and Last-Update.  The diff is kept unchanged.
    """
    headers, message, rest = split_mail(text)
    subject = re.sub(r"^\[PATCH[^]]*\]\s*", "", " ".join(
        str(headers["Subject"] or "").split()))
    if not subject or not headers["From"]:
        raise Error(f"{name}: no Subject or From header")
    body, trailers = split_trailers(message)
    if "Forwarded" not in trailers:
        raise Error(f"{name}: no `Forwarded:` trailer in the commit message",
                    hint="end the commit message with `Forwarded: not-needed`"
                         " (or a link), then `make export`")
    if "Last-Update" not in trailers:
        date = email.utils.parsedate_to_datetime(str(headers["Date"]))
        trailers["Last-Update"] = date.strftime("%Y-%m-%d")
    lines = [f"Description: {subject}"]
    for line in body.split("\n"):
        lines.append(f" {line}" if line.strip() else " .")
    lines.append(f"Author: {headers['From']}")
    for key in DEP3_TRAILERS:
        if key in trailers:
            lines.append(f"{key}: {trailers[key]}")
    return "\n".join(lines) + "\n" + rest


def export_quilt(release, dest):
    """Write our series as DEP-3 quilt patches under *dest*; return names.

    Layout: dest/pep522/<name> and dest/series listing `pep522/<name>`,
    ready to copy into debian/patches/ and append to its series.
    """
    names = series.read(release.series_dir)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / PATCH_SUBDIR).mkdir(parents=True)
    for name in names:
        text = (release.series_dir / name).read_text(encoding="utf-8")
        (dest / PATCH_SUBDIR / name).write_text(dep3(text, name),
                                                encoding="utf-8")
    lines = [f"# PEP 522 (cpython-pep522), series {release.series}"]
    lines += [f"{PATCH_SUBDIR}/{name}" for name in names]
    (dest / "series").write_text("\n".join(lines) + "\n")
    return names


# --- Debian's source package -------------------------------------------------

def newest(versions):
    return max(versions, key=functools.cmp_to_key(source.dpkg_compare))


def dsc_name(package, version):
    return f"{package}_{version.split(':', 1)[-1]}.dsc"


def fetch(release, step):
    """The .dsc of Debian's newest source package of *release*.

    Asks the release's suites through the private apt configuration;
    downloads only when the files are not in the cache yet.  Offline,
    the newest cached .dsc of that upstream version is used, with a note.
    """
    for tool in ("apt-get", "dpkg-source"):
        if not shutil.which(tool):
            raise Error(f"{tool} is not available: `make debian` needs a "
                        "Debian (or derived) machine")
    package, dest = release.debian_source, source.debian_dir(release)
    apt = source.Apt(release.debian_suites)
    updated = step.run(["apt-get", *apt.options, "-q", "update"],
                       check=False) == 0
    versions = [v for v in apt.source_versions(package)
                if source.upstream_part(v) == release.version]
    if versions:
        version = newest(versions)
        dsc = dest / dsc_name(package, version)
        if not dsc.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            step.run(["apt-get", *apt.options, "-q", "source",
                      "--download-only", f"{package}={version}"], cwd=dest)
        return dsc
    cached = sorted(dest.glob(f"{package}_{release.version}-*.dsc"))
    if cached and not updated:
        steps.say("  note: apt-get update failed; using the cached "
                  f"{cached[-1].name}")
        return cached[-1]
    raise Error(f"Debian {'/'.join(release.debian_suites)} has no {package} "
                f"source package of upstream version {release.version}",
                hint="check the suites in upstream.toml, or the network "
                     f"(log: {steps.display(step.log)})")


def check_orig(dsc, release):
    """The package's orig tarball must be the very release we patch."""
    orig = dsc.with_name(f"{release.debian_source}_{release.version}"
                         ".orig.tar.xz")
    source.verify(orig, release)


def debian_series(src):
    """The patch names of debian/patches/series (options dropped)."""
    path = src / "debian" / "patches" / "series"
    if not path.is_file():
        return []
    return [line.split("#", 1)[0].split()[0]
            for line in path.read_text().splitlines()
            if line.split("#", 1)[0].strip()]


def unpack(dsc, target, step):
    """`dpkg-source -x` into target.src; return Debian's applied patches."""
    if target.src.exists():
        shutil.rmtree(target.src)
    target.src.parent.mkdir(parents=True, exist_ok=True)
    step.run(["dpkg-source", "-x", dsc, target.src])
    applied = target.src / ".pc" / "applied-patches"
    names = applied.read_text().split() if applied.is_file() else []
    if names != debian_series(target.src):
        step.fail("dpkg-source did not apply every patch of "
                  "debian/patches/series")
    return names


# --- Our patches on top, with quilt ------------------------------------------

def parse_quilt(output):
    """Hunks quilt applied other than exactly: [(patch, file, line)].

    quilt prints `Applying patch X`, `patching file F`, then patch's
    `Hunk #N succeeded at L (offset K lines).` or `... with fuzz K`.
    """
    notes, patch, path = [], None, None
    for line in output.splitlines():
        if line.startswith("Applying patch "):
            patch = line[len("Applying patch "):].strip()
        elif line.startswith("patching file "):
            path = line[len("patching file "):].strip().strip("'")
        elif line.startswith("Hunk #") and ("offset" in line
                                            or "fuzz" in line):
            notes.append((patch, path, line.strip()))
    return notes


def push(target, names, step):
    """Append our quilt export to the tree's series; `quilt push -a`.

    --fuzz=0 makes a hunk that needs fuzz fail instead of applying
    somewhere approximately; offsets are allowed but reported.
    """
    patches = target.src / "debian" / "patches"
    shutil.copytree(target.quilt / PATCH_SUBDIR, patches / PATCH_SUBDIR)
    with open(patches / "series", "a") as f:
        f.write((target.quilt / "series").read_text())
    log_start = step.log.stat().st_size
    status = step.run(["quilt", "--quiltrc=-", "push", "-a", "--fuzz=0"],
                      cwd=target.src, env=QUILT_ENV, check=False)
    with open(step.log, encoding="utf-8", errors="replace") as f:
        f.seek(log_start)
        output = f.read()
    if status != 0 or "FAILED" in output:
        step.fail("our patches do not apply on top of Debian's without "
                  "fuzz (quilt's output below)",
                  hint="rebase the failing patch onto this release "
                       "(`make checkout`, then `make export`); if a Debian "
                       "patch changes the same lines, rebase onto Debian's "
                       "tree and say so in the patch description")
    applied = (target.src / ".pc" / "applied-patches").read_text().split()
    ours = [f"{PATCH_SUBDIR}/{name}" for name in names]
    if ours and applied[-len(ours):] != ours:
        step.fail("quilt did not apply all of our patches")
    return parse_quilt(output)


DIFF_FILE = re.compile(r"^\+\+\+ (\S+)", re.M)


def patched_files(text, strip=1):
    """The files a -p1 diff changes (new and modified ones)."""
    files = set()
    for name in DIFF_FILE.findall(text):
        if name != "/dev/null":
            files.add(name.split("/", strip)[-1])
    return files


def overlaps(target, names, debian_names):
    """{Debian patch: [files it shares with our series]}."""
    ours = set()
    for name in names:
        ours |= patched_files((target.quilt / PATCH_SUBDIR / name).read_text())
    shared = {}
    for name in debian_names:
        text = (target.src / "debian" / "patches" / name).read_text(
            errors="replace")
        common = sorted(patched_files(text) & ours)
        if common:
            shared[name] = common
    return shared


def news_entries(src):
    """The Misc/NEWS.d/next entries of the combined tree, by origin.

    Our series feeds Misc/NEWS.d/next into the documentation changelog;
    Debian's own patches add entries there too, which the combined docs
    then show (and whose doc build then needs blurb).
    """
    return sorted(str(p.relative_to(src))
                  for p in src.glob("Misc/NEWS.d/next/*/*.rst"))


# --- Build and checks --------------------------------------------------------

# (what is checked, rngsim's options, the code, what it must print).
SMOKE = [
    ("os.urandom() raises the PEP 522 BlockingIOError before the RNG is "
     "ready",
     ["--never-ready"],
     "import os\ntry:\n    os.urandom(16)\nexcept BlockingIOError as e:\n"
     "    print(e.errno, e.strerror)\n",
     f"{expected.EAGAIN} {expected.STRERROR}"),
    ("startup and `import random` do not block before the RNG is ready",
     ["--never-ready"], "import random; print(type(random.random()).__name__)",
     "float"),
    ("`import multiprocessing` neither raises nor blocks before the RNG is "
     "ready",
     ["--never-ready"], "import multiprocessing; print('imported')",
     "imported"),
    ("secrets.wait_for_system_rng() then token_bytes() once it is ready",
     ["--ready-after", "1"],
     "import secrets; secrets.wait_for_system_rng(); "
     "print(len(secrets.token_bytes(16)))", "16"),
    ("secrets.token_bytes() waits for the RNG instead of raising",
     ["--ready-after", "1"],
     "import secrets; print(len(secrets.token_bytes(16)))", "16"),
]


def smoke(python, step, runner=sys.executable, wrap=None,
          timeout=SMOKE_TIMEOUT):
    """Run the patched-behaviour checks of SMOKE under rngsim.

    *python* is the interpreter checked, *runner* the one that runs
    rngsim; *wrap* turns the command into the one to run (e.g. in a
    chroot, from the project's directory).  Returns [(title, ok)].
    """
    results = []
    for title, sim_options, code, expected in SMOKE:
        command = [str(c) for c in [runner, "-m", "pep522", "rngsim",
                                    *sim_options, "--", python, "-I", "-c",
                                    code]]
        if wrap:
            command = wrap(command)
        step.note(f"# smoke: {title}\n$ {shlex.join(command)}")
        try:
            proc = subprocess.run(command, cwd=config.ROOT,
                                  capture_output=True, text=True,
                                  timeout=timeout)
            got = proc.stdout.strip()
            step.note(f"exit {proc.returncode}, stdout {got!r}\n"
                      f"{proc.stderr}")
            ok = proc.returncode == 0 and got == expected
        except subprocess.TimeoutExpired:
            step.note(f"timed out after {timeout} s")
            ok = False
        steps.say(f"  {'ok  ' if ok else 'FAIL'} {title}")
        results.append((title, ok))
    return results


def stamp_of(dsc, target):
    """What the combined tree is made of: Debian's files and our export."""
    digest = hashlib.sha256()
    for path in [dsc, *sorted((target.quilt / PATCH_SUBDIR).iterdir())]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def load_state(target):
    try:
        return json.loads(target.state.read_text())
    except (OSError, ValueError):
        return {}


def prepare(target, names, log):
    """Fetch, unpack and patch the combined tree unless it is up to date."""
    with steps.Step(f"debian: fetching {target.release.debian_source} "
                    f"({'/'.join(target.release.debian_suites)}) through "
                    "the private apt configuration", log("fetch")) as step:
        dsc = fetch(target.release, step)
        check_orig(dsc, target.release)
        steps.say(f"  {dsc.name}")
    stamp = stamp_of(dsc, target)
    state = load_state(target)
    if state.get("stamp") == stamp and target.src.is_dir():
        steps.say(f"  {steps.display(target.src)}: up to date")
        return state
    if state.get("stamp") != stamp and target.obj.exists():
        shutil.rmtree(target.obj)   # built from another tree: start over
    target.state.unlink(missing_ok=True)
    with steps.Step(f"debian: dpkg-source -x {dsc.name}",
                    log("unpack")) as step:
        debian = unpack(dsc, target, step)
    with steps.Step(f"debian: quilt push -a --fuzz=0 ({len(names)} patches "
                    "of ours after Debian's)", log("quilt")) as step:
        offsets = push(target, names, step)
    state = {"stamp": stamp, "dsc": dsc.name, "debian": debian,
             "ours": names, "offsets": offsets,
             "overlaps": overlaps(target, names, debian),
             "news": news_entries(target.src)}
    target.state.write_text(json.dumps(state, indent=1))
    return state


def check(target):
    """Build the combined tree, then regrtest and the smoke checks.

    Returns (build, regrtest, smoke) results as text, so the summary is
    printed whatever failed.
    """
    try:
        build.build(target)
    except Error as e:
        steps.say(f"error: {e}")
        return "FAILED (see the error above)", "not run", "not run"
    log = target.logs / "regrtest.log"
    try:
        # The series' test classes, from the patch files quilt applied.
        testing.regrtest(target, testing.TOUCHED_TESTS, log, extra=["-j2"],
                         series=testing.patch_classes(target.release))
        regrtest = "passed"
    except Error:
        regrtest = f"FAILED (log: {steps.display(log)})"
    if sys.platform != "linux" or platform.machine() not in rngsim.ARCHES:
        return "ok", regrtest, "skipped (rngsim needs Linux on " \
            f"{' or '.join(rngsim.ARCHES)})"
    with steps.Step("debian: smoke checks of the patched behaviour under "
                    "rngsim", target.logs / "smoke.log") as step:
        failures = [title for title, ok in smoke(target.python, step)
                    if not ok]
    smoke_result = (f"{len(SMOKE)} passed" if not failures else
                    f"{len(failures)} of {len(SMOKE)} FAILED "
                    f"(log: {steps.display(step.log)})")
    return "ok", regrtest, smoke_result


def summary(target, state, results):
    built, regrtest, smoke_result = results
    our_news = [n for n in state["news"] if "bpo-26839" in n]
    lines = [
        f"Debian source:          {state['dsc']}",
        f"Debian patches applied: {len(state['debian'])} (dpkg-source -x)",
        f"ours applied:           {len(state['ours'])} (quilt push -a "
        f"--fuzz=0: no fuzz, "
        f"{len(state['offsets'])} hunk(s) at an offset)",
    ]
    for patch, path, note in state["offsets"]:
        lines.append(f"  {patch}: {path}: {note}")
    if state["overlaps"]:
        lines.append("Debian patches touching our files:")
        for name, files in state["overlaps"].items():
            lines.append(f"  {name}: {', '.join(files)}")
    else:
        lines.append("Debian patches touching our files: none")
    lines.append(f"Misc/NEWS.d/next entries: {len(our_news)} ours, "
                 f"{len(state['news']) - len(our_news)} Debian's")
    if built == "ok":
        built = f"ok ({steps.display(target.python)})"
    lines.append(f"build result:           {built}")
    lines.append(f"test result:            regrtest "
                 f"{' '.join(testing.TOUCHED_TESTS)}: {regrtest}; smoke checks: "
                 f"{smoke_result}")
    return lines


def run(args):
    release = config.release(args.version)
    target = DebianTarget(release)
    build.install_debian_packages(
        build.missing_debian_packages(["quilt", "dpkg-dev"]),
        target.logs / "deps.log")
    names = export_quilt(release, target.quilt)
    steps.say(f"debian: {len(names)} patches exported with DEP-3 headers "
              f"to {steps.display(target.quilt)}/")
    state = prepare(target, names,
                    lambda what: target.logs / f"{what}.log")
    results = check(target)
    lines = summary(target, state, results)
    (target.dir / "summary.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        steps.say(line)
    return 0 if results[0] == "ok" and results[1] == "passed" and (
        "FAILED" not in results[2]) else 1


def add_parser(sub):
    parser = sub.add_parser(
        "debian", help="apply the series on Debian's python3.13 package, "
        "build and test it",
        description="Export the series as DEP-3 quilt patches, apply them "
                    "after Debian's own patches with quilt, then build and "
                    "test the result.")
    options.add_release(parser, tarball=False)
    parser.set_defaults(func=run)
    return parser
