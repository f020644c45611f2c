"""The gateway's settings, read as ``proxy.config`` says (command line, ``TARGET_PROXY_*`` variables, TOML
files); the emulator's (``emulator_*``) are its own (``proxy.emulator.settings``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import limits
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from proxy import config
from proxy.config import SettingsError, to_environ

__all__ = ["Settings", "SettingsError", "load_settings", "to_environ"]

# Names of the emulator's settings, in the files and on the command line the two share.
EMULATOR_PREFIX = "emulator_"
ARTIFACT_HOST = "assets.adobetarget.com"  # where Adobe publishes rules artifacts
SCOPES = frozenset({"delivery", "profile", "admin", "activation", "operator"})
# What a table or list setting looks like in the environment, for the message when it is not JSON
JSON_SHAPES = {
    "client_keys": 'a JSON object of key -> scopes, e.g. {"<random key>": ["delivery"]}',
    "prefetch_groups": 'a JSON object of client -> mboxes, e.g. {"demo": ["home-hero", "footer"]}',
    "default_content": 'a JSON object of mbox -> content, e.g. {"home-hero": "<p>Welcome</p>"}',
}
# Keys shaped like the examples' placeholders ("replace-with-a-long-random-operator-key"): a copied example
# must not open the gateway.
PLACEHOLDER = re.compile(r"replace|placeholder|change-?me|example|your-|<|\.\.\.", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class UpstreamClientSettings:
    """The upstream client's group: where connections go, how long a call may take, how many connections
    are kept, when a host's circuit opens; and the management hosts its metrics tell apart."""

    url: str | None
    timeout_ms: int
    connect_timeout_ms: int
    pool_size: int
    retries: int
    idle_seconds: float
    circuit_failures: int
    circuit_reset_seconds: float
    admin_host: str
    platform_host: str
    ims_url: str


@dataclass(frozen=True, slots=True)
class ImsSettings:
    """The gateway's own credentials for the management APIs, and where they are exchanged for tokens."""

    url: str
    client_id: str | None
    client_secret: SecretStr | None
    scopes: str
    org_id: str | None
    sandbox_name: str | None


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """The notification pipeline's group: the log, its batches, retries and refusal budgets."""

    store: Path
    dead_letters: Path | None
    fsync: bool
    batch_size: int
    max_delay_s: float
    max_backlog: int
    max_attempts: int
    retry_base_s: float
    retry_cap_s: float
    refusal_calls_per_visitor: int
    refusal_calls_per_minute: int


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """The Redis that gateways share: where, under which key prefix, how long a command may take and how
    often a lost connection is tried again; how often a visitor's record is read again, when notifications
    another gateway holds are claimed, how many one gateway's flusher holds."""

    url: str
    prefix: str
    timeout_s: float
    retry_s: float
    session_sync_seconds: float
    claim_idle_s: float
    stream_max_read: int


@dataclass(frozen=True, slots=True)
class DecisioningSettings:
    """Deciding on device: how (``server-side``, ``on-device``, ``hybrid``), from which artifact (a file or
    an address; Adobe's location of the client's by default), read again how often."""

    method: str
    artifact: str
    polling_s: float


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The management APIs' budgets: calls a minute, how long a call over them waits; how long an ad-hoc
    activation job holds its audiences."""

    calls_per_minute: int
    queue_seconds: float
    activation_job_timeout_seconds: float


class Settings(config.Sourced):
    model_config = SettingsConfigDict(env_prefix=config.ENV_PREFIX, extra="forbid", validate_default=True)

    # Listening
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    config: Path | None = None
    defaults: Path | None = None
    # HTTPS on the gateway's own port (both or neither): a certificate chain and its private key, PEM
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    log_level: str = "info"
    # One JSON line per request on stdout (written by a background thread)
    access_log: bool = True
    # Key of the visitor hash in the request log; unset, a random one kept beside the notification store
    log_visitor_salt: SecretStr | None = None

    # Upstream: where connections go. Empty means the embedded emulator for `serve`, and the edge
    # host itself over HTTPS when `upstream_direct` is set.
    upstream: str | None = None
    upstream_direct: bool = False
    client: str = "demo"
    upstream_timeout_ms: int = Field(3000, ge=1)
    upstream_bulk_timeout_ms: int = Field(300_000, ge=1)  # bulk profile uploads, up to 50 MB each
    upstream_connect_timeout_ms: int = Field(1000, ge=1)
    upstream_pool_size: int = Field(256, ge=1)
    upstream_retries: int = Field(1, ge=0, le=5)
    # Shorter than the upstream's keep-alive, so a pooled connection is not reused as upstream closes it.
    upstream_idle_seconds: float = Field(4.0, gt=0)
    # Circuit breaker per upstream host: this many failures in a row open it for this long.
    upstream_circuit_failures: int = Field(5, ge=1)
    upstream_circuit_reset_seconds: float = Field(10.0, gt=0)

    # Deciding on device from Target's rules artifact: server-side (every decision at the edge), on-device
    # (every decision from the artifact), hybrid (from the artifact when it can decide the whole request).
    decisioning_method: Literal["server-side", "on-device", "hybrid"] = "server-side"
    # A file or an http(s) address; unset: Adobe's, https://assets.adobetarget.com/<client>/<environment>/v1/
    # [<propertyToken>/]rules.json, reached through the upstream client (the embedded emulator serves one).
    decisioning_artifact: str | None = None
    decisioning_environment: str = "production"
    decisioning_property_token: str | None = None
    decisioning_polling_seconds: float = Field(300.0, gt=0)

    # Sessions and edge affinity
    session_ttl_seconds: float = Field(1800.0, gt=0)
    session_max_visitors: int = Field(1_000_000, ge=1)
    session_max_concurrent: int = Field(100, ge=1)

    # Cache of prefetched content
    cache_max_entries: int = Field(200_000, ge=1)
    cache_max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    cache_ttl_seconds: float | None = Field(None, gt=0)  # the session's, when unset
    cache_stale_seconds: float = Field(3600.0, ge=0)
    # client -> mboxes every miss prefetches; learned ones (what visitors asked for) come after
    prefetch_groups: dict[str, list[str]] = Field(default_factory=dict)
    prefetch_learn: bool = True
    # mbox -> content answered when upstream fails and the visitor has nothing cached
    default_content: dict[str, str] = Field(default_factory=dict)

    # Notifications
    notification_store: Path = Path("var/notifications")
    notification_dead_letters: Path | None = None
    notification_sync: str = "normal"
    notification_batch_size: int = Field(50, ge=1, le=1000)
    notification_max_delay_ms: int = Field(30_000, ge=0)
    notification_max_backlog: int = Field(200_000, ge=1)
    notification_max_attempts: int = Field(100, ge=1)
    notification_retry_base_ms: int = Field(500, ge=1)
    notification_retry_cap_ms: int = Field(300_000, ge=1)
    # Extra upstream calls spent finding the bad notification of a batch the edge refused (400), a minute:
    # per visitor, and for the whole gateway process; past either, a refused batch is dead-lettered whole.
    notification_refusal_calls_per_visitor: int = Field(12, ge=0)
    notification_refusal_calls_per_minute: int = Field(120, ge=0)
    shutdown_grace_seconds: float = Field(10.0, ge=0)

    # Request limits
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_header_bytes: int = Field(16 * 1024, ge=1024)  # request line and headers; more gets 431
    header_timeout_seconds: float = Field(10.0, gt=0)  # a request head not received by then gets 408
    max_in_flight: int = Field(4096, ge=1)  # requests in progress; more get 503
    body_timeout_seconds: float = Field(10.0, gt=0)  # a body not received by then gets 408

    # Management APIs: the gateway's own credentials (OAuth server-to-server) and where they go
    ims_url: str = "https://ims-na1.adobelogin.com/ims/token/v3"
    ims_client_id: str | None = None
    ims_client_secret: SecretStr | None = None
    ims_scopes: str = "openid,AdobeID,target_sdk,read_organizations,additional_info.projectedProductContext"
    ims_org_id: str | None = None
    # Experience Platform sandbox of calls that name none (x-sandbox-name); "prod" is Platform's default one.
    sandbox_name: str | None = "prod"
    # Sandboxes a client may name in its own x-sandbox-name; empty: any.
    sandbox_allowlist: list[str] = Field(default_factory=list)
    admin_host: str = "mc.adobe.io"
    platform_host: str = "platform.adobe.io"
    # Target Admin and bulk profile APIs take 50 calls a minute; more wait up to this long, then 429.
    admin_calls_per_minute: int = Field(50, ge=1)
    admin_queue_seconds: float = Field(30.0, ge=0)
    # How long an ad-hoc activation job holds its audiences when its run's status cannot be read
    activation_job_timeout_seconds: float = Field(3600.0, gt=0)

    # Client keys of the gateway: key -> scopes (delivery, profile, admin, activation, operator)
    client_keys: dict[str, list[str]] = Field(default_factory=dict)
    # Calls a client key may make, in any moving window ("600/minute", "20/second", ...)
    client_key_rate: str = "600/minute"
    # Target's profile fetch API has no authentication; set this to require the 'profile' scope.
    profile_read_requires_key: bool = False

    # Scaling out: several gateways sharing sessions, cache, notifications and budgets on Redis. Unset, each
    # gateway keeps everything in its own memory and its own notification log.
    redis_url: str | None = None  # redis://host:port/db (rediss:// for TLS)
    redis_timeout_ms: int = Field(100, ge=1)  # per Redis command; past it Redis counts as down
    redis_prefix: str = "target-proxy:"
    redis_retry_ms: int = Field(500, ge=10)  # how often a gateway that lost Redis tries it again
    redis_session_sync_seconds: float = Field(10.0, gt=0)  # a visitor's record is read again this long after
    redis_claim_idle_ms: int = Field(30_000, ge=100)  # notifications a gateway holds this long unsettled are claimed
    redis_stream_max_read: int = Field(20_000, ge=1)  # notifications one gateway's flusher holds at once

    # --- the groups each part is built from (proxy.gateway) ---------------------------------------------

    @property
    def upstream_client(self) -> UpstreamClientSettings:
        return UpstreamClientSettings(
            self.upstream,
            self.upstream_timeout_ms,
            self.upstream_connect_timeout_ms,
            self.upstream_pool_size,
            self.upstream_retries,
            self.upstream_idle_seconds,
            self.upstream_circuit_failures,
            self.upstream_circuit_reset_seconds,
            self.admin_host,
            self.platform_host,
            self.ims_url,
        )

    @property
    def ims(self) -> ImsSettings:
        return ImsSettings(
            self.ims_url,
            self.ims_client_id,
            self.ims_client_secret,
            self.ims_scopes,
            self.ims_org_id,
            self.sandbox_name,
        )

    @property
    def notifications(self) -> NotificationSettings:
        return NotificationSettings(
            self.notification_store,
            self.notification_dead_letters,
            self.notification_sync == "full",
            self.notification_batch_size,
            self.notification_max_delay_ms / 1000,
            self.notification_max_backlog,
            self.notification_max_attempts,
            self.notification_retry_base_ms / 1000,
            self.notification_retry_cap_ms / 1000,
            self.notification_refusal_calls_per_visitor,
            self.notification_refusal_calls_per_minute,
        )

    @property
    def redis(self) -> RedisSettings:
        assert self.redis_url, "no Redis is configured"
        return RedisSettings(
            self.redis_url,
            self.redis_prefix,
            self.redis_timeout_ms / 1000,
            self.redis_retry_ms / 1000,
            self.redis_session_sync_seconds,
            self.redis_claim_idle_ms / 1000,
            self.redis_stream_max_read,
        )

    @property
    def decisioning(self) -> DecisioningSettings:
        artifact = self.decisioning_artifact
        if not artifact:
            parts = [ARTIFACT_HOST, self.client, self.decisioning_environment.lower(), "v1"]
            if self.decisioning_property_token:
                parts.append(self.decisioning_property_token)
            artifact = "https://" + "/".join([*parts, "rules.json"])
        return DecisioningSettings(self.decisioning_method, artifact, self.decisioning_polling_seconds)

    @property
    def admin(self) -> AdminSettings:
        return AdminSettings(self.admin_calls_per_minute, self.admin_queue_seconds, self.activation_job_timeout_seconds)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"critical", "error", "warning", "info", "debug"}:
            raise ValueError("must be one of critical, error, warning, info, debug")
        return value

    @field_validator("notification_sync")
    @classmethod
    def _sync(cls, value: str) -> str:
        if value.lower() not in ("normal", "full"):
            raise ValueError("must be normal (survives a crash of the process) or full (also a power loss)")
        return value.lower()

    @field_validator("upstream")
    @classmethod
    def _upstream_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("client_keys")
    @classmethod
    def _scopes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, scopes in value.items():
            if len(key) < 16:
                raise ValueError("each client key must be at least 16 characters")
            if PLACEHOLDER.search(key):
                raise ValueError(
                    f"{key[:24]!r}... is a placeholder from the examples and never authenticates; use a random"
                    " key, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
            unknown = set(scopes) - SCOPES
            if unknown:
                raise ValueError(f"unknown scope {sorted(unknown)[0]!r}; scopes are {', '.join(sorted(SCOPES))}")
        return value

    @field_validator("client_key_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError("must be a rate like 600/minute or 20/second") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together: set both, or neither")
        for path in (self.tls_certfile, self.tls_keyfile):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self


def load_settings(cli: Mapping[str, Any] | None = None, options: Mapping[str, str] | None = None) -> Settings:
    """The gateway's settings from CLI values (None means "not given"), the environment and the TOML files
    (whose ``emulator_*`` names are the emulator's). ``options`` maps setting names to the command-line
    options that set them, for the messages."""
    return config.load(Settings, cli, options, others_prefix=EMULATOR_PREFIX, shapes=JSON_SHAPES)
