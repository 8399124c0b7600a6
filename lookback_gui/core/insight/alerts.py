"""Alert rules: evaluated after every run (and by the scheduler for freshness).

A rule is ``firing`` or ``resolved``; it changes state once per episode, not on every run, and
each change is stored, sent to observers, and handed to the rule's ``command`` (if any) as one
JSON object on stdin.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lookback_gui.core.insight.nowcast import Nowcast, NowcastRow, nowcast
from lookback_gui.core.numbers import fmt_number
from lookback_gui.core.project import JUDGES, AlertRule, MetricConfig
from lookback_gui.core.store import AlertState, HistoryRow, RunRecord, Store
from lookback_gui.core.store.events import AlertChanged, AlertCommandFailed, Observer, ignore
from lookback_gui.core.store.records import stored_number
from lookback_gui.core.timing.moments import iso
from lookback_gui.core.timing.windows import add_buckets, bucket_start, buckets_between

log = logging.getLogger(__name__)
COMMAND_TIMEOUT_S = 30


def _series_matches(dims: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(str(dims.get(k)) == str(v) for k, v in wanted.items())


def _series_label(dims: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims.items()) or "all"


def _threshold(rule: AlertRule, store: Store, config: MetricConfig, run: RunRecord | None) -> str | None:
    """The message of a threshold rule now, or None; by its ``judge``:

    - ``latest``: the newest complete bucket of its measure, as it stands;
    - ``settled``: the newest settled bucket (see :func:`settled_bucket`);
    - ``expected``: the newest complete bucket; while it is provisional, by its nowcast (it
      fires only when the whole 80 % interval lies beyond the bound), once settled by its value.

    After a run the newest complete bucket is almost always in the run's window, so the store
    reads from the window's start on and nothing older (a year of values is never read to
    judge one bucket)."""
    if rule.measure is None:
        return None
    if rule.judge == "settled":
        cast = nowcast(store, config)
        bucket = settled_bucket(config, cast)
        if bucket is None:
            return None
        values = [
            (dict(r.dims), r.value)
            for r in _bucket_values(store, config, bucket)
            if r.measure == rule.measure
            and r.value is not None
            and _series_matches(dict(r.dims), dict(rule.series))
        ]
        return _judge(rule, bucket if values else None, values)
    latest, values = store.latest_values(
        config.name, rule.measure, dict(rule.series), since=run.window_start if run is not None else None
    )
    if rule.judge == "latest" or latest is None:
        return _judge(rule, latest, values)
    cast = nowcast(store, config)
    expected = {(_key(r.dims), r.measure): r for r in cast.rows if r.bucket == latest}
    newest = bucket_start(cast.as_known_at, config.grain) if cast.as_known_at else None
    provisional = (
        newest is not None
        and cast.settle_age > 0
        and (latest >= newest or buckets_between(latest, newest, config.grain) < cast.settle_age)
    )
    # a provisional value the nowcast has no answer for is not judged on its face value
    unknown = NowcastRow(latest, {}, rule.measure, 0, None, None, None, None, "none")
    return _judge_expected(
        rule,
        latest,
        [
            (dims, value, expected.get((_key(dims), rule.measure), unknown if provisional else None))
            for dims, value in values
        ],
    )


def settled_bucket(config: MetricConfig, cast: Nowcast) -> datetime | None:
    """The newest settled bucket: the bucket ``settle_age`` buckets before the one that holds
    the newest known time (a bucket whose age reached the settling age); the newest complete
    bucket when nothing was ever revised. None without history."""
    if cast.as_known_at is None:
        return None
    newest = bucket_start(cast.as_known_at, config.grain)
    return add_buckets(newest, config.grain, -max(cast.settle_age, 1))


def _bucket_values(store: Store, config: MetricConfig, bucket: datetime) -> list[HistoryRow]:
    query, params = store.history_query(config.name, buckets=(bucket, add_buckets(bucket, config.grain, 1)))
    with store.reading() as cur:
        rows = cur.execute(f"SELECT bucket, dims, measure, value, exact FROM ({query})", params).fetchall()
    return [
        HistoryRow(
            bucket=b,
            dims=json.loads(d),
            measure=m,
            value=stored_number(v, x),
            first_value=None,
            versions=1,
            revised=False,
            partial=False,
        )
        for b, d, m, v, x in rows
    ]


def _key(dims: Any) -> str:
    return json.dumps(dict(sorted(dict(dims).items())), separators=(",", ":"), ensure_ascii=False)


def _series_name(dims: dict[str, Any]) -> str:
    return ", ".join(str(v) for v in dims.values()) or "all"


def _judge_expected(
    rule: AlertRule, bucket: datetime, values: list[tuple[dict[str, Any], Any, NowcastRow | None]]
) -> str | None:
    """The message of a threshold rule on one bucket's values: a value with a nowcast by its
    whole interval, one without (settled) by the value itself."""
    hits = []
    for dims, value, row in values:
        if row is None:
            hits += _crossings(rule, dims, value)
            continue
        if row.expected is None or row.low is None or row.high is None:
            continue  # too little history to say where it settles: no alarm on a guess
        where = (
            f"{_series_name(dims)} {rule.measure} expected to settle at "
            f"{fmt_number(row.expected)} [{fmt_number(row.low)}, {fmt_number(row.high)}]"
        )
        if rule.above is not None and row.low > rule.above:
            hits.append(f"{where} > {fmt_number(rule.above)}")
        if rule.below is not None and row.high < rule.below:
            hits.append(f"{where} < {fmt_number(rule.below)}")
    if not hits:
        return None
    return f"{rule.measure} at {bucket.isoformat(sep=' ')}: " + "; ".join(hits)


def _crossings(rule: AlertRule, dims: dict[str, Any], value: Any) -> list[str]:
    hits = []
    if rule.above is not None and value > rule.above:
        hits.append(f"{_series_label(dims)}: {fmt_number(value)} > {fmt_number(rule.above)}")
    if rule.below is not None and value < rule.below:
        hits.append(f"{_series_label(dims)}: {fmt_number(value)} < {fmt_number(rule.below)}")
    return hits


def _judge(rule: AlertRule, latest: datetime | None, values: list[tuple[dict[str, Any], Any]]) -> str | None:
    """The message of a threshold rule on the values of one bucket, or None."""
    if latest is None:
        return None
    hits = [hit for dims, value in values for hit in _crossings(rule, dims, value)]
    if not hits:
        return None
    return f"{rule.measure} at {latest.isoformat(sep=' ')}: " + "; ".join(hits)


def _restatement(rule: AlertRule, store: Store, config: MetricConfig, run: RunRecord | None) -> str | None:
    if run is None or run.status != "succeeded" or run.window_end is None:
        return None
    newest = run.partial_start or run.window_end
    cutoff = add_buckets(newest, config.grain, -(rule.older_than or 1))
    threshold = rule.change_pct or 0.0
    hits = []
    for rev in store.revisions(config.name, run=run.id):
        if rev.bucket >= cutoff or rev.kind == "redefinition":  # a new definition is no news
            continue
        if rule.measure and rev.measure != rule.measure:
            continue
        if not _series_matches(dict(rev.dims), dict(rule.series)):
            continue
        if rev.old_value is None or rev.new_value is None:
            change = float("inf")
        elif rev.old_value == 0:
            change = float("inf") if rev.new_value != 0 else 0.0
        else:
            change = abs(rev.change_pct or 0.0)
        if change > threshold:
            pct = (
                "removed"
                if rev.new_value is None
                else (
                    "from nothing"
                    if rev.old_value is None
                    else f"{rev.change_pct:+.1f}%"
                    if rev.change_pct is not None
                    else "from 0"
                )
            )
            hits.append(
                f"{rev.bucket.date() if rev.bucket.hour == 0 else rev.bucket} "
                f"{_series_label(dict(rev.dims))} {rev.measure} "
                f"{fmt_number(rev.old_value)} → {fmt_number(rev.new_value)} ({pct})"
            )
    if not hits:
        return None
    more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
    return (
        f"run {run.id} restated {len(hits)} value(s) older than {rule.older_than} "
        f"bucket(s): " + "; ".join(hits[:3]) + more
    )


def _freshness(rule: AlertRule, store: Store, config: MetricConfig, now: datetime) -> str | None:
    last = store.last_successful_run(config.name)
    max_age = rule.max_age or timedelta(days=1)
    if last is None:
        first = store.runs(metric=config.name)
        if not first:
            return None
        since = min(r.started_at for r in first if r.started_at) if first else now
        if now - since > max_age:
            return f"no successful pull since the first attempt at {since.isoformat(sep=' ')}"
        return None
    moment = last.finished_at or last.started_at or now
    if now - moment > max_age:
        return (
            f"no successful pull for {_age(now - moment)} (last at "
            f"{moment.isoformat(sep=' ', timespec='minutes')}; allowed {_age(max_age)})"
        )
    return None


def _failure(store: Store, config: MetricConfig) -> str | None:
    for run in store.runs(metric=config.name, limit=10):
        if run.status == "failed":
            return f"run {run.id} failed after {run.attempts} attempt(s): {run.error}"
        if run.status == "succeeded":
            return None
    return None


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 72 else f"{hours // 24} days"


def evaluate_alerts(
    config: MetricConfig,
    store: Store,
    now: datetime,
    *,
    run: RunRecord | None = None,
    project_dir: Path | None = None,
    observer: Observer = ignore,
    kinds: tuple[str, ...] | None = None,
    commands: bool = True,
) -> list[AlertState]:
    """Evaluate the metric's rules and record state changes; return the changes.

    ``commands`` false (a replay of the past) brings the states up to date without running
    any rule's ``command``: history is not news."""
    changes = []
    for rule in config.alerts:
        if kinds is not None and rule.kind not in kinds:
            continue
        if rule.kind == "threshold":
            message = _threshold(rule, store, config, run)
        elif rule.kind == "restatement":
            if run is None:
                continue
            message = _restatement(rule, store, config, run)
        elif rule.kind == "freshness":
            message = _freshness(rule, store, config, now)
        else:
            message = _failure(store, config)
        previous = store.alert_state(config.name, rule.label)
        firing = message is not None
        if firing and (previous is None or previous.state != "firing"):
            state = AlertState(config.name, rule.label, rule.kind, "firing", now, message or "")
        elif not firing and previous is not None and previous.state == "firing":
            state = AlertState(
                config.name, rule.label, rule.kind, "resolved", now, f"resolved: {previous.message}"
            )
        else:
            continue
        store.set_alert_state(state)
        changes.append(state)
        observer(AlertChanged(state.metric, state.rule, state.kind, state.state, state.since, state.message))
        if rule.command and commands:
            problem = run_alert_command(rule.command, state, project_dir, config.timezone)
            if problem is not None:
                if run is not None:
                    store.log(run.id, "warning", problem)
                observer(
                    AlertCommandFailed(config.name, rule.label, problem, run.id if run is not None else None)
                )
    return changes


def run_alert_command(
    command: str, state: AlertState, project_dir: Path | None, zone: str | None = None
) -> str | None:
    """Run ``command`` (split like a shell line, no shell) with the alert as JSON on stdin
    (``since`` with the UTC offset of ``zone``, the metric's).

    Returns a problem description, or None when it ran and exited 0.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return f"alert command {command!r} does not parse: {exc}"
    try:
        result = subprocess.run(
            argv,
            input=json.dumps(state.to_json(zone)),
            text=True,
            capture_output=True,
            cwd=project_dir,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        problem = f"alert command {argv[0]!r} not found"
    except subprocess.TimeoutExpired:
        problem = f"alert command {argv[0]!r} did not finish within {COMMAND_TIMEOUT_S} s"
    except OSError as exc:
        problem = f"alert command {argv[0]!r} cannot run: {exc.strerror}"
    else:
        if result.returncode == 0:
            return None
        problem = f"alert command {argv[0]!r} exited {result.returncode}: {result.stderr.strip()[:200]}"
    log.debug("%s", problem)  # said by the caller: the run's log and an event
    return problem


def find_rule(config: MetricConfig, reference: str) -> AlertRule:
    """The rule ``reference`` names: its ``name``, or its kind and position (``threshold#1``;
    ``threshold #1`` too), whether the rule has a name or not."""
    from lookback_gui.core.errors import UsageError

    wanted = reference.strip()
    for rule in config.alerts:
        if rule.name == wanted:
            return rule
    for rule in config.alerts:
        if rule.reference == wanted.replace(" ", ""):
            return rule
    known = (
        ", ".join(repr(r.label) if r.name is None else f"{r.label!r} ({r.reference})" for r in config.alerts)
        or "none"
    )
    raise UsageError(f"metric {config.name} has no alert rule {reference!r} (its rules: {known})")


def try_rule(config: MetricConfig, store: Store, rule: AlertRule) -> dict[str, Any]:
    """How often ``rule`` would have fired over the stored history, before it is switched on.

    The rule is evaluated after every successful run of the metric, in the order they
    committed, on the store as it stood then: a threshold rule on the values known after the
    run, a restatement rule on the revisions the run made. Nothing is recorded and no command
    runs. Returns the runs evaluated, after how many the rule's condition held, and each
    episode (from the run where it started firing to the run where it resolved).

    A threshold rule is tried with each ``judge`` too (``judges``): after how many runs it
    would have fired, on how many buckets, and how many of those were false alarms (the
    bucket's settled value did not cross the bound); a bucket that has not settled yet counts
    as ``unsettled``. The ``expected`` judge of a past run projects the value known then with
    the development as the metric's nowcast measures it now (its expected value and interval
    relative to the current value, at the same age)."""
    from lookback_gui.core.errors import UsageError

    if rule.kind not in ("threshold", "restatement"):
        raise UsageError(
            f"rule {rule.label!r} is a {rule.kind} rule; only threshold and "
            "restatement rules can be tried on the stored history"
        )
    runs = sorted(store.runs(metric=config.name, status="succeeded"), key=lambda r: r.id)
    trial = _Trial(config, store, rule) if rule.kind == "threshold" else None
    episodes: list[dict[str, Any]] = []
    held = 0
    open_episode: dict[str, Any] | None = None
    for run in runs:
        if trial is not None:
            messages = trial.after(run)
            message = messages[rule.judge]
        else:
            message = _restatement(rule, store, config, run)
        when = run.known_at or run.finished_at
        if message is not None:
            held += 1
            if open_episode is None:
                open_episode = {
                    "run": run.id,
                    "since": iso(when, config.timezone),
                    "resolved_run": None,
                    "resolved": None,
                    "runs": 0,
                    "message": message,
                }
                episodes.append(open_episode)
            open_episode["runs"] += 1
        elif open_episode is not None:
            open_episode["resolved_run"] = run.id
            open_episode["resolved"] = iso(when, config.timezone)
            open_episode = None
    out = {
        "metric": config.name,
        "rule": rule.label,
        "kind": rule.kind,
        "runs_evaluated": len(runs),
        "runs_firing": held,
        "firings": len(episodes),
        "episodes": episodes,
    }
    if trial is not None:
        out["judge"] = rule.judge
        out["judges"] = trial.summary()
    return out


class _Trial:
    """A threshold rule judged three ways after each run, and what became of the buckets it
    fired on."""

    def __init__(self, config: MetricConfig, store: Store, rule: AlertRule):
        self.config, self.store, self.rule = config, store, rule
        cast = nowcast(store, config)
        self.settle = cast.settle_age
        self.settled_now = settled_bucket(config, cast)
        # the nowcast's projection by age: (expected, low, high) / value, of the series or
        # of every series of the measure
        self.ratios: dict[tuple[str, int], tuple[float, float, float]] = {}
        pooled: dict[int, list[tuple[float, float, float]]] = {}
        for row in cast.rows:
            if (
                row.measure != rule.measure
                or row.value in (None, 0)
                or row.expected is None
                or row.low is None
                or row.high is None
            ):
                continue
            assert row.value is not None
            ratio = (row.expected / row.value, row.low / row.value, row.high / row.value)
            self.ratios.setdefault((_key(row.dims), row.age), ratio)
            pooled.setdefault(row.age, []).append(ratio)
        for age, found in pooled.items():
            self.ratios[("", age)] = tuple(  # type: ignore[assignment]
                sorted(r[i] for r in found)[len(found) // 2] for i in range(3)
            )
        self.current = {
            (r.bucket, _key(r.dims)): r.value for r in store.history(config.name) if r.measure == rule.measure
        }
        self.fired: dict[str, set[tuple[datetime, str, bool]]] = {j: set() for j in JUDGES}
        self.runs_firing = dict.fromkeys(JUDGES, 0)
        self.firings = dict.fromkeys(JUDGES, 0)
        self._was = dict.fromkeys(JUDGES, False)

    def after(self, run: RunRecord) -> dict[str, str | None]:
        """What each judge says right after ``run`` committed."""
        rule, config = self.rule, self.config
        rows = [
            r
            for r in self.store.history(config.name, as_of_run=run.id)
            if r.measure == rule.measure
            and r.value is not None
            and _series_matches(dict(r.dims), dict(rule.series))
        ]
        complete = [r for r in rows if not r.partial] or rows
        latest = max((r.bucket for r in complete), default=None)
        at_latest = [r for r in complete if r.bucket == latest]
        messages: dict[str, str | None] = {}
        messages["latest"] = _judge(rule, latest, [(dict(r.dims), r.value) for r in at_latest])
        self._note("latest", at_latest, lambda r: bool(_crossings(rule, dict(r.dims), r.value)))
        known = run.known_at or run.finished_at
        settled = None
        if known is not None:
            settled = add_buckets(bucket_start(known, config.grain), config.grain, -max(self.settle, 1))
        at_settled = [r for r in rows if r.bucket == settled]
        messages["settled"] = _judge(
            rule, settled if at_settled else None, [(dict(r.dims), r.value) for r in at_settled]
        )
        self._note("settled", at_settled, lambda r: bool(_crossings(rule, dict(r.dims), r.value)))
        judged: list[tuple[dict[str, Any], Any, NowcastRow | None]] = []
        if latest is not None and known is not None:
            age = buckets_between(latest, bucket_start(known, config.grain), config.grain)
            for r in at_latest:
                judged.append(
                    (dict(r.dims), r.value, None if age >= self.settle else self._projected(r, age))
                )
        messages["expected"] = None if latest is None else _judge_expected(rule, latest, judged)
        self._note(
            "expected",
            at_latest,
            lambda r: (
                _judge_expected(rule, r.bucket, [item for item in judged if _key(item[0]) == _key(r.dims)])
                is not None
            ),
        )
        for judge in JUDGES:
            now = messages[judge] is not None
            self.runs_firing[judge] += now
            self.firings[judge] += now and not self._was[judge]
            self._was[judge] = now
        return messages

    def _projected(self, row: HistoryRow, age: int) -> NowcastRow | None:
        ratio = self.ratios.get((_key(row.dims), age)) or self.ratios.get(("", age))
        value = float(row.value) if row.value is not None else None
        if ratio is None or value is None:
            return NowcastRow(row.bucket, dict(row.dims), row.measure, age, value, None, None, None, "none")
        low, high = sorted((value * ratio[1], value * ratio[2]))
        return NowcastRow(
            row.bucket, dict(row.dims), row.measure, age, value, value * ratio[0], low, high, "projected"
        )

    def _note(self, judge: str, rows: list[HistoryRow], fires: Any) -> None:
        for r in rows:
            if fires(r):
                self.fired[judge].add((r.bucket, _key(r.dims), True))

    def summary(self) -> dict[str, dict[str, int]]:
        out = {}
        for judge in JUDGES:
            false_alarms = unsettled = 0
            for bucket, dims, _ in self.fired[judge]:
                if self.settled_now is None or bucket > self.settled_now:
                    unsettled += 1
                    continue
                value = self.current.get((bucket, dims))
                if value is None or not _crossings(self.rule, {}, value):
                    false_alarms += 1
            out[judge] = {
                "runs_firing": self.runs_firing[judge],
                "firings": self.firings[judge],
                "buckets_fired": len(self.fired[judge]),
                "false_alarms": false_alarms,
                "unsettled": unsettled,
            }
        return out
