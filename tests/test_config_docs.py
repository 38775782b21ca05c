"""exporter.config_docs: the key table of docs/configuration.md comes from the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter import config, config_docs
from mlops_core.durations import format_duration, parse_duration
from tests.conftest import REPO_ROOT


def test_the_committed_table_is_the_generated_one(tmp_path: Path) -> None:
    assert config_docs.main(["--check"]) == 0, "run python -m exporter.config_docs"
    docs = tmp_path / "configuration.md"
    text = config_docs.DOCS_FILE.read_text(encoding="utf-8")
    docs.write_text(text.replace("| `drift.interval` | `30s` |", "| `drift.interval` | `1m` |"))
    assert config_docs.main(["--check", "--docs", str(docs)]) == 1  # a stale table fails
    assert config_docs.main(["--docs", str(docs)]) == 0
    assert docs.read_text(encoding="utf-8") == text


def test_every_key_has_a_meaning_and_every_meaning_a_key() -> None:
    assert list(config_docs.KEY_DOCS) == list(config.KEYS)


def test_the_table_has_one_row_per_env_var_settable_key() -> None:
    table = config_docs.markdown_table()
    for key in config.KEYS:
        assert f"| `{key}` |" in table
    assert "drift.combine" not in table  # removed keys are documented in prose, not as keys


def test_defaults_are_read_from_the_sections() -> None:
    assert config_docs.default_text("model.name") == "required"
    assert config_docs.default_text("logs.state_file") == "none"
    assert config_docs.default_text("drift.interval") == f"`{format_duration(30.0)}`"
    assert config_docs.default_text("drift.false_alarm_budget") == "`30d`"
    assert config_docs.default_text("drift.tests") == "`[ks, psi]`"
    assert config_docs.default_text("drift.window.max_age") == "`1h`"


def test_a_key_without_a_meaning_fails_the_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(config_docs.KEY_DOCS, "drift.interval")
    assert config_docs.main(["--check"]) == 2
    assert "drift.interval: a config key without a meaning" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30.0, "30s"), (0.25, "250ms"), (3600.0, "1h"), (30 * 86400.0, "30d"), (14 * 86400.0, "2w"),
     (5400.0, "1h30m"), (365 * 86400.0, "1y"), (0.0, "0s")],
)  # fmt: skip
def test_format_duration_is_prometheus_rendering_and_reads_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_format_duration_refuses_what_the_grammar_cannot_write() -> None:
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        format_duration(0.0005)


def test_every_removed_key_is_named_on_the_configuration_page() -> None:
    """A user whose old config fails looks the key up there."""
    from exporter.config import REMOVED_KEYS

    page = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = page.split("**Removed keys.**", 1)[1].split("\n\n", 1)[0]
    assert [k for k in REMOVED_KEYS if f"`{k}`" not in section] == []


def test_the_prose_states_the_duration_bound_the_parser_enforces() -> None:
    from exporter.config_docs import DOCS_FILE
    from mlops_core.durations import MAX_DURATION, format_duration

    text = DOCS_FILE.read_text(encoding="utf-8")
    assert f"No duration may exceed `{format_duration(MAX_DURATION)}`" in text


def test_a_bounded_key_shows_its_bound_in_the_table() -> None:
    from exporter.config_docs import markdown_table

    rows = {line.split("|")[1].strip(): line for line in markdown_table().splitlines()[2:]}
    assert rows["`drift.psi.buckets`"].endswith("; at most `1,000` |")
    assert rows["`logs.max_line_bytes`"].endswith("; at most `64MiB` |")
    assert rows["`logs.poll_interval`"].endswith("; at most `1h` |")


def test_the_window_memory_sentence_follows_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """config.py says its bounds are written only there: the prose's figures must move with
    MAX_WINDOW_SAMPLES, not sit beside it as a copy that a change of the bound leaves stale."""
    import importlib

    monkeypatch.setattr(config, "MAX_WINDOW_SAMPLES", 20_000_000)
    try:
        text = importlib.reload(config_docs).KEY_DOCS["drift.window.max_samples"]
    finally:
        monkeypatch.undo()
        importlib.reload(config_docs)
    assert "160 MB per feature at 20,000,000" in text
