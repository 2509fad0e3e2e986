"""``fraudmon produce``: send a replay-format JSONL file into Kafka with the contract's keys."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from monitor.config import Settings, load_settings
from monitor.contract.events import INPUT_KINDS, from_dict, partition_key
from monitor.errors import InvalidEvent, ReplayInputError
from monitor.tools.simulator.log import write_jsonl
from streams.connection import client_options, preflight
from streams.topics import ensure_topics


def _message(record: Any) -> tuple[str, bytes | None, bytes]:
    """(kind, key, value bytes) of one replay record; contract keys for valid events."""
    if not isinstance(record, dict) or record.get("topic") not in INPUT_KINDS:
        raise ReplayInputError("every line needs a 'topic' of payments, loan-disbursals, labels")
    kind = record["topic"]
    value = (str(record["raw"]).encode() if "raw" in record
             else orjson.dumps(record.get("value")))
    key = record.get("key")
    if key is None and "value" in record:
        try:
            key = partition_key(from_dict(kind, record["value"]))
        except InvalidEvent:
            key = None
    return kind, key.encode() if isinstance(key, str) else None, value


async def produce_file(settings: Settings, path: Path, rate: float | None = None,
                       ) -> tuple[int, float]:
    """Send every line of ``path``; pace to ``rate`` events/s when given."""
    try:
        content = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise ReplayInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    lines = [line for line in content.splitlines() if line.strip()]
    await preflight(settings.kafka)
    producer = AIOKafkaProducer(**client_options(settings.kafka),
                                acks="all", linger_ms=5)
    await producer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    wall = time.perf_counter()
    try:
        for sent, line in enumerate(lines):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ReplayInputError(f"{path}: line {sent + 1} is not JSON") from exc
            kind, key, value = _message(record)
            if rate:
                delay = started + sent / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing to the requested rate
            await producer.send(settings.kafka.topic(kind), value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return len(lines), time.perf_counter() - wall


def produce_records(records: list[dict[str, Any]], bootstrap: str, rate: float | None,
                    path: Path | None = None) -> tuple[int, float]:
    """Send ``records`` (already written to ``path``, or via a temporary file) to Kafka,
    creating the monitor's topics first if the broker has none yet (``fraudmon simulate
    --kafka``); the number sent and the seconds it took."""
    settings = load_settings(None, kafka={"bootstrap_servers": bootstrap})

    async def send(source: Path) -> tuple[int, float]:
        await ensure_topics(settings)
        return await produce_file(settings, source, rate=rate)

    if path is not None:
        return asyncio.run(send(path))
    with tempfile.TemporaryDirectory(prefix="fraudmon-simulate-") as folder:
        temporary = Path(folder) / "events.jsonl"
        write_jsonl(records, temporary)
        return asyncio.run(send(temporary))
