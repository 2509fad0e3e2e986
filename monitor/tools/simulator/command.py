"""``fraudmon simulate``: write labelled traffic and its truth, or stream it into Kafka.

With ``--kafka`` the records are sent by a function the command line hands in
(:func:`streams.devtools.produce.produce_records`): the simulator never imports Kafka clients.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from monitor.contract.vocabulary import PATTERNS
from monitor.errors import ConfigError, ReplayOutputError
from monitor.tools.simulator.clock import DEFAULT_START
from monitor.tools.simulator.generate import Simulation, simulate
from monitor.tools.simulator.log import Record, write_jsonl
from monitor.tools.simulator.params import SimParams
from monitor.tools.simulator.truth import write_truth


def _start(text: str) -> datetime:
    try:
        start = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected an RFC 3339 time with an offset") from exc
    if start.tzinfo is None:
        raise argparse.ArgumentTypeError("the start time needs an offset, e.g. +08:00")
    return start


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="events file (replay JSONL); required unless --kafka is given")
    parser.add_argument("--truth", type=Path, default=None, help="ground-truth JSON file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--start", type=_start, default=DEFAULT_START,
                        help="first instant, RFC 3339 (default 2026-01-01T00:00:00+08:00)")
    parser.add_argument("--reporting-line", type=float, default=50_000.0,
                        help="the line structurers stay under, in yuan (default 50000)")
    parser.add_argument("--label-share", type=float, default=0.3,
                        help="share of positives an analyst confirms (default 0.3)")
    parser.add_argument("--cleared-share", type=float, default=0.05,
                        help="share of look-alikes an analyst clears (default 0.05)")
    parser.add_argument("--kafka", metavar="BOOTSTRAP", default=None,
                        help="also send the events to this Kafka bootstrap server")
    parser.add_argument("--rate", type=float, default=None,
                        help="with --kafka: events per second (default: as fast as possible)")


def _params(args: argparse.Namespace) -> SimParams:
    params = SimParams(seed=args.seed, days=args.days, people=args.people, start=args.start,
                       reporting_line=args.reporting_line, label_share=args.label_share,
                       cleared_share=args.cleared_share)
    try:
        params.validate()
    except ValueError as exc:
        raise ConfigError(f"simulate: {exc}") from exc
    return params


def summary(simulation: Simulation, seconds: float, size: int | None) -> str:
    """One line: volumes, speed, size, and how many positives each pattern has."""
    topics = Counter(record["topic"] for record in simulation.records)
    count = len(simulation.records)
    kinds = ", ".join(f"{topics[t]:,} {t}" for t in ("payments", "loan-disbursals", "labels"))
    positives = ", ".join(f"{p} {len(simulation.truth['patterns'][p]['positives'])}"
                          for p in PATTERNS)
    lookalikes = sum(len(v) for v in simulation.truth["lookalikes"].values())
    written = f", {size / 1e6:,.1f} MB" if size is not None else ""
    return (f"simulate: {count:,} events ({kinds}) in {seconds:.1f} s "
            f"({count / max(seconds, 1e-9):,.0f} events/s){written}; "
            f"positives: {positives}; {lookalikes:,} look-alikes")


Send = Callable[[list[Record], str, "float | None", "Path | None"], tuple[int, float]]
"""Sends records to Kafka (``streams.devtools.produce.produce_records``, handed in by the
command line): the records, the bootstrap servers, the rate, the file already written."""


def main_simulate(args: argparse.Namespace, send: Send | None = None) -> int:
    if args.out is None and args.kafka is None:
        raise ConfigError("simulate: give --out FILE, --kafka BOOTSTRAP, or both")
    params = _params(args)
    started = time.perf_counter()
    simulation = simulate(params)
    size = None
    try:
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            size = write_jsonl(simulation.records, args.out)
        if args.truth is not None:
            args.truth.parent.mkdir(parents=True, exist_ok=True)
            write_truth(simulation.truth, args.truth)
    except OSError as exc:
        raise ReplayOutputError(f"simulate: cannot write: {exc.strerror or exc}") from exc
    print(summary(simulation, time.perf_counter() - started, size))
    if args.kafka is not None:
        if send is None:
            raise ConfigError("simulate: --kafka needs the command line's Kafka producer")
        sent, seconds = send(simulation.records, args.kafka, args.rate, args.out)
        print(f"produced {sent:,} events to {args.kafka} in {seconds:.2f} s")
    return 0
