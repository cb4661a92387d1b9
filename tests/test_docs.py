"""The README is a front page and the manual lives in docs/, built by Sphinx (tox -e docs).

The options reference and the report fields are generated from the code into the pages
by docs/generated.py; these tests check that they are current, and that no link between
the pages is broken, without needing Sphinx.  That every example runs and prints what
its page shows is tests/test_docs_examples.py's business.
"""

import pathlib
import re
import sys

import pytest

from pytest_concurrency import options

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))
import generated  # noqa: E402

README = ROOT / "README.md"

PAGES = (
    "index.md",  # the manual's front page and its toctree
    "modes.md",  # modes and the two test styles
    "failures.md",  # hangs, crashes, leaks and interrupts
    "explore.md",
    "budgets.md",  # budgets and advice
    "free-threaded.md",  # python3.13t
    "reports.md",  # reports, baselines and CI
    "options.md",  # options reference, generated
    "migrating.md",  # from pytest-run-parallel
    "works-with.md",
    "limits.md",
)
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6}) (.+)$")
SLUG_DROP = re.compile(r"[^\w\u4e00-\u9fff\- ]")  # myst-parser's (and GitHub's) slugs
ANCHOR_LEVELS = 3  # docs/conf.py: myst_heading_anchors


def test_readme_is_a_front_page_of_at_most_300_lines():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


def test_readme_has_the_two_commands_and_the_pypi_name():
    text = README.read_text(encoding="utf-8")
    assert "python -m pip install -e . -e ./example_project && " \
           "python -m pytest example_project/tests" in text
    assert "python -m pip install tox && python -m tox" in text
    assert "pytest-concurrency-harness" in text
    assert "## Limits, stated honestly" in text


@pytest.mark.parametrize("page", PAGES)
def test_every_page_of_the_manual_exists_and_is_in_the_toctree(page):
    assert (DOCS / page).is_file()
    if page != "index.md":
        toctree = (DOCS / "index.md").read_text(encoding="utf-8").split("```{toctree}")[1]
        assert page.removesuffix(".md") in toctree.split()


@pytest.mark.parametrize("page", [p for p in PAGES if p != "index.md"])
def test_the_readme_links_every_page(page):
    assert f"(docs/{page})" in README.read_text(encoding="utf-8")


def test_the_generated_tables_in_the_pages_are_what_the_code_makes():
    """options.md and reports.md hold their generated tables, so that GitHub shows them:
    after a change to an option or a report field, run python docs/generated.py."""
    assert list(generated.stale()) == []


def test_a_page_that_lost_its_generated_region_is_refused():
    opening = generated.REGIONS[0][1]
    with pytest.raises(ValueError, match="lost"):
        generated.filled(f"{opening}\nno end comment", opening, str)


def _links(path):
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or an anchor on the same page
        yield target


@pytest.mark.parametrize("path", [README, *(DOCS / p for p in PAGES)],
                         ids=lambda p: p.name)
def test_relative_links_point_at_files_that_exist(path):
    for target in _links(path):
        file = target.split("#")[0]
        assert (path.parent / file).exists(), f"{path.name} links to missing {target}"


def test_docs_link_no_file_outside_docs():
    """Sphinx cannot resolve a link to a Markdown file it does not build: the pages
    name files outside docs/ as code instead."""
    for page in PAGES:
        for target in _links(DOCS / page):
            resolved = (DOCS / target.split("#")[0]).resolve()
            assert DOCS in resolved.parents, f"{page} links outside docs/: {target}"


def test_the_generated_table_has_a_row_for_every_option():
    table = generated.options_table()
    for option in options.OPTIONS:
        assert f"`{option.flag}" in table
        assert f"`{option.ini}`" in table
    assert len(table.splitlines()) == 2 + len(options.OPTIONS)


def _anchors(path, levels=6):
    """The heading anchors of a Markdown file, as GitHub and myst-parser make them."""
    anchors, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match and len(match[1]) <= levels:
            anchors.add(SLUG_DROP.sub("", match[2].strip().lower().replace(" ", "-")))
    return anchors


@pytest.mark.parametrize("path", [README, *(DOCS / p for p in PAGES)],
                         ids=lambda p: p.name)
def test_links_to_a_heading_find_it(path):
    """``page.md#anchor`` and ``#anchor``: a renamed heading breaks the Sphinx build
    (docs/) or the link on GitHub (README), so it is caught here first."""
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or "#" not in target:
            continue
        file, anchor = target.split("#", 1)
        page = (path.parent / file) if file else path
        levels = ANCHOR_LEVELS if DOCS in page.resolve().parents else 6
        assert anchor in _anchors(page, levels), f"{path.name} links to missing {target}"
