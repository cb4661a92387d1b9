"""Sphinx configuration for the pytest-concurrency manual (Markdown pages, myst-parser).

Build it with ``sphinx-build -W --keep-going -b html docs OUT`` (``tox -e docs``).

The fields of the report and baseline files are not written by hand either:
``reports.md`` holds a marker comment that :func:`fill_fields` replaces with a
table per object of the files, built from the JSON Schemas the package ships
(``pytest_concurrency.report.schema``, itself built from the TypedDicts of
``report/records.py``), so each field's meaning is said in one place.

The options reference is not written by hand: ``options.md`` holds a marker comment
that :func:`fill_options` replaces, while the page is read, with a table built from
``pytest_concurrency.options.OPTIONS`` -- the table the plugin registers its
command-line options and ini values from -- so adding an option in the code adds
it to the manual.  Nothing generated is written into the repository.  The
hand-written table of marker arguments on the same page is checked against
``pytest_concurrency.spec.MARKER_ARGS``: an argument the code accepts and the page
does not describe is a warning, and so a failed build.
"""

from __future__ import annotations

import pathlib
import re
import sys

from sphinx.util import logging

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not

from pytest_concurrency.options import OPTIONS, Option  # noqa: E402

logger = logging.getLogger(__name__)

project = "pytest-concurrency"
author = "the pytest-concurrency authors"
copyright = "the pytest-concurrency authors"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "screenshot.py"]
myst_heading_anchors = 3  # GitHub-style #anchors, so links work on GitHub and here
html_theme = "alabaster"
highlight_language = "none"  # terminal output stays plain; code blocks name their language
smartquotes = False  # option names keep their "--"; outputs stay byte for byte
html_title = "pytest-concurrency"
# wide tables (the options reference) and 80-column terminal output need the room
html_theme_options = {"page_width": "1280px", "body_max_width": "none"}
html_static_path: list[str] = []

OPTIONS_MARKER = "<!-- options-table: generated from pytest_concurrency.options.OPTIONS -->"
MARKER_TABLE = re.compile(r"^\| `(\w+)`", re.MULTILINE)


def _cell(text: str) -> str:
    """Text that is safe inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _command_line(option: Option) -> str:
    if option.kind == "flag":
        return f"`{option.flag}`"
    if option.kind == "switch":
        return f"`{option.flag} on\\|off`"
    usage = f"`{option.flag} {option.metavar or 'VALUE'}`"
    return usage + " (repeatable)" if option.kind == "paths" else usage


def _ini(option: Option) -> str:
    kind = {"flag": "true/false", "switch": "true/false", "paths": "paths"}.get(option.kind)
    return f"`{option.ini}`" + (f" ({kind})" if kind else "")


def options_table(options: tuple[Option, ...] = OPTIONS) -> str:
    """The Markdown table of every command-line option and ini value."""
    rows = [
        "| command line | ini file | default | marker argument that beats it | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for option in options:
        rows.append(
            "| "
            + " | ".join((
                _command_line(option),
                _ini(option),
                _cell(option.default) or "—",
                f"`{option.marker}`" if option.marker else "—",
                _cell(option.help),
            ))
            + " |"
        )
    return "\n".join(rows)


def fill_options(app, docname: str, source: list[str]) -> None:
    """Sphinx's source-read event: put the generated table into options.md."""
    if docname != "options":
        return
    if OPTIONS_MARKER not in source[0]:
        logger.warning("options.md lost its marker comment %r; the options table "
                       "cannot be generated", OPTIONS_MARKER, location="options")
        return
    source[0] = source[0].replace(OPTIONS_MARKER, options_table())
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


FIELDS_MARKER = "<!-- fields-tables: generated from pytest_concurrency.report.schema -->"


def _type(node: dict) -> str:
    """A field's type in words: ``string or null``, ``list of integers``."""
    if "const" in node:
        return f"`{node['const']!r}`".replace("'", '"')
    if "enum" in node:
        return " or ".join(f'`"{value}"`' for value in node["enum"])
    kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
    words = []
    for kind in kinds:
        if kind == "array":
            words.append(f"list of {_type(node['items']).replace('object', 'objects')}"
                         .replace("integer", "integers").replace("string", "strings"))
        elif kind == "object" and "additionalProperties" in node:
            inner = _type(node["additionalProperties"])
            words.append(f"object of {inner}s" if " " not in inner else f"object of ({inner})")
        else:
            words.append(kind)
    return " or ".join(words)


def _objects(node: dict, path: str):
    """(path, object schema) for every object with fields in ``node``, outermost first."""
    if "properties" in node:
        yield path, node
        for name, sub in node["properties"].items():
            yield from _objects(sub, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        yield from _objects(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        key = "<key>" if "propertyNames" in node else "<name>"
        yield from _objects(node["additionalProperties"], f"{path}.{key}")


def fields_tables() -> str:
    """A Markdown table per object of the report and baseline files: each field,
    its type, whether every file has it, and what it means."""
    from pytest_concurrency.report import schema

    parts = []
    for title, built in (("report", schema.report()), ("baseline", schema.baseline())):
        for path, node in _objects(built, ""):
            required = set(node.get("required", ()))
            heading = f"`{path}`" if path else f"the {title} file"
            what = _cell(node.get("description", ""))
            parts += [f"**{heading}** ({title}): {what}", "",
                      "| field | type | always there | meaning |", "| --- | --- | --- | --- |"]
            for name, sub in node["properties"].items():
                parts.append(f"| `{name}` | {_cell(_type(sub))} | "
                             f"{'yes' if name in required else 'no'} | "
                             f"{_cell(sub.get('description', ''))} |")
            parts.append("")
    return "\n".join(parts)


def fill_fields(app, docname: str, source: list[str]) -> None:
    """Sphinx's source-read event: put the generated field tables into reports.md."""
    if docname != "reports":
        return
    if FIELDS_MARKER not in source[0]:
        logger.warning("reports.md lost its marker comment %r; the field tables cannot be "
                       "generated", FIELDS_MARKER, location="reports")
        return
    source[0] = source[0].replace(FIELDS_MARKER, fields_tables())


def setup(app):
    app.connect("source-read", fill_options)
    app.connect("source-read", fill_fields)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
