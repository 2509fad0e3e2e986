"""Kafka security settings: what is refused at load, and what the clients are given."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigError
from streams.connection import client_options, explain

SASL = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "fraudmon", "sasl_password_env": "UT_KAFKA_PASSWORD"}


@pytest.mark.parametrize(("kafka", "reason"), [
    ({"security_protocol": "SASL_SSL"}, "needs sasl_mechanism, sasl_username"),
    ({**SASL, "sasl_password_env": None}, "needs sasl_mechanism"),
    ({"sasl_mechanism": "PLAIN"}, "sasl_mechanism is set but security_protocol is PLAINTEXT"),
    ({"security_protocol": "SSL", "ssl_certfile": "c.pem"}, "go together"),
    ({"ssl_cafile": "ca.pem"}, "ssl_* files are set but security_protocol is PLAINTEXT"),
    ({**SASL, "sasl_mechanism": "GSSAPI"}, "kafka.sasl_mechanism"),
    ({"security_protocol": "TLS"}, "kafka.security_protocol"),
])
def test_inconsistent_security_is_refused_with_the_key(kafka: dict[str, object],
                                                       reason: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        load_settings(None, kafka=kafka)


def test_sasl_options_carry_the_password_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UT_KAFKA_PASSWORD", "s3cret")
    options = client_options(load_settings(None, kafka=SASL).kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "fraudmon"
    assert options["sasl_plain_password"] == "s3cret"
    context = options["ssl_context"]
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_an_unset_password_variable_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UT_KAFKA_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match=r"kafka\.sasl_password_env: environment variable "
                                          r"UT_KAFKA_PASSWORD is not set"):
        client_options(load_settings(None, kafka=SASL).kafka)


def test_plaintext_gets_no_tls_and_no_sasl() -> None:
    options = client_options(load_settings(None).kafka)
    assert options == {"bootstrap_servers": "127.0.0.1:9092",
                       "security_protocol": "PLAINTEXT"}


def test_an_unreadable_ca_file_names_the_key(tmp_path: Path) -> None:
    kafka = load_settings(None, kafka={"security_protocol": "SSL",
                                       "ssl_cafile": str(tmp_path / "missing.pem")}).kafka
    with pytest.raises(ConfigError, match=r"kafka\.ssl_cafile: cannot load"):
        client_options(kafka)


def test_explain_tells_a_host_name_mismatch_from_an_untrusted_certificate() -> None:
    kafka = load_settings(None).kafka
    mismatch = ssl.SSLCertVerificationError(1, "x")
    mismatch.verify_message = "Hostname mismatch, certificate is not valid for 'h'."
    untrusted = ssl.SSLCertVerificationError(1, "x")
    untrusted.verify_message = "self-signed certificate in certificate chain"
    assert explain(mismatch, kafka).startswith("TLS host name check failed")
    assert explain(untrusted, kafka).startswith("TLS certificate not trusted")
    assert explain(ConnectionRefusedError(), kafka).startswith("connection refused")
