"""The commands that infer: ``alerts``, ``nowcast``, ``vintages`` and ``advise``."""

from __future__ import annotations

import argparse
import csv
from typing import TYPE_CHECKING, Any, TextIO

from lookback_gui.cli.common import EXIT_OK, AddCommand, Parser, open_store, project_of
from lookback_gui.cli.output import print_table, series_label, write_json
from lookback_gui.core.errors import (
    UsageError,
)
from lookback_gui.core.timing.moments import local, local_zone_note

if TYPE_CHECKING:  # the advisor (numpy) is imported by the command that runs it
    from lookback_gui.core.insight.advisor import Advice


def cmd_alerts(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if getattr(args, "try_rule", None):
        return cmd_alerts_try(args, out, err)
    project = project_of(args)
    with open_store(project, err, reading=True) as store:
        states = store.alert_states()

    def zone(metric: str) -> str | None:  # alert states are stored in their metric's zone
        config = project.metrics.get(metric)
        return config.timezone if config is not None else None

    if args.json:
        write_json([s.to_json(zone(s.metric)) for s in states], out)
    elif not states:
        out.write("no alert has fired yet\n")
    else:
        out.write(local_zone_note() + "\n")
        print_table(
            ["metric", "rule", "kind", "state", "since", "message"],
            [[s.metric, s.rule, s.kind, s.state, local(s.since, zone(s.metric)), s.message] for s in states],
            out,
        )
    return EXIT_OK


def cmd_alerts_try(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``alerts --try METRIC RULE``: how often a rule would have fired over the history."""
    from lookback_gui.core.insight.alerts import find_rule, try_rule

    project = project_of(args)
    metric, reference = args.try_rule
    config = project.metric(metric)
    rule = find_rule(config, reference)
    with open_store(project, err, reading=True) as store:
        trial = try_rule(config, store, rule)
    if args.json:
        write_json(trial, out)
        return EXIT_OK
    out.write(
        f"{config.name} / {trial['rule']} ({trial['kind']}): would have fired "
        f"{trial['firings']} time(s) over {trial['runs_evaluated']} pull(s); its condition "
        f"held after {trial['runs_firing']} of them\n"
    )
    if trial.get("judges"):
        out.write(
            f"each judge over the same pulls (this rule judges {trial['judge']}; a false "
            "alarm fired on a bucket whose settled value did not cross):\n"
        )
        print_table(
            ["judge", "pulls firing", "firings", "buckets", "false alarms", "not settled yet"],
            [
                [name, j["runs_firing"], j["firings"], j["buckets_fired"], j["false_alarms"], j["unsettled"]]
                for name, j in trial["judges"].items()
            ],
            out,
            right=["pulls firing", "firings", "buckets", "false alarms", "not settled yet"],
        )
    if trial["episodes"]:
        print_table(
            ["run", "since", "resolved by run", "pulls", "message"],
            [
                [e["run"], e["since"], e["resolved_run"] or "(still firing)", e["runs"], e["message"][:100]]
                for e in trial["episodes"]
            ],
            out,
            right=["run", "pulls"],
        )
    return EXIT_OK


def cmd_nowcast(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.insight.nowcast import nowcast

    project = project_of(args)
    config = project.metric(args.metric)
    with open_store(project, err, reading=True) as store:
        result = nowcast(store, config)
    if args.json:
        write_json(result.to_json(), out)
        return EXIT_OK
    out.write(f"{config.name}: {result.message}\n")
    if result.rows:

        def num(value: float | None) -> str:
            return "" if value is None else f"{value:,.6g}"

        print_table(
            ["bucket", "series", "measure", "age", "value", "expected", "low", "high", "basis"],
            [
                [
                    r.bucket,
                    series_label(r.dims),
                    r.measure,
                    r.age,
                    num(r.value),
                    num(r.expected),
                    num(r.low),
                    num(r.high),
                    r.basis,
                ]
                for r in result.rows
            ],
            out,
            right=["age", "value", "expected", "low", "high"],
        )
    return EXIT_OK


def cmd_vintages(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.insight.vintages import cell_text, vintages

    project = project_of(args)
    config = project.metric(args.metric)
    wanted: dict[str, str] = {}
    for item in args.series or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--series: expected KEY=VALUE, got {item!r}")
        wanted[key] = value
    with open_store(project, err, reading=True) as store:
        matrix = vintages(store, config, args.measure, wanted)
    headers = ["bucket", *(d.isoformat() for d in matrix.dates)]
    if args.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        for bucket, cells in matrix.rows:
            writer.writerow([bucket.isoformat(), *(cell_text(c) for c in cells)])
        return EXIT_OK
    print_table(
        headers, [[b, *(cell_text(c) for c in cells)] for b, cells in matrix.rows], out, right=headers[1:]
    )
    return EXIT_OK


def cmd_advise(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lookback_gui.core.insight.advisor import advise

    project = project_of(args)
    config = project.metric(args.metric)
    if not 0 < args.share <= 100:
        raise UsageError("--share is a percentage between 0 and 100")
    with open_store(project, err, reading=True) as store:
        advice = advise(store, config, share=args.share / 100)
    if args.json:
        write_json(advice.to_json(), out)
        return EXIT_OK
    out.write(f"{config.name}: {advice.message}\n")
    if not advice.enough_history:
        return EXIT_OK
    grain = config.grain.value
    _print_settling_curve(advice, grain, out)
    _print_revisions_by_age(advice, grain, out)
    _print_candidates(advice, out)
    _print_nowcast_backtest(advice, grain, out)
    _print_missed_revisions(advice, out)
    return EXIT_OK


def _print_settling_curve(advice: Advice, grain: str, out: TextIO) -> None:
    """The share of the final value present at each age, one column per measure."""
    measures = sorted({m for p in advice.settling_curve for m in p["share_present"]})
    if advice.settling_curve:
        out.write("\nshare of the final value present, by age:\n")
        rows = [
            [
                f"{p['age_buckets']} {grain}(s)",
                *(
                    "" if p["share_present"].get(m) is None else f"{p['share_present'][m]:.1f}%"
                    for m in measures
                ),
            ]
            for p in advice.settling_curve
        ]
        print_table(["age", *measures], rows, out, right=measures)


def _print_revisions_by_age(advice: Advice, grain: str, out: TextIO) -> None:
    """The share of the revisions, and of their magnitude, that arrived at each age."""
    if advice.revisions_by_age:
        out.write("\nrevisions by age:\n")
        print_table(
            ["age", "revisions", "magnitude"],
            [
                [
                    f"{r['age_buckets']} {grain}(s)",
                    f"{r['revisions_share'] * 100:.1f}%",
                    f"{r['magnitude_share'] * 100:.1f}%",
                ]
                for r in advice.revisions_by_age
            ],
            out,
            right=["revisions", "magnitude"],
        )


def _print_candidates(advice: Advice, out: TextIO) -> None:
    """The pull policies tried on the stored history, the current one marked."""
    if advice.candidates:
        out.write("\npolicies tried on the stored history:\n")
        print_table(
            ["policy", "magnitude", "revisions", "largest error", "pulls", "rows read"],
            [
                [
                    ("* " if c["current"] else "  ") + c["policy"],
                    f"{c['magnitude_share'] * 100:.2f}%",
                    f"{c['revisions_share'] * 100:.1f}%",
                    _error_profile(c["max_error_by_age"]),
                    c["pulls"],
                    c["rows_read"] if c["rows_read"] is not None else c["buckets_read"],
                ]
                for c in advice.candidates
            ],
            out,
            right=["magnitude", "revisions", "pulls", "rows read"],
        )
        out.write(
            "(* the current policy; largest error: in % of the settled value at ages "
            "0, 1, 2, … until it is 0)\n"
        )


def _print_nowcast_backtest(advice: Advice, grain: str, out: TextIO) -> None:
    """The nowcast replayed on the stored history: how often its interval held, and its errors
    by age against the raw values' (or why it could not be replayed yet)."""
    backtest = advice.nowcast_backtest
    if backtest and not backtest["by_age"]:
        out.write(f"\nnowcast tried on the stored history: not yet, {backtest.get('reason')}\n")
    if backtest and backtest["by_age"]:
        coverage = backtest["coverage"]
        widened = (
            f"; the nowcast scales its intervals × {backtest['widen']:.2f}, which held "
            f"it {backtest['calibrated_coverage'] * 100:.0f}% of the time"
            if backtest.get("widen", 1) != 1
            else ""
        )
        out.write(
            f"\nnowcast tried on the stored history (80% interval held the settled value "
            f"{'' if coverage is None else f'{coverage * 100:.0f}% of the time'}"
            f"{widened}):\n"
        )
        print_table(
            ["age", "nowcast error", "raw error", "interval held"],
            [
                [
                    f"{b['age_buckets']} {grain}(s)",
                    f"{b['nowcast_error_pct']:.2f}%",
                    f"{b['raw_error_pct']:.2f}%",
                    "" if b["coverage"] is None else f"{b['coverage'] * 100:.0f}%",
                ]
                for b in backtest["by_age"]
            ],
            out,
            right=["nowcast error", "raw error", "interval held"],
        )


def _print_missed_revisions(advice: Advice, out: TextIO) -> None:
    """The revisions audits found beyond the lookback (the first 50)."""
    if advice.missed_revisions:
        out.write(f"\n{len(advice.missed_revisions)} revision(s) found by audits beyond the lookback:\n")
        print_table(
            ["run", "bucket", "series", "measure", "old", "new", "age"],
            [
                [
                    m["run"],
                    m["bucket"],
                    series_label(m["dims"]),
                    m["measure"],
                    m["old_value"],
                    m["new_value"],
                    m["age_buckets"],
                ]
                for m in advice.missed_revisions[:50]
            ],
            out,
            right=["run", "old", "new", "age"],
        )


def _error_profile(errors: list[dict[str, Any]]) -> str:
    """The largest errors by age as a short list, up to the first age where it is 0."""
    parts = []
    for entry in errors:
        value = entry["max_error_pct"]
        parts.append("-" if value is None else f"{value:.3g}")
        if value == 0:
            break
    return " ".join(parts[:12]) + (" …" if len(parts) > 12 else "")


def register(add: AddCommand, common: Parser) -> None:
    """Add alerts, nowcast, vintages, advise to the parser."""
    p = add("alerts", cmd_alerts, "alert states, firing first")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--try",
        dest="try_rule",
        nargs=2,
        metavar=("METRIC", "RULE"),
        help="how often a threshold or restatement rule (its name, or kind and "
        "position like threshold#1) would have fired over the stored history",
    )
    p = add(
        "nowcast",
        cmd_nowcast,
        "for each provisional bucket: its current value and the "
        "value it is expected to settle at, with an 80%% interval",
    )
    p.add_argument("metric")
    p.add_argument("--json", action="store_true")
    p = add(
        "vintages",
        cmd_vintages,
        "the vintage matrix: one row per bucket, one column per "
        "known date, each cell the value as known then",
    )
    p.add_argument("metric")
    p.add_argument("--measure", metavar="M", help="the measure (needed when there are several)")
    p.add_argument(
        "--series",
        metavar="K=V",
        action="append",
        help="only the series with this dimension value (repeatable); the values "
        "of all matching series are summed",
    )
    p.add_argument("--csv", action="store_true", help="CSV (default: an aligned table)")
    p = add("advise", cmd_advise, "how late this metric's data arrives, and the lookback it needs")
    p.add_argument("metric")
    p.add_argument(
        "--share",
        type=float,
        default=99.0,
        metavar="PCT",
        help="the share of revised magnitude to catch (default 99)",
    )
    p.add_argument("--json", action="store_true")
