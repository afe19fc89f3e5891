"""The command line: one subcommand per step.

    python3 -m pep522 build      # obtain, tree, configure, make
    python3 -m pep522 test       # build, then our suite and regrtest

The Makefile is a thin front door to these.
"""

import argparse
import os
import sys

from pep522 import config, options, steps
from pep522.bench import bench
from pep522.boot import boot
from pep522.builds import build, cross, variants
from pep522.checks import testing, variant_checks
from pep522.debian import boot_systemd, debian, debian_packages
from pep522.errors import Error
from pep522.impact import impact
from pep522.release import export, port, source
from pep522.ship import buildroot, dist, docs, embedded_check, yocto
from pep522.sim import rngsim


def target_of(args):
    variants.get(args.variant)  # an unknown name is an error here
    return config.Target(config.release(args.version), stock=args.stock,
                         variant=args.variant)


def prepare(args):
    return build.prepare(target_of(args), args.tarball)


def cmd_obtain(args):
    target = target_of(args)
    path = source.obtain(target.release, args.tarball,
                         log=target.logs / "obtain.log")
    steps.say(f"{path}: verified ({source.origin(target.release, path)})")


def cmd_tree(args):
    target = prepare(args)
    steps.say(f"{steps.display(target.src)}: up to date")


def cmd_checkout(args):
    target = prepare(args)
    series_dir = steps.display(target.release.series_dir)
    steps.say(f"{steps.display(target.src)} is ready to edit: commit your "
              f"changes there (one topic per commit), then run `make export` "
              f"to regenerate {series_dir}/.")


def cmd_export(args):
    target = target_of(args)
    names = export.export(target)
    series_dir = steps.display(target.release.series_dir)
    steps.say(f"{series_dir}/series: {len(names)} patches")
    for name in names:
        steps.say(f"  {name}")


def cmd_deps(args):
    build.ensure_build_deps(config.BUILD / "logs" / "deps.log")
    steps.say("build dependencies: all installed")


def cmd_build(args):
    target = prepare(args)
    build.build(target, args.configure_args, args.prefix)
    steps.say(steps.display(build.link_default(target)))


def cmd_install(args):
    target = prepare(args)
    python = build.install(target, args.prefix, args.configure_args)
    steps.say(python)


def cmd_test(args):
    target = prepare(args)
    build.build(target, args.configure_args)
    build.link_default(target)
    # The end-to-end suite runs stock upstream side by side with ours.
    stock = config.Target(target.release, stock=True)
    build.built(stock, args.tarball, args.configure_args)
    return testing.run_pytest(target, args.pytest_args)


def cmd_test_full(args):
    target = prepare(args)
    build.build(target, args.configure_args)
    # Upstream's --fast-ci, verbose, so that the series' test classes are
    # checked too: every one ran and passed, none skipped (not in stock,
    # which has none).
    series = None if target.stock else testing.series_classes(target.src)
    return testing.regrtest(target, [], target.logs / "regrtest-full.log",
                            extra=[*testing.FAST_CI, "-v"], series=series,
                            python_opts=testing.FAST_CI_PYTHON)


def add_target_options(parser, configure=False):
    options.add_release(parser)
    parser.add_argument("--stock", action="store_true",
                        help="the release without the series, in "
                        "build/<version>-stock")
    parser.add_argument("--variant", default="",
                        help="a build variant of variants.toml, in "
                        "build/<version>-<variant>")
    if configure:
        parser.add_argument("--configure-args", default="",
                            help="extra options for CPython's configure")
        parser.add_argument("--prefix", help="installation prefix "
                            f"(default: {build.DEFAULT_PREFIX})")


COMMANDS = [
    ("obtain", cmd_obtain, "fetch and verify the upstream tarball", False),
    ("tree", cmd_tree, "unpack and patch build/<version>/src", False),
    ("checkout", cmd_checkout, "make the editable tree", False),
    ("export", cmd_export, "regenerate the series from the tree", False),
    ("deps", cmd_deps, "install the build dependencies (Debian)", False),
    ("build", cmd_build, "configure and make (the default)", True),
    ("install", cmd_install, "make install into --prefix", True),
    ("test", cmd_test, "build, then run the test suite", True),
    ("test-full", cmd_test_full, "CPython's whole regrtest", True),
]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m pep522",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text, configure in COMMANDS:
        p = sub.add_parser(name, help=help_text)
        add_target_options(p, configure)
        p.set_defaults(func=func)
    sub.choices["test"].add_argument("pytest_args", nargs="*",
                                     help="extra arguments for pytest")
    for module in (port, rngsim, boot, boot_systemd, cross, bench, debian,
                   debian_packages, docs, dist, impact, variant_checks,
                   yocto, buildroot, embedded_check):
        module.add_parser(sub)
    args = parser.parse_args(argv)
    if getattr(args, "cpython_git", None):
        # The option and the make variable are one setting, read by
        # source.obtain wherever a release is obtained.
        os.environ["CPYTHON_GIT"] = args.cpython_git
    try:
        return args.func(args) or 0
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"fix: {e.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
