"""The benchmark cases, and the pyperf script that runs them.

`python3 -m pep522 bench` runs this file as a script with the Python of
each virtual environment under build/bench/ (where pyperf is installed):

    build/bench/venv-3.13.5/bin/python -P pep522/bench/bench_cases.py \\
        --case token_bytes --append build/bench/3.13.5/patched.json

The tool itself only imports the CASES table (no pyperf there): it uses
the same setup and statement to count getrandom() calls and instructions.
"""

import dataclasses
import sys


@dataclasses.dataclass(frozen=True)
class Case:
    id: str             # for --case
    name: str           # the pyperf benchmark name, and the table's row
    setup: str = ""     # micro case: timeit setup ...
    stmt: str = ""      # ... and statement, one operation
    code: str = ""      # startup case: `python -c CODE`

    @property
    def startup(self):
        return not self.stmt

    def program(self, operations):
        """Python code doing setup then *operations* operations."""
        if self.startup:
            return self.code
        return (f"{self.setup}\n"
                f"for _ in range({operations}):\n"
                f"    {self.stmt}\n")


CASES = [
    Case("urandom16", "os.urandom(16)", "import os", "os.urandom(16)"),
    Case("urandom4096", "os.urandom(4096)", "import os", "os.urandom(4096)"),
    Case("token_bytes", "secrets.token_bytes(32)",
         "from secrets import token_bytes", "token_bytes(32)"),
    Case("token_hex", "secrets.token_hex(16)",
         "from secrets import token_hex", "token_hex(16)"),
    Case("token_urlsafe", "secrets.token_urlsafe(16)",
         "from secrets import token_urlsafe", "token_urlsafe(16)"),
    Case("choice", "secrets.choice(seq of 64)",
         "from secrets import choice; seq = list(range(64))", "choice(seq)"),
    Case("randbelow", "secrets.randbelow(10**6)",
         "from secrets import randbelow; n = 10**6", "randbelow(n)"),
    Case("randbits", "secrets.randbits(64)",
         "from secrets import randbits", "randbits(64)"),
    Case("sysrandom", "SystemRandom().random()",
         "import random; r = random.SystemRandom()", "r.random()"),
    Case("random", "random.random() (control)",
         "from random import random", "random()"),
    Case("startup", "startup: -c pass", code="pass"),
    Case("import_secrets", "startup: import secrets", code="import secrets"),
    Case("import_multiprocessing", "startup: import multiprocessing",
         code="import multiprocessing"),
]

BY_ID = {case.id: case for case in CASES}


def main():
    import pyperf

    def forward(cmd, args):
        for case in args.case:
            cmd.extend(("--case", case))

    # -P: this script's directory (pep522/) must not shadow the stdlib.
    runner = pyperf.Runner(program_args=("-P", sys.argv[0]),
                           add_cmdline_args=forward)
    runner.argparser.add_argument("--case", action="append", default=[],
                                  choices=sorted(BY_ID),
                                  help="run only this case (repeatable)")
    args = runner.parse_args()
    # Startup cases run the interpreter itself, not the venv's wrapper.
    python = getattr(sys, "_base_executable", sys.executable)
    runner.metadata["bench_python"] = python
    for case in CASES:
        if args.case and case.id not in args.case:
            continue
        if case.startup:
            runner.bench_command(case.name, [python, "-c", case.code])
        else:
            runner.timeit(case.name, stmt=case.stmt, setup=case.setup)


if __name__ == "__main__":
    main()
