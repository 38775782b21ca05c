"""Checkpoint of read positions, so a restarted exporter neither re-counts nor skips lines.

A position names a file three ways: by path (where it was), by ``(dev, inode)`` (which file
it was, even after a rename) and by a fingerprint of its first bytes (to tell a file from a
new one that reused a freed inode, or one truncated and rewritten in place).  The offset is
always the end of the last *complete* line handed out: a partial last line is read again
after a restart, never half-counted.

The file is JSON, written atomically (``mlops_core._fsutil.atomic_write_bytes``: temporary
file in the same directory, ``fsync``, ``os.replace``), so a crash while saving leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

from mlops_core._fsutil import atomic_write_bytes

FINGERPRINT_BYTES = 256
"""How many leading bytes of a file identify it (fewer while the file is shorter)."""

STATE_VERSION = 1

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FilePosition:
    """Where reading of one file stopped.

    ``rotated`` marks a file that had already been renamed away (rotation) and was still
    being drained; after a restart it is looked up by inode in the directory of ``path``.
    """

    path: str
    dev: int
    inode: int
    offset: int
    fingerprint: str
    fingerprint_len: int
    rotated: bool = False


def fingerprint(fd: int, length: int = FINGERPRINT_BYTES) -> tuple[str, int]:
    """The sha256 hex digest of the first ``length`` bytes of an open file, and how many."""
    head = os.pread(fd, length, 0)
    return hashlib.sha256(head).hexdigest(), len(head)


def matches_fingerprint(fd: int, digest: str, length: int) -> bool:
    """Whether the open file still starts with the bytes the fingerprint was taken of."""
    return fingerprint(fd, length) == (digest, length)


def load_positions(state_file: str) -> list[FilePosition] | None:
    """The saved positions, or ``None`` when there is no usable checkpoint.

    A missing file is the normal first start.  An unreadable or corrupt one is logged as a
    warning naming the file and ignored: the exporter must keep running, and a sidecar that
    crash-loops over its own checkpoint would lose every metric, not just a few lines.
    """
    try:
        with open(state_file, "rb") as handle:
            raw = json.loads(handle.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _log.warning("checkpoint_unreadable", state_file=state_file, error=str(exc))
        return None
    try:
        if raw.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported version {raw.get('version')!r}")
        return [
            FilePosition(
                path=str(item["path"]),
                dev=int(item["dev"]),
                inode=int(item["inode"]),
                offset=int(item["offset"]),
                fingerprint=str(item["fingerprint"]),
                fingerprint_len=int(item["fingerprint_len"]),
                rotated=bool(item.get("rotated", False)),
            )
            for item in raw["files"]
        ]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        _log.warning("checkpoint_corrupt", state_file=state_file, error=str(exc))
        return None


def save_positions(state_file: str, positions: list[FilePosition]) -> None:
    """Atomically replace ``state_file`` with ``positions`` (parent directory created)."""
    path = Path(state_file).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"version": STATE_VERSION, "files": [asdict(p) for p in positions]}
    atomic_write_bytes(path, json.dumps(payload, indent=1).encode())
