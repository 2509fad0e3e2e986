"""Which worker owns which shard, and how to reach its API: told through the consumer
group's own assignment.

Each worker's consumer joins the group with its advertised API address in its member
metadata (``web.advertised_url``). The group's leader, assigning partitions, puts the
map *routed partition (shard) -> owner's address* in every member's assignment, so each
worker learns it in the same step as its own partitions, generation by generation: no
extra topic, nothing to go stale. While the group rebalances the map is not used (the
API answers 503). The strategy keeps the name ``roundrobin`` and assigns exactly as
aiokafka's round robin does, so workers of an earlier version can share the group (their
metadata carries no address: their shards' lookups answer 503 until they are upgraded).

Whoever can join the group (Kafka's ACLs decide) can advertise an address; the settings
and these decoders accept only http(s) URLs of bounded size.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from monitor.config import Settings

logger = logging.getLogger(__name__)

MAX_USER_DATA = 256 * 1024
MAX_URL = 512
MAX_PARTITION = 1 << 20


def advertised_url(settings: Settings) -> str:
    """This worker's API address as other workers reach it."""
    web = settings.web
    if web.advertised_url is not None:
        return web.advertised_url
    host = web.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        try:
            host = socket.gethostbyname(socket.gethostname())
        except OSError:
            host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{web.port}"


def valid_url(value: Any) -> str | None:
    """``value`` if it is an http(s) URL with a host and nothing else, else ``None``."""
    if not isinstance(value, str) or not 8 <= len(value) <= MAX_URL:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.username
            or parts.password or parts.query or parts.fragment):
        return None
    return value


def encode_member(url: str) -> bytes:
    return orjson.dumps({"v": 1, "api": url})


def decode_member(data: bytes | None) -> str | None:
    """The address a member advertised, or ``None`` (none, or not one we accept)."""
    if not data or len(data) > MAX_USER_DATA:
        return None
    try:
        found = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return valid_url(found.get("api")) if isinstance(found, dict) else None


def encode_owners(owners: Mapping[int, str]) -> bytes:
    return orjson.dumps({"v": 1, "owners": {str(p): url for p, url in sorted(owners.items())}})


def decode_owners(data: bytes | None) -> dict[int, str]:
    """Shard -> owner's address, as the leader sent it; entries that do not check out
    are left out (their lookups answer 503)."""
    if not data or len(data) > MAX_USER_DATA:
        return {}
    try:
        found = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    owners = found.get("owners") if isinstance(found, dict) else None
    if not isinstance(owners, dict):
        return {}
    decoded = {}
    for key, value in owners.items():
        url = valid_url(value)
        if url is not None and key.isdigit() and int(key) < MAX_PARTITION:
            decoded[int(key)] = url
    return decoded


class AdvertisingAssignor(RoundRobinPartitionAssignor):  # type: ignore[misc]
    """aiokafka's round robin, with each member's API address in its metadata and the
    owners of the routed topic's partitions in every assignment."""

    name = "roundrobin"

    def __init__(self, url: str, routed_topic: str) -> None:
        self.url = url
        self.routed_topic = routed_topic
        self.owners: dict[int, str] = {}

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(self.version, list(topics),
                                              encode_member(self.url))

    def assign(self, cluster: Any,
               members: Mapping[str, ConsumerProtocolMemberMetadata],
               ) -> dict[str, ConsumerProtocolMemberAssignment]:
        assigned = super().assign(cluster, members)
        urls = {member: decode_member(meta.user_data) for member, meta in members.items()}
        owners = {}
        for member, assignment in assigned.items():
            url = urls.get(member)
            for topic, partitions in assignment.assignment:
                if topic == self.routed_topic and url is not None:
                    owners.update(dict.fromkeys(partitions, url))
        data = encode_owners(owners)
        return {member: ConsumerProtocolMemberAssignment(assignment.version,
                                                         assignment.assignment, data)
                for member, assignment in assigned.items()}

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment,
                      ) -> None:
        self.owners = decode_owners(assignment.user_data)
        logger.info("shard owners: %s", {p: url for p, url in sorted(self.owners.items())})
