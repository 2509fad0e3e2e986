"""The deployment's alert store: every alert of the alerts topic, durable, for ``GET /alerts``.

``backend`` holds the interface and shared SQL, ``sqlite`` and ``postgres`` the two
databases, ``runner`` the async face (blocking calls in threads), ``record`` the check of
an alerts-topic record, ``query`` filters, pages and cursors. The feeder (a Kafka
consumer) is ``streams/alertstore.py``.
"""

from __future__ import annotations

from monitor.config import Settings, secret_from_env
from monitor.errors import ConfigError
from monitor.outputs.store.backend import Backend
from monitor.outputs.store.runner import AlertStore
from monitor.outputs.store.sqlite import FILE_NAME, SqliteBackend

__all__ = ["AlertStore", "Backend", "backend_for"]


def backend_for(settings: Settings) -> Backend:
    """The backend ``store.url`` names: SQLite in ``processing.state_dir`` when unset."""
    store = settings.store
    if store.backend == "sqlite":
        from pathlib import Path
        from urllib.parse import urlsplit

        path = (Path(urlsplit(store.url).path) if store.url is not None
                else settings.processing.state_dir / FILE_NAME)
        return SqliteBackend(path, busy_timeout_seconds=store.connect_timeout_seconds,
                             query_timeout_seconds=store.query_timeout_seconds)
    from monitor.outputs.store.postgres import PostgresBackend

    assert store.url is not None  # noqa: S101 - backend says so
    password = secret_from_env(store.password_env) if store.password_env else None
    if store.password_env and password is None:
        raise ConfigError(f"store.password_env: environment variable {store.password_env} "
                          "is not set")
    return PostgresBackend(store.url, password, store.connect_timeout_seconds,
                           store.query_timeout_seconds)
