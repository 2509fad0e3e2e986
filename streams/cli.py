"""The ``fraudmon`` command line: the composition root. Loads settings once and hands
them down.

It is the one module that may import every layer (docs/architecture.md). Kafka-facing
commands import their modules lazily, so offline commands (replay, evaluate, simulate)
start without loading Faust or aiokafka.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from monitor.config import DEFAULT_CONFIG, Settings, load_settings
from monitor.errors import FraudMonitorError
from monitor.runtime import gcpolicy
from monitor.tools import evaluate, importers
from monitor.tools.simulator import command as simulate_command

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
    from monitor.processing.engine import Engine
    from monitor.tools.replay import replay

    settings = _settings(args)
    gcpolicy.configure()  # a process-wide policy: set by the process's entry point
    summary = replay(Path(args.events), Path(args.out), Engine(settings),
                     settings.processing.max_event_bytes)
    print(summary.line())
    return 0


def _cmd_cost(args: argparse.Namespace) -> int:
    from monitor.tools.cost import main_cost

    gcpolicy.configure()
    return main_cost(args, _settings(args))


def _cmd_bench(args: argparse.Namespace) -> int:
    from streams.devtools.bench import main as bench_main

    _configure_logging("WARNING")
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    # A broker of the caller's is reached with the kafka.* security of --config (or of
    # FRAUDMON_KAFKA__* variables), as every other client.
    security = _settings(args).kafka if args.bootstrap is not None else None
    return bench_main(args.events, only, args.seed, args.entities, args.keep, args.bootstrap,
                      args.rate, security, args.alerts, args.store_url)


def _cmd_alert_store(args: argparse.Namespace) -> int:
    from streams.alertstore import run_alert_store

    settings = _settings(args)
    _configure_logging(settings.log_level)
    return run_alert_store(settings)


def _cmd_sample(args: argparse.Namespace) -> int:
    from monitor.tools.samplefile import write_sample

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

    from streams.devtools.produce import produce_file

    settings = _settings(args)
    sent, seconds = asyncio.run(produce_file(settings, Path(args.events), rate=args.rate))
    print(f"produced {sent} events in {seconds:.2f} s")
    return 0


def _cmd_kafka(args: argparse.Namespace) -> int:
    from streams.devtools.kafka_command import main as broker_main

    argv = [args.action, "--dir", args.dir, "--port", str(args.port)]
    if args.secure:
        argv.append("--secure")
    return broker_main(argv)


def _cmd_demo(args: argparse.Namespace) -> int:
    from streams.devtools.demo import run_demo

    settings = _settings(args)
    _configure_logging("WARNING")
    return run_demo(settings, Path(args.dir), port=args.port, once=args.once)


def _cmd_webhook_receiver(args: argparse.Namespace) -> int:
    from monitor.config import secret_from_env
    from monitor.errors import ConfigError
    from monitor.outputs.webhooks.receiver import Receiver, serve
    from monitor.outputs.webhooks.signing import parse_secrets

    _configure_logging("INFO")
    secret = secret_from_env(args.secret_env)
    if secret is None:
        raise ConfigError(f"set {args.secret_env} to the receiver's whsec_ secret(s)")
    try:
        keys = parse_secrets(secret.get_secret_value())
    except ValueError as exc:
        raise ConfigError(f"{args.secret_env}: {exc}") from None
    token = secret_from_env(args.alertmanager_token_env) if args.alertmanager_token_env else None
    if args.alertmanager_token_env and token is None:
        raise ConfigError(f"{args.alertmanager_token_env} is not set")
    receiver = Receiver(keys, store=args.store, tolerance=args.tolerance,
                        alertmanager_token=token, echo=lambda line: print(line, flush=True))
    serve(receiver, args.host, args.port)
    return 0


def _cmd_webhook_secret(args: argparse.Namespace) -> int:
    from monitor.outputs.webhooks.signing import generate_secret

    print(generate_secret())
    return 0


def _cmd_native(args: argparse.Namespace) -> int:
    from monitor.runtime import native

    if args.action == "build":
        return 0 if native.build(force=args.force) else 1
    if args.action == "clean":
        native.clean()
        return 0
    fresh, reason = native.status()
    print(reason)
    return 0 if fresh else 1


def _cmd_openapi(args: argparse.Namespace) -> int:
    import json

    from monitor.interfaces.openapi import document

    settings = _settings(args)
    text = json.dumps(document(settings.api.page_size, settings.api.max_page_size), indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from streams.devtools.produce import produce_records

    return simulate_command.main_simulate(args, produce_records)


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

    store = with_config(sub.add_parser(
        "alert-store", help="feed the alert store from the alerts topic (no worker)"))
    store.set_defaults(func=_cmd_alert_store)

    rep = with_config(sub.add_parser("replay", help="replay a JSONL file without Kafka"))
    rep.add_argument("events", help="JSONL file of {topic, key, value} records")
    rep.add_argument("--out", required=True, help="directory for the output files")
    rep.set_defaults(func=_cmd_replay)

    cost = with_config(sub.add_parser(
        "cost", help="replay a file and report detection cost per entity family"))
    cost.add_argument("events", type=Path, help="JSONL file in the replay format")
    cost.set_defaults(func=_cmd_cost)

    prod = with_config(sub.add_parser("produce", help="send a JSONL file into Kafka"))
    prod.add_argument("events")
    prod.add_argument("--rate", type=float, default=None, help="events per second (default: max)")
    prod.set_defaults(func=_cmd_produce)

    bench = with_config(sub.add_parser(
        "bench", help="measure throughput, latency, memory, scale-out, alert store pages"))
    bench.add_argument("--events", type=int, default=200_000,
                       help="simulator events to push through (default 200000)")
    bench.add_argument("--only", default="ceiling,replay,e2e,latency,memory,scale,alertstore",
                       help="comma-separated sections (default: all)")
    bench.add_argument("--seed", type=int, default=7, help="simulator seed")
    bench.add_argument("--entities", type=int, default=200_000,
                       help="idle entities built in-process for the state-size figure")
    bench.add_argument("--keep", type=Path, default=None,
                       help="work directory to keep (logs, input) instead of a temporary one")
    bench.add_argument("--bootstrap", default=None,
                       help="use this running broker instead of starting one on free ports "
                            "(with the kafka.* security settings of --config)")
    bench.add_argument("--alerts", type=int, default=1_000_000,
                       help="alerts the alertstore section fills the store with")
    bench.add_argument("--store-url", default=None,
                       help="alertstore on this PostgreSQL too (password: PGPASSWORD); "
                            "default: a server of its own when PostgreSQL is installed")
    bench.add_argument("--rate", type=float, default=None,
                       help="events/s the latency section offers (default: half the e2e "
                            "throughput, measured first)")
    bench.set_defaults(func=_cmd_bench)

    sample = sub.add_parser("sample", help="write the demo sample (JSONL)")
    sample.add_argument("--out", required=True)
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--invalid", action="store_true", help="include contract violations")
    sample.set_defaults(func=_cmd_sample)

    kafka = sub.add_parser("kafka", help="the local single-node Kafka broker")
    kafka.add_argument("action", choices=["up", "down", "status"])
    kafka.add_argument("--dir", default=".kafka")
    kafka.add_argument("--port", type=int, default=9092)
    kafka.add_argument("--secure", action="store_true",
                       help="also SASL_SSL (port + 2) and mutual TLS (port + 3) listeners, "
                            "with a local CA; prints the settings to use")
    kafka.set_defaults(func=_cmd_kafka)

    receiver = sub.add_parser("webhook-receiver",
                              help="receive, verify and print the monitor's webhooks")
    receiver.add_argument("--port", type=int, required=True)
    receiver.add_argument("--host", default="127.0.0.1")
    receiver.add_argument("--secret-env", default="FRAUDMON_WEBHOOK_SECRET",
                          help="environment variable holding the whsec_ secret(s)")
    receiver.add_argument("--store", type=Path, default=None,
                          help="append what arrives to this JSONL file")
    receiver.add_argument("--tolerance", type=float, default=300.0,
                          help="accepted webhook-timestamp skew in seconds")
    receiver.add_argument("--alertmanager-token-env", default=None,
                          help="environment variable holding the bearer token Alertmanager "
                               "must send to /alertmanager (default: no token checked)")
    receiver.set_defaults(func=_cmd_webhook_receiver)

    secret = sub.add_parser("webhook-secret", help="print a new whsec_ webhook secret")
    secret.set_defaults(func=_cmd_webhook_secret)

    native = sub.add_parser("native", help="the compiled hot path (mypyc): build, status, clean")
    native.add_argument("action", choices=("build", "status", "clean"))
    native.add_argument("--force", action="store_true", help="rebuild even when fresh")
    native.set_defaults(func=_cmd_native)

    openapi = with_config(sub.add_parser("openapi", help="print the HTTP API's OpenAPI document"))
    openapi.add_argument("--out", default=None, help="write it to this file instead")
    openapi.set_defaults(func=_cmd_openapi)

    demo = with_config(sub.add_parser("demo", help="broker, worker and sample, end to end"))
    demo.add_argument("--dir", default=".demo", help="work directory of the demo")
    demo.add_argument("--port", type=int, default=9092, help="local broker port")
    demo.add_argument("--once", action="store_true",
                      help="exit when every sample event has its decision")
    demo.set_defaults(func=_cmd_demo)
    simulation = sub.add_parser("simulate", help="write labelled synthetic traffic and its truth")
    simulate_command.add_arguments(simulation)
    simulation.set_defaults(func=_simulate)

    evaluation = sub.add_parser("evaluate", help="score alerts against a ground-truth file")
    evaluate.add_arguments(evaluation)
    evaluation.set_defaults(func=evaluate.main_evaluate)

    import_csv = sub.add_parser("import-csv", help="convert a third-party CSV export to events")
    importers.add_arguments(import_csv)
    import_csv.set_defaults(func=importers.main_import_csv)
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
