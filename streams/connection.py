"""How every Kafka client the project opens connects: security settings in one place.

aiokafka takes ``security_protocol``, ``sasl_mechanism``, ``sasl_plain_username`` and
``sasl_plain_password`` (SCRAM uses them too) and an ``ssl_context``; faust takes the same
as ``broker_credentials``. :func:`client_options` builds the first from ``kafka.*``
settings, :func:`faust_credentials` the second, so a worker's consumer, producers,
admin clients, webhook lanes, reference lookups and the devtools all connect alike.

A client that cannot authenticate retries quietly for ever (aiokafka logs and tries the
next bootstrap host). :func:`preflight` connects once to each bootstrap server with the
same options and turns the first failure into one line naming the cause (wrong password,
untrusted certificate, wrong host name, nothing listening), so a misconfigured worker
exits at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from faust.auth import SASLCredentials, SSLCredentials

from monitor.config import KafkaSettings, secret_from_env
from monitor.errors import ConfigError, FraudMonitorError


class KafkaUnreachable(FraudMonitorError):
    """The brokers refused or could not be reached with these settings (one-line reason)."""


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context ``kafka`` asks for; ``None`` without TLS."""
    if kafka.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"kafka.ssl_cafile: cannot load {kafka.ssl_cafile}: "
                          f"{_reason(exc)}") from exc
    context.check_hostname = kafka.ssl_check_hostname
    if kafka.ssl_certfile is not None and kafka.ssl_keyfile is not None:
        password = (_secret(kafka.ssl_key_password_env, "kafka.ssl_key_password_env")
                    if kafka.ssl_key_password_env else None)
        try:
            context.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile), password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"kafka.ssl_certfile: cannot load {kafka.ssl_certfile} with "
                              f"{kafka.ssl_keyfile}: {_reason(exc)}") from exc
    return context


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client: bootstrap servers and security."""
    options: dict[str, Any] = {"bootstrap_servers": kafka.bootstrap_servers,
                               "security_protocol": kafka.security_protocol}
    context = ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL_"):
        assert kafka.sasl_password_env is not None  # noqa: S101 - the settings validate it
        options.update(
            sasl_mechanism=kafka.sasl_mechanism, sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=_secret(kafka.sasl_password_env, "kafka.sasl_password_env"))
    return options


def faust_credentials(kafka: KafkaSettings) -> SASLCredentials | SSLCredentials | None:
    """The same security for faust's own producer (it sends the API's labels)."""
    options = client_options(kafka)
    if kafka.security_protocol.startswith("SASL_"):
        return SASLCredentials(username=options["sasl_plain_username"],
                               password=options["sasl_plain_password"],
                               ssl_context=options.get("ssl_context"),
                               mechanism=options["sasl_mechanism"])
    if kafka.security_protocol == "SSL":
        return SSLCredentials(options["ssl_context"])
    return None


async def preflight(kafka: KafkaSettings, limit_seconds: float = 20.0) -> None:
    """Connect once to each bootstrap server; raise :class:`KafkaUnreachable` with the
    first server's reason when none accepts these settings."""
    options = client_options(kafka)
    options.pop("bootstrap_servers")
    reasons: list[str] = []
    for server in (part.strip() for part in kafka.bootstrap_servers.split(",")):
        if not server:
            continue
        host, _, port = server.rpartition(":")
        host = host.strip("[]") or server
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port or 9092), client_id="fraudmon-preflight",
                            request_timeout_ms=int(limit_seconds * 1000), **options), limit_seconds)
        except (OSError, KafkaError, TimeoutError, ValueError) as exc:
            reasons.append(f"{server}: {explain(exc, kafka)}")
            continue
        conn.close()
        return
    raise KafkaUnreachable(f"kafka: cannot connect to {reasons[0] if reasons else 'no server'}"
                           + (f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""))


def explain(exc: BaseException, kafka: KafkaSettings) -> str:
    """One line saying why a connection with ``kafka``'s settings failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or _reason(exc)
        if "mismatch" in message.lower():
            return (f"TLS host name check failed ({message}); connect by a name the "
                    "broker's certificate carries, or set kafka.ssl_check_hostname: false")
        return (f"TLS certificate not trusted ({message}); set kafka.ssl_cafile to the CA "
                "that signed the broker's certificate")
    if isinstance(exc, ssl.SSLError):
        return (f"TLS handshake failed ({_reason(exc)}); does the listener speak "
                f"{kafka.security_protocol}, and does it require a client certificate?")
    if isinstance(exc, SaslAuthenticationFailed):
        return (f"SASL authentication failed for user {kafka.sasl_username!r} with "
                f"{kafka.sasl_mechanism}: wrong password ({kafka.sasl_password_env}) "
                "or unknown user")
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"the broker does not enable SASL mechanism {kafka.sasl_mechanism}"
    if isinstance(exc, TimeoutError):
        return (f"no answer in time; does the listener speak {kafka.security_protocol}?")
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(exc, KafkaError) and isinstance(exc.__cause__, OSError | ssl.SSLError):
        return explain(exc.__cause__, kafka)
    if isinstance(exc, KafkaConnectionError):
        return (f"the broker closed the connection ({_reason(exc)}); does the listener "
                f"speak {kafka.security_protocol} (kafka.security_protocol)?")
    return _reason(exc)


def _secret(env: str | None, key: str) -> str:
    secret = secret_from_env(env) if env else None
    if secret is None:
        raise ConfigError(f"{key}: environment variable {env} is not set")
    return secret.get_secret_value()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
