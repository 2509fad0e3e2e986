"""Configuration: one frozen ``Settings`` loaded once, validated, and passed down.

Values come, lowest precedence first, from the defaults below, a YAML file
(``configs/default.yaml`` documents every key) and environment variables named
``FRAUDMON_<SECTION>__<KEY>`` (for example ``FRAUDMON_KAFKA__BOOTSTRAP_SERVERS``).
Secrets are read from the environment only and never from files in the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

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


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    topics: TopicNames = TopicNames()
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=16)
    app_id: str = Field(default="fraudmon", min_length=1)
    session_timeout_seconds: float = Field(default=10.0, ge=6, le=300)
    heartbeat_interval_seconds: float = Field(default=3.0, gt=0, le=100)

    def topic(self, logical: str) -> str:
        """The physical name of a logical topic (``payments``, ``routed``, ...)."""
        name: str = getattr(self.topics, logical.replace("-", "_"))
        return f"{self.topic_prefix}{name}"


class ProcessingSettings(_Section):
    state_dir: Path = Path(".state")
    checkpoint_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    max_event_bytes: int = Field(default=65536, ge=256, le=10_000_000)
    dedup_window: int = Field(default=100_000, ge=0, le=10_000_000)
    entity_idle_days: float = Field(default=120.0, gt=0)
    eviction_every_events: int = Field(default=10_000, ge=100)


class AnomalySettings(_Section):
    n_trees: int = Field(default=10, ge=1, le=100)
    height: int = Field(default=6, ge=2, le=20)
    window_size: int = Field(default=250, ge=10)
    seed: int = 42


class DetectionSettings(_Section):
    anomaly: AnomalySettings = AnomalySettings()
    alert_threshold: float = Field(default=0.7, ge=0, le=1)
    cooldown_hours: float = Field(default=24.0, ge=0)
    reporting_line: float = Field(default=50_000.0, gt=0)
    structuring_band: float = Field(default=0.1, gt=0, lt=1)
    rollover_window_hours: float = Field(default=72.0, gt=0)
    mule_window_hours: float = Field(default=24.0, gt=0)


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=6066, ge=0, le=65535)


class Settings(BaseSettings):
    """Everything fraud-monitor reads from configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDMON_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    kafka: KafkaSettings = KafkaSettings()
    processing: ProcessingSettings = ProcessingSettings()
    detection: DetectionSettings = DetectionSettings()
    web: WebSettings = WebSettings()
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
