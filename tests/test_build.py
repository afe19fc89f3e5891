"""`make install`: CPython's own `make install`, under the right prefix.

CPython's configure and make are stubbed (a real build takes minutes;
`make test` makes one anyway): what is tested is what the tool does around
them: the options configure gets, when it runs again, and where `make
install` installs.
"""

import json

import pytest

from pep522 import config
from pep522.builds import build
from pep522.release import tree

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


# --- configure and make, with stand-ins for CPython's --------------------

CONFIGURE = """\
#!/bin/sh
echo "$@" >> configure-calls.txt
printf 'all:\\n\\tprintf "#!/bin/sh\\\\necho 3.99\\\\n" > python\\n\\tchmod +x python\\n' > Makefile
"""


@pytest.fixture
def fake_tree(fake, monkeypatch):
    """The fake release's tree with a configure that records its options
    and a Makefile that makes a "python"; no build dependencies needed."""
    monkeypatch.setattr(build, "ensure_build_deps", lambda log: None)
    monkeypatch.setattr(build.variants, "check_compiler", lambda target: None)
    def tree_of(**kw):
        target = config.Target(fake.release, **kw)
        tree.ensure(target, fake.tarball)
        (target.src / "configure").write_text(CONFIGURE)
        (target.src / "configure").chmod(0o755)
        return target
    return tree_of


def configure_calls(target):
    return (target.obj / "configure-calls.txt").read_text().splitlines()


def test_configure_gets_the_prefix_the_variant_and_configure_args(fake_tree):
    target = fake_tree(variant="debug")
    build.build(target, "--with-lto")
    assert configure_calls(target) == [
        "--prefix=/usr/local --with-pydebug --with-lto"]
    assert target.python.is_file()
    # The same options again: no new configure, the prefix is kept.
    build.build(target, "--with-lto")
    assert len(configure_calls(target)) == 1
    # Other options: configure again, with the prefix it had.
    build.build(target, "", prefix="/opt/p")
    build.build(target)
    assert configure_calls(target)[1:] == ["--prefix=/opt/p --with-pydebug"]
