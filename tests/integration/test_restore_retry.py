"""A shard whose checkpoint cannot be read: the worker pauses it, says which and why,
counts the failure, answers 503 on /readyz, and restores it once the checkpoint is back."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.harness import Worker, make_config, sample_alerts, wait_for

pytestmark = pytest.mark.integration


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


async def test_a_failed_restore_is_retried_and_readyz_is_503_meanwhile(
        tmp_path: Path, bootstrap: str) -> None:
    config, settings = make_config(tmp_path, bootstrap, checkpoint_store="file",
                                   restore_backoff_initial_seconds=0.5,
                                   restore_backoff_max_seconds=1.0)
    log = tmp_path / "worker.log"
    worker = Worker(config, settings, log).start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        await sample_alerts(settings, tmp_path / "events.jsonl")
        assert worker.stop() == 0
    finally:
        worker.stop()
    checkpoints = sorted((settings.processing.state_dir).glob("**/shard-*.ckpt"))
    assert len(checkpoints) == settings.kafka.partitions
    victim = checkpoints[1]
    good = victim.read_bytes()
    victim.write_bytes(b"not a checkpoint" + good[:100])

    port = settings.web.port
    worker = Worker(config, settings, log).start()
    try:
        def failing() -> bool:
            if worker.proc is not None and worker.proc.poll() is not None:
                raise AssertionError(f"worker exited; log:\n{worker.tail()}")
            try:
                counted = worker.metrics().get("fraudmon_shard_restore_failures_total", 0)
            except OSError:
                return False
            return counted >= 2  # the first attempt and at least one retry

        await asyncio.to_thread(wait_for, failing, 60, "restore failures to be counted")
        assert readyz(port) == 503
        assert "shard 1 cannot be restored (CheckpointError: shard 1: unreadable checkpoint" \
            in log.read_text()
        victim.write_bytes(good)  # the operator puts the checkpoint back
        await asyncio.to_thread(wait_for, lambda: readyz(port) == 200, 60, "/readyz 200")
        metrics = worker.metrics()
        assert metrics["fraudmon_shards_owned"] == settings.kafka.partitions
        assert worker.stop() == 0
    finally:
        worker.stop()
