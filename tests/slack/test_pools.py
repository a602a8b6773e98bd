"""One bot, two pools (BOT_POOLS_FILE), through signed Slack requests: a name is looked up
in every pool, `vm@pool` / `pool=` pick one, hosts belong to the VM's pool, a pool's own
approvers replace the global ones, and a pool that is down holds only its own requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.settings import Settings
from bot.slackdouble import block_suggestion, payload_body, view_submission
from bot.states import State
from bot.store.store import Store
from bot.wiring import build_core
from tests.slack.test_modal import choose, open_modal
from tests.store.test_store import new
from tests.support.pool import Pool, scenario_pool
from tests.support.slack_rig import Bot, filed, serving

SITE_B = {
    "pool": "site-b",
    "hosts": [
        {"name": "b-host1", "memory_gib": 128, "master": True},
        {"name": "b-host2", "memory_gib": 128},
    ],
    "srs": [{"name": "b-nfs", "type": "nfs", "size_gib": 2000, "used_gib": 100}],
    "vms": [
        {
            "name": name,
            "host": "b-host1",
            "memory_gib": 4,
            "disks": [{"name": f"{name} root", "size_gib": 20, "used_gib": 5, "sr": "b-nfs"}],
        }
        for name in ("billing01", "vm02")  # vm02: a name pool site-a has too
    ],
}


@pytest.fixture
def site_b(pool: Pool) -> Iterator[Pool]:
    """The second pool, on the first one's clock (one bot ticks both)."""
    yield from scenario_pool(SITE_B, pool.clock)


@pytest.fixture
def bot(pool: Pool, site_b: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bot]:
    (tmp_path / "site-b.pw").write_text("secret\n")
    monkeypatch.setenv("SITE_A_PASSWORD", "secret")
    pools = {
        "pools": [
            {
                "name": "site-a",
                "url": pool.server.url,
                "username": "root",
                "password_env": "SITE_A_PASSWORD",
            },
            {
                "name": "site-b",
                "url": site_b.server.url,
                "username": "root",
                "password_file": str(tmp_path / "site-b.pw"),
                "approvers": ["ULEAD2"],
                "max_concurrent_migrations": 1,
            },
        ]
    }
    (tmp_path / "pools.yaml").write_text(yaml.safe_dump(pools))
    with serving(pool, tmp_path, bot_pools_file=str(tmp_path / "pools.yaml")) as running:
        yield running


def answer(bot: Bot, text: str, user: str = "U1") -> str:
    """Type `/migrate text`; the first answer the desk sends back."""
    typed = bot.driver.command(text, user)
    return bot.until(lambda: bot.answers(typed.key))[0]


def test_a_vm_found_in_one_pool_moves_there_and_its_messages_name_the_pool(
    bot: Bot, site_b: Pool
) -> None:
    rid = filed(bot, "billing01 to b-host2")
    assert bot.request(rid).pool == "site-b"
    assert "pool *site-b*" in bot.text_of(rid)
    bot.press("approve", rid, "ULEAD2")
    assert bot.state(rid, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED
    vm = site_b.ref("VM", "billing01")
    assert site_b.x.VM.get_resident_on(vm) == site_b.ref("host", "b-host2")
    assert site_b.sim.calls.counts["Async.VM.pool_migrate"] == 1
    assert bot.pool.sim.calls.counts["Async.VM.pool_migrate"] == 0


def test_a_name_in_both_pools_asks_which_and_the_pool_picks_one(bot: Bot) -> None:
    said = answer(bot, "vm02 to host3")
    assert "in more than one pool (site-a, site-b)" in said and "vm02@site-b" in said
    assert bot.core.store.open_requests() == []
    rid = filed(bot, "vm02@site-a to host3")
    assert bot.request(rid).pool == "site-a"
    other = filed(bot, "vm02 to b-host2 pool=site-b")
    assert bot.request(other).pool == "site-b"


def test_a_destination_in_the_other_pool_is_a_cross_pool_move_and_files_nothing(
    bot: Bot,
) -> None:
    said = answer(bot, "billing01 to host3")
    assert "Cross-pool migration is not supported (yet)" in said
    assert "host host3 in pool site-a" in said
    assert "no host" not in said
    assert bot.core.store.open_requests() == []


def test_a_name_in_no_pool_suggests_from_every_pool(bot: Bot) -> None:
    said = answer(bot, "biling01 to b-host2")
    assert "biling01" in said and "billing01" in said


def test_a_pools_own_approvers_replace_the_global_ones(bot: Bot) -> None:
    rid = filed(bot, "billing01 to b-host2")
    refused = bot.press("approve", rid, "ULEAD")  # a global approver, not site-b's
    assert "Only approvers" in bot.until(lambda: bot.answers(refused))[0]
    assert bot.request(rid).state == State.PENDING
    bot.press("approve", rid, "ULEAD2")
    assert bot.state(rid, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED


def test_a_pool_that_is_down_holds_only_its_own_requests(bot: Bot, site_b: Pool) -> None:
    site_b.sim.faults.set_host_down("127.0.0.1")  # site-b's master refuses connections
    rid = filed(bot, "dns01 to host1 sr=nfs2 mode=offline")  # dns01 is site-a's alone
    assert bot.request(rid).pool == "site-a"
    bot.press("approve", rid, "ULEAD")
    assert bot.state(rid, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED
    said = answer(bot, "billing01 to b-host2")
    assert "site-b did not answer" in said


def test_an_evacuation_is_planned_in_the_pool_of_its_host(bot: Bot) -> None:
    rid = filed(bot, "evacuate b-host1")
    req = bot.request(rid)
    assert req.pool == "site-b" and req.kind == "batch"
    assert "pool *site-b*" in bot.text_of(rid)


def test_one_request_moves_the_vms_of_one_pool(bot: Bot) -> None:
    said = answer(bot, "billing01,dns01 to host2")
    assert "different pools" in said and "site-a: dns01" in said and "site-b: billing01" in said
    said = answer(bot, "billing01@site-b,dns01@site-a to host2")
    assert "One request moves VMs of one pool" in said
    assert bot.core.store.open_requests() == []


def test_the_modal_finds_a_mistyped_name_by_the_name_not_its_pool(bot: Bot) -> None:
    """An option reads `name (where) · pool`; a near miss of the name, in any case, still
    finds it (the whole text is too long to be near), the nearest first, as "did you mean"
    ranks."""
    view = open_modal(bot)
    typed = block_suggestion(user_id="U1", action_id="vm", value="BILING01", view=view)
    texts = [o["text"]["text"] for o in json.loads(bot.send(payload_body(typed))[1])["options"]]
    assert texts == [
        "billing01 (running on b-host1) · site-b",
        "build01 (running on host2) · site-a",
    ]


def test_the_modal_lists_every_pool_and_files_in_the_chosen_vms_pool(
    bot: Bot, site_b: Pool
) -> None:
    view = open_modal(bot)
    body = payload_body(block_suggestion(user_id="U1", action_id="vm", value="bill", view=view))
    texts = [o["text"]["text"] for o in json.loads(bot.send(body)[1])["options"]]
    assert texts == ["billing01 (running on b-host1) · site-b"]
    billing = site_b.x.VM.get_uuid(site_b.ref("VM", "billing01"))
    choose(bot, view, "vm", billing, "billing01")
    updated = bot.until(
        lambda: [v for v in bot.slack.views.values() if "disk_0" in json.dumps(v["blocks"])]
    )[0]
    assert "b-nfs" in json.dumps(updated["blocks"]) and "nfs1" not in json.dumps(updated["blocks"])
    host = site_b.x.host.get_uuid(site_b.ref("host", "b-host2"))
    values = {
        "vm": {"vm": {"type": "external_select", "selected_option": {"value": billing}}},
        "host": {"host": {"type": "external_select", "selected_option": {"value": host}}},
        "sr": {"sr": {"type": "external_select", "selected_option": None}},
        "mode": {"mode": {"type": "radio_buttons", "selected_option": {"value": "live"}}},
        "shutdown": {"shutdown": {"type": "radio_buttons", "selected_option": {"value": "clean"}}},
        "at": {"at": {"type": "plain_text_input", "value": None}},
    }
    status, _ = bot.send(payload_body(view_submission(user_id="U1", view=updated, values=values)))
    assert status == 200
    req = bot.until(lambda: bot.core.store.get(1) and bot.request(1).message_ts and bot.request(1))
    assert req.pool == "site-b" and "b-host1 → b-host2" in bot.text_of(1)


def test_enable_finds_the_hosts_pool_and_asks_its_approvers(bot: Bot, site_b: Pool) -> None:
    host = site_b.ref("host", "b-host2")
    site_b.x.host.disable(host)
    assert "Only approvers" in answer(bot, "enable b-host2", user="ULEAD")  # site-a's only
    assert site_b.x.host.get_enabled(host) is False
    answer(bot, "enable b-host2", user="ULEAD2")
    assert bot.until(lambda: site_b.x.host.get_enabled(host))


def test_enable_of_a_host_named_alike_in_both_pools_asks_for_host_at_pool(
    bot: Bot, site_b: Pool
) -> None:
    site_b.x.host.set_name_label(site_b.ref("host", "b-host2"), "host2")
    said = answer(bot, "enable host2", user="ULEAD")
    assert "host host2 is in more than one pool" in said and "like host2@site-b." in said
    assert "pool=" not in said


def test_an_open_request_of_a_pool_no_longer_listed_is_named_at_start(
    pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = f"sqlite:///{tmp_path / 'bot.db'}"
    gone = Store(db, pool.clock).for_pool("site-gone")
    filed_there = new(gone, vm_name="legacy09")
    gone.close()
    (tmp_path / "pools.yaml").write_text(
        yaml.safe_dump(
            {
                "pools": [
                    {
                        "name": "site-a",
                        "url": pool.server.url,
                        "username": "root",
                        "password": "secret",
                    }
                ]
            }
        )
    )
    settings = Settings(
        _env_file=None, bot_pools_file=str(tmp_path / "pools.yaml"), bot_database_url=db
    )
    build_core(settings, pool.clock).stop()  # never started: stops all the same
    assert f"request #{filed_there.id} (legacy09) is pending in pool site-gone" in caplog.text
