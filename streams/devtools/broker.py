"""A local single-node Apache Kafka (KRaft) broker run from Maven jars.

The jars come from ``deploy/kafka/pom.xml`` (:mod:`streams.devtools.jars`, cached per
version); the broker runs as a detached ``java kafka.Kafka`` process
whose files (config, data, log, pid) live in one work directory.

Its command line is ``fraudmon kafka up|down|status`` (:mod:`streams.devtools.kafka_command`).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Final, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.devtools.certs import USER, Credentials, ensure_credentials
from streams.devtools.jars import LOG4J_CONFIG, BrokerError, ensure_jars, resolve_kafka_version

log = logging.getLogger(__name__)

_POLL_INTERVAL: Final = 0.2

_T = TypeVar("_T")


def new_cluster_id() -> str:
    """Return a KRaft cluster id: base64url, unpadded, of 16 random bytes."""
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode("ascii")
        if not cid.startswith("-"):  # as Kafka's Uuid: never looks like a CLI flag
            return cid


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError("java not found (set JAVA_HOME or put a JDK 17+ on PATH)")
    return java


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run *coro* to completion, also when called from inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(_read(path).splitlines()[-lines:])


_ERROR_LINE: Final = re.compile(r"^\[[^\]]+\] (?:ERROR|FATAL)\s+(.*?)(?: \([^()]*\))?$")


def _failure_summary(text: str) -> str:
    """Pick one line saying why a Kafka JVM failed: its first ERROR and that error's exception."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = _ERROR_LINE.match(line)
        if match is None:
            continue
        for trace in lines[i + 1 : i + 40]:
            if trace.startswith("["):
                break
            exc = trace.strip().removeprefix("Caused by: ")
            if exc and not exc.startswith(("at ", "...")):
                return f"{match.group(1)}: {exc.split(': ', 1)[-1]}"
        return match.group(1)
    plain = [line.strip() for line in lines if line.strip() and not line.startswith("[")]
    rest = [line.strip() for line in lines if line.strip()]
    return (plain or rest or ["no output"])[0 if plain else -1]


class LocalBroker:
    """A single-node KRaft broker+controller whose files live in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        port: int = 9092,
        controller_port: int | None = None,
        host: str = "127.0.0.1",
        heap: str = "-Xms256m -Xmx1g",
        *,
        kafka_version: str | None = None,
        initial_rebalance_delay_ms: int = 0,
        secure: bool = False,
        sasl_ssl_port: int | None = None,
        ssl_port: int | None = None,
    ) -> None:
        """Describe a broker; *controller_port* defaults to ``port + 1``.

        *initial_rebalance_delay_ms*: how long a new consumer group waits for more
        members before its first assignment (Kafka's default is 3,000; 0 here, so a test
        worker starts at once).

        *secure*: also listen with SASL_SSL on *sasl_ssl_port* (default ``port + 2``;
        PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for user ``fraudmon``) and with mutual
        TLS on *ssl_port* (default ``port + 3``), with certificates made in
        ``workdir/secure`` (:mod:`streams.devtools.certs`). The plaintext listener stays
        for the broker's own probe and for tests.
        """
        self.secure = secure
        self.sasl_ssl_port = sasl_ssl_port if sasl_ssl_port is not None else port + 2
        self.ssl_port = ssl_port if ssl_port is not None else port + 3
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.workdir = Path(workdir).expanduser().resolve()
        self.port = port
        self.controller_port = controller_port if controller_port is not None else port + 1
        self.host = host
        self.heap = heap
        self.kafka_version = kafka_version or resolve_kafka_version()
        self.cluster_id: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` clients bootstrap from."""
        return f"{self.host}:{self.port}"

    @property
    def credentials(self) -> Credentials:
        """The secured listeners' CA, certificates and password (``secure`` brokers)."""
        return Credentials(self.workdir / "secure")

    @property
    def config_path(self) -> Path:
        """The generated ``server.properties``."""
        return self.workdir / "server.properties"

    @property
    def data_dir(self) -> Path:
        """The broker's ``log.dirs`` (topic data and KRaft metadata)."""
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        """The broker's stdout/stderr."""
        return self.workdir / "broker.log"

    @property
    def pid_path(self) -> Path:
        """The file holding the broker's pid."""
        return self.workdir / "broker.pid"

    @property
    def pid(self) -> int | None:
        """The pid from the pid file, if any (the process may be gone)."""
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        """Whether this work directory's broker process is alive."""
        pid = self.pid
        return pid is not None and self._alive(pid)

    def answers(self, timeout: float = 3.0) -> bool:
        """Whether a broker answers a metadata request on :attr:`bootstrap`."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                pass
        except OSError:
            return False  # nothing listening yet: skip aiokafka and its error logs
        try:
            return _run_sync(asyncio.wait_for(self._describe(timeout), timeout))
        except (TimeoutError, OSError, KafkaError) as exc:
            log.debug("metadata probe of %s failed: %r", self.bootstrap, exc)
            return False

    async def _describe(self, request_timeout_s: float) -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="fraudmon-broker-probe",
            request_timeout_ms=max(1, int(request_timeout_s * 1000)),
        )
        try:
            await admin.start()
            info: dict[str, Any] = await admin.describe_cluster()
        finally:
            await admin.close()
        self.cluster_id = info.get("cluster_id")
        return bool(info.get("brokers"))

    def start(self, timeout: float = 90) -> None:
        """Start the broker (formatting storage first if needed) and wait until it answers.

        Returns at once when this broker, or any broker, already answers on the port.
        """
        deadline = time.monotonic() + timeout
        pid = self.pid
        if pid is not None and self._alive(pid):
            log.info("broker already running (pid %d), waiting until it answers", pid)
            self._wait_ready(pid, deadline, timeout, launched=False)
            return
        if pid is not None:
            self.pid_path.unlink(missing_ok=True)  # stale
        if self.answers(timeout=2.0):
            log.info("a broker already answers on %s; not starting another", self.bootstrap)
            return
        libs = ensure_jars(self.kafka_version)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.secure:
            ensure_credentials(self.credentials.folder)
        self._write_config()
        if not (self.data_dir / "meta.properties").is_file():
            self._format(libs)
        pid = self._launch(libs)
        self._wait_ready(pid, deadline, timeout, launched=True)

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM the broker's process group, SIGKILL it after *timeout*; True if one ran."""
        pid = self.pid
        if pid is None or not self._alive(pid):
            self.pid_path.unlink(missing_ok=True)
            return False
        self._signal(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            log.warning("broker pid %d ignored SIGTERM for %.0fs, killing it", pid, timeout)
            self._signal(pid, signal.SIGKILL)
            if not self._wait_gone(pid, 10):
                raise BrokerError(f"broker pid {pid} survived SIGKILL")
        self.pid_path.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL the broker's process group (a crash, for tests); True if one ran."""
        pid = self.pid
        if pid is None or not self._alive(pid):
            self.pid_path.unlink(missing_ok=True)
            return False
        self._signal(pid, signal.SIGKILL)
        if not self._wait_gone(pid, 10):
            raise BrokerError(f"broker pid {pid} survived SIGKILL")
        self.pid_path.unlink(missing_ok=True)
        return True

    def _properties(self) -> dict[str, str]:
        properties = self._plain_properties()
        if self.secure:
            properties.update(self._secure_properties())
        return properties

    def _secure_properties(self) -> dict[str, str]:
        made = self.credentials
        host = self.host
        jaas = {"plain": "org.apache.kafka.common.security.plain.PlainLoginModule required "
                         f'user_{USER}="{made.password}";',
                "scram-sha-256": "org.apache.kafka.common.security.scram.ScramLoginModule "
                                 "required;",
                "scram-sha-512": "org.apache.kafka.common.security.scram.ScramLoginModule "
                                 "required;"}
        return {
            "listeners": f"PLAINTEXT://{host}:{self.port},"
            f"CONTROLLER://{host}:{self.controller_port},"
            f"SASL_SSL://{host}:{self.sasl_ssl_port},SSL://{host}:{self.ssl_port}",
            "advertised.listeners": f"PLAINTEXT://{host}:{self.port},"
            f"SASL_SSL://{host}:{self.sasl_ssl_port},SSL://{host}:{self.ssl_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "SASL_SSL:SASL_SSL,SSL:SSL",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            **{f"listener.name.sasl_ssl.{mechanism}.sasl.jaas.config": entry
               for mechanism, entry in jaas.items()},
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(made.keystore),
            "ssl.keystore.password": made.password,
            "ssl.key.password": made.password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(made.ca),
            "listener.name.ssl.ssl.client.auth": "required",
        }

    def _plain_properties(self) -> dict[str, str]:
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},"
            f"CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "4",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": str(self.initial_rebalance_delay_ms),
            "auto.create.topics.enable": "false",
            # After a kill -9 the restarted node must wait out its old broker session
            # before it may register again: 9 s by default, 4 s here.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "1000",
        }

    def _write_config(self) -> None:
        lines = ["# Written by streams.devtools.broker on every start; edits are overwritten."]
        lines += [f"{key}={value}" for key, value in self._properties().items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    def _java_cmd(self, libs: Path, heap: list[str], main: str, *args: str) -> list[str]:
        return [
            _java(), *heap, "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp", str(libs / "*"), main, *args,
        ]  # fmt: skip

    def _format(self, libs: Path) -> None:
        cid = new_cluster_id()
        cmd = self._java_cmd(
            libs, ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"],  # short-lived
            "kafka.tools.StorageTool",
            "format", "-t", cid, "-c", str(self.config_path), *self._scram_users(),
        )  # fmt: skip
        log.info("formatting %s (cluster id %s)", self.data_dir, cid)
        try:
            proc = subprocess.run(  # noqa: S603 (argv list, no shell)
                cmd, cwd=self.workdir, capture_output=True, text=True, timeout=120, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError("kafka storage format timed out after 120s") from exc
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            raise BrokerError(f"kafka storage format failed: {_failure_summary(out)}", out[-2000:])

    def _scram_users(self) -> list[str]:
        """``--add-scram`` arguments: SCRAM credentials written at format time (KIP-900)."""
        if not self.secure:
            return []
        password = self.credentials.password
        return [arg for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
                for arg in ("--add-scram", f"{mechanism}=[name={USER},password={password}]")]

    def _launch(self, libs: Path) -> int:
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_name("broker.log.1"))
        heap = [*shlex.split(self.heap), "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError"]
        cmd = self._java_cmd(libs, heap, "kafka.Kafka", str(self.config_path))
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(  # noqa: S603 (argv list, no shell)
                cmd,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        log.info("started Kafka %s broker pid %d", self.kafka_version, self._proc.pid)
        return self._proc.pid

    def _wait_ready(self, pid: int, deadline: float, timeout: float, *, launched: bool) -> None:
        while True:
            if not self._alive(pid):
                code = self._proc.poll() if self._proc is not None else None
                self.pid_path.unlink(missing_ok=True)
                tail = _tail(self.log_path)
                how = f"exited with code {code}" if code is not None else "exited"
                summary = _failure_summary(_read(self.log_path))
                raise BrokerError(
                    f"broker {how} during start: {summary} (see {self.log_path})", tail
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self.answers(timeout=min(3.0, max(remaining, 0.5))):
                return
            time.sleep(min(_POLL_INTERVAL, max(deadline - time.monotonic(), 0)))
        tail = _tail(self.log_path)
        if launched:
            self.kill()
        raise BrokerError(
            f"broker did not answer on {self.bootstrap} within {timeout:.0f}s"
            f" (see {self.log_path})",
            tail,
        )

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        proc_dir = Path(f"/proc/{pid}")
        if not proc_dir.is_dir():
            return True  # no procfs: trust kill(0)
        try:
            state = (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc_dir / "cmdline").read_bytes()
        except (OSError, IndexError):
            return False
        # Not a zombie, and really this work directory's broker (guards against pid reuse).
        return state not in ("Z", "X") and str(self.config_path).encode() in cmdline

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)  # the broker leads its own session/process group
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            raise BrokerError(f"not allowed to signal broker pid {pid}: {exc}") from exc

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True
