"""What is shipped to packagers: the docs and the source tarball."""
