"""Running git with a neutral configuration.

Trees and patches must come out the same on every machine, whatever the
user's ~/.gitconfig says (diff.noprefix, diff.algorithm, format.*...), so
the tool's own git commands ignore the global and system configuration
and name their own identity.
"""

import os
import subprocess

from pep522.errors import Error

IDENTITY = ("cpython-pep522 tooling", "tooling@cpython-pep522.invalid")

ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_COMMITTER_NAME": IDENTITY[0],
    "GIT_COMMITTER_EMAIL": IDENTITY[1],
    "GIT_AUTHOR_NAME": IDENTITY[0],
    "GIT_AUTHOR_EMAIL": IDENTITY[1],
    "LC_ALL": "C",
}


def env(**extra):
    return {**os.environ, **ENV, **extra}


def git(repo, *args, check=True, extra_env=None):
    """Run git in *repo*; return its standard output as text."""
    proc = subprocess.run(["git", "-C", str(repo), *map(str, args)],
                          capture_output=True, text=True,
                          env=env(**(extra_env or {})))
    if check and proc.returncode != 0:
        raise Error(f"git {' '.join(map(str, args))} failed in {repo}:\n"
                    f"{proc.stderr.strip()}")
    return proc.stdout


def dirty_files(repo):
    """The files with uncommitted changes (or untracked) in *repo*."""
    out = git(repo, "status", "--porcelain", "--untracked-files=all")
    return [line[3:] for line in out.splitlines()]
