"""The scheduler's APScheduler jobs: one per metric with a ``schedule`` or ``every``, one per
metric with an ``audit_every``; which of them run, and when they fire next."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from lookback_gui.core.project import MetricConfig, Project
from lookback_gui.core.timing.cron import cron_trigger

AUDIT_SUFFIX = "::audit"
TICK_JOB = "__tick__"


def trigger_for(config: MetricConfig) -> CronTrigger | IntervalTrigger | None:
    """The APScheduler trigger of a metric's ``schedule`` or ``every``, in its time zone."""
    if config.schedule:
        return cron_trigger(config.schedule, config.zone)
    if config.every:
        return IntervalTrigger(seconds=int(config.every.total_seconds()), timezone=config.zone)
    return None


def wanted_jobs(project: Project) -> dict[str, tuple[CronTrigger | IntervalTrigger, tuple[object, ...]]]:
    """The jobs the project asks for: job id -> its trigger and its schedule as written."""
    wanted: dict[str, tuple[CronTrigger | IntervalTrigger, tuple[object, ...]]] = {}
    for config in project.metrics.values():
        trigger = trigger_for(config)
        if trigger is not None:
            wanted[config.name] = (trigger, (config.schedule, config.every, config.timezone))
    for config in project.metrics.values():
        if config.audit_every is not None:
            wanted[f"{config.name}{AUDIT_SUFFIX}"] = (
                IntervalTrigger(seconds=int(config.audit_every.total_seconds()), timezone=config.zone),
                ("audit", config.audit_every, config.timezone),
            )
    return wanted


class Jobs:
    """The pull jobs of one APScheduler scheduler, and the schedule each was made from."""

    def __init__(self, aps: BackgroundScheduler):
        self._aps = aps
        self._specs: dict[str, tuple[object, ...]] = {}  # each job's schedule, to tell a change

    def sync(
        self,
        project: Project,
        fire: Callable[[str], None],
        fire_audit: Callable[[str], None],
        paused: Collection[str],
        paused_all: bool,
    ) -> None:
        """Bring the jobs in line with the project: a job whose schedule did not change keeps
        its trigger and so its next fire time (saving the project file, however often, never
        delays a pull); only new jobs and changed schedules get new timers."""
        wanted = wanted_jobs(project)
        present = {job.id for job in self._aps.get_jobs()}
        for job_id in present:
            if job_id != TICK_JOB and job_id not in wanted:
                self._aps.remove_job(job_id)
                self._specs.pop(job_id, None)
        for job_id, (trigger, spec) in wanted.items():
            if job_id in present and self._specs.get(job_id) == spec:
                continue  # the same schedule: its timer runs on
            audit = job_id.endswith(AUDIT_SUFFIX)
            name = job_id.removesuffix(AUDIT_SUFFIX)
            self._aps.add_job(
                fire_audit if audit else fire,
                trigger,
                args=[name],
                id=job_id,
                replace_existing=True,
            )
            self._specs[job_id] = spec
            if name in paused or paused_all:
                self._aps.pause_job(job_id)

    def pull_jobs(self, metric: str | None = None) -> list[str]:
        """The ids of the pull jobs of ``metric`` (its schedule's and its audit's), or of all."""
        return [
            job.id
            for job in self._aps.get_jobs()
            if job.id != TICK_JOB and (metric is None or job.id in (metric, f"{metric}{AUDIT_SUFFIX}"))
        ]

    def pause(self, metric: str | None = None) -> None:
        for job_id in self.pull_jobs(metric):
            self._aps.pause_job(job_id)

    def resume(self, metric: str | None, paused: Collection[str]) -> None:
        """Resume the jobs of ``metric`` (or all), but those of the metrics still ``paused``."""
        for job_id in self.pull_jobs(metric):
            if job_id.removesuffix(AUDIT_SUFFIX) not in paused:
                self._aps.resume_job(job_id)

    def next_fire_times(self) -> dict[str, datetime | None]:
        out: dict[str, datetime | None] = {}
        for job in self._aps.get_jobs():
            if job.id != TICK_JOB and not job.id.endswith(AUDIT_SUFFIX):
                out[job.id] = getattr(job, "next_run_time", None)
        return out
