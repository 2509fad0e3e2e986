"""Replays a file in a child process, compiled or pure, optionally through a checkpoint.

``python native_run.py EVENTS OUT [--split N --save DIR | --restore DIR]`` prints
``compiled=<bool>``. With ``--split N --save DIR`` it folds the first N lines and
pickles every shard into DIR; with ``--restore DIR`` it restores them and folds the
rest. Used by ``test_native.py`` to check that both builds decide alike and read each
other's checkpoints.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from monitor.config import Settings
from monitor.processing.engine import Engine
from monitor.runtime import native
from monitor.tools.replay import replay


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("events", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", type=int)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--restore", type=Path)
    args = parser.parse_args()
    engine = Engine(Settings())
    lines = args.events.read_bytes().splitlines(keepends=True)
    if args.restore is not None:
        for shard in engine.shards:
            shard.restore((args.restore / f"{shard.shard_id}.ckpt").read_bytes())
        lines = lines[args.split:]
    elif args.split is not None:
        lines = lines[:args.split]
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "events.jsonl"
        part.write_bytes(b"".join(lines))
        replay(part, args.out, engine)
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
        for shard in engine.shards:
            (args.save / f"{shard.shard_id}.ckpt").write_bytes(shard.snapshot())
    print(f"compiled={native.compiled()}")


if __name__ == "__main__":
    main()
