"""report/html.py: the self-contained HTML report, checked as text and in Chromium."""

import copy
import html
import json
import os
import pathlib
import re
import struct
import xml.etree.ElementTree as ET

import pytest
from browser import dump_dom, find_chromium, screenshot

from pytest_concurrency.report import html as report_html
from pytest_concurrency.report.document import regressions_first

SAMPLE = pathlib.Path(__file__).parent / "data" / "sample_report.json"
CHARTS = ("chart-wall", "chart-speedup", "chart-baseline")


@pytest.fixture
def sample():
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def page(sample):
    return report_html.render(sample)


def chart(page, ident):
    """The chart's <svg> element, parsed (which also proves it is well-formed)."""
    match = re.search(rf'<svg id="{ident}".*?</svg>', page, re.DOTALL)
    assert match, f"no <svg id={ident!r}>"
    return ET.fromstring(match.group(0))


def table_nodeids(page):
    return re.findall(r'<tr class="row-\w+"><td class="nodeid">(.*?)</td>', page)


def test_page_is_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert "<style>" in page
    for value in re.findall(r'\b(?:src|href)\s*=\s*["\']?([^"\'\s>]*)', page, re.IGNORECASE):
        assert not re.match(r"(?:https?:)?//", value), value
    for value in re.findall(r"url\(\s*['\"]?([^)'\"]*)", page, re.IGNORECASE):
        assert not re.match(r"(?:https?:)?//", value), value
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page.lower() and "@import" not in page
    assert not re.search(r"<script[^>]*\bsrc", page, re.IGNORECASE)


def test_header_shows_run_metadata(page, sample):
    run = sample["run"]
    header = page[page.index("<header>"):page.index("</header>")]
    for text in (run["python"], run["platform"], run["machine"], run["git_commit"],
                 "2 usable of 2", "xdist workers", sample["created"]):
        assert text in header


def test_summary_counts_tests_regressions_and_failures(page):
    summary = re.search(r'<p class="summary">(.*?)</p>', page).group(1)
    assert "12 tests" in summary
    assert "1 regressed" in summary and "1 improved" in summary
    assert "7 failures" in summary
    assert "5 failed" in summary and "1 skipped" in summary


def test_every_test_is_in_the_table_regressions_first(page, sample):
    expected = [html.escape(e["nodeid"]) for e in regressions_first(sample["tests"])]
    assert table_nodeids(page) == expected
    assert expected[0] == "tests/test_hashing.py::test_digest_many[process]"
    assert 'class="row-bad"><td class="nodeid">tests/test_hashing.py::test_digest_many' in page
    # the failing ones come before every passing one
    outcomes = {e["nodeid"]: e["outcome"] for e in sample["tests"]}
    ranks = [outcomes[n] in ("failed", "error") for n in expected[1:]]
    assert ranks == sorted(ranks, reverse=True)


def test_table_cells_use_readable_units(page):
    row = page[page.index("test_digest_many[process]</td>"):]
    row = row[:row.index("</tr>")]
    for text in ("198ms", "390ms", "79.2MiB", "10.1/s", "1.73x", "speedup &gt;= 1.5",
                 "regressed", "1.31x", "CPU-bound"):
        assert text in row
    assert "inconclusive</span> wall &lt;= 340ms" in page


def test_failures_show_message_and_replay_command(page, sample):
    failures = page[page.index('<section id="failures">'):]
    for kind in ("race", "deadlock", "crash", "timeout", "leak", "budget", "exception"):
        assert f'<span class="badge bad">{kind}</span>' in failures
    assert "<pre class=\"message\">schedule 4 of 200 failed (pct, seed 0):\n" in failures
    replay = sample["tests"][5]["failures"][0]["replay_command"]
    assert f"<pre><code>{html.escape(replay)}</code></pre>" in failures
    assert "workers 0, 1; iteration 2" in failures


def test_text_from_the_document_is_escaped(page):
    assert "<b>&</b>" not in page
    assert "ValueError: bad header &lt;b&gt;&amp;&lt;/b&gt;" in page


@pytest.mark.parametrize("ident", CHARTS)
def test_charts_are_accessible_svg_with_bars(page, ident):
    svg = chart(page, ident)
    assert svg.get("role") == "img"
    assert svg.get("aria-label")
    assert svg.find("title") is not None and svg.find("title").text
    assert len(svg.findall("rect")) >= 1
    assert any(t.get("class") == "axis-title" for t in svg.iter("text"))


def test_wall_chart_groups_modes_per_test(page):
    labels = [t.text for t in chart(page, "chart-wall").iter("text")]
    assert "tests/test_hashing.py::test_digest_many" in labels
    assert "thread, 2" in labels and "process, 2" in labels
    assert "412ms" in labels and "198ms" in labels


def test_speedup_chart_has_a_1x_reference_line(page):
    svg = chart(page, "chart-speedup")
    assert "1x (no speedup)" in [t.text for t in svg.iter("text")]
    assert any(line.get("stroke-dasharray") for line in svg.iter("line"))
    assert len(svg.findall("rect")) == 4 + 2  # four measured speedups, two legend keys


def test_baseline_chart_pairs_and_highlights_regressions(page):
    svg = chart(page, "chart-baseline")
    texts = [t.text for t in svg.iter("text")]
    assert "1.31x regressed" in texts and "0.81x improved" in texts
    assert "151ms" in texts and "198ms" in texts
    assert not any("fetch_all \u00b7 process" in text for text in texts)  # "new": no baseline
    assert any(r.findtext("title", "").endswith("regressed") for r in svg.iter("rect"))


def test_charts_without_data_say_so(sample):
    for entry in sample["tests"]:
        entry["metrics"].pop("speedup", None)
        entry["baseline"] = None
    page = report_html.render(sample)
    assert '<svg id="chart-wall"' in page
    for ident in ("chart-speedup", "chart-baseline"):
        assert f'<svg id="{ident}"' not in page
        assert f'<p class="nodata" data-chart="{ident}">No data' in page


def test_a_run_without_tests_has_nothing_to_report(sample):
    page = report_html.render(dict(sample, tests=[]))
    assert "Nothing to report" in page
    assert "0 tests" in page
    assert "<svg" not in page and "<table" not in page


def test_sparse_entries_render(sample):
    entry = {"nodeid": "t.py::test[thread]", "test": "t.py::test", "mode": "thread",
             "layout": "1", "outcome": "passed", "metrics": {}}
    page = report_html.render({"schema": 1, "run": {}, "tests": [entry]})
    assert "t.py::test[thread]" in page
    assert '<p class="nodata" data-chart="chart-wall">' in page


# -- in a real browser --------------------------------------------------------------------


@pytest.fixture
def chromium():
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, but CI must check the HTML report in it")
        pytest.skip("chromium is not installed")
    return path


@pytest.fixture
def page_file(tmp_path, page):
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def test_chromium_renders_the_table_and_lays_out_the_charts(chromium, page_file, page, sample):
    dom = dump_dom(page_file, size=(1280, 2000), chromium=chromium)
    assert '<table id="results-table">' in dom
    for entry in sample["tests"]:
        assert html.escape(entry["nodeid"]) in dom
    for ident in CHARTS:
        assert f'<svg id="{ident}"' in dom
    # The page's script measured every chart after layout: "id=WIDTHxHEIGHT:DRAWN_RECTS".
    sizes = re.search(r'data-chart-sizes="([^"]*)"', dom)
    assert sizes, "the layout probe did not run"
    measured = {ident: (int(w), int(h), int(n)) for ident, w, h, n in
                re.findall(r"([\w-]+)=(\d+)x(\d+):(\d+)", sizes.group(1))}
    assert set(measured) == set(CHARTS)
    for ident, (width, height, drawn) in measured.items():
        svg = chart(page, ident)
        assert width == report_html.WIDTH, (ident, width)  # full size in a 1280px window
        assert height == int(svg.get("height")), (ident, height)
        assert drawn == len(svg.findall("rect")), ident  # every bar has a visible width


def test_chromium_screenshot_is_a_real_png(chromium, page_file, tmp_path):
    png = screenshot(page_file, tmp_path / "report.png", size=(1280, 2000), chromium=chromium)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (1280, 2000)
    assert len(data) > 50_000  # a blank page of this size is about 12 KB


def test_chromium_renders_an_empty_report(chromium, tmp_path, sample):
    path = tmp_path / "empty.html"
    path.write_text(report_html.render(dict(copy.deepcopy(sample), tests=[])), encoding="utf-8")
    dom = dump_dom(path, chromium=chromium)
    assert "Nothing to report" in dom
    assert 'data-chart-sizes=""' in dom
