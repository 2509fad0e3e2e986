"""``fraudmon kafka up|down|status``: the local broker from the command line.

Also ``python -m streams.devtools.kafka_command up|down|status [--port 9092]
[--controller-port N] [--dir .kafka] [--kafka-version V]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from streams.devtools.broker import LocalBroker
from streams.devtools.certs import USER
from streams.devtools.jars import BrokerError, resolve_kafka_version


def main(argv: list[str] | None = None) -> int:
    """Run ``up``, ``down`` or ``status`` for a local broker; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="fraudmon kafka",
        description="Local single-node Kafka (KRaft) broker."
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    parser.add_argument("--controller-port", type=int, default=None, help="default: port + 1")
    parser.add_argument("--dir", type=Path, default=Path(".kafka"), help="work directory")
    parser.add_argument("--kafka-version", default=None, help=f"default {resolve_kafka_version()}")
    parser.add_argument("--timeout", type=float, default=None, help="s (default: up 90, down 30)")
    parser.add_argument("--secure", action="store_true",
                        help="also SASL_SSL (port + 2) and mutual TLS (port + 3) listeners; "
                             "prints the settings to use")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    broker = LocalBroker(
        args.dir, port=args.port, controller_port=args.controller_port,
        kafka_version=args.kafka_version, secure=args.secure,
    )  # fmt: skip
    if (args.secure and args.command == "up" and not broker.credentials.keystore.is_file()
            and (broker.data_dir / "meta.properties").is_file()):
        print(f"error: {broker.workdir} was formatted without --secure (no SCRAM users); "
              "use a fresh --dir", file=sys.stderr)
        return 1
    try:
        command, default_timeout = _COMMANDS[args.command]
        return command(broker, args.timeout if args.timeout is not None else default_timeout)
    except BrokerError as exc:
        print(f"error: {exc.summary}", file=sys.stderr)
        return 1


def _up(broker: LocalBroker, timeout: float) -> int:
    was_running = broker.is_running()
    started = time.monotonic()
    broker.start(timeout=timeout)
    took = time.monotonic() - started
    if was_running or not broker.is_running():
        owner = f"pid {broker.pid}" if broker.is_running() else "not started from this --dir"
        print(f"Kafka already up at {broker.bootstrap} ({owner})")
    else:
        print(
            f"Kafka {broker.kafka_version} up at {broker.bootstrap} in {took:.1f}s"
            f" (pid {broker.pid}, log {broker.log_path})"
        )
    if broker.secure:
        print(secure_settings(broker))
    return 0


def secure_settings(broker: LocalBroker) -> str:
    """The configuration a worker needs for the secured listeners, as YAML to paste."""
    made = broker.credentials
    return "\n".join([
        "# SASL_SSL with SCRAM-SHA-512 (PLAIN and SCRAM-SHA-256 work too):",
        "kafka:",
        f'  bootstrap_servers: "{broker.host}:{broker.sasl_ssl_port}"',
        "  security_protocol: SASL_SSL",
        "  sasl_mechanism: SCRAM-SHA-512",
        f"  sasl_username: {USER}",
        "  sasl_password_env: FRAUDMON_KAFKA_PASSWORD",
        f"  ssl_cafile: {made.ca}",
        f"# export FRAUDMON_KAFKA_PASSWORD=$(cat {made.folder / 'password'})",
        "# mutual TLS instead:",
        f'#   bootstrap_servers: "{broker.host}:{broker.ssl_port}"',
        "#   security_protocol: SSL",
        f"#   ssl_cafile: {made.ca}",
        f"#   ssl_certfile: {made.client_cert}",
        f"#   ssl_keyfile: {made.client_key}",
    ])


def _down(broker: LocalBroker, timeout: float) -> int:
    pid = broker.pid
    if broker.stop(timeout=timeout):
        print(f"Kafka at {broker.bootstrap} stopped (pid {pid})")
    else:
        print(f"Kafka not running in {broker.workdir}")
    return 0


def _status(broker: LocalBroker, timeout: float) -> int:
    if not broker.is_running():
        print(f"not running (dir {broker.workdir})")
        return 1
    if not broker.answers(timeout=timeout):
        print(f"pid {broker.pid} alive but not answering on {broker.bootstrap}")
        return 1
    print(f"running at {broker.bootstrap} (pid {broker.pid}, cluster {broker.cluster_id})")
    return 0


_COMMANDS: Final[dict[str, tuple[Callable[[LocalBroker, float], int], float]]] = {
    "up": (_up, 90.0),
    "down": (_down, 30.0),
    "status": (_status, 5.0),
}

if __name__ == "__main__":
    sys.exit(main())
