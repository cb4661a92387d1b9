"""Sphinx configuration for the pytest-concurrency manual (Markdown pages, myst-parser).

Build it with ``sphinx-build -W --keep-going -b html docs OUT`` (``tox -e docs``).

The options reference (``options.md``) and the fields of the report and baseline files
(``reports.md``) are not written by hand: ``docs/generated.py`` builds those tables from
the code (``pytest_concurrency.options.OPTIONS``, the JSON Schemas the package ships)
and writes them into the pages, so that GitHub shows them too.  The build warns, and so
fails, when a page's table is not what the code makes (run ``python
docs/generated.py``).  The hand-written table of marker arguments in ``options.md`` is
checked against ``pytest_concurrency.spec.MARKER_ARGS``: an argument the code accepts
and the page does not describe is a warning, and so a failed build.
"""

from __future__ import annotations

import pathlib
import re
import sys

from sphinx.util import logging

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not
sys.path.insert(0, str(ROOT / "docs"))

import generated  # noqa: E402

logger = logging.getLogger(__name__)

project = "pytest-concurrency"
author = "the pytest-concurrency authors"
copyright = "the pytest-concurrency authors"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "screenshot.py", "generated.py"]
myst_heading_anchors = 3  # GitHub-style #anchors, so links work on GitHub and here
html_theme = "alabaster"
highlight_language = "none"  # terminal output stays plain; code blocks name their language
smartquotes = False  # option names keep their "--"; outputs stay byte for byte
html_title = "pytest-concurrency"
# wide tables (the options reference) and 80-column terminal output need the room
html_theme_options = {"page_width": "1280px", "body_max_width": "none"}
html_static_path: list[str] = []

MARKER_TABLE = re.compile(r"^\| `(\w+)`", re.MULTILINE)


def check_generated(app, docname: str, source: list[str]) -> None:
    """Sphinx's source-read event: the generated tables are what the code makes."""
    for page, opening, make in generated.REGIONS:
        if docname != page.removesuffix(".md"):
            continue
        try:
            current = generated.filled(source[0], opening, make) == source[0]
        except ValueError as exc:
            logger.warning("%s: %s", page, exc, location=docname)
            continue
        if not current:
            logger.warning("%s: the generated table is not what the code makes now; run "
                           "python docs/generated.py", page, location=docname)
    if docname == "options":
        check_marker_arguments(source[0])


def check_marker_arguments(text: str) -> None:
    """Every argument the concurrency marker accepts has a row in options.md."""
    try:
        from pytest_concurrency.spec import MARKER_ARGS
    except ImportError as exc:  # the package's dependencies are missing
        logger.warning("cannot check the marker arguments: %s", exc, location="options")
        return
    described = set(MARKER_TABLE.findall(text))
    for name in MARKER_ARGS:
        if name not in described:
            logger.warning("the concurrency marker accepts %r (spec.MARKER_ARGS) but "
                           "options.md has no row for it", name, location="options")


def setup(app):
    app.connect("source-read", check_generated)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
