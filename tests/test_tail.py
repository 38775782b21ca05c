"""What can happen to a log file, and what LogFollower does about it (real files, real renames).

Named after the situations of mtail's tailer tests: rotation, truncation, partial lines,
files coming and going, restarts from a checkpoint.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from exporter.checkpoint import STATE_VERSION
from exporter.tail import LogFollower


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def _lines(prefix: str, n: int, start: int = 0) -> list[bytes]:
    return [f'{{"{prefix}": {i}}}'.encode() for i in range(start, start + n)]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    _append(path, b"".join(line + b"\n" for line in lines))


def _poll(follower: LogFollower) -> list[bytes]:
    """The lines of one :meth:`LogFollower.poll_blocks`, without the empty ones.

    The parser skips empty lines (``RecordParser.parse_block``); here they are left out so
    a test can compare lines.  ``test_empty_lines_are_passed_on_inside_blocks`` shows them.
    """
    return [line for block in follower.poll_blocks() for line in block.split(b"\n") if line]


def _drain(follower: LogFollower, polls: int = 5) -> list[bytes]:
    """Poll until caught up (and a couple more polls, so drained files get closed)."""
    out: list[bytes] = []
    for _ in range(polls):
        out.extend(_poll(follower))
    return out


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "model.jsonl"
    path.touch()
    return path


def test_appended_lines_are_returned_once(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _write_lines(log, _lines("a", 3))
        assert _poll(follower) == _lines("a", 3)
        assert _poll(follower) == []
        _write_lines(log, _lines("a", 2, start=3))
        assert _poll(follower) == _lines("a", 2, start=3)
        assert follower.stats.bytes_read == log.stat().st_size
        assert follower.stats.files_watched == 1


def test_start_position_end_skips_existing_lines_reads_new_ones(log: Path) -> None:
    _write_lines(log, _lines("old", 5))
    with LogFollower([str(log)], start_position="end") as follower:
        assert _poll(follower) == []
        _write_lines(log, _lines("new", 2))
        assert _poll(follower) == _lines("new", 2)


def test_start_position_end_keeps_an_unfinished_last_line_whole(log: Path) -> None:
    _append(log, b'{"old": 1}\n{"half": ')
    with LogFollower([str(log)], start_position="end") as follower:
        assert _poll(follower) == []
        _append(log, b'"done"}\n')
        assert _poll(follower) == [b'{"half": "done"}']


def test_partial_line_is_held_until_its_newline_arrives(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _append(log, b'{"a": 1}\n{"b": ')
        assert _poll(follower) == [b'{"a": 1}']
        _append(log, b"2")
        assert _poll(follower) == []
        _append(log, b"}\n")
        assert _poll(follower) == [b'{"b": 2}']


def test_empty_lines_are_passed_on_inside_blocks(log: Path) -> None:
    """Not filtered here: the parser skips them without splitting the block."""
    with LogFollower([str(log)], start_position="beginning") as follower:
        _append(log, b'\n{"a": 1}\n\n\n{"b": 2}\n')
        assert follower.poll_blocks() == [b'\n{"a": 1}\n\n\n{"b": 2}\n']
        assert follower.block_sources == [(str(log), 0)]


def test_rotation_by_rename_finishes_old_file_then_reads_new_from_start(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _write_lines(log, _lines("old", 3))
        assert _poll(follower) == _lines("old", 3)
        # The writer still holds the old file: it adds two lines after the rename...
        with open(log, "ab") as writer:
            os.rename(log, log.with_suffix(".jsonl.1"))
            writer.write(b"".join(line + b"\n" for line in _lines("old", 2, start=3)))
        # ...then reopens the path, which is a new file.
        _write_lines(log, _lines("new", 2))
        got = _drain(follower)
        assert got == _lines("old", 2, start=3) + _lines("new", 2)
        assert follower.stats.rotations == 1
        assert follower.stats.files_watched == 1
        _write_lines(log, _lines("new", 1, start=2))
        assert _poll(follower) == _lines("new", 1, start=2)


def test_rotation_by_rename_with_new_file_created_later(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _write_lines(log, _lines("old", 2))
        assert _poll(follower) == _lines("old", 2)
        os.rename(log, log.with_suffix(".jsonl.1"))
        _write_lines(log.with_suffix(".jsonl.1"), _lines("old", 1, start=2))
        assert _drain(follower) == _lines("old", 1, start=2)
        assert follower.stats.files_watched == 0
        _write_lines(log, _lines("new", 2))
        assert _poll(follower) == _lines("new", 2)
        assert follower.stats.rotations == 1
        assert follower.stats.files_watched == 1


def test_rotation_by_rename_to_a_name_the_glob_also_matches_is_not_read_twice(
    tmp_path: Path,
) -> None:
    log = tmp_path / "model.jsonl"
    rotated = tmp_path / "model.jsonl.1"
    with LogFollower([str(tmp_path / "model.jsonl*")], start_position="beginning") as follower:
        _write_lines(log, _lines("old", 3))
        assert _poll(follower) == _lines("old", 3)
        os.rename(log, rotated)
        _write_lines(rotated, _lines("old", 1, start=3))
        _write_lines(log, _lines("new", 2))
        got = _drain(follower)
        assert sorted(got) == sorted(_lines("old", 1, start=3) + _lines("new", 2))
        assert follower.stats.files_watched == 2
        _write_lines(rotated, _lines("old", 1, start=4))  # still followed, from where it was
        assert _poll(follower) == _lines("old", 1, start=4)


def test_restart_with_rotated_file_matched_by_the_glob_reads_each_line_once(
    tmp_path: Path,
) -> None:
    state = tmp_path / "positions.json"
    log = tmp_path / "model.jsonl"
    pattern = str(tmp_path / "model.jsonl*")
    first = LogFollower([pattern], start_position="beginning", state_file=str(state))
    _write_lines(log, _lines("old", 2))
    assert _poll(first) == _lines("old", 2)
    first.save_positions()
    first.close()
    _write_lines(log, _lines("old", 1, start=2))
    os.rename(log, tmp_path / "model.jsonl.1")
    _write_lines(log, _lines("new", 2))
    second = LogFollower([pattern], start_position="end", state_file=str(state))
    got = _drain(second)
    assert sorted(got) == sorted(_lines("old", 1, start=2) + _lines("new", 2))
    second.close()


def test_rotation_by_rename_hands_out_unterminated_last_line_of_old_file(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _append(log, b'{"a": 1}\n{"last": 2}')
        assert _poll(follower) == [b'{"a": 1}']
        os.rename(log, log.with_suffix(".jsonl.1"))
        _write_lines(log, [b'{"new": 1}'])
        assert _drain(follower) == [b'{"new": 1}', b'{"last": 2}']


def test_truncation_copytruncate_restarts_at_zero(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _write_lines(log, _lines("before", 4))
        assert _poll(follower) == _lines("before", 4)
        os.truncate(log, 0)
        _write_lines(log, [b'{"x": 1}'])  # shorter than what was read
        assert _poll(follower) == [b'{"x": 1}']
        assert follower.stats.truncations == 1
        assert follower.stats.rotations == 0


def test_truncation_then_regrowth_past_the_offset_is_noticed_by_fingerprint(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _write_lines(log, _lines("before", 2))
        assert _poll(follower) == _lines("before", 2)
        with open(log, "wb") as handle:  # truncate and write more than before, between polls
            handle.write(b"".join(line + b"\n" for line in _lines("after", 10)))
        assert _poll(follower) == _lines("after", 10)
        assert follower.stats.truncations == 1


def test_file_appears_later_is_read_from_its_start(tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.jsonl")
    with LogFollower([pattern], start_position="end") as follower:
        assert _poll(follower) == []
        assert follower.stats.files_watched == 0
        _write_lines(tmp_path / "late.jsonl", _lines("late", 3))
        assert _poll(follower) == _lines("late", 3)
        assert follower.stats.files_watched == 1


def test_file_disappears_its_remaining_lines_are_read_then_it_is_closed(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _write_lines(log, _lines("a", 2))
        assert _poll(follower) == _lines("a", 2)
        _write_lines(log, _lines("a", 1, start=2))
        log.unlink()
        assert _drain(follower) == _lines("a", 1, start=2)
        assert follower.stats.files_watched == 0
        assert follower.stats.rotations == 0
        assert follower._draining == []  # the file descriptor was released


def test_several_files_matched_by_globs_are_all_followed(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b'{"a": 1}\n')
    (tmp_path / "b.jsonl").write_bytes(b'{"b": 1}\n')
    (tmp_path / "c.log").write_bytes(b'{"c": 1}\n')
    patterns = [str(tmp_path / "*.jsonl"), str(tmp_path / "a.*")]
    with LogFollower(patterns, start_position="beginning") as follower:
        assert sorted(_poll(follower)) == [b'{"a": 1}', b'{"b": 1}']
        assert follower.stats.files_watched == 2


def test_line_over_size_limit_in_one_read_is_dropped_and_counted(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning", max_line_bytes=100) as follower:
        _append(log, b'{"ok": 1}\n' + b"x" * 101 + b'\n{"ok": 2}\n' + b"y" * 100 + b"\n")
        assert _poll(follower) == [b'{"ok": 1}', b'{"ok": 2}', b"y" * 100]
        assert follower.stats.lines_too_long == 1


def test_line_over_size_limit_growing_across_polls_is_dropped_once(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning", max_line_bytes=64) as follower:
        _append(log, b'{"ok": 1}\n' + b"z" * 50)
        assert _poll(follower) == [b'{"ok": 1}']
        _append(log, b"z" * 50)  # now over the limit, still no newline
        assert _poll(follower) == []
        _append(log, b"z" * 500)
        assert _poll(follower) == []
        _append(log, b'zz\n{"ok": 2}\n')
        assert _poll(follower) == [b'{"ok": 2}']
        assert follower.stats.lines_too_long == 1


def test_poll_budget_hands_out_a_big_backlog_in_pieces_exactly_once(log: Path) -> None:
    lines = _lines("n", 2000)
    _write_lines(log, lines)
    with LogFollower([str(log)], start_position="beginning", max_poll_bytes=4096) as follower:
        got: list[bytes] = []
        polls = 0
        while True:
            polls += 1
            got.extend(_poll(follower))
            if follower.caught_up:
                break
        assert got == lines
        assert polls > 5


def test_poll_blocks_end_on_a_newline_and_hold_every_line_in_order(log: Path) -> None:
    _write_lines(log, _lines("b", 50))
    with LogFollower([str(log)], start_position="beginning", max_poll_bytes=300) as follower:
        blocks = []
        while not follower.caught_up or not blocks:
            blocks.extend(follower.poll_blocks())
    assert all(block.endswith(b"\n") for block in blocks)
    assert b"".join(blocks).split(b"\n")[:-1] == _lines("b", 50)


def _follower(log: Path, state: Path, **kwargs: object) -> LogFollower:
    return LogFollower([str(log)], state_file=str(state), **kwargs)  # type: ignore[arg-type]


def _run_once(log: Path, state: Path, lines: list[bytes]) -> None:
    """A first exporter run: ``lines`` are written and read from the start, then it stops."""
    _write_lines(log, lines)
    first = _follower(log, state, start_position="beginning")
    assert _poll(first) == lines
    first.save_positions()
    first.close()


def test_restart_from_checkpoint_no_double_count(log: Path, tmp_path: Path) -> None:
    state = tmp_path / "state" / "positions.json"
    _write_lines(log, _lines("a", 3))
    first = _follower(log, state, start_position="beginning")
    assert _poll(first) == _lines("a", 3)
    _append(log, b'{"a": 3}\n{"a": ')  # a partial line at the checkpoint
    assert _poll(first) == [b'{"a": 3}']
    first.save_positions()
    first.close()
    _append(log, b'4}\n{"a": 5}\n')  # written while the exporter was down
    second = _follower(log, state, start_position="end")  # the checkpoint wins over "end"
    assert _poll(second) == [b'{"a": 4}', b'{"a": 5}']
    assert _poll(second) == []
    second.close()
    saved = json.loads(state.read_text())
    assert saved["files"][0]["offset"] == len(b'{"a": 0}\n{"a": 1}\n{"a": 2}\n{"a": 3}\n')


def test_restart_after_rotation_while_down_finishes_the_rotated_file(
    log: Path, tmp_path: Path
) -> None:
    state = tmp_path / "positions.json"
    _run_once(log, state, _lines("old", 2))
    _write_lines(log, _lines("old", 2, start=2))  # appended, then rotated, while down
    os.rename(log, log.with_suffix(".jsonl.1"))
    _write_lines(log, _lines("new", 2))
    second = _follower(log, state, start_position="end")
    assert _drain(second) == _lines("old", 2, start=2) + _lines("new", 2)
    assert second.stats.rotations == 1
    second.close()


def test_a_file_created_and_rotated_away_while_down_is_read_once(log: Path, tmp_path: Path) -> None:
    """Two rotations in one downtime: ``model.jsonl`` -> ``.1`` -> ``.2``, and the file
    between them was never seen under the name the pattern matches.  It is found beside the
    followed file by its rotation name and its mtime after the checkpoint; archives written
    before the checkpoint, compressed ones and other names beside it are left alone."""
    state = tmp_path / "positions.json"
    archive = log.with_name("model.jsonl.5")  # rotated out long before: never read
    _write_lines(archive, _lines("archive", 3))
    os.utime(archive, (1_000_000_000, 1_000_000_000))
    _run_once(log, state, _lines("a", 2))
    _write_lines(log, _lines("a", 2, start=2))  # while down: appended to the followed file,
    os.rename(log, log.with_name("model.jsonl.2"))  # which is rotated twice,
    _write_lines(log, _lines("b", 3))  # its successor written and
    os.rename(log, log.with_name("model.jsonl.1"))  # rotated away too,
    _write_lines(log, _lines("c", 1))  # and the third one is the live file
    _write_lines(log.with_name("model.jsonl.3.gz"), [b"\x1f\x8b compressed"])
    _write_lines(log.with_name("model.jsonl.lock"), [b"not a log"])
    _write_lines(log.with_name("other.jsonl.1"), [b"another log's rotation"])
    second = _follower(log, state, start_position="end")
    got = _drain(second)
    assert sorted(got) == sorted(_lines("a", 2, start=2) + _lines("b", 3) + _lines("c", 1))
    assert second.stats.rotations == 2  # model.jsonl.2's and the missed model.jsonl.1's
    second.save_positions()
    second.close()
    third = _follower(log, state, start_position="end")  # found once: known from now on
    assert _drain(third) == []
    third.close()


def test_copytruncate_while_down_reads_the_copy_from_the_checkpoint_offset(
    log: Path, tmp_path: Path
) -> None:
    """``copytruncate`` while down: the copy is a new inode holding the checkpointed bytes.
    Its lines after the checkpoint are read once, its earlier lines never again, and the
    truncated original from its start."""
    state = tmp_path / "positions.json"
    _run_once(log, state, _lines("a", 10))
    _write_lines(log, _lines("a", 2, start=10))  # after the checkpoint, before the copy
    copy = log.with_name("model.jsonl.1")
    copy.write_bytes(log.read_bytes())
    with open(log, "r+b") as handle:
        handle.truncate(0)
    _write_lines(log, _lines("b", 2))
    second = _follower(log, state, start_position="end")
    got = _drain(second)
    assert sorted(got) == sorted(_lines("a", 2, start=10) + _lines("b", 2))
    assert (second.stats.rotations, second.stats.truncations) == (0, 1)
    second.save_positions()
    second.close()
    third = _follower(log, state, start_position="end")
    assert _drain(third) == []  # the copy is remembered as read
    third.close()


def test_a_backup_copy_of_a_whole_file_is_not_read(log: Path, tmp_path: Path) -> None:
    """A copy of a file that is still whole (``cp app.jsonl app.jsonl.1``): its lines are
    read in the original, once."""
    state = tmp_path / "positions.json"
    _run_once(log, state, _lines("a", 5))
    _write_lines(log, _lines("a", 2, start=5))
    log.with_name("model.jsonl.1").write_bytes(log.read_bytes())
    second = _follower(log, state, start_position="end")
    assert _drain(second) == _lines("a", 2, start=5)
    second.close()


def test_a_file_read_to_its_end_just_before_the_checkpoint_is_not_read_again(
    log: Path, tmp_path: Path
) -> None:
    """Rotated away, drained and closed by the running follower, then the checkpoint: no
    position holds it, but its mtime is within the margin; it is remembered as read."""
    state = tmp_path / "positions.json"
    first = _follower(log, state, start_position="beginning")
    _write_lines(log, _lines("a", 3))
    assert _poll(first) == _lines("a", 3)
    os.rename(log, log.with_name("model.jsonl.1"))  # a name the pattern does not match
    _write_lines(log, _lines("b", 1))
    assert sorted(_drain(first)) == sorted(_lines("b", 1))
    assert first._draining == []  # model.jsonl.1 read to its end and closed
    first.save_positions()
    first.close()
    assert json.loads(state.read_text())["finished"]
    second = _follower(log, state, start_position="end")
    assert _drain(second) == []
    second.close()


def test_missed_files_wait_for_descriptors_under_max_files(log: Path, tmp_path: Path) -> None:
    """More files rotated away unseen than logs.max_files: read a few at a time, each once,
    the waiting ones kept in the checkpoint."""
    state = tmp_path / "positions.json"
    _run_once(log, state, _lines("a", 1))
    os.rename(log, log.with_name("model.jsonl.0"))
    for i in range(1, 7):  # six files created and rotated away while down
        _write_lines(log, _lines(f"r{i}", 2))
        os.rename(log, log.with_name(f"model.jsonl.{i}"))
    _write_lines(log, _lines("live", 1))
    second = LogFollower([str(log)], state_file=str(state), max_files=3)
    assert len(second._missed) == 6
    saved = second.state()
    # the six queued and model.jsonl.0 (checkpointed, being drained)
    assert saved is not None and sum(p.rotated for p in saved.files) == 7
    got = _drain(second, polls=30)
    want = _lines("live", 1) + [line for i in range(1, 7) for line in _lines(f"r{i}", 2)]
    assert sorted(got) == sorted(want)
    assert second._open_count() <= 3 and second._missed == []
    second.close()


def test_a_checkpoint_with_a_non_finite_taken_at_is_corrupt_not_a_crash(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "positions.json"
    _run_once(log, state, _lines("a", 2))
    state.write_text(state.read_text().replace('"taken_at":', '"taken_at":NaN,"x":'))
    second = _follower(log, state, start_position="end")  # no traceback
    assert _drain(second) == []
    second.close()
    assert "checkpoint_corrupt" in capsys.readouterr().out


def test_without_a_checkpoint_time_no_rotated_file_is_guessed(log: Path, tmp_path: Path) -> None:
    """A checkpoint written before ``taken_at`` existed: nothing tells an unseen rotated
    file from an archive, so none is read (as before)."""
    state = tmp_path / "positions.json"
    _run_once(log, state, _lines("a", 2))
    saved = json.loads(state.read_text())
    del saved["taken_at"]
    state.write_text(json.dumps(saved))
    os.rename(log, log.with_name("model.jsonl.1"))
    _write_lines(log, _lines("b", 3))
    os.rename(log, log.with_name("model.jsonl.2"))
    _write_lines(log, _lines("c", 1))
    second = _follower(log, state, start_position="end")
    assert _drain(second) == _lines("c", 1)
    second.close()


def test_a_fifo_the_pattern_matches_is_skipped_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """open() of a FIFO blocks until a writer comes: the exporter would hang at start,
    silently.  It is opened non-blocking, skipped, and said once."""
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    real = tmp_path / "model.jsonl"
    _write_lines(real, _lines("a", 2))
    done: list[list[bytes]] = []

    def run() -> None:
        with LogFollower([str(tmp_path / "*.jsonl")], start_position="beginning") as f:
            done.append(_drain(f))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the follower blocked on the FIFO"
    assert done == [_lines("a", 2)]
    said = [line for line in capsys.readouterr().out.splitlines() if "log_path_not_a_file" in line]
    assert len(said) == 1 and "a FIFO (named pipe)" in said[0] and "pipe.jsonl" in said[0]


def test_checkpoint_file_replaced_by_new_file_is_read_from_start(log: Path, tmp_path: Path) -> None:
    state = tmp_path / "positions.json"
    _run_once(log, state, _lines("old", 5))
    log.unlink()  # a new file (new inode) under the same path
    _write_lines(log, _lines("new", 7))
    second = _follower(log, state, start_position="end")
    assert _poll(second) == _lines("new", 7)
    second.close()


def test_checkpoint_with_same_inode_but_other_content_is_read_from_start(
    log: Path, tmp_path: Path
) -> None:
    """Inode reuse / rewrite in place: (dev, inode) match, the fingerprint does not."""
    state = tmp_path / "positions.json"
    _run_once(log, state, _lines("old", 3))
    inode = log.stat().st_ino
    with open(log, "r+b") as handle:  # same inode, different first bytes, longer than before
        handle.write(b"".join(line + b"\n" for line in _lines("other", 9)))
    assert log.stat().st_ino == inode
    second = _follower(log, state, start_position="end")
    assert _poll(second) == _lines("other", 9)
    second.close()


def test_checkpoint_of_a_file_truncated_while_down_restarts_at_zero(
    log: Path, tmp_path: Path
) -> None:
    state = tmp_path / "positions.json"
    _run_once(log, state, _lines("long-line-padding", 20))
    head = log.read_bytes()[:256]
    with open(log, "r+b") as handle:  # copytruncate while down, same first bytes
        handle.truncate(0)
        handle.write(head.split(b"\n")[0] + b"\n")
    second = _follower(log, state, start_position="end")
    assert _poll(second) == [head.split(b"\n")[0]]
    assert second.stats.truncations == 1
    second.close()


def test_new_file_created_while_down_is_read_from_start(tmp_path: Path) -> None:
    state = tmp_path / "positions.json"
    pattern = str(tmp_path / "*.jsonl")
    _write_lines(tmp_path / "a.jsonl", _lines("a", 1))
    first = LogFollower([pattern], start_position="end", state_file=str(state))
    first.save_positions()
    first.close()
    _write_lines(tmp_path / "b.jsonl", _lines("b", 2))
    second = LogFollower([pattern], start_position="end", state_file=str(state))
    assert _poll(second) == _lines("b", 2)
    second.close()


def test_corrupt_checkpoint_is_ignored_and_start_position_applies(
    log: Path, tmp_path: Path
) -> None:
    state = tmp_path / "positions.json"
    state.write_text("{not json")
    _write_lines(log, _lines("a", 2))
    with _follower(log, state, start_position="beginning") as follower:
        assert _poll(follower) == _lines("a", 2)
        follower.save_positions()
    assert json.loads(state.read_text())["version"] == STATE_VERSION


def test_save_positions_replaces_the_file_atomically(log: Path, tmp_path: Path) -> None:
    state = tmp_path / "positions.json"
    with _follower(log, state, start_position="beginning") as follower:
        _write_lines(log, _lines("a", 1))
        _poll(follower)
        follower.save_positions()
        inode_before = state.stat().st_ino
        follower.save_positions()
        assert state.stat().st_ino != inode_before  # a new file renamed over, never rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.jsonl", "positions.json"]


def test_after_close_polls_return_nothing_and_the_checkpoint_is_kept(
    log: Path, tmp_path: Path
) -> None:
    state = tmp_path / "positions.json"
    follower = _follower(log, state, start_position="beginning")
    _write_lines(log, _lines("a", 2))
    assert _poll(follower) == _lines("a", 2)
    follower.save_positions()
    saved = state.read_bytes()
    follower.close()
    follower.save_positions()  # e.g. a second shutdown path: must not write an empty checkpoint
    assert state.read_bytes() == saved
    _write_lines(log, _lines("a", 1, start=2))
    assert _poll(follower) == []


def test_save_positions_without_state_file_writes_nothing(log: Path, tmp_path: Path) -> None:
    with LogFollower([str(log)]) as follower:
        follower.save_positions()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.jsonl"]


def test_bad_start_position_is_rejected(log: Path) -> None:
    with pytest.raises(ValueError, match="start_position"):
        LogFollower([str(log)], start_position="middle")


# --- truncation that regrows past the offset with the same first bytes ---------------------


def _padded(tag: str, n: int, start: int = 0) -> list[bytes]:
    """Lines whose first 300 bytes are the same in every run: the head fingerprint (256
    bytes) cannot tell one run's file from another's."""
    pad = "p" * 300
    return [
        f'{{"pad": "{pad}", "run": "{tag}", "i": {i}}}'.encode() for i in range(start, start + n)
    ]


def test_truncation_then_regrowth_with_the_same_first_bytes_within_one_poll_is_detected(
    log: Path,
) -> None:
    """The issue's case: 10 lines read; truncated and 100 written before the next poll."""
    with LogFollower([str(log)], start_position="beginning") as follower:
        _write_lines(log, _padded("one", 10))
        assert _poll(follower) == _padded("one", 10)
        with open(log, "wb") as handle:  # copytruncate, then the writer goes on at once
            handle.write(b"".join(line + b"\n" for line in _padded("two", 100)))
        assert log.read_bytes()[:256] == (_padded("one", 1)[0] + b"\n")[:256]
        assert _poll(follower) == _padded("two", 100)  # all 100, not the last 90
        assert follower.stats.truncations == 1


def test_rewrite_in_place_to_the_same_size_is_detected(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _write_lines(log, _padded("aaa", 5))
        assert _poll(follower) == _padded("aaa", 5)
        assert _poll(follower) == []
        with open(log, "r+b") as handle:  # same length, same head, other content
            handle.write(b"".join(line + b"\n" for line in _padded("bbb", 5)))
        assert _poll(follower) == _padded("bbb", 5)
        assert follower.stats.truncations == 1


def test_same_size_rewrite_hidden_by_a_coarse_mtime_is_found_within_a_few_polls(
    log: Path,
) -> None:
    """An unchanged size and mtime spare the full check, but only for so many polls."""
    from exporter.logstream import _QUIET_POLLS

    with LogFollower([str(log)], start_position="beginning") as follower:
        _write_lines(log, _padded("aaa", 5))
        assert _poll(follower) == _padded("aaa", 5)
        assert _poll(follower) == []  # nothing new at this size and mtime
        before = log.stat()
        with open(log, "r+b") as handle:
            handle.write(b"".join(line + b"\n" for line in _padded("bbb", 5)))
        os.utime(log, ns=(before.st_atime_ns, before.st_mtime_ns))  # as a 1 s clock would
        got: list[bytes] = []
        for _ in range(_QUIET_POLLS + 2):
            got += _poll(follower)
        assert got == _padded("bbb", 5)
        assert follower.stats.truncations == 1


def test_truncation_and_regrowth_with_the_same_first_bytes_while_down_is_detected(
    log: Path, tmp_path: Path
) -> None:
    state = tmp_path / "positions.json"
    _run_once(log, state, _padded("one", 10))
    with open(log, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in _padded("two", 100)))
    second = _follower(log, state, start_position="end")
    assert _drain(second) == _padded("two", 100)
    assert second.stats.truncations == 1
    second.close()


# --- restarts keep the figures and the skip state -------------------------------------------


def test_restart_inside_an_over_long_line_counts_it_once(log: Path, tmp_path: Path) -> None:
    state = tmp_path / "positions.json"
    first = _follower(log, state, start_position="beginning", max_line_bytes=64)
    _append(log, b'{"ok": 1}\n' + b"z" * 100)  # over the limit, no newline yet
    assert _poll(first) == [b'{"ok": 1}']
    assert first.stats.lines_too_long == 1
    first.save_positions()
    first.close()
    _append(log, b'zzz\n{"ok": 2}\n')
    second = _follower(log, state, start_position="beginning", max_line_bytes=64)
    assert second.stats.lines_too_long == 1  # carried over from the checkpoint...
    assert _poll(second) == [b'{"ok": 2}']
    assert second.stats.lines_too_long == 1  # ...and the line is not counted again
    second.close()


def test_restart_carries_the_cumulative_figures_over(log: Path, tmp_path: Path) -> None:
    state = tmp_path / "positions.json"
    first = _follower(log, state, start_position="beginning")
    _write_lines(log, _lines("a", 3))
    _poll(first)
    os.truncate(log, 0)
    _write_lines(log, _lines("b", 1))
    _poll(first)
    first.save_positions()
    read_by_first = first.stats.bytes_read
    first.close()
    second = _follower(log, state, start_position="beginning")
    assert (second.stats.truncations, second.stats.bytes_read) == (1, read_by_first)
    _write_lines(log, _lines("b", 1, start=1))
    assert _poll(second) == _lines("b", 1, start=1)
    assert second.stats.bytes_read == read_by_first + len(_lines("b", 1, start=1)[0]) + 1
    second.close()


def test_saved_bytes_read_leaves_out_a_partial_line_held_back(log: Path) -> None:
    with LogFollower([str(log)], start_position="beginning") as follower:
        _append(log, b'{"a": 1}\n{"a": ')
        _poll(follower)
        state = follower.state()
        assert state is not None
        assert follower.stats.bytes_read == log.stat().st_size
        assert state.follower["bytes_read"] == len(b'{"a": 1}\n')


# --- more files than logs.max_files -------------------------------------------------------


def _many(tmp_path: Path, n: int, lines: int = 2) -> list[Path]:
    paths = []
    for i in range(n):
        path = tmp_path / f"f{i:02d}.jsonl"
        _write_lines(path, _lines(f"f{i}", lines))
        os.utime(path, ns=(1_000_000_000 * (i + 1),) * 2)  # f00 oldest ... newest last
        paths.append(path)
    return paths


def test_more_files_than_max_files_are_counted_logged_and_never_opened(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    _many(tmp_path, 6)
    with capture_logs() as logs:
        follower = LogFollower([str(tmp_path / "*.jsonl")], start_position="beginning", max_files=2)
        got = _drain(follower)
    assert follower.open_files() == 2
    assert follower.stats.files_watched == 2
    assert follower.stats.files_over_limit == 4
    assert sorted(got) == sorted(_lines("f5", 2) + _lines("f4", 2))  # the newest two
    (warning,) = [e for e in logs if e["event"] == "log_files_over_limit"]  # one line
    assert sorted(Path(p).name for p in warning["paths"]) == [f"f{i:02d}.jsonl" for i in range(4)]
    assert (warning["files"], warning["more"], warning["max_files"]) == (4, 0, 2)
    follower.close()


def test_files_over_the_limit_are_read_once_descriptors_free_up(tmp_path: Path) -> None:
    paths = _many(tmp_path, 5)
    follower = LogFollower([str(tmp_path / "*.jsonl")], start_position="beginning", max_files=2)
    got = _drain(follower)
    for path in paths[3:]:
        path.unlink()  # the two followed files go away: two descriptors free up
    got += _drain(follower)
    assert follower.stats.files_over_limit == 1
    paths[2].unlink()
    got += _drain(follower)
    assert follower.stats.files_over_limit == 0
    assert sorted(got) == sorted(line for i in range(5) for line in _lines(f"f{i}", 2))
    follower.close()


def test_restart_keeps_positions_of_files_over_the_limit(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    _many(tmp_path, 4)
    pattern = [str(tmp_path / "*.jsonl")]
    first = LogFollower(pattern, start_position="end", state_file=str(state), max_files=1)
    _drain(first)
    first.save_positions()
    first.close()
    for i in range(4):  # every file grows while the exporter is down
        _write_lines(tmp_path / f"f{i:02d}.jsonl", _lines(f"f{i}", 1, start=2))
    second = LogFollower(pattern, start_position="end", state_file=str(state), max_files=4)
    assert sorted(_drain(second)) == sorted(_lines(f"f{i}", 1, start=2)[0] for i in range(4))
    second.close()


# --- rotated-away files are closed once idle -----------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rotated_file_followed_under_its_new_name_is_closed_once_idle(tmp_path: Path) -> None:
    clock = _Clock()
    log, rotated = tmp_path / "model.jsonl", tmp_path / "model.jsonl.1"
    follower = LogFollower(
        [str(tmp_path / "model.jsonl*")],
        start_position="beginning",
        close_idle_after=60,
        clock=clock,
    )
    _write_lines(log, _lines("old", 2))
    assert _poll(follower) == _lines("old", 2)
    os.rename(log, rotated)
    _write_lines(log, _lines("new", 1))
    assert _drain(follower) == _lines("new", 1)
    assert follower.open_files() == 2
    clock.now += 59
    _poll(follower)
    assert follower.open_files() == 2  # not idle long enough
    clock.now += 2
    _poll(follower)
    assert follower.open_files() == 1  # the rotated file's descriptor is closed...
    assert follower.stats.files_watched == 2  # ...but it is still followed, by stat
    _write_lines(log, _lines("new", 1, start=1))
    assert _poll(follower) == _lines("new", 1, start=1)  # the live file was never closed
    _write_lines(rotated, _lines("old", 1, start=2))  # a late write to the rotated file
    assert _poll(follower) == _lines("old", 1, start=2)  # reopened where it was
    assert follower.open_files() == 2
    follower.close()


def test_idle_rotated_file_rotated_on_is_not_read_again(tmp_path: Path) -> None:
    clock = _Clock()
    log = tmp_path / "model.jsonl"
    follower = LogFollower(
        [str(tmp_path / "model.jsonl*")],
        start_position="beginning",
        close_idle_after=1,
        clock=clock,
    )
    _write_lines(log, _lines("old", 3))
    _poll(follower)
    os.rename(log, tmp_path / "model.jsonl.1")
    _write_lines(log, _lines("new", 1))
    _drain(follower)
    clock.now += 5
    _poll(follower)
    assert follower.open_files() == 1
    os.rename(tmp_path / "model.jsonl.1", tmp_path / "model.jsonl.2")  # rotated on, closed
    os.rename(log, tmp_path / "model.jsonl.1")
    _write_lines(log, _lines("newer", 1))
    assert sorted(_drain(follower)) == _lines("newer", 1)
    assert follower.stats.truncations == 0
    follower.close()


def test_restart_with_an_idle_closed_file_keeps_it_closed_and_reads_nothing_twice(
    tmp_path: Path,
) -> None:
    clock = _Clock()
    state = tmp_path / "state.json"
    log, rotated = tmp_path / "model.jsonl", tmp_path / "model.jsonl.1"
    pattern = [str(tmp_path / "model.jsonl*")]
    kwargs = {"state_file": str(state), "close_idle_after": 1.0, "clock": clock}
    first = LogFollower(pattern, start_position="beginning", **kwargs)  # type: ignore[arg-type]
    _write_lines(log, _lines("old", 3))
    _poll(first)
    os.rename(log, rotated)
    _write_lines(log, _lines("new", 1))
    _drain(first)
    clock.now += 5
    _poll(first)
    first.save_positions()
    first.close()
    second = LogFollower(pattern, start_position="beginning", **kwargs)  # type: ignore[arg-type]
    assert _drain(second) == []
    assert second.open_files() == 1
    _write_lines(rotated, _lines("old", 1, start=3))
    assert _poll(second) == _lines("old", 1, start=3)
    second.close()


def test_non_regular_matches_beyond_the_bound_are_said_once_in_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A glob over thousands of FIFOs or directories: each of the first ones named once,
    then one line for the rest, never a line per poll."""
    import exporter.tail as tail

    monkeypatch.setattr(tail, "_NOT_REGULAR_KEPT", 2)
    for i in range(5):
        os.mkfifo(tmp_path / f"p{i}.jsonl")
    with LogFollower([str(tmp_path / "*.jsonl")], start_position="beginning") as follower:
        _drain(follower, polls=4)
    said = [line for line in capsys.readouterr().out.splitlines() if "log_path_not_a_file" in line]
    assert len(said) == 3 and "no more are named" in said[-1]
