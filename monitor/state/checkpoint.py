"""Durable shard checkpoints in a local directory, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from monitor.errors import CheckpointError


class FileCheckpointStore:
    """One file per shard; a save is write-to-temp, fsync, rename, so a crash never tears it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, shard_id: int) -> Path:
        return self.directory / f"shard-{shard_id:04d}.ckpt"

    def load(self, shard_id: int) -> bytes | None:
        """The last saved snapshot of a shard, or ``None`` when there is none."""
        try:
            return self._path(shard_id).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint of shard {shard_id}: {exc}") from exc

    def save(self, shard_id: int, data: bytes) -> None:
        path = self._path(shard_id)
        tmp = path.with_suffix(".tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint of shard {shard_id}: {exc}") from exc
