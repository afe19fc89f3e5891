"""Install the packages the impact assessment imports, and find their modules.

Everything goes into one target directory (build/impact/target-<abi>),
installed by uv for the patched build's interpreter: its ABI, platform tags
and environment markers.  Binary wheels only, unless asked: building from
source would measure the host's compilers, not the packages.

All requested packages are installed with one resolution; if that fails,
the request is split in halves until the packages that cannot be installed
stand alone, and those are skipped with uv's reason.  A re-run installs
only what the target does not have yet.
"""

import re
import subprocess
import sys

from pep522 import config, steps, venvs

UV_VENV = config.BUILD / "venv-uv"

# Top-level names that packages ship by mistake (and that would shadow
# each other), not modules anyone imports.
NOT_MODULES = {"test", "tests", "testing", "docs", "doc", "examples",
               "benchmarks", "scripts", "bin"}


def canonical(name):
    """A distribution name as PEP 503 normalises it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def uv(log):
    """The uv binary, from a venv under build/ made on first use."""
    python = venvs.ensure(sys.executable, UV_VENV, ["uv"], "uv", log)
    return python.parent / "uv"


def dist_infos(target):
    """{canonical name: .dist-info directory} of what *target* holds."""
    infos = {}
    for info in target.glob("*.dist-info"):
        name = info.name[:-len(".dist-info")].rsplit("-", 1)[0]
        infos[canonical(name)] = info
    return infos


def version_of(info):
    return info.name[:-len(".dist-info")].rsplit("-", 1)[1]


def first_error(output):
    """The line of uv's output that says why an install failed."""
    lines = [line.strip(" ×╰─▶").removeprefix("cause: ")
             for line in output.splitlines()]
    for prefix in ("Because", "error:"):
        for line in lines:
            if line.startswith(prefix):
                return line
    return next((line for line in reversed(lines) if line),
                "uv failed without saying why")


def install(python, target, names, log, find_links=None, sdists=False):
    """Install *names* into *target* for *python*.

    Returns {name: reason} for the packages that were skipped.
    """
    target.mkdir(parents=True, exist_ok=True)
    have = dist_infos(target)
    wanted = [n for n in names if canonical(n) not in have]
    if not wanted:
        return {}
    command = [uv(log.parent / "venv-uv.log"), "pip", "install",
               "--python", python, "--target", target,
               "--no-progress", "--color", "never",
               # The system's trust store (Debian's ca-certificates, with
               # the CAs a site adds), as pip uses, not uv's own roots.
               "--native-tls"]
    if not sdists:
        command += ["--only-binary", ":all:"]
    if find_links:
        command += ["--no-index", "--find-links", find_links]
    skipped = {}
    with steps.Step(f"impact: installing {len(wanted)} packages into "
                    f"{steps.display(target)}", log) as step:
        _install_halving(step, [str(c) for c in command], wanted, skipped)
        if skipped:
            steps.say(f"  skipped {len(skipped)}: {', '.join(skipped)}")
    return skipped


def _install_halving(step, command, names, skipped):
    step.note(f"$ {' '.join(command)} {' '.join(names)}")
    proc = subprocess.run([*command, *names], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    step.note(proc.stdout + proc.stderr)
    if proc.returncode == 0:
        return
    if len(names) == 1:
        skipped[names[0]] = first_error(proc.stderr)
        return
    half = len(names) // 2
    _install_halving(step, command, names[:half], skipped)
    _install_halving(step, command, names[half:], skipped)


def modules_of(info):
    """The top-level modules a distribution installed, from its RECORD.

    A namespace package (a directory without __init__.py, such as
    google/) is not a module to assess: the packages under it are.
    Private modules (_name, and mypyc's helper modules) count only when
    there is nothing else.
    """
    try:
        record = (info / "RECORD").read_text(encoding="utf-8")
    except OSError:
        return []
    paths = [line.split(",", 1)[0] for line in record.splitlines()]
    packages = {p.rsplit("/", 1)[0] for p in paths
                if p.endswith("/__init__.py")}
    found = set()
    for package in packages:
        parts = package.split("/")
        if not any("/".join(parts[:i]) in packages
                   for i in range(1, len(parts))):
            found.add(".".join(parts))
    for path in paths:
        if "/" not in path and path.endswith((".py", ".so")):
            found.add(path.split(".", 1)[0])
    found = {m for m in found
             if all(part.isidentifier() for part in m.split("."))
             and m.split(".")[0] not in NOT_MODULES}
    public = {m for m in found if not any(
        part.startswith("_") or part.endswith("__mypyc")
        for part in m.split("."))}
    return sorted(public or found)
