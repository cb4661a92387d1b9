"""The manual's generated tables, written into the pages so that GitHub shows them too.

``options.md`` holds the table of every command-line option and ini value, built from
``pytest_concurrency.options.OPTIONS`` (the table the plugin registers them from), and
``reports.md`` a table per object of the report and baseline files, built from the JSON
Schemas the package ships (``pytest_concurrency.report.schema``, itself built from the
TypedDicts of ``report/records.py``).  Each sits between a marker comment and an end
comment.  ``python docs/generated.py`` rewrites them; tests/test_docs.py fails when a
page's table is not what the code makes, and so does the Sphinx build (docs/conf.py).
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Callable, Iterator

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # the package from this checkout, installed or not

from pytest_concurrency.options import OPTIONS, Option  # noqa: E402


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


# page, the comment that opens its generated region, what goes between
REGIONS: tuple[tuple[str, str, Callable[[], str]], ...] = (
    ("options.md", "<!-- options-table: generated from pytest_concurrency.options.OPTIONS -->",
     options_table),
    ("reports.md", "<!-- fields-tables: generated from pytest_concurrency.report.schema -->",
     fields_tables),
)
END = "<!-- end of the generated part: python docs/generated.py rewrites it -->"


def filled(text: str, opening: str, make: Callable[[], str]) -> str:
    """``text`` with the region after ``opening`` holding what ``make`` builds."""
    if opening not in text or END not in text.split(opening, 1)[1]:
        raise ValueError(f"the page lost {opening!r} or the end comment after it")
    before, rest = text.split(opening, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{opening}\n\n{make().strip()}\n\n{END}{after}"


def stale() -> Iterator[str]:
    """The pages whose generated tables are not what the code makes now."""
    for page, opening, make in REGIONS:
        text = (DOCS / page).read_text(encoding="utf-8")
        if filled(text, opening, make) != text:
            yield page


def main() -> None:
    for page, opening, make in REGIONS:
        path = DOCS / page
        path.write_text(filled(path.read_text(encoding="utf-8"), opening, make),
                        encoding="utf-8")


if __name__ == "__main__":
    main()
