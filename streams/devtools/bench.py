"""``fraudmon bench``: what this machine does with this code, measured in one run.

Starts a broker of its own on free ports, writes simulator traffic, and measures the
selected sections (all by default):

* ``ceiling``: a bare aiokafka consumer reading the pre-loaded input topics and
  validating each event (the Python I/O ceiling);
* ``replay``: the whole pipeline in-process from the file (the compute ceiling);
* ``e2e``: the pre-loaded events through one ``fraudmon worker`` subprocess until the
  last decision is on ``decisions``; events/s and worker CPU seconds per event;
* ``latency``: a fresh worker fed at half the e2e rate; produce to decision on the
  broker (the decisions topic stamps ``LogAppendTime``), p50/p95/p99 after a warm-up
  (``WARMUP_SECONDS``), and the p99 of all events as well;
* ``memory``: the e2e worker's peak RSS, state bytes per idle entity in-process, and the
  resident size of an engine after 1, 2 and 4 million fresh ids
  (:mod:`streams.devtools.freshids`: flat at ``processing.max_entities_per_shard``);
* ``scale``: 1 vs 2 workers on the same input, and a run where a second worker joins
  and the first leaves mid-stream, then every event's decisions are counted.

Rates over Kafka are the span from the first to the last decision appended to the
broker (worker start-up and group join excluded), so short runs are comparable.

One module over 400 lines: :class:`Bench`'s sections share one broker, one input file
and its worker processes (:mod:`streams.devtools.processes`) within one run, which is
what makes their figures comparable as ratios. A section that needs more than a method
goes in a module of its own that takes the :class:`Bench`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from monitor.config import KafkaSettings, Settings, load_settings
from monitor.contract.events import INPUT_KINDS, parse
from monitor.processing.engine import Engine
from monitor.tools.replay import replay
from monitor.tools.simulator.generate import simulate
from monitor.tools.simulator.log import write_jsonl
from monitor.tools.simulator.params import SimParams
from monitor.tools.statesize import measure
from streams.connection import client_options
from streams.devtools.broker import LocalBroker, free_port
from streams.devtools.processes import WorkerProcess, cpu_seconds, wait_for
from streams.devtools.produce import produce_file
from streams.devtools.storebench import store_figures
from streams.pipeline.outputs import Outputs, settle
from streams.topics import physical_names

SECTIONS = ("ceiling", "replay", "e2e", "latency", "memory", "scale", "alertstore")
SECURITY_KEYS = ("security_protocol", "sasl_mechanism", "sasl_username", "sasl_password_env",
                 "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password_env",
                 "ssl_check_hostname")
"""The ``kafka.*`` settings a ``--bootstrap`` broker is reached with (from ``--config``)."""
#: The latency section's producer sends what is due every this many seconds (as a client
#: lingering 5 ms would), in one request of producer batches built without a send per
#: record (:class:`streams.pipeline.outputs.Outputs`). Each event's clock starts at the time it was
#: due, so the wait for its tick, and any lag of the producer, count in its latency. With
#: a ``send`` per record and no linger, the producer took a third of a core and the
#: broker a whole one at 8,700 records/s, on the two cores the worker also runs on.
PRODUCER_TICK_SECONDS = 0.005
#: The latency section offers its rate this long before the measured seconds, and
#: reports the percentiles of the events due after it (and of all of them, apart). A
#: fresh worker and fresh topics pay once for what a running monitor has done already:
#: the first fetch and produce on each partition, the first model trees, the broker
#: writing to new partitions. In the first half second of a run the median latency was
#: 25 ms (after the e2e section) to 155 ms (on a fresh broker), the worker idle at times.
WARMUP_SECONDS = 5.0
class Bench:
    """One benchmark run: a broker, a work directory, an input file."""

    def __init__(self, workdir: Path, bootstrap: str, events: Path, count: int,
                 broker_pid: int | None = None, security: KafkaSettings | None = None,
                 ) -> None:
        self.workdir, self.bootstrap, self.events, self.count = workdir, bootstrap, events, count
        self.broker_pid = broker_pid  # the broker's CPU is measured when it is our own
        # A broker of the caller's (--bootstrap) is reached with the kafka.* security
        # settings of --config, by the bench's own clients and the workers it starts.
        base = security if security is not None else KafkaSettings()
        self.kafka = base.model_copy(update={"bootstrap_servers": bootstrap})
        self.security = {key: value for key, value in base.model_dump(mode="json").items()
                         if key in SECURITY_KEYS}

    def options(self) -> dict[str, Any]:
        """Bootstrap servers and security for one of the bench's own Kafka clients."""
        return client_options(self.kafka)

    def broker_cpu(self) -> float:
        return cpu_seconds(self.broker_pid) if self.broker_pid is not None else 0.0

    def config(self, name: str, partitions: int = 4) -> tuple[Path, Settings]:
        tag = f"{name}-{uuid.uuid4().hex[:6]}"
        data = {
            "kafka": {**self.security, "bootstrap_servers": self.bootstrap,
                      "topic_prefix": f"bench-{tag}.",
                      "app_id": f"bench-{tag}", "partitions": partitions},
            "processing": {"state_dir": str(self.workdir / tag / "state")},
            "web": {"port": free_port()},
            "log_level": "WARNING",
        }
        path = self.workdir / f"{tag}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path, load_settings(path)

    async def preload(self, settings: Settings, path: Path | None = None) -> float:
        """Create the topics (decisions stamped by the broker) and load the input."""
        admin = AIOKafkaAdminClient(**self.options())
        await admin.start()
        try:
            stamped = {"message.timestamp.type": "LogAppendTime"}
            await admin.create_topics([
                NewTopic(name, settings.kafka.partitions, 1,
                         topic_configs=stamped if logical == "decisions" else {})
                for logical, name in physical_names(settings).items()])
        finally:
            await admin.close()
        if path is None:
            return 0.0
        sent, seconds = await produce_file(settings, path)
        return sent / seconds

    def start(self, config: Path, name: str) -> WorkerProcess:
        return WorkerProcess(config, self.workdir / f"{name}.log")

    async def ready(self, *workers: WorkerProcess) -> None:
        async def all_ready() -> bool:
            return all(worker.ready() for worker in workers)
        await wait_for(all_ready, 120, "workers /readyz")

    async def decisions(self, settings: Settings, expected: int, limit: float,
                        on_progress: Callable[[int], None] | None = None,
                        since: float = 0.0) -> tuple[int, float, float, Counter[bytes]]:
        """Read ``decisions`` until ``expected`` distinct events have one; returns the
        count, first and last append times, and decisions per event id. ``since`` (unix
        seconds): count only the decisions appended from then on, and start there."""
        topic = settings.kafka.topic("decisions")
        consumer = AIOKafkaConsumer(topic, **self.options(),
                                    auto_offset_reset="earliest", group_id=None,
                                    enable_auto_commit=False, fetch_max_bytes=16 << 20)
        await consumer.start()
        per_event: Counter[bytes] = Counter()
        first, last, counted = float("inf"), 0.0, 0
        deadline = time.monotonic() + limit
        try:
            while len(per_event) < expected:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bench: {len(per_event)} of {expected} decisions "
                                       f"after {limit:.0f} s")
                batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
                for messages in batch.values():
                    for message in messages:
                        per_event[message.key or b""] += 1
                        appended = message.timestamp / 1000
                        last = max(last, appended)
                        if appended >= since:
                            first = min(first, appended)
                            counted += 1
                if on_progress is not None:
                    on_progress(len(per_event))
        finally:
            await consumer.stop()
        return counted, (since or first), last, per_event

    async def ceiling(self, settings: Settings) -> dict[str, float]:
        """Bare aiokafka: read the pre-loaded inputs and validate every event."""
        kinds = {settings.kafka.topic(kind): kind for kind in INPUT_KINDS}
        consumer = AIOKafkaConsumer(*kinds, **self.options(),
                                    auto_offset_reset="earliest", group_id=None,
                                    enable_auto_commit=False, fetch_max_bytes=16 << 20)
        await consumer.start()
        seen, started, cpu = 0, 0.0, 0.0
        try:
            while seen < self.count:
                batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
                if batch and not started:
                    started, cpu = time.perf_counter(), time.process_time()
                for tp, messages in batch.items():
                    kind = kinds[tp.topic]
                    for message in messages:
                        parse(kind, message.value)
                    seen += len(messages)
            seconds = time.perf_counter() - started
        finally:
            await consumer.stop()
        return {"ceiling_events_per_second": seen / seconds,
                "ceiling_cpu_us_per_event": (time.process_time() - cpu) / seen * 1e6}

    async def e2e(self) -> dict[str, float]:
        config, settings = self.config("e2e")
        load_rate = await self.preload(settings, self.events)
        result: dict[str, float] = {"preload_events_per_second": load_rate}
        result.update(await self.ceiling(settings))
        worker = self.start(config, "e2e")
        try:
            await self.ready(worker)
            cpu, broker_cpu = worker.cpu(), self.broker_cpu()
            total, first, last, _ = await self.decisions(settings, self.count, 1800)
            spent = worker.cpu() - cpu
            if self.broker_pid is not None:
                # The broker shares the machine's two cores with the worker.
                result["broker_cpu_us_per_event"] = \
                    (self.broker_cpu() - broker_cpu) / self.count * 1e6
            result.update({"decisions": total, "seconds": last - first,
                           "e2e_events_per_second": self.count / max(last - first, 1e-3),
                           "cpu_us_per_event": spent / self.count * 1e6,
                           "peak_rss_bytes": worker.peak_rss()})
        finally:
            worker.stop()
        return result

    async def latency(self, rate: float, seconds: float = 20.0,
                      warmup: float = WARMUP_SECONDS) -> dict[str, float]:
        """Offer ``rate`` events/s to a fresh worker; produce-to-decision percentiles of
        the events due after the first ``warmup`` seconds (and of all, as well)."""
        config, settings = self.config("latency")
        await self.preload(settings)
        lines = [orjson.loads(line) for line in self.events.read_bytes().splitlines()]
        lines = lines[:max(1, min(len(lines), int(rate * (warmup + seconds))))]
        worker = self.start(config, "latency")
        sent_at: dict[bytes, float] = {}
        try:
            # The producer below must not stall: a full collection in this process
            # walked the 200,000 loaded events (200-330 ms, near the end of every run at
            # 9,000 events/s), and the events due meanwhile counted that as latency.
            gc.collect()
            gc.freeze()
            await self.ready(worker)
            producer = AIOKafkaProducer(**self.options(), acks="all",
                                        linger_ms=0)
            await producer.start()
            outputs = Outputs(producer)
            topics = [settings.kafka.topic(kind) for kind in INPUT_KINDS]
            await outputs.prepare(*topics)
            loop = asyncio.get_running_loop()
            began, wall = loop.time(), time.time()
            cpu: tuple[float, float, float, float] | None = None
            try:
                sent = 0
                while sent < len(lines):
                    now = loop.time()
                    if cpu is None and now - began >= warmup:
                        cpu = (worker.cpu(), self.broker_cpu(), time.process_time(), now)
                    due = min(len(lines), int((now - began) * rate) + 1)
                    for number in range(sent, due):  # what is due by now, paced to the rate
                        record = lines[number]
                        value = record["value"]
                        sent_at[value["event_id"].encode()] = wall + number / rate
                        outputs.add(settings.kafka.topic(record["topic"]),
                                    record["key"].encode(), orjson.dumps(value))
                    sent = due
                    await outputs.send()
                    await asyncio.sleep(PRODUCER_TICK_SECONDS)
                await settle(outputs.take())
                # Who used the two cores while the load was measured (CPU s per wall s).
                shares: dict[str, float] = {}
                if cpu is not None:
                    offered = loop.time() - cpu[3]
                    shares = {"worker_cpu_share": (worker.cpu() - cpu[0]) / offered,
                              "producer_cpu_share": (time.process_time() - cpu[2]) / offered}
                    if self.broker_pid is not None:
                        shares["broker_cpu_share"] = (self.broker_cpu() - cpu[1]) / offered
            finally:
                await producer.stop()
            latencies = await self._latencies(settings, sent_at)
        finally:
            worker.stop()
            gc.unfreeze()
        # Each event's due time (s into the run) and latency (ms), for finding the tail.
        order = sorted(latencies, key=sent_at.__getitem__)
        (self.workdir / "latency.tsv").write_text("".join(
            f"{sent_at[key] - wall:.4f}\t{latencies[key] * 1000:.2f}\n" for key in order))
        measured = sorted(latencies[key] for key in order if sent_at[key] - wall >= warmup)
        every = sorted(latencies.values())
        if not measured:
            raise RuntimeError(f"bench: no event was due after the {warmup:.0f} s warm-up")

        def pct(delays: list[float], q: float) -> float:
            return delays[min(len(delays) - 1, int(q * len(delays)))] * 1000

        return {"offered_events_per_second": rate, "warmup_seconds": warmup,
                "events": len(measured), "p50_ms": pct(measured, 0.50),
                "p95_ms": pct(measured, 0.95), "p99_ms": pct(measured, 0.99),
                "max_ms": measured[-1] * 1000, **shares,
                "events_with_warmup": len(every), "p99_ms_with_warmup": pct(every, 0.99),
                "max_ms_with_warmup": every[-1] * 1000}

    async def _latencies(self, settings: Settings, sent_at: dict[bytes, float],
                         ) -> dict[bytes, float]:
        topic = settings.kafka.topic("decisions")
        consumer = AIOKafkaConsumer(topic, **self.options(),
                                    auto_offset_reset="earliest", group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        delays: dict[bytes, float] = {}
        deadline = time.monotonic() + 300
        try:
            while len(delays) < len(sent_at) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
                for messages in batch.values():
                    for message in messages:
                        key = message.key or b""
                        if key in sent_at and key not in delays:
                            delays[key] = message.timestamp / 1000 - sent_at[key]
        finally:
            await consumer.stop()
        return delays

    async def scale(self) -> dict[str, float]:
        """1 worker vs 2 on 4 partitions, then a join and a leave mid-run.

        Throughput counts the decisions from the moment every worker is ready: a
        worker that gets the group's first assignment alone consumes the pre-loaded
        input until the second joins (seconds of a 200,000-event run on a broker that
        does not wait for a new group's members), which would count as two workers'
        time. The workers are started together, and the bench's own broker waits
        Kafka's default 3 s for a new group's members.
        """
        result: dict[str, float] = {}
        for workers in (1, 2):
            config, settings = self.config(f"scale{workers}")
            await self.preload(settings, self.events)
            running = [self.start(config, f"scale{workers}-{n}")
                       for n in range(workers)]
            try:
                await self.ready(*running)
                cpus = [worker.cpu() for worker in running]
                since = time.time()
                counted, first, last, _ = await self.decisions(settings, self.count, 1800,
                                                               since=since)
                result[f"workers_{workers}_events_per_second"] = \
                    counted / (last - first) if counted else 0.0
                result[f"workers_{workers}_decisions_counted"] = counted
                for n, worker in enumerate(running):
                    result[f"workers_{workers}_cpu_seconds_{n}"] = worker.cpu() - cpus[n]
            finally:
                for worker in running:
                    worker.stop()
        result["speedup"] = (result["workers_2_events_per_second"]
                             / max(result["workers_1_events_per_second"], 1e-9))
        result.update(await self._rebalance())
        return result

    async def _rebalance(self) -> dict[str, float]:
        config, settings = self.config("rebalance")
        await self.preload(settings, self.events)
        first_worker = self.start(config, "rebalance-a")
        await self.ready(first_worker)
        second: list[WorkerProcess] = []
        left: list[bool] = []

        def progress(done: int) -> None:
            if not second and done >= self.count // 3:
                second.append(self.start(config, "rebalance-b"))
            elif second and not left and done >= 2 * self.count // 3:
                left.append(True)
                first_worker.stop()

        try:
            _, _, _, per_event = await self.decisions(settings, self.count, 1800, progress)
            await asyncio.sleep(3)  # let in-flight repeats land before the final count
            total, _, _, per_event = await self.decisions(settings, self.count, 300)
        finally:
            first_worker.stop()
            for worker in second:
                worker.stop()
        repeated = sum(1 for n in per_event.values() if n > 1)
        return {"rebalance_events": self.count, "rebalance_with_decision": len(per_event),
                "rebalance_repeated": repeated, "rebalance_decisions": total,
                "rebalance_second_joined": float(bool(second)),
                "rebalance_first_left": float(bool(left))}


def _input(path: Path, count: int, seed: int) -> int:
    """The first ``count`` events of a full simulation (all patterns on)."""
    records = simulate(SimParams(seed=seed)).records[:count]
    write_jsonl(records, path)
    return len(records)


def _replay(path: Path, out: Path) -> dict[str, float]:
    settings = load_settings(None)
    cpu = time.process_time()
    summary = replay(path, out, Engine(settings), settings.processing.max_event_bytes)
    return {"events_per_second": summary.events_per_second,
            "cpu_us_per_event": (time.process_time() - cpu) / summary.events * 1e6}


async def _kafka_sections(bench: Bench, only: set[str], results: dict[str, Any],
                          rate: float | None = None) -> None:
    if only & {"ceiling", "e2e", "memory"} or ("latency" in only and rate is None):
        e2e = await bench.e2e()
        results["ceiling"] = {"events_per_second": e2e.pop("ceiling_events_per_second"),
                              "cpu_us_per_event": e2e.pop("ceiling_cpu_us_per_event")}
        results["e2e"] = e2e
    if "latency" in only:
        results["latency"] = await bench.latency(
            rate if rate is not None else results["e2e"]["e2e_events_per_second"] / 2)
    if "scale" in only:
        results["scale"] = await bench.scale()


FRESH_IDS = 4_000_000
"""Fresh ids the memory section floods an engine with (a figure per million)."""


def fresh_ids_figures(ids: int) -> dict[str, float]:
    """Entities and resident bytes after each million fresh ids, from a process of its own."""
    command = [sys.executable, "-m", "streams.devtools.freshids", str(ids)]
    done = subprocess.run(command, capture_output=True, check=True, text=True)  # noqa: S603
    figures: dict[str, float] = {}
    for line in done.stdout.splitlines():
        figure = orjson.loads(line)
        millions = figure["ids"] // 1_000_000
        figures[f"fresh_{millions}m_ids_resident_bytes"] = figure["resident_bytes"]
        figures[f"fresh_{millions}m_ids_entities"] = figure["entities"]
        figures[f"fresh_{millions}m_ids_seconds"] = figure["seconds"]
    return figures


def run(events: int, only: set[str], seed: int = 7, entities: int = 200_000,
        keep: Path | None = None, bootstrap: str | None = None,
        rate: float | None = None, security: KafkaSettings | None = None,
        alerts: int = 1_000_000, store_url: str | None = None) -> dict[str, Any]:
    """Run the selected sections on a broker of its own (or ``bootstrap``'s). ``rate``:
    the latency section's offered events/s (default: half the e2e throughput, measured
    first)."""
    results: dict[str, Any] = {"events": events, "sections": sorted(only)}
    with tempfile.TemporaryDirectory(prefix="fraudmon-bench-") as folder:
        workdir = keep or Path(folder)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "events.jsonl"
        count = 0
        if only - {"alertstore"}:
            results["events"] = count = _input(path, events, seed)
        if "replay" in only:
            results["replay"] = _replay(path, workdir / "replay")
        if "alertstore" in only:
            results.update(store_figures(workdir / "alertstore", alerts, store_url))
        kafka_sections = only - {"replay", "alertstore"}
        if kafka_sections and bootstrap is not None:
            asyncio.run(_kafka_sections(Bench(workdir, bootstrap, path, count,
                                              security=security), only, results, rate))
        elif kafka_sections:
            # Kafka's default wait for a new group's members: workers started together
            # (scale) share the first assignment instead of one consuming alone at first.
            broker = LocalBroker(workdir / "kafka", port=free_port(),
                                 controller_port=free_port(), initial_rebalance_delay_ms=3000)
            broker.start()
            try:
                bench = Bench(workdir, broker.bootstrap, path, count, broker.pid)
                asyncio.run(_kafka_sections(bench, only, results, rate))
            finally:
                broker.stop()
        if "memory" in only:
            size = measure(load_settings(None), entities)
            results["memory"] = {"worker_peak_rss_bytes": results["e2e"]["peak_rss_bytes"],
                                 "entities": size.entities,
                                 "state_bytes_per_idle_entity": size.traced_bytes_per_entity,
                                 "pickled_bytes_per_idle_entity": size.pickled_bytes_per_entity,
                                 "bounded_window_bytes": size.bounded_bytes,
                                 **fresh_ids_figures(FRESH_IDS)}
    if "e2e" in results and "replay" in results:
        rate = results["e2e"]["e2e_events_per_second"]
        results["ratios"] = {"e2e_over_ceiling": rate / results["ceiling"]["events_per_second"],
                             "e2e_over_replay": rate / results["replay"]["events_per_second"]}
    return results


def table(results: dict[str, Any]) -> str:
    """The figures as an aligned two-column table."""
    rows: list[tuple[str, str]] = []
    for section, figures in results.items():
        if not isinstance(figures, dict):
            continue
        for name, value in figures.items():
            text = f"{value:,.3f}" if isinstance(value, float) and abs(value) < 100 \
                else f"{value:,.0f}"
            rows.append((f"{section}.{name}", text))
    width = max((len(name) for name, _ in rows), default=10)
    return "\n".join(f"{name:<{width}}  {text:>16}" for name, text in rows)


def main(events: int, only: set[str], seed: int, entities: int, keep: Path | None,
         bootstrap: str | None = None, rate: float | None = None,
         security: KafkaSettings | None = None, alerts: int = 1_000_000,
         store_url: str | None = None) -> int:
    unknown = only - set(SECTIONS)
    if unknown:
        print(f"fraudmon bench: unknown sections {sorted(unknown)}; "
              f"choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        results = run(events, only, seed, entities, keep, bootstrap, rate, security, alerts,
                      store_url)
        print(table(results))
        print(orjson.dumps(results).decode())
        return 0
    return 130
