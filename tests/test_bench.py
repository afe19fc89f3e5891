"""The benchmark's plumbing (`python3 -m pep522 bench`), not its numbers.

The real run takes minutes and is not part of `make test`; this runs one
case with one value of one loop on the builds that exist, so that the
pipeline (venvs, pyperf, compare_to, rngsim and callgrind counts, the
table) cannot rot unnoticed.  The venvs are cached in build/bench/.
"""

import argparse
import json
import shutil
import sys

import pytest

from conftest import UNDER_MAKE_TEST, built, release_under_test
from pep522 import config, venvs
from pep522.bench import bench, bench_cases
from pep522.errors import Error


def parse(*argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    bench.add_parser(sub)
    return parser.parse_args(["bench", *argv])


def builds():
    """Stock and patched builds of the release under test."""
    release = release_under_test()
    return [built(config.Target(release, stock=stock))
            for stock in (True, False)]


def test_cases_are_valid_python():
    for case in bench_cases.CASES:
        compile(case.program(3), case.id, "exec")
        if not case.startup:
            compile(case.setup, case.id, "exec")
            compile(case.stmt, case.id, "eval")
    assert len({case.name for case in bench_cases.CASES}) == len(
        bench_cases.CASES)


def test_unknown_case_is_an_error():
    with pytest.raises(Error) as info:
        bench.selected_cases(["nope"])
    assert "urandom16" in info.value.hint


def fake_row(case, stock, patched, significant, calls=(1, 1),
             instructions=(100, 100)):
    return {"id": case.id, "case": case.name, "startup": case.startup,
            "stock": {"mean": stock, "stdev": stock / 100, "values": 60},
            "patched": {"mean": patched, "stdev": patched / 100,
                        "values": 60},
            "ratio": patched / stock, "significant": significant, "t": -3.0,
            "getrandom": dict(zip(bench.SIDES, calls)),
            "instructions": dict(zip(bench.SIDES, instructions))}


def test_verdicts():
    token, choice = bench_cases.BY_ID["token_bytes"], bench_cases.BY_ID[
        "choice"]
    assert bench.verdict(token, fake_row(token, 1e-6, 1.01e-6, True)) == "ok"
    # Slower beyond the target, but within noise: not a miss.
    assert bench.verdict(token, fake_row(token, 1e-6, 1.1e-6, False)) == "ok"
    assert bench.verdict(token, fake_row(token, 1e-6, 1.1e-6, True)) \
        .startswith("MISS: time x1.100")
    assert "getrandom" in bench.verdict(
        token, fake_row(token, 1e-6, 1e-6, False, calls=(1, 2)))
    # Rejection sampling: averages agree within sampling noise.
    assert bench.verdict(
        choice, fake_row(choice, 1e-6, 1e-6, False, calls=(2.01, 1.99))) \
        == "ok"
    assert "instructions" in bench.verdict(
        token, fake_row(token, 1e-6, 1e-6, False, instructions=(100, 110)))
    text = bench.table([token], [fake_row(token, 1e-6, 1e-6, False)])
    assert "| secrets.token_bytes(32) | 1 us ± 10 ns | 1 us ± 10 ns " \
           "| 1.000 | no (-3.0) | 1 | 1 | 100 | 100 | 1.000 | ok |" in text


def test_smoke(tmp_path):
    """One case through the whole pipeline, on both builds."""
    stock, _ = builds()
    args = parse("--version", stock.release.version, "--no-build",
                 "--smoke", "--case", "token_bytes", "--no-plot", "--out",
                 str(tmp_path))
    assert args.func(args) == 0
    for side in bench.SIDES:
        data = json.loads((tmp_path / f"{side}.json").read_text())
        (benchmark,) = data["benchmarks"]
        # pyperf moves metadata shared by all benchmarks to the suite.
        metadata = {**data["metadata"], **benchmark.get("metadata", {})}
        assert metadata["name"] == "secrets.token_bytes(32)"
    assert "secrets.token_bytes(32)" in (tmp_path / "compare.md").read_text()
    results = json.loads((tmp_path / "results.json").read_text())
    (row,) = results["rows"]
    # The physical limit, in both builds: one getrandom() per call.
    assert row["getrandom"] == {"stock": 1, "patched": 1}
    if shutil.which("valgrind"):
        assert all(row["instructions"][side] > 0 for side in bench.SIDES)
    table = (tmp_path / "results.md").read_text()
    assert "| secrets.token_bytes(32) |" in table


def test_chart(tmp_path):
    """ratios.png; plot() makes its venv (matplotlib, from PyPI) when
    needed: under `make test` always, by hand only if it is there."""
    venv = bench.bench_root() / "venv-plot"
    if not (UNDER_MAKE_TEST or venvs.ready(venv, sys.executable,
                                           "matplotlib")):
        pytest.skip(f"{venv} has no matplotlib yet: run make bench once")
    token = bench_cases.BY_ID["token_bytes"]
    png = bench.plot(tmp_path, [fake_row(token, 1e-6, 1.01e-6, False)],
                     "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
