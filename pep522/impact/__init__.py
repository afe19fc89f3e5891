"""The impact assessment: which PyPI packages raise or wait at early boot."""
