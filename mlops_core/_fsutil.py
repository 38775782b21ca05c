"""Crash-safe file primitives: atomic writes, locks, content hashes.

Used by the model registry (all of it) and by the alert system (its cooldown state file), so
there is one atomic-write implementation in ``mlops_core``.

Everything here is about surviving a process killed at any instruction and several
processes writing at once, using only POSIX guarantees:

* ``os.replace`` of a file, and ``os.rename`` of a directory onto a name that does not
  exist yet, are atomic: a reader sees the old state or the new one, never a mixture.
* ``fsync`` of the file *and* of its directory makes the new name durable.
* ``fcntl.flock`` locks belong to the open file description and vanish when the holder
  dies, so a killed writer never leaves a stale lock behind.

Files are opened with ``O_NOFOLLOW`` so a symlink planted inside the registry is refused
instead of followed out of it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_core.errors import (
    CorruptMetadataError,
    IntegrityError,
    LockTimeoutError,
    RegistryInputError,
)

CHUNK = 1 << 20  # 1 MiB: large model files are hashed and copied in chunks of this size

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# --- durable, atomic writes -------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make the directory's entries (a new or renamed name) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path, tag: str = "tmp") -> Path:
    """A unique hidden sibling of ``path``: same directory, so ``os.replace`` stays atomic."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{tag}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, flush + fsync, ``os.replace``, fsync dir.

    An ``OSError`` names ``path`` (its ``filename``), never the temporary file: that name
    is an implementation detail the user never gave (see :func:`_about_target`).
    """
    try:
        _write_and_replace(path, data)
    except OSError as exc:
        raise _about_target(exc, path) from None
    fsync_dir(path.parent)


def _about_target(exc: OSError, path: Path) -> OSError:
    """``exc`` re-addressed to ``path``: same errno (so the same ``OSError`` subclass), a
    missing directory said in words (``ENOENT`` on the temporary file means just that)."""
    if exc.errno is None:
        return exc
    reason = exc.strerror or os.strerror(exc.errno)
    if exc.errno == errno.ENOENT and not path.parent.is_dir():
        reason = f"directory {path.parent} does not exist"
    return OSError(exc.errno, reason, str(path))


def _write_and_replace(path: Path, data: bytes) -> None:
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def dump_json(value: Any) -> bytes:
    """Stable, human-readable JSON (sorted keys, 2-space indent, trailing newline)."""
    return (json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, dump_json(value))


def read_bytes_nofollow(path: Path) -> bytes:
    """Read a whole file, refusing a symlink (``CorruptMetadataError`` naming it)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorruptMetadataError(
                f"{path}: is a symlink; the registry does not follow symlinks"
            ) from None
        raise
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def read_json(path: Path) -> Any:
    """Parse a metadata file; any decoding problem becomes one line naming the file."""
    return parse_json(read_bytes_nofollow(path), str(path))


def parse_json(raw: bytes, where: str) -> Any:
    """Parse metadata read from ``where`` (a file, an object's URL, or ``file:line`` for one
    line of a JSON-lines file); any decoding problem becomes one ``CorruptMetadataError``
    line naming it, with the line inside ``raw`` only when it has several."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptMetadataError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        at = (
            f"line {exc.lineno} column {exc.colno}"
            if b"\n" in raw.strip()
            else f"column {exc.colno}"
        )
        raise CorruptMetadataError(f"{where}: not valid JSON ({at}: {exc.msg})") from None


def remove_tree(path: Path) -> None:
    """Remove a directory so it disappears at once: rename to a hidden name, then delete."""
    trash = temp_name(path, "trash")
    os.rename(path, trash)
    fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


# --- per-model lock ---------------------------------------------------------------------------


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, timeout: float, what: str) -> Iterator[None]:
    """Hold ``flock(LOCK_EX)`` on ``lock_path``; ``LockTimeoutError`` after ``timeout`` s.

    Polls with a short, growing sleep rather than blocking, so the timeout is honoured and
    a caller can never hang forever behind a stuck writer.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o666)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"{what}: lock {lock_path} still held by another writer after {timeout:g} s"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def hold_owner_lock(lock_path: Path) -> int | None:
    """Take ``flock(LOCK_EX)`` on ``lock_path`` for as long as the caller runs, or ``None``
    when another open file holds it (see :func:`lock_owner` for whom).

    For files that one process at a time may write for its whole life (the exporter's
    checkpoint, an outcome store): a second writer would count every line twice, silently.
    Returns the descriptor; closing it releases the lock, and so does the holder's death
    (SIGKILL included), so a crash never leaves a stale lock behind.  The holder's pid is
    written into the file, for the error message of the next one.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:  # a read-only file still locks; only the pid in the message is lost
        pass
    return fd


def lock_owner(lock_path: Path) -> str:
    """Who holds ``lock_path``, for an error message: ``process <pid>`` as
    :func:`hold_owner_lock` wrote it, or ``another process`` when it cannot be read."""
    try:
        text = lock_path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        text = ""
    return f"process {text}" if text.isdigit() else "another process"


# --- content hashing --------------------------------------------------------------------------


def _walk(root: Path, rel: str = "") -> Iterator[tuple[str, str, Path]]:
    """(relative POSIX path, "dir"|"file", absolute path), sorted, never following symlinks.

    A symlink or special file raises ``IntegrityError``: inside the registry that is
    tampering; the caller turns it into a ``RegistryInputError`` for a source directory.
    """
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
    for entry in entries:
        name = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_symlink():
            raise IntegrityError(f"{entry.path}: is a symlink; symlinks are never followed")
        if entry.is_dir(follow_symlinks=False):
            yield name, "dir", Path(entry.path)
            yield from _walk(Path(entry.path), name)
        elif entry.is_file(follow_symlinks=False):
            yield name, "file", Path(entry.path)
        else:
            raise IntegrityError(f"{entry.path}: not a regular file or directory")


def _tree_header(hasher: Any, rel: str, kind: str, size: int = 0) -> None:
    # "D <path>\n" for a directory, "F <path> <size>\n" then the bytes for a file
    if kind == "dir":
        hasher.update(b"D " + rel.encode("utf-8", "surrogateescape") + b"\n")
    else:
        hasher.update(b"F " + rel.encode("utf-8", "surrogateescape") + f" {size}\n".encode())


def _open_regular(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IntegrityError(f"{path}: is a symlink; symlinks are never followed") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IntegrityError(f"{path}: not a regular file")
    return fd


def _hash_fd(fd: int, hasher: Any) -> int:
    size = 0
    while chunk := os.read(fd, CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return size


def hash_artifact(path: Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a stored file or directory, streamed.

    A file hashes to the plain SHA-256 of its bytes (the same as ``sha256sum``).  A
    directory hashes, in sorted order of relative POSIX path, ``D <path>\\n`` for each
    sub-directory and ``F <path> <size>\\n`` followed by the bytes for each file, so
    renaming, adding, removing or changing any file changes the digest.
    """
    hasher = hashlib.sha256()
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise IntegrityError(f"{path}: is a symlink; symlinks are never followed")
    if stat.S_ISREG(st.st_mode):
        fd = _open_regular(path)
        try:
            size = _hash_fd(fd, hasher)
        finally:
            os.close(fd)
        return hasher.hexdigest(), size
    if not stat.S_ISDIR(st.st_mode):
        raise IntegrityError(f"{path}: not a regular file or directory")
    total = 0
    for rel, kind, abspath in _walk(path):
        if kind == "dir":
            _tree_header(hasher, rel, kind)
            continue
        fd = _open_regular(abspath)
        try:
            _tree_header(hasher, rel, kind, os.fstat(fd).st_size)
            total += _hash_fd(fd, hasher)
        finally:
            os.close(fd)
    return hasher.hexdigest(), total


def _copy_file(src: Path, dst: Path, hasher: Any) -> int:
    """Stream ``src`` to a new ``dst``, feeding the bytes written to ``hasher``; fsync."""
    with open(src, "rb") as fin:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666)
        size = 0
        try:
            while chunk := fin.read(CHUNK):
                hasher.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                size += len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
    return size


def copy_artifact(src: Path, dst: Path) -> tuple[str, int, str]:
    """Copy a file or directory to the new path ``dst`` in one streamed pass.

    Returns (sha256, size, "file"|"directory") computed over the bytes written, with the
    same definition as :func:`hash_artifact`.  A directory must hold only regular files
    and directories: a symlink could point anywhere, so it is refused rather than copied.
    """
    hasher = hashlib.sha256()
    if src.is_file():
        size = _copy_file(src, dst, hasher)
        return hasher.hexdigest(), size, "file"
    if not src.is_dir():
        raise RegistryInputError(f"{src}: not a regular file or directory")
    os.mkdir(dst)
    total = 0
    try:
        entries = list(_walk(src))
    except IntegrityError as exc:
        raise RegistryInputError(f"cannot register {src}: {exc}") from None
    for rel, kind, abspath in entries:
        target = dst / rel
        if kind == "dir":
            _tree_header(hasher, rel, kind)
            os.mkdir(target)
            continue
        expected = abspath.stat().st_size
        _tree_header(hasher, rel, kind, expected)
        written = _copy_file(abspath, target, hasher)
        if written != expected:  # the header already promised ``expected`` bytes
            raise RegistryInputError(f"{abspath}: changed size while being registered")
        total += written
    for rel, kind, _ in reversed(entries):
        if kind == "dir":
            fsync_dir(dst / rel)
    fsync_dir(dst)
    return hasher.hexdigest(), total, "directory"
