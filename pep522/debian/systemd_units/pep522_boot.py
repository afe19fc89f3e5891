"""The guest side of `make boot-systemd` (pep522/debian/boot_systemd.py).

Runs in the booted Debian image, from the pep522-*.service units.  Each
event is written to /dev/kmsg, so the console shows it with the kernel's
timestamp, beside "random: crng init done", as one line
"pep522-boot: EVENT"; the host reads the timeline from those lines.
"""

import os
import subprocess
import sys
import traceback

UNITS = ["pep522-early.service", "pep522-recipe.service",
         "systemd-random-seed.service"]


def mark(event):
    with open("/dev/kmsg", "w") as kmsg:
        kmsg.write(f"<5>pep522-boot: {event}\n")


def early():
    """os.urandom() before the RNG is ready: raise (PEP 522) or block."""
    mark("early start")
    try:
        os.urandom(16)
    except BlockingIOError as e:
        mark(f"early urandom raised errno={e.errno} {e.strerror}")
        traceback.print_exc()
    else:
        mark("early urandom returned")
    mark("early end")


def recipe():
    """ExecStart of the recipe unit: the RNG must be ready now."""
    mark("recipe start")
    mark(f"recipe urandom returned {len(os.urandom(16))} bytes")
    mark("recipe end")


def end():
    mark("multi-user reached")
    for argv in (["journalctl", "-b", "--no-pager", "-o", "short-monotonic",
                  *(f"--unit={unit}" for unit in UNITS)],
                 ["systemctl", "--no-pager", "--failed"]):
        print(f"$ {' '.join(argv)}", flush=True)
        subprocess.run(argv)
    mark("end")
    print("@@pep522 done", flush=True)   # pep522.boot.machine's end marker
    subprocess.run(["systemctl", "poweroff", "--no-block"])


if __name__ == "__main__":
    {"early": early, "recipe": recipe, "end": end}[sys.argv[1]]()
