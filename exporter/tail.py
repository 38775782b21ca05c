"""Follow log files like ``tail -F``: which files, and what to do as they come and go.

:class:`LogFollower` is the tailer; each file it reads is a :class:`exporter.logstream.
LogStream` (appended lines, partial and over-long lines, truncation of that one file are
the stream's: see :mod:`exporter.logstream`).  The follower is polled (no inotify): every
:meth:`LogFollower.poll_blocks` re-globs the patterns, checks each followed file and returns
the complete lines written since the last call.  What can happen to the set of files, and
what the follower does:

- **rotation by rename** (``logrotate`` default, ``RotatingFileHandler``): the path now names
  another inode.  The old file is still open, so it is read to its end first (the writer may
  add a few lines before it reopens; the old file is kept until a poll finds nothing new in
  it), then the new file is read from offset 0.  Counted in ``stats.rotations``.
- **truncation** (``copytruncate``): found by the stream; counted in ``stats.truncations``.
- **a file appears** (matches a pattern for the first time after start-up): read from 0.
- **a file disappears**: what is left in it is read, then it is closed.
- **more matching files than** ``max_files``: at most ``max_files`` descriptors are held
  (files followed plus files being drained), so a glob that matches an archive directory
  cannot exhaust the process' descriptors and take the HTTP listener with it.  The files
  beyond are not opened: they are counted in ``stats.files_over_limit`` and logged when
  they go over (``log_files_over_limit``, one line per poll naming up to 20 of them), never
  silently ignored, and opened, newest first, as soon as descriptors are free.  Files
  being drained after a rotation are always finished.
- **rotated away and idle**: a file followed under the name it was rotated to (patterns
  such as ``app.jsonl*`` also match ``app.jsonl.1``) that has not grown for
  ``close_idle_after`` seconds is closed.  Its position is kept without a descriptor; if it
  grows again it is reopened there, and if it is rotated on (``.1`` -> ``.2``) the position
  follows it by inode.  Without this every rotated file would hold a descriptor for good.

:meth:`LogFollower.state` is the follower's part of the checkpoint
(:mod:`exporter.checkpoint`): positions after the last complete line handed out, and the
cumulative figures up to them.  A follower built with ``resume=`` that state (or with
``state_file``) carries on exactly after the last complete line the previous one handed out.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import structlog

from exporter import checkpoint as _checkpoint
from exporter.checkpoint import Checkpoint, FilePosition
from exporter.logstream import Block, Change, LogStream

_log = structlog.get_logger(__name__)

MAX_POLL_BYTES = 16 << 20
"""Default bytes read per poll (all files together); bounds memory when far behind."""

DEFAULT_MAX_FILES = 256
"""Default ``logs.max_files``.  A model server writes a handful of logs; hundreds of matches
mean a glob that also matches an archive.  256 leaves most of the common 1,024-descriptor
limit to the HTTP server even where the limit cannot be raised."""

CLOSE_IDLE_AFTER = 60.0
"""Seconds a rotated-away file may stay idle before its descriptor is closed.  Long enough
for a writer that reopens its log late (``logrotate`` ``postrotate`` signals) to finish."""

MISSED_MARGIN = 1.0
"""Seconds before a checkpoint's ``taken_at`` from which an unknown rotated file counts as
written after it: file systems with coarse timestamps stamp a write up to a clock tick
early.  Files read to their end in that time are told apart by :data:`FINISHED_KEPT`."""

FINISHED_KEPT = 1024
"""How many files read to their end after a rotation are remembered in the checkpoint."""

_NOT_REGULAR_KEPT = 4096
"""At most this many paths that are not regular files are named, each once."""

_LOGGED_PATHS = 20
"""At most this many paths are named in one ``log_files_over_limit`` warning."""


@dataclass
class FollowerStats:
    """Counts since the first start (restored from a checkpoint); the last two are current."""

    bytes_read: int = 0
    rotations: int = 0
    truncations: int = 0
    lines_too_long: int = 0
    open_errors: int = 0
    files_watched: int = 0  # followed now: open, or closed while rotated away and idle
    files_over_limit: int = 0  # matching but not followed: logs.max_files were open


CUMULATIVE_STATS = ("bytes_read", "rotations", "truncations", "lines_too_long", "open_errors")
"""The :class:`FollowerStats` that only grow: saved in the checkpoint and restored from it."""


class LogFollower:
    """Poll-based follower of every file matching ``patterns``; see the module docstring.

    Not meant to be shared by threads beyond one poller plus :meth:`state` /
    :meth:`save_positions` / :meth:`close` from another: those take the same lock.
    """

    def __init__(
        self,
        patterns: list[str],
        *,
        start_position: str = "end",
        state_file: str | None = None,
        resume: Checkpoint | None = None,
        max_line_bytes: int = 1 << 20,
        max_poll_bytes: int = MAX_POLL_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
        close_idle_after: float = CLOSE_IDLE_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if start_position not in ("end", "beginning"):
            raise ValueError(f"start_position must be 'end' or 'beginning', not {start_position!r}")
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, not {max_line_bytes}")
        if max_files < 1:
            raise ValueError(f"max_files must be at least 1, not {max_files}")
        self.patterns = list(patterns)
        self.start_position = start_position
        self.state_file = state_file
        self.max_line_bytes = max_line_bytes
        self.max_poll_bytes = max(max_poll_bytes, 1)
        self.max_files = max_files
        self.close_idle_after = close_idle_after
        self._clock = clock
        self.stats = FollowerStats()
        #: True after a poll that read every file to its end (for a readiness check)
        self.caught_up = False
        #: (path, byte offset of its first line) of each block the last poll_blocks returned
        self.block_sources: list[tuple[str, int]] = []
        #: (path, offset, first bytes) of each over-long line the last poll_blocks dropped:
        #: counted in ``stats.lines_too_long``, and logged like any rejected line
        self.dropped_lines: list[tuple[str, int, bytes]] = []
        #: bytes already in the files when the exporter started, left unread because of
        #: start_position "end", and in how many files: said in the log, never silently
        self.skipped_at_start = 0
        self.files_skipped_at_start = 0
        self._streams: dict[str, LogStream] = {}  # by path: followed under that name
        self._draining: list[LogStream] = []  # rotated away or vanished: read to the end
        self._parked: dict[str, FilePosition] = {}  # known files without a descriptor
        self._newly_over_limit: list[str] = []  # logged once, at the end of the poll
        self._vanished: set[str] = set()  # paths that disappeared: if they come back, a rotation
        self._not_regular: set[str] = set()  # matches that are not regular files: said once
        self._not_regular_full = False  # more of them than _NOT_REGULAR_KEPT: said once
        self._lock = threading.RLock()
        self._closed = False
        self._saved: dict[str, FilePosition] = {}
        self._saved_rotated: list[FilePosition] = []
        if resume is None and state_file:
            resume = _checkpoint.load_checkpoint(state_file)
        self._have_checkpoint = resume is not None
        self._checkpoint_taken_at = None if resume is None else resume.taken_at
        self._start_positions = () if resume is None else resume.files
        self._intact: set[tuple[int, int]] = set()  # checkpointed files found whole at start
        #: (dev, inode, fingerprint) of files read to their end after a rotation, newest last
        self._finished: deque[tuple[int, int, str]] = deque(
            () if resume is None else resume.finished, maxlen=FINISHED_KEPT
        )
        self._missed: list[FilePosition] = []  # found at start, waiting for a descriptor
        if resume is not None:
            restore_stats(self.stats, resume.follower)
            for pos in resume.files:
                if pos.rotated:
                    self._saved_rotated.append(pos)
                else:
                    self._saved[pos.path] = pos
        self._start()

    # --- public API -------------------------------------------------------------------------

    @property
    def resumed_offsets(self) -> bool:
        """Whether the checkpoint this follower resumed from had read any file past 0."""
        return any(pos.offset > 0 for pos in self._start_positions)

    def poll_blocks(self) -> list[bytes]:
        """The complete lines appended since the last call, over all files, in a few blocks.

        Returns at most about ``max_poll_bytes`` of data per call: when the result is not
        empty, call again soon, there may be more (``caught_up`` tells whether every file
        was read to its end).  Never raises for I/O trouble with one file (it is logged and
        retried on the next poll).  ``block_sources`` says where each block comes from.

        Blocks, not lines, because :meth:`exporter.records.RecordParser.parse_block` decodes
        a block without it ever being split into a million small ``bytes`` objects.  Every
        line of a block ends with ``b"\\n"``; none is over ``max_line_bytes``; empty lines
        may occur (the parser skips them).  A block is usually one ``read()`` as it came
        from the kernel, not copied again.
        """
        with self._lock:
            blocks: list[Block] = []
            self.block_sources = []
            self.dropped_lines = []
            if self._closed:
                return []
            budget = self.max_poll_bytes
            self._open_missed()
            # Rotated-away and vanished files first: their lines are older.
            for stream in list(self._draining):
                got = self._read(stream, budget, blocks)
                budget -= got
                if got == 0 and budget > 0:
                    self._finish(stream, blocks)
            budget = self._check_paths(budget, blocks)
            for path in sorted(self._streams):
                if budget <= 0:
                    break
                stream = self._streams[path]
                if stream.quiet:  # unchanged since a read found nothing new
                    continue
                budget -= self._read(stream, budget, blocks)
            self._close_idle()
            self._log_over_limit()
            over_limit = sum(1 for p in self._parked.values() if p.parked == "over_limit")
            # Idle rotated files are still followed (by stat), files over the limit are not.
            self.stats.files_watched = len(self._streams) + len(self._parked) - over_limit
            self.stats.files_over_limit = over_limit
            self.caught_up = budget > 0
            self.block_sources = [(block.path, block.offset) for block in blocks]
            return [block.data for block in blocks]

    def state(self) -> Checkpoint | None:
        """The follower's part of a checkpoint, consistent with the lines handed out so far.

        Positions are after the last complete line handed out; ``bytes_read`` leaves out the
        bytes of partial lines held back (a successor reads them again).  ``None`` once
        closed: nothing is open, so a state taken now would forget every position.
        """
        with self._lock:
            if self._closed:
                return None
            files = [s.position() for s in self._streams.values()]
            files += [s.position(rotated=True) for s in self._draining]
            files.extend(self._parked.values())
            files.extend(self._missed)
            follower = {name: getattr(self.stats, name) for name in CUMULATIVE_STATS}
            follower["bytes_read"] -= sum(s.held() for s in self._open_streams())
            return Checkpoint(
                files=tuple(files), follower=follower, taken_at=time.time(),
                finished=tuple(self._finished),
            )  # fmt: skip

    def save_positions(self) -> None:
        """Write :meth:`state` to ``state_file`` atomically; a no-op without ``state_file``.

        For a follower used on its own; the exporter saves through
        :meth:`exporter.ingest.Ingestor.checkpoint`, which adds the counters to the record.
        A failure to write is logged, not raised: losing a checkpoint costs a few re-read
        lines after a restart, stopping the exporter would cost all metrics.
        """
        if not self.state_file:
            return
        state = self.state()
        if state is None:
            return
        try:
            _checkpoint.save_checkpoint(self.state_file, state)
        except OSError as exc:
            _log.warning("checkpoint_write_failed", state_file=self.state_file, error=str(exc))

    def close(self) -> None:
        """Close every open file.  Later polls return nothing; save positions before this."""
        with self._lock:
            self._closed = True
            for stream in self._open_streams():
                stream.close()
            self._streams.clear()
            self._draining.clear()
            self._parked.clear()
            self.stats.files_watched = 0

    def open_files(self) -> int:
        """Descriptors held for log files now (never more than ``max_files`` plus drains)."""
        with self._lock:
            return self._open_count()

    def __enter__(self) -> LogFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- start-up ---------------------------------------------------------------------------

    def _start(self) -> None:
        """Open the matching files at the checkpoint or ``start_position``.

        Done at construction, so ``"end"`` means the end when the exporter started, not when
        it first polled.  Files followed before keep their descriptor first; the others are
        taken newest first while ``max_files`` allows, the rest parked at their position.
        """
        for pos in self._saved_rotated:
            self._resume_rotated(pos)
        paths = self._glob()
        known = [p for p in paths if p in self._saved]
        others = _newest_first([p for p in paths if p not in self._saved])
        for path in [*known, *others]:
            saved = self._saved.pop(path, None)
            if saved is not None and saved.parked:
                self._parked[path] = saved  # checked (by stat) on the first poll
                continue
            stream = self._open(path)
            if stream is None:
                continue
            if self._already_open(stream, path):
                continue
            if saved is not None and stream.identity == (saved.dev, saved.inode):
                if stream.resume(saved):
                    self._intact.add(stream.identity)
                else:
                    # truncated or rewritten in place while we were down (or inode reuse)
                    self.stats.truncations += 1
            elif saved is not None:
                # The path now holds another file: the checkpointed one was rotated away while
                # we were down.  Finish it if it is still next to the path, then read this one
                # from 0.
                self._resume_rotated(saved)
                self.stats.rotations += 1
            elif not self._have_checkpoint and self.start_position == "end":
                stream.seek_end()
                if stream.offset:
                    self.skipped_at_start += stream.offset
                    self.files_skipped_at_start += 1
            # else created since the checkpoint, or "beginning": read from 0
            if self._open_count() >= self.max_files:
                self._warn_over_limit(path)
                self._park(stream, "over_limit")
            else:
                self._streams[path] = stream
        for saved in self._saved.values():  # checkpointed paths that no longer exist
            self._resume_rotated(saved)
        if self._checkpoint_taken_at is not None:
            followed = [*self._saved, *self._streams, *self._parked]
            self._find_missed_rotations(followed, self._checkpoint_taken_at)
        self._saved.clear()
        self._saved_rotated.clear()
        self._log_over_limit()

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
            if stream.matches(pos):
                stream.resume_at(replace(pos, offset=min(pos.offset, stream.size())))
                stream.path = pos.path
                self._draining.append(stream)
                self._intact.add(stream.identity)
                return
            stream.close()

    def _find_missed_rotations(self, paths: list[str], taken_at: float) -> None:
        """Queue the files that were created *and* rotated away while the exporter was down.

        Two rotations between the last checkpoint and a restart (``app.jsonl`` ->
        ``app.jsonl.1`` -> ``app.jsonl.2``) leave one file that no checkpoint knows, under a
        name ``logs.paths`` may not match: without this its lines would be lost.  A
        candidate is a regular, uncompressed file beside a followed path, named after it
        with a rotation suffix (``app.jsonl.1``, ``app.jsonl-20261201``), whose inode no
        position holds, that is not one of the files recently read to their end
        (``finished``), and that was written after the checkpoint was taken (less
        :data:`MISSED_MARGIN`, for file systems whose timestamps lag the clock).  A file
        holding the bytes a checkpointed position saw is a copy of it (``copytruncate``):
        read from that position's offset when the original was truncated or is gone, not
        at all when the original is still whole (a backup: its lines are read there).
        Anything else is read from its start.  The files wait in a queue and are opened
        oldest first as descriptors allow (``logs.max_files``); the queue is saved in the
        checkpoint.  Archives written before the checkpoint are never read again.
        """
        known = {s.identity for s in self._open_streams()}
        known |= {(p.dev, p.inode) for p in self._parked.values()}
        finished = {(dev, ino): fp for dev, ino, fp in self._finished}
        bases: dict[str, set[str]] = {}
        for path in paths:
            bases.setdefault(os.path.dirname(path) or ".", set()).add(os.path.basename(path))
        threshold = int((taken_at - MISSED_MARGIN) * 1e9)
        found: list[tuple[int, FilePosition]] = []
        for directory, names in bases.items():
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                if not _rotated_name(entry.name, names):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                identity = (st.st_dev, st.st_ino)
                if not stat.S_ISREG(st.st_mode) or identity in known:
                    continue
                if st.st_mtime_ns < threshold:
                    continue
                pos = self._missed_position(entry.path, finished.get(identity))
                if pos is not None:
                    found.append((st.st_mtime_ns, pos))
        self._missed.extend(pos for _, pos in sorted(found, key=lambda item: item[0]))

    def _missed_position(self, path: str, finished: str | None) -> FilePosition | None:
        """Where to read a candidate of :meth:`_find_missed_rotations` from, or None."""
        stream = self._open(path)
        if stream is None:
            return None
        try:
            if finished is not None and stream.fingerprint_digest() == finished:
                return None  # read to its end before the checkpoint, then closed
            copy_of = next((p for p in self._start_positions if stream.holds(p)), None)
            if copy_of is not None:
                if (copy_of.dev, copy_of.inode) in self._intact:
                    return None  # a backup copy: its lines are read in the original
                stream.resume_at(replace(copy_of, closable=False))
                reason = f"a copy of {copy_of.path} (copytruncate), read from offset"
            else:
                self.stats.rotations += 1
                reason = "created and rotated away while the exporter was down"
            _log.info("rotated_file_found", path=path, size=stream.size(),
                      offset=stream.offset, reason=reason)  # fmt: skip
            return stream.position(rotated=True)
        except OSError:
            return None
        finally:
            stream.close()

    def _open_missed(self) -> None:
        """Give queued missed files (:meth:`_find_missed_rotations`) a descriptor while
        ``logs.max_files`` allows; each is drained like a rotated-away file."""
        while self._missed and self._open_count() < self.max_files:
            pos = self._missed.pop(0)
            stream = self._open(pos.path)
            if stream is not None and stream.matches(pos):
                stream.resume_at(pos)
                self._draining.append(stream)
                continue
            if stream is not None:
                stream.close()
            self._resume_rotated(pos)  # renamed on since: found by inode beside its path

    def _already_open(self, stream: LogStream, path: str) -> bool:
        """Whether ``stream``'s file (same ``dev`` and inode) is open already; then close it.

        A file being drained after a rotation, found again under a name the patterns match
        (rotated to such a name, or resumed from the checkpoint), is followed on under
        ``path`` from its offset: reading it again from 0 would count it twice.  From then
        on it is a rotated-away file, closed once idle.
        """
        owner = next((o for o in self._open_streams() if o.identity == stream.identity), None)
        if owner is None:
            return False
        stream.close()
        self._adopt(owner, path)
        return True

    def _adopt(self, owner: LogStream, path: str) -> None:
        """Follow a file being drained on under ``path``, a name the patterns match."""
        if owner in self._draining:
            self._draining.remove(owner)
            owner.follow_as(path)
            self._streams[path] = owner

    # --- every poll -------------------------------------------------------------------------

    def _glob(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.patterns:
            found.update(glob.glob(pattern))
        return sorted(found)

    def _open_streams(self) -> list[LogStream]:
        """Every stream holding a descriptor: followed, then being drained."""
        return [*self._streams.values(), *self._draining]

    def _open_count(self) -> int:
        return len(self._streams) + len(self._draining)

    def _check_paths(self, budget: int, out: list[Block]) -> int:
        """Detect vanished, replaced (rotated) and new files; detect truncation of open ones.

        A file that was renamed away or removed is read to its current end at once (its lines
        come before those of its successor) and then kept until a poll finds nothing new in
        it.  Parked files (no descriptor) are checked with ``stat`` alone and reopened when
        they grew, or when a descriptor is free for one that waits on ``max_files``.
        Returns the budget left.
        """
        for path, stream in list(self._streams.items()):
            change = stream.check()
            if change is Change.TRUNCATED:
                self.stats.truncations += 1
            elif change is not Change.NONE:
                # Vanished or renamed away: drain what the old file still has, then close it.
                del self._streams[path]
                self._draining.append(stream)
                budget -= self._read(stream, budget, out)
                if change is Change.VANISHED:
                    self._vanished.add(path)
                else:
                    self.stats.rotations += 1
        moved = self._check_parked()
        open_by_inode = {s.identity: s for s in self._open_streams()}
        wanted: list[tuple[str, os.stat_result, FilePosition | None]] = []
        for path in self._glob():
            if path in self._streams:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                self._not_regular_file(path, st)
                continue
            owner = open_by_inode.get((st.st_dev, st.st_ino))
            if owner is not None:  # open already (rotated to this name): needs no descriptor
                self._adopt(owner, path)
                continue
            parked = self._parked.get(path)
            if parked is None:
                parked = moved.pop((st.st_dev, st.st_ino), None)
                if parked is not None:  # a parked file rotated on (.1 -> .2): same position
                    self._parked[path] = parked = replace(parked, path=path)
                else:
                    wanted.append((path, st, None))
                    continue
            if parked.parked == "over_limit" or st.st_size != parked.offset:
                wanted.append((path, st, parked))
        wanted.sort(key=lambda item: item[1].st_mtime_ns, reverse=True)
        for path, st, parked in wanted:
            if self._open_count() >= self.max_files:
                self._over_limit(path, st, parked)
                continue
            self._reopen(path, parked) if parked is not None else self._open_new(path)
        return budget

    def _check_parked(self) -> dict[tuple[int, int], FilePosition]:
        """Check parked files by ``stat``; those no longer at their path, keyed by inode."""
        moved: dict[tuple[int, int], FilePosition] = {}
        for path, pos in list(self._parked.items()):
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is None or (st.st_dev, st.st_ino) != (pos.dev, pos.inode):
                del self._parked[path]
                moved[(pos.dev, pos.inode)] = pos
            elif st.st_size < pos.offset:  # truncated while parked
                self.stats.truncations += 1
                self._parked[path] = replace(
                    pos, offset=0, fingerprint="", fingerprint_len=0, tail_digest="", tail_len=0
                )
        return moved

    def _over_limit(self, path: str, st: os.stat_result, parked: FilePosition | None) -> None:
        """No descriptor for ``path`` now: park it (from 0 when new), log it the first time."""
        if parked is None or parked.parked != "over_limit":
            self._warn_over_limit(path)
        if parked is None:
            parked = FilePosition(path, st.st_dev, st.st_ino, 0, "", 0)
        self._parked[path] = replace(parked, parked="over_limit")

    def _warn_over_limit(self, path: str) -> None:
        self._newly_over_limit.append(path)

    def _log_over_limit(self) -> None:
        """One warning for the files that went over the limit since the last one.

        One line per poll, not per file: a glob matching an archive of thousands of files
        must not flood the exporter's own log.  Up to ``_LOGGED_PATHS`` paths are named.
        """
        paths, self._newly_over_limit = self._newly_over_limit, []
        if paths:
            _log.warning(
                "log_files_over_limit",
                files=len(paths),
                paths=paths[:_LOGGED_PATHS],
                more=max(0, len(paths) - _LOGGED_PATHS),
                max_files=self.max_files,
                hint="raise logs.max_files or narrow logs.paths",
            )

    def _open_new(self, path: str) -> None:
        """Follow a file that appeared while we run: read from its start (a new stream's 0)."""
        stream = self._open(path)
        if stream is None or self._already_open(stream, path):
            return
        if path in self._vanished:
            self._vanished.discard(path)
            self.stats.rotations += 1
        self._streams[path] = stream

    def _reopen(self, path: str, pos: FilePosition) -> None:
        """Give a parked file its descriptor back and carry on from its position."""
        stream = self._open(path)
        if stream is None:
            return
        if stream.identity != (pos.dev, pos.inode):  # replaced since the check
            stream.close()
            return
        del self._parked[path]
        if self._already_open(stream, path):
            return
        if not stream.resume(pos):
            self.stats.truncations += 1
        self._streams[path] = stream

    def _park(self, stream: LogStream, why: str) -> None:
        """Close a stream's descriptor and keep its position instead."""
        self._parked[stream.path] = replace(stream.position(), parked=why)
        stream.close()

    def _close_idle(self) -> None:
        """Park rotated-away files that have not grown for ``close_idle_after`` seconds."""
        for path, stream in list(self._streams.items()):
            if stream.rotated and stream.is_idle(self.close_idle_after):
                del self._streams[path]
                self._park(stream, "idle")

    def _open(self, path: str) -> LogStream | None:
        try:
            stream = LogStream.open(path, max_line_bytes=self.max_line_bytes, clock=self._clock)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.stats.open_errors += 1
            _log.warning("log_open_failed", path=path, error=str(exc))
            return None
        if stream is None:
            with contextlib.suppress(OSError):
                self._not_regular_file(path, os.stat(path))
        return stream

    def _not_regular_file(self, path: str, st: os.stat_result) -> None:
        """Say once per path that a match is not a regular file (a FIFO, a directory, a
        device): it is never read, and a user whose pattern matches only such files would
        otherwise see nothing at all."""
        if path in self._not_regular or stat.S_ISREG(st.st_mode):
            return
        if len(self._not_regular) >= _NOT_REGULAR_KEPT:  # a glob over /dev: said once, then quiet
            if not self._not_regular_full:
                self._not_regular_full = True
                _log.warning("log_path_not_a_file", path=path, kind="many",
                             hint=f"more than {_NOT_REGULAR_KEPT} matches of logs.paths are not "
                             "regular files; no more are named")  # fmt: skip
            return
        self._not_regular.add(path)
        kind = _FILE_KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        _log.warning("log_path_not_a_file", path=path, kind=kind,
                     hint="logs.paths must match regular files; this one is skipped")  # fmt: skip

    def _read(self, stream: LogStream, budget: int, out: list[Block]) -> int:
        """Read up to ``budget`` bytes of ``stream`` into ``out``; add to the figures."""
        got = stream.read(budget, out)
        self.stats.bytes_read += got.bytes_read
        self.stats.lines_too_long += got.lines_too_long
        self.dropped_lines += [(stream.path, offset, head) for offset, head in got.dropped]
        return got.bytes_read

    def _finish(self, stream: LogStream, out: list[Block]) -> None:
        """Close a drained file; its unterminated last line, if any, is handed out as is.
        It is remembered (:attr:`_finished`, saved in the checkpoint), so that a restart
        does not take it for a file rotated away unseen."""
        self._draining.remove(stream)
        with contextlib.suppress(OSError):
            self._finished.append((*stream.identity, stream.fingerprint_digest()))
        last = stream.finish()
        if last is not None:
            out.append(last)


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}

_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")
"""Rotated files with these endings are archives of lines already read, never followed."""


def _rotated_name(name: str, bases: set[str]) -> bool:
    """Whether ``name`` is one of ``bases`` with a rotation suffix: a separator and a digit
    (``app.jsonl.1``, ``app.jsonl-20261201``, ``app.jsonl.2026-12-01``, as ``logrotate``
    and Python's rotating handlers name them), not compressed.  ``app.jsonl.lock`` or
    ``app.jsonl.swp`` are not rotations."""
    if name.endswith(_COMPRESSED):
        return False
    return any(
        len(name) > len(base) + 1
        and name.startswith(base)
        and name[len(base)] in ".-_"
        and name[len(base) + 1].isdigit()
        for base in bases
    )


def restore_stats(stats: FollowerStats, saved: Mapping[str, int]) -> None:
    """Set the cumulative figures of ``stats`` from a checkpoint's ``follower`` part."""
    for name in CUMULATIVE_STATS:
        value = saved.get(name, 0)
        if isinstance(value, int) and value >= 0:
            setattr(stats, name, value)


def _newest_first(paths: list[str]) -> list[str]:
    """``paths`` by modification time, newest first (the live log before archived ones)."""

    def mtime(path: str) -> int:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return 0

    return sorted(paths, key=mtime, reverse=True)
