"""`make install`: CPython's own `make install`, under the right prefix.

The build itself is stubbed (a real one takes minutes; `make test` makes
it anyway): what is tested is what install() does around it, with a
Makefile whose `install` target writes where CPython's would.
"""

import json

from pep522 import build

MAKEFILE = """\
install:
\tmkdir -p $(PREFIX)/bin
\techo python > $(PREFIX)/bin/python3
"""


def configure(target, prefix):
    """What configure and build() leave: the stamp and a Makefile."""
    target.obj.mkdir(parents=True, exist_ok=True)
    build.configure_stamp(target).write_text(json.dumps(
        {"args": [f"--prefix={prefix}"], "env": build.CONFIGURE_ENV}))
    (target.obj / "Makefile").write_text(f"PREFIX = {prefix}\n" + MAKEFILE)


def stub_build(monkeypatch, calls):
    def fake_build(target, configure_args="", prefix=None):
        calls.append(prefix)
        if prefix is not None:
            configure(target, prefix)
        return target.python
    monkeypatch.setattr(build, "build", fake_build)


def test_install_without_prefix_keeps_the_configured_one(fake, monkeypatch):
    """`make install` without PREFIX (this raised TypeError after
    installing): the prefix the tree was configured with."""
    calls = []
    stub_build(monkeypatch, calls)
    prefix = fake.tmp_path / "configured"
    configure(fake.target, prefix)
    python = build.install(fake.target)
    assert calls == [None]
    assert python == str(prefix / "bin" / "python3")
    assert (prefix / "bin" / "python3").read_text() == "python\n"


def test_install_with_a_prefix_reconfigures_for_it(fake, monkeypatch):
    calls = []
    stub_build(monkeypatch, calls)
    configure(fake.target, fake.tmp_path / "configured")
    prefix = fake.tmp_path / "opt"
    python = build.install(fake.target, str(prefix))
    assert calls == [str(prefix)]
    assert python == str(prefix / "bin" / "python3")
    assert (prefix / "bin" / "python3").is_file()
    assert not (fake.tmp_path / "configured").exists()


def test_the_default_prefix_of_a_tree_never_configured(fake):
    assert build.configured_prefix(fake.target) == build.DEFAULT_PREFIX
