"""Early-boot scenarios, run inside the QEMU guest by the interpreter
under test (patched or stock), never on the host.

Each mode prints one line "@@pep522 KEY {json}" on the serial console;
pep522/boot/boot.py parses it.  Only harmless things happen before the call
under test: os.getrandom(1, os.GRND_NONBLOCK) reads the kernel RNG state
without initialising it, and this file imports nothing that seeds
anything (json and time do not).  Run it with PYTHONHASHSEED set, so that
the interpreter's own startup (scenario 1's subject) cannot initialise
the RNG before the call we time.

    guest.py probe KEY          is the RNG ready?
    guest.py CALL KEY           time CALL (urandom, token_bytes,
                                multiprocessing): outcome, RNG before/after
    guest.py rngsim KEY         the project's simulator (rngsim.py beside
                                this file) on this architecture: one
                                KEY.CASE line per case of RNGSIM_CASES
"""

import json
import os
import sys
import time

MARK = "@@pep522"


def rng_ready():
    """True once the kernel RNG is initialised; never blocks or seeds."""
    try:
        os.getrandom(1, os.GRND_NONBLOCK)
    except BlockingIOError:
        return False
    return True


def emit(key, **values):
    print(MARK, key, json.dumps(values, sort_keys=True), flush=True)


def call_urandom():
    return len(os.urandom(16))


def call_token_bytes():
    import secrets
    return len(secrets.token_bytes(16))


def call_multiprocessing():
    import multiprocessing
    return multiprocessing.__name__


CALLS = {
    "urandom": call_urandom,
    "token_bytes": call_token_bytes,
    "multiprocessing": call_multiprocessing,
}


# What the simulator runs: how long until its RNG is ready, and what the
# child does.  The first child exits 0 when os.urandom() returns (stock
# Python: after the wait), 3 when it raises PEP 522's BlockingIOError
# (EAGAIN) at once.  The second must wait; 5 s is longer than a start of
# the interpreter under software emulation on a busy host.
RNGSIM_CHILD = """if 1:
    import os, sys
    try:
        os.urandom(16)
    except BlockingIOError as exc:
        sys.exit(3 if exc.errno == 11 else 4)
"""
# The third waits 5 s with the threshold of secrets' long-wait warning
# made 1 s: it exits 10 plus the number of RuntimeWarnings it saw (stock
# Python has no such warning: 10).
RNGSIM_WARNING_CHILD = """if 1:
    import secrets, sys, warnings
    secrets._WAIT_WARNING_DELAY = 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        secrets.token_bytes(16)
    sys.exit(10 + sum(issubclass(w.category, RuntimeWarning)
                      for w in caught))
"""
RNGSIM_CASES = {
    "urandom_ready_after_20s": (20.0, ["-c", RNGSIM_CHILD]),
    "token_bytes_ready_after_5s": (
        5.0, ["-c", "import secrets; secrets.token_bytes(16)"]),
    "long_wait_warns_once": (5.0, ["-c", RNGSIM_WARNING_CHILD]),
}


def run_rngsim(key):
    """Each case of RNGSIM_CASES under the simulator: exit status, time,
    the simulator's counts."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import rngsim
    for case, (ready_after, args) in RNGSIM_CASES.items():
        start = time.monotonic()
        try:
            code, stats = rngsim.supervise([sys.executable, *args],
                                           rngsim.Policy(), ready_after,
                                           False)
        except Exception as exc:
            emit(f"{key}.{case}", error=f"{type(exc).__name__}: {exc}")
            continue
        emit(f"{key}.{case}", exit_status=code,
             seconds=time.monotonic() - start, calls=stats.calls,
             answers=stats.answers)
    return 0


def timed_call(name, key):
    """Run one call; report how it ended and the RNG state around it."""
    ready_before = rng_ready()
    start = time.monotonic()
    try:
        result = CALLS[name]()
    except BaseException as exc:  # report everything, even SystemExit
        seconds = time.monotonic() - start
        emit(key, outcome="raised", type=type(exc).__name__,
             errno=getattr(exc, "errno", None), message=str(exc),
             seconds=seconds, ready_before=ready_before,
             ready_after=rng_ready())
        return 1
    seconds = time.monotonic() - start
    emit(key, outcome="returned", result=result, seconds=seconds,
         ready_before=ready_before, ready_after=rng_ready())
    return 0


def main(argv):
    mode, key = argv
    if mode == "probe":
        emit(key, ready=rng_ready())
        return 0
    if mode == "rngsim":
        return run_rngsim(key)
    return timed_call(mode, key)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
