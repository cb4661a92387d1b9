"""Render a report document as HTML and save a Chromium screenshot of it.

    python docs/screenshot.py REPORT.json OUT.png

Used for ``docs/report-html.png``: the ``concurrency.json`` of the pull-request
run in ``docs/reports.md`` (``tests/data/sample_report.json`` works too).  Needs
Debian's ``chromium``; the browser helper lives with the tests, in
``tests/browser.py``.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import screenshot  # noqa: E402

from pytest_concurrency.report import document, html  # noqa: E402

SIZE = (1280, 2100)  # the sample report down to the end of its last chart


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python docs/screenshot.py REPORT.json OUT.png", file=sys.stderr)
        return 2
    report, out = argv
    try:
        data = document.load(report)
    except document.ReportError as exc:
        print(exc, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        page = pathlib.Path(tmp, "report.html")
        page.write_text(html.render(data), encoding="utf-8")
        png = screenshot(page, pathlib.Path(out), size=SIZE)
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
