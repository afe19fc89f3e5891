"""`make docs`: the patched documentation, built and checked like upstream.

Packagers ship the HTML docs (Debian's python3.13-doc), and the series
changes os.rst, random.rst, secrets.rst, What's New and the changelog.
Upstream builds with the Sphinx versions pinned in Doc/requirements.txt
and treats warnings as errors; the release tarball's docs, however, do not
build warning-free with `-n` (nitpicky), which is where a broken
cross-reference shows up.  So we measure instead of hoping:

* both the stock release (the `upstream` tag of build/<version>/src) and
  the patched tree (its HEAD) are built with the same venv and options
  (`-n --keep-going -w FILE`), through Doc/Makefile so the changelog is
  made exactly as for a release (with our Misc/NEWS.d/next entries);
* warnings are compared without line numbers (the patches move lines);
  any warning the patched build has and the stock build has not fails,
  and those in the pages the series changes are named as such.

The stock warnings are kept as a baseline and only rebuilt when the venv
or the release changes; the HTML goes to build/<version>/docs/html.
"""

import collections
import hashlib
import json
import re
import shutil
import subprocess
import sys

from pep522 import config, git, options, steps, venvs
from pep522.builds import build
from pep522.errors import Error
from pep522.release import tree

SPHINX_OPTIONS = ["-q", "-n", "--keep-going"]
WARNING = re.compile(r"^(?P<path>[^\s:][^:]*?):(?:(?P<line>\d+):)? "
                     r"(?:WARNING|ERROR|CRITICAL): (?P<message>.*)$")


def docs_dir(target):
    """Where the HTML and the warning lists of *target* go."""
    return target.dir / "docs"


def work_dir(target, kind):
    """An exported copy of the tree to build in (never the tree itself:
    Sphinx and blurb write into Doc/build, which would make the tree
    dirty for the tools that check it)."""
    return config.BUILD / "docs-work" / target.release.version / kind


# --- The Sphinx venv ---------------------------------------------------------

def requirements_digest(doc):
    digest = hashlib.sha256()
    for name in ("requirements.txt", "constraints.txt"):
        path = doc / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def docs_python(target):
    """The interpreter that makes the release's docs venv.

    This one, unless the release's own build is newer and exists: a
    release's Doc/requirements.txt may need its own Python (3.14's pins
    linklint, which needs Python 3.12 or newer, and the host may have
    3.11).  The build is the patched one, which make test has built.
    """
    wanted = tuple(int(part) for part in
                   target.release.version.split(".")[:2])
    if sys.version_info[:2] >= wanted or not target.python.exists():
        return sys.executable
    return str(target.python)


# "name @ URL": a requirement pinned to a direct download, which only the
# package registries, not arbitrary hosts, may serve here.
DIRECT_URL = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*@\s*\S+")
# "-c file" or "-r file", relative to the requirements file.
INCLUDED_FILE = re.compile(r"^(\s*-[cr]\s+)(\S+)(.*)$")


def registry_requirements(doc, out):
    """Doc/requirements.txt as pip can install it from the registries.

    A release candidate's file may pin a package to a direct URL (3.15.0rc1
    pins pygments to a GitHub archive); that becomes the package by name,
    from the registry, and is said in the log.  Included files are made
    absolute, so the copy in *out* works.  Returns the file to install
    and the names that were unpinned.
    """
    unpinned, lines = [], []
    for line in (doc / "requirements.txt").read_text().splitlines():
        match = DIRECT_URL.match(line)
        if match:
            unpinned.append(match.group(1))
            line = f"{match.group(1)}  # was: {line.strip()}"
        included = INCLUDED_FILE.match(line)
        if included:
            line = (included.group(1) + str(doc / included.group(2))
                    + included.group(3))
        lines.append(line)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "requirements.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, unpinned


def ensure_venv(target, log):
    """A venv with what the release's Doc/requirements.txt pins, from the
    package registry.

    Keyed by the hash of the requirement files, so 3.13.5 and a later
    release with other pins never share one.
    """
    doc = target.src / "Doc"
    env_dir = config.BUILD / "docs-venv" / requirements_digest(doc)
    requirements, unpinned = registry_requirements(
        doc, env_dir.parent / (env_dir.name + ".requirements"))
    if unpinned:
        steps.say(f"docs: {', '.join(unpinned)} from the registry instead "
                  f"of the direct URL that {steps.display(doc)}"
                  "/requirements.txt pins")
    venvs.ensure(docs_python(target), env_dir,
                 ["-r", str(requirements)], "sphinx", log)
    return env_dir


# --- Building ----------------------------------------------------------------

def export_tree(src, rev, dest):
    """Copy the tree at *rev* to *dest* (git archive: committed files)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(src), "archive", rev],
                               stdout=subprocess.PIPE, env=git.env())
    untar = subprocess.run(["tar", "-x", "-m", "-C", str(dest)],
                           stdin=archive.stdout)
    archive.stdout.close()
    if archive.wait() or untar.returncode:
        raise Error(f"cannot export {rev} of {steps.display(src)} to "
                    f"{steps.display(dest)}")


def sphinx(work, env_dir, warnings, step, extra=()):
    """`make -C Doc html` with our venv and options; warnings to a file."""
    bin_dir = env_dir / "bin"
    options = [*SPHINX_OPTIONS, "-w", str(warnings), *extra]
    warnings.unlink(missing_ok=True)
    step.run(["make", "-C", work / "Doc", "html",
              f"SPHINXBUILD={bin_dir / 'sphinx-build'}",
              f"BLURB={bin_dir / 'blurb'}", f"PYTHON={bin_dir / 'python'}",
              f"SPHINXOPTS={' '.join(options)}", "SPHINXERRORHANDLING="])
    if not (work / "Doc" / "build" / "html" / "index.html").is_file():
        step.fail("Sphinx produced no index.html")


def parse_warnings(path, doc):
    """Warnings as (file relative to Doc/, message), without line numbers."""
    found = collections.Counter()
    prefix = str(doc) + "/"
    text = path.read_text(errors="replace") if path.is_file() else ""
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).replace(prefix, "")
        match = WARNING.match(line)
        if match:
            found[(match["path"], match["message"])] += 1
        elif line.strip():
            found[("?", line.strip())] += 1
    return found


def changed_pages(src):
    """The Doc/ sources the series changes, plus the changelog."""
    names = git.git(src, "diff", "--name-only", tree.UPSTREAM_TAG, "HEAD",
                    "--", "Doc").split()
    pages = {name[len("Doc/"):] for name in names if name.endswith(".rst")}
    if git.git(src, "diff", "--name-only", tree.UPSTREAM_TAG, "HEAD", "--",
               "Misc/NEWS.d").split():
        pages |= {"whatsnew/changelog.rst", "build/NEWS"}
    return pages


def build_kind(target, kind, rev, env_dir, log):
    """Build the docs of *rev* in its work copy; return its warning file."""
    work = work_dir(target, kind)
    warnings = docs_dir(target) / f"warnings-{kind}.txt"
    with steps.Step(f"docs: sphinx-build {kind} {target.release.version} "
                    f"({rev})", log) as step:
        export_tree(target.src, rev, work)
        sphinx(work, env_dir, warnings, step)
        shutil.copyfile(work / "Doc" / "build" / "NEWS",
                        docs_dir(target) / f"NEWS-{kind}")
    return work, warnings


def stamp(target, rev, env_dir):
    commit = git.git(target.src, "rev-parse", rev).strip()
    return {"commit": commit, "venv": env_dir.name,
            "options": SPHINX_OPTIONS}


def build_if_needed(target, kind, rev, env_dir, log):
    """Build unless the last build of the same commit and venv is there."""
    out = docs_dir(target)
    state_file = out / f"state-{kind}.json"
    wanted = stamp(target, rev, env_dir)
    warnings = out / f"warnings-{kind}.txt"
    try:
        if json.loads(state_file.read_text()) == wanted and (
                warnings.is_file()):
            steps.say(f"docs: {kind} build of {wanted['commit'][:12]}: "
                      "up to date")
            return False
    except (OSError, ValueError):
        pass
    state_file.unlink(missing_ok=True)
    work, warnings = build_kind(target, kind, rev, env_dir, log)
    if kind == "patched":
        html = out / "html"
        if html.exists():
            shutil.rmtree(html)
        shutil.move(work / "Doc" / "build" / "html", html)
    state_file.write_text(json.dumps(wanted))
    return True


def compare(target):
    """New warnings of the patched docs: [(path, message, in_changed)]."""
    doc_of = {kind: work_dir(target, kind) / "Doc"
              for kind in ("stock", "patched")}
    found = {kind: parse_warnings(docs_dir(target) / f"warnings-{kind}.txt",
                                  doc_of[kind])
             for kind in doc_of}
    pages = changed_pages(target.src)
    new = found["patched"] - found["stock"]
    return found, [(path, message, path in pages)
                   for (path, message), count in sorted(new.items())
                   for _ in range(count)]


def docs(target, tarball=None):
    """Build stock and patched docs; raise Error on a new warning."""
    build.prepare(target, tarball)
    out = docs_dir(target)
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    env_dir = ensure_venv(target, logs / "docs-venv.log")
    build_if_needed(target, "stock", tree.UPSTREAM_TAG, env_dir,
                    logs / "docs-stock.log")
    build_if_needed(target, "patched", "HEAD", env_dir,
                    logs / "docs-patched.log")
    found, new = compare(target)
    steps.say(f"docs: warnings (sphinx {' '.join(SPHINX_OPTIONS)}): "
              f"stock {sum(found['stock'].values())}, patched "
              f"{sum(found['patched'].values())}, new {len(new)}")
    if new:
        shown = "\n  ".join(f"{path}: {message}"
                            + (" (a page the series changes)"
                               if changed else "")
                            for path, message, changed in new)
        raise Error(f"the patched docs have {len(new)} new warning(s):\n"
                    f"  {shown}",
                    hint="fix the markup in the patch that changes the page "
                         "(`make checkout`, edit, commit, `make export`), "
                         "then `make docs`")
    steps.say(f"{steps.display(out / 'html' / 'index.html')}")


# --- The pages of the series alone, for `make test` --------------------------

def quick(target, tarball=None):
    """The HTML of the pages the series changes, and of the root page.

    Sphinx reads only those (`include_patterns`, through Doc/Makefile, so
    the changelog still gets our Misc/NEWS.d/next entries): the whole tree
    takes minutes per build, these pages well under one.  References to
    other pages do not resolve, so no warning is compared here (`make
    docs` does that); `make test` renders these pages and checks what
    they say (tests/test_docs.py).  Returns the html directory.
    """
    build.prepare(target, tarball)
    out = docs_dir(target) / "quick"
    html = out / "html"
    env_dir = ensure_venv(target, out / "logs" / "docs-venv.log")
    pages = sorted({page for page in changed_pages(target.src)
                    if page.endswith(".rst")} | {"contents.rst"})
    wanted = {**stamp(target, "HEAD", env_dir), "pages": pages}
    state = out / "state.json"
    try:
        if json.loads(state.read_text()) == wanted and html.is_dir():
            return html
    except (OSError, ValueError):
        pass
    state.unlink(missing_ok=True)
    work = work_dir(target, "quick")
    with steps.Step(f"docs: sphinx-build of the {len(pages)} pages the "
                    f"series changes ({target.release.version})",
                    out / "logs" / "docs-quick.log") as step:
        export_tree(target.src, "HEAD", work)
        sphinx(work, env_dir, out / "warnings.txt", step,
               extra=["-D", "include_patterns=" + ",".join(pages)])
        if html.exists():
            shutil.rmtree(html)
        shutil.move(work / "Doc" / "build" / "html", html)
    state.write_text(json.dumps(wanted))
    return html


def run(args):
    target = config.Target(config.release(args.version))
    docs(target, args.tarball)
    return 0


def add_parser(sub):
    parser = sub.add_parser(
        "docs", help="build the patched Doc/ with the pinned Sphinx",
        description="Build the stock and the patched documentation with "
                    "the Sphinx of Doc/requirements.txt and fail on any "
                    "warning the series adds.")
    options.add_release(parser)
    parser.set_defaults(func=run)
    return parser
