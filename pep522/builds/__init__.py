"""Configure and compile a tree: variants, cross builds, architectures."""
