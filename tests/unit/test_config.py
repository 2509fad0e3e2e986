"""Configuration (monitor.config): defaults, the documented file, overrides, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from monitor.config import DEFAULT_CONFIG, DetectionSettings, Settings, load_settings
from monitor.errors import ConfigError
from streams.cli import main


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read FRAUDMON_* variables: start every test without any."""
    for name in list(os.environ):
        if name.upper().startswith("FRAUDMON_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "settings.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | str | None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message
    assert "\n" not in message
    return message


def leaves(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# --- defaults and the documented file -----------------------------------------------


def test_defaults_load() -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.partitions == 4
    assert settings.kafka.topic("payments") == "payments"
    assert settings.kafka.topic("loan-disbursals") == "loan-disbursals"
    assert settings.kafka.topic("dead-letter") == "dead-letter"
    assert settings.processing.max_event_bytes == 65536
    assert settings.detection.anomaly.n_trees == 10
    assert settings.log_level == "INFO"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(pydantic.ValidationError):
        settings.kafka.partitions = 8
    with pytest.raises(pydantic.ValidationError):
        settings.log_level = "DEBUG"


def test_default_yaml_loads_and_equals_the_defaults() -> None:
    assert load_settings(DEFAULT_CONFIG) == Settings()
    assert load_settings(str(DEFAULT_CONFIG)) == load_settings()


def test_default_yaml_documents_every_key_with_its_default() -> None:
    documented = leaves(yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8")))
    defaults = leaves(Settings().model_dump(mode="json"))
    assert sorted(documented) == sorted(defaults)
    for key, value in documented.items():
        default = defaults[key]
        if isinstance(default, float):
            assert float(value) == default, key
        else:
            assert str(value) == str(default), key


def test_topic_prefix_applies_to_every_topic(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\n  topic_prefix: 'prod.'\n  topics:\n    alerts: fm-alerts\n")
    kafka = load_settings(path).kafka
    assert kafka.topic("payments") == "prod.payments"
    assert kafka.topic("alerts") == "prod.fm-alerts"
    assert kafka.topic("routed") == "prod.fraudmon-routed"


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "# nothing set\n")) == Settings()


def test_file_values_override_defaults_section_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\n  partitions: 8\ndetection:\n  anomaly:\n    height: 4\n")
    settings = load_settings(path)
    assert settings.kafka.partitions == 8
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.detection.anomaly.height == 4
    assert settings.detection.anomaly.n_trees == 10


# --- environment overrides ----------------------------------------------------------


def test_env_overrides_bootstrap_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDMON_KAFKA__BOOTSTRAP_SERVERS", "broker-1:29092,broker-2:29092")
    settings = load_settings(DEFAULT_CONFIG)
    assert settings.kafka.bootstrap_servers == "broker-1:29092,broker-2:29092"
    assert settings.kafka.partitions == 4


def test_env_overrides_nested_anomaly_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDMON_DETECTION__ANOMALY__N_TREES", "3")
    settings = load_settings(DEFAULT_CONFIG)
    assert settings.detection.anomaly.n_trees == 3
    assert settings.detection.anomaly.height == 6
    assert settings.detection.alert_threshold == DetectionSettings().alert_threshold


def test_env_beats_the_file_and_keeps_its_other_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "kafka:\n  bootstrap_servers: from-file:9092\n  partitions: 8\n")
    monkeypatch.setenv("FRAUDMON_KAFKA__BOOTSTRAP_SERVERS", "from-env:9092")
    settings = load_settings(path)
    assert settings.kafka.bootstrap_servers == "from-env:9092"
    assert settings.kafka.partitions == 8


def test_invalid_env_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDMON_KAFKA__PARTITIONS", "0")
    assert "kafka.partitions" in config_error(None)


def test_malformed_env_section_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDMON_KAFKA", "{not json")
    assert "kafka" in config_error(None)


# --- bad files ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key"), [
    ("kafka:\n  partitions: 0\n", "kafka.partitions"),
    ("kafka:\n  partitions: 5000\n", "kafka.partitions"),
    ("kafka:\n  partitions: many\n", "kafka.partitions"),
    ("kafka:\n  partitons: 3\n", "kafka.partitons"),
    ("kafak:\n  partitions: 3\n", "kafak"),
    ("kafka:\n  topics: 5\n", "kafka.topics"),
    ("kafka:\n  topics:\n    payment: pay\n", "kafka.topics.payment"),
    ("kafka: [1, 2]\n", "kafka"),
    ("processing:\n  max_event_bytes: 10\n", "processing.max_event_bytes"),
    ("processing:\n  checkpoint_interval_seconds: 0\n",
     "processing.checkpoint_interval_seconds"),
    ("detection:\n  alert_threshold: 1.5\n", "detection.alert_threshold"),
    ("detection:\n  anomaly:\n    n_trees: ten\n", "detection.anomaly.n_trees"),
    ("web:\n  port: 70000\n", "web.port"),
    ("log_level: TRACE\n", "log_level"),
])
def test_bad_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: {key}: ")


def test_several_errors_are_counted_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\n  partitions: 0\n  replication_factor: 0\nweb:\n  port: -1\n")
    message = config_error(path)
    assert "kafka.partitions" in message
    assert "2 more" in message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_non_mapping_yaml_is_refused(tmp_path: Path, text: str) -> None:
    assert "mapping" in config_error(write(tmp_path, text))


@pytest.mark.parametrize("text", ["kafka: [\n", "kafka:\n  partitions: 1\n bad: 2\n",
                                  "kafka: {partitions: 1\n", "\tkafka: 1\n"])
def test_invalid_yaml_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: not valid YAML")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    message = config_error(path)
    assert str(path) in message
    assert "No such file" in message


def test_directory_is_refused(tmp_path: Path) -> None:
    assert str(tmp_path) in config_error(tmp_path)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kafka:\n  app_id: caf\xe9\n")
    assert str(path) in config_error(path)


def test_non_string_top_level_key_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "1: 2\n")
    assert str(path) in config_error(path)


# --- fraudmon config check ----------------------------------------------------------


def test_config_check_accepts_the_default_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(DEFAULT_CONFIG)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{DEFAULT_CONFIG}: ok"
    assert captured.err == ""


@pytest.mark.parametrize(("text", "expected"), [
    ("kafka:\n  partitions: 0\n", "kafka.partitions"),
    ("kafka:\n  partitons: 3\n", "kafka.partitons"),
    ("kafka: [\n", "not valid YAML"),
    ("- a\n", "mapping"),
])
def test_config_check_refuses_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert main(["config", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fraudmon: error: ")
    assert str(path) in lines[0]
    assert expected in lines[0]


def test_config_check_refuses_a_missing_file(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.yaml"
    assert main(["config", "check", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0]
