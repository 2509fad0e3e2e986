"""Settings of the outputs: webhook receivers, the HTTP API, metrics; secrets stay in the
environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import DEFAULT_CONFIG, load_settings, secret_from_env
from monitor.errors import ConfigError

RECEIVER = {"name": "risk", "url": "https://hooks.example.test/fm", "secret_env": "RISK_SECRET"}


def with_receivers(*receivers: dict[str, object]) -> dict[str, object]:
    return {"webhooks": {"receivers": list(receivers)}}


def test_a_receiver_is_parsed() -> None:
    settings = load_settings(None, **with_receivers(
        {**RECEIVER, "patterns": ["mule_account"], "min_severity": "high"}))
    receiver = settings.webhooks.receivers[0]
    assert (receiver.name, receiver.patterns, receiver.min_severity) == (
        "risk", ("mule_account",), "high")


@pytest.mark.parametrize(("change", "message"), [
    ({"url": "ftp://hooks.example.test/"}, "must be an http:// or https:// URL"),
    ({"url": "https://user:pw@hooks.example.test/"}, "must not carry credentials"),
    ({"url": "not a url"}, "must be an http:// or https:// URL"),
    ({"patterns": ["loan_sharking"]}, "unknown pattern 'loan_sharking'"),
    ({"secret_env": "whsec_abc=="}, "String should match pattern"),
    ({"name": "Risk Team"}, "String should match pattern"),
    ({"min_severity": "urgent"}, "Input should be 'low', 'medium' or 'high'"),
])
def test_bad_receivers_are_one_line_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(None, **with_receivers({**RECEIVER, **change}))
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("defaults: webhooks.receivers.0")


def test_receiver_names_are_unique() -> None:
    with pytest.raises(ConfigError, match="receiver name 'risk' is used twice"):
        load_settings(None, **with_receivers(RECEIVER, RECEIVER))


def test_a_secret_in_the_settings_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("webhooks:\n  receivers:\n    - name: risk\n      url: https://h.test/\n"
                    "      secret_env: RISK\n      secret: whsec_abc\n")
    with pytest.raises(ConfigError, match="Extra inputs are not permitted"):
        load_settings(path)


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDMON_API_TOKEN", "  t0ken \n")
    monkeypatch.setenv("EMPTY_ONE", "")
    secret = secret_from_env("FRAUDMON_API_TOKEN")
    assert secret is not None and secret.get_secret_value() == "t0ken"
    assert "t0ken" not in repr(secret)
    assert secret_from_env("EMPTY_ONE") is None
    assert secret_from_env("NOT_SET_ANYWHERE_12345") is None
    # The token's variable shares the settings prefix but is not a setting.
    assert load_settings(DEFAULT_CONFIG).api.token_env == "FRAUDMON_API_TOKEN"


def test_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDMON_WEBHOOKS__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("FRAUDMON_API__PAGE_SIZE", "10")
    settings = load_settings(DEFAULT_CONFIG)
    assert settings.webhooks.max_attempts == 3 and settings.api.page_size == 10
