"""The chroot plumbing, without root: what runs, and where.

The real chroot (mmdebstrap, about 80 s as root) is made and used by
tests/test_regrtest.py.
"""

import pathlib

import pytest

from pep522 import config
from pep522.debian import chroot
from pep522.errors import Error

ROOT = pathlib.Path("/srv/chroot/trixie-buildd")


def test_spec_paths_and_stamp():
    spec = chroot.Spec("trixie", include=("libffi8", "zlib1g"))
    assert spec.root == config.BUILD / "chroot" / "trixie-buildd"
    stamp = spec.stamp("http://deb.example/debian")
    assert stamp["include"] == ["libffi8", "zlib1g"]
    # Another package set or mirror makes another chroot.
    assert stamp != chroot.Spec("trixie").stamp("http://deb.example/debian")
    assert stamp != spec.stamp("http://other.example/debian")


def test_command_runs_in_a_private_mount_namespace():
    argv = chroot.command(ROOT, ["/usr/bin/python3", "-c", "print('x y')"],
                          binds=[pathlib.Path("/work/project")],
                          cwd="/tmp", env={"FOO": "1"})
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private",
                        "--"]
    script = argv[-1]
    lines = script.splitlines()
    assert lines[0] == "set -e"
    # Mounted inside the namespace only: they vanish when it exits.
    assert f"mount -t proc proc {ROOT}/proc" in lines
    assert f"mount --rbind /dev {ROOT}/dev" in lines
    assert (f"mount --bind /work/project {ROOT}/work/project" in lines)
    last = lines[-1]
    assert last.startswith(f"exec chroot {ROOT} /usr/bin/env -i ")
    assert "FOO=1" in last and "PATH=" in last
    assert "cd /tmp" in last and "print(" in last


def test_run_refuses_without_root(monkeypatch):
    monkeypatch.setattr(chroot.os, "geteuid", lambda: 1000)
    with pytest.raises(Error, match="needs root") as info:
        chroot.run(ROOT, ["true"], step=None)
    assert "sudo" in info.value.hint


def test_spec_with_local_debs_copies_them_in(tmp_path):
    debs = (tmp_path / "a_1_amd64.deb", tmp_path / "b_1_all.deb")
    for deb in debs:
        deb.write_bytes(b"x")
    spec = chroot.Spec("trixie", variant="apt", include=("python3",),
                       debs=debs, tag="t")
    assert spec.name == "trixie-apt-t"
    options = spec.options()
    # mmdebstrap takes an --include starting with "/" as one path.
    assert [o for o in options if o.startswith("--include=")] == [
        "--include=python3", f"--include={debs[0]}", f"--include={debs[1]}"]
    # mmdebstrap installs a local .deb only if it is at the same path in
    # the new root.
    assert f'--setup-hook=mkdir -p "$1"{tmp_path}' in options
    assert f"--setup-hook=copy-in {debs[0]} {debs[1]} {tmp_path}" in options
    stamp = spec.stamp("http://deb.example/debian")
    debs[0].write_bytes(b"y")
    assert spec.stamp("http://deb.example/debian") != stamp
