"""report/html.py: the self-contained HTML report, checked as text and in Chromium."""

import copy
import html
import json
import pathlib
import re
import struct
import xml.etree.ElementTree as ET

import pytest
from browser import chart_sizes, dump_dom, find_chromium, screenshot

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
def chromium(on_ci):
    path = find_chromium()
    if path is None:
        if on_ci:
            pytest.fail("chromium is not installed, but CI must check the HTML report in it")
        pytest.skip("chromium is not installed, so the HTML report is not opened in a "
                    "browser (Debian: apt-get install chromium, as .ci/run does)")
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


# -- explore: the failing schedule as a swimlane ------------------------------------------


def step(worker, line, what, source, file="/src/ledger.py", function="transfer"):
    return {"worker": worker, "file": file, "line": line, "function": function,
            "what": what, "source": source}


TEST_FILE = "/src/tests/test_ledger.py"
RACE_STEPS = [  # a lost update of .balance; .count is written by both, .log by one
    step(0, 14, "reads .balance", "total = self.balance + amount"),
    step(1, 14, "reads .balance", "total = self.balance + amount"),
    step(1, 15, "writes .balance", "self.balance = total"),
    step(1, 16, "reads .count", "self.count += 1"),
    step(1, 16, "writes .count", "self.count += 1"),
    step(1, 17, "reads .log", 'self.log.append("<b>&</b>")'),
    step(0, 15, "writes .balance", "self.balance = total"),
    step(0, 16, "reads .count", "self.count += 1"),
    step(0, 16, "writes .count", "self.count += 1"),
    step(0, 30, "reads .balance", "assert ledger.balance == 200", TEST_FILE, "test_transfer"),
    step(0, 30, "reads @pytest_ar", "assert ledger.balance == 200", TEST_FILE, "test_transfer"),
]
DEADLOCK_STEPS = [
    step(0, 40, "acquire", "with self.lock_a:"),
    step(1, 50, "acquire", "with self.lock_b:"),
    step(0, 41, "blocks: lock", "with self.lock_b:"),
    step(1, 51, "blocks: lock", "with self.lock_a:"),
]


def exploration(steps, worker, **fields):
    data = {"strategy": "pct", "seed": 3, "workers": 2, "schedules": 5, "budget": 200,
            "complete": False, "verdict": "5 schedules explored (strategy=pct, seed=3, 2 "
            "workers, Python 3.12, sys.monitoring)", "outcomes": 1,
            "outcome_counts": {"[[None], [None]]": 4}, "schedules_per_second": 160.2,
            "switch_points": "sys.monitoring", "python": "3.12",
            "interleaving": {"schedule": 4, "kind": "assertion", "worker": worker,
                             "message": "worker 0 raised AssertionError: assert 150 == 200",
                             "total_steps": 240, "steps": [dict(s) for s in steps]}}
    data.update(fields)
    return data


@pytest.fixture
def explored(sample):
    """The sample with its two explore failures' explorations: a race and a deadlock."""
    entries = {e["nodeid"]: e for e in sample["tests"]}
    entries["tests/test_ledger.py::test_transfer[explore]"]["exploration"] = \
        exploration(RACE_STEPS, 0)
    entries["tests/test_ledger.py::test_lock_order[explore]"]["exploration"] = \
        exploration(DEADLOCK_STEPS, None, schedules_per_second=None)
    return sample


@pytest.fixture
def explored_page(explored):
    return report_html.render(explored)


def swimlanes(page):
    return {ident: chart(page, ident) for ident in re.findall(r'<svg id="(swimlane-\d+)"', page)}


def failure_of(page, test):
    """The failure's <article> of the test named ``test`` (``test_transfer[explore]``)."""
    start = page.index(f"{test}</span></h3>")
    return page[start:page.index("</article>", start)]


def swimlane(page, test):
    (ident,) = re.findall(r'<svg id="(swimlane-\d+)"', failure_of(page, test))
    return chart(page, ident)


def steps_of(svg):
    """(worker, classes, the step's two lines of text) per drawn step, in order."""
    found, texts = [], list(svg.iter("text"))
    for rect in svg.iter("rect"):
        if "step" in (rect.get("class") or "").split():
            at = float(rect.get("y"))
            lines = [t.text for t in texts if t.get("class") in ("code", "what")
                     and at < float(t.get("y")) < at + float(rect.get("height"))
                     and float(rect.get("x")) < float(t.get("x"))
                     < float(rect.get("x")) + float(rect.get("width"))]
            found.append((int(rect.get("data-worker")), set(rect.get("class").split()), lines))
    return found


def test_an_explore_failure_has_a_swimlane_with_a_lane_per_worker(explored_page):
    lanes = swimlanes(explored_page)
    assert sorted(lanes) == ["swimlane-1", "swimlane-2"]  # the race and the deadlock
    race = failure_of(explored_page, "test_transfer[explore]")
    svg = swimlane(explored_page, "test_transfer[explore]")
    assert svg.get("role") == "img" and "failing schedule 4" in svg.get("aria-label")
    headers = [t.text for t in svg.iter("text") if t.get("class") == "group"]
    assert headers == ["worker 0", "worker 1"]
    drawn = steps_of(svg)
    assert {worker for worker, _, _ in drawn} == {0, 1}
    # consecutive steps of a worker on one line are one row, in the schedule's order
    assert [(w, lines[0].split()[0]) for w, _, lines in drawn] == [
        (0, "ledger.py:14"), (1, "ledger.py:14"), (1, "ledger.py:15"), (1, "ledger.py:16"),
        (1, "ledger.py:17"), (0, "ledger.py:15"), (0, "ledger.py:16"),
        (0, "test_ledger.py:30")]
    assert drawn[0][2] == ["ledger.py:14 total = self.balance + amount", "reads .balance"]
    numbers = [t.text for t in svg.iter("text") if t.get("class") == "axis-title"][1:]
    assert numbers[:3] == ["230", "231", "232"]  # the last 11 of 240 steps
    assert "the last 11 of 240 steps" in race
    assert "5 schedules explored (strategy=pct, seed=3" in race


def test_the_racing_names_reads_and_writes_are_highlighted(explored_page):
    drawn = steps_of(swimlane(explored_page, "test_transfer[explore]"))
    marks = [("step-write" in classes, "step-read" in classes) for _, classes, _ in drawn]
    # .balance: written by both workers and read by the failing assert -> highlighted;
    # .count: written by both, but not what the failing step saw; .log: one worker's
    assert marks == [(False, True), (False, True), (True, False), (False, False),
                     (False, False), (True, False), (False, False), (False, True)]
    assert "reads and writes of .balance highlighted" in explored_page
    assert drawn[-1][2][1] == "reads .balance, +1 other access"


def test_the_failing_step_is_marked(explored_page):
    svg = swimlane(explored_page, "test_transfer[explore]")
    race = steps_of(svg)
    failing = [(worker, lines[0]) for worker, classes, lines in race if "step-failing" in classes]
    assert failing == [(0, "test_ledger.py:30 assert ledger.balance == 200")]
    assert [t.text for t in svg.iter("text") if t.get("class") == "mark"] == ["\u2717 fails"]
    # a deadlock has no failing worker: each worker's last step, where it blocked
    deadlock = steps_of(swimlane(explored_page, "test_lock_order[explore]"))
    assert [(w, "step-failing" in c) for w, c, _ in deadlock] == [
        (0, False), (1, False), (0, True), (1, True)]


def test_swimlane_text_is_escaped_and_cut_to_its_lane(explored):
    entry = next(e for e in explored["tests"] if e["nodeid"].endswith("test_transfer[explore]"))
    steps = entry["exploration"]["interleaving"]["steps"]
    steps[0]["source"] = "x = '" + "<i>" * 200 + "'"
    page = report_html.render(explored)
    assert "<i>" not in page and "<b>" not in page
    assert "self.log.append(&quot;&lt;b&gt;&amp;&lt;/b&gt;&quot;)" in page
    drawn = steps_of(swimlane(page, "test_transfer[explore]"))
    assert all(len(lines[0]) <= 80 for _, _, lines in drawn)  # a lane of a 2-worker run
    assert drawn[0][2][0].startswith("ledger.py:14 x = '<i><i>")
    assert drawn[0][2][0].endswith("\u2026")


def test_every_worker_gets_a_lane_even_without_steps(sample):
    entry = next(e for e in sample["tests"] if e["nodeid"].endswith("test_transfer[explore]"))
    entry["exploration"] = exploration(RACE_STEPS, 0, workers=3)
    svg = swimlane(report_html.render(sample), "test_transfer[explore]")
    assert [t.text for t in svg.iter("text") if t.get("class") == "group"] == [
        "worker 0", "worker 1", "worker 2"]


def test_tasks_started_by_asyncio_workers_are_titled_tasks_as_in_the_terminal(sample):
    entry = next(e for e in sample["tests"] if e["nodeid"].endswith("test_transfer[explore]"))
    started = [*RACE_STEPS[:2], step(2, 20, "writes .log", "self.log.append(x)")]
    entry["exploration"] = exploration(started, 0, switch_points="asyncio awaits")
    svg = swimlane(report_html.render(sample), "test_transfer[explore]")
    assert [t.text for t in svg.iter("text") if t.get("class") == "group"] == [
        "worker 0", "worker 1", "task 2"]
    assert [r.findtext("title").split(":")[0] for r in svg.iter("rect")
            if "step" in (r.get("class") or "").split()] == [
        "step 238, worker 0", "step 239, worker 1", "step 240, task 2"]
    # threads a worker starts are workers, as the terminal heads them
    entry["exploration"] = exploration(started, 0)
    svg = swimlane(report_html.render(sample), "test_transfer[explore]")
    assert [t.text for t in svg.iter("text") if t.get("class") == "group"] == [
        "worker 0", "worker 1", "worker 2"]


def test_a_failure_without_steps_says_so(sample):
    entry = next(e for e in sample["tests"] if e["nodeid"].endswith("test_transfer[explore]"))
    entry["exploration"] = exploration([], 0)
    page = report_html.render(sample)
    assert "no steps were recorded" in page and "swimlane-" not in page


def test_explore_rows_show_schedules_per_second_and_the_verdict(explored_page):
    row = explored_page[explored_page.index("test_transfer[explore]</td>"):]
    row = row[:row.index("</tr>")]
    assert '<td class="num" title="schedules explored per second">160 sched/s</td>' in row
    assert "2.38/s" not in row  # calls per second of a traced run: meaningless
    assert ("explore: schedule 4 failed, 5 of 200 run (pct, seed 3)") in row
    deadlock = explored_page[explored_page.index("test_lock_order[explore]</td>"):]
    assert 'per second">\u2013</td>' in deadlock[:deadlock.index("</tr>")]


def test_chromium_lays_out_the_swimlanes(chromium, tmp_path, explored_page):
    path = tmp_path / "explored.html"
    path.write_text(explored_page, encoding="utf-8")
    dom = dump_dom(path, size=(1280, 2000), chromium=chromium)
    measured = chart_sizes(dom)
    lanes = swimlanes(explored_page)
    assert set(measured) == set(CHARTS) | set(lanes)
    for ident, svg in lanes.items():
        width, height, drawn = measured[ident]
        assert width == report_html.WIDTH, (ident, width)  # inside its failure's box
        assert height == int(svg.get("height")), (ident, height)
        rects = svg.findall("rect")
        assert drawn == len(rects), ident  # lanes, steps and legend keys all drawn
        assert len([r for r in rects if "step" in (r.get("class") or "").split()]) >= 4
    png = screenshot(path, tmp_path / "explored.png", size=(1280, 2600), chromium=chromium)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
