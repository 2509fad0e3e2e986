"""Standard Webhooks 1.0 signatures: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``.

Secrets are ``whsec_`` + base64 of 24-64 random bytes. During a key rotation a sender
signs with every current secret (space-separated signatures in one header) and a
receiver accepts a message that any of its secrets verifies.

>>> secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
>>> header = signature_header([parse_secret(secret)], "msg_1", 1700000000, b"{}")
>>> verify([parse_secret(secret)], {"webhook-id": "msg_1", "webhook-timestamp": "1700000000",
...         "webhook-signature": header}, b"{}", now=1700000010)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

from monitor.errors import SignatureError

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64


def generate_secret(size: int = 32) -> str:
    """A fresh ``whsec_`` secret."""
    return PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def parse_secret(text: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ``ValueError`` when it is not one."""
    if not text.startswith(PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(text[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' + base64") from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_KEY_BYTES}-{MAX_KEY_BYTES} bytes")
    return key


def parse_secrets(text: str) -> list[bytes]:
    """Keys of one or more space-separated ``whsec_`` secrets (several during rotation)."""
    keys = [parse_secret(part) for part in text.split()]
    if not keys:
        raise ValueError("no webhook secret given")
    return keys


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: one signature per current key."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def verify(keys: Iterable[bytes], headers: Mapping[str, str], body: bytes, now: float,
           tolerance: float = TOLERANCE_SECONDS) -> None:
    """Check a received webhook; ``SignatureError`` with a short reason when it fails.

    ``headers`` must be case-insensitive or lower-cased. The timestamp must be within
    ``tolerance`` seconds of ``now`` (either way), against replays.
    """
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    header = headers.get("webhook-signature")
    if not msg_id or not stamp or not header:
        raise SignatureError("missing webhook headers")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("bad webhook-timestamp") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance")
    expected = [sign(key, msg_id, timestamp, body) for key in keys]
    for candidate in header.split():
        for signature in expected:
            if hmac.compare_digest(candidate.encode(), signature.encode()):
                return
    raise SignatureError("no matching signature")
