"""The tool's layout: every module in its stage, imports downward, no cycle.

pep522/ is a pipeline: the command line at the top, the long targets under
it, the builds and the release below them, the shared pieces at the
bottom.  The import graph is read with `ast` (every import, also those
inside functions) and held against TIERS: a module may import the modules
of its own group and those of a lower tier, never a higher one nor another
group of its own tier, and no modules import each other in a loop.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "pep522"

# From the bottom up: each tier is a set of groups; a group is a subpackage
# of pep522, or a set of the modules at pep522's top level.
CORE = {"config", "errors", "git", "options", "steps", "venvs"}
TOP = {"cli", "__main__"}
TIERS = [
    {"core": CORE},
    {"release": "release", "sim": "sim"},
    {"builds": "builds"},
    {"checks": "checks"},
    {"boot": "boot", "bench": "bench", "impact": "impact", "ship": "ship"},
    {"debian": "debian"},
    {"cli": TOP},
]


def modules():
    """{dotted name: path} of every module of the package (data folders,
    which have no __init__.py, are not modules)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if not (path.parent / "__init__.py").exists():
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(text, known):
    """The modules of *known* that the module whose code is *text*
    imports."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module in known:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
    return found


def graph():
    known = modules()
    return {name: imports(path.read_text(), known) - {name}
            for name, path in known.items()}


def place(name):
    """(tier, group) of the module *name*."""
    parts = name.split(".")[1:]
    for tier, groups in enumerate(TIERS):
        for group, members in groups.items():
            if isinstance(members, str):
                if parts and parts[0] == members and (
                        len(parts) > 1 or name == f"pep522.{members}"):
                    return tier, group
            elif len(parts) == 1 and parts[0] in members:
                return tier, group
    if not parts:
        return -1, "pep522"  # the package's own one-line __init__
    return None


def cycles(edges):
    """The strongly connected components of more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read():
    edges = graph()
    # A check that read nothing would pass whatever the code does.
    assert len(edges) > 40
    assert "pep522.release.tree" in edges["pep522.builds.build"]
    assert "pep522.sim.rngsim" in edges["pep522.boot.guest_tests"]


def test_imports_inside_functions_count():
    known = {"pep522", "pep522.a", "pep522.a.b", "pep522.c"}
    code = ("def f():\n    from pep522.a import b, X\n"
            "    import pep522.c\n    import os\n")
    assert imports(code, known) == {"pep522.a.b", "pep522.a", "pep522.c"}


def test_every_module_lives_in_a_stage():
    unplaced = [name for name in graph() if place(name) is None]
    assert not unplaced, (
        "modules outside the layout (put them in a subpackage named for "
        f"their stage, or add it to TIERS): {unplaced}")


def test_imports_run_downward():
    upward = []
    for name, imported in graph().items():
        tier, group = place(name)
        for other in imported:
            other_tier, other_group = place(other)
            if other_group != group and other_tier >= tier:
                upward.append(f"{name} -> {other}")
    assert not upward, f"imports that do not run downward: {upward}"


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_check_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]]


@pytest.mark.parametrize("package", sorted(
    path.name for path in PACKAGE.iterdir()
    if (path / "__init__.py").exists()))
def test_each_subpackage_says_what_it_holds(package):
    text = (PACKAGE / package / "__init__.py").read_text()
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring and "\n" not in docstring.strip(), (
        f"pep522/{package}/__init__.py: one line saying what the stage does")
