"""Standard Webhooks signing and verification, against the specification's test vector."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import SignatureError
from monitor.outputs.webhooks.signing import (
    generate_secret,
    parse_secret,
    parse_secrets,
    sign,
    signature_header,
    verify,
)

# The specification's published vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(msg_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_signs_like_the_specification_vector() -> None:
    assert sign(parse_secret(VECTOR_SECRET), VECTOR_ID, VECTOR_TS, VECTOR_BODY) == \
        VECTOR_SIGNATURE


def test_verifies_the_specification_vector_within_tolerance_only() -> None:
    keys = [parse_secret(VECTOR_SECRET)]
    given_headers = headers(VECTOR_ID, VECTOR_TS, VECTOR_SIGNATURE)
    verify(keys, given_headers, VECTOR_BODY, now=VECTOR_TS + 299)
    verify(keys, given_headers, VECTOR_BODY, now=VECTOR_TS - 299)
    for skew in (301, -301):
        with pytest.raises(SignatureError, match="tolerance"):
            verify(keys, given_headers, VECTOR_BODY, now=VECTOR_TS + skew)


def test_a_tampered_body_id_or_timestamp_fails() -> None:
    keys = [parse_secret(VECTOR_SECRET)]
    now = VECTOR_TS
    for msg_id, ts, body in ((VECTOR_ID, VECTOR_TS, b'{"test": 2432232315}'),
                             ("msg_other", VECTOR_TS, VECTOR_BODY),
                             (VECTOR_ID, VECTOR_TS + 1, VECTOR_BODY)):
        with pytest.raises(SignatureError, match="no matching signature"):
            verify(keys, headers(msg_id, ts, VECTOR_SIGNATURE), body, now=now)


def test_missing_or_malformed_headers_fail() -> None:
    keys = [parse_secret(VECTOR_SECRET)]
    with pytest.raises(SignatureError, match="missing"):
        verify(keys, {"webhook-id": VECTOR_ID}, VECTOR_BODY, now=VECTOR_TS)
    with pytest.raises(SignatureError, match="timestamp"):
        verify(keys, headers(VECTOR_ID, 0, VECTOR_SIGNATURE) | {"webhook-timestamp": "soon"},
               VECTOR_BODY, now=VECTOR_TS)


def test_rotation_signs_with_every_key_and_either_verifies() -> None:
    old, new = parse_secret(generate_secret()), parse_secret(generate_secret())
    header = signature_header([old, new], "msg_1", 1000, b"{}")
    assert len(header.split(" ")) == 2
    assert all(part.startswith("v1,") for part in header.split(" "))
    verify([new], headers("msg_1", 1000, header), b"{}", now=1000)
    verify([old], headers("msg_1", 1000, header), b"{}", now=1000)
    with pytest.raises(SignatureError):
        verify([parse_secret(generate_secret())], headers("msg_1", 1000, header), b"{}",
               now=1000)


@pytest.mark.parametrize("text", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!",
                                  "whsec_c2hvcnQ=", "whsec_" + "A" * 200, ""])
def test_bad_secrets_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        parse_secrets(text)


def test_generated_secrets_are_distinct_and_parse() -> None:
    first, second = generate_secret(), generate_secret()
    assert first != second and first.startswith("whsec_")
    assert len(parse_secret(first)) == 32
    assert len(parse_secrets(f"{first}  {second}\n")) == 2


@given(body=st.binary(max_size=512), flip=st.integers(min_value=0, max_value=511),
       msg_id=st.text(min_size=1, max_size=40).filter(lambda s: "." not in s))
def test_any_changed_byte_breaks_the_signature(body: bytes, flip: int, msg_id: str) -> None:
    key = parse_secret(VECTOR_SECRET)
    header = sign(key, msg_id, 1000, body)
    verify([key], headers(msg_id, 1000, header), body, now=1000)
    if body:
        index = flip % len(body)
        changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1:]
        with pytest.raises(SignatureError):
            verify([key], headers(msg_id, 1000, header), changed, now=1000)
