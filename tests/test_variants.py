"""The plumbing of `make test-variants`, in seconds.

Building and checking the variants takes hours (docs/variants.md), so it is
not part of `make test`; these tests keep its parts from rotting: the data
file, build naming and configure options, the compiler probe, the sanitizer
log plumbing with a real (tiny) ThreadSanitizer program, the reading and
sorting of reports, the results table, and the simulator checks themselves
on the default patched build.
"""

import dataclasses
import shutil
import subprocess
import textwrap

import pytest

from pep522 import config
from pep522.builds import variants
from pep522.checks import sanitizers, variant_checks
from pep522.errors import Error
from conftest import run_tool

ALL, REGRTESTS = variants.load()


# --- The data ---------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_every_check_of_a_variant_exists(name):
    known = set(variant_checks.CHECKS) | set(REGRTESTS)
    assert set(ALL[name].checks) <= known


def test_every_simulator_check_runs_somewhere():
    used = {check for v in ALL.values() for check in v.checks}
    assert set(variant_checks.CHECKS) <= used


@pytest.mark.parametrize("name", ALL)
def test_sanitizer_logs_name_variables_of_env(name):
    assert set(ALL[name].sanitizer_logs) <= set(ALL[name].env)


# That a variant's configure options reach configure: tests/test_build.py.


def test_unknown_variant_is_an_error_listing_the_known_ones():
    result = run_tool("build", "--variant=nope")
    assert result.returncode == 1
    assert "unknown variant 'nope'" in result.stderr
    assert "debug" in result.stderr and "fix: " in result.stderr


def test_test_variants_refuses_an_unknown_variant_before_building():
    result = run_tool("test-variants", "nope")
    assert (result.returncode, result.stdout) == (1, "")
    assert "unknown variant 'nope'" in result.stderr


# --- Builds -----------------------------------------------------------------


def test_target_names(fake):
    def name(**kw):
        return config.Target(fake.release, **kw).dir.name
    assert name() == "9.9.9"
    assert name(stock=True) == "9.9.9-stock"
    assert name(variant="tsan") == "9.9.9-tsan"
    assert name(variant="tsan", stock=True) == "9.9.9-tsan-stock"


def test_variant_configure_args_and_environment(fake):
    target = config.Target(fake.release, variant="tsan")
    assert variants.configure_args(target) == list(ALL["tsan"].configure)
    env = variants.environment(target)
    assert f"suppressions={target.src}/Tools/tsan/" in env["TSAN_OPTIONS"]
    default = config.Target(fake.release)
    assert (variants.configure_args(default),
            variants.environment(default)) == ([], {})


def test_compiler_probe_passes_with_this_compiler(fake):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler: the variant builds need one")
    for name in ALL:
        variants.check_compiler(config.Target(fake.release, variant=name))


def test_compiler_without_the_sanitizer_is_an_error(fake, monkeypatch):
    monkeypatch.setenv("CC", "false")
    with pytest.raises(Error) as e:
        variants.check_compiler(config.Target(fake.release, variant="asan"))
    assert "variant asan cannot be built here" in str(e.value)
    assert "libasan8" in e.value.hint


# --- Sanitizer reports ------------------------------------------------------

TSAN_LOG = """\
==================
WARNING: ThreadSanitizer: data race (pid=25283)
  Write of size 4 at 0x55876b25005c by thread T2:
    #0 py_getrandom Python/bootstrap_hash.c:191 (python+0x11e0)
    #1 pyurandom Python/bootstrap_hash.c:600 (python+0x11f0)

  Previous read of size 4 at 0x55876b25005c by thread T1:
    #0 py_getrandom Python/bootstrap_hash.c:141 (python+0x11a0)

  Location is global 'getrandom_works.0' of size 4 at 0x55876b25005c

  Thread T2 (tid=25287, running) created by main thread at:
    #0 pthread_create ../../src/libsanitizer/tsan/tsan_interceptors.cpp:1001
    #1 do_start_joinable_thread Python/thread_pthread.h:290 (python+0x1245)

SUMMARY: ThreadSanitizer: data race Python/bootstrap_hash.c:191 in py_getrandom
==================
==================
WARNING: ThreadSanitizer: data race (pid=25283)
  Read of size 8 at 0x7b0400000010 by thread T3:
    #0 fstat64 ../../src/libsanitizer/tsan/tsan_interceptors.cpp:1563
    #1 dict_get Objects/dictobject.c:10 (python+0x2000)
    #2 pyurandom Python/bootstrap_hash.c:600 (python+0x11f0)

  Previous write of size 8 at 0x7b0400000010 by main thread:
    #0 dict_set Objects/dictobject.c:20 (python+0x2100)

SUMMARY: ThreadSanitizer: data race Objects/dictobject.c:10 in dict_get
==================
"""

UBSAN_LOG = """\
Objects/longobject.c:120:22: runtime error: signed integer overflow: \
2147483647 + 1 cannot be represented in type 'int'
    #0 0x5624391651aa in long_add Objects/longobject.c:120
    #1 0x5624391651f3 in main Programs/python.c:15
"""

ASAN_LOG = """\
=================================================================
==123==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020 at pc
READ of size 8 at 0x602000000010 thread T0
    #0 0x4a2b3c in os_urandom_impl Modules/posixmodule.c:15060:5
    #1 0x4a2b40 in cfunction_vectorcall Objects/methodobject.c:10
SUMMARY: AddressSanitizer: heap-use-after-free Modules/posixmodule.c:15060
"""


def test_parse_tsan_reports():
    reports = sanitizers.parse(TSAN_LOG)
    assert [(r.sanitizer, r.kind) for r in reports] == [
        ("TSan", "data race"), ("TSan", "data race")]
    assert reports[0].stacks == [
        [("py_getrandom", "Python/bootstrap_hash.c:191"),
         ("pyurandom", "Python/bootstrap_hash.c:600")],
        [("py_getrandom", "Python/bootstrap_hash.c:141")],
        [("do_start_joinable_thread", "Python/thread_pthread.h:290")]]
    assert reports[0].title() == ("TSan data race on getrandom_works in "
                                  "py_getrandom / pyurandom / py_getrandom")
    # The sanitizer's interceptor is not where the race is.
    assert reports[1].innermost == {"dict_get", "dict_set"}


def test_parse_asan_and_ubsan_reports():
    asan, = sanitizers.parse(ASAN_LOG)
    assert (asan.sanitizer, asan.kind) == ("ASan", "heap-use-after-free")
    assert asan.innermost == {"os_urandom_impl"}
    ubsan, = sanitizers.parse(UBSAN_LOG)
    assert ubsan.kind == ("Objects/longobject.c:120: signed integer "
                          "overflow: N + N cannot be represented in type "
                          "'int'")
    assert ubsan.innermost == {"long_add"}


def test_classify_by_the_innermost_frames():
    # dict_get is called from pyurandom, but the race is in dict_get.
    reports = sanitizers.parse(TSAN_LOG + ASAN_LOG)
    ours, upstream = sanitizers.classify(reports,
                                         {"py_getrandom", "pyurandom"})
    assert [r.stacks[0][0][0] for r in ours] == ["py_getrandom"]
    assert [r.stacks[0][0][0] for r in upstream] == ["dict_get",
                                                     "os_urandom_impl"]


def test_unique_counts_reports_with_the_same_signature():
    reports = sanitizers.parse(TSAN_LOG * 3)
    assert [count for _, count in sanitizers.unique(reports)] == [3, 3]


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True,
                   capture_output=True)


def test_changed_functions_are_those_the_series_changes(tmp_path):
    repo = tmp_path / "src"
    repo.mkdir()
    source = textwrap.dedent("""\
        static int
        untouched(void)
        {
            return 0;
        }

        static int
        py_getrandom(void *buffer)
        {
            return 1;
        }
    """)
    (repo / "bootstrap_hash.c").write_text(source)
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
        "upstream", "--allow-empty")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
        "release")
    git(repo, "tag", "upstream")
    (repo / "bootstrap_hash.c").write_text(source.replace("return 1",
                                                          "return 2"))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam",
        "the series")
    assert sanitizers.changed_functions(repo) == {"py_getrandom"}


# --- A check with a real sanitizer runtime ----------------------------------

RACY = """\
#include <pthread.h>
static int getrandom_works = 1;
void *py_getrandom(void *arg) { getrandom_works = 0; return arg; }
int main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, py_getrandom, 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    return 0;
}
"""


@pytest.fixture
def racy(tmp_path):
    """A ThreadSanitizer program with a race in a function named as ours."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler to build the ThreadSanitizer program")
    source = tmp_path / "racy.c"
    source.write_text(RACY)
    program = tmp_path / "racy"
    subprocess.run(["cc", "-g", "-fsanitize=thread", source, "-o", program,
                    "-lpthread"], check=True)
    return program


def test_run_check_collects_and_sorts_sanitizer_reports(fake, racy,
                                                        monkeypatch):
    variant = dataclasses.replace(ALL["tsan"], env={
        "TSAN_OPTIONS": "halt_on_error=0 exitcode=0"}, checks=("racy",))

    def run_racy(ctx):
        proc = subprocess.run([racy], env=ctx.env, capture_output=True)
        return proc.returncode == 0, "ran"
    monkeypatch.setitem(variant_checks.CHECKS, "racy", run_racy)
    target = config.Target(fake.release, variant="tsan")
    result = variant_checks.run_check(target, variant, "racy", {},
                                      {"py_getrandom"}, fake.tmp_path)
    assert (result.ok, result.detail) == (True, "ran")
    assert result.ours and all("py_getrandom" in t for t in result.ours)
    assert result.upstream == []


def test_failing_check_is_a_failed_result(fake, monkeypatch):
    def broken(ctx):
        raise ValueError("no JSON")
    monkeypatch.setitem(variant_checks.CHECKS, "broken", broken)
    variant = dataclasses.replace(ALL["debug"], checks=("broken",))
    result = variant_checks.run_check(
        config.Target(fake.release, variant="debug"), variant, "broken", {},
        set(), fake.tmp_path)
    assert (result.ok, result.detail) == (False, "ValueError: no JSON")


def test_hung_check_is_a_failed_result(fake, monkeypatch):
    def hung(ctx):
        subprocess.run(["sleep", "5"], timeout=0.1)
    monkeypatch.setitem(variant_checks.CHECKS, "hung", hung)
    variant = dataclasses.replace(ALL["debug"], checks=("hung",))
    result = variant_checks.run_check(
        config.Target(fake.release, variant="debug"), variant, "hung", {},
        set(), fake.tmp_path)
    assert (result.ok, result.detail) == (False,
                                          "hung: no result in 0.1 s")


# --- The results table ------------------------------------------------------


def test_table_puts_patched_and_stock_side_by_side(fake):
    checks = ALL["tsan"].checks
    for stock, ours in ((False, ["TSan data race in py_getrandom"]),
                        (True, [])):
        target = config.Target(fake.release, stock=stock, variant="tsan")
        target.dir.mkdir(parents=True)
        result = {"ok": not stock, "detail": "", "seconds": 12,
                  "ours": ours, "upstream": ["TSan data race in dict_get"]}
        variant_checks.results_path(target).write_text(
            variant_checks.json.dumps({
                "date": "2026-11-29", "build_seconds": 600 + stock,
                "checks": dict.fromkeys(checks, result)}))
    text = variant_checks.table(fake.release, ["tsan"])
    assert ("| tsan | date; build time | 2026-11-29; 10m00s | "
            "2026-11-29; 10m01s |") in text
    assert (f"| tsan | {checks[0]} | ok (12 s); reports: 1 ours, 1 upstream"
            " | FAILED (12 s); reports: 0 ours, 1 upstream |") in text
    assert (f"| tsan | {checks[0]} | ours | `TSan data race in py_getrandom`"
            " (x1) | no |") in text
    assert (f"| tsan | {checks[0]} | upstream | `TSan data race in "
            "dict_get` (x1) | yes |") in text


# --- The simulator checks on the default patched build ---------------------


@pytest.mark.parametrize("check", variant_checks.CHECKS)
def test_simulator_check_passes_on_the_patched_build(patched, tmp_path,
                                                     check):
    variant = dataclasses.replace(ALL["freethreading"], name="default",
                                  configure=(), checks=(check,))
    ctx = variant_checks.Context(patched, variant, tmp_path, {})
    ok, detail = variant_checks.CHECKS[check](ctx)
    assert ok, detail


REGRTEST_ALL_SKIPPED = """\
test_multiprocessing_spawn.test_misc skipped -- libasan has a dead lock
== Tests result: SUCCESS ==
Total tests: run=0 (filtered)
Total test files: run=12/12 (filtered) skipped=12
Result: SUCCESS
"""

REGRTEST_AUTHKEY_RAN = """\
test_a (test.test_multiprocessing_spawn.test_misc.TestLazyAuthkey.test_a) ... ok
Total tests: run=1 (filtered)
Result: SUCCESS
"""


def fake_interpreter(target, output):
    """A "python" for *target* that prints *output* and its arguments."""
    target.python.parent.mkdir(parents=True, exist_ok=True)
    target.python.write_text("#!/bin/sh\n"
                             f"cat <<'EOF'\n{output}EOF\n"
                             'echo "args: $*"; echo "env: '
                             '$PYTHONTEST_REQUIRE_RNG_FILTER"\n')
    target.python.chmod(0o755)


@pytest.mark.parametrize("output, ok", [(REGRTEST_ALL_SKIPPED, False),
                                        (REGRTEST_AUTHKEY_RAN, True)])
def test_a_regrtest_of_the_patched_build_must_run_the_series_tests(
        fake, monkeypatch, output, ok):
    """regrtest exits 0 when every test file skipped itself: in the
    patched build, that is a failure, with the reason upstream gave."""
    monkeypatch.setattr(variant_checks.testing, "series_classes",
                        lambda src: {"_test_multiprocessing":
                                     ["TestLazyAuthkey"]})
    target = config.Target(fake.release, variant="debug")
    fake_interpreter(target, output)
    ctx = variant_checks.Context(target, ALL["debug"], fake.tmp_path, {})
    got, detail = variant_checks.regrtest(ctx, REGRTESTS["authkey"])
    assert got is ok, detail
    log = (target.logs / "regrtest-authkey.log").read_text()
    assert "-R 3:3" in log and " -v " in log and "-m TestLazyAuthkey" in log
    assert "env: 1" in log
    if not ok:
        assert detail == ("Total tests: run=0 (filtered); Total test files: "
                          "run=12/12 (filtered) skipped=12; Result: SUCCESS;"
                          " skipped: libasan has a dead lock; not run: "
                          "TestLazyAuthkey")
