"""Early-boot scenarios, run inside the QEMU guest by the interpreter
under test (patched or stock), never on the host.

Each mode prints one line "@@pep522 KEY {json}" on the serial console;
pep522/boot.py parses it.  Only harmless things happen before the call
under test: os.getrandom(1, os.GRND_NONBLOCK) reads the kernel RNG state
without initialising it, and this file imports nothing that seeds
anything (json and time do not).  Run it with PYTHONHASHSEED set, so that
the interpreter's own startup (scenario 1's subject) cannot initialise
the RNG before the call we time.

    guest.py probe KEY          is the RNG ready?
    guest.py CALL KEY           time CALL (urandom, token_bytes,
                                multiprocessing): outcome, RNG before/after
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
    return timed_call(mode, key)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
