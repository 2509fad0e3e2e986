"""Runs the Faust worker: create missing topics, build the app, serve until stopped."""

from __future__ import annotations

import asyncio
import logging

import faust

from monitor.config import Settings
from streams.alertstore import store_preflight
from streams.app import create_app
from streams.connection import preflight
from streams.topics import ensure_topics

logger = logging.getLogger(__name__)


def run_worker(settings: Settings) -> int:
    """Block running the worker; returns its exit code after SIGTERM or SIGINT."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # A wrong password or certificate would have every client retry quietly for ever:
    # connect once first, and stop with the reason.
    loop.run_until_complete(preflight(settings.kafka))
    loop.run_until_complete(ensure_topics(settings))
    # The alert store: connect once and create its tables, or stop with the reason.
    loop.run_until_complete(store_preflight(settings))
    # faust keeps its data directory under the state directory, never in the cwd.
    settings.processing.state_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    worker = faust.Worker(app, loop=loop, loglevel=settings.log_level,
                          redirect_stdouts=False, override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
