"""What the series makes os.urandom() raise while the RNG is not ready.

The one definition of PEP 522's error, which every check of the patched
interpreter (the boot scenarios, the Debian smoke checks and systemd
boot, the end-to-end suite) compares with what it saw.
"""

# BlockingIOError's errno and strerror, and str() of the exception.
EAGAIN = 11
STRERROR = ("system random number generator is not ready; "
            "see secrets.token_bytes()")
MESSAGE = f"[Errno {EAGAIN}] {STRERROR}"
