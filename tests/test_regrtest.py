"""CPython's own regression tests for the modules the series touches.

They run regrtest on the build `make test` has just made (PEP522_VERSION,
default: the default release), so a change to the series that breaks
CPython's tests fails our suite too.
"""

import pytest

from pep522 import testing
from pep522.errors import Error

# The modules the series changes or tests.
TOUCHED = ["test_os", "test_secrets", "test_random"]


def test_regrtest_of_touched_modules_passes(patched):
    log = patched.logs / "regrtest.log"
    try:
        testing.regrtest(patched, TOUCHED, log, extra=["-j2"])
    except Error as e:
        pytest.fail(str(e))
