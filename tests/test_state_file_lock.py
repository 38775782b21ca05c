"""One exporter per ``logs.state_file`` (exporter/checkpoint.py ``hold_state_file``).

Two exporters given one state file would overwrite each other's checkpoint and resume from
the other's offsets and counters: lines lost or counted twice, with nothing said.  The
second one is refused at start; a dead holder (SIGKILL) leaves no stale lock.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from exporter.checkpoint import hold_state_file
from exporter.errors import ConfigError
from tests.conftest import holding_process


def test_a_second_holder_is_a_config_error_naming_the_key_and_the_pid(tmp_path: Path) -> None:
    state = tmp_path / "state" / "positions.json"  # its directory is made, as saving does
    fd = hold_state_file(str(state))
    assert fd is not None
    try:
        with pytest.raises(ConfigError) as info:
            hold_state_file(str(state))
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"logs.state_file {state}: in use by process {os.getpid()}")
        assert f"{state}.lock" in message
    finally:
        os.close(fd)
    again = hold_state_file(str(state))  # released: free again
    assert again is not None
    os.close(again)


_HOLDER = """
import time
from exporter.checkpoint import hold_state_file
assert hold_state_file(sys.argv[1]) is not None
print("ready", flush=True)
time.sleep(120)
"""


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    state = tmp_path / "positions.json"
    with (
        holding_process(_HOLDER, str(state)) as proc,
        pytest.raises(ConfigError, match=f"in use by process {proc.pid}"),
    ):
        hold_state_file(str(state))
    fd = hold_state_file(str(state))  # the kernel dropped the dead holder's lock
    assert fd is not None
    os.close(fd)


def test_no_lock_file_possible_is_a_warning_not_a_refusal(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")  # fails for root too
    with capture_logs() as logs:
        assert hold_state_file(str(blocker / "positions.json")) is None
    assert [e["event"] for e in logs] == ["state_file_lock_failed"]
    assert logs[0]["state_file"] == str(blocker / "positions.json")
