"""Impact assessment: which third-party packages raise or wait under PEP 522.

    python3 -m pep522 impact --top 200      # the most downloaded on PyPI
    python3 -m pep522 impact requests -r requirements.txt

A packager asks which of *their* packages raise BlockingIOError, or wait,
when they run before the kernel RNG is ready.  This installs the packages
once (impact_install), imports every top-level module of each in a fresh
interpreter under the simulator, in the patched and the stock build
(impact_run), and writes build/impact/impact.json and impact.md with the
counts, the differences and the culprits (impact_report).  See
docs/impact.md.
"""

import concurrent.futures
import datetime
import hashlib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tomllib

from pep522 import config, options, steps
from pep522.builds import build
from pep522.errors import Error
from pep522.impact import impact_install, impact_report, impact_run

DATA = pathlib.Path(__file__).resolve().parent / "data"
RANKING = DATA / "top-pypi.txt"
PROBES = DATA / "impact-probes.toml"
OUT = config.BUILD / "impact"
DEFAULT_LIMIT = 15
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def read_list(path):
    """The requirement lines of a file: no comments, options or blanks."""
    try:
        text = path.read_text()
    except OSError as e:
        raise Error(f"cannot read {path}: {e.strerror}",
                    hint="give an existing requirements file") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def requested(packages, requirement_files, top, ranking):
    """The requirements to assess, in order, without duplicates."""
    wanted = list(packages)
    for path in requirement_files:
        wanted += read_list(path)
    if top:
        ranked = read_list(ranking)
        if top > len(ranked):
            raise Error(f"--top {top}: {ranking} ranks only {len(ranked)}",
                        hint=f"use --top {len(ranked)} or less")
        wanted += ranked[:top]
    if not wanted:
        raise Error("no packages to assess",
                    hint="name some, or use -r FILE or --top N")
    for requirement in wanted:
        if not NAME.match(requirement):
            raise Error(f"not a requirement: {requirement!r}",
                        hint="give names such as requests or "
                             "requests==2.32.3")
    return list(dict.fromkeys(wanted))


def network_cut():
    """A prefix that runs a command without network, or () if none works."""
    for prefix in (["unshare", "--net", "--"],
                   ["unshare", "--user", "--map-root-user", "--net", "--"]):
        try:
            if subprocess.run([*prefix, "true"],
                              capture_output=True).returncode == 0:
                return prefix
        except FileNotFoundError:
            return ()
    return ()


def cache_tag(python):
    return subprocess.run(
        [python, "-I", "-c", "import sys; print(sys.implementation."
         "cache_tag)"], capture_output=True, text=True,
        check=True).stdout.strip()


def load_probes(path=PROBES):
    with open(path, "rb") as f:
        return tomllib.load(f)["probes"]


def previous_results(path):
    """{(build, code): result} of an earlier run."""
    try:
        report = json.loads(path.read_text())
        rows = report["rows"] + report["probes"]
    except (OSError, ValueError, KeyError):
        return {}
    return {(build, row["code"]): result for row in rows
            for build, result in row["results"].items()}


def module_rows(requirements, infos, skipped):
    """A row per top-level module of every installed requirement."""
    rows = []
    for rank, requirement in enumerate(requirements, 1):
        name = NAME.match(requirement)[1]
        info = infos.get(impact_install.canonical(name))
        if info is None:
            skipped.setdefault(name, "not installed")
            continue
        modules = impact_install.modules_of(info)
        if not modules:
            skipped[name] = "installs no importable module"
        rows += [{"rank": rank, "distribution": name,
                  "version": impact_install.version_of(info),
                  "module": module, "code": f"import {module}",
                  "results": {}} for module in modules]
    return rows


def probe_rows(probes, infos, skipped):
    """A row per probe whose requirements are installed."""
    rows = []
    for name, probe in probes.items():
        missing = [r for r in probe["requires"] if impact_install.canonical(
            NAME.match(r)[1]) not in infos]
        if missing:
            skipped[f"probe {name}"] = f"needs {', '.join(missing)}"
            continue
        versions = [impact_install.version_of(
            infos[impact_install.canonical(NAME.match(r)[1])])
            for r in probe["requires"]]
        rows.append({"probe": name, "code": probe["code"],
                     "requires": probe["requires"],
                     "version": " ".join(versions), "results": {}})
    return rows


def measure(builds, requirements, out, limit=DEFAULT_LIMIT, jobs=None,
            find_links=None, sdists=False, fresh=False, command="",
            probes=None):
    """Install, import and classify; write the report; return it.

    *builds* maps a build's name to its interpreter; the first one's ABI
    decides what is installed.  *probes* ({name: {"requires", "code"}})
    are first-use probes, run after the imports.
    """
    probes = probes or {}
    first = next(iter(builds.values()))
    target = out / f"target-{cache_tag(first)}"
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    needed = [r for p in probes.values() for r in p["requires"]]
    skipped = impact_install.install(
        first, target, list(dict.fromkeys(requirements + needed)),
        out / "install.log", find_links, sdists)
    infos = impact_install.dist_infos(target)
    rows = module_rows(requirements, infos, skipped)
    probed = probe_rows(probes, infos, skipped)
    old = {} if fresh else previous_results(out / "impact.json")
    # A result is reused while the package version, the time limit, the
    # interpreter and the classifying code are the same.
    code = hashlib.sha256(pathlib.Path(impact_run.__file__).read_bytes())
    keys = {b: f"{limit}|{os.stat(p).st_mtime_ns}|{code.hexdigest()[:12]}"
            for b, p in builds.items()}
    wrapper = network_cut()
    jobs = jobs or os.cpu_count() or 1
    with steps.Step(f"impact: {len(rows)} imports and {len(probed)} probes "
                    f"in {' and '.join(builds)} under rngsim, {jobs} at a "
                    "time", out / "impact.log") as step:
        if not wrapper:
            step.note("unshare --net does not work here: imports run "
                      "with the network")
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futures = {}
            for n, row in enumerate(rows + probed):
                for b, python in builds.items():
                    key = f"{row['version']}|{keys[b]}"
                    done = old.get((b, row["code"]))
                    if done and done.get("key") == key:
                        row["results"][b] = done
                        continue
                    futures[pool.submit(
                        _assess, python, target, row["code"], limit, work,
                        wrapper, f"{b}-{n}")] = (row, b, key)
            for future in concurrent.futures.as_completed(futures):
                row, b, key = futures[future]
                row["results"][b] = {**future.result(), "key": key}
                step.note(f"{b} {row['code']!r}: {row['results'][b]}")
    report = {"date": datetime.date.today().isoformat(), "command": command,
              "builds": {b: str(p) for b, p in builds.items()},
              "limit": limit, "network_cut": bool(wrapper),
              "distributions": requirements, "skipped": skipped,
              "rows": rows, "probes": probed}
    impact_report.write(report, out)
    return report


def _assess(python, target, code, limit, work, wrapper, tag):
    """impact_run.assess, with a failure of our own kept to its row."""
    try:
        return impact_run.assess(python, target, code, limit, work,
                                 wrapper, tag)
    except Exception as e:
        return {"class": impact_run.OTHER,
                "detail": f"assessment failed: {type(e).__name__}: {e}"}


def run(args):
    requirements = requested(args.packages, args.requirements, args.top,
                             args.ranking)
    release = config.release(args.version)
    builds = {}
    for name, stock in (("patched", False), ("stock", True)):
        target = config.Target(release, stock=stock)
        builds[name] = build.built(target, args.tarball)
    out = config.ROOT / args.out   # an absolute --out stays as it is
    report = measure(builds, requirements, out, args.timeout, args.jobs,
                     args.find_links, args.sdists, args.fresh,
                     shlex.join(["python3", "-m", "pep522", *sys.argv[1:]]),
                     load_probes() if args.probes else None)
    steps.say(impact_report.summary(report))
    for name in ("impact.md", "impact.json"):
        steps.say(steps.display(out / name))


def add_parser(sub):
    parser = sub.add_parser(
        "impact", help="which third-party packages raise or wait under "
                       "PEP 522",
        description="Install packages, import each of their modules under "
                    "rngsim --never-ready in the patched and the stock "
                    "build, and report which raise, wait or fail.")
    options.add_release(parser)
    parser.add_argument("packages", nargs="*", metavar="PACKAGE",
                        help="requirements, e.g. requests or "
                             "requests==2.32.3")
    parser.add_argument("-r", "--requirements", action="append", default=[],
                        type=pathlib.Path, metavar="FILE",
                        help="a requirements file (names and versions)")
    parser.add_argument("--top", type=int, metavar="N",
                        help="the first N packages of --ranking")
    parser.add_argument("--ranking", type=pathlib.Path,
                        default=RANKING, help="a ranked list, one name a "
                        f"line (default: {steps.display(RANKING)})")
    parser.add_argument("--find-links", metavar="DIR",
                        help="install only from the wheels in DIR, "
                             "without an index")
    parser.add_argument("--sdists", action="store_true",
                        help="allow building packages from source")
    parser.add_argument("--timeout", type=float, default=DEFAULT_LIMIT,
                        metavar="SECONDS", help="time limit per import "
                        f"(default: {DEFAULT_LIMIT})")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="imports at a time (default: the cores)")
    parser.add_argument("--out", default=steps.display(OUT),
                        help="where the target, logs and report go "
                             f"(default: {steps.display(OUT)})")
    parser.add_argument("--probes", action="store_true",
                        help="also run the first-use probes of "
                             f"{steps.display(PROBES)}")
    parser.add_argument("--fresh", action="store_true",
                        help="import everything again, reusing no result "
                             "of an earlier run")
    parser.set_defaults(func=run)
    return parser
