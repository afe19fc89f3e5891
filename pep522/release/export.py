"""Regenerate patches/<series>/ from the commits of the editable tree.

The output is deterministic: `git format-patch` with a zeroed From line,
no signature, 12-digit blob abbreviations and a neutral git
configuration, so exporting unchanged commits gives byte-identical files.
"""

import pathlib
import shutil
import tempfile

from pep522 import git, steps
from pep522.errors import Error
from pep522.release import series, tree

FORMAT_PATCH = ["format-patch", "--zero-commit", "--no-signature",
                "--no-renames", "--abbrev=12", "--no-numbered",
                "--keep-subject"]


def export(target):
    """Write the commits after `upstream` in *target*'s tree as the series."""
    src = target.src
    series_dir = target.release.series_dir
    if not src.exists():
        raise Error(f"{steps.display(src)} does not exist",
                    hint="run `make checkout` first")
    if git.dirty_files(src):
        tree.check_no_work(target)   # raises, listing the files
    stamp = tree.read_stamp(src)
    old_names = series.read(series_dir)
    if stamp is None or stamp["series"] != series.digest(series_dir,
                                                         old_names):
        raise Error(f"{steps.display(series_dir)} has changed since "
                    f"{steps.display(src)} was made; exporting would "
                    "overwrite that change",
                    hint="commit or stash the change to the patches, "
                         "then run `make checkout` to bring the tree up to "
                         "date")
    target.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.dir) as tmp:
        git.git(src, *FORMAT_PATCH, "-o", tmp, f"{tree.UPSTREAM_TAG}..HEAD")
        new = sorted(p.name for p in pathlib.Path(tmp).iterdir())
        for name in old_names:
            (series_dir / name).unlink()
        for name in new:
            shutil.move(f"{tmp}/{name}", series_dir / name)
    lines = series.header(series_dir) + new
    (series_dir / "series").write_text("".join(line + "\n" for line in lines))
    tree.write_stamp(src, series.digest(series_dir, new))
    return new
