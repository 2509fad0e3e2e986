"""The alert store in PostgreSQL: one database for every worker of a deployment.

The driver is psycopg 3 (``psycopg[binary]``), not asyncpg. Every store call runs in a
thread (:mod:`monitor.outputs.store.runner`) with the same DB-API shape as the stdlib's
``sqlite3``, so both backends share their SQL and the one interface; and psycopg is
libpq, so a bank's usual connection settings work as they do for ``psql``: ``sslmode``,
``sslrootcert``, client certificates, ``PGPASSWORD``, ``PGPASSFILE``, service files. The
binary extra bundles libpq: nothing to compile or install.

The password is never in the settings file: ``store.password_env`` names a variable that
holds it, or libpq finds it in its own environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from monitor.outputs.store.backend import Backend, Connection

if TYPE_CHECKING:
    from pydantic import SecretStr

_SCHEMA_LOCK = 0x6672_6D6F_6E5F_7374  # pg_advisory_xact_lock key: one schema creator at a time


class PostgresBackend(Backend):
    name = "postgresql"
    placeholder = "%s"

    def __init__(self, url: str, password: SecretStr | None = None,
                 connect_timeout_seconds: float = 5.0,
                 query_timeout_seconds: float = 5.0) -> None:
        self.url = url
        self.password = password
        self.connect_timeout = max(1, round(connect_timeout_seconds))
        self.query_timeout_ms = max(1, round(query_timeout_seconds * 1000))

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.Error,)

    def describe(self) -> str:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(self.url)
        return (f"postgresql {info.get('user', '')}@{info.get('host', '')}:"
                f"{info.get('port', '')}/{info.get('dbname', '')}")

    def connect(self, *, writer: bool) -> Connection:
        import psycopg

        extra: dict[str, Any] = {"connect_timeout": self.connect_timeout,
                                       "application_name": "fraudmon"}
        if self.password is not None:
            extra["password"] = self.password.get_secret_value()
        # Readers are bounded in time; the feeder's writes and retention's deletes are not
        # (a chunk is small).
        if not writer:
            extra["options"] = f"-c statement_timeout={self.query_timeout_ms}"
        conn = psycopg.connect(self.url, **extra)
        return cast(Connection, conn)

    def maintain(self, conn: Connection) -> None:
        cur = conn.cursor()
        try:
            cur.execute("ANALYZE fraudmon_alerts")
            conn.commit()
        finally:
            cur.close()

    def create_schema(self, conn: Connection) -> None:
        cur = conn.cursor()
        try:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in self.schema_statements():
                cur.execute(statement)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()
