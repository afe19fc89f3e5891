"""Virtual environments the tool makes for third-party packages from PyPI.

The tool itself needs only the stdlib; pytest, pyperf and matplotlib go
into environments under build/, each made by the interpreter it serves
and reused while it still imports what it was made for.
"""

import os
import re
import shutil
import subprocess

from pep522 import steps
from pep522.errors import Error


def ready(venv, python, module):
    """Is *venv* made from *python* with *module* importable?"""
    try:
        text = (venv / "pyvenv.cfg").read_text()
    except OSError:
        return False
    match = re.search(r"^executable\s*=\s*(.*)$", text, re.M)
    if not match or (os.path.realpath(match.group(1).strip())
                     != os.path.realpath(python)):
        return False
    proc = subprocess.run([venv / "bin" / "python", "-c", f"import {module}"],
                          stdin=subprocess.DEVNULL, capture_output=True)
    return proc.returncode == 0


def ensure(python, venv, requirements, module, log):
    """The python of a venv of *python* at *venv* with *requirements*."""
    if ready(venv, python, module):
        return venv / "bin" / "python"
    probe = subprocess.run([python, "-c", "import ensurepip, venv"],
                           stdin=subprocess.DEVNULL, capture_output=True)
    if probe.returncode:
        # Debian splits venv's pip bootstrap out of its python3.
        raise Error(f"{python} cannot make a venv (no ensurepip) for "
                    f"{' '.join(requirements)}",
                    hint="apt-get install python3-venv (on Debian; as root)")
    with steps.Step(f"venv: {steps.display(venv)} with "
                    f"{' '.join(requirements)}", log) as step:
        if venv.exists():
            shutil.rmtree(venv)   # ours, from another interpreter or broken
        step.run([python, "-m", "venv", venv])
        step.run([venv / "bin" / "python", "-m", "pip", "install",
                  "--disable-pip-version-check", *requirements],
                 env={"PIP_NO_INPUT": "1"})
        if not ready(venv, python, module):
            step.fail(f"{module} is not importable in {venv}")
    return venv / "bin" / "python"
