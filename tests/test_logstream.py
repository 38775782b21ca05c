"""What can happen to one log file, and what its LogStream does (real files, no tailer).

The tailer's situations (globs, rotation handled by draining, descriptor limits, restarts)
are in ``tests/test_tail.py``; here one file is opened, appended to, truncated, rewritten,
renamed and removed under a single :class:`LogStream`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import exporter.logstream as logstream
from exporter.logstream import Block, Change, LogStream


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def _padded(tag: str, n: int) -> bytes:
    """``n`` lines whose first 300 bytes are alike whatever ``tag``: the 256-byte head
    fingerprint cannot tell one tag's file from another's."""
    pad = "p" * 300
    return b"".join(f'{{"pad": "{pad}", "run": "{tag}", "i": {i}}}\n'.encode() for i in range(n))


def _open(path: Path, max_line_bytes: int = 1 << 20, clock: _Clock | None = None) -> LogStream:
    stream = LogStream.open(str(path), max_line_bytes=max_line_bytes, clock=clock or _Clock())
    assert stream is not None
    return stream


def _read(stream: LogStream, budget: int = 1 << 30) -> list[bytes]:
    """The blocks of one read, as bytes."""
    out: list[Block] = []
    stream.read(budget, out)
    return [block.data for block in out]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "model.jsonl"
    path.touch()
    return path


@pytest.fixture
def stream(log: Path) -> Iterator[LogStream]:
    opened = _open(log)
    yield opened
    opened.close()


def test_appended_lines_come_as_one_block_naming_path_and_offset(
    log: Path, stream: LogStream
) -> None:
    _append(log, b'{"a": 1}\n{"a": 2}\n')
    out: list[Block] = []
    got = stream.read(1 << 20, out)
    assert out == [Block(b'{"a": 1}\n{"a": 2}\n', str(log), 0)]
    assert got == (18, 0, ())
    _append(log, b'{"a": 3}\n')
    out.clear()
    stream.read(1 << 20, out)
    assert out == [Block(b'{"a": 3}\n', str(log), 18)]
    assert stream.offset == 27


def test_partial_line_is_held_until_its_newline_arrives(log: Path, stream: LogStream) -> None:
    _append(log, b'{"a": 1}\n{"b": ')
    assert _read(stream) == [b'{"a": 1}\n']
    assert (stream.offset, stream.line_start(), stream.held()) == (15, 9, 6)
    _append(log, b"2")
    assert _read(stream) == []
    _append(log, b"}\n")
    out: list[Block] = []
    stream.read(1 << 20, out)
    assert out == [Block(b'{"b": 2}\n', str(log), 9)]  # the block starts at the held line
    assert stream.held() == 0


def test_each_read_of_read_chunk_bytes_is_one_block(
    log: Path, stream: LogStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logstream, "READ_CHUNK", 20)
    lines = [f'{{"n": {i}}}\n'.encode() for i in range(10)]  # 9 or 10 bytes each
    _append(log, b"".join(lines))
    blocks = _read(stream)
    assert len(blocks) > 1
    assert all(block.endswith(b"\n") for block in blocks)
    assert b"".join(blocks) == b"".join(lines)


def test_read_takes_no_more_than_its_budget_and_the_rest_next_time(
    log: Path, stream: LogStream
) -> None:
    _append(log, b'{"a": 1}\n{"a": 2}\n')
    assert stream.read(12, []).bytes_read == 12
    assert stream.held() == 3
    assert _read(stream) == [b'{"a": 2}\n']


def test_line_over_the_limit_in_one_read_is_dropped_and_counted(log: Path) -> None:
    stream = _open(log, max_line_bytes=10)
    _append(log, b'{"ok": 1}\n' + b"x" * 11 + b'\n{"ok": 2}\n')
    out: list[Block] = []
    got = stream.read(1 << 20, out)
    assert got.lines_too_long == 1
    # reported where it starts, with its first bytes; the blocks around it keep their own
    # offsets (one block over the gap would give every later line a wrong offset)
    assert got.dropped == ((10, b"x" * 11),)
    assert out == [
        Block(b'{"ok": 1}\n', str(log), 0),
        Block(b'{"ok": 2}\n', str(log), 22),
    ]
    stream.close()


def test_line_over_the_limit_growing_across_reads_is_dropped_once(log: Path) -> None:
    stream = _open(log, max_line_bytes=16)
    _append(log, b'{"ok": 1}\n' + b"z" * 10)
    assert stream.read(1 << 20, []) == (20, 0, ())
    _append(log, b"z" * 10)  # now over the limit, still no newline: dropped, memory freed
    assert stream.read(1 << 20, []) == (10, 1, ((10, b"z" * 20),))  # from its start
    assert stream.held() == 0
    _append(log, b"z" * 100)
    assert stream.read(1 << 20, []) == (100, 0, ())  # not counted twice
    _append(log, b'z\n{"ok": 2}\n')
    assert _read(stream) == [b'{"ok": 2}\n']
    stream.close()


def test_unchanged_file_is_quiet_after_a_read_found_nothing_new(
    log: Path, stream: LogStream
) -> None:
    _append(log, b'{"a": 1}\n')
    assert stream.check() is Change.NONE
    _read(stream)
    assert stream.check() is Change.NONE
    assert _read(stream) == []  # found nothing new at this size and mtime
    assert stream.check() is Change.NONE
    assert stream.quiet
    _append(log, b'{"a": 2}\n')
    assert stream.check() is Change.NONE
    assert not stream.quiet


def test_truncation_to_a_shorter_file_restarts_at_zero(log: Path, stream: LogStream) -> None:
    _append(log, b'{"before": 1}\n{"before": 2}\n')
    _read(stream)
    os.truncate(log, 0)
    _append(log, b'{"x": 1}\n')
    assert stream.check() is Change.TRUNCATED
    assert stream.offset == 0
    assert _read(stream) == [b'{"x": 1}\n']


def test_truncation_and_regrowth_past_the_offset_with_the_same_first_bytes_is_found(
    log: Path, stream: LogStream
) -> None:
    _append(log, _padded("one", 10))
    _read(stream)
    log.write_bytes(_padded("two", 100))  # truncated, then written far past the old offset
    assert stream.check() is Change.TRUNCATED
    assert b"".join(_read(stream)) == _padded("two", 100)


def test_same_size_rewrite_hidden_by_a_coarse_mtime_is_found_within_a_few_checks(
    log: Path, stream: LogStream
) -> None:
    _append(log, _padded("aaa", 5))
    stream.check()
    _read(stream)
    stream.check()
    _read(stream)  # nothing new: quiet from the next check on
    before = log.stat()
    with open(log, "r+b") as handle:
        handle.write(_padded("bbb", 5))
    os.utime(log, ns=(before.st_atime_ns, before.st_mtime_ns))  # as a 1 s clock would show
    changes = [stream.check() for _ in range(logstream._QUIET_POLLS + 2)]
    assert changes.count(Change.TRUNCATED) == 1
    assert b"".join(_read(stream)) == _padded("bbb", 5)


def test_renamed_away_it_is_reported_and_still_read_to_its_end(
    log: Path, stream: LogStream
) -> None:
    _append(log, b'{"a": 1}\n')
    _read(stream)
    rotated = log.with_suffix(".jsonl.1")
    os.rename(log, rotated)
    _append(rotated, b'{"a": 2}\n{"last": ')
    log.touch()  # the writer's new file
    assert stream.check() is Change.REPLACED
    assert stream.path == str(log)  # what it is followed under is the tailer's to change
    assert _read(stream) == [b'{"a": 2}\n']
    last = stream.finish()  # unterminated: handed out as it is
    assert last == Block(b'{"last": \n', str(log), 18)


def test_removed_it_is_reported_as_vanished(log: Path, stream: LogStream) -> None:
    _append(log, b'{"a": 1}\n')
    log.unlink()
    assert stream.check() is Change.VANISHED
    assert _read(stream) == [b'{"a": 1}\n']
    assert stream.finish() is None


def test_seek_end_keeps_an_unfinished_last_line_whole(log: Path) -> None:
    _append(log, b'{"old": 1}\n{"half": ')
    stream = _open(log)
    stream.seek_end()
    assert stream.offset == len(b'{"old": 1}\n')
    _append(log, b'"done"}\n')
    assert _read(stream) == [b'{"half": "done"}\n']
    stream.close()


def test_seek_end_without_a_line_start_in_reach_skips_to_the_next_newline(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logstream, "_END_SCAN", 8)
    _append(log, b'{"a line longer than the scan": 1}')
    stream = _open(log)
    stream.seek_end()
    _append(log, b'\n{"next": 1}\n')
    out: list[Block] = []
    assert stream.read(1 << 20, out).lines_too_long == 0  # skipped, not counted
    assert [block.data for block in out] == [b'{"next": 1}\n']
    stream.close()


def test_position_and_resume_carry_on_after_the_last_complete_line(log: Path) -> None:
    first = _open(log)
    _append(log, b'{"a": 1}\n{"a": ')
    _read(first)
    pos = first.position()
    first.close()
    assert pos.offset == len(b'{"a": 1}\n')
    _append(log, b"2}\n")
    second = _open(log)
    assert second.resume(pos)
    assert _read(second) == [b'{"a": 2}\n']
    second.close()


def test_resume_of_a_rewritten_file_reads_it_from_zero(log: Path) -> None:
    first = _open(log)
    _append(log, _padded("one", 10))
    _read(first)
    pos = first.position()
    first.close()
    with open(log, "r+b") as handle:  # same inode, same first bytes, other bytes before
        handle.write(_padded("two", 10))
    second = _open(log)
    assert not second.resume(pos)
    assert second.offset == 0
    assert b"".join(_read(second)) == _padded("two", 10)
    second.close()


def test_position_inside_an_over_long_line_resumes_skipping_it(log: Path) -> None:
    first = _open(log, max_line_bytes=8)
    _append(log, b'{"a": 1}\n' + b"z" * 20)
    _read(first)
    pos = first.position()
    first.close()
    assert pos.skipping
    _append(log, b'zz\n{"b": 2}\n')
    second = _open(log, max_line_bytes=8)
    assert second.resume(pos)
    out: list[Block] = []
    assert second.read(1 << 20, out).lines_too_long == 0  # counted by the first already
    assert [block.data for block in out] == [b'{"b": 2}\n']
    second.close()


def test_idle_once_read_to_its_end_and_quiet_for_long_enough(log: Path) -> None:
    clock = _Clock()
    stream = _open(log, clock=clock)
    _append(log, b'{"a": 1}\n')
    clock.now += 100
    assert not stream.is_idle(60)  # bytes not read yet
    _read(stream)
    assert not stream.is_idle(60)  # they were just read
    clock.now += 61
    assert stream.is_idle(60)
    _append(log, b'{"b": ')
    _read(stream)
    clock.now += 61
    assert not stream.is_idle(60)  # holds an unfinished line
    stream.close()


def test_open_gives_none_for_a_directory_and_raises_for_a_missing_file(tmp_path: Path) -> None:
    assert LogStream.open(str(tmp_path), max_line_bytes=1, clock=_Clock()) is None
    with pytest.raises(FileNotFoundError):
        LogStream.open(str(tmp_path / "absent.jsonl"), max_line_bytes=1, clock=_Clock())
