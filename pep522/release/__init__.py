"""Obtain and verify a release, its patched tree and series; export, port."""
