"""The early-boot check: the patched Python in QEMU before the RNG is ready."""
