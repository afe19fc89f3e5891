"""What the embedded checks share (embedded_check, embedded_bitbake).

A branch of a target's git repository unpacked, a command run with its
output in a step's log, and the patch names of a recipe's SRC_URI.
"""

import os
import re
import subprocess

from pep522 import git
from pep522.errors import Error

PATCH_URI = re.compile(r"file://([^;\s]+\.(?:patch|diff))(;\S*)?")


def archive(repo, branch, dest, paths=()):
    dest.mkdir(parents=True, exist_ok=True)
    data = subprocess.run(["git", "-C", str(repo), "archive",
                           f"refs/heads/{branch}", *paths],
                          capture_output=True, check=True,
                          env=git.env()).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)


def run(step, cmd, cwd=None, env=None):
    """Run *cmd* with its output in the step's log; return the output
    (what it says is judged by the caller, whatever its exit status)."""
    cmd = [str(c) for c in cmd]
    step.note(f"$ {' '.join(cmd)}" + (f"  (in {cwd})" if cwd else ""))
    try:
        proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})},
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace")
    except FileNotFoundError:
        raise Error(f"{cmd[0]} is not installed",
                    hint=f"apt-get install {cmd[0]}") from None
    step.note(proc.stdout + proc.stderr)
    if proc.returncode:
        step.note(f"(exit status {proc.returncode})")
    return proc.stdout + proc.stderr
