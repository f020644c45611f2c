"""The emulator's settings: ``emulator_*`` on the command line, ``TARGET_PROXY_EMULATOR_*`` in the
environment, ``[emulator]`` (or ``emulator_*``) in the TOML file the gateway reads too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from proxy import config

PREFIX = "emulator_"
SHAPES = {"emulator_clusters": "a JSON list of cluster numbers, e.g. [28, 31]"}
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class EmulatorSettings(config.Sourced):
    model_config = SettingsConfigDict(
        env_prefix=f"{config.ENV_PREFIX}{PREFIX.upper()}", extra="forbid", validate_default=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8081, ge=0, le=65535)
    catalog: Path | None = None  # unset: the demo catalog
    replication_delay_ms: int = Field(2000, ge=0)  # before a profile write reaches the other edge clusters
    clusters: list[int] = Field(default_factory=lambda: [28, 31, 34, 35, 38])
    token_secret: str = "emulator-event-token-secret"
    # Credentials the emulator's IMS accepts, and its tokens' lifetime
    ims_client_id: str = "emulator-client-id"
    ims_client_secret: str = "emulator-client-secret"
    ims_org_id: str = "EMULATOR@AdobeOrg"
    token_ttl_seconds: int = Field(86399, ge=1)
    # Target Admin and bulk profile APIs: calls a minute per client before 503
    admin_rate_per_minute: int = Field(50, ge=1)
    log_level: str = "info"

    @field_validator("clusters")
    @classmethod
    def _clusters(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 <= n <= 99 for n in value):
            raise ValueError("must be a non-empty list of cluster numbers 0-99")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.lower()


def load_settings(cli: Mapping[str, Any] | None = None, options: Mapping[str, str] | None = None) -> EmulatorSettings:
    """The emulator's settings; ``cli`` and ``options`` name them with their ``emulator_`` prefix."""
    return config.load(EmulatorSettings, cli, options, prefix=PREFIX, shapes=SHAPES)


def to_environ(settings: EmulatorSettings) -> dict[str, str]:
    return config.to_environ(settings, PREFIX)


def names() -> list[str]:
    return config.names_of(EmulatorSettings, PREFIX)
