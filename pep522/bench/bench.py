"""`bench`: the patched interpreter against stock CPython, side by side.

    python3 -m pep522 bench            # make bench
    python3 -m pep522 bench --fast     # fewer workers and values: a quick look

Both builds of one release (build/<v> with the series, build/<v>-stock
without it, same configure flags) run the same cases in one run, case by
case, in rounds that alternate the two builds.  Each interpreter gets its own
virtual environment with pyperf, build/bench/venv-<name>; pyperf does the
warm-up, calibration, worker processes and the comparison (compare_to).

Besides time, two costs that machine noise does not blur:

* getrandom() system calls per operation, counted by our own simulator
  (`rngsim --ready-after 0`: the RNG is ready, as on every ordinary
  machine; the simulator also refuses glibc's vDSO getrandom, so every
  call is a system call it sees);
* instructions per operation under valgrind's callgrind.

Everything lands in build/bench/<version>/: stock.json and patched.json
(pyperf), compare.md (pyperf compare_to), costs.json, results.md (the
table) and ratios.png (a bar chart of the ratios).
"""

import concurrent.futures
import datetime
import hashlib
import json
import os
import pathlib
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from pep522 import config, options, steps, venvs
from pep522.bench import bench_cases
from pep522.builds import build
from pep522.errors import Error

PYPERF = "pyperf>=2.6"          # compare_to --table-format=md
MATPLOTLIB = "matplotlib"
SIDES = ("stock", "patched")
# Operations per getrandom count / per callgrind run (minus a run of 0).
COUNT_OPS = 10_000
CALLGRIND_OPS = 2_000
SMOKE_OPS = 100
# Cases whose number of draws per operation is random (rejection
# sampling in Random._randbelow()): their counts are averages and two
# runs agree only within sampling noise.
REJECTION = {"choice", "randbelow"}
COUNT_TOLERANCE = 0.03
# ... so they get more operations under callgrind too, and their
# instruction ratio the same tolerance on top of the target.
REJECTION_CALLGRIND_FACTOR = 5
# Targets of the issue.
MAX_RATIO = 1.02
# Worker processes per build and case, and pyperf options, for each mode
# (pyperf's own defaults, --fast and --rigorous, spelled out: those flags
# would override --processes).  The workers run in ROUNDS rounds that
# alternate the builds: the speed of a shared VM drifts over tens of
# seconds, which would otherwise favour the build that ran in the faster
# stretch (random.random(), which the series does not touch, came out
# 0.90 or 1.17 when each build ran its 20 workers in one go).
ROUNDS = 5
PYPERF_MODES = {
    "default": (20, []),
    "fast": (10, ["--values", "2"]),
    "rigorous": (40, []),
    # One worker, one value of one loop: checks the plumbing, measures
    # nothing.
    "smoke": (1, ["--values", "1", "--warmups", "0", "--loops", "1"]),
}


def bench_root():
    return config.BUILD / "bench"


class Side:
    """One interpreter of the comparison and its virtual environment."""

    def __init__(self, label, name, python):
        self.label = label          # "stock" or "patched"
        self.name = name            # target name: 3.13.5, 3.13.5-stock
        self.python = python        # the interpreter being measured
        self.venv = bench_root() / f"venv-{name}"

    @property
    def venv_python(self):
        return self.venv / "bin" / "python"


# --- The interpreters and their environments ------------------------------


def sides(args):
    """(stock, patched): built unless --no-build or given explicitly."""
    release = config.release(args.version)
    result = []
    for label in SIDES:
        explicit = getattr(args, f"{label}_python")
        if explicit:
            python = os.path.abspath(explicit)
            digest = hashlib.sha256(python.encode()).hexdigest()[:8]
            name = f"{label}-{digest}"
        else:
            target = config.Target(release, stock=(label == "stock"))
            name = target.name
            if args.no_build:
                python = target.python
                if not python.exists():
                    raise Error(f"{steps.display(python)} is not built",
                                hint="make build" + (" STOCK=1" if target.stock
                                                     else "")
                                + ", or drop --no-build")
            else:
                python = build.built(target, args.tarball)
        result.append(Side(label, name, str(python)))
    return result


def ensure_venv(python, venv, requirement, module):
    """A venv of *python* at *venv* with *requirement*; its python."""
    return venvs.ensure(python, venv, [requirement], module,
                        bench_root() / "logs" / f"{venv.name}.log")


# --- Timing with pyperf ----------------------------------------------------


def run_pyperf(sides_, cases, out, mode):
    files = {side.label: out / f"{side.label}.json" for side in sides_}
    for path in files.values():
        path.unlink(missing_ok=True)
    script = bench_cases.__file__
    processes, options = PYPERF_MODES[mode]
    rounds = min(ROUNDS, processes)
    workers = processes // rounds
    per_round = ["--processes", str(workers), *options]
    for number, case in enumerate(cases):
        title = (f"bench [{number + 1}/{len(cases)}] {case.name}: {rounds} "
                 f"round(s) of {workers} worker(s) per build")
        with steps.Step(title, out / "logs" / f"pyperf-{case.id}.log") as step:
            for round_ in range(rounds):
                # Alternate which build goes first, so that neither always
                # runs right after the other warmed up the machine.
                first = (number + round_) % 2
                for side in (sides_[first], sides_[1 - first]):
                    step.run([side.venv_python, "-P", script, "--case",
                              case.id, "--append", files[side.label],
                              *per_round], cwd=out)
    return files


STATS = r"""
import json, statistics, sys
import pyperf
from pyperf._utils import is_significant
stock, patched = (pyperf.BenchmarkSuite.load(p) for p in sys.argv[1:3])
result = {"pyperf": pyperf.__version__}
for bench in stock.get_benchmarks():
    name = bench.get_name()
    other = patched.get_benchmark(name)
    a, b = bench.get_values(), other.get_values()
    entry = {"unit": bench.get_unit()}
    for label, values in (("stock", a), ("patched", b)):
        entry[label] = {"mean": sum(values) / len(values),
                        "stdev": statistics.stdev(values)
                                 if len(values) > 1 else 0.0,
                        "values": len(values)}
    entry["significant"], entry["t"] = None, None
    if len(a) > 1 and len(a) == len(b):
        significant, t = is_significant(a, b)
        entry["significant"], entry["t"] = bool(significant), t
    result[name] = entry
print(json.dumps(result))
"""


def compare(stock_side, files, out):
    """pyperf compare_to, saved; the per-case statistics, from pyperf."""
    proc = subprocess.run(
        [stock_side.venv_python, "-m", "pyperf", "compare_to",
         "--table", "--table-format=md", files["stock"], files["patched"]],
        capture_output=True, text=True, cwd=out)
    if proc.returncode != 0:
        raise Error(f"pyperf compare_to failed:\n{proc.stderr}")
    (out / "compare.md").write_text(proc.stdout)
    proc = subprocess.run(
        [stock_side.venv_python, "-c", STATS, files["stock"],
         files["patched"]], capture_output=True, text=True)
    if proc.returncode != 0:
        raise Error(f"reading the pyperf results failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


# --- getrandom() calls and instructions -------------------------------------


def count_getrandom(python, program, workdir):
    """getrandom() calls of `python -c program`, the RNG ready."""
    with tempfile.NamedTemporaryFile(suffix=".json", dir=workdir) as stats:
        cmd = [sys.executable, "-m", "pep522", "rngsim", "--ready-after", "0",
               "--stats", stats.name, "--", python, "-P", "-c", program]
        proc = subprocess.run(cmd, cwd=config.ROOT, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise Error(f"`{shlex.join(cmd)}` exited with status "
                        f"{proc.returncode}:\n{proc.stderr[-2000:]}")
        data = json.load(open(stats.name))
    return data["calls_after_ready"]


COLLECTED = re.compile(r"^==\d+== Collected : (\d+)", re.M)


def count_instructions(python, program, workdir):
    """Instructions executed by `python -c program` (callgrind)."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           python, "-P", "-c", program]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    match = COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or not match:
        raise Error(f"`{shlex.join(cmd)}` failed (status {proc.returncode})"
                    f":\n{proc.stderr[-2000:]}")
    return int(match.group(1))


def per_operation(counter, python, case, operations, workdir):
    """*counter* per operation (micro case) or per process (startup)."""
    if case.startup:
        return counter(python, case.program(0), workdir)
    busy = counter(python, case.program(operations), workdir)
    idle = counter(python, case.program(0), workdir)
    return (busy - idle) / operations


def operations_for(kind, case, operations):
    if kind == "instructions" and case.id in REJECTION:
        return operations[kind] * REJECTION_CALLGRIND_FACTOR
    return operations[kind]


def measure_costs(sides_, cases, out, kinds, operations):
    """{kind: {case id: {label: value}}} for *kinds* of cost."""
    counters = {"getrandom": count_getrandom,
                "instructions": count_instructions}
    jobs = [(kind, case, side) for kind in kinds for case in cases
            for side in sides_]
    costs = {kind: {case.id: {} for case in cases} for kind in kinds}
    title = "bench: " + " and ".join(
        {"getrandom": "getrandom() calls (rngsim)",
         "instructions": "instructions (callgrind)"}[k] for k in kinds)
    with steps.Step(title, out / "logs" / "costs.log") as step:
        # Counts do not depend on timing: use every core.
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
            futures = {
                pool.submit(per_operation, counters[kind], side.python,
                            case, operations_for(kind, case, operations),
                            out): (kind, case, side)
                for kind, case, side in jobs}
            for future in concurrent.futures.as_completed(futures):
                kind, case, side = futures[future]
                value = future.result()
                costs[kind][case.id][side.label] = value
                step.note(f"{kind} {case.id} {side.label}: {value}")
    return costs


# --- The report -------------------------------------------------------------


def format_time(seconds):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"


def format_count(value, startup):
    if value is None:
        return "n/a"
    if startup:
        return f"{value:.0f}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"


def counts_match(case, stock, patched):
    if stock is None or patched is None:
        return None
    if case.id in REJECTION and not case.startup:
        return abs(patched - stock) <= COUNT_TOLERANCE * max(stock, 1)
    return patched <= stock + 1e-9


def rows(cases, stats, costs):
    """One dict per case: everything the table and the chart show."""
    result = []
    for case in cases:
        entry = stats.get(case.name)
        row = {"id": case.id, "case": case.name, "startup": case.startup}
        if entry:
            stock, patched = entry["stock"]["mean"], entry["patched"]["mean"]
            row.update(stock=entry["stock"], patched=entry["patched"],
                       ratio=patched / stock, significant=entry["significant"],
                       t=entry["t"])
        for kind in ("getrandom", "instructions"):
            values = costs.get(kind, {}).get(case.id, {})
            row[kind] = {label: values.get(label) for label in SIDES}
        result.append(row)
    return result


def verdict(case, row):
    misses = []
    ratio = row.get("ratio")
    if ratio is not None and ratio > MAX_RATIO and row["significant"]:
        misses.append(f"time x{ratio:.3f}")
    g = row["getrandom"]
    if counts_match(case, g["stock"], g["patched"]) is False:
        misses.append("getrandom calls")
    i = row["instructions"]
    limit = MAX_RATIO + (COUNT_TOLERANCE if case.id in REJECTION else 0)
    if i["stock"] and i["patched"] and i["patched"] / i["stock"] > limit:
        misses.append(f"instructions x{i['patched'] / i['stock']:.3f}")
    return ("MISS: " + ", ".join(misses)) if misses else "ok"


def table(cases, rows_):
    lines = [
        "| case | stock | patched | patched ÷ stock | significant (t) "
        "| getrandom/op stock | getrandom/op patched "
        "| instructions/op stock | instructions/op patched "
        "| instr. patched ÷ stock | target |",
        "|---|--:|--:|--:|---|--:|--:|--:|--:|--:|---|",
    ]
    for case, row in zip(cases, rows_):
        if "ratio" in row:
            times = [f"{format_time(row[s]['mean'])} "
                     f"± {format_time(row[s]['stdev'])}" for s in SIDES]
            ratio = f"{row['ratio']:.3f}"
            if row["significant"] is None:
                significant = "n/a"
            else:
                significant = (f"{'yes' if row['significant'] else 'no'} "
                               f"({row['t']:+.1f})")
        else:
            times, ratio, significant = ["n/a", "n/a"], "n/a", "n/a"
        g, i = row["getrandom"], row["instructions"]
        counts = [format_count(g[s], case.startup) for s in SIDES]
        instr = [format_count(i[s], True) if i[s] is not None else "n/a"
                 for s in SIDES]
        iratio = (f"{i['patched'] / i['stock']:.3f}"
                  if i["stock"] and i["patched"] is not None else "n/a")
        lines.append(f"| {case.name} | {times[0]} | {times[1]} | {ratio} "
                     f"| {significant} | {counts[0]} | {counts[1]} "
                     f"| {instr[0]} | {instr[1]} | {iratio} "
                     f"| {verdict(case, row)} |")
    return "\n".join(lines) + "\n"


def interpreter_info(python):
    proc = subprocess.run(
        [python, "-c", "import sys, secrets; print(sys.version.replace("
         "'\\n', ' ')); print(hasattr(secrets, 'wait_for_system_rng'))"],
        capture_output=True, text=True)
    version, _, pep522 = proc.stdout.strip().partition("\n")
    return {"version": version, "pep522": pep522 == "True"}


def machine_info():
    info = {"platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


def write_report(out, command, started, sides_, cases, rows_, meta):
    lines = [
        f"# PEP 522 benchmark: patched ÷ stock {meta['release']}",
        "",
        f"- command: `{command}`",
        f"- date: {started}",
        f"- pyperf mode: {meta['mode']} (pyperf {meta.get('pyperf', '?')})",
        f"- machine: {meta['machine'].get('cpu', '?')}, "
        f"{meta['machine']['cpus']} CPUs, {meta['machine']['platform']}; "
        f"load average at start {meta['machine'].get('load', '?')}, at end "
        f"{meta['machine'].get('load_end', '?')}",
    ]
    for side in sides_:
        info = meta["interpreters"][side.label]
        shown = steps.display(pathlib.Path(side.python))
        lines.append(f"- {side.label}: `{shown}` "
                     f"{info['version']}"
                     + (" (has secrets.wait_for_system_rng)"
                        if info["pep522"] else ""))
    lines += [
        "- time: mean ± standard deviation of pyperf's values; significant "
        "is pyperf's two-sample t-test (95%), t > 0 when patched is faster",
        "- getrandom/op: system calls per operation (per process for "
        f"startup), counted by `rngsim --ready-after 0` over "
        f"{meta['operations']['getrandom']} operations minus 0",
        f"- instructions/op: callgrind, {meta['operations']['instructions']} "
        f"operations minus 0 ({REJECTION_CALLGRIND_FACTOR} times as many "
        f"for {', '.join(sorted(REJECTION))}; per process for startup), "
        f"PYTHONHASHSEED=0",
        f"- target: patched ÷ stock ≤ {MAX_RATIO} (or not significant), "
        f"getrandom calls equal to stock's, instructions ≤ {MAX_RATIO} × "
        f"stock's (for {', '.join(sorted(REJECTION))}, whose draws per "
        f"operation are random (rejection sampling), within "
        f"{COUNT_TOLERANCE:.0%} more)",
        "",
        table(cases, rows_),
    ]
    if not meta["plot"]:
        lines.append(f"(no ratios.png: {meta['plot_error']})\n")
    (out / "results.md").write_text("\n".join(lines))
    (out / "results.json").write_text(json.dumps(
        {"command": command, "date": started, **meta, "rows": rows_},
        indent=2) + "\n")


# --- The chart --------------------------------------------------------------

PLOT = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
data = json.load(open(sys.argv[1]))
rows = data["rows"]
names = [r["case"] for r in rows]
time = [r.get("ratio") for r in rows]
errors = []
for r in rows:
    if r.get("ratio") is None:
        errors.append(0)
        continue
    # Standard error of each mean, relative, combined for the ratio.
    rel = [r[s]["stdev"] / r[s]["mean"] / r[s]["values"] ** 0.5
           if r[s]["mean"] else 0 for s in ("stock", "patched")]
    errors.append(r["ratio"] * (rel[0] ** 2 + rel[1] ** 2) ** 0.5)
instr = [r["instructions"]["patched"] / r["instructions"]["stock"]
         if r["instructions"]["stock"] and r["instructions"]["patched"]
         is not None else None for r in rows]
fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.8))
ys = list(range(len(rows)))[::-1]
h = 0.38
# Bars start at 1.0: right of the line is slower, left is faster.
ax.barh([y + h / 2 for y in ys], [(t or 1) - 1 for t in time], h, left=1,
        xerr=errors, label="time (pyperf means, ± 1 standard error)",
        color="#4c72b0",
        error_kw={"elinewidth": 0.8, "capsize": 2})
if any(i is not None for i in instr):
    ax.barh([y - h / 2 for y in ys], [(i or 1) - 1 for i in instr], h,
            left=1, label="instructions (callgrind)", color="#dd8452")
ax.axvline(1.0, color="black", linewidth=0.8)
ax.axvline(data["max_ratio"], color="red", linestyle="--", linewidth=0.8,
           label="target %.2f" % data["max_ratio"])
ax.set_yticks(ys)
ax.set_yticklabels(names)
values = [v for v in time + instr if v]
low = min(values + [1.0]) - 0.05
high = max(values + [data["max_ratio"]]) + 0.05
ax.set_xlim(max(0.0, low), high)
ax.set_xlabel("patched ÷ stock (lower is better)")
ax.set_title(data["title"])
ax.legend(loc="lower right", fontsize="small")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
"""


def plot(out, rows_, title):
    """ratios.png, with matplotlib in a venv of the tool's Python."""
    python = ensure_venv(sys.executable, bench_root() / "venv-plot",
                         MATPLOTLIB, "matplotlib")
    data = out / "ratios.json"
    data.write_text(json.dumps({"rows": rows_, "title": title,
                                "max_ratio": MAX_RATIO}))
    png = out / "ratios.png"
    proc = subprocess.run([python, "-c", PLOT, data, png],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise Error(f"plotting failed:\n{proc.stderr[-2000:]}")
    return png


# --- The command -----------------------------------------------------------


def selected_cases(ids):
    if not ids:
        return list(bench_cases.CASES)
    unknown = [i for i in ids if i not in bench_cases.BY_ID]
    if unknown:
        raise Error(f"unknown case {', '.join(unknown)}",
                    hint="choose among " + ", ".join(bench_cases.BY_ID))
    return [case for case in bench_cases.CASES if case.id in ids]


def ensure_valgrind():
    """valgrind, installed from Debian when missing and possible."""
    if shutil.which("valgrind"):
        return True
    if shutil.which("dpkg-query") and os.geteuid() == 0:
        build.install_debian_packages(["valgrind"],
                                      bench_root() / "logs" / "deps.log")
    return bool(shutil.which("valgrind"))


def run(args):
    started = datetime.datetime.now().astimezone().isoformat(
        timespec="seconds")
    clock = time.monotonic()
    command = "python3 -m pep522 bench"
    if sys.argv[1:2] == ["bench"] and sys.argv[2:]:
        command += " " + shlex.join(sys.argv[2:])
    if "MAKELEVEL" in os.environ:
        command = f"make bench ({command})"
    machine = machine_info()
    cases = selected_cases(args.case)
    mode = ("smoke" if args.smoke else "fast" if args.fast
            else "rigorous" if args.rigorous else "default")
    stock, patched = sides_ = sides(args)
    release = config.release(args.version).version
    out = (pathlib.Path(args.out).resolve() if args.out
           else bench_root() / release)
    out.mkdir(parents=True, exist_ok=True)
    for side in sides_:
        ensure_venv(side.python, side.venv, PYPERF, "pyperf")

    operations = {"getrandom": SMOKE_OPS if args.smoke else COUNT_OPS,
                  "instructions": SMOKE_OPS if args.smoke else CALLGRIND_OPS}
    kinds = []
    if not args.no_getrandom:
        kinds.append("getrandom")
    if not args.no_callgrind:
        if ensure_valgrind():
            kinds.append("instructions")
        else:
            steps.say("  note: valgrind is not installed: no instruction "
                      "counts (apt-get install valgrind)")
    costs = measure_costs(sides_, cases, out, kinds, operations) if kinds \
        else {}

    stats = {}
    if not args.no_time:
        files = run_pyperf(sides_, cases, out, mode)
        stats = compare(stock, files, out)
    rows_ = rows(cases, stats, costs)
    machine["load_end"] = machine_info().get("load")
    meta = {"release": release, "mode": mode, "pyperf": stats.get("pyperf"),
            "machine": machine, "operations": operations,
            "interpreters": {side.label: interpreter_info(side.python)
                             for side in sides_},
            "plot": None, "plot_error": "--no-plot"}
    (out / "costs.json").write_text(json.dumps(costs, indent=2) + "\n")
    if not args.no_plot:
        try:
            meta["plot"] = str(plot(out, rows_, f"PEP 522 series on "
                                    f"CPython {release}: patched ÷ stock"))
        except Error as e:
            meta["plot_error"] = str(e).splitlines()[0]
            steps.say(f"  warning: no chart: {e}")
    write_report(out, command, started, sides_, cases, rows_, meta)
    elapsed = round(time.monotonic() - clock)
    steps.say(f"\n{table(cases, rows_)}")
    if (out / "compare.md").exists() and not args.no_time:
        steps.say(f"pyperf compare_to:\n{(out / 'compare.md').read_text()}")
    steps.say(f"{steps.display(out / 'results.md')}: the table "
              f"({elapsed // 60}m{elapsed % 60:02d}s)")
    missed = [row["case"] for case, row in zip(cases, rows_)
              if verdict(case, row) != "ok"]
    if missed and not args.smoke:
        steps.say(f"cases missing their target: {', '.join(missed)}")
    return 0


def add_parser(sub):
    parser = sub.add_parser(
        "bench", help="benchmark the patched build against stock",
        description="Time the PEP 522 build against the stock build of the "
                    "same release with pyperf; count getrandom() calls and "
                    "instructions; write build/bench/<version>/results.md.")
    options.add_release(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fast", action="store_true",
                      help="half the worker processes, 2 values each (as "
                      "pyperf --fast): a quick, rougher measurement")
    mode.add_argument("--rigorous", action="store_true",
                      help="twice the worker processes (as pyperf "
                      "--rigorous)")
    mode.add_argument("--smoke", action="store_true",
                      help="one value of one loop: check the plumbing only")
    parser.add_argument("--case", action="append", default=[],
                        metavar="ID", help="only this case (repeatable): "
                        + ", ".join(bench_cases.BY_ID))
    parser.add_argument("--no-build", action="store_true",
                        help="use the interpreters as they are built; fail "
                        "if one is missing")
    parser.add_argument("--stock-python", metavar="PATH",
                        help="measure this interpreter as stock")
    parser.add_argument("--patched-python", metavar="PATH",
                        help="measure this interpreter as patched")
    parser.add_argument("--out", metavar="DIR", help="where the results go "
                        "(default: build/bench/<version>)")
    parser.add_argument("--no-time", action="store_true",
                        help="skip pyperf (only count calls/instructions)")
    parser.add_argument("--no-getrandom", action="store_true",
                        help="do not count getrandom() calls")
    parser.add_argument("--no-callgrind", action="store_true",
                        help="do not count instructions")
    parser.add_argument("--no-plot", action="store_true",
                        help="do not draw ratios.png")
    parser.set_defaults(func=run)
    return parser
