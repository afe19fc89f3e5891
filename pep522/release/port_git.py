"""What a fresh port and an update of one share: the git side of a port.

The source release's pristine commit (tag upstream-<from>), rerere, running
`git am` or `git rebase` without an editor, going on while rerere resolves
every conflict, and the Error naming the patch a port stopped at.  `port`
(a fresh port) and `port_update` (SINCE=) both build on this module.
"""

import json
import pathlib
import subprocess
import tempfile

from pep522 import git, steps
from pep522.errors import Error
from pep522.release import source, tree


# The git operation a port runs, by the directory it keeps its state in.
OPERATIONS = {"am": "rebase-apply", "rebase": "rebase-merge"}


def from_tag(release):
    return f"{tree.UPSTREAM_TAG}-{release.version}"


def state_path(src):
    return src / ".git" / "pep522-port.json"


def in_progress(src):
    """The git operation stopped in *src* ("am", "rebase"), or None."""
    for operation, directory in OPERATIONS.items():
        if (src / ".git" / directory).exists():
            return operation
    return None


def check_can_start(target):
    """Raise Error unless *target*'s tree may be replaced or rebased."""
    src = target.src
    if in_progress(src):
        version = target.release.version
        raise Error(f"a port is in progress in {steps.display(src)}",
                    hint=f"finish it (`make port VERSION={version}"
                         " CONTINUE=1`) and export it, or abandon it with "
                         f"`git -C {steps.display(src)} "
                         f"{in_progress(src)} --abort`")
    if src.exists():
        tree.check_no_work(target)   # an earlier port must be exported


def add_pristine(src, release, tarball, step):
    """Commit *release*'s pristine tree into *src*'s repository, tagged."""
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
        files = pathlib.Path(tmp) / "src"
        tree.unpack(tarball, files, step)
        env = {**git.ENV, "GIT_DIR": str(src / ".git"),
               "GIT_WORK_TREE": str(files),
               "GIT_INDEX_FILE": f"{tmp}/index",
               "GIT_AUTHOR_DATE": tree.PRISTINE_DATE,
               "GIT_COMMITTER_DATE": tree.PRISTINE_DATE}
        step.run(["git", "add", "-A", "-f"], cwd=files, env=env)
        tree_id = subprocess.run(["git", "write-tree"], cwd=files,
                                 env={**git.env(), **env}, check=True,
                                 capture_output=True,
                                 text=True).stdout.strip()
        message = (f"Python {release.version} release tarball\n\n"
                   f"Unpacked from {source.origin(release, tarball)}.")
        commit = subprocess.run(["git", "commit-tree", tree_id, "-m",
                                 message], cwd=files,
                                env={**git.env(), **env}, check=True,
                                capture_output=True, text=True).stdout.strip()
    git.git(src, "tag", "-f", from_tag(release), commit)


def enable_rerere(target):
    """Record conflict resolutions where a new tree will find them."""
    cache = target.dir / "rr-cache"
    cache.mkdir(parents=True, exist_ok=True)
    link = target.src / ".git" / "rr-cache"
    if not link.is_symlink():
        link.symlink_to(cache)
    git.git(target.src, "config", "rerere.enabled", "true")
    git.git(target.src, "config", "rerere.autoUpdate", "true")


def run(src, operation, args, step, extra_env=None):
    """`git am` or `git rebase` with *args*; never opens an editor."""
    step.note(f"$ git {operation} {' '.join(map(str, args))}")
    proc = subprocess.run(["git", "-C", str(src), operation,
                           *map(str, args)], capture_output=True, text=True,
                          env=git.env(GIT_EDITOR="true", **(extra_env or {})))
    step.note(proc.stdout + proc.stderr)
    return proc


def finish(target, operation, proc, step):
    """Go on while rerere resolves every conflict; else stop, naming them."""
    src = target.src
    while proc.returncode != 0:
        unmerged = git.git(src, "diff", "--name-only",
                           "--diff-filter=U").split("\n")
        unmerged = [name for name in unmerged if name]
        staged = git.git(src, "diff", "--cached", "--name-only").strip()
        if unmerged or not staged or not in_progress(src):
            raise stopped(target, operation, proc, unmerged)
        step.note("rerere resolved every conflict: continuing")
        proc = run(src, operation, ["--continue"], step)
    state_path(src).unlink(missing_ok=True)
    count = git.git(src, "rev-list", "--count",
                    f"{tree.UPSTREAM_TAG}..HEAD").strip()
    steps.say(f"  {count} patches applied; check them against this "
              f"release (`git -C {steps.display(src)} diff "
              f"{tree.UPSTREAM_TAG}`), then run `make export "
              f"VERSION={target.release.version}`")


def current(src, operation):
    """What the stopped *operation* was applying, as the state names it."""
    state = json.loads(state_path(src).read_text())
    git_dir = src / ".git" / OPERATIONS[operation]
    if operation == "am":
        return state["names"][int((git_dir / "next").read_text()) - 1]
    done = (git_dir / "done").read_text().split("\n")
    line = [line for line in done if line and not line.startswith("#")][-1]
    for word in line.split()[1:3]:
        proc = subprocess.run(["git", "-C", str(src), "rev-parse", "-q",
                               "--verify", f"{word}^{{commit}}"],
                              capture_output=True, text=True, env=git.env())
        if proc.returncode == 0:
            return state["labels"].get(proc.stdout.strip(), line)
    return line


def stopped(target, operation, proc, unmerged):
    """The Error for a port stopped at a patch that did not apply."""
    src = target.src
    name = current(src, operation) if in_progress(src) else "(unknown)"
    version = target.release.version
    where = steps.display(src)
    if unmerged:
        what = "conflicts in: " + ", ".join(unmerged)
    else:
        what = "it does not apply:\n" + proc.stderr.strip()
    return Error(f"port to {version} stopped at {name}: {what}",
                 hint=f"finish it in {where} (edit, `git add`, then "
                      f"`git {operation} --continue` or `make port "
                      f"VERSION={version} CONTINUE=1`), then `make export "
                      f"VERSION={version}`; `git -C {where} status` shows "
                      "where it is")
