"""Start-up, shutdown and configuration errors of the real ``mlops-exporter`` process."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from exporter import DEFAULT_CONFIG_PATH
from tests.e2e._exporter import (
    append,
    lines_of,
    run_exporter,
    running_exporter,
    start_exporter,
    traffic,
    write_config,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown_on_signal(tmp_path: Path, sig: int) -> None:
    state = tmp_path / "positions.json"
    config = write_config(tmp_path, extra=f", state_file: {state}")
    recs, _ = traffic(20)
    append(tmp_path / "logs" / "a.jsonl", lines_of(recs))
    exp = start_exporter(config)
    exp.wait_for(lambda s: s.get("mlops_predictions_total", model="e2e") == 20)
    started = time.monotonic()
    code = exp.stop(sig)
    elapsed = time.monotonic() - started
    assert code == 0, "\n".join(exp.stderr_lines[-20:])
    assert elapsed < 5, elapsed
    assert state.exists()
    assert any(
        '"event": "stopped"' in line or '"event":"stopped"' in line for line in exp.stderr_lines
    )


def test_logs_are_json_lines(tmp_path: Path) -> None:
    import json

    exp = start_exporter(write_config(tmp_path))
    assert exp.stop() == 0
    events = [json.loads(line) for line in exp.stderr_lines if line.strip()]
    assert {"started", "ready", "stopped"} <= {e["event"] for e in events}
    assert all("timestamp" in e and "level" in e for e in events)


def test_version() -> None:
    result = run_exporter("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == "mlops-exporter, version 0.1.0"


def test_usage_error_exits_2() -> None:
    result = run_exporter("--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def one_line_error(result) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # no traceback, no log noise
    assert lines[0].startswith("mlops-exporter: error: ")
    return lines[0]


def test_config_errors_are_one_line_exit_1(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    base = config.read_text()

    line = one_line_error(run_exporter(f"--config.file={tmp_path / 'missing.yml'}"))
    assert "missing.yml" in line and "not found" in line
    if not Path(DEFAULT_CONFIG_PATH).exists():  # no flag at all: point the newcomer at --demo
        line = one_line_error(run_exporter())
        assert DEFAULT_CONFIG_PATH in line and "--demo" in line

    config.write_text(base + "drift_typo: 1\n")
    assert "drift_typo: unknown key" in one_line_error(run_exporter(f"--config.file={config}"))

    config.write_text(base.replace('"interval": "300ms"', '"interval": "often"'))
    line = one_line_error(run_exporter(f"--config.file={config}"))
    assert "drift.interval: bad duration 'often'" in line

    config.write_text(base.replace('"min_samples": 100', '"min_samples": "many"'))
    assert "drift.min_samples" in one_line_error(run_exporter(f"--config.file={config}"))

    config.write_text(base + "features: {x: {type: numeric}, nope: {type: numeric}}\n")
    line = one_line_error(run_exporter(f"--config.file={config}"))
    assert "features.nope" in line and "not a column of the reference" in line

    config.write_text(base.replace("ref.csv", "absent.csv"))
    line = one_line_error(run_exporter(f"--config.file={config}"))
    assert "reference.path" in line and "absent.csv" in line

    (tmp_path / "bad.csv").write_bytes(b"\x00\x01\x02")
    config.write_text(base.replace("ref.csv", "bad.csv"))
    assert "reference.path" in one_line_error(run_exporter(f"--config.file={config}"))

    config.write_text("model: {name: [unclosed\n")
    assert "invalid YAML" in one_line_error(run_exporter(f"--config.file={config}"))


def test_env_var_error_and_override(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    line = one_line_error(
        run_exporter(f"--config.file={config}", env={"MLOPS_EXPORTER_DRIFT_INTERVAL": "x"})
    )
    assert "MLOPS_EXPORTER_DRIFT_INTERVAL" in line
    exp = start_exporter(config, env={"MLOPS_EXPORTER_MODEL_NAME": "from-env"})
    try:
        assert exp.scrape().get("mlops_reference_samples", model="from-env") == 2000
    finally:
        assert exp.stop() == 0


def test_web_config_errors(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: {alice: notahash}\n")
    line = one_line_error(run_exporter(f"--config.file={config}", f"--web.config.file={web}"))
    assert "basic_auth_users.alice" in line
    web.write_text("tls_server_config: {cert_file: nope.crt, key_file: nope.key}\n")
    line = one_line_error(run_exporter(f"--config.file={config}", f"--web.config.file={web}"))
    assert "cert_file" in line


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_exporter(f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}")
    line = one_line_error(result)
    assert "--web.listen-address" in line and str(port) in line


def test_bad_listen_address(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    line = one_line_error(run_exporter(f"--config.file={config}", "--web.listen-address=nope"))
    assert "--web.listen-address" in line


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"window": {"max_samples": 100000000000000, "max_age": "1h"}},
            "drift.window.max_samples: must be at most 10,000,000, got 100000000000000",
        ),
        (
            {"window": {"max_samples": 10**23, "max_age": "1h"}},
            "drift.window.max_samples: must be at most 10,000,000",
        ),
        (
            {
                "interval": "10000000y",
                "window": {"max_samples": 5000, "max_age": "10000000y"},
                "false_alarm_budget": "10000000y",
            },
            "drift.interval: duration must be at most 100y, got '10000000y'",
        ),
        ({"psi": {"buckets": 100000000}}, "drift.psi.buckets: must be at most 1,000"),
        (
            {"min_samples": 500, "window": {"max_samples": 200, "max_age": "1h"}},
            "drift.min_samples: must be at most drift.window.max_samples (500 > 200)",
        ),
    ],
)
def test_out_of_range_drift_settings_are_one_line_exit_1(
    tmp_path: Path, settings: dict, expected: str
) -> None:
    """Before: a numpy MemoryError, a ValueError, an OverflowError in the scheduler after
    'ready', a pass that never ended, a window that could never give a verdict."""
    config = write_config(tmp_path, **settings)
    assert expected in one_line_error(run_exporter(f"--config.file={config}"))


def test_a_poll_interval_beyond_its_bound_is_one_line_exit_1(tmp_path: Path) -> None:
    """Before: the follower died on 'timestamp out of range for platform time_t'."""
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("poll_interval: 50ms", "poll_interval: 300y"))
    line = one_line_error(run_exporter(f"--config.file={config}"))
    assert "logs.poll_interval: duration must be at most 100y" in line
    config.write_text(config.read_text().replace("poll_interval: 300y", "poll_interval: 2h"))
    line = one_line_error(run_exporter(f"--config.file={config}"))
    assert "logs.poll_interval: must be at most 1h, got 2h" in line


def test_a_duplicate_key_is_one_line_exit_1(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "model: {name: other}\n")
    line = one_line_error(run_exporter(f"--config.file={config}"))
    assert line.endswith(f"{config}:5:1: duplicate key 'model'")


def test_an_empty_env_var_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = {"MLOPS_EXPORTER_MODEL_NAME": ""}
    line = one_line_error(run_exporter(f"--config.file={config}", env=env))
    assert "MLOPS_EXPORTER_MODEL_NAME: set but empty" in line


def test_an_alerts_state_file_that_cannot_be_written_is_one_line_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = write_config(tmp_path)
    state = blocker / "dir" / "a.json"
    config.write_text(
        config.read_text() + f"alerts: {{thresholds: {{max_psi: {{warning: 0.2}}}},"
        f" state_file: {state}}}\n"
    )
    line = one_line_error(run_exporter(f"--config.file={config}"))
    assert f"alerts.state_file: {state}: {blocker} is not a directory" in line


def test_demo_with_a_config_file_is_a_usage_error(tmp_path: Path) -> None:
    """The demo runs its own config: a --config.file given with it was silently ignored."""
    config = write_config(tmp_path)
    result = run_exporter("--demo", f"--config.file={config}")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        "mlops-exporter: error: --config.file cannot be used with --demo (the demo runs its"
        " own config; drop one of them)"
    )


def test_out_of_memory_at_start_is_one_line_naming_the_sizes(tmp_path: Path) -> None:
    """The last line of defence: a window within its bound that this machine cannot hold."""
    import resource
    import subprocess

    from tests.e2e._exporter import REPO_ROOT, exporter_command, exporter_env

    columns = [f"f{i}" for i in range(20)]  # 20 numeric features: 1.6 GB at 10,000,000
    rows = [",".join(columns)] + [
        ",".join(f"{(r * 7 + i) % 13}.5" for i in range(20)) for r in range(500)
    ]
    (tmp_path / "ref.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    # One BLAS/OpenMP thread and two malloc arenas: their per-thread buffers grow with the
    # core count, so on a many-core runner the import of numpy alone could pass a fixed limit.
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    small = tmp_path / "small"
    small.mkdir()
    (small / "ref.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with running_exporter(write_config(small), env=env) as exp:
        baseline = _vm_peak(exp.proc.pid)  # this machine's started exporter, small windows
    config = write_config(tmp_path, window={"max_samples": 10_000_000, "max_age": "1h"})
    limit = baseline + (512 << 20)  # the windows need 1.6 GB more than the small ones

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run(
        exporter_command(f"--config.file={config}", "--web.listen-address=127.0.0.1:0"),
        capture_output=True,
        text=True,
        env=exporter_env(env),
        cwd=REPO_ROOT,
        timeout=60,
        preexec_fn=preexec,
    )
    line = one_line_error(result)
    assert "out of memory" in line and "drift.window.max_samples=10000000" in line


def _vm_peak(pid: int) -> int:
    """The peak address space of process ``pid`` in bytes (``VmPeak`` in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmPeak:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmPeak for {pid}")


def test_running_out_of_memory_while_importing_is_the_same_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numpy's import allocates per-thread buffers: a MemoryError there came before the
    ``try`` and was a traceback instead of the out-of-memory line."""
    import sys
    import types

    from exporter import cli
    from mlops_core.errors import MlopsError

    class Starved(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            raise MemoryError

    monkeypatch.setitem(sys.modules, "exporter.app", Starved("exporter.app"))
    with pytest.raises(MlopsError, match=r"^out of memory while starting"):
        cli.run(str(tmp_path / "absent.yml"), "127.0.0.1:0", None)
