"""Prometheus metrics for ``GET /metrics`` (docs/metrics.md).

Two kinds:

* **Per process, added up across workers**: decisions by effect and reason, the decision API's
  latency, the change sequence of the worker furthest behind and when it was last current.
  ``accessd serve`` points
  ``PROMETHEUS_MULTIPROC_DIR`` at a directory of its own (emptied at start) before the workers
  start, so prometheus_client's multiprocess mode sums every worker's counters whichever worker
  answers the scrape. Without it (one process, tests) the process's own values are shown, and
  the cache figures are those of the scraping app's own change feed (a process that made
  several apps, like the tests, would otherwise show whichever feed reported last).
* **The cluster's state, read from the database at each scrape**: the decision log's queue,
  written and waiting counts in every worker (their heartbeat rows), sync runs by kind and
  status and the last successful one, and Shared Signals events by status. Every worker on
  every host answers these the same.

Labels are closed sets (effects, reason codes, endpoints, statuses): no subject or resource id
ever becomes a label. This module imports no Flask.
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from datetime import UTC

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from accessd import changes
from accessd.models import SsfOutbox, SyncRun
from accessd.pdp import decision_queries
from accessd.pdp.decision_rows import COLUMNS

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_EFFECT, _REASON = COLUMNS.index("decision"), COLUMNS.index("reason")

DECISIONS = Counter(
    "accessd_decisions", "Decisions answered, by effect and reason code", ["effect", "reason"]
)
LATENCY = Histogram(
    "accessd_decision_request_seconds",
    "Time to decide one decision API call (evaluation, batch, fields, search), excluding HTTP",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# the time, not the lag: a stuck worker stops reporting, and time() minus this shows it
_CACHE_CURRENT = (
    "accessd_cache_current_timestamp_seconds",
    "When the worker furthest behind last knew its caches were current (Unix time)",
)
_CACHE_SEQ = ("accessd_cache_seq", "Change sequence applied by the worker furthest behind")
# what each worker reports after a catch-up, for the multiprocess files (see FeedCollector)
CACHE_CURRENT = Gauge(*_CACHE_CURRENT, multiprocess_mode="min")
CACHE_SEQ = Gauge(*_CACHE_SEQ, multiprocess_mode="min")


def count_decisions(rows: Sequence[tuple]) -> None:
    """Count decision rows (``decision_rows.COLUMNS`` order) by effect and reason."""
    if len(rows) == 1:
        _decisions(rows[0][_EFFECT], rows[0][_REASON]).inc()
        return
    for (effect, reason), n in Tally((r[_EFFECT], r[_REASON]) for r in rows).items():
        _decisions(effect, reason).inc(n)


# Labelled children are remembered: ``labels()`` checks and locks on every call, and these run on
# every decision call. The label sets are closed (effects, reason codes, endpoints).
@functools.cache
def _decisions(effect: str, reason: str | None) -> Counter:
    return DECISIONS.labels(effect, reason or "")


@functools.cache
def latency(endpoint: str) -> Histogram:
    """The latency histogram of one decision endpoint (``with latency(name).time(): ...``)."""
    return LATENCY.labels(endpoint)


def caught_up(seq: int) -> None:
    """The change feed's report after each catch-up."""
    CACHE_SEQ.set(seq)
    CACHE_CURRENT.set(time.time())


class ClusterCollector:
    """The state shared by every worker, read from the database when scraped."""

    def __init__(self, db, decision_log):
        self.db, self.decision_log = db, decision_log

    def collect(self) -> Iterable[GaugeMetricFamily]:
        log = decision_queries.health(self.db, self.decision_log)
        for key, help_text in (
            ("queued", "Decision records queued in every worker, not yet written"),
            ("waiting", "Requests waiting for room in a worker's decision-log queue"),
            ("written", "Decision records written by the workers running now (since each started)"),
            ("rejected", "Decision API calls refused because a decision-log queue stayed full"),
            ("failed_batches", "Decision-log batches whose write failed (retried)"),
        ):
            yield GaugeMetricFamily(f"accessd_decision_log_{key}", help_text, value=log[key])
        yield GaugeMetricFamily(
            "accessd_decision_log_workers", "Workers reporting to the decision log", value=log["workers"]
        )
        with self.db.session() as s:
            runs = s.execute(
                select(SyncRun.kind, SyncRun.status, func.count()).group_by(SyncRun.kind, SyncRun.status)
            ).all()
            last_ok = s.scalar(
                select(func.max(SyncRun.finished_at)).where(
                    SyncRun.status == "succeeded", SyncRun.dry_run.is_(False)
                )
            )
            seq = changes.counter(s)[0]
            events = s.execute(select(SsfOutbox.status, func.count()).group_by(SsfOutbox.status)).all()
        yield GaugeMetricFamily(
            "accessd_change_seq",
            "The database's newest change sequence (minus accessd_cache_seq: the lag)",
            value=seq,
        )
        family = GaugeMetricFamily(
            "accessd_sync_runs", "Directory sync runs kept, by kind and status", labels=["kind", "status"]
        )
        for kind, status, n in runs:
            family.add_metric([kind, status], n)
        yield family
        yield GaugeMetricFamily(
            "accessd_sync_last_success_timestamp_seconds",
            "When the last successful directory sync finished (Unix time; 0: never)",
            value=last_ok.replace(tzinfo=UTC).timestamp() if last_ok else 0,
        )
        family = GaugeMetricFamily(
            "accessd_events", "Shared Signals events in the outbox, by status", labels=["status"]
        )
        for status in ("pending", "delivered", "failed"):
            family.add_metric([status], dict(events).get(status, 0))
        yield family


class FeedCollector:
    """One process's cache figures, read from its change feed when scraped."""

    def __init__(self, feed):
        self.feed = feed

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self.feed.seq is None:  # nothing loaded yet: no figures rather than made-up ones
            return
        yield GaugeMetricFamily(*_CACHE_SEQ, value=self.feed.seq)
        yield GaugeMetricFamily(*_CACHE_CURRENT, value=time.time() - self.feed.lag_seconds())


def render(db, decision_log, feed) -> bytes:
    """The text exposition of every metric, across worker processes when they share a directory."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in (DECISIONS, LATENCY):
            registry.register(metric)
        registry.register(FeedCollector(feed))
    registry.register(ClusterCollector(db, decision_log))
    return generate_latest(registry)


def prepare_directory(path: str) -> None:
    """Make ``path`` an empty directory for the multiprocess files of a server starting now
    (files of an earlier run would be added to this one's counters)."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def worker_died(pid: int) -> None:
    """gunicorn's child_exit: drop a dead worker's gauges (its counters stay counted)."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
