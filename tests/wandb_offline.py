"""Test helper: read what an offline W&B run logged, without a server.

:func:`read_offline_run` parses an offline run's ``run-*.wandb`` file (the LevelDB-log framing W&B uses for its
transaction log) into config, history rows and summary.
"""

from __future__ import annotations

import glob
import json
import os
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_BLOCK = 32768
_HEADER = 7  # ":W&B" + magic 0xBEE1 (little endian) + version byte


def _records(path: str | Path):
    """Yield the raw protobuf payloads of a W&B transaction log (LevelDB log framing)."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (bad header {data[:4]!r})")
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # a block tail too short for a record header is zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:  # FULL
            yield chunk
        elif kind == 2:  # FIRST
            pending = chunk
        elif kind == 3:  # MIDDLE
            pending += chunk
        elif kind == 4:  # LAST
            yield pending + chunk
            pending = b""


def _decode(value_json: str) -> Any:
    try:
        return json.loads(value_json)
    except (json.JSONDecodeError, TypeError):
        return value_json


def read_offline_run(path: str | Path, wait_s: float = 0.0) -> dict[str, Any]:
    """Config, history rows and summary of an offline run.

    ``path`` is a run folder (``.../wandb/offline-run-*``), its ``run-*.wandb`` file, or a folder holding
    ``wandb/`` (the newest offline run there is read). Returns ``{"config": {...}, "history": [{...}, ...],
    "summary": {...}, "complete": bool, "path": str}``; keys are W&B's (``/``-joined for nested keys).
    ``complete`` tells whether the run's exit record is there: ``wandb.finish`` can return before W&B's service
    process has flushed the log, so ``wait_s`` re-reads until it is (or the time is up).
    """
    deadline = time.monotonic() + wait_s
    while True:
        out = _read_offline_run(path)
        if out["complete"] or time.monotonic() >= deadline:
            return out
        time.sleep(0.2)


def _read_offline_run(path: str | Path) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        files = sorted(glob.glob(str(path / "run-*.wandb")))
        if not files:
            files = sorted(glob.glob(str(path / "**" / "offline-run-*" / "run-*.wandb"), recursive=True),
                           key=os.path.getmtime)
        if not files:
            raise FileNotFoundError(f"no offline W&B run under {path}")
        path = Path(files[-1])
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    complete = False
    for payload in _records(path):
        rec = pb.Record()
        try:
            rec.ParseFromString(payload)
        except Exception:  # a record still being written at the end of a live run's log
            continue
        kind = rec.WhichOneof("record_type")
        complete |= kind == "exit"
        if kind == "history":
            history.append({(it.key or "/".join(it.nested_key)): _decode(it.value_json) for it in rec.history.item})
        elif kind == "summary":
            for it in rec.summary.update:
                summary[it.key or "/".join(it.nested_key)] = _decode(it.value_json)
        elif kind in ("config", "run"):
            items = rec.config.update if kind == "config" else rec.run.config.update
            for it in items:
                value = _decode(it.value_json)
                if isinstance(value, dict) and set(value) == {"value"}:
                    value = value["value"]
                elif isinstance(value, dict) and "value" in value and "desc" in value:
                    value = value["value"]
                config[it.key or "/".join(it.nested_key)] = value
    return {"config": config, "history": history, "summary": summary, "complete": complete, "path": str(path)}


def logged_keys(run: Mapping[str, Any]) -> set[str]:
    """Every metric name that appears in a run's history (as returned by :func:`read_offline_run`)."""
    keys: set[str] = set()
    for row in run["history"]:
        keys.update(row)
    return keys
