"""`make debian-packages`: Debian's own python3.13 binary packages, built
with the series by Debian's own tools, then tested where they run.

`make debian` shows that the series applies after Debian's patches and
builds with our configure.  A packager adopts a change once their own
packaging builds it, so this command does what they would do, in a
Debian chroot of the release's suite (trixie for 3.13.5):

1. fetch the source package on the host (pep522.debian.debian, through the
   private apt configuration), unpack it afresh with `dpkg-source -x`,
   put our DEP-3 export in debian/patches/pep522/ and append it to
   debian/patches/series (dpkg-source applies it before the build, with
   no fuzz), add a `dch --local +pep522` changelog entry;
2. in the build chroot: `apt-get build-dep`, then `dpkg-buildpackage -B`
   with the options of BUILD_OPTIONS (no PGO, LTO or test runs: see
   docs/packagers.md), under `nice -n 19`;
3. the test suite package (Architecture: all, so not built by -B, whose
   files the arch build has already installed) is packaged with the
   debhelper calls of Debian's binary-indep target, without the
   documentation build that target also does;
4. install the packages in a fresh chroot and run, against
   /usr/bin/python3.13, regrtest of the modules the series touches (none
   of the series' tests may be skipped) and the simulator checks of
   pep522.debian.debian; the same in a chroot with the suite's stock packages.

The .debs land in build/debian/<version>/debs/; a re-run reuses them
(and the chroots) while the source package, our patches and the build
options are the same.
"""

import hashlib
import json
import os
import shutil
import subprocess

from pep522 import config, options, steps
from pep522.builds import build
from pep522.checks import testing
from pep522.debian import chroot, debian
from pep522.errors import Error

BUILD_OPTIONS = f"nocheck nopgo nolto parallel={os.cpu_count()}"
PROFILES = "nocheck"
BUILD_COMMAND = ["nice", "-n", "19", "dpkg-buildpackage", "-B", "-us",
                 "-uc", f"-P{PROFILES}"]
CHANGELOG = "Apply the PEP 522 series (cpython-pep522, patches/{series})."
DEBEMAIL = {"DEBFULLNAME": "cpython-pep522",
            "DEBEMAIL": "cpython-pep522@localhost"}
# What runs the tests: the interpreter, its standard library and the
# test suite, from our build or from the archive.
INSTALL = ["{p}", "{p}-minimal", "lib{p}-minimal", "lib{p}-stdlib",
           "lib{p}-testsuite"]
TEST_TIMEOUT = {"patched": debian.SMOKE_TIMEOUT, "stock": 20}


class Packages:
    """Where the package build of a release lives, under build/debian/."""

    def __init__(self, release):
        self.release = release
        self.quilt = debian.DebianTarget(release).quilt
        self.dir = config.BUILD / "debian" / release.version / "packages"
        self.work = self.dir / "work"     # unpacked afresh for each build
        self.debs = self.dir / "debs"
        self.logs = self.dir / "logs"
        self.stamp = self.debs / "stamp.json"
        self.suite = release.debian_suites[0]
        self.source = release.debian_source

    def build_spec(self):
        return chroot.Spec(self.suite, include=("devscripts",),
                           tag=self.source)

    def install_names(self):
        return [name.format(p=self.source) for name in INSTALL]

    def test_spec(self, kind, debs=()):
        """The chroot with *kind* ("patched" or "stock") packages."""
        names = [] if kind == "patched" else self.install_names()
        return chroot.Spec(self.suite, variant="apt", include=tuple(names),
                           debs=tuple(debs), tag=f"{self.source}-{kind}")


def sources_of(dsc):
    """The .dsc and the files it lists (orig and debian tarballs)."""
    files, section = [dsc], False
    for line in dsc.read_text(errors="replace").splitlines():
        if line.startswith("Files:"):
            section = True
        elif section and line.startswith(" "):
            files.append(dsc.with_name(line.split()[-1]))
        elif section:
            break
    return files


def stamp_of(dsc, quilt):
    """What the packages are made of: Debian's files, our patches, the
    build options."""
    digest = hashlib.sha256()
    parts = [*sources_of(dsc), *sorted((quilt / debian.PATCH_SUBDIR)
                                       .iterdir())]
    for path in parts:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(json.dumps([BUILD_OPTIONS, BUILD_COMMAND,
                              TESTSUITE_SCRIPT]).encode())
    return digest.hexdigest()


def built(pkgs, stamp):
    """The .debs of an earlier build with this *stamp*, or None."""
    try:
        state = json.loads(pkgs.stamp.read_text())
    except (OSError, ValueError):
        return None
    debs = [pkgs.debs / name for name in state.get("debs", [])]
    if state.get("stamp") != stamp or not debs or not all(
            deb.is_file() for deb in debs):
        return None
    return debs


def unpack(pkgs, dsc, step):
    """A fresh source tree with our series appended; its path.

    Debian's rules are not made to build twice in one tree, so every
    build starts from `dpkg-source -x`.
    """
    if pkgs.work.exists():
        shutil.rmtree(pkgs.work)
    pkgs.work.mkdir(parents=True)
    src = pkgs.work / "src"
    step.run(["dpkg-source", "-x", dsc, src])
    patches = src / "debian" / "patches"
    shutil.copytree(pkgs.quilt / debian.PATCH_SUBDIR,
                    patches / debian.PATCH_SUBDIR)
    # Without the fragment's comment line: Debian's rules read the series
    # word by word and take every word after a "#" for a patch name.
    lines = (pkgs.quilt / "series").read_text().splitlines(keepends=True)
    with open(patches / "series", "a") as f:
        f.writelines(line for line in lines if not line.startswith("#"))
    return src


def dch_command(release):
    return ["dch", "--local", "+pep522", "--distribution", "UNRELEASED",
            CHANGELOG.format(series=release.series)]


def build_dep_command():
    return ["apt-get", "build-dep", "-y", "-q", "--arch-only",
            f"--build-profiles={PROFILES}", "./"]


# binary-indep of Debian's rules, for the test suite package only (its
# files are in debian/<package>/ after the arch build's install target).
TESTSUITE_SCRIPT = """set -e
p=lib{source}-testsuite
rm -rf debian/$p/usr/share/doc/$p
ln -s {source} debian/$p/usr/share/doc/$p
dh_installchangelogs -p$p
dh_link -p$p
dh_compress -p$p -X.py -X.cls -X.css -X.txt -X.json -X.js -Xobjects.inv
dh_fixperms -p$p
find debian/$p -type f ! -perm 755 | while read -r f; do
  if head -1 "$f" | grep -q '^#!'; then chmod 755 "$f"; fi
done
dh_installdeb -p$p
dh_gencontrol -p$p
dh_md5sums -p$p
dh_builddeb -p$p
"""


def build_packages(pkgs, dsc, stamp):
    """Build the packages in the build chroot; return the .debs."""
    root = chroot.ensure(pkgs.build_spec(), pkgs.logs / "chroot-build.log")
    with steps.Step(f"debian-packages: dpkg-source -x {dsc.name}, our "
                    "series appended", pkgs.logs / "unpack.log") as step:
        src = unpack(pkgs, dsc, step)
        chroot.run(root, dch_command(pkgs.release), step, binds=[pkgs.work],
                   cwd=str(src), env=DEBEMAIL)
    with steps.Step("debian-packages: apt-get build-dep in "
                    f"{root.name}", pkgs.logs / "build-dep.log") as step:
        chroot.run(root, ["apt-get", "update", "-q"], step)
        chroot.run(root, build_dep_command(), step, binds=[pkgs.work],
                   cwd=str(src), env={"DEBIAN_FRONTEND": "noninteractive"})
    with steps.Step(f"debian-packages: DEB_BUILD_OPTIONS=\"{BUILD_OPTIONS}\" "
                    f"{' '.join(BUILD_COMMAND[3:])} (30-70 minutes on 2 "
                    "cores)", pkgs.logs / "build.log") as step:
        env = {"DEB_BUILD_OPTIONS": BUILD_OPTIONS}
        chroot.run(root, BUILD_COMMAND, step, binds=[pkgs.work],
                   cwd=str(src), env=env)
        chroot.run(root, ["/bin/sh", "-c", TESTSUITE_SCRIPT.format(
            source=pkgs.source)], step, binds=[pkgs.work], cwd=str(src),
            env=env)
    if pkgs.debs.exists():
        shutil.rmtree(pkgs.debs)
    pkgs.debs.mkdir(parents=True)
    debs = []
    for path in sorted(pkgs.work.iterdir()):
        if path.suffix in (".deb", ".buildinfo", ".changes"):
            shutil.move(path, pkgs.debs / path.name)
            if path.suffix == ".deb":
                debs.append(pkgs.debs / path.name)
    pkgs.stamp.write_text(json.dumps(
        {"stamp": stamp, "dsc": dsc.name,
         "debs": [deb.name for deb in debs]}, indent=1))
    return debs


def deb_version(deb):
    """The package name and version of a .deb, from its file name."""
    name, version = deb.name.split("_")[:2]
    return name, version


# --- Tests in a chroot -------------------------------------------------------

class Installed:
    """/usr/bin/python3.X in a chroot, as testing.regrtest wants it."""

    def __init__(self, pkgs, kind, root):
        self.name = f"{pkgs.source} {kind}"
        self.python = f"/usr/bin/{pkgs.source}"
        self.root = root
        self.kind = kind

    def wrap(self, argv, env=None):
        return chroot.command(self.root, argv, binds=[config.ROOT],
                              cwd=str(config.ROOT), env=env)

    def versions(self, packages):
        """["package version", ...] of the installed *packages*."""
        proc = subprocess.run(self.wrap(
            ["dpkg-query", "-W", "-f", "${Package} ${Version}\n",
             *packages]), capture_output=True, text=True)
        if proc.returncode:
            raise Error(f"dpkg-query in {self.root} failed: {proc.stderr}")
        return proc.stdout.splitlines()


def check_installed(pkgs, installed, series):
    """regrtest and the simulator checks; a dict of results.

    *series* are the series' test classes (testing.series_classes); in
    the patched packages each must run and pass, none skipped.
    """
    results = {"packages": installed.versions(pkgs.install_names())}
    log = pkgs.logs / f"{installed.kind}-regrtest.log"
    ours = installed.kind == "patched"
    try:
        testing.regrtest(installed, testing.TOUCHED_TESTS, log, extra=["-v"],
                         wrap=lambda argv, env: installed.wrap(
                             argv, env={**env, "HOME": "/tmp"}),
                         where=" (installed, in a chroot)",
                         series=series if ours else None)
        results["regrtest"] = "passed"
    except Error:
        results["regrtest"] = f"FAILED (log: {steps.display(log)})"
    text = log.read_text(errors="replace")
    results["regrtest_summary"] = testing.summary_lines(text)
    found = testing.series_run(text, series, testing.TOUCHED_TESTS)
    results["series_tests"] = found.line()
    results["series_problems"] = found.problems
    results["series_details"] = found.details()
    with steps.Step(f"debian-packages: {installed.name}: simulator checks",
                    pkgs.logs / f"{installed.kind}-smoke.log") as step:
        results["smoke"] = debian.smoke(
            installed.python, step, runner=installed.python,
            wrap=installed.wrap, timeout=TEST_TIMEOUT[installed.kind])
    return results


def test_packages(pkgs, debs):
    """Install ours and the archive's in fresh chroots; test both."""
    wanted = set(pkgs.install_names())
    ours = [deb for deb in debs if deb_version(deb)[0] in wanted]
    series = testing.series_classes(
        build.prepare(config.Target(pkgs.release)).src)
    results = {}
    for kind, spec in (("patched", pkgs.test_spec("patched", ours)),
                       ("stock", pkgs.test_spec("stock"))):
        root = chroot.ensure(spec, pkgs.logs / f"chroot-{kind}.log")
        results[kind] = check_installed(pkgs, Installed(pkgs, kind, root),
                                        series)
    return results


def summary(pkgs, debs, results):
    lines = [f"packages: {len(debs)} in {steps.display(pkgs.debs)}/ "
             f"(DEB_BUILD_OPTIONS=\"{BUILD_OPTIONS}\", "
             f"{' '.join(BUILD_COMMAND[3:])})"]
    for kind, result in results.items():
        lines.append(f"{kind}: {', '.join(result['packages'])}")
        lines.append(f"  regrtest {' '.join(testing.TOUCHED_TESTS)} -v: "
                     f"{result['regrtest']}; "
                     + "; ".join(result["regrtest_summary"]))
        lines.append(f"  {result['series_tests']}"
                     + "".join(f"; {p}" for p in result["series_problems"]))
        for line in result["series_details"]:
            lines.append(f"    {line}")
        for title, ok in result["smoke"]:
            lines.append(f"  {'ok  ' if ok else 'FAIL'} {title}")
    return lines


def passed(results):
    """Every check of the patched packages passed, and stock's regrtest
    (which runs none of the series' tests: it is not asserted on)."""
    patched = results["patched"]
    return (patched["regrtest"] == "passed"
            and not patched["series_problems"]
            and all(ok for _, ok in patched["smoke"])
            and results["stock"]["regrtest"] == "passed")


def ensure_packages(release):
    """The .debs of *release* with our series: built, or reused."""
    pkgs = Packages(release)
    chroot.require_root("make debian-packages")
    # dpkg-source unpacks the source package on the host.
    build.install_debian_packages(
        build.missing_debian_packages(["dpkg-dev"]), pkgs.logs / "deps.log")
    names = debian.export_quilt(release, pkgs.quilt)
    steps.say(f"debian-packages: {len(names)} patches exported to "
              f"{steps.display(pkgs.quilt)}/")
    with steps.Step(f"debian-packages: fetching {pkgs.source} "
                    f"({pkgs.suite})", pkgs.logs / "fetch.log") as step:
        dsc = debian.fetch(release, step)
        debian.check_orig(dsc, release)
    stamp = stamp_of(dsc, pkgs.quilt)
    debs = built(pkgs, stamp)
    if debs:
        steps.say(f"  {steps.display(pkgs.debs)}: up to date "
                  f"({len(debs)} packages)")
    else:
        debs = build_packages(pkgs, dsc, stamp)
    return pkgs, debs


def run(args):
    release = config.release(args.version)
    pkgs, debs = ensure_packages(release)
    if args.no_test:
        for deb in debs:
            steps.say(steps.display(deb))
        return 0
    results = test_packages(pkgs, debs)
    lines = summary(pkgs, debs, results)
    (pkgs.dir / "summary.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        steps.say(line)
    return 0 if passed(results) else 1


def add_parser(sub):
    parser = sub.add_parser(
        "debian-packages", help="build Debian's python3.13 packages with "
        "the series in a chroot, install and test them",
        description="Build the binary packages of Debian's own source "
                    "package with the series appended to its quilt series, "
                    "with dpkg-buildpackage in a Debian chroot, then install "
                    "them in a fresh chroot and test them there, beside the "
                    "archive's stock packages.")
    options.add_release(parser, tarball=False)
    parser.add_argument("--no-test", action="store_true",
                        help="build (or reuse) the packages only")
    parser.set_defaults(func=run)
    return parser
