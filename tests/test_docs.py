"""make docs: the warning comparison, and the rendered pages of the series.

The rendered-page checks read the HTML of `make docs` if it ran, else,
under `make test`, render the pages the series changes alone
(docs.quick: Doc/requirements.txt's Sphinx from PyPI, about a minute on
an idle machine, then reused while the tree is the same); run by hand
without either, they skip and say so.
"""

import collections
import html
import re

import pytest

from conftest import UNDER_MAKE_TEST, release_under_test
from pep522 import config
from pep522.errors import Error
from pep522.release import tree
from pep522.ship import docs


def test_parse_warnings_drops_line_numbers_and_the_tree_path(tmp_path):
    doc = tmp_path / "work" / "Doc"
    warnings = tmp_path / "warnings.txt"
    warnings.write_text(
        f"{doc}/library/os.rst:4711: WARNING: py:func reference target not "
        "found: nowhere [ref.func]\n"
        f"{doc}/library/os.rst:12: WARNING: py:func reference target not "
        "found: nowhere [ref.func]\n"
        f"\x1b[91m{doc}/build/NEWS:3: ERROR: Unknown interpreted text role "
        "\"bogus\".\x1b[39;49;00m\n")
    found = docs.parse_warnings(warnings, doc)
    assert found == collections.Counter({
        ("library/os.rst",
         "py:func reference target not found: nowhere [ref.func]"): 2,
        ("build/NEWS", 'Unknown interpreted text role "bogus".'): 1,
    })


def test_compare_finds_the_warnings_stock_has_fewer_of(fake):
    """A warning is new where the patched build has it more often than
    stock, wherever its line moved; those in a page the series changes
    are marked so."""
    tree.ensure(fake.target, fake.tarball)
    fake.commit("Doc/library/secrets.rst", "changed\n", "Doc: secrets")
    out = docs.docs_dir(fake.target)
    out.mkdir(parents=True)
    for kind, lines in (
            ("stock", ["library/os.rst:10: WARNING: x",
                       "library/secrets.rst:5: WARNING: old"]),
            ("patched", ["library/os.rst:12: WARNING: x",
                         "library/os.rst:40: WARNING: x",
                         "library/secrets.rst:7: WARNING: old",
                         "library/secrets.rst:9: WARNING: new"])):
        doc = docs.work_dir(fake.target, kind) / "Doc"
        (out / f"warnings-{kind}.txt").write_text(
            "".join(f"{doc}/{line}\n" for line in lines))
    found, new = docs.compare(fake.target)
    assert sum(found["stock"].values()) == 2
    assert new == [("library/os.rst", "x", False),
                   ("library/secrets.rst", "new", True)]


# --- The rendered pages ------------------------------------------------------

@pytest.fixture(scope="module")
def rendered():
    target = config.Target(release_under_test())
    root = docs.docs_dir(target) / "html"
    if (root / "library" / "secrets.html").is_file():
        return root
    if not UNDER_MAKE_TEST:
        pytest.skip(f"{root} is not built: run `make docs` (or `make test`,"
                    " which renders the series' pages)")
    try:
        return docs.quick(target)
    except Error as e:
        pytest.fail(str(e))


def entry(page, anchor):
    """The HTML of the <dl> describing *anchor* on *page*."""
    text = page.read_text(encoding="utf-8")
    start = text.find(f'id="{anchor}"')
    assert start != -1, f"no {anchor} entry in {page}"
    end = text.find("</dl>", start)
    return text[start:end]


def plain(fragment):
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", fragment).split()))


def test_secrets_page_documents_wait_for_system_rng(rendered):
    body = entry(rendered / "library" / "secrets.html",
                 "secrets.wait_for_system_rng")
    # A downstream addition, not tied to a Python version: the series
    # says so in a note with the feature test, and has no versionadded.
    text = plain(body)
    assert "downstream addition" in text
    assert 'hasattr(secrets, "wait_for_system_rng")' in text
    assert "versionmodified" not in body and "Added in version" not in text


def test_secrets_token_bytes_says_it_waits(rendered):
    body = plain(entry(rendered / "library" / "secrets.html",
                       "secrets.token_bytes"))
    assert "wait_for_system_rng" in body


def test_os_urandom_mentions_blocking_io_error(rendered):
    body = plain(entry(rendered / "library" / "os.html", "os.urandom"))
    assert "BlockingIOError" in body


def test_changelog_lists_the_series_news_entries(rendered):
    text = plain((rendered / "whatsnew" / "changelog.html").read_text(
        encoding="utf-8"))
    assert "wait_for_system_rng" in text


def test_registry_requirements_unpin_direct_urls(tmp_path):
    """A pin to a direct URL (3.15.0rc1's pygments) becomes the package
    from the registry; included files become absolute; the rest stays."""
    doc = tmp_path / "Doc"
    doc.mkdir()
    (doc / "requirements.txt").write_text(
        "sphinx<9.0.0\n"
        "pygments @ https://example.invalid/pygments/archive/abc.tar.gz\n"
        "-c constraints.txt\n")
    path, unpinned = docs.registry_requirements(doc, tmp_path / "out")
    assert unpinned == ["pygments"]
    lines = path.read_text().splitlines()
    assert lines[0] == "sphinx<9.0.0"
    assert lines[1].split("#")[0].strip() == "pygments"
    assert lines[2] == f"-c {doc / 'constraints.txt'}"
    (doc / "requirements.txt").write_text("sphinx<9.0.0\n")
    assert docs.registry_requirements(doc, tmp_path / "out")[1] == []
