"""``fraudmon bench --bootstrap``: the bench's own clients and the workers it starts reach
the caller's broker with the ``kafka.*`` security settings of ``--config``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.config import load_settings
from streams.devtools.bench import Bench


def test_a_bench_on_a_secured_broker_connects_with_the_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IT_BENCH_PASSWORD", "s3cret")
    security = load_settings(None, kafka={
        "bootstrap_servers": "ignored:1", "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "bench",
        "sasl_password_env": "IT_BENCH_PASSWORD"}).kafka
    bench = Bench(tmp_path, "broker:9096", tmp_path / "events.jsonl", 0, security=security)
    options = bench.options()
    assert options["bootstrap_servers"] == "broker:9096"
    assert (options["security_protocol"], options["sasl_mechanism"],
            options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SASL_PLAINTEXT", "SCRAM-SHA-512", "bench", "s3cret")
    path, settings = bench.config("e2e")
    assert settings.kafka.security_protocol == "SASL_PLAINTEXT"
    assert settings.kafka.bootstrap_servers == "broker:9096"
    assert "s3cret" not in path.read_text()  # the worker reads the variable, as we do
    assert yaml.safe_load(path.read_text())["kafka"]["sasl_password_env"] == "IT_BENCH_PASSWORD"


def test_without_settings_the_bench_speaks_plaintext(tmp_path: Path) -> None:
    bench = Bench(tmp_path, "127.0.0.1:9092", tmp_path / "events.jsonl", 0)
    assert bench.options() == {"bootstrap_servers": "127.0.0.1:9092",
                               "security_protocol": "PLAINTEXT"}
