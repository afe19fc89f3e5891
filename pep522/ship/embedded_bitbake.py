"""A real BitBake parse of OE-core with meta-pep522, offline.

`bitbake -e python3` with OE-core's branch, BitBake's matching branch
(embedded.toml) and our layer in a build directory, no network:
SRC_URI must list their patches and then ours, in order.  BitBake refuses
to run as root, so as root it runs as nobody (setpriv) in a directory
under /tmp that nobody can write (BASE).  It needs the en_US.UTF-8
locale: when the system has none, one is compiled into that directory
(localedef, LOCPATH).  OE-core's sanity check wants its HOSTTOOLS on
PATH: what is missing is reported with the apt-get command.
"""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile

from pep522.ship import embedded_tools

TIMEOUT = 3600
SCRIPT = """\
export HOME={base}/home PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
export LOCPATH={base}/locale BB_ENV_PASSTHROUGH_ADDITIONS=LOCPATH
mkdir -p "$HOME"
cd {base}
fresh=$(test -d build/conf || echo yes)
. oe/oe-init-build-env build bitbake > /dev/null
if [ -n "$fresh" ]; then
    printf '%s\\n' 'BB_NO_NETWORK = "1"' 'CONNECTIVITY_CHECK_URIS = ""' \\
        >> conf/local.conf
    echo 'BBLAYERS += "{base}/meta-pep522"' >> conf/bblayers.conf
fi
bitbake -e python3 > {base}/env.txt
"""
HOSTTOOLS = re.compile(r"HOSTTOOLS\) appear to be unavailable in PATH.*?:"
                       r"\s*\n\s*(.+)")


def has_locale():
    out = subprocess.run(["locale", "-a"], capture_output=True,
                         text=True).stdout.lower().split()
    return "en_us.utf8" in out or "en_us.utf-8" in out


# Kept after a run, to look into (build/ has BitBake's own logs); the
# trees are made anew each run, the build directory is reused.
BASE = pathlib.Path(tempfile.gettempdir()) / "pep522-bitbake"


def parse(target, repo, bitbake_repo, layer, expected, work, step,
          problems):
    """Parse; add what is wrong to *problems*; return a summary line."""
    base = BASE / re.sub(r"[^\w.-]+", "-", target.name)
    for name in ("oe", "bitbake", "meta-pep522", "locale", "env.txt"):
        path = base / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    base.mkdir(parents=True, exist_ok=True)
    return _parse(target, repo, bitbake_repo, layer, expected, work, step,
                  problems, str(base))


def _parse(target, repo, bitbake_repo, layer, expected, work, step,
           problems, base):
    base_path = pathlib.Path(base)
    embedded_tools.archive(repo, target.branch, base_path / "oe")
    embedded_tools.archive(bitbake_repo, target.bitbake,
                           base_path / "bitbake")
    shutil.copytree(layer, base_path / "meta-pep522")
    (base_path / "locale").mkdir()
    if not has_locale():
        embedded_tools.run(step, ["localedef", "-i", "en_US", "-f", "UTF-8",
                                  base_path / "locale" / "en_US.UTF-8"])
    (base_path / "run.sh").write_text(SCRIPT.format(base=base))
    command = ["bash", f"{base}/run.sh"]
    if os.geteuid() == 0:
        # BitBake refuses root.
        subprocess.run(["chown", "-R", "nobody:", base], check=True)
        os.chmod(BASE, 0o755)
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                   "--clear-groups", *command]
    step.note(f"$ {' '.join(command)}  (bitbake {target.bitbake}, "
              f"OE-core {target.branch})")
    try:
        proc = subprocess.run(command, capture_output=True, text=True,
                              errors="replace", timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        problems.append(f"bitbake -e python3 took over {TIMEOUT}s")
        return "bitbake -e python3: timed out"
    output = proc.stdout + proc.stderr
    step.note(output)
    env_file = base_path / "env.txt"
    env = env_file.read_text(errors="replace") if env_file.exists() else ""
    (work / "bitbake-env.txt").write_text(env)
    if proc.returncode != 0:
        problems.append(failure(output))
        return f"bitbake -e python3: exit {proc.returncode}"
    return judge(env, expected, target, problems)


def failure(output):
    """What a failed `bitbake -e` says, in one line."""
    missing = HOSTTOOLS.search(output)
    if missing:
        tools = missing.group(1).split()
        return (f"bitbake: HOSTTOOLS lacks {' '.join(tools)} "
                f"(apt-get install {' '.join(tools)})")
    tail = [line for line in output.splitlines() if line.strip()]
    return "bitbake -e python3 failed: " + " / ".join(tail[-3:])


def judge(env, expected, target, problems):
    """Check `bitbake -e python3` output *env*: SRC_URI lists the patches
    *expected* in order, PV is the target's release."""
    src_uri = re.search(r'^SRC_URI="(.*)"$', env, re.M)
    pv = re.search(r'^PV="(.*)"$', env, re.M)
    listed = ([m.group(1).rsplit("/", 1)[-1] for m in
               embedded_tools.PATCH_URI.finditer(src_uri.group(1))]
              if src_uri else [])
    if listed != expected:
        problems.append(f"bitbake's SRC_URI lists the patches "
                        f"{listed}, expected {expected}")
    if not pv or pv.group(1) != target.version:
        problems.append(f"bitbake's PV is {pv.group(1) if pv else None}, "
                        f"not {target.version}")
    return (f"bitbake {target.bitbake} -e python3: SRC_URI has "
            f"{len(listed)} patches, ours last, PV "
            f"{pv.group(1) if pv else '?'}")
