"""The impact assessment's report: counts, differences, culprits, the table.

A row is one module of one distribution, with a result per build (see
impact_run.classify).  Modules that fail without the simulator in both
builds are "not importable" and not counted; one that fails without the
simulator in one build only is a baseline mismatch, flagged and not
counted either: neither says anything about PEP 522.
"""

import collections
import json

from pep522.impact.impact_run import NOT_IMPORTABLE, OK, OTHER, RAISES, WAITS

CLASSES = [OK, RAISES, WAITS, OTHER]

# What a packager can do about each culprit category.
WAIT_FIRST = ("start the service once the kernel RNG is ready: "
              "`ExecStartPre=/usr/bin/python3 -c \"import secrets; "
              "secrets.wait_for_system_rng()\"`")
ADVICE = {
    "ssl (OpenSSL seeding)":
        "Waits in both builds: OpenSSL seeds itself with a blocking "
        "getrandom() when the first SSL context is made, which PEP 522 "
        f"does not touch. {WAIT_FIRST[0].upper()}{WAIT_FIRST[1:]}; ask "
        "upstream to make the context on first use.",
    "os.urandom":
        "Raises BlockingIOError with the series, waits without it. Report "
        "upstream (make the value on first use, or use `secrets`, which "
        f"waits); meanwhile {WAIT_FIRST}.",
    "C extension":
        "The extension calls getrandom() itself, which the series does not "
        f"change: {WAIT_FIRST}; report upstream.",
    "secrets":
        "Waits in both builds, as PEP 522 intends: nothing to do if the "
        f"service may wait; else {WAIT_FIRST}.",
    "multiprocessing authkey":
        "Stock only: while the RNG is not ready, the series makes the "
        "main process's authkey on first use (patch 0004). Nothing needed "
        "with the series.",
}
for _same in ("uuid.uuid4", "random.SystemRandom", "os.getrandom"):
    ADVICE[_same] = ADVICE["os.urandom"]


def counted(row):
    """Does the row count towards the per-class numbers?"""
    return not mismatch(row) and not all(
        r["class"] == NOT_IMPORTABLE for r in row["results"].values())


def mismatch(row):
    """Does the module import without the simulator in one build only?"""
    failed = {r["class"] == NOT_IMPORTABLE for r in row["results"].values()}
    return len(failed) == 2


def counts(rows, build):
    total = collections.Counter(row["results"][build]["class"]
                                for row in rows if counted(row))
    return {c: total[c] for c in CLASSES}


def summary(report):
    rows = report["rows"]
    parts = [f"{b}: " + ", ".join(f"{n} {c}" for c, n in
                                  counts(rows, b).items())
             for b in report["builds"]]
    unimportable = sum(not counted(r) and not mismatch(r) for r in rows)
    return (f"{len(rows)} modules of {len(report['distributions'])} "
            "packages; " + "; ".join(parts)
            + f"; not importable {unimportable}"
            + f", baseline mismatch {sum(map(mismatch, rows))}"
            + f", not assessed {len(report['skipped'])}")


def culprit_text(result):
    """"ssl.create_default_context from aiohttp/connector.py:911"."""
    if result["class"] == OK:
        return ""
    if result["class"] in (RAISES, WAITS) and result.get("api"):
        caller = result.get("caller")
        return result["api"] + (f" from `{caller}`" if caller else "")
    return result.get("detail", "")


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def differing(rows, builds):
    return [r for r in rows if counted(r) and len(
        {r["results"][b]["class"] for b in builds}) > 1]


def categories(rows, builds):
    """{category: {build: count}} over the counted raises and waits."""
    found = collections.defaultdict(lambda: dict.fromkeys(builds, 0))
    for row in filter(counted, rows):
        for build in builds:
            result = row["results"][build]
            if result["class"] in (RAISES, WAITS):
                found[result.get("category", "unknown")][build] += 1
    return dict(sorted(found.items(), key=lambda kv: -sum(kv[1].values())))


def markdown(report):
    rows, builds = report["rows"], list(report["builds"])
    out = [f"Date: {report['date']}. Command: `{report['command']}`. "
           f"Time limit: {report['limit']:g} s per run.", "",
           f"Summary: {summary(report)}.", "",
           "### Counts per class", "",
           "| class | " + " | ".join(builds) + " |",
           "| --- |" + " ---: |" * len(builds)]
    per_build = {b: counts(rows, b) for b in builds}
    for c in CLASSES:
        out.append(f"| {c} | "
                   + " | ".join(str(per_build[b][c]) for b in builds) + " |")
    out += ["", "### Culprit categories", "",
            "Of the modules that raise or wait:", "",
            "| category | " + " | ".join(builds) + " | what a packager "
            "can do |", "| --- |" + " ---: |" * len(builds) + " --- |"]
    for category, n in categories(rows, builds).items():
        out.append(f"| {category} | "
                   + " | ".join(str(n[b]) for b in builds)
                   + f" | {ADVICE.get(category, 'see the rows')} |")
    out += ["", "### Modules whose class differs between the builds", ""]
    out += [f"* `{r['module']}` ({r['distribution']}): " + ", ".join(
        f"{b} {r['results'][b]['class']}" for b in builds)
        for r in differing(rows, builds)] or ["* none"]
    flagged = [r for r in rows if mismatch(r)]
    if flagged:
        out += ["", "### Baseline mismatch", "",
                "These import without the simulator in one build only; "
                "they are not counted.", ""]
        out += [f"* `{r['module']}`: " + "; ".join(
            f"{b} {r['results'][b]['class']}" for b in builds)
            for r in flagged]
    if report["skipped"]:
        out += ["", "### Not assessed", "",
                "No usable wheel, no resolution, or no importable "
                "module:", ""]
        out += [f"* {name}: {cell(why)}"
                for name, why in report["skipped"].items()]
    out += ["", "### Every module", "",
            "| rank | package | module | " + " | ".join(builds)
            + " | culprit or failure |",
            "| ---: | --- | --- |" + " --- |" * len(builds) + " --- |"]
    for r in rows:
        out.append(f"| {r['rank']} | {r['distribution']} | {r['module']} | "
                   + row_cells(r, builds) + " |")
    if report["probes"]:
        out += ["", "### First-use probes", "",
                "Calls made right after the import; not in the counts "
                "above.", "",
                "| probe | code | " + " | ".join(builds)
                + " | culprit or failure |",
                "| --- | --- |" + " --- |" * len(builds) + " --- |"]
        for r in report["probes"]:
            out.append(f"| {r['probe']} | `{cell(r['code'])}` | "
                       + row_cells(r, builds) + " |")
    return "\n".join(out) + "\n"


def row_cells(row, builds):
    """The classes per build, then the culprits (once when the same)."""
    texts = list(dict.fromkeys(
        culprit_text(row["results"][b]) for b in builds))
    return (" | ".join(row["results"][b]["class"] for b in builds)
            + " | " + cell("; ".join(t for t in texts if t)))


def write(report, directory):
    """impact.json and impact.md in *directory*; return their paths."""
    json_path = directory / "impact.json"
    md_path = directory / "impact.md"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
