"""/metrics for the alert rules: the process collectors, the connections, the oldest request
waiting for approval; read from a Metrics render and scraped from a running bot."""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import ManualClock
from bot.metrics import Metrics, SlackStats
from bot.slack.outbox import Outbox
from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import until
from bot.states import State
from bot.store.store import Store
from bot.wiring import Service, start
from bot.xen.connection import XapiStats
from tests.support.pool import Pool, Ticker
from tests.support.slack_rig import serving, settings_for, slack_double


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'bot.db'}", clock)
    yield store
    store.close()


def samples(text: str) -> dict[str, float]:
    """Each sample of an exposition as `name{label="value",…}` -> value."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
        return samples(answer.read().decode())


def file_request(store: Store, vm: str, **fields: object) -> int:
    return store.create_request(
        requester="U1",
        command_text=f"{vm} to host3",
        vm_uuid=f"uuid-{vm}",
        vm_name=vm,
        dest_host_uuid="uuid-host3",
        dest_host_name="host3",
        mode="live",
        plan={"call": "pool_migrate", "disks": []},
        **fields,
    ).id


def test_process_platform_and_gc_collectors_are_on_the_private_registry(store: Store) -> None:
    """Memory, CPU, start time (restarts), the Python version and GC runs are exposed, and
    two bots in one process each have their own (no clash on a global registry)."""
    first = Metrics(store, {"default": XapiStats()}, SlackStats(), {})
    second = samples(Metrics(store, {"default": XapiStats()}, SlackStats(), {}).render().decode())
    shown = samples(first.render().decode())
    assert shown["process_resident_memory_bytes"] > 0
    assert shown["process_start_time_seconds"] > 0
    assert "process_cpu_seconds_total" in shown
    assert any(name.startswith("python_info{") for name in shown)
    assert any(name.startswith("python_gc_collections_total{") for name in shown)
    assert second.keys() == shown.keys()


def test_watcher_gauge_has_a_series_per_pool_asked_at_scrape_time(store: Store) -> None:
    """Each pool's callable is asked at every scrape: a watcher that drops shows 0 next time."""
    up = {"pool-a": True, "pool-b": False}
    metrics = Metrics(
        store, {"default": XapiStats()}, SlackStats(), {name: lambda n=name: up[n] for name in up}
    )
    shown = samples(metrics.render().decode())
    assert shown['migrate_bot_xapi_events_connected{pool="pool-a"}'] == 1
    assert shown['migrate_bot_xapi_events_connected{pool="pool-b"}'] == 0
    up["pool-a"] = False
    shown = samples(metrics.render().decode())
    assert shown['migrate_bot_xapi_events_connected{pool="pool-a"}'] == 0


def test_socket_gauge_follows_the_connection_and_is_absent_in_http_mode(store: Store) -> None:
    """Socket Mode: 1 or 0 as the connection stands; HTTP mode: no series at all."""
    connected = [True]
    metrics = Metrics(store, {"default": XapiStats()}, SlackStats(), {}, lambda: connected[0])
    assert samples(metrics.render().decode())["migrate_bot_slack_socket_connected"] == 1
    connected[0] = False
    assert samples(metrics.render().decode())["migrate_bot_slack_socket_connected"] == 0
    http = samples(Metrics(store, {"default": XapiStats()}, SlackStats(), {}).render().decode())
    assert not any(name.startswith("migrate_bot_slack_socket") for name in http)


def test_oldest_pending_age_counts_from_filing_and_leaves_out_windows_ahead(
    store: Store, clock: ManualClock
) -> None:
    """The age of the oldest PENDING request; 0 once none waits; a request whose at= window
    is still ahead may wait past the TTL, so it counts only once its window has come."""
    metrics = Metrics(store, {"default": XapiStats()}, SlackStats(), {})

    def oldest() -> float:
        return samples(metrics.render().decode())["migrate_bot_oldest_pending_seconds"]

    assert oldest() == 0
    first = file_request(store, "vm01")
    windowed = file_request(store, "vm03", run_at=clock.now() + 7200)
    clock.advance(100)
    second = file_request(store, "vm02")
    clock.advance(50)
    assert oldest() == 150
    store.transition(first, State.APPROVED, actor="ULEAD", action="approved")
    assert oldest() == 50  # vm02's: vm03, as old as vm01, waits for its window
    clock.advance(7200)
    assert oldest() == 7350  # vm03's window has come: it counts from its filing
    for rid in (second, windowed):
        store.transition(rid, State.EXPIRED, actor="bot", action="expired")
    assert oldest() == 0


@contextlib.contextmanager
def socket_bot(pool: Pool, tmp_path: Path) -> Iterator[tuple[Service, SlackDouble]]:
    """The whole bot in Socket Mode, connected to the Slack double (every gauge exposed)."""
    with slack_double() as slack, Ticker(pool.clock, step=0.5):
        settings = settings_for(
            pool.server.url,
            slack,
            tmp_path / "bot.db",
            bot_mode="socket",
            slack_app_token=slack.app_token,
        )
        service = start(settings, "127.0.0.1", pool.clock, Outbox(0.2, retry_seconds=0.1))
        try:
            yield service, slack
        finally:
            service.stop()


def test_a_running_bot_in_socket_mode_reports_both_connections(pool: Pool, tmp_path: Path) -> None:
    """The wiring passes the real watcher and Socket Mode client: both read 1 while
    connected, and the Socket Mode gauge drops to 0 when Slack's end goes away."""
    with socket_bot(pool, tmp_path) as (service, slack):
        url = service.web.url
        watcher = 'migrate_bot_xapi_events_connected{pool="default"}'
        until(lambda: scrape(url).get(watcher) == 1, "the watcher's gauge", 10)
        until(lambda: scrape(url)["migrate_bot_slack_socket_connected"] == 1, "", 10)
        slack.socket.stop()
        until(lambda: scrape(url)["migrate_bot_slack_socket_connected"] == 0, "", 10)


def test_a_running_bot_in_http_mode_has_no_socket_gauge(pool: Pool, tmp_path: Path) -> None:
    """HTTP mode never opens a Socket Mode connection: the gauge is left out, not 0."""
    with serving(pool, tmp_path) as bot:
        url = bot.service.web.url
        watcher = 'migrate_bot_xapi_events_connected{pool="default"}'
        shown = until(lambda: (s := scrape(url)).get(watcher) == 1 and s, "the watcher", 10)
        assert not any(name.startswith("migrate_bot_slack_socket") for name in shown)
        assert shown["migrate_bot_oldest_pending_seconds"] == 0
