"""Follow log files like ``tail -F``: appended lines, rotation, truncation, files coming and going.

:class:`LogFollower` is polled (no inotify): every :meth:`LogFollower.poll` re-globs the
patterns, checks each followed file and returns the complete lines written since the last
call.  What can happen to a log file, and what the follower does:

- **appended lines**: read in large chunks, split on ``\\n``; a last line without its newline
  is held back until the newline arrives.
- **rotation by rename** (``logrotate`` default, ``RotatingFileHandler``): the path now names
  another inode.  The old file is still open, so it is read to its end first (the writer may
  add a few lines before it reopens; the old file is kept until a poll finds nothing new in
  it), then the new file is read from offset 0.  Counted in ``stats.rotations``.
- **truncation** (``copytruncate``): the file got shorter than the read offset, or its first
  bytes changed.  Reading restarts at 0; counted in ``stats.truncations``.
- **a file appears** (matches a pattern for the first time after start-up): read from 0.
- **a file disappears**: what is left in it is read, then it is closed.
- **over-long lines** (more than ``max_line_bytes`` without a newline): dropped, counted in
  ``stats.lines_too_long``; memory never holds more than one such limit per file.

With ``state_file`` the positions are checkpointed (:mod:`exporter.positions`) and a new
follower resumes exactly after the last complete line the previous one handed out.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import threading
from dataclasses import dataclass

import structlog

from exporter import positions as _positions
from exporter.positions import FINGERPRINT_BYTES, FilePosition
from exporter.records import has_line_longer_than

_log = structlog.get_logger(__name__)

READ_CHUNK = 1 << 20
"""Bytes asked of the kernel per read(); each read becomes one block of lines.  About 1 MiB
keeps the objects decoded from a block in the CPU cache while they are turned into columns:
parsing 16 MiB blocks costs half as much again."""

MAX_POLL_BYTES = 16 << 20
"""Default bytes read per poll (all files together); bounds memory when far behind."""

_END_SCAN = 64 << 10
"""With ``start_position="end"``, how far back to look for the start of an unfinished line."""


@dataclass
class FollowerStats:
    """Cumulative counts since the follower was created (``files_watched`` is current)."""

    bytes_read: int = 0
    rotations: int = 0
    truncations: int = 0
    lines_too_long: int = 0
    files_watched: int = 0
    open_errors: int = 0


@dataclass(eq=False)
class _Stream:
    """One open file being read."""

    path: str
    fd: int
    dev: int
    inode: int
    offset: int  # bytes of the file consumed (read) so far
    partial: bytes = b""  # bytes after the last newline, waiting for theirs
    skipping: bool = False  # inside an over-long line: discard until the next newline
    skip_start: int = 0  # file offset where the skipped line began
    fp_digest: str = ""
    fp_len: int = 0

    def line_start(self) -> int:
        """Offset of the first byte not yet handed out as (or dropped with) a complete line."""
        return self.skip_start if self.skipping else self.offset - len(self.partial)

    def position(self, rotated: bool) -> FilePosition:
        return FilePosition(
            path=self.path,
            dev=self.dev,
            inode=self.inode,
            offset=self.line_start(),
            fingerprint=self.fp_digest,
            fingerprint_len=self.fp_len,
            rotated=rotated,
        )


class LogFollower:
    """Poll-based follower of every file matching ``patterns``; see the module docstring.

    Not meant to be shared by threads beyond one poller plus :meth:`save_positions` /
    :meth:`close` from another (for example a signal handler): those take the same lock.
    """

    def __init__(
        self,
        patterns: list[str],
        *,
        start_position: str = "end",
        state_file: str | None = None,
        max_line_bytes: int = 1 << 20,
        max_poll_bytes: int = MAX_POLL_BYTES,
    ) -> None:
        if start_position not in ("end", "beginning"):
            raise ValueError(f"start_position must be 'end' or 'beginning', not {start_position!r}")
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, not {max_line_bytes}")
        self.patterns = list(patterns)
        self.start_position = start_position
        self.state_file = state_file
        self.max_line_bytes = max_line_bytes
        self.max_poll_bytes = max(max_poll_bytes, 1)
        self.stats = FollowerStats()
        self.caught_up = False
        """True after a poll that read every file to its end (for a readiness check)."""
        self._streams: dict[str, _Stream] = {}
        self._draining: list[_Stream] = []
        self._vanished: set[str] = set()  # paths that disappeared: if they come back, a rotation
        self._lock = threading.RLock()
        self._closed = False
        self._saved: dict[str, FilePosition] = {}
        self._saved_rotated: list[FilePosition] = []
        self._have_checkpoint = False
        if state_file:
            loaded = _positions.load_positions(state_file)
            if loaded is not None:
                self._have_checkpoint = True
                for pos in loaded:
                    if pos.rotated:
                        self._saved_rotated.append(pos)
                    else:
                        self._saved[pos.path] = pos
        self._start()

    # --- public API -------------------------------------------------------------------------

    def poll(self) -> list[bytes]:
        """Complete lines (without ``b"\\n"``) appended since the last call, over all files.

        Returns at most about ``max_poll_bytes`` of data per call: when the result is not
        empty, call again soon, there may be more (``caught_up`` tells whether every file
        was read to its end).  Empty lines are left out.  Never raises for I/O trouble
        with one file (it is logged and retried on the next poll).
        """
        lines: list[bytes] = []
        for block in self.poll_blocks():
            lines.extend(block.split(b"\n"))
            lines.pop()  # the empty piece after the block's final newline
        if not all(lines):
            lines = [line for line in lines if line]
        return lines

    def poll_blocks(self) -> list[bytes]:
        """Like :meth:`poll`, but as a few large blocks of complete lines.

        The fast path: :meth:`exporter.records.RecordParser.parse_block` decodes a block
        without it ever being split into a million small ``bytes`` objects.  Every line of
        a block ends with ``b"\\n"``; none is over ``max_line_bytes``; empty lines may occur.
        A block is usually one ``read()`` as it came from the kernel, not copied again.
        """
        with self._lock:
            out: list[bytes] = []
            if self._closed:
                return out
            budget = self.max_poll_bytes
            # Rotated-away and vanished files first: their lines are older.
            for stream in list(self._draining):
                got = self._read(stream, budget, out)
                budget -= got
                if got == 0 and budget > 0:
                    self._finish(stream, out)
            budget = self._check_paths(budget, out)
            for path in sorted(self._streams):
                if budget <= 0:
                    break
                budget -= self._read(self._streams[path], budget, out)
            self.stats.files_watched = len(self._streams)
            self.caught_up = budget > 0
            return out

    def save_positions(self) -> None:
        """Write the checkpoint atomically; a no-op without ``state_file``.

        A failure to write is logged, not raised: losing a checkpoint costs a few re-read
        lines after a restart, stopping the exporter would cost all metrics.
        """
        if not self.state_file:
            return
        with self._lock:
            if self._closed:  # nothing is open: saving now would forget every position
                return
            entries = [s.position(rotated=False) for s in self._streams.values()]
            entries += [s.position(rotated=True) for s in self._draining]
            try:
                _positions.save_positions(self.state_file, entries)
            except OSError as exc:
                _log.warning("checkpoint_write_failed", state_file=self.state_file, error=str(exc))

    def close(self) -> None:
        """Close every open file.  Later polls return nothing; save positions before this."""
        with self._lock:
            self._closed = True
            for stream in [*self._streams.values(), *self._draining]:
                _close_fd(stream.fd)
            self._streams.clear()
            self._draining.clear()
            self.stats.files_watched = 0

    def __enter__(self) -> LogFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- start-up ---------------------------------------------------------------------------

    def _start(self) -> None:
        """Open the matching files at the checkpoint or ``start_position``.

        Done at construction, so ``"end"`` means the end when the exporter started, not when
        it first polled.
        """
        for pos in self._saved_rotated:
            self._resume_rotated(pos)
        for path in self._glob():
            saved = self._saved.pop(path, None)
            stream = self._open(path)
            if stream is None:
                continue
            if self._already_open(stream, path):
                continue
            same_inode = saved is not None and (stream.dev, stream.inode) == (
                saved.dev,
                saved.inode,
            )
            if saved is not None and same_inode:
                if stream_size(stream) >= saved.offset and self._same_file(stream, saved):
                    stream.offset = saved.offset
                else:  # truncated or rewritten in place while we were down (or inode reuse)
                    self.stats.truncations += 1
                    stream.offset = 0
            elif saved is not None:
                # The path now holds another file: the checkpointed one was rotated away while
                # we were down.  Finish it if it is still next to the path, then read this one.
                self._resume_rotated(saved)
                self.stats.rotations += 1
                stream.offset = 0
            elif self._have_checkpoint or self.start_position == "beginning":
                stream.offset = 0  # created since the checkpoint: nothing of it was read
            else:
                self._seek_end(stream)
            self._streams[path] = stream
        for saved in self._saved.values():  # checkpointed paths that no longer exist
            self._resume_rotated(saved)
        self._saved.clear()
        self._saved_rotated.clear()

    def _resume_rotated(self, pos: FilePosition) -> None:
        """Find a checkpointed file by inode beside its old path and drain it from its offset."""
        directory = os.path.dirname(pos.path) or "."
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.inode() != pos.inode or not entry.is_file(follow_symlinks=False):
                    continue
            except OSError:
                continue
            stream = self._open(entry.path)
            if stream is None:
                continue
            if stream.dev == pos.dev and self._same_file(stream, pos):
                stream.offset = min(pos.offset, stream_size(stream))
                stream.path = pos.path
                self._draining.append(stream)
                return
            _close_fd(stream.fd)

    def _already_open(self, stream: _Stream, path: str) -> bool:
        """Whether ``stream``'s file (same ``dev`` and inode) is open already; then close it.

        A file being drained after a rotation, found again under a name the patterns match
        (rotated to such a name, or resumed from the checkpoint), is followed on under
        ``path`` from its offset: reading it again from 0 would count it twice.
        """
        key = (stream.dev, stream.inode)
        owner = next(
            (o for o in [*self._streams.values(), *self._draining] if (o.dev, o.inode) == key),
            None,
        )
        if owner is None:
            return False
        _close_fd(stream.fd)
        if owner in self._draining:
            self._draining.remove(owner)
            owner.path = path
            self._streams[path] = owner
        return True

    def _same_file(self, stream: _Stream, pos: FilePosition) -> bool:
        if (stream.dev, stream.inode) != (pos.dev, pos.inode):
            return False
        if pos.fingerprint_len == 0:
            return True
        try:
            return _positions.matches_fingerprint(stream.fd, pos.fingerprint, pos.fingerprint_len)
        except OSError:
            return False

    def _seek_end(self, stream: _Stream) -> None:
        """Start at the end, but at the start of an unfinished last line, so it is not cut."""
        size = stream_size(stream)
        if size == 0:
            stream.offset = 0
            return
        scan = min(size, _END_SCAN)
        tail = os.pread(stream.fd, scan, size - scan)
        cut = tail.rfind(b"\n")
        if cut >= 0:
            stream.offset = size - scan + cut + 1
        else:  # no line start within reach: skip to the next newline without counting
            stream.offset = size
            stream.skipping = True
            stream.skip_start = size

    # --- every poll -------------------------------------------------------------------------

    def _glob(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.patterns:
            found.update(glob.glob(pattern))
        return sorted(found)

    def _check_paths(self, budget: int, out: list[bytes]) -> int:
        """Detect vanished, replaced (rotated) and new files; detect truncation of open ones.

        A file that was renamed away or removed is read to its current end at once (its lines
        come before those of its successor) and then kept until a poll finds nothing new in
        it.  Returns the budget left.
        """
        for path, stream in list(self._streams.items()):
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is None or (st.st_dev, st.st_ino) != (stream.dev, stream.inode):
                # Vanished or renamed away: drain what the old file still has, then close it.
                del self._streams[path]
                self._draining.append(stream)
                budget -= self._read(stream, budget, out)
                if st is None:
                    self._vanished.add(path)
                else:
                    self.stats.rotations += 1
                continue
            self._check_truncation(stream)
        for path in self._glob():
            if path in self._streams:
                continue
            stream = self._open(path)
            if stream is None:
                continue
            if self._already_open(stream, path):
                continue
            if path in self._vanished:
                self._vanished.discard(path)
                self.stats.rotations += 1
            stream.offset = 0  # a file that appears while we run is read from its start
            self._streams[path] = stream
        return budget

    def _check_truncation(self, stream: _Stream) -> None:
        try:
            size = stream_size(stream)
            replaced = (
                stream.fp_len > 0
                and size >= stream.fp_len
                and not (_positions.matches_fingerprint(stream.fd, stream.fp_digest, stream.fp_len))
            )
        except OSError:
            return
        if size < stream.offset or replaced:
            self.stats.truncations += 1
            stream.offset = 0
            stream.partial = b""
            stream.skipping = False
            stream.fp_digest, stream.fp_len = "", 0

    def _open(self, path: str) -> _Stream | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                self.stats.open_errors += 1
                _log.warning("log_open_failed", path=path, error=str(exc))
            return None
        try:
            st = os.fstat(fd)
        except OSError:
            _close_fd(fd)
            return None
        if not stat.S_ISREG(st.st_mode):
            _close_fd(fd)
            return None
        return _Stream(path=path, fd=fd, dev=st.st_dev, inode=st.st_ino, offset=0)

    def _read(self, stream: _Stream, budget: int, out: list[bytes]) -> int:
        """Read up to ``budget`` bytes of ``stream``; append its complete lines to ``out``."""
        total = 0
        while total < budget:
            try:
                chunk = os.pread(stream.fd, min(READ_CHUNK, budget - total), stream.offset)
            except OSError as exc:
                _log.warning("log_read_failed", path=stream.path, error=str(exc))
                break
            if not chunk:
                break
            if stream.offset == 0 or stream.fp_len < FINGERPRINT_BYTES:
                self._refresh_fingerprint(stream)
            stream.offset += len(chunk)
            total += len(chunk)
            self._split(stream, chunk, out)
        self.stats.bytes_read += total
        return total

    def _refresh_fingerprint(self, stream: _Stream) -> None:
        with contextlib.suppress(OSError):
            stream.fp_digest, stream.fp_len = _positions.fingerprint(stream.fd)

    def _split(self, stream: _Stream, chunk: bytes, out: list[bytes]) -> None:
        """Append the complete lines of ``chunk`` to ``out`` as one block; hold the rest."""
        limit = self.max_line_bytes
        if stream.skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            stream.skipping = False
            chunk = chunk[newline + 1 :]
        cut = chunk.rfind(b"\n")
        if cut < 0:
            stream.partial += chunk
        else:
            # The held partial line plus the complete lines, with at most one copy (none when
            # the read ended on a newline and nothing was held, the usual case).
            if stream.partial:
                block = b"".join((stream.partial, memoryview(chunk)[: cut + 1]))
            else:
                block = chunk if cut + 1 == len(chunk) else chunk[: cut + 1]
            stream.partial = chunk[cut + 1 :]
            if len(block) > limit and has_line_longer_than(block, limit):
                lines = block.split(b"\n")  # the last piece is the empty one after the newline
                kept = [line for line in lines if len(line) <= limit]
                self.stats.lines_too_long += len(lines) - len(kept)
                block = b"\n".join(kept)
            if block:
                out.append(block)
        if len(stream.partial) > limit:
            self.stats.lines_too_long += 1
            stream.skipping = True
            stream.skip_start = stream.offset - len(stream.partial)
            stream.partial = b""

    def _finish(self, stream: _Stream, out: list[bytes]) -> None:
        """Close a drained file; its unterminated last line, if any, is handed out as is."""
        self._draining.remove(stream)
        if stream.partial and not stream.skipping:
            out.append(stream.partial + b"\n")
        _close_fd(stream.fd)


def stream_size(stream: _Stream) -> int:
    return os.fstat(stream.fd).st_size


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
