"""`make embedded-check`: the exports checked with Yocto's and Buildroot's
own tools, offline, for every target of embedded.toml.

For each target whose release has a series: the release's source (the
verified tarball, or CPython's tag from CPYTHON_GIT=), their patches in
their order, then ours (embedded_apply); then their QA on our exported
patches: OE-core's own check_upstream_status() from meta/lib/oe/qa.py
(loaded from the branch; it needs only the stdlib) and a Signed-off-by
check, or Buildroot's own utils/check-package, run where it expects
package patches (package/python3/) and as a BR2_GLOBAL_PATCH_DIR
(--br2-external).  With BITBAKE_GIT=, OE-core targets are also parsed
by BitBake (embedded_bitbake).  A target whose release has no series
yet is reported as such, not checked.  The table goes to the terminal
and to build/embedded-check/results.md, each target's log beside it.
"""

import dataclasses
import datetime
import importlib.util
import os
import re
import shutil
import subprocess
import sys

from pep522 import config, git, steps, venvs
from pep522.errors import Error
from pep522.release import source, tree
from pep522.ship import (buildroot, embedded_apply, embedded_bitbake,
                         embedded_targets, yocto)
from pep522.ship.embedded_tools import PATCH_URI, archive, run

OUT = config.BUILD / "embedded-check"
RECIPES = "meta/recipes-devtools/python"
SRC_URI = re.compile(r'^SRC_URI(:[\w:-]+)?\s*(=|\+=|\.=|\?=)\s*"(.*?)"',
                     re.M | re.S)
SOB = re.compile(r"^Signed-off-by: .+<.+@.+>$", re.M)
REPO_VARS = {"yocto": "OE_CORE_GIT", "buildroot": "BUILDROOT_GIT"}


@dataclasses.dataclass
class Result:
    target: object
    series: str = None      # patches/<series>, None when there is none
    apply: str = ""
    qa: str = ""
    parse: str = ""
    problems: list = dataclasses.field(default_factory=list)

    @property
    def verdict(self):
        if self.series is None:
            return "pending"
        return "FAIL" if self.problems else "ok"


# --- Their repositories ------------------------------------------------------

def repository(where, branches, log):
    """The git directory of *where* (a path, or a URL fetched into the
    cache with *branches*)."""
    local = os.path.expanduser(where)
    if os.path.exists(local):
        return local
    if "://" not in where and ":" not in where:
        raise Error(f"{where} does not exist",
                    hint="give the path of a clone, or its URL")
    name = re.sub(r"[^\w.-]", "_", where.rstrip("/").rsplit("/", 1)[-1])
    path = config.cache_dir() / "git" / f"embedded-{name}"
    with steps.Step(f"embedded-check: fetch {where}", log) as step:
        if not path.exists():
            step.run(["git", "init", "-q", "--bare", path], env=git.ENV)
        step.run(["git", "-C", path, "fetch", "-q", where,
                  *[f"+refs/heads/{b}:refs/heads/{b}" for b in branches]],
                 env=git.ENV)
    return str(path)


def show(repo, branch, path):
    return git.git(repo, "show", f"refs/heads/{branch}:{path}")


def listing(repo, branch, path):
    return git.git(repo, "ls-tree", "--name-only", f"refs/heads/{branch}",
                   f"{path}/").split()


def has_branch(repo, branch):
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify",
                           "-q", f"refs/heads/{branch}"],
                          capture_output=True, env=git.env()).returncode == 0


# --- OE-core -------------------------------------------------------------

def recipe_patches(text):
    """(target patches, native-only patches) of a recipe's SRC_URI, in
    the order bitbake builds it: assignments, then :append in order."""
    target, native = [], []
    for match in SRC_URI.finditer(text):
        override = match.group(1) or ""
        names = [m.group(1) for m in PATCH_URI.finditer(match.group(3))
                 if "apply=no" not in (m.group(2) or "")]
        if "native" in override:      # class-native, class-nativesdk
            native += names
        elif override in ("", ":append", ":append:class-target"):
            target += names
        else:
            raise Error(f"the python3 recipe assigns SRC_URI{override}, "
                        "which this check does not know how to order",
                        hint="teach pep522/ship/embedded_check.py "
                             "recipe_patches() that override")
    return target, native


def load_qa(repo, branch, work):
    """OE-core's own meta/lib/oe/qa.py of *branch*, as a module."""
    path = work / f"oe-qa-{branch}.py"
    path.write_text(show(repo, branch, "meta/lib/oe/qa.py"))
    spec = importlib.util.spec_from_file_location(f"oe_qa_{branch}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "check_upstream_status"):
        raise Error(f"{branch}'s meta/lib/oe/qa.py has no "
                    "check_upstream_status()")
    return module


def quilt(step, src, names, texts, ours):
    """Apply *names* with quilt, as OE-core does; [Applied]."""
    patches = src / "patches"
    patches.mkdir()
    for name in names:
        (patches / name).write_text(texts[name])
    (patches / "series").write_text("".join(f"{n}\n" for n in names))
    output = run(step, ["quilt", "--quiltrc", os.devnull, "push", "-a"],
                 cwd=src, env={"QUILT_PATCHES": "patches"})
    return embedded_apply.read_output(output, names, ours)


def check_yocto(target, release, repo, work, src, tarball, step, result,
                bitbake):
    recipe = f"python3_{target.version}.bb"
    recipes = [n.rsplit("/", 1)[-1]
               for n in listing(repo, target.branch, RECIPES)]
    if recipe not in recipes:
        found = [n for n in recipes if re.match(r"python3_[\d.]+\.bb$", n)]
        result.problems.append(f"{target.branch} has {', '.join(found)}, "
                               f"not {recipe}: update embedded.toml")
        return
    corenames = re.search(r'^LAYERSERIES_CORENAMES\s*=\s*"([^"]*)"',
                          show(repo, target.branch, "meta/conf/layer.conf"),
                          re.M)
    if not corenames or target.layerseries not in corenames.group(1).split():
        result.problems.append(
            f"{target.branch}'s LAYERSERIES_CORENAMES is "
            f"{corenames.group(1) if corenames else 'unset'!r}, without "
            f"{target.layerseries}: update embedded.toml")
    theirs, native = recipe_patches(show(repo, target.branch,
                                         f"{RECIPES}/{recipe}"))
    layer = yocto.export(release, [target], work / yocto.LAYER)
    files = layer / yocto.RECIPE_DIR / "python3"
    ours = [p.name for p in sorted(files.glob("*.patch"))]
    clash = sorted(set(ours) & set(theirs + native))
    if clash:
        result.problems.append(f"our patch names clash with theirs: "
                               f"{', '.join(clash)}")
    texts = {name: show(repo, target.branch, f"{RECIPES}/python3/{name}")
             for name in theirs + native}
    texts.update({name: (files / name).read_text() for name in ours})
    # The target's order; python3-native's: bitbake applies the recipe's
    # SRC_URI:append:class-native before the bbappend's SRC_URI:append.
    applies = [("target", src, theirs)]
    if native:
        native_src = work / "src-native"
        tree.unpack(tarball, native_src, step)
        applies.append(("native", native_src, theirs + native))
    summaries = []
    for kind, tree_dir, before in applies:
        applied = quilt(step, tree_dir, before + ours, texts, set(ours))
        touched = set().union(*[embedded_apply.touched_files(texts[n])
                                for n in before])
        result.problems += [f"{kind}: {p}" for p in embedded_apply.problems(
            applied, touched, before + ours)]
        summaries.append(f"{kind} {embedded_apply.summary(applied)}")
    result.apply = "quilt: " + "; ".join(summaries)
    qa = load_qa(repo, target.branch, work)
    bad = [f"{name}: {msg.splitlines()[0]}" for name in ours
           for msg in [qa.check_upstream_status(str(files / name))] if msg]
    bad += [f"{name}: no Signed-off-by" for name in ours
            if not SOB.search((files / name).read_text())]
    step.note("qa.py check_upstream_status and Signed-off-by: "
              + ("; ".join(bad) or f"{len(ours)} patches pass"))
    result.problems += bad
    result.qa = ("qa.py check_upstream_status + Signed-off-by: "
                 + (f"{len(bad)} problems" if bad else
                    f"{len(ours)}/{len(ours)} pass"))
    if bitbake:
        result.parse = embedded_bitbake.parse(target, repo, bitbake, layer,
                                              theirs + ours, work, step,
                                              result.problems)
    else:
        result.parse = "not run (no BITBAKE_GIT=)"


# --- Buildroot -------------------------------------------------------------

# What utils/check-package imports beyond the stdlib.
CHECK_PACKAGE_NEEDS = {"python-magic": "magic", "flake8": "flake8"}
CHECK_PACKAGE_VENV = config.BUILD / "venv-check-package"


def check_package_python(log):
    """A Python that can run utils/check-package: this one if it has its
    modules (Debian: python3-magic, flake8), else a venv from PyPI."""
    modules = ", ".join(CHECK_PACKAGE_NEEDS.values())
    probe = subprocess.run([sys.executable, "-c", f"import {modules}"],
                           capture_output=True)
    if probe.returncode == 0:
        return sys.executable
    return venvs.ensure(sys.executable, CHECK_PACKAGE_VENV,
                        list(CHECK_PACKAGE_NEEDS), modules, log)


def check_package(step, python, cwd, args):
    """Run Buildroot's utils/check-package; return its warning lines."""
    output = run(step, [python, "utils/check-package", *args], cwd=cwd)
    match = re.search(r"^(\d+) warnings generated", output, re.M)
    if match is None:
        return [f"utils/check-package did not run: {output.strip()[-300:]}"]
    return [line for line in output.splitlines()
            if re.match(r"^\S+:\d+: ", line)] or (
                [] if match.group(1) == "0" else [output.strip()])


def check_buildroot(target, release, repo, work, src, step, result):
    mk = show(repo, target.branch, "package/python3/python3.mk")
    major = re.search(r"^PYTHON3_VERSION_MAJOR\s*=\s*(\S+)", mk, re.M)
    minor = re.search(r"^PYTHON3_VERSION\s*=\s*\$\(PYTHON3_VERSION_MAJOR\)"
                      r"(\.\S+)", mk, re.M)
    version = (major.group(1) + minor.group(1)) if major and minor else "?"
    if version != target.version:
        result.problems.append(f"{target.branch} builds python3 {version}, "
                               f"not {target.version}: update embedded.toml")
        return
    br = work / "buildroot"
    archive(repo, target.branch, br,
            ["utils", "support/scripts/apply-patches.sh", "package/python3"])
    theirs = sorted(p.name for p in (br / "package/python3").glob("*.patch"))
    if len(theirs) != target.own_patches:
        result.problems.append(
            f"{target.branch} has {len(theirs)} patches in package/python3, "
            f"embedded.toml says {target.own_patches}: update it")
    dest = buildroot.export(release, [target], work / "global")
    ours = sorted(p.name for p in (dest / "python3").glob("*.patch"))
    script = br / "support/scripts/apply-patches.sh"
    output = run(step, ["bash", script, src, br / "package/python3",
                        "*.patch"])
    output += run(step, ["bash", script, src, dest / "python3", "*.patch"])
    applied = embedded_apply.read_output(output, theirs + ours, set(ours))
    touched = set().union(*[embedded_apply.touched_files(
        (br / "package/python3" / n).read_text(errors="replace"))
        for n in theirs])
    result.problems += embedded_apply.problems(applied, touched,
                                               theirs + ours)
    result.apply = ("apply-patches.sh (patch -F0): "
                    + embedded_apply.summary(applied))
    python = check_package_python(step.log.with_name("venv.log"))
    for name in ours:
        shutil.copy(dest / "python3" / name, br / "package/python3" / name)
    warnings = check_package(step, python, br,
                             [f"package/python3/{n}" for n in ours])
    warnings += check_package(step, python, br,
                              ["-b", *[str(dest / "python3" / n)
                                       for n in ours]])
    result.problems += warnings
    result.qa = ("utils/check-package (in-tree and -b): "
                 + (f"{len(warnings)} warnings" if warnings else
                    f"{len(ours)} patches, 0 warnings"))
    result.parse = "n/a"


# --- Running ---------------------------------------------------------------


def check_target(target, releases, repos, bitbake, out):
    release = releases.get(target.version)
    if not embedded_targets.has_series(release):
        return Result(target, problems=[])
    result = Result(target, series=release.series)
    repo = repos.get(target.tool)
    if repo is None:
        result.problems.append(f"not checked: no {REPO_VARS[target.tool]}=")
        return result
    slug = re.sub(r"[^\w.-]+", "-", target.name)
    work = out / slug
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    log = out / f"{slug}.log"
    with steps.Step(f"embedded-check: {target.name} (CPython "
                    f"{target.version}, patches/{release.series})",
                    log) as step:
        if not has_branch(repo, target.branch):
            result.problems.append(f"no branch {target.branch} in {repo}")
            return result
        tarball = source.obtain(release, log=work / "obtain.log")
        src = work / "src"
        tree.unpack(tarball, src, step)
        if target.tool == "yocto":
            check_yocto(target, release, repo, work, src, tarball, step,
                        result, bitbake)
        else:
            check_buildroot(target, release, repo, work, src, step, result)
        for problem in result.problems:
            step.note(f"PROBLEM: {problem}")
    return result


def table(results, command):
    date = datetime.date.today().isoformat()
    lines = [f"Measured {date} with `{command}`.", "",
             "| target | CPython | series | apply | QA | bitbake parse | "
             "result |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        t = r.target
        if r.series is None:
            lines.append(f"| {t.name} | {t.version} | pending: series for "
                         f"{t.version} not landed | | | | no series for "
                         f"{t.version} |")
            continue
        verdict = r.verdict + (": " + "; ".join(r.problems)
                               if r.problems else "")
        lines.append(f"| {t.name} | {t.version} | patches/{r.series} | "
                     f"{r.apply} | {r.qa} | {r.parse} | {verdict} |")
    return lines


def check(targets, releases, repos, bitbake=None, out=OUT,
          command="make embedded-check"):
    """Check every target; print and write the table; return results."""
    out.mkdir(parents=True, exist_ok=True)
    results = [check_target(t, releases, repos, bitbake, out)
               for t in targets]
    lines = table(results, command)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    for r in results:
        t = r.target
        if r.series is None:
            steps.say(f"{t.name}: no series for {t.version}")
        else:
            steps.say(f"{t.name}: {r.verdict}, {t.version} with "
                      f"patches/{r.series}")
            for part in (r.apply, r.qa, r.parse):
                if part:
                    steps.say(f"  {part}")
            for problem in r.problems:
                steps.say(f"  FAIL {problem}")
    steps.say(f"table: {steps.display(out / 'results.md')}")
    return results


def cmd_embedded_check(args):
    repos = {tool: os.environ.get(var) or getattr(args, var.lower())
             for tool, var in REPO_VARS.items()}
    if not any(repos.values()):
        raise Error("embedded-check needs OE_CORE_GIT= and/or "
                    "BUILDROOT_GIT= (their git repositories, paths or URLs)",
                    hint="make embedded-check OE_CORE_GIT=/path/to/"
                         "openembedded-core BUILDROOT_GIT=/path/to/buildroot"
                         " CPYTHON_GIT=/path/to/cpython")
    targets = embedded_targets.load()
    if args.target:
        targets = [t for t in targets if t.name in args.target]
    log = OUT / "fetch.log"
    for tool, where in list(repos.items()):
        if where:
            repos[tool] = repository(
                where, sorted({t.branch for t in targets if t.tool == tool}),
                log)
    bitbake = args.bitbake_git or os.environ.get("BITBAKE_GIT")
    if bitbake:
        bitbake = repository(bitbake, sorted(
            {t.bitbake for t in targets if t.tool == "yocto"}), log)
    _, releases = config.load_pins()
    command = "make embedded-check " + " ".join(
        f"{var}={os.environ.get(var) or getattr(args, var.lower()) or ''}"
        for var in ("OE_CORE_GIT", "BUILDROOT_GIT", "BITBAKE_GIT",
                    "CPYTHON_GIT")
        if os.environ.get(var) or getattr(args, var.lower(), None)) + "".join(
        f' EMBEDDED_TARGET="{name}"' for name in args.target or ())
    results = check(targets, releases, repos, bitbake, command=command)
    return 1 if any(r.verdict == "FAIL" for r in results) else 0


def add_parser(sub):
    p = sub.add_parser("embedded-check", help="the Yocto and Buildroot "
                       "exports checked with their own tools, offline")
    for var, what in [("OE_CORE_GIT", "OpenEmbedded-Core"),
                      ("BUILDROOT_GIT", "Buildroot"),
                      ("BITBAKE_GIT", "BitBake (to parse the layer)"),
                      ("CPYTHON_GIT", "CPython (releases without a "
                       "tarball at hand)")]:
        p.add_argument(f"--{var.lower().replace('_', '-')}",
                       dest=var.lower(),
                       help=f"the {what} git repository, path or URL "
                            f"(default: ${var})")
    p.add_argument("--target", action="append",
                   help="only this target of embedded.toml (repeatable)")
    p.set_defaults(func=cmd_embedded_check)
