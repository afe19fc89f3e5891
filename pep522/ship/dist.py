"""`make dist`: what packagers who do not use quilt download.

Two artifacts in build/dist/, both reproducible (same series, same bytes):

* Python-<version>+pep522.tar.xz, the patched source tree, with a
  .sha256 file.  It is the files of the patched tree's HEAD (committed
  content, no .git, no build products), written with tarfile rather
  than `git archive`, whose mtimes and pax comment come from the commit
  (its committer date and id differ between a developer's tree and one
  made anew from the series): sorted members, owner and group 0/root,
  directories 0755, files 0644 or 0755, every mtime SOURCE_DATE_EPOCH or
  else the Date of the last patch, and the git tree id (the same for the
  same content everywhere) as pax comment.  Compression is Python's lzma
  (xz), deterministic for a given input and preset.
* pep522-<version>.mbox, the series as one mailbox for `git am` (Fedora's
  `%autosetup -S git_am`): the format-patch files concatenated in series
  order, each already a one-message mbox.  It is checked by applying it
  with `git am` to the pristine release and comparing the resulting tree
  with the patched one.
"""

import io
import lzma
import os
import subprocess
import tarfile
import tempfile

from pep522 import config, git, options, steps
from pep522.builds import build
from pep522.errors import Error
from pep522.release import series, source, tree

SUFFIX = "+pep522"
XZ_PRESET = 6


def dist_dir():
    return config.BUILD / "dist"


def tarball_name(release):
    return f"Python-{release.version}{SUFFIX}.tar.xz"


def mbox_name(release):
    return f"pep522-{release.version}.mbox"


def sha256_line(path):
    """`sha256sum` format, so `sha256sum -c FILE.sha256` checks it."""
    digest = source.sha256_of(path)
    return digest, f"{digest}  {path.name}\n"


def write_atomically(path, data):
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    partial.replace(path)


def source_date_epoch(src):
    """The mtime of every member: SOURCE_DATE_EPOCH if set, else the
    author date of HEAD, i.e. the Date of the last patch (or the fixed
    date of the pristine commit).  Not the committer date: commits a
    developer made in the tree carry the time they were made."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    return int(git.git(src, "log", "-1", "--format=%at", "HEAD"))


def tree_entries(src):
    """[(path, mode, blob id)] of every file at HEAD, from git ls-tree."""
    out = git.git(src, "ls-tree", "-r", "-z", "--full-tree", "HEAD")
    entries = []
    for record in out.split("\0"):
        if not record:
            continue
        meta, path = record.split("\t", 1)
        mode, kind, blob = meta.split()
        if kind != "blob":
            raise Error(f"{steps.display(src)}: {path} is a {kind}; only "
                        "files and symlinks can go into the tarball")
        entries.append((path, mode, blob))
    return entries


def blobs(src, ids):
    """{blob id: content}, read in one `git cat-file --batch`."""
    proc = subprocess.run(["git", "-C", str(src), "cat-file", "--batch"],
                          input="".join(i + "\n" for i in ids).encode(),
                          capture_output=True, env=git.env(), check=True)
    data, pos, found = proc.stdout, 0, {}
    for blob in ids:
        end = data.index(b"\n", pos)
        size = int(data[pos:end].split()[2])
        found[blob] = data[end + 1:end + 1 + size]
        pos = end + 1 + size + 1
    return found


def tar_bytes(src, prefix, epoch):
    """An uncompressed tar of HEAD: sorted, root-owned, one mtime."""
    entries = tree_entries(src)
    content = blobs(src, sorted({blob for _, _, blob in entries}))
    dirs = {prefix}
    for path, _, _ in entries:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add(f"{prefix}/{'/'.join(parts[:i])}")
    members = [(d, None, None) for d in dirs]
    members += [(f"{prefix}/{path}", mode, blob)
                for path, mode, blob in entries]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": git.git(
                          src, "rev-parse", "HEAD^{tree}").strip()}) as tar:
        for name, mode, blob in sorted(members):
            info = tarfile.TarInfo(name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = epoch
            if mode is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif mode == "120000":
                info.type, info.mode = tarfile.SYMTYPE, 0o777
                info.linkname = content[blob].decode()
                tar.addfile(info)
            else:
                info.mode = 0o755 if mode == "100755" else 0o644
                info.size = len(content[blob])
                tar.addfile(info, io.BytesIO(content[blob]))
    return buffer.getvalue()


def make_tarball(target, dest):
    """The xz-compressed tar of the tree's HEAD, under one directory."""
    prefix = dest.name[:-len(".tar.xz")]
    epoch = source_date_epoch(target.src)
    data = tar_bytes(target.src, prefix, epoch)
    write_atomically(dest, lzma.compress(data, format=lzma.FORMAT_XZ,
                                         check=lzma.CHECK_CRC64,
                                         preset=XZ_PRESET))
    return epoch


def make_mbox(release, dest):
    """The series' format-patch files, concatenated in series order."""
    parts = []
    for name in series.read(release.series_dir):
        text = (release.series_dir / name).read_bytes()
        parts.append(text if text.endswith(b"\n") else text + b"\n")
    write_atomically(dest, b"".join(parts))
    return len(parts)


def check_mbox(target, mbox, step):
    """`git am` the mbox onto the pristine release: same tree as HEAD?"""
    with tempfile.TemporaryDirectory(dir=dist_dir()) as tmp:
        clone = f"{tmp}/clone"
        step.run(["git", "clone", "-q", "--no-checkout", target.src, clone],
                 env=git.ENV)
        step.run(["git", "-C", clone, "checkout", "-q", tree.UPSTREAM_TAG],
                 env=git.ENV)
        if mbox.stat().st_size:
            step.run(["git", "-C", clone, "am", "-q", mbox], env=git.ENV)
        got = git.git(clone, "rev-parse", "HEAD^{tree}").strip()
    wanted = git.git(target.src, "rev-parse", "HEAD^{tree}").strip()
    if got != wanted:
        step.fail(f"`git am {mbox.name}` on the pristine release gives tree "
                  f"{got}, not the patched tree {wanted}")


def dist(target, tarball=None):
    """Write the tarball, its .sha256 and the mbox; return their paths."""
    build.prepare(target, tarball)
    out = dist_dir()
    out.mkdir(parents=True, exist_ok=True)
    release = target.release
    archive = out / tarball_name(release)
    mbox = out / mbox_name(release)
    with steps.Step(f"dist: {archive.name} and {mbox.name} from "
                    f"{steps.display(target.src)} HEAD",
                    out / "logs" / f"dist-{release.version}.log") as step:
        epoch = make_tarball(target, archive)
        digest, line = sha256_line(archive)
        write_atomically(archive.with_name(archive.name + ".sha256"),
                         line.encode())
        count = make_mbox(release, mbox)
        check_mbox(target, mbox, step)
    steps.say(f"{steps.display(archive)}  SHA-256 {digest} "
              f"(mtime {epoch})")
    steps.say(f"{steps.display(mbox)}  {count} patches, SHA-256 "
              f"{sha256_line(mbox)[0]} (checked with git am)")
    return archive, mbox


def run(args):
    target = config.Target(config.release(args.version))
    dist(target, args.tarball)
    return 0


def add_parser(sub):
    parser = sub.add_parser(
        "dist", help="the patched source tarball and the series as an mbox",
        description="Write build/dist/Python-<version>+pep522.tar.xz (with "
                    "its .sha256) and build/dist/pep522-<version>.mbox, "
                    "byte-for-byte reproducible.")
    options.add_release(parser)
    parser.set_defaults(func=run)
    return parser
