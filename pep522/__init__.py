"""Tooling for cpython-pep522: CPython with PEP 522, as a patch series."""
