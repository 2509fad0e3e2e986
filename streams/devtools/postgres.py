"""A throwaway PostgreSQL server for tests and the bench, from Debian's ``postgresql``
package (``make apt-deps`` installs it).

``initdb`` into a fresh directory, a free TCP port on 127.0.0.1, the unix socket in the
same directory, SCRAM passwords over TCP. PostgreSQL refuses to run as root: when we are
root, the directory is handed to the ``postgres`` user (the package creates it) and every
command runs through ``runuser``. Readiness is a real connection, polled with a deadline.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from streams.devtools.broker import free_port

SUPERUSER = "fraudmon"


def binaries() -> Path:
    """The directory holding ``initdb`` and ``postgres``; ``RuntimeError`` when missing."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda path: int(Path(path).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    raise RuntimeError("PostgreSQL is not installed: run `make apt-deps` "
                       "(Debian package postgresql)")


class LocalPostgres:
    """One server: :meth:`start`, :meth:`url` per database, :meth:`stop`."""

    def __init__(self) -> None:
        self.bin = binaries()
        self.dir = Path(tempfile.mkdtemp(prefix="fraudmon-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.proc: subprocess.Popen[bytes] | None = None
        self.as_postgres = os.geteuid() == 0

    def _command(self, *argv: str) -> list[str]:
        if self.as_postgres:
            return ["runuser", "-u", "postgres", "--", *argv]
        return list(argv)

    def start(self, timeout: float = 60.0) -> LocalPostgres:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        password_file = self.dir / "pw"
        password_file.write_text(self.password)
        if self.as_postgres:
            shutil.chown(password_file, "postgres", "postgres")
        password_file.chmod(0o600)
        subprocess.run(self._command(  # noqa: S603 - our own arguments
            str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
            "--pwfile", str(password_file), "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"),
            check=True, capture_output=True)
        password_file.unlink()
        log = (self.dir / "postgres.log").open("ab")
        self.proc = subprocess.Popen(self._command(  # noqa: S603 - our own arguments
            str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=60"),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited; log:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres not ready in {timeout:.0f} s")
            time.sleep(0.1)  # polling a real connection, with a deadline
        return self

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url("postgres"), password=self.password,
                                 connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def url(self, database: str) -> str:
        """A URL without the password (it goes in ``store.password_env``)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), password=self.password,
                             autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.dir / "postgres.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)
