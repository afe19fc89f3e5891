"""Long steps: one progress line on the terminal, the full output in a log.

Every step writes everything its commands print to a log file.  On the
terminal it prints what it is doing, where the log is and, at the end,
how long it took.  A failing command raises Error quoting the last lines
of the log, so the user sees why without opening it.
"""

import os
import shlex
import subprocess
import time

from pep522.config import ROOT
from pep522.errors import Error

TAIL_LINES = 25


def display(path):
    """*path* relative to the project root when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def say(message):
    print(message, flush=True)


def tail(path, lines=TAIL_LINES):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Step:
    """A context manager for one long step writing to *log*."""

    def __init__(self, title, log):
        self.title = title
        self.log = log

    def __enter__(self):
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        self.start = time.monotonic()
        say(f"{self.title} (log: {display(self.log)})")
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            elapsed = time.monotonic() - self.start
            minutes, seconds = divmod(round(elapsed), 60)
            took = f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
            say(f"  done in {took}")
        return False

    def note(self, text):
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n")

    def run(self, cmd, cwd=None, env=None, check=True):
        """Run *cmd* with its output appended to the log."""
        cmd = [str(c) for c in cmd]
        self.note(f"$ {shlex.join(cmd)}" + (f"  (in {cwd})" if cwd else ""))
        full_env = None if env is None else {**os.environ, **env}
        with open(self.log, "a", encoding="utf-8") as f:
            try:
                proc = subprocess.run(cmd, cwd=cwd, env=full_env,
                                      stdin=subprocess.DEVNULL, stdout=f,
                                      stderr=subprocess.STDOUT)
            except FileNotFoundError:
                raise Error(f"{self.title}: {cmd[0]} is not "
                            "installed") from None
        if check and proc.returncode != 0:
            self.fail(f"`{shlex.join(cmd)}` exited with status "
                      f"{proc.returncode}")
        return proc.returncode

    def fail(self, what, hint=None):
        raise Error(f"{self.title} failed: {what}\n"
                    f"last lines of {display(self.log)}:\n"
                    f"{tail(self.log)}", hint=hint)
