"""exporter.linesource: the source of each block names one file content for its whole life.

What can happen to a log file, and what its lines' source becomes: the same after a restart,
another for the new file after a rotation by rename, another after a truncation.
"""

from __future__ import annotations

import os
from pathlib import Path

from exporter.checkpoint import save_checkpoint
from exporter.linesource import IdentifyingFollower, committed_offsets, parse_source
from exporter.outcomes import OutcomeRow, OutcomeStore


def follower(tmp: Path, **kwargs: object) -> IdentifyingFollower:
    return IdentifyingFollower([str(tmp / "*.jsonl")], start_position="beginning", **kwargs)


def poll(f: IdentifyingFollower) -> list[tuple[str, int, str, bytes]]:
    """(path, start, source, block) of each block of one poll."""
    blocks = f.poll_blocks()
    return [
        (path, start, name, block)
        for block, (path, start), name in zip(blocks, f.block_sources, f.block_files, strict=True)
    ]


def write(path: Path, text: str, mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as fh:
        fh.write(text)


def test_every_block_gets_its_files_source(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", "a1\na2\n")
    write(tmp_path / "b.jsonl", "b1\n")
    with follower(tmp_path) as f:
        got = {path: name for path, _, name, _ in poll(f)}
        st = os.stat(tmp_path / "a.jsonl")
        dev, inode, _ = parse_source(got[str(tmp_path / "a.jsonl")]) or (0, 0, "")
        assert (dev, inode) == (st.st_dev, st.st_ino)
        assert len(set(got.values())) == 2
        write(tmp_path / "a.jsonl", "a3\n")
        ((_, start, name, block),) = poll(f)
        assert (start, block, name) == (6, b"a3\n", got[str(tmp_path / "a.jsonl")])


def test_a_restart_from_the_checkpoint_names_the_same_source(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    write(log, "first line\nsecond\n")
    state = tmp_path / "state.json"
    with follower(tmp_path) as f:
        ((_, _, before, _),) = poll(f)
        saved = f.state()
    assert saved is not None
    save_checkpoint(str(state), saved)
    write(log, "third\n")
    with follower(tmp_path, state_file=str(state)) as f:
        ((_, start, after, block),) = poll(f)
    assert (start, block, after) == (18, b"third\n", before)


def test_a_rotated_file_and_its_successor_have_different_sources(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    write(log, "old 1\nold 2\n")
    with follower(tmp_path) as f:
        ((_, _, old, _),) = poll(f)
        os.rename(log, tmp_path / "app.log.1")  # away from the patterns
        write(tmp_path / "app.log.1", "old 3\n")  # the writer had not reopened yet
        write(log, "new 1\nnew 2\nnew 3\n")  # the same offsets as the old lines, and beyond
        got = poll(f)
        assert [(path, start, block) for path, start, _, block in got] == [
            (str(log), 12, b"old 3\n"),  # drained under its old path
            (str(log), 0, b"new 1\nnew 2\nnew 3\n"),
        ]
        assert got[0][2] == old and got[1][2] != old


def test_a_truncated_file_gets_a_new_generation(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    write(log, '{"n": 1}\n{"n": 2}\n')
    with follower(tmp_path) as f:
        ((_, _, before, _),) = poll(f)
        write(log, '{"n": 3, "after": "truncation"}\n', mode="w")  # copytruncate, same inode
        ((_, start, after, _),) = poll(f)
    assert start == 0 and after != before
    assert parse_source(after)[:2] == parse_source(before)[:2]  # type: ignore[index]


def test_a_truncated_file_with_the_same_first_line_gets_a_new_generation(tmp_path: Path) -> None:
    # a server writing the same banner first: the first line's hash alone named the new
    # content as the old one, and the store skipped its lines up to the old mark as replays
    log = tmp_path / "app.jsonl"
    banner = '{"event": "startup"}\n'
    write(log, banner + '{"n": 1}\n{"n": 2}\n')
    state = tmp_path / "state.json"
    with follower(tmp_path) as f:
        ((_, _, first, _),) = poll(f)
        write(log, banner + '{"n": 3}\n', mode="w")
        ((_, start, second, _),) = poll(f)
        assert start == 0 and second != first
        write(log, banner, mode="w")  # truncated again: yet another
        ((_, _, third, _),) = poll(f)
        assert third not in (first, second)
        write(log, '{"n": 4}\n')
        saved = f.state()
    assert saved is not None
    save_checkpoint(str(state), saved)
    with follower(tmp_path, state_file=str(state)) as f:  # a restart keeps the generation
        ((_, start, again, block),) = poll(f)
    assert (start, block, again) == (len(banner), b'{"n": 4}\n', third)


def test_a_crash_between_a_truncation_and_the_checkpoint_names_the_content_as_before(
    tmp_path: Path,
) -> None:
    # the truncation is found again after the restart, and the content re-read must get the
    # name its lines were applied under before the crash: they are replays, not new lines
    log = tmp_path / "app.jsonl"
    banner = '{"event": "startup"}\n'
    write(log, banner + '{"n": 1}\n{"n": 2}\n')
    state = tmp_path / "state.json"
    with follower(tmp_path) as f:
        poll(f)
        saved = f.state()  # the last checkpoint before the crash
        assert saved is not None
        save_checkpoint(str(state), saved)
        write(log, banner, mode="w")
        ((_, _, before_crash, _),) = poll(f)  # applied under this name, then SIGKILL
    with follower(tmp_path, state_file=str(state)) as f:
        ((_, start, after_restart, _),) = poll(f)
    assert (start, after_restart) == (0, before_crash)


def test_committed_offsets_keep_only_what_can_be_read_again(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    write(log, '{"n": 1}\n{"n": 2}\n')
    gone = tmp_path / "gone.jsonl"
    write(gone, "x\n")
    with follower(tmp_path) as f:
        names = {path: name for path, _, name, _ in poll(f)}
        old = names[str(log)]
        write(log, '{"n": 3}\n', mode="w")  # truncated: a new generation of the same inode
        gone.unlink()
        ((_, _, new, _),) = [b for b in poll(f) if b[0] == str(log)]
        poll(f)  # the vanished file, drained, is dropped
        state = f.state()
        assert state is not None
        got = committed_offsets(state.files, [old, new, names[str(gone)], "other"], f)
    assert got == {new: 9}  # the old generation, the dropped file and a foreign name go


def test_pruning_after_a_checkpoint_keeps_replays_idempotent(tmp_path: Path) -> None:
    """After a checkpoint the store keeps the followed file's mark and skips what is read again."""
    log = tmp_path / "o.jsonl"
    write(log, "a\nb\n")
    store = OutcomeStore(tmp_path / "store.db")
    with follower(tmp_path) as f, store:
        ((_, start, name, _),) = poll(f)
        rows = [OutcomeRow(request_id="r", time=1.0, source=name, offset=start, actual="x")]
        store.add_outcomes(rows)
        state = f.state()
        assert state is not None
        store.prune_lines(committed_offsets(state.files, store.sources(), f))
        assert store.sources() == (name,)  # kept: the file is still followed
        # below the checkpoint's offset: never read again, and at the mark anyway
        assert store.add_outcomes(rows).replayed == 1
        late = [OutcomeRow(request_id="r", time=1.0, source=name, offset=4, actual="x")]
        store.add_outcomes(late)
        assert store.add_outcomes(late).replayed == 1  # above it: a replay is skipped


def test_every_new_generation_is_checkpointed_so_two_truncations_then_a_crash_name_alike(
    tmp_path: Path,
) -> None:
    # the review's case: two truncations between two timed checkpoints, then SIGKILL; the
    # restart counted from the older saved generation and named the last content as the
    # one before it.  The ingest loop checkpoints whenever a poll named a new generation
    # (Ingestor.due), as this loop does
    log = tmp_path / "app.jsonl"
    banner = '{"event": "startup"}\n'
    state = tmp_path / "state.json"
    names = []
    with follower(tmp_path) as f:
        for body in ('{"n": 1}\n{"n": 2}\n{"n": 3}\n', '{"n": 4}\n{"n": 5}\n', '{"n": 6}\n'):
            write(log, banner + body, mode="w")
            ((_, start, name, _),) = poll(f)
            names.append(name)
            assert start == 0 and f.generations_changed
            if len(names) < 3:  # the last poll's checkpoint never happens: SIGKILL
                saved = f.state()
                assert saved is not None and not f.generations_changed
                save_checkpoint(str(state), saved)
    assert len(set(names)) == 3
    with follower(tmp_path, state_file=str(state)) as f:
        ((_, start, again, _),) = poll(f)
    assert (start, again) == (0, names[2])  # the content applied before the crash: replays


def test_the_ingest_loop_checkpoints_when_a_generation_was_named(tmp_path: Path) -> None:
    import numpy as np

    from exporter.ingest import IngestCounters, Ingestor
    from exporter.records import RecordParser
    from exporter.window import Window
    from mlops_core.profile import ReferenceProfile

    profile = ReferenceProfile.from_data({"x": np.arange(10.0)})
    write(tmp_path / "a.jsonl", '{"event": "startup"}\n')
    with follower(tmp_path) as f:
        ingestor = Ingestor(
            f, RecordParser({"x": "numeric"}),
            Window(profile, ["x"], max_samples=10, max_age=None),
            IngestCounters(profile, ["x"]), state_file=str(tmp_path / "s.json"),
        )  # fmt: skip
        ingestor._last_checkpoint = ingestor._clock()  # a timed checkpoint just happened
        assert not ingestor.due()
        poll(f)
        assert ingestor.due()  # the file's first naming: saved at once
        ingestor.checkpoint()
        assert not ingestor.due()
