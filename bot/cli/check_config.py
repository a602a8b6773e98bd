"""`migrate-bot check-config`: is this bot ready to serve? Settings, database, XAPI, Slack,
in words.

Each check prints one line, ✓ or ✗ with what is wrong and what to change (⚠: it passes, but
asks for attention); the exit status is 0 only when every check passed. Nothing is changed
anywhere (reads and auth only): the database is opened read-only, its password never shown.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TextIO

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import XapiFailure, XapiUnavailable
from bot.logs import shown_url
from bot.settings import PoolConfig, Settings, SettingsError, pool_configs, require_approvers
from bot.store.schema_status import DatabaseProblem, schema_status, sqlite_file
from bot.wiring import xen_config
from bot.xen.connection import Xapi

SLACK_HINTS = {
    "invalid_auth": "the token is not valid: copy it again from the app's settings",
    "not_authed": "no token was sent",
    "account_inactive": "the app was uninstalled or the token revoked",
    "missing_scope": "the app lacks a scope: reinstall it from deploy/slack-app-manifest.yml",
    "not_allowed_token_type": "wrong kind of token (xoxb- for the bot, xapp- for the app)",
    "no_such_subteam": "no such user group: check the S… ids in BOT_APPROVERS",
}


def check_config(settings: Settings, out: TextIO) -> int:
    checks: list[Callable[[Settings], str]] = [
        _settings,
        _database,
        *_pools(settings),
        _slack,
        _socket,
        _groups,
    ]
    failed = 0
    for check in checks:
        try:
            line = check(settings)
            if line:
                print(f"{'⚠' if isinstance(line, Note) else '✓'} {line}", file=out)
        except (SettingsError, Problem, DatabaseProblem) as problem:
            failed += 1
            print(f"✗ {problem}", file=out)
    print("ready" if not failed else f"{failed} problem(s): the bot would not work", file=out)
    return 1 if failed else 0


class Problem(Exception):
    """A check that failed; the message says what is wrong and what to do."""


class Note(str):
    """A check's line that passes but asks for attention."""


def _settings(settings: Settings) -> str:
    pools = pool_configs(settings)
    settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    if settings.bot_mode == "socket":
        settings.require("SLACK_APP_TOKEN")
    require_approvers(settings, pools)
    unchecked = [p.name for p in pools if not p.verify_tls]
    tls = f" (TLS certificates unchecked: {', '.join(unchecked)})" if unchecked else ""
    served = f", pools {', '.join(p.name for p in pools)}" if settings.bot_pools_file else ""
    return f"settings: {settings.bot_mode} mode{served}{tls}"


def _pools(settings: Settings) -> list[Callable[[Settings], str]]:
    """One XAPI check per pool (none when the pools cannot be read: settings says why)."""
    try:
        pools = pool_configs(settings)
    except SettingsError:
        return []
    return [functools.partial(_xapi, pool, len(pools) > 1) for pool in pools]


def _database(settings: Settings) -> str:
    """Connect read-only and say where the schema stands against this version's."""
    url = settings.bot_database_url
    schema = schema_status(url)
    where = f"database {shown_url(url)}"
    path = sqlite_file(url)
    if schema.current is None and path is not None and not path.parent.is_dir():
        raise Problem(f"{where}: no folder {path.parent} to create it in")
    if schema.current is None:
        return f"{where}: empty; `migrate-bot run` creates the schema as it starts"
    if schema.ahead:
        raise Problem(f"{where}: {schema.compared}: run the version that wrote it")
    if schema.behind:
        return Note(
            f"{where}: {schema.compared}; `migrate-bot run` upgrades it as it starts: "
            "stop the bots of the older version first"
        )
    return f"{where}: schema up to date (revision {schema.head})"


def _xapi(pool: PoolConfig, several: bool, _: Settings) -> str:
    xapi = Xapi(xen_config(pool), max_sessions=1)
    which = f"XAPI ({pool.name})" if several else "XAPI"
    credentials = "its username / password" if several else "XEN_USERNAME / XEN_PASSWORD"
    ca = "ca_bundle" if several else "XEN_CA_BUNDLE"
    try:
        return f"{which}: {xapi.call(_pool_line)}"
    except XapiFailure as failure:
        if failure.code == "SESSION_AUTHENTICATION_FAILED":
            raise Problem(f"{which}: the pool refused {credentials}") from None
        raise Problem(f"{which}: {failure.code} {' '.join(failure.params)}") from None
    except XapiUnavailable as error:
        hint = ""
        if "CERTIFICATE" in str(error).upper() or "SSL" in str(error).upper():
            hint = f"; set {ca} to the pool's CA file"
        raise Problem(f"{which}: cannot reach {pool.url} ({error}){hint}") from None
    finally:
        xapi.close()


def _pool_line(x: Any) -> str:
    pool = x.pool.get_record(x.pool.get_all()[0])
    master = x.host.get_record(pool["master"])
    version = f"{master['API_version_major']}.{master['API_version_minor']}"
    product = master["software_version"].get("product_brand", "")
    return f"pool {pool['name_label']!r}, master {master['name_label']} ({product} API {version})"


def _slack_client(settings: Settings, token: str) -> WebClient:
    return WebClient(token=token, base_url=settings.slack_api_url)


def _slack(settings: Settings) -> str:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    answer = _ask("SLACK_BOT_TOKEN", lambda: _slack_client(settings, token).auth_test())
    return f"Slack: bot @{answer.get('user', '?')} in workspace {answer.get('team', '?')!r}"


def _socket(settings: Settings) -> str:
    if settings.bot_mode != "socket" or not settings.slack_app_token:
        return ""
    token = settings.slack_app_token.get_secret_value()
    client = _slack_client(settings, "")
    _ask("SLACK_APP_TOKEN", lambda: client.apps_connections_open(app_token=token))
    return "Slack: the app token opens Socket Mode connections"


def _groups(settings: Settings) -> str:
    groups = [g for g in settings.bot_approvers + settings.bot_requesters if g.startswith("S")]
    if not groups:
        return ""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    client = _slack_client(settings, token)
    sizes = [
        len(_ask(group, lambda g=group: client.usergroups_users_list(usergroup=g))["users"])
        for group in groups
    ]
    return f"Slack: user groups {', '.join(groups)} have {sum(sizes)} member(s)"


def _ask(what: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except SlackApiError as error:
        code = str(error.response.get("error", "unknown"))
        raise Problem(
            f"Slack ({what}): {code}: {SLACK_HINTS.get(code, 'see Slack API docs')}"
        ) from None
    except OSError as error:
        raise Problem(f"Slack: cannot reach the Web API (SLACK_API_URL): {error}") from None
