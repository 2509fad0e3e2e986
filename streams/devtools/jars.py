"""Kafka's runtime jars for the local broker, fetched once per version through Maven.

``deploy/kafka/pom.xml`` names them; ``mvn dependency:copy-dependencies`` copies them
into a cache folder (``FRAUDMON_KAFKA_CACHE`` or ``~/.cache/fraud-monitor``), with a
marker of the version and the pom's hash, so a second call does not run Maven.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

KAFKA_VERSION: Final = "4.4.0"
"""The pinned Kafka version; env ``FRAUDMON_KAFKA_VERSION`` overrides it."""

DEPLOY_DIR: Final = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
POM: Final = DEPLOY_DIR / "pom.xml"
LOG4J_CONFIG: Final = DEPLOY_DIR / "log4j2.properties"

_MARKER: Final = ".complete"
_VERSION_RE: Final = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-]*$")
_ANSI_RE: Final = re.compile(r"\x1b\[[0-9;]*m")


class BrokerError(RuntimeError):
    """The local broker could not be set up, started or stopped.

    The first line of the message is a one-line summary; ``log_tail`` holds the
    last lines of the broker log when there is one.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n{log_tail}" if log_tail else message)
        self.summary = message
        self.log_tail = log_tail


def resolve_kafka_version() -> str:
    """Return the Kafka version to run: ``FRAUDMON_KAFKA_VERSION`` or the pin."""
    return os.environ.get("FRAUDMON_KAFKA_VERSION") or KAFKA_VERSION


def default_cache_dir(version: str) -> Path:
    """Return the jar folder for *version* under ``FRAUDMON_KAFKA_CACHE`` or ``~/.cache``."""
    root = os.environ.get("FRAUDMON_KAFKA_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fraud-monitor"
    return base / f"kafka-{version}" / "libs"


def _jar_stamp(version: str) -> str:
    pom_hash = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    return f"kafka {version} pom {pom_hash}"


def _is_complete(libs: Path, stamp: str) -> bool:
    try:
        return (libs / _MARKER).read_text().strip() == stamp
    except OSError:
        return False


def _first_error(output: str) -> str:
    lines = [_ANSI_RE.sub("", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    errors = [line.removeprefix("[ERROR] ") for line in lines if line.startswith("[ERROR]")]
    return (errors or lines or ["no output"])[0].removesuffix(" -> [Help 1]")


def ensure_jars(kafka_version: str | None = None, cache_dir: Path | None = None) -> Path:
    """Copy Kafka's runtime jars into *cache_dir* once and return that folder.

    A marker file records the version and the pom's hash; when it matches, Maven
    is not run. Maven uses its default local repository (``~/.m2``).
    """
    version = kafka_version or resolve_kafka_version()
    if not _VERSION_RE.match(version):
        raise BrokerError(f"invalid Kafka version {version!r}")
    if not POM.is_file():
        raise BrokerError(f"missing {POM}")
    libs = Path(cache_dir) if cache_dir is not None else default_cache_dir(version)
    stamp = _jar_stamp(version)
    if _is_complete(libs, stamp):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("mvn not found on PATH (needed to fetch the Kafka jars)")
    libs.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".libs-", dir=libs.parent))
    cmd = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={tmp}", f"-Dkafka.version={version}",
    ]  # fmt: skip
    log.info("fetching Kafka %s jars into %s", version, libs)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise BrokerError(
                f"mvn could not fetch Kafka {version}: {_first_error(proc.stdout + proc.stderr)}"
            )
        if not any(tmp.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"mvn copied no kafka_2.13 jar for Kafka {version}")
        (tmp / _MARKER).write_text(stamp + "\n")
        if not _is_complete(libs, stamp):  # another process may have finished first
            shutil.rmtree(libs, ignore_errors=True)
            tmp.rename(libs)
    except OSError as exc:
        if not _is_complete(libs, stamp):
            raise BrokerError(f"could not populate {libs}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return libs
