"""make docs: the warning comparison, and the rendered pages of the series.

The rendered-page checks need `make docs` to have run (it takes minutes
and PyPI); they are skipped, saying so, when build/<version>/docs/html is
not there.
"""

import collections
import html
import os
import re

import pytest

from pep522 import config, docs


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


def test_a_warning_is_new_only_if_stock_has_fewer():
    stock = collections.Counter({("a.rst", "x"): 1})
    patched = collections.Counter({("a.rst", "x"): 2, ("b.rst", "y"): 1})
    assert sorted((patched - stock).elements()) == [("a.rst", "x"),
                                                    ("b.rst", "y")]
    assert not (stock - stock)


# --- The rendered pages ------------------------------------------------------

@pytest.fixture(scope="module")
def rendered():
    target = config.Target(config.release(os.environ.get("PEP522_VERSION")))
    root = docs.docs_dir(target) / "html"
    if not (root / "library" / "secrets.html").is_file():
        pytest.skip(f"{root} is not built: run `make docs` first")
    return root


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
    assert "versionmodified added" in body
    # The series adds it in 3.13.5, whatever release it is applied to.
    assert "Added in version 3.13.5" in plain(body)


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
