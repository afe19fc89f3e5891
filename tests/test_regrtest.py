"""CPython's own regression tests for what the series touches.

They run regrtest on the build `make test` has just made (PEP522_VERSION,
default: the default release), so a change to the series that breaks
CPython's tests fails our suite too.
"""

import pytest

from pep522 import testing
from pep522.errors import Error

# The test modules the series changes, run whole.
TOUCHED = ["test_os", "test_secrets", "test_random"]
# The series' multiprocessing tests (the whole of those modules takes
# several minutes; `make test-full` runs them).
MULTIPROCESSING = ["test_multiprocessing_spawn",
                   "test_multiprocessing_forkserver"]


def run_regrtest(target, tests, log_name, extra):
    try:
        testing.regrtest(target, tests, target.logs / log_name, extra=extra)
    except Error as e:
        pytest.fail(str(e))


def test_regrtest_of_touched_modules_passes(patched):
    run_regrtest(patched, TOUCHED, "regrtest.log", ["-j2"])


def test_regrtest_of_lazy_multiprocessing_authkey_passes(patched):
    run_regrtest(patched, MULTIPROCESSING, "regrtest-multiprocessing.log",
                 ["-j2", "-m", "TestLazyAuthkey"])
