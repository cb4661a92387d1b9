"""The HTML report: one self-contained page rendered from a schema-1 document.

No network and no external assets: the style sheet is inline, the charts are
SVG drawn here by hand (among them, under each explore failure, its failing
schedule as a swimlane: a lane per worker, steps in order, the racing reads and
writes highlighted), and every piece of text from the document is escaped.
The page reads fully without JavaScript; its one small inline script only
records the laid-out size of each chart on ``<body data-chart-sizes>``, which
lets a headless browser prove the charts were really drawn.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from html import escape
from typing import TYPE_CHECKING, TypedDict

from ..budget import format_value
from .document import BAD_OUTCOMES, OUTCOMES, regressed, regressions_first
from .terminal import exploration_text, schedules_rate, verdict_line

if TYPE_CHECKING:
    from .records import (
        BaselineVerdict,
        Entry,
        Exploration,
        Failure,
        Interleaving,
        Metric,
        Report,
        Run,
        Step,
    )

METRIC_COLUMNS = ("wall", "cpu", "memory", "throughput", "speedup")
MODE_COLOURS = {"thread": "#3b6fd4", "process": "#8e44c9", "hybrid": "#16897a",
                "explore": "#b7791f"}
OTHER_COLOUR = "#6b7280"
TONES = {"passed": "good", "pass": "good", "improved": "good", "failed": "bad",
         "error": "bad", "interrupted": "bad", "fail": "bad", "regressed": "bad",
         "inconclusive": "warn", "xpassed": "warn", "serial": "warn"}
MUTED = "#8c959f"
BASELINE_COLOURS = {"regressed": "#c5221f", "improved": "#1e8e3e", "unchanged": "#3b6fd4"}
WIDTH = 1160  # viewBox width of every chart
LABEL = 300  # the left column of a chart, for row labels
ROW = 20
PAIR_SPAN = WIDTH - LABEL - 240  # bar room in the baseline chart, beside the verdicts

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1f2328; background: #fff;
       max-width: 1240px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 22px; margin: 0 0 2px; } h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 14px; margin: 0 0 4px; }
.generator, .nodata, .empty, figcaption { color: #59636e; }
dl.run { display: flex; flex-wrap: wrap; gap: 4px 24px; margin: 10px 0; }
dl.run div { display: flex; gap: 6px; } dt { color: #59636e; } dd { margin: 0; }
.summary { font-size: 15px; padding: 8px 12px; background: #f6f8fa; border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid #d8dee4; padding: 4px 6px; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.nodeid { min-width: 170px; } td.budget { min-width: 160px; }
.nodeid { overflow-wrap: anywhere; font-family: ui-monospace, monospace; font-size: 12px; }
td.advice { min-width: 170px; color: #59636e; }
.scroll { overflow-x: auto; }
tr.row-bad td:first-child { box-shadow: inset 4px 0 #c5221f; }
tr.row-warn td:first-child { box-shadow: inset 4px 0 #d08a00; }
tr.row-bad { background: #fff6f5; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 12px;
         color: #fff; white-space: nowrap; }
.good { background: #1e8e3e; } .bad { background: #c5221f; }
.warn { background: #d08a00; } .muted { background: #8c959f; }
figure { margin: 16px 0 24px; } figcaption { margin-bottom: 4px; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
svg .group { font-weight: 600; }
svg .value { paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .axis-title { fill: #59636e; }
svg .code { font: 11px ui-monospace, monospace; }
svg .what { font-size: 11px; fill: #59636e; }
svg .mark { font-weight: 700; fill: #c5221f; }
.verdict { color: #59636e; }
.failure { border: 1px solid #d8dee4; border-left: 4px solid #c5221f; border-radius: 6px;
           padding: 10px 14px; margin: 12px 0; }
pre { background: #f6f8fa; padding: 8px 10px; border-radius: 6px; overflow-x: auto;
      font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
"""

SCRIPT = """(function () {
  var sizes = [];
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var box = svg.getBoundingClientRect(), drawn = 0;
    svg.querySelectorAll("rect").forEach(function (rect) {
      if (rect.getBoundingClientRect().width > 0) { drawn += 1; }
    });
    sizes.push(svg.id + "=" + Math.round(box.width) + "x" + Math.round(box.height) + ":" + drawn);
  });
  document.body.setAttribute("data-chart-sizes", sizes.join(" "));
})();"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}
<script>{script}</script>
</body>
</html>
"""


def render(document: Report) -> str:
    """The whole report page for a schema-1 ``document``, as one HTML string."""
    tests = regressions_first(document.get("tests") or [])
    run = document.get("run") or {}
    parts = [_header(document, run), _summary(tests)]
    if tests:
        parts += [_table(tests), _charts(tests), _failures(tests)]
    else:
        parts.append('<p class="empty">Nothing to report: the run has no tests.</p>')
    title = f"pytest-concurrency report: {run.get('machine') or 'unknown machine'}"
    return PAGE.format(title=_e(title), css=CSS, body="\n".join(parts), script=SCRIPT)


def _e(value: object) -> str:
    return escape("\u2013" if value is None else str(value))


def _badge(word: str, title: str | None = None) -> str:
    tip = f' title="{_e(title)}"' if title else ""
    return f'<span class="badge {TONES.get(word, "muted")}"{tip}>{_e(word)}</span>'


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _header(document: Report, run: Run) -> str:
    python = " ".join(str(p) for p in (run.get("implementation"), run.get("python")) if p)
    fields = [("Python", python), ("Platform", run.get("platform")),
              ("Machine", run.get("machine")),
              ("CPUs", f"{run.get('usable_cpus', '?')} usable of {run.get('cpu_count', '?')}"),
              ("Git commit", run.get("git_commit")), ("xdist workers", run.get("xdist_workers")),
              ("Created", document.get("created"))]
    fields.append(("GIL", _gil(run)))
    if run.get("interrupted"):
        fields.append(("Session", "interrupted: some entries never finished"))
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in fields)
    return (f'<header><h1>pytest-concurrency report</h1><div class="generator">'
            f'{_e(document.get("generator", ""))}</div><dl class="run">{items}</dl></header>')


def _gil(run: Run) -> str:
    """The GIL, as the header shows it."""
    if not run.get("gil_disabled_build"):
        return "enabled (a build with the GIL)"
    if run.get("gil_reenabled_by"):
        modules = ", ".join(repr(e.get("module")) for e in run["gil_reenabled_by"])
        return f"re-enabled at run time by importing {modules} (free-threaded build)"
    return "disabled (free-threaded build)" if not run.get("gil_enabled", True) else \
        "enabled (free-threaded build)"


def _summary(tests: list[Entry]) -> str:
    outcomes = Counter(entry.get("outcome") for entry in tests)
    statuses = Counter(baseline.get("status") for entry in tests
                       if (baseline := entry.get("baseline")) is not None)
    failures = sum(len(entry.get("failures") or ()) for entry in tests)
    detail = ", ".join(f"{outcomes[o]} {o}" for o in OUTCOMES if outcomes[o])
    parts = [f"<strong>{_plural(len(tests), 'test')}</strong>"
             + (f" ({_e(detail)})" if detail else ""),
             _count_badge(statuses["regressed"], "regressed", "bad"),
             _count_badge(statuses["improved"], "improved", "good"),
             _count_badge(failures, _plural(failures, "failure"), "bad")]
    return '<p class="summary">' + " \u00b7 ".join(parts) + "</p>"


def _count_badge(count: int, text: str, tone: str) -> str:
    text = text if text[0].isdigit() else f"{count} {text}"
    return f'<span class="badge {tone if count else "muted"}">{_e(text)}</span>'


def _table(tests: list[Entry]) -> str:
    heads = ["Test", "Mode", "Layout", "Outcome", *METRIC_COLUMNS, "Budget", "Baseline", "Advice"]
    head = "".join(f"<th>{_e(h)}</th>" for h in heads)
    rows = "\n".join(_row(entry) for entry in tests)
    return (f'<section id="results"><h2>Results</h2><div class="scroll"><table id="results-table">'
            f"<thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table></div></section>")


def _row(entry: Entry) -> str:
    metrics = entry.get("metrics") or {}
    cells = [f'<td class="nodeid">{_e(entry.get("nodeid"))}</td>',
             f"<td>{_e(entry.get('mode'))}</td>", f"<td>{_e(entry.get('layout'))}</td>",
             f"<td>{_badge(str(entry.get('outcome')), entry.get('serial'))}</td>"]
    cells += [_metric_cell(key, metrics.get(key)) if key != "throughput"
              else _throughput_cell(entry, metrics.get(key)) for key in METRIC_COLUMNS]
    verdicts = "".join(f'<div>{_badge(b.get("verdict", "?"), b.get("message"))}'
                       f' {_e(b.get("limit"))}</div>' for b in entry.get("budget") or ())
    cells += [f'<td class="budget">{verdicts or _e(None)}</td>',
              f"<td>{_baseline(entry.get('baseline'))}</td>",
              _advice_cell(entry)]
    return f'<tr class="row-{_tone(entry)}">{"".join(cells)}</tr>'


def _tone(entry: Entry) -> str:
    """How a row is flagged: bad for regressions and failures, warn for doubtful budgets."""
    if regressed(entry) or entry.get("outcome") in BAD_OUTCOMES:
        return "bad"
    verdicts = {b.get("verdict") for b in entry.get("budget") or ()}
    return "bad" if "fail" in verdicts else "warn" if "inconclusive" in verdicts else "ok"


def _metric_cell(key: str, metric: Metric | None) -> str:
    if not metric:
        return f'<td class="num">{_e(None)}</td>'
    spread = (f"{format_value(key, metric['low'])} to {format_value(key, metric['high'])}, "
              f"{_plural(metric.get('rounds', 1), 'round')}")
    return f'<td class="num" title="{_e(spread)}">{_e(format_value(key, metric["value"]))}</td>'


def _throughput_cell(entry: Entry, metric: Metric | None) -> str:
    """Body calls per second, or for an explore item schedules explored per second."""
    rate = schedules_rate(entry, "\u2013")
    if rate is None:
        return _metric_cell("throughput", metric)
    return f'<td class="num" title="schedules explored per second">{_e(rate)}</td>'


def _advice_cell(entry: Entry) -> str:
    """The advisor's note; for an explore item, what the exploration found."""
    exploration = entry.get("exploration")
    if entry.get("advice") or not exploration:
        return f'<td class="advice">{_e(entry.get("advice"))}</td>'
    return (f'<td class="advice" title="{_e(verdict_line(exploration))}">explore: '
            f"{_e(exploration_text(exploration))}</td>")


def _baseline(baseline: BaselineVerdict | None) -> str:
    if not baseline:
        return _e(None)
    ratio = baseline.get("ratio")
    return _badge(str(baseline.get("status"))) + (f" {_e(f'{ratio:.2f}x')}" if ratio else "")


def _failures(tests: list[Entry]) -> str:
    items, lanes = [], 0
    for entry in tests:
        failures = entry.get("failures") or ()
        exploration = entry.get("exploration")
        interleaving = exploration.get("interleaving") if exploration else None
        # the failing schedule belongs with the explore failure (race or deadlock)
        kinds = [failure.get("kind") for failure in failures]
        at = next((i for i, kind in enumerate(kinds) if kind in ("race", "deadlock")), 0)
        for index, failure in enumerate(failures):
            swimlane = None
            if interleaving and index == at:
                lanes += 1
                swimlane = _interleaving(entry, interleaving, f"swimlane-{lanes}")
            items.append(_failure(entry, failure, swimlane))
    body = "\n".join(items) or '<p class="nodata">No failures.</p>'
    return f'<section id="failures"><h2>Failures</h2>\n{body}\n</section>'


def _failure(entry: Entry, failure: Failure,
             swimlane: str | None = None) -> str:
    facts = []
    if failure.get("workers"):
        facts.append("workers " + ", ".join(str(w) for w in failure["workers"]))
    if failure.get("iteration") is not None:
        facts.append(f"iteration {failure['iteration']}")
    replay = failure.get("replay_command")
    return (f'<article class="failure"><h3><span class="badge bad">{_e(failure.get("kind"))}'
            f'</span> <span class="nodeid">{_e(entry.get("nodeid"))}</span></h3>'
            f'<p class="failure-summary">{_e(failure.get("summary"))}'
            f'{" (" + _e("; ".join(facts)) + ")" if facts else ""}</p>'
            + (swimlane or "")
            + f'<pre class="message">{_e(failure.get("message"))}</pre>'
            + (f"<div>Replay it:</div><pre><code>{_e(replay)}</code></pre>" if replay else "")
            + "</article>")


# -- charts ------------------------------------------------------------------------------


def _charts(tests: list[Entry]) -> str:
    figures = [("chart-wall", "Wall time by mode", "wall time was measured", _wall_chart(tests)),
               ("chart-speedup", "Speedup by workers and mode", "speedup was measured",
                _speedup_chart(tests)),
               ("chart-baseline", "Baseline against current", "test has a baseline value",
                _baseline_chart(tests))]
    parts = [f"<figure><figcaption>{_e(caption)}</figcaption>"
             + (svg or f'<p class="nodata" data-chart="{ident}">No data: no {_e(what)}.</p>')
             + "</figure>" for ident, caption, what, svg in figures]
    return '<section id="charts"><h2>Charts</h2>' + "\n".join(parts) + "</section>"


def _svg(ident: str, label: str, height: float, body: list[str], cls: str = "chart") -> str:
    return (f'<svg id="{ident}" class="{cls}" role="img" aria-label="{_e(label)}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}">'
            f"<title>{_e(label)}</title>{''.join(body)}</svg>")


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", extra: str = "") -> str:
    title = f"<title>{_e(tip)}</title>" if tip else ""
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 1):.1f}" height="{h:.1f}" '
            f'fill="{fill}"{extra}>{title}</rect>')


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{_e(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, extra: str = "") -> str:
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{stroke}"{extra}/>')


def _scale(maximum: float) -> tuple[float, list[float]]:
    """A round axis end at or above ``maximum`` and the ticks up to it."""
    raw = maximum / 4 if maximum > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999)
    count = max(math.ceil(maximum / step - 1e-9), 1)
    return count * step, [i * step for i in range(count + 1)]


def _axis(key: str, top: float, bottom: float, span: float, ticks: list[float],
          title: str) -> list[str]:
    parts = [_line(LABEL, bottom, LABEL + span, bottom, "#57606a")]
    for tick in ticks:
        x = LABEL + span * tick / ticks[-1]
        parts += [_line(x, top, x, bottom, "#e1e4e8"),
                  _text(x, bottom + 15, format_value(key, tick), "middle")]
    return parts + [_text(LABEL + span / 2, bottom + 34, title, "middle", "axis-title")]


def _legend(items: list[tuple[str, str]]) -> list[str]:
    parts, x = [], LABEL
    for label, colour in items:
        parts += [_rect(x, 6, 12, 12, colour), _text(x + 17, 16, label)]
        x += 30 + 7 * len(label)
    return parts


def _mode_legend(entries: list[Entry]) -> list[str]:
    modes = sorted({entry.get("mode", "?") for entry in entries}, key=_mode_order)
    return _legend([(mode, MODE_COLOURS.get(mode, OTHER_COLOUR)) for mode in modes])


def _mode_order(mode: str | None) -> tuple[int, str | None]:
    return (list(MODE_COLOURS).index(mode) if mode in MODE_COLOURS else len(MODE_COLOURS), mode)


def _who(entry: Entry) -> str:
    name = str(entry.get("test") or entry.get("nodeid")).rpartition("::")[2]
    name = name if len(name) <= 26 else name[:25] + "\u2026"
    return f"{name} \u00b7 {entry.get('mode')}, {entry.get('layout')} workers"


def _bar(key: str, entry: Entry, metric: Metric, y: float, span: float,
         limit: float) -> list[str]:
    """One value bar from the axis origin, its low..high whisker and its label."""
    def at(value: float) -> float:
        return LABEL + span * value / limit

    failed = entry.get("outcome") in BAD_OUTCOMES
    outline = ' stroke="#c5221f" stroke-width="2"' if failed else ""
    tip = f"{entry.get('nodeid')}: {format_value(key, metric['value'])} ({entry.get('outcome')})"
    parts = [_rect(LABEL, y + 4, at(metric["value"]) - LABEL, ROW - 8,
                   MODE_COLOURS.get(entry.get("mode", ""), OTHER_COLOUR), tip, outline)]
    if metric.get("high", metric["value"]) > metric.get("low", metric["value"]):
        parts.append(_line(at(metric["low"]), y + ROW / 2, at(metric["high"]), y + ROW / 2,
                           "#1f2328", ' stroke-width="1.5"'))
    end = at(max(metric["value"], metric.get("high", metric["value"])))
    return parts + [_text(end + 6, y + 14, format_value(key, metric["value"]), cls="value")]


def _wall_chart(tests: list[Entry]) -> str | None:
    groups: dict[str, list[tuple[Entry, Metric]]] = {}
    for entry in tests:
        if wall := (entry.get("metrics") or {}).get("wall"):
            groups.setdefault(entry.get("test") or entry["nodeid"], []).append((entry, wall))
    if not groups:
        return None
    pairs = [pair for group in groups.values() for pair in group]
    limit, ticks = _scale(max(max(w["value"], w.get("high", 0)) for _, w in pairs))
    span, y = WIDTH - LABEL - 80, 28.0
    body = _mode_legend([entry for entry, _ in pairs])
    body.append(_text(WIDTH - 8, 16, "red outline: failed", "end", "axis-title"))
    for test in sorted(groups):
        body.append(_text(8, y + 14, test, cls="group"))
        y += ROW
        for entry, wall in sorted(groups[test], key=lambda p: _mode_order(p[0].get("mode"))):
            body.append(_text(LABEL - 8, y + 14, f"{entry.get('mode')}, {entry.get('layout')}",
                              "end"))
            body += _bar("wall", entry, wall, y, span, limit)
            y += ROW
        y += 6
    body = _axis("wall", 24, y, span, ticks, "wall time (median, with low\u2013high)") + body
    return _svg("chart-wall", "Wall time of each test by mode", y + 44, body)


def _speedup_chart(tests: list[Entry]) -> str | None:
    rows = [(e, m) for e in tests if (m := (e.get("metrics") or {}).get("speedup"))]
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0].get("workers") or 0, _mode_order(r[0].get("mode")),
                             r[0]["nodeid"]))
    limit, ticks = _scale(max(1.0, *(max(m["value"], m.get("high", 0)) for _, m in rows)))
    span, y = WIDTH - LABEL - 80, 48.0  # room for the 1x label above the rows
    body = _mode_legend([entry for entry, _ in rows])
    for entry, speedup in rows:
        body += [_text(LABEL - 8, y + 14, _who(entry), "end"),
                 *_bar("speedup", entry, speedup, y, span, limit)]
        y += ROW
    one = LABEL + span / limit
    body = [*_axis("speedup", 30, y, span, ticks, "speedup over one worker"),
            _line(one, 30, one, y, "#1f2328", ' stroke-dasharray="5 4" stroke-width="1.5"'),
            _text(one + 4, 40, "1x (no speedup)", cls="axis-title"), *body]
    return _svg("chart-speedup", "Speedup by workers and mode, with a 1x reference line",
                y + 44, body)


def _baseline_chart(tests: list[Entry]) -> str | None:
    rows: list[tuple[Entry, BaselineVerdict, Metric]] = []
    for entry in tests:
        baseline = entry.get("baseline")
        if baseline is None or baseline.get("baseline") is None:
            continue
        current = (entry.get("metrics") or {}).get(baseline.get("metric") or "wall")
        if current:
            rows.append((entry, baseline, current))
    if not rows:
        return None
    y = 28.0
    body = _legend([("baseline", MUTED)]
                   + [(f"current: {s}", c) for s, c in BASELINE_COLOURS.items()])
    for entry, baseline, current in rows:
        body += _pair(entry, baseline, current["value"], y)
        y += 2 * ROW + 6
    what = " / ".join(sorted({b.get("metric") or "wall" for _, b, _ in rows}))
    body += [_line(LABEL, y, LABEL + PAIR_SPAN, y, "#57606a"),
             _text(LABEL + PAIR_SPAN / 2, y + 20, f"{what} (each pair scaled to its larger value)",
                   "middle", "axis-title")]
    return _svg("chart-baseline", "Baseline against current wall time; regressions highlighted",
                y + 32, body)


def _pair(entry: Entry, baseline: BaselineVerdict, new: float, y: float) -> list[str]:
    """A baseline bar over a current one, both scaled to the larger, and the verdict."""
    key, status = baseline.get("metric") or "wall", str(baseline.get("status"))
    old = baseline["baseline"] or 0.0  # charted only when there is one
    parts = []
    if status == "regressed":
        parts.append(_rect(4, y, WIDTH - 8, 2 * ROW, "#fde8e7", f"{entry.get('nodeid')} regressed"))
    bars = [("baseline", old, MUTED),
            ("current", new, BASELINE_COLOURS.get(status, MUTED))]
    for top, (what, value, colour) in zip((y, y + ROW), bars, strict=True):
        width = PAIR_SPAN * value / (max(old, new) or 1)
        label = format_value(key, value)
        parts += [_rect(LABEL, top + 3, width, ROW - 6, colour, f"{what} {label}"),
                  _text(LABEL + width + 6, top + 15, label)]
    ratio = baseline.get("ratio") or (new / old if old else None)
    verdict = f"{ratio:.2f}x {status}" if ratio else status
    return parts + [_text(LABEL - 8, y + 24, _who(entry), "end"),
                    _text(WIDTH - 12, y + 24, verdict, "end", "group")]


# -- the failing schedule of an exploration, as a per-worker swimlane ------------------------

GUTTER = 96  # the left column of a swimlane: step numbers and the failure mark
STEP = 38  # height of one step row
STEP_TOP = 52  # where the first row starts, below the legend and the lane headers
STEP_FILLS = {"write": ("#fde8e7", "#c5221f"), "read": ("#fff4d6", "#d08a00"),
              "": ("#ffffff", "#d0d7de")}  # highlight -> (fill, stroke)
LANE_FILL = "#f6f8fa"
_ACCESSES = {"reads": "read", "writes": "write", "deletes": "write"}  # explore's step verbs
_ACCESS_WORDS = (*_ACCESSES, "next item", "tests 'in'")  # accesses without a name too


def _access(what: str) -> tuple[str, str] | None:
    """``("write", ".value")`` for ``"writes .value"``; None for what is not an
    access to a named thing (``wait``, ``blocks: lock``, ``tests 'in'``)."""
    verb, _, name = what.partition(" ")
    return (_ACCESSES[verb], name) if verb in _ACCESSES and name else None


class StepRow(TypedDict):
    """Consecutive steps of one worker on one line, as one row of a swimlane."""

    worker: int | None
    file: str | None
    line: int | None
    function: str | None
    source: str
    whats: list[str]  # what its steps did, each once
    first: int  # the index of its first step among the steps shown


def _step_rows(steps: list[Step]) -> list[StepRow]:
    """Consecutive steps of one worker on one line merged into one row (as the
    terminal's interleaving table does), each row with what its steps did, once."""
    rows: list[StepRow] = []
    for number, step in enumerate(steps):
        what = str(step.get("what") or "")
        last = rows[-1] if rows else None
        if last and (last["worker"], last["file"], last["line"]) == \
                (step.get("worker"), step.get("file"), step.get("line")):
            if what and what not in last["whats"]:
                last["whats"].append(what)
            continue
        rows.append({"worker": step.get("worker"), "file": step.get("file"),
                     "line": step.get("line"), "function": step.get("function"),
                     "source": step.get("source") or "", "whats": [what] if what else [],
                     "first": number})
    return rows


def _lane_title(worker: int | None, exploration: Exploration | None) -> str:
    """A lane's title, as the terminal's interleaving heads it: in an asyncio
    exploration the tasks the workers started are "task N", past the workers."""
    if exploration and exploration.get("switch_points") == "asyncio awaits" and \
            isinstance(worker, int) and worker >= int(exploration.get("workers") or 0):
        return f"task {worker}"
    return f"worker {worker}"


def _failing_rows(rows: list[StepRow], worker: object) -> list[int]:
    """The rows marked as failing: the failing worker's last step (where it raised);
    without one (a deadlock), each worker's last step if it blocked there."""
    last: dict[object, int] = {}
    for index, row in enumerate(rows):
        last[row["worker"]] = index
    if worker is not None:
        return [last[worker]] if worker in last else []
    return sorted(index for index in last.values()
                  if any(what.startswith("blocks") for what in rows[index]["whats"]))


def _racing(rows: list[StepRow], failing: list[int]) -> set[str]:
    """The names whose reads and writes the swimlane highlights.

    A race needs two workers accessing one thing, at least one of them writing,
    so the candidates are the names (``.value``, ``counter``, ``[...]``) that one
    worker writes and another worker reads or writes in this schedule.  Of those,
    the ones the failing step itself accesses (``assert c.value == 2`` reads
    ``.value``) are what the failure saw, so when there are any only they are
    highlighted; otherwise every candidate is.  The steps record names, not
    objects: two objects' ``.value`` look alike, which is why the candidates must
    conflict between workers and are narrowed to the failing step's."""
    users: dict[str, set[object]] = {}
    writers: dict[str, set[object]] = {}
    for row in rows:
        for what in row["whats"]:
            if access := _access(what):
                users.setdefault(access[1], set()).add(row["worker"])
                if access[0] == "write":
                    writers.setdefault(access[1], set()).add(row["worker"])
    conflicting = {name for name in writers if len(users[name]) > 1}
    seen = {access[1] for index in failing for what in rows[index]["whats"]
            if (access := _access(what))}
    return (conflicting & seen) or conflicting


def _highlight(row: StepRow, racing: set[str]) -> str:
    """"write" if the row writes a racing name, "read" if it only reads one, else ""."""
    kinds = {access[0] for what in row["whats"]
             if (access := _access(what)) and access[1] in racing}
    return "write" if "write" in kinds else "read" if kinds else ""


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "\u2026"


def _interleaving(entry: Entry, interleaving: Interleaving, ident: str) -> str:
    """The failing schedule as an SVG swimlane: one column per worker, its steps
    in order from top to bottom, each with file:line and source, the racing
    names' reads and writes highlighted, the failing step marked."""
    exploration = entry.get("exploration")
    strategy, seed, workers = (exploration.get("strategy"), exploration.get("seed"),
                               exploration.get("workers")) if exploration else (None, None, 0)
    steps = [s for s in interleaving.get("steps") or () if isinstance(s, dict)]
    rows = _step_rows(steps)
    total = interleaving.get("total_steps") or len(steps)
    facts = (f"schedule {interleaving.get('schedule')} of the exploration "
             f"({strategy}, seed {seed})")
    if not rows:
        return (f'<figure class="interleaving"><figcaption>Interleaving of {_e(facts)}: '
                f'no steps were recorded.</figcaption></figure>')
    lanes = sorted({r["worker"] for r in rows if isinstance(r["worker"], int)}
                   | set(range(int(workers or 0))))
    failing = _failing_rows(rows, interleaving.get("worker"))
    racing = _racing(rows, failing)
    lane = (WIDTH - GUTTER - 8) / max(len(lanes), 1)
    code_chars, what_chars = int((lane - 16) / 6.7), int((lane - 16) / 6.2)
    bottom = STEP_TOP + STEP * len(rows) + 6
    names = ", ".join(sorted(racing))
    keys = [(f"reads {_cut(names, 40)}", STEP_FILLS["read"][0], ' stroke="#d08a00"'),
            (f"writes {_cut(names, 40)}", STEP_FILLS["write"][0], ' stroke="#c5221f"'),
            ] if racing else []
    keys.append(("\u2717 where it failed", "#ffffff", ' stroke="#c5221f" stroke-width="3"'))
    body = [_text(GUTTER - 10, 44, "step", "end", "axis-title")]
    for position, (key, fill, outline) in enumerate(keys):
        left = GUTTER + position * 330
        body += [_rect(left, 6, 12, 12, fill, "", outline), _text(left + 17, 16, key)]
    column: dict[int | None, float] = {}
    for position, worker in enumerate(lanes):
        x = GUTTER + position * lane
        column[worker] = x
        title = _lane_title(worker, exploration)
        body += [_rect(x + 2, 28, lane - 4, bottom - 28, LANE_FILL, title),
                 _text(x + lane / 2, 44, title, "middle", "group")]
    first = total - len(steps) + 1  # step numbers count from the schedule's start
    for index, row in enumerate(rows):
        y = STEP_TOP + index * STEP
        x = column.get(row["worker"], GUTTER)
        highlight = _highlight(row, racing)
        fill, stroke = STEP_FILLS[highlight]
        fails = index in failing
        classes = " ".join(["step", *([f"step-{highlight}"] if highlight else []),
                            *(["step-failing"] if fails else [])])
        outline = ' stroke="#c5221f" stroke-width="3"' if fails else f' stroke="{stroke}"'
        extra = f'{outline} class="{classes}" data-worker="{_e(row["worker"])}"'
        where = f"{os.path.basename(str(row['file'] or '?'))}:{row['line']}"
        number = first + row["first"]
        shown = [w for w in row["whats"] if not w.startswith(_ACCESS_WORDS)
                 or ((a := _access(w)) is not None and a[1] in racing)]
        others = [w for w in row["whats"] if w not in shown]
        if shown and others:  # racing accesses and operations on primitives say most
            shown.append(f"+{len(others)} other access{'' if len(others) == 1 else 'es'}")
        whats = ", ".join(shown or others)
        who = _lane_title(row["worker"], exploration)
        tip = (f"step {number}, {who}: {row['file']}:{row['line']} in "
               f"{row['function']}\n{row['source']}\n{', '.join(row['whats'])}")
        body += [_rect(x + 8, y + 3, lane - 16, STEP - 6, fill, tip, extra),
                 _text(x + 14, y + 17, _cut(f"{where} {row['source']}", code_chars),
                       cls="code"),
                 _text(x + 14, y + 31, _cut(whats, what_chars), cls="what"),
                 _text(GUTTER - 10, y + 24, str(number), "end", "axis-title")]
        if fails:
            body.append(_text(6, y + 24, "\u2717 fails", cls="mark"))
    label = (f"Interleaving of the failing {facts}: one lane per worker, "
             f"{len(rows)} rows of steps in order")
    cut = f"; the last {len(steps)} of {total} steps" if total > len(steps) else ""
    highlighted = (f"reads and writes of {names} highlighted (written by one worker, "
                   f"accessed by another{', and by the failing step' if failing else ''})"
                   if racing else "no name was written by one worker and used by another")
    caption = (f"Interleaving of the failing {facts}{cut}: one lane per worker, time "
               f"flows down; {highlighted}.")
    return (f'<figure class="interleaving"><figcaption>{_e(caption)}</figcaption>'
            f'{_svg(ident, label, bottom + 10, body, "chart swimlane")}'
            f'<p class="verdict">{_e(verdict_line(exploration) if exploration else None)}</p>'
            '</figure>')
