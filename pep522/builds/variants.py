"""The build variants (variants.toml): what each configures and checks.

A variant is data: configure options, the environment its builds and runs
need, the compiler support it needs, and the checks run in it.  The build
(pep522/builds/build.py) and the checks (pep522/checks/variant_checks.py)
read it; no code branches on a variant's name.
"""

import dataclasses
import os
import shlex
import subprocess
import tempfile
import tomllib
from pathlib import Path

from pep522 import config
from pep522.errors import Error

VARIANTS = config.ROOT / "variants.toml"


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    description: str
    configure: tuple
    env: dict
    sanitizer_logs: tuple
    compiler_probe: tuple
    compiler_packages: tuple
    regrtest: tuple
    timeout_factor: float
    checks: tuple

    def environment(self, src):
        """The variables for configure, make and runs of a build in *src*."""
        return {key: value.replace("{src}", str(src))
                for key, value in self.env.items()}


@dataclasses.dataclass(frozen=True)
class Regrtest:
    name: str
    tests: tuple
    match: tuple


def load(path=None):
    """({name: Variant}, {name: Regrtest}) from variants.toml."""
    with open(path or VARIANTS, "rb") as f:
        data = tomllib.load(f)
    variants = {
        name: Variant(
            name=name,
            description=v["description"],
            configure=tuple(v["configure"]),
            env=dict(v["env"]),
            sanitizer_logs=tuple(v["sanitizer-logs"]),
            compiler_probe=tuple(v["compiler-probe"]),
            compiler_packages=tuple(v["compiler-packages"]),
            regrtest=tuple(v["regrtest"]),
            timeout_factor=float(v["timeout-factor"]),
            checks=tuple(v["checks"]))
        for name, v in data["variants"].items()}
    regrtests = {name: Regrtest(name, tuple(r["tests"]), tuple(r["match"]))
                 for name, r in data["regrtest"].items()}
    return variants, regrtests


def get(name, path=None):
    """The variant *name*; None for the default build (name "")."""
    if not name:
        return None
    variants, _ = load(path)
    try:
        return variants[name]
    except KeyError:
        known = ", ".join(variants)
        raise Error(f"unknown variant {name!r}: variants.toml has {known}",
                    hint=f"use one of them, e.g. make VARIANT="
                         f"{next(iter(variants))}") from None


def configure_args(target):
    """The configure options *target*'s variant adds (none by default)."""
    variant = get(target.variant)
    return list(variant.configure) if variant else []


def environment(target):
    """The environment *target*'s variant builds and runs with."""
    variant = get(target.variant)
    return variant.environment(target.src) if variant else {}


PROBE = '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n'


def check_compiler(target):
    """Fail, saying why, if $CC cannot build and run the variant here."""
    variant = get(target.variant)
    if not variant or not variant.compiler_probe:
        return
    cc = shlex.split(os.environ.get("CC", "cc"))
    flags = list(variant.compiler_probe)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        source.write_text(PROBE)
        program = Path(tmp) / "probe"
        for cmd in ([*cc, *flags, source, "-o", program], [program]):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode == 0:
                continue
            why = "; ".join(proc.stderr.strip().splitlines()[-3:])
            raise Error(
                f"variant {variant.name} cannot be built here: "
                f"{shlex.join(cc + flags)} could not build and run a test "
                f"program ({why or f'exit status {proc.returncode}'})",
                hint=f"apt-get install {' '.join(variant.compiler_packages)}"
                     ", or name a compiler that has it, e.g. "
                     "CC=clang-14 make ...")
