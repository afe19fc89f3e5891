"""The patched source tree: build/<version>/src, a git repository.

Its first commit (tagged `upstream`) is the pristine release tarball; each
patch of the series follows as its own commit, applied with `git am`.  It
is also the developer's editable tree: edit, commit, then `export`.

A stamp in .git/pep522.json records which series the tree was made from
and the commit it then ended at, so the tool can tell an up-to-date tree
from one with work in it (uncommitted edits, or commits not exported yet)
that it must never throw away.
"""

import json
import re
import shutil
import subprocess

from pep522 import git, steps
from pep522.errors import Error
from pep522.release import series, source

UPSTREAM_TAG = "upstream"
# The pristine commit has fixed metadata, so its hash is the same
# everywhere for the same tarball.
PRISTINE_DATE = "2000-01-01T00:00:00Z"


def patch_names(target):
    if target.stock:
        return []
    return series.read(target.release.series_dir)


def stamp_path(src):
    return src / ".git" / "pep522.json"


def read_stamp(src):
    try:
        return json.loads(stamp_path(src).read_text())
    except (OSError, ValueError):
        return None


def write_stamp(src, digest):
    head = git.git(src, "rev-parse", "HEAD").strip()
    stamp_path(src).write_text(json.dumps({"series": digest, "head": head}))


def check_no_work(target):
    """Raise Error if the tree holds work that is not in the series."""
    src = target.src
    dirty = git.dirty_files(src)
    if dirty:
        shown = "\n  ".join(dirty[:10])
        raise Error(f"{steps.display(src)} has uncommitted changes:\n"
                    f"  {shown}",
                    hint=f"commit them (git -C {steps.display(src)} commit) "
                         "and run `make export`, or stash them")
    stamp = read_stamp(src)
    if stamp is None:
        raise Error(f"{steps.display(src)} was not made by this tool",
                    hint="move it out of the way, then run the command "
                         "again")
    head = git.git(src, "rev-parse", "HEAD").strip()
    if head != stamp["head"]:
        raise Error(f"{steps.display(src)} has commits that are not in "
                    f"{steps.display(target.release.series_dir)}",
                    hint="run `make export` to save them as patches first")
    return stamp


def ensure(target, tarball):
    """Make or refresh the tree of *target* from *tarball*; keep work."""
    names = patch_names(target)
    digest = series.digest(target.release.series_dir, names)
    if target.src.exists():
        stamp = check_no_work(target)
        if stamp["series"] == digest:
            return False
    create(target, tarball, names, digest)
    return True


def create(target, tarball, names, digest):
    new = target.dir / "src.new"
    if new.exists():
        shutil.rmtree(new)   # a leftover of ours from an interrupted run
    what = f"{len(names)} patches" if names else "no patches"
    with steps.Step(f"tree: unpacking {tarball.name} into "
                    f"{steps.display(target.src)}, applying {what}",
                    target.logs / "tree.log") as step:
        try:
            unpack(tarball, new, step)
            commit_pristine(new, target.release, tarball, step)
            for name in names:
                apply(new, target.release.series_dir / name, step)
            write_stamp(new, digest)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        if target.src.exists():
            # The unpacked files keep the tarball's mtimes, older than any
            # object file.  Files the old series changed must look new, or
            # `make` would keep objects built from the patched versions.
            changed = git.git(target.src, "diff", "--name-only",
                              UPSTREAM_TAG, "HEAD").split()
            for name in changed:
                if (new / name).exists():
                    (new / name).touch()
            shutil.rmtree(target.src)   # checked clean and exported above
        new.rename(target.src)


def unpack(tarball, dest, step):
    dest.mkdir(parents=True)
    step.run(["tar", "-xf", tarball, "-C", dest, "--strip-components=1"])


def commit_pristine(src, release, tarball, step):
    step.run(["git", "init", "-q", "-b", "main", src], env=git.ENV)
    # Keep every byte as the tarball has it: no end-of-line conversion.
    (src / ".git" / "info" / "attributes").write_text("* -text\n")
    # The only files an out-of-tree build writes into the source tree.
    (src / ".git" / "info" / "exclude").write_text("__pycache__/\n")
    step.run(["git", "-C", src, "add", "-A", "-f"], env=git.ENV)
    date = {"GIT_AUTHOR_DATE": PRISTINE_DATE,
            "GIT_COMMITTER_DATE": PRISTINE_DATE}
    step.run(["git", "-C", src, "commit", "-q", "-m",
              f"Python {release.version} release tarball\n\n"
              f"Unpacked from {source.origin(release, tarball)}."],
             env={**git.ENV, **date})
    step.run(["git", "-C", src, "tag", UPSTREAM_TAG], env=git.ENV)


def apply(src, patch, step):
    """`git am` one patch; a patch that does not apply exactly is an error."""
    step.note(f"$ git am {patch}")
    proc = subprocess.run(["git", "-C", str(src), "am", "-q",
                           "--committer-date-is-author-date", str(patch)],
                          capture_output=True, text=True, env=git.env())
    step.note(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        files = sorted(set(re.findall(
            r"^error: (?:patch failed: )?([^:\n]+):", proc.stderr, re.M)))
        raise Error(f"{steps.display(patch)} does not apply to "
                    f"{src.parent.name}: "
                    f"failing file(s): {', '.join(files) or 'unknown'}\n"
                    f"{proc.stderr.strip()}",
                    hint="rebase the patch onto this release in the "
                         "editable tree, then `make export`")
