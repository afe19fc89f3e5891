"""Command-line options the subcommands share."""


def add_release(parser, tarball=True):
    """--version (and --tarball): which pinned release, from where."""
    parser.add_argument("--version", help="upstream release (default: the "
                        "default of upstream.toml)")
    if tarball:
        parser.add_argument("--tarball", help="use this release tarball "
                            "(its SHA-256 is checked)")
        parser.add_argument("--cpython-git", help="a CPython git "
                            "repository (path or URL) to export the "
                            "release from when no tarball is at hand "
                            "(default: $CPYTHON_GIT)")
