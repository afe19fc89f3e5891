"""`test-variants`: build each variant, patched and stock, and check it.

For every variant of variants.toml (or those named), this builds the
patched and the stock release in that variant (build/<version>-<variant>
and build/<version>-<variant>-stock), then runs the variant's checks in
each: CPython's regrtest for what the series touches, and simulator runs
(rngsim) that drive the C paths the series changes.  Sanitizer builds
write their reports to per-check log directories; each report is sorted
into "touches the series' code" or "untouched upstream code" and compared
with stock's.  The results go to build/<version>-<variant>[-stock]/
variant-checks.json and, side by side, to build/variants-<version>.md.

Only the patched build is asserted on (the exit status); stock is run for
comparison, and fails the checks of behaviour it does not have (PEP 522).
"""

import dataclasses
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pep522 import config, options, steps
from pep522.builds import build, variants
from pep522.checks import sanitizers, testing
from pep522.errors import Error
from pep522.sim import simrun

THREADS = simrun.THREADS
# os.urandom() calls in the exception-path loop, and per thread when
# threads call it at once.
LOOP_CALLS = 5000
THREAD_CALLS = 200
# The checks assert counts and ordering; the times they report are
# measurements (a loaded machine makes them vary, not fail).
# A debug build's total reference count may drift a little in a loop
# (caches); one leaked reference per call would be LOOP_CALLS.
LEAK_LIMIT = LOOP_CALLS // 10
REGRTEST_TIMEOUT = 300


@dataclasses.dataclass
class Context:
    """What a check needs: the build, its variant, where to put things."""

    target: config.Target
    variant: variants.Variant
    tmp: Path
    env: dict

    @property
    def python(self):
        return self.target.python

    def limit(self, seconds):
        """A time limit for a release build, scaled for this variant."""
        return seconds * self.variant.timeout_factor


def failures(conditions):
    """The descriptions of the conditions that do not hold."""
    return [what for what, holds in conditions.items() if not holds]


def verdict(conditions, detail):
    failed = failures(conditions)
    return (not failed, detail if not failed
            else f"{detail}; FAILED: {', '.join(failed)}")


def answers(run, key):
    return (run.stats or {}).get("answers", {}).get(key, 0)


def calls(run, key):
    return (run.stats or {}).get("calls", {}).get(key, 0)


# --- The simulator checks ---------------------------------------------------

URANDOM_LOOP = """
    import json, os, sys
    refs = getattr(sys, "gettotalrefcount", lambda: 0)
    def loop(n):
        count, errnos = 0, set()
        for _ in range(n):
            try:
                os.urandom(16)
            except BlockingIOError as e:
                count += 1
                errnos.add(e.errno)
        return count, sorted(errnos)
    loop(100)  # warm up caches before counting references
    before = refs()
    count, errnos = loop({calls})
    print(json.dumps([count, errnos, refs() - before]))
"""


def urandom_raises(ctx):
    """os.urandom() raises BlockingIOError LOOP_CALLS times in a loop
    (the new exception path); a debug build leaks no reference doing so."""
    run = simrun.run_sim(ctx.python, ["--never-ready"],
                         URANDOM_LOOP.format(calls=LOOP_CALLS), ctx.tmp,
                         env=ctx.env, timeout=ctx.limit(simrun.TIMEOUT))
    count, errnos, leaked = (run.json() if run.returncode == 0
                             else (0, [], 0))
    return verdict({
        "exit status 0": run.returncode == 0,
        f"{LOOP_CALLS} BlockingIOError": count == LOOP_CALLS,
        "errno EAGAIN": errnos == [11],
        f"references leaked < {LEAK_LIMIT}": abs(leaked) < LEAK_LIMIT,
    }, f"{count}/{LOOP_CALLS} raised, errno {errnos}, "
       f"total refcount delta {leaked}, {run.elapsed:.1f} s"
       + stderr_tail(run))


def insecure_startup(ctx):
    """Startup with a never-ready RNG uses GRND_INSECURE and does not block;
    on a kernel without GRND_INSECURE (EINVAL) it falls back, once."""
    code = "import random; print(random.random())"
    new = simrun.run_sim(ctx.python, ["--never-ready"], code, ctx.tmp,
                         env=ctx.env, timeout=ctx.limit(simrun.TIMEOUT))
    old = simrun.run_sim(ctx.python, ["--never-ready", "--no-insecure"],
                         code, ctx.tmp, env=ctx.env,
                         timeout=ctx.limit(simrun.TIMEOUT))
    return verdict({
        "exit status 0": new.returncode == old.returncode == 0,
        "GRND_INSECURE used": calls(new, "insecure") > 0,
        "EINVAL seen (old kernel)": answers(old, "einval") > 0,
        "GRND_INSECURE tried once (old kernel)":
            calls(old, "insecure") == 1,
        "no blocking call":
            calls(new, "blocking") == calls(old, "blocking") == 0,
    }, f"GRND_INSECURE calls {calls(new, 'insecure')}, startup "
       f"{new.elapsed:.2f} s; old kernel: GRND_INSECURE calls "
       f"{calls(old, 'insecure')}, {old.elapsed:.2f} s"
       + stderr_tail(new) + stderr_tail(old))


def getrandom_sigint(ctx):
    """Ctrl-C (SIGINT, EINTR) during a blocking os.getrandom(), which
    releases the GIL, raises KeyboardInterrupt promptly."""
    run = simrun.interrupt_wait(ctx.python, "os.getrandom(16)", ctx.tmp,
                                settle=ctx.limit(simrun.SETTLE), env=ctx.env,
                                timeout=ctx.limit(simrun.TIMEOUT))
    return verdict({
        "child called": run.stdout == "calling",
        "KeyboardInterrupt": run.stderr.rstrip().endswith(
            "KeyboardInterrupt"),
        "exit status 130": run.returncode == 130,
        "held call interrupted": answers(run, "interrupted") == 1,
    }, f"exit status {run.returncode} {run.elapsed:.2f} s after SIGINT"
       + ("" if run.returncode == 130 else stderr_tail(run)))


def token_bytes_threads(ctx):
    """THREADS threads wait in secrets.token_bytes() at once and are
    released together when the RNG becomes ready."""
    ready = ctx.limit(simrun.THREADS_READY_AFTER)
    started = time.monotonic()
    run = simrun.threads_drawing(
        ctx.python, ["--ready-after", f"{ready:g}"],
        "secrets.token_bytes(32)", ctx.tmp, threads=THREADS, env=ctx.env,
        timeout=ctx.limit(simrun.TIMEOUT) + ready)
    out = run.json() if run.returncode == 0 else []
    values = {results[0] for _, results in out}
    first = min((end for end, _ in out), default=0)
    return verdict({
        "exit status 0": run.returncode == 0,
        f"{THREADS} distinct values": len(values) == THREADS,
        "none before ready": first >= started + ready,
        f"{THREADS} held in the kernel at once":
            answers(run, "held") == THREADS,
        f"{THREADS} released when ready": answers(run, "released") == THREADS,
    }, f"{len(values)} distinct values, {answers(run, 'held')} held, "
       f"released {answers(run, 'released')}" + stderr_tail(run))


# (simulator options, the call each thread makes, what every call must
# give: "!" + exception and errno, "bytes" or "ok", the answer the
# simulator must have given at least once).  The child sets
# PYTHONHASHSEED and imports only the module of the call, so that no
# getrandom() runs before the threads start: the threads are the first
# to find that getrandom() or GRND_INSECURE fails, and write the flags
# that remember it at the same time.
URANDOM_THREADS = {
    "EAGAIN": (["--never-ready"], "os.urandom(16)", "!BlockingIOError 11",
               "eagain"),
    "ENOSYS": (["--no-getrandom"], "os.urandom(16)", "bytes", "enosys"),
    "EINVAL": (["--never-ready", "--no-insecure"], "_random.Random()", "ok",
               "einval"),
}


def urandom_threads(ctx):
    """THREADS threads call os.urandom() (or seed a Random, which takes the
    GRND_INSECURE path) at once while getrandom() fails with EAGAIN, ENOSYS
    or EINVAL: the new exception path and the flags' write paths, without
    a GIL."""
    conditions, details = {}, []
    for name, (opts, call, expected, answer) in URANDOM_THREADS.items():
        try:
            run = simrun.threads_drawing(
                ctx.python, opts, call, ctx.tmp, threads=THREADS,
                calls=THREAD_CALLS, flags=("-S", *simrun.NOT_ISOLATED),
                env={**ctx.env, **simrun.FIXED_HASH},
                timeout=ctx.limit(simrun.TIMEOUT))
        except subprocess.TimeoutExpired as e:
            # Stock's os.urandom() blocks: go on with the other cases,
            # whose sanitizer reports are the comparison.
            conditions[f"{name}: no hang"] = False
            details.append(f"{name} hung ({e.timeout:.3g} s)")
            continue
        results = [r for _, rs in (run.json() if run.returncode == 0
                                   else []) for r in rs]
        good = sum(len(r) == 32 if expected == "bytes" else r == expected
                   for r in results)
        conditions[f"{name}: {THREADS * THREAD_CALLS} x {expected}"] = (
            good == THREADS * THREAD_CALLS)
        conditions[f"{name}: {answer} answered"] = answers(run, answer) > 0
        details.append(f"{name} {good}/{THREADS * THREAD_CALLS}"
                       + stderr_tail(run))
    return verdict(conditions, ", ".join(details))


CHECKS = {
    "urandom-raises": urandom_raises,
    "insecure-startup": insecure_startup,
    "getrandom-sigint": getrandom_sigint,
    "token-bytes-threads": token_bytes_threads,
    "urandom-threads": urandom_threads,
}


def stderr_tail(run):
    """The last line of a failed run's stderr, for the detail."""
    lines = run.stderr.strip().splitlines()
    if run.returncode == 0 or not lines:
        return ""
    return f" [exit {run.returncode}: {lines[-1][:120]}]"


# --- regrtest ---------------------------------------------------------------


def regrtest(ctx, spec):
    """CPython's tests *spec* (variants.toml), with the variant's options.

    (True, detail) if they pass, else (False, detail).  In the patched
    build the run is verbose and must run every test class of the series
    that *spec* selects, each passing and none skipped: a run that ran
    none of them fails.  The detail gives regrtest's totals and its
    reasons for skipping.
    """
    log = ctx.target.logs / f"regrtest-{spec.name}.log"
    timeout = round(ctx.limit(REGRTEST_TIMEOUT))
    # --rerun: a test that fails once is run again (as upstream's CI
    # does); the result then says "FAILURE then SUCCESS".
    extra = ["-j2", "--rerun", f"--timeout={timeout}", *ctx.variant.regrtest]
    series = (None if ctx.target.stock
              else testing.series_classes(ctx.target.src))
    try:
        testing.regrtest(ctx.target, list(spec.tests), log, extra=extra,
                         env=ctx.env, series=series, match=spec.match)
        ok, why = True, ""
    except Error as e:
        ok, why = False, str(e).split("\n", 1)[0].split(" failed: ", 1)[-1]
    text = log.read_text(errors="replace")
    totals = testing.totals(text)
    skips = testing.skip_reasons(text)
    detail = "; ".join(totals) or f"see {steps.display(log)}"
    if skips:
        detail += "; skipped: " + "; ".join(skips)
    if why:
        detail += f"; {why}"
    return ok, detail


# --- Running the checks -----------------------------------------------------


@dataclasses.dataclass
class Result:
    ok: bool
    detail: str
    seconds: float
    ours: list        # report titles touching the series' functions
    upstream: list    # report titles in untouched code


def run_check(target, variant, name, regrtests, ours, tmp):
    """Run one check of *target*; its sanitizer reports are sorted with
    the set of the series' functions *ours*."""
    logs = target.dir / "sanitizer-logs" / name
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    env = variant.environment(target.src)
    for var in variant.sanitizer_logs:
        env[var] = f"{env.get(var, '')}:log_path={logs}/report"
    ctx = Context(target, variant, tmp, env)
    started = time.monotonic()
    try:
        if name in regrtests:
            ok, detail = regrtest(ctx, regrtests[name])
        else:
            ok, detail = CHECKS[name](ctx)
    except subprocess.TimeoutExpired as e:
        ok, detail = False, f"hung: no result in {e.timeout:.3g} s"
    except Exception as e:  # a run that printed nonsense
        ok, detail = False, f"{type(e).__name__}: {e}"
    seconds = time.monotonic() - started
    touching, others = sanitizers.classify(sanitizers.read_logs(logs), ours)
    return Result(ok, detail, seconds,
                  [r.title() for r in touching],
                  [r.title() for r in others])


def check_target(target, variant, regrtests, ours):
    """Run every check of *variant* in *target*; {name: Result}."""
    unknown = [n for n in variant.checks
               if n not in CHECKS and n not in regrtests]
    if unknown:
        raise Error(f"variants.toml: variant {variant.name} names unknown "
                    f"checks {', '.join(unknown)}",
                    hint=f"use [regrtest.<name>] tables or "
                         f"{', '.join(CHECKS)}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in variant.checks:
            steps.say(f"check: {target.name} {name}")
            result = run_check(target, variant, name, regrtests, ours,
                               Path(tmp))
            results[name] = result
            reports = (f", sanitizer reports: {len(result.ours)} in the "
                       f"series' code, {len(result.upstream)} elsewhere"
                       if variant.sanitizer_logs else "")
            steps.say(f"  {outcome(result.ok)} in "
                      f"{result.seconds:.0f}s: {result.detail}{reports}")
    return results


def results_path(target):
    return target.dir / "variant-checks.json"


BUILDS = ("patched", "stock")


def test_variant(release, variant, regrtests, tarball=None, builds=BUILDS):
    """Build and check *variant*, patched then stock (or only those of
    *builds*); return the results {"patched": {...}, "stock": {...}}, also
    saved beside each build."""
    out = {}
    # The patched tree knows which functions the series changes.
    patched = config.Target(release, variant=variant.name)
    ours = None
    for kind in builds:
        target = config.Target(release, stock=kind == "stock",
                               variant=variant.name)
        fresh = not target.python.exists()
        started = time.monotonic()
        build.built(target, tarball)
        built_in = time.monotonic() - started
        if ours is None:
            ours = sanitizers.changed_functions(
                build.prepare(patched, tarball).src)
        results = check_target(target, variant, regrtests, ours)
        previous = load_results(target)
        # Checks not run this time (--check) keep their last results.
        saved = {"date": time.strftime("%Y-%m-%d"),
                 "build_seconds": round(built_in) if fresh else None,
                 "checks": {**(previous or {}).get("checks", {}),
                            **{n: dataclasses.asdict(r)
                               for n, r in results.items()}}}
        if saved["build_seconds"] is None and previous:
            saved["build_seconds"] = previous.get("build_seconds")
        results_path(target).write_text(json.dumps(saved, indent=1))
        out[kind] = saved
    return out


def load_results(target):
    try:
        return json.loads(results_path(target).read_text())
    except (OSError, ValueError):
        return None


# --- The side-by-side table -------------------------------------------------


def outcome(ok):
    # None: a result saved when a regrtest that ran nothing was a skip.
    return {True: "ok", False: "FAILED", None: "skipped"}[ok]


def cell(check):
    if check is None:
        return "not run"
    text = outcome(check["ok"])
    text += f" ({check['seconds']:.0f} s)"
    if check["ours"] or check["upstream"]:
        text += (f"; reports: {len(check['ours'])} ours, "
                 f"{len(check['upstream'])} upstream")
    return text


def table(release, names):
    """Markdown: variant x check, patched and stock, from the saved results,
    then every sanitizer report, each marked as seen in stock or not."""
    all_variants, _ = variants.load()
    lines = ["| variant | check | patched | stock |",
             "| --- | --- | --- | --- |"]
    reports = []
    for name in names:
        variant = all_variants[name]
        saved = {kind: load_results(config.Target(
                     release, stock=kind == "stock", variant=name))
                 for kind in ("patched", "stock")}
        lines.append(f"| {name} | date; build time | "
                     + " | ".join(f"{s['date']}; "
                                  f"{format_seconds(s['build_seconds'])}"
                                  if s else "-" for s in saved.values())
                     + " |")
        for check in variant.checks:
            got = {kind: (s or {}).get("checks", {}).get(check)
                   for kind, s in saved.items()}
            lines.append(f"| {name} | {check} | {cell(got['patched'])} | "
                         f"{cell(got['stock'])} |")
            reports += report_rows(name, check, got)
    if reports:
        lines += ["", "| variant | check | where | report | in stock |",
                  "| --- | --- | --- | --- | --- |", *reports]
    return "\n".join(lines) + "\n"


def report_rows(name, check, got):
    patched, stock = got["patched"], got["stock"]
    if patched is None:
        return []
    in_stock = set() if stock is None else set(stock["ours"]
                                               + stock["upstream"])
    rows = []
    for where in ("ours", "upstream"):
        for title in sorted(set(patched[where])):
            seen = ("stock not run" if stock is None
                    else "yes" if title in in_stock else "no")
            count = patched[where].count(title)
            rows.append(f"| {name} | {check} | {where} | `{title}` "
                        f"(x{count}) | {seen} |")
    return rows


def format_seconds(seconds):
    if seconds is None:
        return "-"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def report_path(release):
    return config.BUILD / f"variants-{release.version}.md"


def cmd_test_variants(args):
    release = config.release(args.version)
    all_variants, regrtests = variants.load()
    names = args.variants or list(all_variants)
    for name in names:
        variants.get(name)  # an unknown name is an error before any build
    failed = []
    for name in names:
        builds = [args.only] if args.only else BUILDS
        variant = all_variants[name]
        if args.check:
            variant = dataclasses.replace(variant, checks=tuple(
                c for c in variant.checks if c in args.check))
        results = test_variant(release, variant, regrtests, args.tarball,
                               builds)
        patched = results.get("patched", {"checks": {}})["checks"]
        failed += [f"{name} {check}" for check, r in patched.items()
                   if not r["ok"] or r["ours"]]
    report = report_path(release)
    report.write_text(table(release, list(all_variants)))
    steps.say(f"results: {steps.display(report)}")
    steps.say(report.read_text())
    if failed:
        raise Error(f"patched variant checks failed: {', '.join(failed)}",
                    hint=f"see {steps.display(report)} and the logs under "
                         "build/<version>-<variant>/")


def add_parser(sub):
    p = sub.add_parser("test-variants", help="build each variant of "
                       "variants.toml, patched and stock, and check it")
    options.add_release(p)
    p.add_argument("variants", nargs="*", help="the variants (default: "
                   "all of variants.toml)")
    p.add_argument("--only", choices=BUILDS,
                   help="build and check only the patched or the stock "
                   "builds (the table shows the last results of both)")
    p.add_argument("--check", action="append", metavar="NAME",
                   help="run only this check (repeatable); the others keep "
                   "their last results")
    p.set_defaults(func=cmd_test_variants)
