"""One log file as a source of complete lines: the stream under :mod:`exporter.tail`.

A :class:`LogStream` is one open file and where it is in it: the descriptor, the file's
identity ``(dev, inode)``, the read offset, the unfinished last line held back, the first
bytes and the bytes just before the offset (to recognise the file again).  It knows nothing
of globs, of other files, of checkpoints on disk or of descriptor limits: which files to
follow, and what to do when one is rotated, is the tailer's job (:class:`exporter.tail.
LogFollower`).  Split as mtail splits ``internal/tailer`` from ``internal/tailer/logstream``,
so that what can happen to one file is tested alone (``tests/test_logstream.py``).

What can happen to the one file, and what the stream does:

- **appended lines**: read in large chunks, split on ``\\n``; a last line without its newline
  is held back until the newline arrives.
- **over-long lines** (more than ``max_line_bytes`` without a newline): dropped and counted;
  memory never holds more than one such limit.  Where each one started, and its first bytes,
  are reported (:attr:`Read.dropped`) so that it is logged like any rejected line; the lines
  around it keep their own offsets (a block never spans a dropped line).
- **truncation** (``copytruncate``): the file got shorter than the read offset, its first
  bytes changed, or the bytes just before the read offset changed (truncated and written
  again past the old offset between two checks, even with the same first bytes).  Reading
  restarts at 0.  A file truncated and rewritten with the very same bytes up to the old
  offset cannot be told from one that was appended to: its new lines are read, the
  identical ones are not read twice.
- **its path names another file, or none** (rotation by rename, removal): reported by
  :meth:`LogStream.check`; the stream can still be read to its end and finished.
"""

from __future__ import annotations

import contextlib
import enum
import os
import stat
from collections.abc import Callable
from typing import NamedTuple

import structlog

from exporter import checkpoint as _checkpoint
from exporter.checkpoint import FINGERPRINT_BYTES, TAIL_BYTES, FilePosition
from exporter.records import has_line_longer_than

_log = structlog.get_logger(__name__)

READ_CHUNK = 1 << 20
"""Bytes asked of the kernel per read(); each read becomes one block of lines.  About 1 MiB
keeps the objects decoded from a block in the CPU cache while they are turned into columns:
parsing 16 MiB blocks costs half as much again."""

_QUIET_POLLS = 16
"""An unchanged file is checked in full (first bytes, bytes before the offset) every this
many checks even so: a coarse modification time could hide a same-size rewrite."""

_END_SCAN = 64 << 10
"""How far back :meth:`LogStream.seek_end` looks for the start of an unfinished line."""

_NO_STAT = (-1, -1)

DROPPED_HEAD = 256
"""Bytes kept of the start of a dropped over-long line, for the log's excerpt."""


class Block(NamedTuple):
    """Complete lines of one file, each ending with ``b"\\n"``, none over the line limit."""

    data: bytes
    path: str
    offset: int  # where in the file its first line starts


class Read(NamedTuple):
    """What one :meth:`LogStream.read` consumed: the tailer adds it to its figures."""

    bytes_read: int
    lines_too_long: int
    #: each dropped over-long line: the file offset where it starts, and its first bytes
    dropped: tuple[tuple[int, bytes], ...] = ()


class Change(enum.Enum):
    """What :meth:`LogStream.check` found at the stream's path."""

    NONE = "none"  # the same file, appended to or not
    TRUNCATED = "truncated"  # the same file, truncated (and maybe regrown): now read from 0
    VANISHED = "vanished"  # nothing at the path any more
    REPLACED = "replaced"  # the path names another file: this one was renamed away


class LogStream:
    """One open log file, read from ``offset`` on; see the module docstring.

    ``path`` is the name it is followed under (the tailer renames it when it finds the file
    under a name it was rotated to); ``rotated`` says it is followed under such a name, so
    the tailer may close it once idle.
    """

    __slots__ = (
        "_clock",
        "_dev",
        "_fd",
        "_fp_digest",
        "_fp_len",
        "_inode",
        "_last_growth",
        "_observed",
        "_partial",
        "_quiet_polls",
        "_seen",
        "_skipping",
        "_tail",
        "max_line_bytes",
        "offset",
        "path",
        "quiet",
        "rotated",
    )

    def __init__(
        self,
        path: str,
        fd: int,
        st: os.stat_result,
        *,
        max_line_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self.rotated = False
        #: bytes of the file consumed (read) so far
        self.offset = 0
        #: unchanged since a read last found nothing new: the tailer need not read it now
        self.quiet = False
        #: a longer line is dropped; positive (the tailer checks its setting once)
        self.max_line_bytes = max_line_bytes
        self._fd = fd
        self._dev, self._inode = st.st_dev, st.st_ino
        self._clock = clock
        self._partial = b""  # bytes after the last newline, waiting for theirs
        self._skipping = False  # inside an over-long line: discard until the next newline
        self._fp_digest = ""
        self._fp_len = 0
        self._tail = b""  # the last TAIL_BYTES bytes before ``offset``, as they were read
        self._last_growth = clock()  # when it was opened or last gave bytes
        self._seen = _NO_STAT  # (size, mtime_ns) when a read last found nothing new
        self._observed = _NO_STAT  # (size, mtime_ns) at the last check
        self._quiet_polls = 0  # checks in a row it was quiet

    @property
    def descriptor(self) -> int:
        """The open descriptor, for reads that must see this file and no later one at the
        path (:func:`exporter.linesource.first_line_hash`); closed after :meth:`finish`."""
        return self._fd

    @classmethod
    def open(
        cls, path: str, *, max_line_bytes: int, clock: Callable[[], float]
    ) -> LogStream | None:
        """Open ``path`` at offset 0; ``None`` if it is not a regular file (or went away).

        Raises the ``OSError`` of ``open()`` itself, so the caller can tell a missing file
        (normal while files come and go) from one it may not read (worth a warning).
        Opened non-blocking: a FIFO the patterns match would otherwise block ``open()``
        until a writer came, and the exporter with it (the flag changes nothing for the
        regular files it keeps).
        """
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
        try:
            st = os.fstat(fd)
        except OSError:
            _close_fd(fd)
            return None
        if not stat.S_ISREG(st.st_mode):
            _close_fd(fd)
            return None
        return cls(path, fd, st, max_line_bytes=max_line_bytes, clock=clock)

    # --- what the file is ---------------------------------------------------------------

    @property
    def identity(self) -> tuple[int, int]:
        """``(dev, inode)`` of the open file: the same file whatever its name now."""
        return (self._dev, self._inode)

    def size(self) -> int:
        """The open file's size now (``OSError`` if the descriptor is unusable)."""
        return os.fstat(self._fd).st_size

    def matches(self, pos: FilePosition) -> bool:
        """Same inode, same first bytes, and the same bytes just before ``pos.offset``."""
        return self.identity == (pos.dev, pos.inode) and self._same_bytes(pos)

    def fingerprint_digest(self) -> str:
        """``"<length>:<sha256 of the first bytes>"``: tells this file from another one that
        got its inode later."""
        digest, length = _checkpoint.fingerprint(self._fd)
        return f"{length}:{digest}"

    def holds(self, pos: FilePosition) -> bool:
        """Whether this file has the bytes ``pos`` saw, whatever its inode: at least
        ``pos.offset`` bytes, the same first bytes and the same bytes just before the offset
        (a copy of that file holds them too: ``copytruncate``'s).  A position with nothing
        to compare never matches."""
        if not (pos.fingerprint_len and pos.tail_len):
            return False
        try:
            return self.size() >= pos.offset and self._same_bytes(pos)
        except OSError:
            return False

    def _same_bytes(self, pos: FilePosition) -> bool:
        try:
            if pos.fingerprint_len and not _checkpoint.matches_fingerprint(
                self._fd, pos.fingerprint, pos.fingerprint_len
            ):
                return False
            if pos.tail_len:
                before = os.pread(self._fd, pos.tail_len, pos.offset - pos.tail_len)
                return _checkpoint.digest(before) == pos.tail_digest
        except OSError:
            return False
        return True

    def line_start(self) -> int:
        """Where a successor must resume: after the last complete line handed out.

        Inside an over-long line that is being skipped it is the read offset itself (with
        ``skipping`` saved too): the line was counted as too long once already.
        """
        return self.offset if self._skipping else self.offset - len(self._partial)

    def held(self) -> int:
        """Bytes read but not handed out yet (an unfinished last line)."""
        return self.offset - self.line_start()

    def is_idle(self, after: float) -> bool:
        """No bytes for ``after`` seconds, read to its end, and no unfinished line held."""
        if self._partial or self._skipping:
            return False
        if self._clock() - self._last_growth < after:
            return False
        try:
            return self.size() == self.offset
        except OSError:
            return False

    def position(self, *, rotated: bool = False) -> FilePosition:
        """The stream as a checkpoint entry: where a successor resumes, and how to check it."""
        offset = self.line_start()
        held = self.offset - offset
        if held == 0:
            before = self._tail
        elif held < len(self._tail):
            before = self._tail[:-held]
        else:  # a partial line longer than the tail kept in memory
            length = min(TAIL_BYTES, offset)
            try:
                before = os.pread(self._fd, length, offset - length) if length else b""
            except OSError:
                before = b""
        if self._fp_len < FINGERPRINT_BYTES and offset > self._fp_len:
            self._refresh_fingerprint()
        return FilePosition(
            path=self.path,
            dev=self._dev,
            inode=self._inode,
            offset=offset,
            fingerprint=self._fp_digest,
            fingerprint_len=self._fp_len,
            rotated=rotated,
            tail_digest=_checkpoint.digest(before) if before else "",
            tail_len=len(before),
            skipping=self._skipping,
            closable=self.rotated,
        )

    # --- where to start -----------------------------------------------------------------

    def resume_at(self, pos: FilePosition) -> None:
        """Carry on from a checkpoint entry (already checked with :meth:`matches`)."""
        self.offset = pos.offset
        self._skipping = pos.skipping
        self.rotated = pos.closable
        self._load_tail()

    def resume(self, pos: FilePosition) -> bool:
        """Carry on from ``pos`` if it describes this file; else read it from 0.

        False means the file is not what ``pos`` saw (shorter, rewritten, or the inode
        reused): the caller counts a truncation.
        """
        if self.size() >= pos.offset and self.matches(pos):
            self.resume_at(pos)
            return True
        self._restart()
        return False

    def seek_end(self) -> None:
        """Start at the end, but at the start of an unfinished last line, so it is not cut."""
        size = self.size()
        if size == 0:
            self.offset = 0
            return
        scan = min(size, _END_SCAN)
        tail = os.pread(self._fd, scan, size - scan)
        cut = tail.rfind(b"\n")
        if cut >= 0:
            self.offset = size - scan + cut + 1
            self._tail = tail[: cut + 1][-TAIL_BYTES:]
        else:  # no line start within reach: skip to the next newline without counting
            self.offset = size
            self._skipping = True
            self._tail = tail[-TAIL_BYTES:]

    def follow_as(self, path: str) -> None:
        """Go on under ``path``, a name the file was rotated to; from now on closable once idle."""
        self.path = path
        self.rotated = True
        self._last_growth = self._clock()

    # --- every poll ---------------------------------------------------------------------

    def check(self) -> Change:
        """Whether ``path`` still names this file, and whether it was truncated.

        Truncated means: shorter than the offset, other first bytes, or other bytes just
        before the offset; reading then restarts at 0.  A file whose size and modification
        time are what they were when a read last found nothing new is left alone (``quiet``:
        not even read now), so an idle file costs one ``stat``; every ``_QUIET_POLLS``
        checks it is checked in full anyway, for file systems whose timestamps are too
        coarse to show a rewrite.  A stream whose path names another file or none is no
        longer quiet: it is to be read to its end.
        """
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != self.identity:
            self.quiet, self._observed = False, _NO_STAT
            return Change.VANISHED if st is None else Change.REPLACED
        return Change.TRUNCATED if self._truncated(st) else Change.NONE

    def read(self, budget: int, out: list[Block]) -> Read:
        """Read up to ``budget`` bytes; append its complete lines to ``out``, one block a read."""
        total = 0
        too_long = 0
        dropped: list[tuple[int, bytes]] = []
        while total < budget:
            try:
                chunk = os.pread(self._fd, min(READ_CHUNK, budget - total), self.offset)
            except OSError as exc:
                _log.warning("log_read_failed", path=self.path, error=str(exc))
                break
            if not chunk:
                if total == 0 and self.offset == self._observed[0]:
                    self._seen = self._observed  # nothing new at this size and mtime
                break
            if self.offset == 0 or self._fp_len < FINGERPRINT_BYTES:
                self._refresh_fingerprint()
            self.offset += len(chunk)
            self._tail = (
                chunk[-TAIL_BYTES:]
                if len(chunk) >= TAIL_BYTES
                else (self._tail + chunk)[-TAIL_BYTES:]
            )
            total += len(chunk)
            too_long += self._split(chunk, out, dropped)
        if total:
            self._last_growth = self._clock()
        return Read(total, too_long, tuple(dropped))

    def finish(self) -> Block | None:
        """Close the file; its unterminated last line, if any, as a block of its own.

        For a file that will not grow again (rotated away and drained, or removed): the
        writer is gone, so a last line without its newline is as complete as it will get.
        """
        self.close()
        if self._partial and not self._skipping:
            return Block(self._partial + b"\n", self.path, self.offset - len(self._partial))
        return None

    def close(self) -> None:
        _close_fd(self._fd)

    # --- inside -------------------------------------------------------------------------

    def _truncated(self, st: os.stat_result) -> bool:
        """Restart at 0 if the file was truncated, even if it regrew since; see :meth:`check`."""
        observed = (st.st_size, st.st_mtime_ns)
        self._observed = observed
        self.quiet = (
            observed == self._seen
            and st.st_size == self.offset
            and self._quiet_polls < _QUIET_POLLS
        )
        if self.quiet:
            self._quiet_polls += 1
            return False
        self._quiet_polls = 0
        size = st.st_size
        try:
            replaced = (
                self._fp_len > 0
                and size >= self._fp_len
                and not _checkpoint.matches_fingerprint(self._fd, self._fp_digest, self._fp_len)
            )
            regrown = (
                not replaced
                and bool(self._tail)
                and size >= self.offset
                and os.pread(self._fd, len(self._tail), self.offset - len(self._tail)) != self._tail
            )
        except OSError:
            return False
        if size < self.offset or replaced or regrown:
            self._restart()
            return True
        return False

    def _restart(self) -> None:
        """Read again from 0, forgetting everything learnt from the bytes read so far."""
        self.offset = 0
        self._partial = b""
        self._skipping = False
        self._fp_digest, self._fp_len = "", 0
        self._tail = b""

    def _split(self, chunk: bytes, out: list[Block], dropped: list[tuple[int, bytes]]) -> int:
        """Append the complete lines of ``chunk`` to ``out`` as one block; hold the rest.

        Returns how many lines went over ``max_line_bytes`` (dropped), each also added to
        ``dropped`` with its offset.  A block with a dropped line is cut around it, so each
        block's offset is still where its first line starts (the rejected-line log and the
        outcome store count on it).
        """
        limit = self.max_line_bytes
        too_long = 0
        if self._skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return 0
            self._skipping = False
            chunk = chunk[newline + 1 :]
        cut = chunk.rfind(b"\n")
        start = self.offset - len(chunk) - len(self._partial)  # where the block begins
        if cut < 0:
            self._partial += chunk
        else:
            # The held partial line plus the complete lines, with at most one copy (none when
            # the read ended on a newline and nothing was held, the usual case).
            if self._partial:
                block = b"".join((self._partial, memoryview(chunk)[: cut + 1]))
            else:
                block = chunk if cut + 1 == len(chunk) else chunk[: cut + 1]
            self._partial = chunk[cut + 1 :]
            if len(block) > limit and has_line_longer_than(block, limit):
                too_long += self._drop_long(block, start, out, dropped)
            elif block:
                out.append(Block(block, self.path, start))
        if len(self._partial) > limit:
            too_long += 1
            dropped.append((self.offset - len(self._partial), self._partial[:DROPPED_HEAD]))
            self._skipping = True
            self._partial = b""
        return too_long

    def _drop_long(
        self, block: bytes, start: int, out: list[Block], dropped: list[tuple[int, bytes]]
    ) -> int:
        """Append the lines of ``block`` (complete ones) that fit the limit, as blocks cut
        at each over-long line; returns how many were dropped."""
        limit = self.max_line_bytes
        count = 0
        pos = kept = 0  # where the current line starts; where the kept run starts
        while pos < len(block):
            end = block.index(b"\n", pos) + 1
            if end - 1 - pos > limit:
                count += 1
                dropped.append((start + pos, block[pos : min(end - 1, pos + DROPPED_HEAD)]))
                if pos > kept:
                    out.append(Block(block[kept:pos], self.path, start + kept))
                kept = end
            pos = end
        if kept < len(block):
            out.append(Block(block[kept:], self.path, start + kept))
        return count

    def _refresh_fingerprint(self) -> None:
        with contextlib.suppress(OSError):
            self._fp_digest, self._fp_len = _checkpoint.fingerprint(self._fd)

    def _load_tail(self) -> None:
        """Read the bytes just before the offset, for the regrowth check of later polls."""
        length = min(TAIL_BYTES, self.offset)
        try:
            self._tail = os.pread(self._fd, length, self.offset - length) if length else b""
            if self._fp_len < FINGERPRINT_BYTES:
                self._refresh_fingerprint()
        except OSError:
            self._tail = b""


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
