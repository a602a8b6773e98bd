"""deploy/slack-app-manifest.yml, and every YAML file of the kit, checked statically."""

from __future__ import annotations

import re

import yaml

from bot.slack.blocks import SHORTCUT_ID
from tests.deploy.kit import DEPLOY, load


def test_every_yaml_file_under_deploy_parses() -> None:
    """Every .yml/.yaml file in deploy/ is valid YAML whose documents are mappings."""
    files = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
    assert len(files) >= 9
    for path in files:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        assert documents, path
        assert all(isinstance(doc, dict) for doc in documents), path


def test_slack_manifest_asks_for_exactly_the_least_scopes() -> None:
    """The app asks for commands, chat:write and usergroups:read only (no chat:write.public)."""
    scopes = load(DEPLOY / "slack-app-manifest.yml")["oauth_config"]["scopes"]
    assert sorted(scopes["bot"]) == sorted(["commands", "chat:write", "usergroups:read"])
    assert len(scopes["bot"]) == len(set(scopes["bot"]))
    assert "user" not in scopes


def test_slack_manifest_declares_the_migrate_command() -> None:
    """/migrate is the one slash command, with a description, usage hint and no escaping."""
    manifest = load(DEPLOY / "slack-app-manifest.yml")
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/migrate"
    assert command["description"]
    assert command["usage_hint"] == "vm01 to host3 sr=nfs1 mode=offline | help"
    assert command["should_escape"] is False
    assert "url" not in command  # Socket Mode: Slack needs no request URL


def test_slack_manifest_turns_on_interactivity_and_socket_mode() -> None:
    """Buttons, the shortcut and the modal work over Socket Mode; no org deploy, no token
    rotation."""
    manifest = load(DEPLOY / "slack-app-manifest.yml")
    settings = manifest["settings"]
    assert settings["interactivity"] == {"is_enabled": True}
    assert settings["socket_mode_enabled"] is True
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert manifest["display_information"]["name"] == "migrate-bot"
    assert manifest["features"]["bot_user"] == {
        "display_name": "migrate-bot",
        "always_online": True,
    }


def test_slack_manifest_has_the_home_tab_its_event_and_the_shortcut_only() -> None:
    """The Home tab (no Messages tab), the one event that publishes it, and the global
    "Migrate a VM" shortcut whose callback_id the bot listens to; nothing else."""
    manifest = load(DEPLOY / "slack-app-manifest.yml")
    features = manifest["features"]
    assert features["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": False,
        "messages_tab_read_only_enabled": False,
    }
    (shortcut,) = features["shortcuts"]
    assert shortcut["type"] == "global" and shortcut["name"] == "Migrate a VM"
    assert shortcut["callback_id"] == SHORTCUT_ID
    assert manifest["settings"]["event_subscriptions"] == {"bot_events": ["app_home_opened"]}


def test_slack_manifest_keeps_to_the_manifest_schema() -> None:
    """Only keys Slack's manifest schema knows, within its length limits."""
    manifest = load(DEPLOY / "slack-app-manifest.yml")
    assert set(manifest) <= {
        "_metadata",
        "display_information",
        "features",
        "oauth_config",
        "settings",
    }
    display = manifest["display_information"]
    assert set(display) <= {"name", "description", "long_description", "background_color"}
    assert len(display["name"]) <= 35
    assert len(display["description"]) < 140  # Slack's API refuses 140 itself
    assert 175 <= len(display["long_description"]) <= 4000
    assert re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", display["background_color"])
    features = manifest["features"]
    assert set(features) <= {
        "app_home",
        "bot_user",
        "shortcuts",
        "slash_commands",
        "unfurl_domains",
    }
    assert re.fullmatch(r"[\w\-.]{1,80}", features["bot_user"]["display_name"])
    for shortcut in features["shortcuts"]:
        assert set(shortcut) == {"name", "type", "callback_id", "description"}
        assert shortcut["name"] and shortcut["description"]
        assert re.fullmatch(r"[\w-]{1,255}", shortcut["callback_id"])
    assert set(features["app_home"]) <= {
        "home_tab_enabled",
        "messages_tab_enabled",
        "messages_tab_read_only_enabled",
    }
    for command in features["slash_commands"]:
        assert set(command) <= {"command", "description", "should_escape", "url", "usage_hint"}
        assert command["command"].startswith("/") and len(command["command"]) <= 32
        assert len(command["description"]) <= 2000 and len(command["usage_hint"]) <= 1000
    assert set(manifest["oauth_config"]) <= {"redirect_urls", "scopes"}
    settings = manifest["settings"]
    assert set(settings) <= {
        "allowed_ip_address_ranges",
        "event_subscriptions",
        "interactivity",
        "org_deploy_enabled",
        "socket_mode_enabled",
        "token_rotation_enabled",
    }
    assert set(settings["event_subscriptions"]) <= {"request_url", "bot_events", "user_events"}
    assert set(settings["interactivity"]) <= {
        "is_enabled",
        "request_url",
        "message_menu_options_url",
    }
