"""Every knob of the bot, read once from the environment, `.env` or secret files (names users type).

`Settings()` never connects anywhere; commands call `require()` for the settings
they need, so `migrate-bot check` works with only the `XEN_*` settings and a missing
or malformed value stops the command with one line naming the variable.

The pools one bot serves (`pool_configs`): the `XEN_*` settings as one pool named
`default`, or `BOT_POOLS_FILE`, YAML read through pydantic-settings' YAML source, one
entry per pool:

    pools:
      - name: site-a
        url: https://xen-a.example.com
        username: root
        password_file: /run/secrets/xen-a      # or password_env: XEN_A_PASSWORD
        max_concurrent_migrations: 2
        approvers: [S0LEADS]                    # who may act there (else BOT_APPROVERS…)

An entry's `approvers`, `requesters` and `channels` replace the global settings for that
pool; what an entry leaves out comes from the global settings (TLS, timeout, concurrency).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

from bot.errors import BotError

IdList = Annotated[list[str], NoDecode]


def split_ids(value: object) -> object:
    """`U1, S2` as typed in an environment variable -> ["U1", "S2"]; lists pass."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class SettingsError(BotError):
    """A setting is missing or malformed; the message is one line naming the variable."""


class _SecretFiles(SecretsSettingsSource):
    """pydantic-settings' secrets source, whose faults are one line naming the variable: an
    unreadable file would otherwise be a traceback wrapped in pydantic's own error."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        try:
            return super().get_field_value(field, field_name)
        except OSError as error:
            raise SettingsError(
                f"{field_name.upper()}: cannot read {error.filename} ({error.strerror})"
            ) from None
        except UnicodeDecodeError:
            raise SettingsError(f"{field_name.upper()}: its file is not UTF-8 text") from None

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except SourceError as error:  # wraps what get_field_value raised
            if isinstance(error.__cause__, SettingsError):
                raise error.__cause__ from None
            raise


def _secrets_dirs(*sources: PydanticBaseSettingsSource) -> list[Path]:
    """The directories whose files are settings, the one that wins last: BOT_SECRETS_DIR (as
    the sources in front of the files give it, else /run/secrets), then systemd's
    $CREDENTIALS_DIRECTORY. One that does not exist is skipped: the same image runs with
    and without secrets mounted."""
    chosen: object = Settings.model_fields["bot_secrets_dir"].default
    for source in sources:  # highest priority first: init keywords, environment, .env
        given = getattr(source, "init_kwargs", {}) | dict(getattr(source, "env_vars", {}))
        if given.get("bot_secrets_dir") is not None:
            chosen = given["bot_secrets_dir"]
            break
    dirs = []
    for name, value in (
        ("BOT_SECRETS_DIR", str(chosen)),
        ("CREDENTIALS_DIRECTORY", os.environ.get("CREDENTIALS_DIRECTORY", "")),
    ):
        path = Path(value)
        if not value or not path.exists():
            continue
        if not path.is_dir():
            raise SettingsError(f"{name}: {value} is not a directory")
        dirs.append(path)
    return dirs


class Settings(BaseSettings):
    """Each setting comes from the first of: the environment, `.env`, a file named after it
    (any case, trailing newline stripped) in $CREDENTIALS_DIRECTORY (systemd's
    `LoadCredential=`) or BOT_SECRETS_DIR (Docker and Kubernetes secrets), its default. So
    an orchestrator's secret files need no shell glue, and a variable still overrides."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    xen_url: str | None = None
    xen_username: str | None = None
    xen_password: SecretStr | None = None
    xen_verify_tls: bool = True
    xen_ca_bundle: str | None = None
    xen_timeout_seconds: float = Field(30.0, gt=0)

    bot_mode: Literal["socket", "http"] = "socket"
    bot_http_port: int = Field(3000, ge=0, le=65535)
    bot_metrics_port: int | None = Field(None, ge=0, le=65535)
    bot_database_url: str = "sqlite:///migrate-bot.db"
    bot_database_password: SecretStr | None = None  # put into the URL: a file of its own
    bot_secrets_dir: str = "/run/secrets"
    bot_pools_file: str | None = None
    bot_approvers: IdList = []
    bot_requesters: IdList = []
    bot_allowed_channels: IdList = []
    bot_require_approval: bool = True
    bot_allow_self_approval: bool = False
    bot_stuck_grace_seconds: float = Field(120.0, ge=0)
    bot_approval_ttl_seconds: float = Field(1800.0, gt=0)
    bot_backup_exclude_tag: str = Field("xo:no-bak", min_length=1)
    bot_timezone: str = "UTC"
    bot_max_concurrent_migrations: int = Field(3, ge=1)
    bot_live_cpu_threshold: float = Field(0.8, ge=0, le=1)
    bot_default_throughput_mbps: float = Field(100.0, gt=0)
    bot_stall_seconds: float = Field(600.0, gt=0)
    bot_missed_window_grace_seconds: float = Field(900.0, ge=0)
    bot_log_format: Literal["text", "json"] = "text"
    bot_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("bot_approvers", "bot_requesters", "bot_allowed_channels", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        return split_ids(value)

    @field_validator("bot_log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("bot_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        dirs = _secrets_dirs(init_settings, env_settings, dotenv_settings)
        files = _SecretFiles(settings_cls, secrets_dir=dirs or None)
        return init_settings, env_settings, dotenv_settings, files

    @model_validator(mode="after")
    def _password_into_url(self) -> Settings:
        """BOT_DATABASE_PASSWORD goes into BOT_DATABASE_URL, so the URL can sit in plain
        configuration while the password comes from a secret file."""
        if self.bot_database_password is None:
            return self
        try:
            url = sa.make_url(self.bot_database_url)
        except sa.exc.ArgumentError:
            raise SettingsError("BOT_DATABASE_URL: not a database URL") from None
        if url.get_backend_name() == "sqlite":
            raise SettingsError("BOT_DATABASE_PASSWORD: a sqlite database takes no password")
        if url.password is not None:
            raise SettingsError(
                "BOT_DATABASE_PASSWORD: BOT_DATABASE_URL holds a password already; "
                "give it in one place"
            )
        password = self.bot_database_password.get_secret_value()
        self.bot_database_url = url.set(password=password).render_as_string(hide_password=False)
        return self

    def require(self, *names: str) -> None:
        """Stop with one line naming the first of `names` (env spelling) that is unset."""
        for name in names:
            value = getattr(self, name.lower())
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                raise SettingsError(f"{name.upper()} is not set")
            if isinstance(value, str | list) and not value:
                raise SettingsError(f"{name.upper()} is not set")

    def secret_values(self) -> list[str]:
        """Every secret's value, so logging can redact them wherever they turn up."""
        fields = (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token)
        more = (self.xen_password, self.bot_database_password)
        return [f.get_secret_value() for f in (*fields, *more) if f]

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.bot_timezone)


def load_settings() -> Settings:
    """Read the settings, turning pydantic's report into one line per the first bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise SettingsError(f"{name}: {first['msg']}") from None


SINGLE = "default"  # the name of the one pool the XEN_* settings describe
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


@dataclass(frozen=True)
class PoolConfig:
    """One pool: where its master answers, how many moves at once, and who may act there
    (None: the global setting)."""

    name: str
    url: str
    username: str
    password: str
    verify_tls: bool
    ca_bundle: str | None
    timeout: float
    max_concurrent: int
    approvers: tuple[str, ...] | None = None
    requesters: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    url: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None
    password_env: str | None = None
    verify_tls: bool | None = None
    ca_bundle: str | None = None
    timeout_seconds: float | None = Field(None, gt=0)
    max_concurrent_migrations: int | None = Field(None, ge=1)
    approvers: list[str] | None = None
    requesters: list[str] | None = None
    channels: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(
                f"pool name {value!r}: lower-case letters, digits, '-', '_' or '.', "
                "at most 40, as people type it after '@'"
            )
        return value

    @field_validator("approvers", "requesters", "channels", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_ids(value)

    def secret(self) -> str:
        """The password from the one place the entry names."""
        given = [s for s in (self.password, self.password_file, self.password_env) if s]
        if len(given) != 1:
            raise SettingsError(
                f"pool {self.name}: give exactly one of password_file, password_env, password"
            )
        if self.password_file is not None:
            try:
                return self.password_file.read_text().strip()
            except OSError as error:
                raise SettingsError(
                    f"pool {self.name}: cannot read password_file {self.password_file} "
                    f"({error.strerror})"
                ) from None
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise SettingsError(f"pool {self.name}: {self.password_env} is not set")
            return value
        assert self.password is not None
        return self.password.get_secret_value()


class _PoolsFile(BaseSettings):
    pools: Annotated[list[_Entry], Field(min_length=1)]


def pool_configs(settings: Settings) -> list[PoolConfig]:
    """Every pool this bot serves, in the order given; stops with one line on a mistake."""
    if settings.bot_pools_file is None:
        settings.require("XEN_URL", "XEN_USERNAME", "XEN_PASSWORD")
        assert settings.xen_password is not None
        single = PoolConfig(
            SINGLE,
            url=settings.xen_url or "",
            username=settings.xen_username or "",
            password=settings.xen_password.get_secret_value(),
            verify_tls=settings.xen_verify_tls,
            ca_bundle=settings.xen_ca_bundle,
            timeout=settings.xen_timeout_seconds,
            max_concurrent=settings.bot_max_concurrent_migrations,
        )
        return [single]
    entries = _read(settings.bot_pools_file)
    configs = [_config(entry, settings) for entry in entries]
    for what, values in (
        ("name", [c.name for c in configs]),
        ("url", [c.url for c in configs]),
    ):
        twice = sorted({value for value in values if values.count(value) > 1})
        if twice:
            raise SettingsError(f"BOT_POOLS_FILE: two pools have the {what} {twice[0]}")
    return configs


def _read(path: str) -> list[_Entry]:
    if not Path(path).is_file():
        raise SettingsError(f"BOT_POOLS_FILE: no file at {path}")
    try:
        raw: dict[str, Any] = YamlConfigSettingsSource(_PoolsFile, yaml_file=path)()
        return _PoolsFile.model_validate(raw).pools
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SettingsError(f"BOT_POOLS_FILE: {where}: {first['msg']}") from None
    except Exception as error:  # YAML that does not parse
        line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SettingsError(f"BOT_POOLS_FILE: not valid YAML ({line})") from None


def _config(entry: _Entry, settings: Settings) -> PoolConfig:
    def ids(value: list[str] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(value)

    return PoolConfig(
        entry.name,
        url=entry.url,
        username=entry.username,
        password=entry.secret(),
        verify_tls=settings.xen_verify_tls if entry.verify_tls is None else entry.verify_tls,
        ca_bundle=entry.ca_bundle or settings.xen_ca_bundle,
        timeout=entry.timeout_seconds or settings.xen_timeout_seconds,
        max_concurrent=entry.max_concurrent_migrations or settings.bot_max_concurrent_migrations,
        approvers=ids(entry.approvers),
        requesters=ids(entry.requesters),
        channels=ids(entry.channels),
    )


def require_approvers(settings: Settings, pools: list[PoolConfig]) -> None:
    """With approval on, every pool needs someone who may approve (its own list, or the
    global one)."""
    if not settings.bot_require_approval:
        return
    for pool in pools:
        if not (settings.bot_approvers if pool.approvers is None else pool.approvers):
            where = "" if len(pools) == 1 else f" (and pool {pool.name} names none)"
            raise SettingsError(f"BOT_APPROVERS is empty while BOT_REQUIRE_APPROVAL is on{where}")
