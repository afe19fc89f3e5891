"""The impact assessment's plumbing (pep522/impact/impact*.py), fast.

The real measurement installs hundreds of packages from PyPI (docs/impact.md);
here four tiny packages made by the test, installed from a local directory
without an index, go through the same install, import, classification and
report, with both builds when they are built.  The parsing and reporting
functions are tested on their own, without any build.
"""

import base64
import hashlib
import json
import sys
import time
import zipfile

import pytest

from conftest import UNDER_MAKE_TEST, built, release_under_test
from pep522 import config
from pep522.impact import impact, impact_install, impact_report
from pep522.impact.impact_run import (NOT_IMPORTABLE, OK, OTHER, RAISES, WAITS,
                               Frame, classify, culprit, imported_module,
                               parse_dump, parse_traceback)
from pep522.sim import rngsim

TARGET = "/b/impact/target-cpython-313"
LIB = "/b/3.13.5/src/Lib"

# --- Parsing and classifying, without a build --------------------------------

CHAINED = f"""\
Traceback (most recent call last):
  File "<string>", line 6, in <module>
  File "{LIB}/importlib/__init__.py", line 88, in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "<frozen importlib._bootstrap>", line 1387, in _gcd_import
  File "{TARGET}/web/app.py", line 12, in <module>
    SESSION_ID = uuid.uuid4()
  File "{LIB}/uuid.py", line 724, in uuid4
    return UUID(bytes=os.urandom(16), version=4)
                      ~~~~~~~~~~^^^^
BlockingIOError: [Errno 11] system random number generator is not ready; \
see secrets.token_bytes()

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "<string>", line 6, in <module>
  File "{TARGET}/web/__init__.py", line 3, in <module>
RuntimeError: cannot start
"""

DUMP = f"""\
Timeout (0:00:15)!
Thread 0x00007f8c063826c0 (most recent call first):
  File "{LIB}/threading.py", line 359 in wait
  File "{TARGET}/pool/worker.py", line 40 in run

Thread 0x00007f8c079c9b80 (most recent call first):
  File "{LIB}/ssl.py", line 500 in __new__
  File "{LIB}/ssl.py", line 707 in create_default_context
  File "{TARGET}/aiohttp/connector.py", line 911 in <module>
  File "<frozen importlib._bootstrap>", line 488 in _call_with_frames_removed
  File "{TARGET}/aiohttp/__init__.py", line 5 in <module>
  File "<string>", line 6 in <module>
"""

HELD = {"answers": {"held": 1}}


def test_parse_traceback_keeps_the_chain_in_order():
    blocks = parse_traceback(CHAINED)
    assert [b[0].split(":")[0] for b in blocks] == ["BlockingIOError",
                                                    "RuntimeError"]
    assert blocks[0][1][-1] == Frame(f"{LIB}/uuid.py", 724, "uuid4")
    assert len(blocks[0][1]) == 5


def test_parse_dump_puts_the_outermost_frame_first():
    threads = parse_dump(DUMP)
    assert len(threads) == 2
    assert threads[1][0] == Frame("<string>", 6, "<module>")
    assert threads[1][-1].function == "__new__"


def test_culprit_of_a_traceback_is_the_stdlib_call_and_its_caller():
    frames = parse_traceback(CHAINED)[0][1]
    assert culprit(frames, TARGET) == {
        "caller": "web/app.py:12", "api": "uuid.uuid4",
        "category": "uuid.uuid4"}


def test_culprit_of_a_dump_names_the_ssl_context():
    frames = parse_dump(DUMP)[1]
    assert culprit(frames, TARGET) == {
        "caller": "aiohttp/connector.py:911",
        "api": "ssl.create_default_context",
        "category": "ssl (OpenSSL seeding)"}


def test_culprit_of_a_direct_call_comes_from_the_source_line():
    frames = [Frame(f"{TARGET}/tok/__init__.py", 2, "<module>")]
    found = culprit(frames, TARGET,
                    lambda f: ["import os\n", "KEY = os.urandom(32)\n"])
    assert found == {"caller": "tok/__init__.py:2", "api": "os.urandom",
                     "category": "os.urandom"}


def test_culprit_of_an_extension_is_the_module_it_imports():
    frames = [Frame(f"{TARGET}/nacl/bindings/__init__.py", 1, "<module>")]
    found = culprit(frames, TARGET,
                    lambda f: ["from ._sodium import (\n", "    lib)\n"])
    assert found["api"] == "C extension nacl.bindings._sodium"
    assert found["category"] == "C extension"


@pytest.mark.parametrize("source, api", [
    ("from pydantic_core import (\n    Schema,\n    SchemaSerializer)\n",
     "C extension pydantic_core"),
    ("import numpy as np\n", "C extension numpy"),
    ("from ._core import SchemaSerializer as S, x\n",
     "C extension pkg._core"),
    ("", "C extension"),
])
def test_culprit_of_an_extension_call_is_the_module_it_comes_from(
        source, api):
    frames = [Frame(f"{TARGET}/pkg/types.py", 9, "<module>")]
    lines = (source.splitlines(True) + ["\n"] * 8)[:8] + [
        "SER = np.x(SchemaSerializer(S(1)))\n"]
    assert culprit(frames, TARGET, lambda f: lines)["api"] == api


def test_culprit_of_code_calling_an_extension_itself():
    frames = [Frame("<string>", 6, "<module>"), Frame("<code>", 2, "<module>")]
    code = "from nacl import utils\nutils.random(16)\n"
    found = culprit(frames, TARGET, code=code)
    assert found == {"caller": "<code>:2", "api": "C extension nacl",
                     "category": "C extension"}


@pytest.mark.parametrize("line, module", [
    ("import _cffi_backend", "_cffi_backend"),
    ("from zmq.backend import cython", "zmq.backend"),
    ("from . import _speedups", "pkg.sub._speedups"),
    ("from .. import core", "pkg.core"),
    ("x = 1", None),
])
def test_imported_module(line, module):
    assert imported_module(line, f"{TARGET}/pkg/sub/m.py", TARGET) == module


def test_classify_ok():
    assert classify(0, "", HELD, TARGET) == {"class": OK}


def test_classify_a_chained_blocking_io_error_raises():
    result = classify(1, CHAINED, {}, TARGET)
    assert result["class"] == RAISES
    assert result["api"] == "uuid.uuid4"
    assert result["detail"] == "RuntimeError: cannot start"


def test_classify_a_dump_with_a_held_call_waits():
    result = classify(1, DUMP, HELD, TARGET)
    assert result["class"] == WAITS
    assert result["api"] == "ssl.create_default_context"


def test_classify_a_timeout_without_a_held_call_is_other():
    result = classify(1, DUMP, {"answers": {"held": 0}}, TARGET)
    assert result["class"] == OTHER
    assert result["detail"].startswith("timeout, no call held")


def test_classify_a_kill_at_the_outer_limit():
    result = classify(None, "", HELD, TARGET)
    assert result["class"] == WAITS
    assert "no stack" in result["detail"]


def test_classify_an_unrelated_error_is_other():
    text = ('Traceback (most recent call last):\n'
            '  File "<string>", line 6, in <module>\n'
            'ImportError: libfoo.so: cannot open shared object file\n')
    result = classify(1, text, {}, TARGET)
    assert result == {"class": OTHER, "detail": "ImportError: libfoo.so: "
                      "cannot open shared object file"}


def test_modules_of_a_record(tmp_path):
    info = tmp_path / "x-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("\n".join([
        "google/api_core/__init__.py,,", "google/api_core/x.py,,",
        "six.py,,", "_cffi_backend.cpython-313-x86_64-linux-gnu.so,,",
        "tests/__init__.py,,", "x.libs/libz.so,,",
        "x-1.0.dist-info/RECORD,,", "distutils-precedence.pth,,"]))
    assert impact_install.modules_of(info) == ["google.api_core", "six"]


def test_requested_reads_files_and_the_ranking(tmp_path):
    ranking = tmp_path / "top.txt"
    ranking.write_text("# ranked\nboto3\nrequests\nsix\n")
    reqs = tmp_path / "req.txt"
    reqs.write_text("-r other.txt\nrequests==2.32.3  # pinned\n\n")
    assert impact.requested(["six"], [reqs], 2, ranking) == [
        "six", "requests==2.32.3", "boto3", "requests"]


def test_requested_refuses_too_large_a_top(tmp_path):
    ranking = tmp_path / "top.txt"
    ranking.write_text("boto3\n")
    with pytest.raises(impact.Error, match="ranks only 1"):
        impact.requested([], [], 5, ranking)


def row(module, patched, stock, **culprit_fields):
    return {"rank": 1, "distribution": module, "version": "1",
            "module": module,
            "results": {"patched": {"class": patched, **culprit_fields},
                        "stock": {"class": stock, **culprit_fields}}}


def test_report_counts_differences_and_mismatches():
    report = {"date": "2026-11-29", "command": "impact", "limit": 15.0,
              "builds": {"patched": "p", "stock": "s"},
              "distributions": ["a", "b", "c", "d"],
              "skipped": {"e": "no wheel"},
              "probes": [{"probe": "key", "code": "os.urandom(1)",
                          "results": {"patched": {"class": RAISES},
                                      "stock": {"class": WAITS}}}],
              "rows": [row("a", OK, OK),
                       row("b", RAISES, WAITS, api="os.urandom",
                           caller="b/__init__.py:1", category="os.urandom"),
                       row("c", NOT_IMPORTABLE, OK),
                       row("d", NOT_IMPORTABLE, NOT_IMPORTABLE)]}
    assert impact_report.summary(report) == (
        "4 modules of 4 packages; patched: 1 ok, 1 raises, 0 waits, "
        "0 other; stock: 1 ok, 0 raises, 1 waits, 0 other; not importable "
        "1, baseline mismatch 1, not assessed 1")
    text = impact_report.markdown(report)
    assert "* `b` (b): patched raises, stock waits" in text
    assert "* `c`: patched not importable; stock ok" in text
    assert "| os.urandom | 1 | 1 | Raises BlockingIOError" in text
    assert ("| 1 | b | b | raises | waits | os.urandom from "
            "`b/__init__.py:1` |") in text
    assert "| key | `os.urandom(1)` | raises | waits |" in text


# --- Three tiny packages through the real thing ----------------------------

PACKAGES = {
    "pep522-probe-urandom": "import os\nKEY = os.urandom(16)\n",
    "pep522-probe-secrets": "import secrets\nKEY = secrets.token_bytes(16)\n",
    "pep522-probe-quiet": "VALUE = 42\n",
    "pep522-probe-devrandom":
        "with open('/dev/random', 'rb') as f:\n    KEY = f.read(16)\n",
}
PROBES = {"uuid4": {"requires": [], "code": "import uuid; uuid.uuid4()"},
          "quiet": {"requires": ["pep522-probe-quiet"],
                    "code": "import pep522_probe_quiet"}}
MISSING = "pep522-probe-missing"
LIMIT = 3


def make_wheel(directory, name, code):
    """A minimal pure-Python wheel of *name* 0.1 whose module runs *code*."""
    module = name.replace("-", "_")
    files = {f"{module}/__init__.py": code,
             f"{module}-0.1.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
             f"{module}-0.1.dist-info/WHEEL":
                 "Wheel-Version: 1.0\nGenerator: test\n"
                 "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(
            hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record_path = f"{module}-0.1.dist-info/RECORD"
    files[record_path] = "\n".join(record + [f"{record_path},,"]) + "\n"
    with zipfile.ZipFile(directory / f"{module}-0.1-py3-none-any.whl",
                         "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


BUILDS = {"patched": False, "stock": True}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    if not rngsim.supported():
        pytest.skip(rngsim.UNSUPPORTED)
    targets = {name: config.Target(release_under_test(), stock=stock)
               for name, stock in BUILDS.items()}
    if UNDER_MAKE_TEST:   # which builds both
        for target in targets.values():
            built(target)
    pythons = {name: target.python for name, target in targets.items()}
    builds = {name: p for name, p in pythons.items() if p.exists()}
    if not builds:
        pytest.skip("neither build is built: run `make` and `make STOCK=1`")
    tmp = tmp_path_factory.mktemp("impact")
    wheels = tmp / "wheels"
    wheels.mkdir()
    for name, code in PACKAGES.items():
        make_wheel(wheels, name, code)
    report = impact.measure(builds, [*PACKAGES, MISSING], tmp / "out", LIMIT,
                            find_links=wheels, command="test", probes=PROBES)
    return report, pythons, tmp / "out"


EXPECTED = {
    ("patched", "pep522_probe_urandom"):
        (RAISES, "os.urandom", "pep522_probe_urandom/__init__.py:2"),
    ("patched", "pep522_probe_secrets"):
        (WAITS, "secrets.token_bytes", "pep522_probe_secrets/__init__.py:2"),
    ("patched", "pep522_probe_quiet"): (OK, None, None),
    ("stock", "pep522_probe_urandom"):
        (WAITS, "os.urandom", "pep522_probe_urandom/__init__.py:2"),
    ("stock", "pep522_probe_secrets"):
        (WAITS, "secrets.token_bytes", "pep522_probe_secrets/__init__.py:2"),
    ("stock", "pep522_probe_quiet"): (OK, None, None),
    ("patched", "pep522_probe_devrandom"):
        (WAITS, "open /dev/random", "pep522_probe_devrandom/__init__.py:1"),
    ("stock", "pep522_probe_devrandom"):
        (WAITS, "open /dev/random", "pep522_probe_devrandom/__init__.py:1"),
    ("patched", "uuid4"): (RAISES, "uuid.uuid4", "<code>:1"),
    ("stock", "uuid4"): (WAITS, "uuid.uuid4", "<code>:1"),
    ("patched", "quiet"): (OK, None, None),
    ("stock", "quiet"): (OK, None, None),
}


@pytest.mark.parametrize("build, module", list(EXPECTED))
def test_class_and_culprit(measured, build, module):
    report, pythons, _ = measured
    if build not in report["builds"]:
        pytest.skip(f"{pythons[build]} is not built: run `make"
                    f"{' STOCK=1' if BUILDS[build] else ''}`")
    result = next(r["results"][build]
                  for r in report["rows"] + report["probes"]
                  if module in (r.get("module"), r.get("probe")))
    assert (result["class"], result.get("api"),
            result.get("caller")) == EXPECTED[build, module], result


def test_a_package_that_cannot_be_installed_is_skipped_with_the_reason(
        measured):
    report, _, _ = measured
    assert report["skipped"][MISSING].startswith(
        f"Because {MISSING} was not found"), report["skipped"]
    assert {r["distribution"] for r in report["rows"]} == set(PACKAGES)


def test_report_files_are_written(measured):
    report, _, out = measured
    assert json.loads((out / "impact.json").read_text()) == report
    assert impact_report.summary(report) in (out / "impact.md").read_text()


def test_rerun_reuses_the_target_and_the_results(measured):
    # Nothing is installed again (uv would fail on the missing directory)
    # and nothing imported again (a wait alone takes LIMIT seconds).
    report, _, out = measured
    builds = {b: config.pathlib.Path(p) for b, p in report["builds"].items()}
    started = time.monotonic()
    again = impact.measure(builds, list(PACKAGES), out, LIMIT,
                           find_links="/nonexistent", command="test",
                           probes=PROBES)
    assert time.monotonic() - started < LIMIT
    assert again["rows"] == report["rows"]
    assert again["probes"] == report["probes"]
    assert again["skipped"] == {}
