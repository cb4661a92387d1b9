"""report/markdown.py: the Markdown job summary rendered from a report document."""

import json
import pathlib
import re

import pytest

from pytest_concurrency.report.markdown import render, write_step_summary

SAMPLE = pathlib.Path(__file__).parent / "data" / "sample_report.json"
REGRESSED = "tests/test_hashing.py::test_digest_many[process]"


@pytest.fixture
def sample():
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def html_escaped(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def separators(line):
    """The '|' that split a table row into cells: those not escaped as '\\|'."""
    return len(re.findall(r"(?<!\\)\|", line))


def tables(text):
    """Every table in ``text``: runs of consecutive lines starting with '|'."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


def check_table(table):
    header, rule, *rows = table
    assert re.fullmatch(r"\|(---\|)+", rule), rule
    width = separators(header)
    assert separators(rule) == width
    for row in rows:
        assert separators(row) == width, row
    return rows


def section(text, start, end):
    return text[text.index(start):text.index(end)]


def entry(nodeid, outcome="passed", **fields):
    test, mode = nodeid[:-1].split("[")
    data = {"nodeid": nodeid, "test": test, "mode": mode, "layout": "2", "workers": 2,
            "iterations": 1, "outcome": outcome, "duration": 0.1,
            "metrics": {"wall": {"value": 0.012, "low": 0.012, "high": 0.012, "rounds": 1,
                                 "unit": "s", "better": "lower"}},
            "budget": [], "baseline": None, "advice": None, "failures": []}
    data.update(fields)
    return data


def document(*tests):
    return {"schema": 1, "run": {"python": "3.11.7", "implementation": "CPython",
                                 "machine": "Linux-x86_64-CPython3.11-2cpu",
                                 "git_commit": None},
            "tests": list(tests)}


def test_heading_and_summary_counts(sample):
    lines = render(sample).splitlines()
    assert lines[0] == "## pytest-concurrency"
    summary = lines[2]
    assert summary.startswith("**12 test \u00d7 mode entries:** ")
    for count in ("5 passed", "5 failed", "1 error", "1 skipped", "1 regressed vs baseline",
                  "1 budget failure", "1 inconclusive budget"):
        assert count in summary
    assert "Python 3.11.7" in summary
    assert "`Linux-x86_64-CPython3.11-2cpu`" in summary
    assert "commit `3e3dd8f`" in summary
    assert "3e3dd8f0" not in summary


def test_regressions_come_first_in_needs_attention(sample):
    text = render(sample)
    attention = section(text, "### Needs attention", "<details>")
    (table,) = tables(attention)
    rows = check_table(table)
    assert f"`{REGRESSED}`" in rows[0]
    assert "regressed: wall +31%" in rows[0]
    nodeids = [re.match(r"\| `([^`]+)`", row)[1] for row in rows]
    assert nodeids == [
        REGRESSED,
        "tests/test_cache.py::test_cache_budget[hybrid]",
        "tests/test_ledger.py::test_lock_order[explore]",
        "tests/test_ledger.py::test_transfer[explore]",
        "tests/test_native.py::test_parse[process]",
        "tests/test_pool.py::test_pool_shutdown[thread]",
        "tests/test_pool.py::test_pool_timeout[process]",
    ]
    budget_row = rows[1]
    assert "`memory <= 128MiB` fail" in budget_row
    assert "`wall <= 340ms` inconclusive" in budget_row
    assert "test_fetch_all" not in attention  # passed, within budget, not regressed
    assert "test_skipped" not in attention


def test_every_failure_kind_appears_with_its_summary(sample):
    attention = section(render(sample), "### Needs attention", "<details>")
    failures = [(e["nodeid"], f) for e in sample["tests"] for f in e["failures"]]
    kinds = {f["kind"] for _, f in failures}
    assert kinds == {"race", "deadlock", "crash", "timeout", "leak", "budget", "exception"}
    for nodeid, failure in failures:
        assert not set("|*_`\\") & set(failure["summary"])  # only HTML needs escaping
        bullet = f"- `{nodeid}` **{failure['kind']}**: {html_escaped(failure['summary'])}"
        assert bullet in attention.splitlines()


def test_replay_commands_appear_verbatim_in_fenced_blocks(sample):
    lines = render(sample).splitlines()
    commands = [f["replay_command"] for e in sample["tests"] for f in e["failures"]
                if f["replay_command"]]
    assert len(commands) == 2
    for command in commands:
        at = lines.index(f"  {command}")
        assert lines[at - 1] == "  ```sh"
        assert lines[at + 1] == "  ```"


def test_full_table_is_inside_details_with_a_row_per_entry(sample):
    text = render(sample)
    assert "<details><summary>All 12 entries</summary>\n\n| Test |" in text
    assert text.rstrip().endswith("</details>")
    details = text[text.index("<details>"):]
    (table,) = tables(details)
    assert table[0].startswith("| Test | Mode | Layout | Outcome | Wall | CPU | Memory |")
    rows = check_table(table)
    assert len(rows) == len(sample["tests"]) == 12
    for row, test in zip(rows, sample["tests"], strict=True):
        assert row.startswith(f"| `{test['nodeid']}` |")
    skipped = rows[-1].split(" | ")
    assert skipped[3] == "skipped"
    assert skipped[4:] == ["\u2013"] * 7 + ["\u2013 |"]
    digest = rows[0]
    for cell in ("412ms", "409ms", "39.1MiB", "4.85/s", "0.83x", "`wall <= 2s` pass",
                 "unchanged: wall +2%", "CPU-bound"):
        assert cell in digest


def test_sample_tables_are_well_formed_and_html_is_escaped(sample):
    text = render(sample)
    assert len(tables(text)) == 2
    for table in tables(text):
        check_table(table)
    assert "<b>" not in text
    assert "ValueError: bad header &lt;b&gt;&amp;&lt;/b&gt;" in text


def test_pipes_html_and_newlines_do_not_break_tables():
    nasty = entry("tests/t.py::test_x[a|b]", "failed",
                  advice="use <b>&</b> | not\nthis",
                  budget=[{"key": "wall", "limit": "wall <= 1s | 2s", "verdict": "fail",
                           "message": "x"}],
                  failures=[{"kind": "exception", "summary": "ValueError: a|b <b>&</b>",
                             "message": "", "workers": [], "iteration": None,
                             "replay": None, "replay_command": "pytest 'x[a|b]'"}])
    text = render(document(nasty, entry("tests/t.py::test_y[thread]")))
    assert len(tables(text)) == 2
    for table in tables(text):
        check_table(table)
    assert "<b>" not in text
    assert "use &lt;b&gt;&amp;&lt;/b&gt; \\| not this" in text
    assert "`tests/t.py::test_x[a\\|b]`" in text  # a table cell
    assert "- `tests/t.py::test_x[a|b]` **exception**: ValueError: a\\|b &lt;b&gt;" in text
    assert "  pytest 'x[a|b]'" in text.splitlines()  # a fenced block is verbatim


def test_nothing_needs_attention():
    text = render(document(entry("tests/t.py::test_x[thread]")))
    assert "Nothing regressed or failed." in text
    assert "### Needs attention" not in text
    assert "<details><summary>The 1 entry</summary>" in text
    assert "commit" not in text  # no git commit recorded


def test_empty_document():
    text = render(document())
    assert text == "## pytest-concurrency\n\nNo concurrency tests ran.\n"
    assert "|" not in text


def test_write_step_summary_appends(tmp_path):
    path = tmp_path / "summary.md"
    path.write_text("earlier step\n", encoding="utf-8")
    environ = {"GITHUB_STEP_SUMMARY": str(path)}
    assert write_step_summary("## one\n", environ) is True
    assert write_step_summary("## two", environ) is True
    assert path.read_text(encoding="utf-8") == "earlier step\n\n## one\n\n## two\n"


def test_write_step_summary_creates_the_file(tmp_path):
    path = tmp_path / "summary.md"
    assert write_step_summary("## one\n", {"GITHUB_STEP_SUMMARY": str(path)}) is True
    assert path.read_text(encoding="utf-8") == "## one\n"


def test_write_step_summary_without_the_variable(tmp_path):
    assert write_step_summary("## one\n", {}) is False
    assert write_step_summary("## one\n", {"GITHUB_STEP_SUMMARY": ""}) is False
    assert list(tmp_path.iterdir()) == []


def explore_entry(nodeid, outcome="passed", **fields):
    exploration = {"strategy": "pct", "seed": 3, "workers": 2, "schedules": 200,
                   "budget": 200, "complete": False, "verdict": "200 schedules explored",
                   "outcomes": 1, "schedules_per_second": 160.2, "interleaving": None}
    exploration.update(fields)
    return entry(nodeid, outcome, exploration=exploration,
                 metrics={"throughput": {"value": 1.6, "low": 1.6, "high": 1.6,
                                         "rounds": 1, "unit": "calls/s", "better": "higher"}})


def test_explore_rows_give_the_verdict_and_schedules_per_second():
    text = render(document(
        explore_entry("tests/t.py::test_locked[explore]"),
        explore_entry("tests/t.py::test_lost[explore]", "failed", schedules=9,
                      schedules_per_second=None, interleaving={"schedule": 8, "steps": []}),
        entry("tests/t.py::test_x[thread]", advice="I/O-bound: threads are enough")))
    details = text[text.index("<details>"):]
    (table,) = tables(details)
    rows = {re.match(r"\| `([^`]+)`", row)[1]: row.split(" | ") for row in check_table(table)}
    header = table[0].split(" | ")
    throughput, advice = header.index("Throughput"), len(header) - 1
    locked = rows["tests/t.py::test_locked[explore]"]
    assert locked[throughput] == "160 sched/s"
    assert locked[advice] == ("explore: bounded: 200 of 200 schedules, 1 distinct outcome "
                              "(pct, seed 3) |")
    lost = rows["tests/t.py::test_lost[explore]"]
    assert lost[throughput] == "\u2013"
    assert lost[advice] == "explore: schedule 8 failed, 9 of 200 run (pct, seed 3) |"
    assert rows["tests/t.py::test_x[thread]"][advice] == "I/O-bound: threads are enough |"


def test_a_whole_suite_lists_what_needs_a_look_and_counts_the_rest():
    """The terminal table's rule (terminal.rows_and_rest), not a copy of it."""
    passing = [entry(f"t.py::test_{i:03d}[thread]") for i in range(300)]
    failed = entry("t.py::test_failed[thread]", "failed")
    marked = entry("t.py::test_marked[thread]")
    doc = document(*passing, failed, marked)
    countable = {e["nodeid"] for e in doc["tests"]} - {marked["nodeid"]}
    text = render(doc, countable)
    assert "<details><summary>Entries that need a look (2 of 302)</summary>" in text
    (rows,) = [check_table(t) for t in tables(text[text.index("<details>"):])]
    assert [row.split(" | ")[0] for row in rows] == ["| `t.py::test_failed[thread]`",
                                                     "| `t.py::test_marked[thread]`"]
    assert text.rstrip().endswith("... and 300 more items with nothing to look at: "
                                  "300 passed (-v lists them)")
    assert "**302 test \u00d7 mode entries:** 301 passed, 1 failed" in text  # all counted
    assert "... and" not in render(doc)  # no --concurrency-apply: a row for every entry
    nothing = render(document(*passing), {e["nodeid"] for e in passing})
    assert "<details>" not in nothing
    assert nothing.rstrip().endswith("\n300 items with nothing to look at: 300 passed "
                                     "(-v lists them)")


def test_the_markdown_report_and_step_summary_of_an_applied_suite(pytester, monkeypatch):
    tests = "\n".join(f"def test_{i:03d}():\n    pass\n" for i in range(50))
    pytester.makepyfile(test_suite=tests + "\ndef test_fails():\n    assert False\n")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = ("-p", "no:cacheprovider", "-p", "no:randomly", "--concurrency-apply", "thread",
            "--concurrency-report=r.md", "--concurrency-report=r.json")
    pytester.runpytest(*args).assert_outcomes(passed=50, failed=1)
    for text in ((pytester.path / "r.md").read_text(), summary.read_text()):
        (rows,) = [check_table(t) for t in tables(text[text.index("<details>"):])]
        assert [row.split(" | ")[0] for row in rows] == ["| `test_suite.py::test_fails[thread]`"]
        assert "... and 50 more items with nothing to look at: 50 passed" in text
    report = json.loads((pytester.path / "r.json").read_text())
    assert len(report["tests"]) == 51  # the JSON keeps every item
    summary.unlink()
    pytester.runpytest(*args, "-v").assert_outcomes(passed=50, failed=1)
    text = (pytester.path / "r.md").read_text()
    assert "<summary>All 51 entries</summary>" in text and "nothing to look at" not in text
