"""Which file, and which content of it, each block of lines came from: the ``source`` half of
the outcome store's line identities ``(source, offset)``.

The store skips a line at or below its source's high-water offset
(:meth:`exporter.outcomes.OutcomeStore.apply_blocks`), so that the lines the follower reads
again after a SIGKILL change nothing.  That needs a name for the bytes a line sits in that
holds across restarts and never names two contents:

- not the path: after a rotation the old file is drained under the same path the new one is
  read from, both from offsets that may coincide;
- the file's ``dev:inode``, which the checkpoint also records, and
- a *generation*: a hash of the file's first line, read through the descriptor the follower
  holds, and after each truncation a count (``<crc>.<n>``).  A truncated file
  (``copytruncate``) keeps its inode and is read again from 0, often with the same first
  line (a banner a server writes at start): the count gives its new content a new source
  all the same.  The generation is saved with the file's position in the checkpoint, so
  the name survives restarts; and it is deterministic, so a crash between a truncation and
  the next checkpoint names the re-read content as before (its lines are replays).  The
  ingest loop checkpoints after every poll that names a generation
  (:attr:`IdentifyingFollower.generations_changed`), so no more than one truncation is ever
  counted from what was saved.

:class:`IdentifyingFollower` is a :class:`~exporter.tail.LogFollower` that records the source
of each block it hands out in :attr:`~IdentifyingFollower.block_files`, beside
``block_sources``.  :func:`committed_offsets` turns a checkpoint's positions into what
:meth:`~exporter.outcomes.OutcomeStore.prune_lines` takes.

Known limit: when the follower drops an over-long line inside a block, the offsets of the
lines after it in that block are short by its length (the block no longer holds it).  The
last lines of such a block (those within that length of its end) may then be applied twice
if the exporter is killed before the next checkpoint and the block is read again with other
boundaries.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from exporter.checkpoint import Checkpoint, FilePosition
from exporter.logstream import Block, LogStream
from exporter.tail import LogFollower

FIRST_LINE_BYTES = 4096
"""The generation hashes the file's first line, or its first this many bytes if longer."""


class IdentifyingFollower(LogFollower):
    """A log follower that also names the source of every block it hands out.

    ``block_files[i]`` is the source (``"dev:inode:generation"``) of ``block_sources[i]``.
    Built on the two steps of :class:`~exporter.tail.LogFollower` that hand out blocks
    (``_read`` and ``_finish``); :meth:`poll_blocks` checks that every block got its
    source, so a change there fails loudly instead of mislabelling lines.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.block_files: list[str] = []
        self._generations: dict[tuple[int, int], str] = {}  # (dev, inode) -> generation
        # a generation named since the last state(): the ingest loop checkpoints at once, so
        # no generation is ever only in memory past the poll that named it (a crash after
        # two truncations, or after a file's first read and its truncation, between two
        # timed checkpoints would otherwise count the truncations anew from what was saved)
        self.generations_changed = False
        super().__init__(*args, **kwargs)
        for pos in self._start_positions:  # no block is handed out before the first poll
            if pos.generation:
                self._generations.setdefault((pos.dev, pos.inode), pos.generation)

    def state(self) -> Checkpoint | None:
        """:meth:`LogFollower.state` with each file's generation in its position."""
        with self._lock:
            state = super().state()
            if state is None:
                return None
            files = tuple(
                replace(p, generation=self._generations.get((p.dev, p.inode), p.generation))
                for p in state.files
            )
            self.generations_changed = False
            return replace(state, files=files)

    def poll_blocks(self) -> list[bytes]:
        with self._lock:
            self.block_files = []
            blocks = super().poll_blocks()
            if len(self.block_files) != len(self.block_sources):
                raise RuntimeError(
                    f"{len(self.block_sources)} blocks but {len(self.block_files)} sources: "
                    "exporter.tail changed where blocks are handed out"
                )
            return blocks

    def generation(self, dev: int, inode: int) -> str | None:
        """The current generation of the file ``(dev, inode)``, if this process read it."""
        return self._generations.get((dev, inode))

    # the two places where LogFollower hands out blocks (both take the block list ``out``)
    def _read(self, stream: LogStream, budget: int, out: list[Block]) -> int:
        before = len(out)
        got = super()._read(stream, budget, out)
        self._name(stream.identity, out[before:], lambda: first_line_hash(stream.descriptor))
        return got

    def _finish(self, stream: LogStream, out: list[Block]) -> None:
        # hashed before: the file's descriptor is closed once its last line is handed out
        head = first_line_hash(stream.descriptor)
        before = len(out)
        super()._finish(stream, out)
        self._name(stream.identity, out[before:], lambda: head)

    def _name(
        self, key: tuple[int, int], blocks: list[Block], hash_first_line: Callable[[], str]
    ) -> None:
        for block in blocks:
            generation = self._generations.get(key)
            if generation is None:  # a file this process (and its checkpoint) never named
                generation = hash_first_line()
                self._generations[key] = generation
                self.generations_changed = True
            elif block.offset == 0:  # a file named before, read from 0 again: truncated
                generation = next_generation(generation, hash_first_line())
                self._generations[key] = generation
                self.generations_changed = True
            self.block_files.append(source_name(*key, generation))


def next_generation(old: str, first_line: str) -> str:
    """The generation after a truncation: the new first line's hash and one more truncation
    than ``old`` counts (the first line alone would name the content before again)."""
    _, dot, count = old.partition(".")
    n = int(count) if dot and count.isdecimal() and count.isascii() else 0
    return f"{first_line}.{n + 1}"


def first_line_hash(fd: int) -> str:
    """CRC-32 (hex) of the file's first line, or of its first :data:`FIRST_LINE_BYTES`."""
    try:
        head = os.pread(fd, FIRST_LINE_BYTES, 0)
    except OSError:  # read again at the next block from offset 0
        return "unread"
    newline = head.find(b"\n")
    return f"{zlib.crc32(head if newline < 0 else head[:newline]):08x}"


def source_name(dev: int, inode: int, generation: str) -> str:
    return f"{dev}:{inode}:{generation}"


def parse_source(name: str) -> tuple[int, int, str] | None:
    """``(dev, inode, generation)`` of a :func:`source_name`, None for another name."""
    parts = name.split(":")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1]), parts[2]


def committed_offsets(
    positions: Iterable[FilePosition],
    sources: Iterable[str],
    follower: IdentifyingFollower,
) -> dict[str, int]:
    """What :meth:`~exporter.outcomes.OutcomeStore.prune_lines` takes after a checkpoint.

    A source whose file is in the checkpoint, and is that file's current content (or its
    content is not known yet: after a restart, before the file was read), keeps its
    high-water offset: the lines after the saved offset can be read again.  Every other
    source is left out, so the store forgets it: an old generation of a truncated file, or
    a file the follower dropped, is never read again.
    """
    by_file: Mapping[tuple[int, int], int] = {(p.dev, p.inode): p.offset for p in positions}
    out: dict[str, int] = {}
    for name in sources:
        parsed = parse_source(name)
        if parsed is None:
            continue
        dev, inode, generation = parsed
        offset = by_file.get((dev, inode))
        if offset is None:
            continue
        current = follower.generation(dev, inode)
        if current is None or current == generation:
            out[name] = offset
    return out
