"""`make port VERSION=3.14.7 SINCE=<rev>`: bring an earlier port up to date.

When the source series changes after a release was ported (review fixes
rewrite its patches, new patches join it), porting it again from scratch
would throw away the hand work of the earlier port: resolved conflicts
(rerere replays those), but also the changes made for the new release
alone and the edited messages.  This carries over only what changed in
the source series since the project's git revision <rev>:

1. in a temporary worktree of the new release's repository, the source
   series as it was at <rev> and as it is now are each applied to the
   source release's pristine commit (tag upstream-<from>);
2. for each patch that changed, a commit holds its change alone: the new
   version of the patch's tree, on top of the old version of the patch
   applied after the new versions of the patches before it;
3. the ported series is rebased onto `upstream` with those changes folded
   into the matching patches (`fixup -C`, which takes the new message) and
   new patches picked at the end, as `git rebase -i` would do by hand.

Patches are matched by position: the earlier port has one commit per
patch of the old series, in the same order.  Conflicts stop the rebase
like a fresh port stops `git am`.
"""

import json
import pathlib
import subprocess
import tempfile

from pep522 import config, git, steps
from pep522.errors import Error
from pep522.release import port_git, series, source, tree


def old_series(series_dir, rev, dest):
    """Write *series_dir* as it was at git revision *rev* into *dest*."""
    def show(name):
        proc = subprocess.run(["git", "-C", str(series_dir), "show",
                               f"{rev}:./{name}"], capture_output=True,
                              text=True, env=git.env())
        if proc.returncode != 0:
            raise Error(f"cannot read {steps.display(series_dir)}/{name} at "
                        f"{rev}: {proc.stderr.strip()}",
                        hint="give SINCE= the project revision whose series "
                             "the earlier port was made from")
        return proc.stdout
    dest.mkdir()
    (dest / "series").write_text(show("series"))
    for line in (dest / "series").read_text().splitlines():
        name = line.split("#", 1)[0].split()
        if name:
            (dest / name[0]).write_text(show(name[0]))
    return series.read(dest)


def chain(work, base, series_dir, names, step):
    """Apply the series to *base* in the worktree *work*; its commits."""
    step.run(["git", "-C", work, "checkout", "-q", "--detach", base],
             env=git.ENV)
    if names:
        step.run(["git", "-C", work, "am", "-q",
                  "--committer-date-is-author-date",
                  *[series_dir / name for name in names]], env=git.ENV)
    return git.git(work, "rev-list", "--reverse",
                   f"{base}..HEAD").split()


def change(work, old, new, before, name, step):
    """A commit holding how patch *new* differs from *old*, or None.

    *before* is the commit of the new series the patch applies to.
    """
    step.run(["git", "-C", work, "checkout", "-q", "--detach", before],
             env=git.ENV)
    if step.run(["git", "-C", work, "cherry-pick", "--allow-empty", old],
                env=git.ENV, check=False) != 0:
        step.run(["git", "-C", work, "cherry-pick", "--abort"], env=git.ENV)
        raise Error(f"the old {name} does not apply on top of the new "
                    "patches before it, so its change cannot be told apart",
                    hint="port the series afresh: `make port VERSION=...` "
                         "without SINCE")
    message = git.git(work, "log", "-1", "--format=%B", new)
    same_tree = (git.git(work, "rev-parse", "HEAD^{tree}")
                 == git.git(work, "rev-parse", f"{new}^{{tree}}"))
    if same_tree and git.git(work, "log", "-1", "--format=%B") == message:
        return None
    author = git.git(work, "log", "-1", "--format=%an%n%ae%n%aI",
                     new).split("\n")
    return git.git(work, "commit-tree", f"{new}^{{tree}}", "-p", "HEAD",
                   "-m", message.rstrip("\n"), extra_env={
                       "GIT_AUTHOR_NAME": author[0],
                       "GIT_AUTHOR_EMAIL": author[1],
                       "GIT_AUTHOR_DATE": author[2]}).strip()


def todo(work, ported, old, new, names, base, step):
    """The rebase todo list and what each of its commits is."""
    lines, labels = [], {}
    for i, commit in enumerate(ported):
        lines.append(f"pick {commit}")
        labels[commit] = f"the port of {names[i]}"
        before = new[i - 1] if i else base
        delta = change(work, old[i], new[i], before, names[i], step)
        if delta:
            lines.append(f"fixup -C {delta}")
            labels[delta] = f"the change to {names[i]}"
    for commit, name in zip(new[len(old):], names[len(old):]):
        lines.append(f"pick {commit}")
        labels[commit] = name
    return lines, labels


def update(to_release, from_release, rev):
    """Carry the changes of *from_release*'s series since *rev* over."""
    target = config.Target(to_release)
    src = target.src
    if not src.exists():
        raise Error(f"{steps.display(src)} does not exist: there is no "
                    "earlier port to update",
                    hint=f"make it with `make port "
                         f"VERSION={to_release.version}` (without SINCE)")
    port_git.check_can_start(target)
    from_dir = from_release.series_dir
    names = series.read(from_dir)
    from_tarball = source.obtain(from_release,
                                 log=target.logs / "obtain-from.log")
    with steps.Step(f"port: the changes of {steps.display(from_dir)} since "
                    f"{rev} onto {steps.display(src)} with git rebase",
                    target.logs / "port.log") as step:
        port_git.add_pristine(src, from_release, from_tarball, step)
        port_git.enable_rerere(target)
        base = port_git.from_tag(from_release)
        ported = git.git(src, "rev-list", "--reverse",
                         f"{tree.UPSTREAM_TAG}..HEAD").split()
        with tempfile.TemporaryDirectory(dir=target.dir) as tmp:
            tmp = pathlib.Path(tmp)
            old_names = old_series(from_dir, rev, tmp / "old")
            if len(ported) != len(old_names) or len(names) < len(old_names):
                raise Error(f"the port has {len(ported)} patches, the series"
                            f" had {len(old_names)} at {rev} and has "
                            f"{len(names)} now: they cannot be matched",
                            hint="port the series afresh: `make port "
                                 f"VERSION={to_release.version}`")
            work = tmp / "work"
            step.run(["git", "-C", src, "worktree", "add", "-q", "--detach",
                      work, base], env=git.ENV)
            try:
                old = chain(work, base, tmp / "old", old_names, step)
                new = chain(work, base, from_dir, names, step)
                lines, labels = todo(work, ported, old, new, names, base,
                                     step)
            finally:
                step.run(["git", "-C", src, "worktree", "remove", "--force",
                          work], env=git.ENV)
            (tmp / "todo").write_text("\n".join(lines) + "\n")
            port_git.state_path(src).write_text(
                json.dumps({"labels": labels}))
            proc = port_git.run(src, "rebase", [
                "-i", "--committer-date-is-author-date", tree.UPSTREAM_TAG],
                step, extra_env={"GIT_SEQUENCE_EDITOR":
                                 f"cp {tmp / 'todo'}"})
        port_git.finish(target, "rebase", proc, step)
