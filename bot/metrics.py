"""`GET /metrics` in Prometheus' text format: requests, migrations, XAPI and Slack calls.

One registry per running bot (nothing global, so tests can run several). Request counts
by state are read from the store at scrape time; migration outcomes and durations come
from the engine's events; XAPI and Slack call counts from the clients' own counters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
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


class CountingRateLimitHandler(RateLimitErrorRetryHandler):
    """Waits out 429s as slack_sdk's handler does, and counts them."""

    def __init__(self, stats: SlackStats, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stats = stats

    def prepare_for_next_attempt(self, *, state: RetryState, **kwargs: Any) -> None:
        self.stats.rate_limited += 1
        super().prepare_for_next_attempt(state=state, **kwargs)


class Metrics(Collector):
    def __init__(self, store: Store, xapi: XapiStats, slack: SlackStats) -> None:
        self.store, self.xapi, self.slack = store, xapi, slack
        self.registry = CollectorRegistry()
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
        yield CounterMetricFamily(
            "migrate_bot_xapi_calls", "XML-RPC requests sent to the pool", value=self.xapi.calls
        )
        failures = CounterMetricFamily(
            "migrate_bot_xapi_errors", "XAPI failures by error code", labels=["code"]
        )
        for code, n in sorted(self.xapi.failures.items()):
            failures.add_metric([code], n)
        failures.add_metric(["UNAVAILABLE"], self.xapi.unavailable)
        yield failures
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
