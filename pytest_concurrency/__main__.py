"""``python -m pytest_concurrency``: read, compare and merge saved JSON reports.

Exit status: 0 when all went well, 1 when ``compare`` found a regression
beyond the threshold, 2 on bad input (a missing, corrupt or unsupported
report, a bad threshold) or bad usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .report import compare, diff, document, files, merge, terminal
from .report.compare import CompareError
from .report.document import ReportError

if TYPE_CHECKING:
    from .report.records import Report

NAME = "pytest-concurrency"  # the prefix of error and warning lines
EPILOG = ("exit status: 0 ok; 1 compare found a regression beyond the --fail-on "
          "threshold (default 10%); 2 bad input or usage")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.command(args)
    except (ReportError, CompareError) as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m pytest_concurrency", epilog=EPILOG,
        description="Show, compare and merge pytest-concurrency JSON reports.")
    commands = top.add_subparsers(title="commands", required=True, metavar="COMMAND")

    show_ = commands.add_parser("show", epilog=EPILOG, help="print a report as a table",
                                description="Print a report's run, its table and its failures.")
    show_.add_argument("report", metavar="REPORT.json")
    show_.add_argument("-v", "--verbose", action="store_true",
                       help="every measurement and the advisor's note")
    show_.set_defaults(command=show)

    compare_ = commands.add_parser(
        "compare", epilog=EPILOG, help="compare two reports, exit 1 on a regression",
        description="Match the entries of two reports by test, mode and layout and judge one "
                    "metric of each pair: 'regressed' when the whole interval of the new value is "
                    "worse than the old median by more than the threshold. Exits 1 when any "
                    "entry regressed, 0 otherwise.")
    compare_.add_argument("old", metavar="OLD.json")
    compare_.add_argument("new", metavar="NEW.json")
    compare_.add_argument("--fail-on", default=f"{compare.DEFAULT_THRESHOLD:.0%}",
                          metavar="THRESHOLD",
                          help="how much worse counts as a regression: 'median:10%%', '10%%' "
                               "or '0.1' (default: %(default)s)")
    compare_.add_argument("--metric", default="wall", choices=list(document.METRICS),
                          help="the metric to compare (default: %(default)s)")
    compare_.set_defaults(command=compare_command)

    merge_ = commands.add_parser(
        "merge", epilog=EPILOG, help="combine the reports of several shards into one",
        description="Combine the tests of several reports (CI shards) into one report; run "
                    "metadata from the first, with a merged_from list of every input. A node id "
                    "in several inputs: the last input's entry is kept (with a warning).")
    merge_.add_argument("reports", nargs="+", metavar="REPORT.json")
    merge_.add_argument("-o", "--output", required=True, metavar="OUT.json",
                        help="the merged report, written atomically")
    merge_.set_defaults(command=merge_command)
    return top


def show(args: argparse.Namespace) -> int:
    data = load(args.report)
    print(terminal.run_line(data))
    print()
    for line in terminal.table(data["tests"], verbose=args.verbose) or ["no test entries"]:
        print(line)
    failures = terminal.failures(data["tests"])
    if failures:
        print()
        print("failures:")
        for line in failures:
            print(line)
    print()
    print(terminal.totals(data["tests"]))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    rule = compare.parse_rule(args.fail_on, "--fail-on")
    old, new = load(args.old), load(args.new)
    old_machine, new_machine = old["run"].get("machine"), new["run"].get("machine")
    if old_machine != new_machine:
        warn(f"the reports ran on different machines ({old_machine} and {new_machine}); "
             "timings may not be comparable")
    rows = diff.diff(old, new, rule.threshold, args.metric)
    for line in diff.table(rows):
        print(line)
    if rows:
        print()
    print(diff.summary(rows, rule))
    return 1 if diff.regressed(rows) else 0


def merge_command(args: argparse.Namespace) -> int:
    documents = [load(path) for path in args.reports]
    for nodeid, indexes in merge.duplicates(documents).items():
        where = ", ".join(args.reports[i] for i in indexes)
        warn(f"{nodeid} is in {where}; keeping the entry from {args.reports[indexes[-1]]}")
    merged = merge.merge(documents)
    try:
        files.write(args.output, document.text(merged))
    except OSError as exc:
        raise ReportError(f"{args.output}: cannot write it: {exc}") from None
    print(f"merged {len(merged['tests'])} entries from {len(documents)} reports "
          f"into {args.output}")
    return 0


def load(path: str) -> Report:
    """A report (checked field by field; an older schema brought up to date); a
    ReportError otherwise."""
    return document.load(path)


def warn(message: str) -> None:
    print(f"{NAME}: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
