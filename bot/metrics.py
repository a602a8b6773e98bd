"""`GET /metrics` in Prometheus' text format: requests, migrations, XAPI and Slack calls.

One registry per running bot (nothing global, so tests can run several). Request counts
by state and the oldest request waiting for approval are read from the store at scrape
time; migration outcomes and durations come from the engine's events; XAPI and Slack call
counts from the clients' own counters; the connections (XAPI event watcher per pool, Socket
Mode) are asked at scrape time. prometheus_client's process, platform and GC collectors
sit on the same registry, so restarts, memory and CPU can be alerted on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from bot.engine import events as ev
from bot.states import State
from bot.store.store import Store
from bot.xen.connection import XapiStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class SlackStats:
    calls: Counter[str] = field(default_factory=Counter)  # by method
    errors: Counter[str] = field(default_factory=Counter)  # by Slack's error name
    rate_limited: int = 0


class CountingWebClient(WebClient):
    """slack_sdk's client, counting every Web API call and error for /metrics."""

    def __init__(self, *args: Any, stats: SlackStats, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats = stats

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        self.stats.calls[api_method] += 1
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            self.stats.errors[str(error.response.get("error", "unknown"))] += 1
            raise


# Off in a thread that reschedules its own rate-limited calls (the Slack outbox): sleeping
# out one channel's Retry-After there would hold every other channel's messages.
WAIT_OUT_429: ContextVar[bool] = ContextVar("wait_out_429", default=True)


class CountingRateLimitHandler(RateLimitErrorRetryHandler):
    """Counts every 429; waits it out as slack_sdk's handler does, unless `WAIT_OUT_429`
    is off in the calling thread (then the caller gets the 429 as a `SlackApiError`)."""

    def __init__(self, stats: SlackStats, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stats = stats

    def can_retry(self, *, state: RetryState, **kwargs: Any) -> bool:
        if not self._can_retry(state=state, **kwargs):
            return False
        self.stats.rate_limited += 1
        return WAIT_OUT_429.get() and super().can_retry(state=state, **kwargs)


class Metrics(Collector):
    def __init__(
        self,
        store: Store,
        xapi: Mapping[str, XapiStats],
        slack: SlackStats,
        watchers: Mapping[str, Callable[[], bool]],
        socket: Callable[[], bool] | None = None,
    ) -> None:
        """`watchers`: per pool name, is its XAPI event watcher connected; `socket`: is
        Socket Mode connected (None in HTTP mode: the gauge is left out, not 0, so an alert
        on it cannot fire for a bot that never opens the connection)."""
        self.store, self.xapi, self.slack = store, xapi, slack
        self.watchers, self.socket = watchers, socket
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.outcomes = PromCounter(
            "migrate_bot_migrations",
            "Migrations that ended, by outcome and mode",
            ["outcome", "mode"],
            registry=self.registry,
        )
        self.durations = Histogram(
            "migrate_bot_migration_seconds",
            "Duration of successful migrations, by mode",
            ["mode"],
            buckets=(30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
            registry=self.registry,
        )
        self.registry.register(self)

    def on_event(self, event: ev.Event) -> None:
        """Engine subscriber: count outcomes and durations."""
        if not isinstance(event, ev.Succeeded | ev.Failed | ev.StateChanged):
            return
        if isinstance(event, ev.StateChanged) and event.state != State.CANCELLED:
            return
        req = self.store.get(event.request_id)
        mode = req.mode if req else "unknown"
        if isinstance(event, ev.Succeeded):
            self.outcomes.labels("succeeded", mode).inc()
            self.durations.labels(mode).observe(event.seconds)
        elif isinstance(event, ev.Failed):
            self.outcomes.labels("failed", mode).inc()
        else:
            self.outcomes.labels("cancelled", mode).inc()

    def collect(self) -> Iterator[Any]:
        requests = GaugeMetricFamily(
            "migrate_bot_requests", "Requests in the store, by state", labels=["state"]
        )
        counts = self.store.count_by_state()
        for state in State:
            requests.add_metric([str(state)], counts.get(str(state), 0))
        yield requests
        yield GaugeMetricFamily(
            "migrate_bot_oldest_pending_seconds",
            "Age of the oldest request waiting for approval (0: none; at= windows ahead left out)",
            value=self.store.oldest_pending_age(),
        )
        watchers = GaugeMetricFamily(
            "migrate_bot_xapi_events_connected",
            "1 while the pool's XAPI event watcher holds its event.from stream",
            labels=["pool"],
        )
        for pool, connected in sorted(self.watchers.items()):
            watchers.add_metric([pool], float(connected()))
        yield watchers
        if self.socket is not None:
            yield GaugeMetricFamily(
                "migrate_bot_slack_socket_connected",
                "1 while the Socket Mode connection to Slack is open (absent in HTTP mode)",
                value=float(self.socket()),
            )
        calls = CounterMetricFamily(
            "migrate_bot_xapi_calls", "XML-RPC requests sent to the pool", labels=["pool"]
        )
        answered = CounterMetricFamily(
            "migrate_bot_xapi_answered",
            "XML-RPC requests the pool master answered (a result or a XAPI failure)",
            labels=["pool"],
        )
        failures = CounterMetricFamily(
            "migrate_bot_xapi_errors",
            "XAPI failures by pool and error code",
            labels=["pool", "code"],
        )
        for pool, stats in sorted(self.xapi.items()):
            calls.add_metric([pool], stats.calls)
            answered.add_metric([pool], stats.answered)
            for code, n in sorted(stats.failures.items()):
                failures.add_metric([pool, code], n)
            failures.add_metric([pool, "UNAVAILABLE"], stats.unavailable)
        yield from (calls, answered, failures)
        calls = CounterMetricFamily(
            "migrate_bot_slack_calls", "Slack Web API calls by method", labels=["method"]
        )
        for method, n in sorted(self.slack.calls.items()):
            calls.add_metric([method], n)
        yield calls
        errors = CounterMetricFamily(
            "migrate_bot_slack_errors", "Slack Web API errors by error", labels=["error"]
        )
        for error, n in sorted(self.slack.errors.items()):
            errors.add_metric([error], n)
        yield errors
        yield CounterMetricFamily(
            "migrate_bot_slack_rate_limited",
            "Slack answers 429 (waited out by Retry-After)",
            value=self.slack.rate_limited,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
