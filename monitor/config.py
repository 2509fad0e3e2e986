"""Configuration: one frozen ``Settings`` loaded once, validated, and passed down.

Values come, lowest precedence first, from the defaults below, a YAML file
(``configs/default.yaml`` documents every key) and environment variables named
``FRAUDMON_<SECTION>__<KEY>`` (for example ``FRAUDMON_KAFKA__BOOTSTRAP_SERVERS``).
Secrets are read from the environment only and never from files in the repository.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from monitor.contract.clock import TimeRule
from monitor.contract.events import Limits
from monitor.contract.vocabulary import PATTERNS
from monitor.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicNames(_Section):
    """Logical topic names; ``KafkaSettings.topic_prefix`` is put in front of each."""

    payments: str = "payments"
    loan_disbursals: str = "loan-disbursals"
    labels: str = "labels"
    decisions: str = "decisions"
    alerts: str = "alerts"
    dead_letter: str = "dead-letter"
    routed: str = "fraudmon-routed"
    webhook_dead_letter: str = "webhook-dead-letter"


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
"""The name of an environment variable (never its value: secrets stay in the environment)."""


def secret_from_env(name: str) -> SecretStr | None:
    """The secret held by environment variable ``name``; ``None`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return SecretStr(value) if value else None


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    topics: TopicNames = TopicNames()
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=16)
    app_id: str = Field(default="fraudmon", min_length=1)
    session_timeout_seconds: float = Field(default=10.0, ge=6, le=300)
    heartbeat_interval_seconds: float = Field(default=3.0, gt=0, le=100)
    # Security, for every client the project opens (streams/connection.py).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = Field(default=None, min_length=1, max_length=256)
    sasl_password_env: EnvName | None = None
    """The environment variable holding the SASL password (never the password)."""
    ssl_cafile: Path | None = None
    """PEM file of the CAs to trust; unset: the system's."""
    ssl_certfile: Path | None = None
    """PEM client certificate (mutual TLS), with ``ssl_keyfile``."""
    ssl_keyfile: Path | None = None
    ssl_key_password_env: EnvName | None = None
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _consistent_security(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and (self.sasl_mechanism is None or self.sasl_username is None
                     or self.sasl_password_env is None):
            raise ValueError(f"security_protocol {self.security_protocol} needs "
                             "sasl_mechanism, sasl_username and sasl_password_env")
        if not sasl and self.sasl_mechanism is not None:
            raise ValueError(f"sasl_mechanism is set but security_protocol is "
                             f"{self.security_protocol} (use SASL_SSL or SASL_PLAINTEXT)")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (mutual TLS)")
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        if not tls and (self.ssl_cafile or self.ssl_certfile):
            raise ValueError(f"ssl_* files are set but security_protocol is "
                             f"{self.security_protocol} (use SSL or SASL_SSL)")
        return self

    def topic(self, logical: str) -> str:
        """The physical name of a logical topic (``payments``, ``routed``, ...)."""
        name: str = getattr(self.topics, logical.replace("-", "_"))
        return f"{self.topic_prefix}{name}"


class ProcessingSettings(_Section):
    state_dir: Path = Path(".state")
    # "kafka": shard checkpoints go to a compacted changelog topic (any host can restore
    # a shard) and to state_dir as a cache; "file": to state_dir only (one host).
    checkpoint_store: Literal["file", "kafka"] = "kafka"
    checkpoint_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    max_event_bytes: int = Field(default=65536, ge=256, le=524_288)
    dedup_window: int = Field(default=100_000, ge=0, le=10_000_000)
    entity_idle_days: float = Field(default=120.0, gt=0)
    eviction_every_events: int = Field(default=10_000, ge=100)
    max_entities_per_shard: int = Field(default=150_000, ge=100, le=100_000_000)
    entity_warning_ratio: float = Field(default=0.9, gt=0, le=1)
    min_event_date: date = date(2000, 1, 1)
    max_future_skew_seconds: float = Field(default=86_400.0, ge=0, le=366 * 86_400)
    max_watermark_step_seconds: float = Field(default=3_600.0, gt=0, le=366 * 86_400)
    max_fee_ratio: float = Field(default=10.0, gt=0, le=1e6)
    dead_letter_prefix_bytes: int = Field(default=8192, ge=0, le=131_072)
    restore_backoff_initial_seconds: float = Field(default=1.0, gt=0, le=300)
    restore_backoff_max_seconds: float = Field(default=60.0, gt=0, le=3600)

    def time_rule(self) -> TimeRule:
        """The event-time bounds these settings give."""
        floor = datetime.combine(self.min_event_date, time(), UTC).timestamp()
        return TimeRule(floor=floor, max_future_skew=self.max_future_skew_seconds,
                        max_watermark_step=self.max_watermark_step_seconds)

    def limits(self) -> Limits:
        """The event contract's bounds these settings give."""
        return Limits(max_bytes=self.max_event_bytes, max_fee_ratio=self.max_fee_ratio)


class AnomalySettings(_Section):
    n_trees: int = Field(default=10, ge=1, le=100)
    height: int = Field(default=6, ge=2, le=20)
    window_size: int = Field(default=250, ge=10)
    seed: int = 42
    learn_every: int = Field(default=4, ge=1, le=1000)


class DetectionSettings(_Section):
    anomaly: AnomalySettings = AnomalySettings()
    alert_threshold: float = Field(default=0.6, ge=0, le=1)
    cooldown_hours: float = Field(default=24.0, ge=0)
    reporting_line: float = Field(default=50_000.0, gt=0)
    structuring_band: float = Field(default=0.15, gt=0, lt=1)
    rollover_window_hours: float = Field(default=72.0, gt=0)
    rollover_max_term_days: int = Field(default=62, ge=1)
    mule_window_hours: float = Field(default=24.0, gt=0)
    mule_min_amount: float = Field(default=1_000.0, ge=0)
    label_horizon_days: float = Field(default=60.0, gt=0)
    label_memory: int = Field(default=50_000, ge=0, le=10_000_000)
    min_labels: int = Field(default=5, ge=1)


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=6066, ge=0, le=65535)
    advertised_url: str | None = None
    """How the other workers reach this one's API (entity lookups are forwarded to the
    owner); unset: ``http://<host>:<port>``, the host's own address when ``host`` is a
    wildcard. In Kubernetes: ``http://$(POD_IP):6066``."""
    forward_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    retry_after_seconds: int = Field(default=2, ge=1, le=300)
    """``Retry-After`` of a 503 while the group rebalances."""

    @field_validator("advertised_url")
    @classmethod
    def _advertised(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("must be a plain base URL (no credentials, query or fragment)")
        return value.rstrip("/")


class ReceiverSettings(_Section):
    """One webhook receiver: where alerts go, how they are signed, which ones it wants."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    url: str
    secret_env: EnvName
    patterns: tuple[str, ...] = ()
    min_severity: Literal["low", "medium", "high"] = "low"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials (the signature authenticates)")
        return value

    @field_validator("patterns")
    @classmethod
    def _known_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(PATTERNS))
        if unknown:
            raise ValueError(f"unknown pattern {unknown[0]!r}; known: {', '.join(PATTERNS)}")
        return value


class WebhookSettings(_Section):
    """Signed webhook delivery of alerts, from the alerts topic in a consumer group of its own."""

    enabled: bool = True
    group_suffix: str = Field(default="-webhooks", min_length=1)
    start_from: Literal["earliest", "latest"] = "earliest"
    connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=16, ge=1, le=100)
    backoff_initial_seconds: float = Field(default=5.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    max_retry_after_seconds: float = Field(default=3600.0, gt=0)
    max_in_flight: int = Field(default=1000, ge=1, le=1_000_000)
    concurrency: int = Field(default=4, ge=1, le=256)
    commit_interval_seconds: float = Field(default=1.0, gt=0, le=300)
    allow_private_targets: bool = False
    allow_loopback_targets: bool = False
    receivers: tuple[ReceiverSettings, ...] = ()

    @field_validator("receivers")
    @classmethod
    def _unique_names(cls, value: tuple[ReceiverSettings, ...]) -> tuple[ReceiverSettings, ...]:
        names = [receiver.name for receiver in value]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"receiver name {duplicated[0]!r} is used twice")
        return value


class ApiSettings(_Section):
    """The risk team's HTTP API on the worker (everything but health and metrics).

    Tokens come from environment variables named here, several per variable (space
    separated, each ``name:token`` or a bare token named ``<role>-<n>``): analysts read
    alerts and entities and post labels; admins may also change rules and settings.
    """

    token_env: EnvName = "FRAUDMON_API_TOKEN"  # noqa: S105 - a variable's name, not a token
    """Tokens from before roles: analyst tokens (what they could do then), named
    ``legacy-<n>`` when bare."""
    analyst_tokens_env: EnvName = "FRAUDMON_ANALYST_TOKENS"
    admin_tokens_env: EnvName = "FRAUDMON_ADMIN_TOKENS"
    metrics_token_env: EnvName | None = None
    """When set, ``/metrics`` answers only with this variable's bearer token (unset: 401)."""
    recent_alerts: int = Field(default=10_000, ge=1, le=10_000_000)
    """Unused since ``GET /alerts`` reads the alert store (``store``); accepted so that
    existing files load."""
    page_size: int = Field(default=50, ge=1, le=10_000)
    max_page_size: int = Field(default=500, ge=1, le=10_000)


class StoreSettings(_Section):
    """The deployment's alert store, fed from the alerts topic, read by ``GET /alerts``."""

    url: str | None = None
    """Unset: SQLite in ``processing.state_dir`` (each worker keeps every alert);
    ``postgresql://user@host:5432/db?sslmode=verify-full``: one database for every
    worker. Never a password: that comes from ``password_env`` or libpq's environment
    (``PGPASSWORD``, ``PGPASSFILE``)."""
    password_env: EnvName | None = None
    consume: bool = True
    """Whether this worker feeds the store (false when ``fraudmon alert-store`` does)."""
    group_suffix: str = Field(default="-alert-store", min_length=1, max_length=64)
    retention_days: float | None = Field(default=400.0, gt=0)
    max_alerts: int | None = Field(default=10_000_000, ge=1)
    retention_interval_seconds: float = Field(default=300.0, gt=0, le=86_400)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    max_alert_bytes: int = Field(default=65_536, ge=1024, le=1_048_576)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    query_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    retry_seconds: float = Field(default=2.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres", "sqlite"):
            raise ValueError("must be a postgresql:// or sqlite:/// URL")
        if parts.password or "password=" in parts.query.lower():
            raise ValueError("must not carry a password (use store.password_env or "
                             "PGPASSWORD / PGPASSFILE)")
        if parts.scheme == "sqlite" and not parts.path.strip("/"):
            raise ValueError("sqlite:/// needs a file path")
        return value

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        if self.url is None or self.url.startswith("sqlite:"):
            return "sqlite"
        return "postgresql"


class MetricsSettings(_Section):
    consumer_lag_interval_seconds: float = Field(default=5.0, gt=0, le=3600)


class Settings(BaseSettings):
    """Everything fraud-monitor reads from configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDMON_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    kafka: KafkaSettings = KafkaSettings()
    processing: ProcessingSettings = ProcessingSettings()
    detection: DetectionSettings = DetectionSettings()
    web: WebSettings = WebSettings()
    webhooks: WebhookSettings = WebhookSettings()
    api: ApiSettings = ApiSettings()
    store: StoreSettings = StoreSettings()
    metrics: MetricsSettings = MetricsSettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the YAML file, which arrives as init arguments.
        return env_settings, init_settings


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = len(error.errors()) - 1
    tail = f" (and {more} more)" if more else ""
    return f"{source}: {key}: {first['msg']}{tail}"


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Read, validate and return settings; raise ``ConfigError`` with a one-line reason."""
    source = str(path) if path is not None else "defaults"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{source}: the top level must be a mapping")
        data = loaded or {}
        bad_keys = [key for key in data if not isinstance(key, str)]
        if bad_keys:
            raise ConfigError(f"{source}: top-level key {bad_keys[0]!r} is not a name")
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
    except SettingsError as exc:
        raise ConfigError(f"environment: {str(exc).splitlines()[0]}") from exc
