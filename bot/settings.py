"""Every knob of the bot, read once from the environment or `.env` (names users type).

`Settings()` never connects anywhere; commands call `require()` for the settings
they need, so `migrate-bot check` works with only the `XEN_*` settings and a missing
or malformed value stops the command with one line naming the variable.
"""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import BotError

IdList = Annotated[list[str], NoDecode]


class SettingsError(BotError):
    """A setting is missing or malformed; the message is one line naming the variable."""


class Settings(BaseSettings):
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
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

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
        return [f.get_secret_value() for f in (*fields, self.xen_password) if f]

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
