"""The ``fraudmon`` command line. Loads settings once and hands them down.

Kafka-facing commands import :mod:`streams` lazily, so ``monitor`` itself never
imports Faust.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from monitor.config import DEFAULT_CONFIG, Settings, load_settings
from monitor.errors import FraudMonitorError

logger = logging.getLogger(__name__)


def _settings(args: argparse.Namespace) -> Settings:
    config = args.config if args.config is not None else DEFAULT_CONFIG
    return load_settings(config)


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _cmd_config_check(args: argparse.Namespace) -> int:
    load_settings(args.file)
    print(f"{args.file}: ok")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from monitor.engine import Engine
    from monitor.replay import replay

    settings = _settings(args)
    summary = replay(Path(args.events), Path(args.out), Engine(settings),
                     settings.processing.max_event_bytes)
    print(summary.line())
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from monitor.samplefile import write_sample

    count = write_sample(Path(args.out), seed=args.seed, invalid=args.invalid)
    print(f"wrote {count} events to {args.out}")
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    settings = _settings(args)
    _configure_logging(settings.log_level)
    return run_worker(settings)


def _cmd_produce(args: argparse.Namespace) -> int:
    import asyncio

    from streams.produce import produce_file

    settings = _settings(args)
    sent, seconds = asyncio.run(produce_file(settings, Path(args.events), rate=args.rate))
    print(f"produced {sent} events in {seconds:.2f} s")
    return 0


def _cmd_kafka(args: argparse.Namespace) -> int:
    from streams.broker import main as broker_main

    argv = [args.action, "--dir", args.dir, "--port", str(args.port)]
    return broker_main(argv)


def _cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    settings = _settings(args)
    _configure_logging("WARNING")
    return run_demo(settings, Path(args.dir), port=args.port, once=args.once)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudmon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, default=None,
                       help="YAML settings file (default: configs/default.yaml)")
        return p

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="action", required=True)
    check = config_sub.add_parser("check", help="validate a settings file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_cmd_config_check)

    worker = with_config(sub.add_parser("worker", help="run the Faust worker"))
    worker.set_defaults(func=_cmd_worker)

    rep = with_config(sub.add_parser("replay", help="replay a JSONL file without Kafka"))
    rep.add_argument("events", help="JSONL file of {topic, key, value} records")
    rep.add_argument("--out", required=True, help="directory for the output files")
    rep.set_defaults(func=_cmd_replay)

    prod = with_config(sub.add_parser("produce", help="send a JSONL file into Kafka"))
    prod.add_argument("events")
    prod.add_argument("--rate", type=float, default=None, help="events per second (default: max)")
    prod.set_defaults(func=_cmd_produce)

    sample = sub.add_parser("sample", help="write the demo sample (JSONL)")
    sample.add_argument("--out", required=True)
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--invalid", action="store_true", help="include contract violations")
    sample.set_defaults(func=_cmd_sample)

    kafka = sub.add_parser("kafka", help="the local single-node Kafka broker")
    kafka.add_argument("action", choices=["up", "down", "status"])
    kafka.add_argument("--dir", default=".kafka")
    kafka.add_argument("--port", type=int, default=9092)
    kafka.set_defaults(func=_cmd_kafka)

    demo = with_config(sub.add_parser("demo", help="broker, worker and sample, end to end"))
    demo.add_argument("--dir", default=".demo", help="work directory of the demo")
    demo.add_argument("--port", type=int, default=9092, help="local broker port")
    demo.add_argument("--once", action="store_true",
                      help="exit when every sample event has its decision")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except FraudMonitorError as exc:
        print(f"fraudmon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
