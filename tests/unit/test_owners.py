"""Shard owners through the group's assignment: what members advertise and what the
leader hands out, decoded strictly (any member of the group can write these bytes)."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import load_settings
from streams.web.owners import (
    AdvertisingAssignor,
    advertised_url,
    decode_member,
    decode_owners,
    encode_member,
    encode_owners,
)


def test_owners_round_trip() -> None:
    owners = {0: "http://10.0.0.1:6066", 3: "https://w-2.example:8443"}
    assert decode_owners(encode_owners(owners)) == owners
    assert decode_member(encode_member("http://10.0.0.1:6066")) == "http://10.0.0.1:6066"


@pytest.mark.parametrize("data", [
    None, b"", b"garbage", b"[]", orjson.dumps({"api": "file:///etc/passwd"}),
    orjson.dumps({"api": "http://user:pw@host:1"}), orjson.dumps({"api": 7}),
    orjson.dumps({"api": "http://h/" + "x" * 600}), b"x" * 300_000,
])
def test_a_member_advertising_nonsense_advertises_nothing(data: bytes | None) -> None:
    assert decode_member(data) is None


def test_bad_owner_entries_are_left_out() -> None:
    data = orjson.dumps({"owners": {"0": "http://ok:1", "1": "gopher://x", "x": "http://y:1",
                                    "2": None, "99999999": "http://z:1"}})
    assert decode_owners(data) == {0: "http://ok:1"}


@given(st.binary(max_size=500))
def test_no_bytes_crash_the_decoders(data: bytes) -> None:
    decode_member(data)
    decode_owners(data)


def test_the_leader_puts_every_routed_partitions_owner_in_every_assignment() -> None:
    cluster = ClusterMetadata()
    cluster._partitions = {"routed": {p: None for p in range(4)},
                           "payments": {p: None for p in range(4)}}
    leader = AdvertisingAssignor("http://a:1", "routed")
    members = {"m-a": leader.metadata(["routed", "payments"]),
               "m-b": AdvertisingAssignor("http://b:1", "routed").metadata(
                   ["routed", "payments"]),
               "m-old": ConsumerProtocolMemberMetadata(0, ["routed", "payments"], b"")}
    assigned = leader.assign(cluster, members)
    owners = decode_owners(assigned["m-b"].user_data)
    by_member = {m: {p for t, ps in a.assignment if t == "routed" for p in ps}
                 for m, a in assigned.items()}
    assert owners == {p: url for m, url in (("m-a", "http://a:1"), ("m-b", "http://b:1"))
                      for p in by_member[m]}
    assert not set(owners) & by_member["m-old"]  # an old member advertises nothing
    follower = AdvertisingAssignor("http://b:1", "routed")
    follower.on_assignment(assigned["m-b"])
    assert follower.owners == owners


def test_the_default_address_is_the_web_port_on_this_host() -> None:
    settings = load_settings(None, web={"host": "127.0.0.1", "port": 7001})
    assert advertised_url(settings) == "http://127.0.0.1:7001"
    given_url = load_settings(None, web={"advertised_url": "http://10.1.2.3:6066/"})
    assert advertised_url(given_url) == "http://10.1.2.3:6066"
