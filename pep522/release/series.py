"""Quilt series files: patches/<series>/series lists the patches in order."""

import hashlib

from pep522.errors import Error


def read(series_dir):
    """The patch file names listed in *series_dir*/series, in order.

    Blank lines and comments (from '#' to the end of the line) are
    ignored.  Quilt allows a -pN option after a name; our patches are all
    -p1 (git format-patch form), so only that is accepted.
    """
    path = series_dir / "series"
    if not path.is_file():
        raise Error(f"{path} does not exist",
                    hint="create it (an empty file is an empty series)")
    names = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        name, options = words[0], words[1:]
        if options not in ([], ["-p1"]):
            raise Error(f"{path}:{number}: unsupported options "
                        f"{' '.join(options)!r} (patches must be -p1)")
        if not (series_dir / name).is_file():
            raise Error(f"{path}:{number}: {name} does not exist in "
                        f"{series_dir}")
        names.append(name)
    return names


def header(series_dir):
    """The comment lines at the top of the series file, kept on export."""
    path = series_dir / "series"
    lines = []
    if path.is_file():
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            lines.append(line)
    return lines


def digest(series_dir, names):
    """A hash of the series' contents, to tell whether it has changed."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\0")
        h.update((series_dir / name).read_bytes() + b"\0")
    return h.hexdigest()
