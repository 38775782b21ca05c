"""The checkpoint (``logs.state_file``): one atomic record of read positions *and* counters.

Why both in one record: a crash must neither re-count nor lose a line.  Offsets alone cannot
give that: the counters die with the process, so either the lines read since the last save
are counted again (counters persisted nowhere, offsets behind them) or they are lost (offsets
ahead of what any counter shows).  With the counters' values saved in the *same* write as the
offsets they correspond to, a restarted exporter resumes both together: its counters start
at the saved values, and the lines after the saved offsets, whose first counting died with
the old process, are counted exactly once.  :class:`exporter.ingest.Ingestor` takes the
record between two polls (offsets and counters then agree exactly) and serves only counters
that are in a saved record, so no value a scrape has seen can be lost by a crash: no counter
ever goes down across a restart.

A position names a file three ways: by path (where it was), by ``(dev, inode)`` (which file
it was, even after a rename) and by two fingerprints: of its first bytes (to tell a file from
a new one that reused a freed inode, or one rewritten in place) and of the bytes just before
the offset (to tell a file that was truncated and regrew past the offset, even with the same
first bytes).  The offset is the end of the last *complete* line handed out: a partial last
line is read again after a restart, never half-counted.  Inside an over-long line being
skipped the offset is where skipping stopped, with ``skipping`` set, so the line, already
counted as ``too_long``, is not counted twice.

The file is JSON, written atomically (``mlops_core._fsutil.atomic_write_bytes``: temporary
file in the same directory, ``fsync``, ``os.replace``, ``fsync`` of the directory), so a crash
while saving leaves the previous checkpoint intact.  Version 1 files (offsets only, before the
counters were saved) are still read: their positions resume, the counters start at zero.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import structlog

from exporter.errors import ConfigError
from mlops_core._fsutil import atomic_write_bytes, hold_owner_lock, lock_owner

FINGERPRINT_BYTES = 256
"""How many leading bytes of a file identify it (fewer while the file is shorter)."""

TAIL_BYTES = 256
"""How many bytes just before the offset are compared to tell a truncated-and-regrown file."""

STATE_VERSION = 2
_READABLE_VERSIONS = (1, 2)

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FilePosition:
    """Where reading of one file stopped.

    ``rotated`` marks a file that had already been renamed away (rotation) and was still
    being drained; after a restart it is looked up by inode in the directory of ``path``.
    ``closable`` marks a file followed under the name it was rotated to: it is closed once
    idle.  ``parked`` says why no descriptor is held for it: ``"idle"`` (closed while
    rotated away and idle) or ``"over_limit"`` (``logs.max_files`` files were open); empty
    for an open file.
    """

    path: str
    dev: int
    inode: int
    offset: int
    fingerprint: str
    fingerprint_len: int
    rotated: bool = False
    tail_digest: str = ""
    tail_len: int = 0
    skipping: bool = False
    closable: bool = False
    parked: str = ""
    # the outcome store's name for the file's current content (exporter.linesource): it
    # counts truncations, so it must survive restarts; "" when not tracked
    generation: str = ""


@dataclass(frozen=True)
class Checkpoint:
    """One consistent record: the follower's positions and figures, and the counters.

    ``follower`` holds the follower's cumulative figures (``bytes_read`` counts only bytes up
    to the saved offsets).  ``counters`` is ``IngestCounters.state()``, or ``None`` when only
    a follower was saved (a standalone follower, or a version 1 file).
    """

    files: tuple[FilePosition, ...]
    follower: Mapping[str, int] = field(default_factory=dict)
    counters: Mapping[str, Any] | None = None
    #: wall-clock time the positions were taken (``None`` in files written before it was
    #: saved): a file written after it and unknown to the checkpoint was not read before
    taken_at: float | None = None
    #: ``(dev, inode, fingerprint)`` of the files most recently read to their end after a
    #: rotation and closed: no position holds them any more, but they were read
    finished: tuple[tuple[int, int, str], ...] = ()


def fingerprint(fd: int, length: int = FINGERPRINT_BYTES) -> tuple[str, int]:
    """The sha256 hex digest of the first ``length`` bytes of an open file, and how many."""
    head = os.pread(fd, length, 0)
    return hashlib.sha256(head).hexdigest(), len(head)


def matches_fingerprint(fd: int, digest: str, length: int) -> bool:
    """Whether the open file still starts with the bytes the fingerprint was taken of."""
    return fingerprint(fd, length) == (digest, length)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_POSITION_FIELDS = {f.name for f in fields(FilePosition)}


def _position(item: Mapping[str, Any]) -> FilePosition:
    unknown = set(item) - _POSITION_FIELDS
    if unknown:
        raise ValueError(f"unknown position fields {sorted(unknown)}")
    pos = FilePosition(
        path=str(item["path"]),
        dev=int(item["dev"]),
        inode=int(item["inode"]),
        offset=int(item["offset"]),
        fingerprint=str(item["fingerprint"]),
        fingerprint_len=int(item["fingerprint_len"]),
        rotated=bool(item.get("rotated", False)),
        tail_digest=str(item.get("tail_digest", "")),
        tail_len=int(item.get("tail_len", 0)),
        skipping=bool(item.get("skipping", False)),
        closable=bool(item.get("closable", False)),
        parked=str(item.get("parked", "")),
        generation=str(item.get("generation", "")),
    )
    if pos.offset < 0 or pos.tail_len < 0 or pos.tail_len > pos.offset:
        raise ValueError(f"impossible offset {pos.offset} / tail {pos.tail_len} for {pos.path}")
    if pos.parked not in ("", "idle", "over_limit"):
        raise ValueError(f"unknown parked state {pos.parked!r}")
    return pos


def hold_state_file(state_file: str) -> int | None:
    """Mark ``state_file`` as this process's for its life (``flock`` on ``<state_file>.lock``);
    the descriptor to close at exit, or None when no lock file can be made.

    Two exporters given one state file would overwrite each other's checkpoint, and each
    would resume from the other's offsets and counters after a restart: counted lines lost
    or counted twice, silently.  The second one is refused at start instead (a
    :class:`ConfigError` naming the key and the holder's pid).  A directory where no lock
    file can be created is logged and the exporter runs on unlocked, as it would have before:
    its checkpoints will fail there too, and say so.
    """
    path = Path(state_file)
    lock = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = hold_owner_lock(lock)
    except OSError as exc:
        _log.warning(
            "state_file_lock_failed", state_file=state_file, lock=str(lock), error=str(exc)
        )
        return None
    if fd is None:
        raise ConfigError(
            f"logs.state_file {state_file}: in use by {lock_owner(lock)} (lock {lock}); every "
            "exporter needs a state file of its own: two would overwrite each other's checkpoint"
        )
    return fd


def load_checkpoint(state_file: str) -> Checkpoint | None:
    """The saved checkpoint, or ``None`` when there is no usable one.

    A missing file is the normal first start.  An unreadable or corrupt one is logged as a
    warning naming the file and ignored: the exporter must keep running, and a sidecar that
    crash-loops over its own checkpoint would lose every metric, not just a few lines.
    Temporary files left by a process killed while saving are removed.
    """
    _remove_stale_temporaries(Path(state_file))
    try:
        with open(state_file, "rb") as handle:
            raw = json.loads(handle.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _log.warning("checkpoint_unreadable", state_file=state_file, error=str(exc))
        return None
    try:
        # said in the checkpoint's own terms: "'list' object has no attribute 'get'" told
        # the user nothing about what the file should have held
        if not isinstance(raw, dict):
            raise ValueError(
                "expected a JSON object (version, files, follower, counters), got a "
                f"{_json_kind(raw)}"
            )
        version = raw.get("version")
        if version not in _READABLE_VERSIONS:
            raise ValueError(f"unsupported version {version!r}")
        if not isinstance(raw.get("files"), list):
            raise ValueError(f"files: expected a list, got a {_json_kind(raw.get('files'))}")
        files = tuple(_position(item) for item in raw["files"])
        follower = {str(k): int(v) for k, v in (raw.get("follower") or {}).items()}
        counters = raw.get("counters")
        if counters is not None and not isinstance(counters, dict):
            raise ValueError("counters is not an object")
        taken_at = raw.get("taken_at")
        if taken_at is not None and not (isinstance(taken_at, int | float)
                                         and math.isfinite(taken_at)):  # fmt: skip
            raise ValueError(f"taken_at is not a finite number: {taken_at!r}")
        finished = tuple((int(d), int(i), str(f)) for d, i, f in raw.get("finished") or ())
        return Checkpoint(
            files=files, follower=follower, counters=counters,
            taken_at=None if taken_at is None else float(taken_at), finished=finished,
        )  # fmt: skip
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        _log.warning("checkpoint_corrupt", state_file=state_file, error=str(exc))
        return None


def _json_kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    kinds = {dict: "object", list: "list", str: "string", int: "number", float: "number"}
    return kinds.get(type(value), type(value).__name__)


def save_checkpoint(state_file: str, checkpoint: Checkpoint) -> None:
    """Atomically replace ``state_file`` with ``checkpoint`` (parent directory created).

    Non-finite floats are written as ``Infinity`` (a latency sum can overflow): Python's
    ``json`` reads them back, and a checkpoint that refused them would stop for good.
    """
    path = Path(state_file).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "version": STATE_VERSION,
        "files": [asdict(p) for p in checkpoint.files],
        "follower": dict(checkpoint.follower),
    }
    if checkpoint.counters is not None:
        payload["counters"] = checkpoint.counters
    if checkpoint.taken_at is not None:
        payload["taken_at"] = checkpoint.taken_at
    if checkpoint.finished:
        payload["finished"] = [list(f) for f in checkpoint.finished]
    atomic_write_bytes(path, json.dumps(payload, separators=(",", ":")).encode())


def _remove_stale_temporaries(path: Path) -> None:
    """Delete ``.<name>.<pid>.<hex>.tmp`` siblings whose writing process no longer runs.

    ``atomic_write_bytes`` removes its temporary file on any exception, but not on SIGKILL.
    """
    with contextlib.suppress(OSError):
        for entry in path.parent.glob(f".{path.name}.*.tmp"):
            parts = entry.name[len(path.name) + 2 :].split(".")
            if len(parts) != 3 or not parts[0].isdigit():
                continue
            pid = int(parts[0])
            if pid != os.getpid() and not _running(pid):
                with contextlib.suppress(OSError):
                    entry.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
