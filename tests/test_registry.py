"""The model registry's behaviour: the API flow, rollback, checksums, names, corrupt metadata.

Every test works on a real directory under ``tmp_path``; checksums are checked against
``hashlib`` computed here, not against values taken from the registry.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

import mlops_core
from mlops_core import _fsutil
from mlops_core.errors import (
    CorruptMetadataError,
    IntegrityError,
    InvalidNameError,
    LockTimeoutError,
    MlopsError,
    ModelNotFoundError,
    RegistryInputError,
    RegistryWarning,
    StageError,
    VersionExistsError,
)
from mlops_core.registry import ModelRegistry, version_sort_key


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "reg")


def _model_file(tmp_path: Path, name: str = "model.pkl", content: bytes = b"weights-v1") -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


# --- the flow from the issue ------------------------------------------------------------------


def test_api_flow_register_promote_and_serve(tmp_path: Path, registry: ModelRegistry) -> None:
    src = _model_file(tmp_path, content=b"pickled churn model")
    mv = registry.register_model("churn", "1.0.0", src, {"accuracy": 0.85})
    assert mv.stage == "none"
    assert mv.sha256 == hashlib.sha256(b"pickled churn model").hexdigest()
    assert mv.size == len(b"pickled churn model")
    assert mv.source_name == "model.pkl" and mv.kind == "file"
    assert mv.metrics == {"accuracy": 0.85}

    assert registry.promote_to_staging("churn", "1.0.0").stage == "staging"
    assert registry.get_staging_version("churn") == "1.0.0"
    assert registry.promote_to_production("churn", "1.0.0").stage == "production"
    assert registry.get_staging_version("churn") is None
    assert registry.get_production_version("churn") == "1.0.0"

    path = registry.get_production_model_path("churn")
    assert path.read_bytes() == b"pickled churn model"
    assert path.is_relative_to(registry.root)
    # the source is copied, not referenced: changing it does not touch the registry
    src.write_bytes(b"overwritten later")
    assert registry.get_production_model_path("churn").read_bytes() == b"pickled churn model"
    assert registry.list_models() == ["churn"]
    assert mlops_core.ModelRegistry is ModelRegistry


def test_layout_is_plain_readable_files(tmp_path: Path, registry: ModelRegistry) -> None:
    registry.register_model("churn", "1.0.0", _model_file(tmp_path), {"auc": 0.9})
    mdir = registry.root / "churn"
    doc = json.loads((mdir / "model.json").read_text())
    assert [v["version"] for v in doc["versions"]] == ["1.0.0"]
    record = json.loads((mdir / "versions" / "1.0.0" / "version.json").read_text())
    assert record["metrics"] == {"auc": 0.9}
    assert (mdir / "versions" / "1.0.0" / "model.pkl").read_bytes() == b"weights-v1"
    lines = (mdir / "history.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["action"] == "register"


def test_version_record_and_history_fields(tmp_path: Path, registry: ModelRegistry) -> None:
    registry.register_model(
        "churn", "2.0", _model_file(tmp_path), {"f1": 0.7, "rows": 1000},
        description="retrained on June data", tags={"owner": "data-team"},
    )  # fmt: skip
    mv = registry.get_version("churn", "2.0")
    assert mv.description == "retrained on June data"
    assert mv.tags == {"owner": "data-team"}
    assert mv.metrics == {"f1": 0.7, "rows": 1000}
    assert mv.registered_at.endswith("Z")
    registry.promote_to_staging("churn", "2.0", reason="shadow test")
    history = registry.get_history("churn")
    assert [(h.action, h.from_stage, h.to_stage) for h in history] == [
        ("register", None, "none"),
        ("promote", "none", "staging"),
    ]
    assert history[-1].reason == "shadow test"
    assert {h.user for h in history} == {getpass.getuser()}
    assert [h.seq for h in history] == [1, 2]


def test_register_directory_copies_every_file(tmp_path: Path, registry: ModelRegistry) -> None:
    src = tmp_path / "bundle"
    (src / "sub").mkdir(parents=True)
    (src / "model.bin").write_bytes(b"A" * 10)
    (src / "sub" / "vocab.txt").write_bytes(b"hello")
    mv = registry.register_model("nlp", "1", src)
    assert mv.kind == "directory" and mv.size == 15
    stored = registry.get_model_path("nlp", "1")
    assert (stored / "sub" / "vocab.txt").read_bytes() == b"hello"
    assert registry.verify("nlp")[0].ok

    # the same tree built in another order hashes the same; one changed byte does not
    other = tmp_path / "bundle2"
    (other / "sub").mkdir(parents=True)
    (other / "sub" / "vocab.txt").write_bytes(b"hello")
    (other / "model.bin").write_bytes(b"A" * 10)
    assert registry.register_model("nlp", "2", other).sha256 == mv.sha256
    (other / "sub" / "vocab.txt").write_bytes(b"hellO")
    assert registry.register_model("nlp", "3", other).sha256 != mv.sha256
    (other / "sub" / "vocab.txt").rename(other / "sub" / "vocab2.txt")
    (other / "sub" / "vocab2.txt").write_bytes(b"hello")
    assert registry.register_model("nlp", "4", other).sha256 != mv.sha256


def test_source_directory_with_symlink_is_refused(tmp_path: Path, registry: ModelRegistry) -> None:
    src = tmp_path / "bundle"
    src.mkdir()
    (src / "model.bin").write_bytes(b"x")
    (src / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(RegistryInputError, match="symlink"):
        registry.register_model("m", "1", src)
    assert registry.list_models() == []


def test_missing_source_raises_file_not_found(tmp_path: Path, registry: ModelRegistry) -> None:
    missing = tmp_path / "nope" / "model.pkl"
    with pytest.raises(FileNotFoundError, match=re.escape("nope/model.pkl")):
        registry.register_model("churn", "1.0.0", missing)
    assert not registry.root.exists()


def test_registering_a_version_twice_changes_nothing(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    registry.register_model("churn", "1.0.0", _model_file(tmp_path), {"accuracy": 0.85})
    before = _snapshot(registry.root)
    other = _model_file(tmp_path, "other.pkl", b"different weights")
    with pytest.raises(VersionExistsError, match=re.escape("1.0.0")):
        registry.register_model("churn", "1.0.0", other, {"accuracy": 0.99})
    assert _snapshot(registry.root) == before


# --- stages and rollback ----------------------------------------------------------------------


def _three_versions(tmp_path: Path, registry: ModelRegistry) -> None:
    for i, version in enumerate(("1.0", "1.1", "1.2")):
        registry.register_model("churn", version, _model_file(tmp_path, content=b"v%d" % i))


def test_promotion_archives_previous_production_and_rollback_restores_it(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    _three_versions(tmp_path, registry)
    registry.promote_to_production("churn", "1.0")
    registry.promote_to_production("churn", "1.1")
    assert registry.get_version("churn", "1.0").stage == "archived"
    registry.promote_to_production("churn", "1.2")
    assert [v.stage for v in registry.list_versions("churn")] == [
        "archived",
        "archived",
        "production",
    ]

    assert registry.rollback("churn", reason="latency regression") == "1.1"
    assert registry.get_production_version("churn") == "1.1"
    assert registry.get_production_model_path("churn").read_bytes() == b"v1"
    assert registry.get_version("churn", "1.2").stage == "archived"
    assert registry.rollback("churn") == "1.0"
    with pytest.raises(StageError, match="no previous production"):
        registry.rollback("churn")

    tail = [(h.action, h.version, h.from_stage, h.to_stage) for h in registry.get_history("churn")]
    assert tail[-4:] == [
        ("rollback", "1.1", "archived", "production"),
        ("rollback", "1.2", "production", "archived"),
        ("rollback", "1.0", "archived", "production"),
        ("rollback", "1.1", "production", "archived"),
    ]
    assert registry.get_history("churn")[-4].reason == "latency regression"


def test_rollback_without_previous_production_is_a_clear_error(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    registry.register_model("churn", "1.0", _model_file(tmp_path))
    with pytest.raises(StageError, match="'churn' has no previous production") as info:
        registry.rollback("churn")
    assert isinstance(info.value, MlopsError)
    registry.promote_to_production("churn", "1.0")
    with pytest.raises(StageError):
        registry.rollback("churn")
    assert registry.get_production_version("churn") == "1.0"


def test_staging_is_single_and_archive_rules(tmp_path: Path, registry: ModelRegistry) -> None:
    _three_versions(tmp_path, registry)
    registry.promote_to_staging("churn", "1.0")
    registry.promote_to_staging("churn", "1.1")
    assert registry.get_version("churn", "1.0").stage == "none"
    assert registry.get_history("churn")[-1].action == "demote"
    with pytest.raises(StageError, match="already in staging"):
        registry.promote_to_staging("churn", "1.1")

    registry.promote_to_production("churn", "1.1")
    with pytest.raises(StageError, match="in production"):
        registry.archive_version("churn", "1.1")
    assert registry.archive_version("churn", "1.2").stage == "archived"
    with pytest.raises(StageError, match="already archived"):
        registry.archive_version("churn", "1.2")
    # an archived version can come back through staging
    assert registry.promote_to_staging("churn", "1.2").stage == "staging"


def test_no_production_version(tmp_path: Path, registry: ModelRegistry) -> None:
    registry.register_model("churn", "1.0", _model_file(tmp_path))
    with pytest.raises(ModelNotFoundError, match="no production version"):
        registry.get_production_model_path("churn")


# --- integrity --------------------------------------------------------------------------------


def test_tampered_file_is_refused_and_reported(tmp_path: Path, registry: ModelRegistry) -> None:
    _three_versions(tmp_path, registry)
    registry.promote_to_production("churn", "1.1")
    stored = registry.get_production_model_path("churn")
    stored.write_bytes(b"v1 with a backdoor")

    with pytest.raises(mlops_core.IntegrityError, match="sha256") as info:
        registry.get_production_model_path("churn")
    assert "1.1" in str(info.value)
    results = {r.version: r for r in registry.verify("churn")}
    assert results["1.1"].ok is False
    assert results["1.1"].actual_sha256 == hashlib.sha256(b"v1 with a backdoor").hexdigest()
    assert str(stored) in results["1.1"].problem
    assert results["1.0"].ok and results["1.2"].ok
    assert [r.ok for r in registry.verify("churn", "1.0")] == [True]


def test_deleted_artifact_is_reported(tmp_path: Path, registry: ModelRegistry) -> None:
    registry.register_model("churn", "1.0", _model_file(tmp_path))
    registry.get_version("churn", "1.0").path.unlink()
    (result,) = registry.verify("churn")
    assert not result.ok and "missing" in result.problem
    with pytest.raises(IntegrityError):
        registry.get_model_path("churn", "1.0")


def test_symlink_planted_in_registry_is_never_followed(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    registry.register_model("churn", "1.0", _model_file(tmp_path, content=b"same bytes"))
    registry.promote_to_production("churn", "1.0")
    stored = registry.get_version("churn", "1.0").path
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(b"same bytes")  # identical content: only refusing the link catches it
    stored.unlink()
    stored.symlink_to(outside)
    with pytest.raises(IntegrityError, match="symlink"):
        registry.get_production_model_path("churn")
    assert "symlink" in registry.verify("churn")[0].problem


def test_symlinked_model_directory_is_refused(tmp_path: Path, registry: ModelRegistry) -> None:
    elsewhere = ModelRegistry(tmp_path / "elsewhere")
    elsewhere.register_model("churn", "1.0", _model_file(tmp_path))
    registry.root.mkdir()
    (registry.root / "churn").symlink_to(elsewhere.root / "churn")
    assert registry.list_models() == []
    with pytest.raises(CorruptMetadataError, match="symlink"):
        registry.get_model("churn")


def test_large_files_are_hashed_in_bounded_chunks(
    tmp_path: Path, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = os.urandom(3 * _fsutil.CHUNK + 12345)
    registry.register_model("big", "1", _model_file(tmp_path, "big.bin", content))
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(_fsutil.os, "read", counting_read)
    (result,) = registry.verify("big")
    assert result.ok and result.actual_sha256 == hashlib.sha256(content).hexdigest()
    assert len(reads) >= 4 and max(reads) <= _fsutil.CHUNK


# --- names ------------------------------------------------------------------------------------

BAD_NAMES = ["..", "../evil", "a/b", "/etc", "a\\b", "a\x00b", "", ".hidden", "x/../y", "a..b"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_names_that_could_escape_are_refused(
    tmp_path: Path, registry: ModelRegistry, bad: str
) -> None:
    src = _model_file(tmp_path)
    with pytest.raises(InvalidNameError) as info:
        registry.register_model(bad, "1.0", src)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidNameError):
        registry.register_model("churn", bad, src)
    with pytest.raises(InvalidNameError):
        registry.get_version("churn", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    assert not registry.root.exists()


def test_unknown_model_and_version_are_lookup_errors(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    with pytest.raises(LookupError, match="'fraud'"):
        registry.get_model("fraud")
    with pytest.raises(ModelNotFoundError, match="'fraud'"):
        registry.promote_to_production("fraud", "1.0")
    registry.register_model("churn", "1.0", _model_file(tmp_path))
    with pytest.raises(ModelNotFoundError, match=re.escape("'9.9'")):
        registry.promote_to_staging("churn", "9.9")
    with pytest.raises(ModelNotFoundError, match=re.escape("'9.9'")):
        registry.verify("churn", "9.9")


def test_bad_metrics_are_refused(tmp_path: Path, registry: ModelRegistry) -> None:
    src = _model_file(tmp_path)
    with pytest.raises(RegistryInputError, match="'auc'"):
        registry.register_model("churn", "1", src, {"auc": float("nan")})
    with pytest.raises(ValueError, match="'model'"):
        registry.register_model("churn", "1", src, {"model": object()})
    for value in ("abc", "0.9", True, None):  # the exporter reads numbers: anything else is lost
        with pytest.raises(RegistryInputError, match=r"metric 'auc' is .*; metrics must be finite"):
            registry.register_model("churn", "1", src, {"auc": value})
    assert registry.list_models() == []


def test_version_order() -> None:
    ordered = ["0.9", "1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0.0", "1.0.post1", "1.2", "1.10"]
    shuffled = ordered[::-1]
    assert sorted(shuffled, key=version_sort_key) == ordered
    assert version_sort_key("1.0") == version_sort_key("1.0.0")
    # strings that are not PEP 440-like come after, with numbers compared as numbers
    assert sorted(["nightly-10", "nightly-9", "2.0"], key=version_sort_key) == [
        "2.0",
        "nightly-9",
        "nightly-10",
    ]


def test_list_versions_registration_and_version_order(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    for version in ("1.10.0", "1.2.0", "1.9.0"):
        registry.register_model("churn", version, _model_file(tmp_path))
    assert [v.version for v in registry.list_versions("churn")] == ["1.10.0", "1.2.0", "1.9.0"]
    by_version = registry.list_versions("churn", order="version")
    assert [v.version for v in by_version] == ["1.2.0", "1.9.0", "1.10.0"]


# --- corrupt or hand-edited metadata ----------------------------------------------------------


def _registered(tmp_path: Path, registry: ModelRegistry) -> Path:
    registry.register_model("churn", "1.0", _model_file(tmp_path))
    registry.promote_to_production("churn", "1.0")
    return registry.root / "churn"


def test_truncated_model_json_names_the_file(tmp_path: Path, registry: ModelRegistry) -> None:
    mdir = _registered(tmp_path, registry)
    path = mdir / "model.json"
    path.write_text(path.read_text()[:40])
    with pytest.raises(CorruptMetadataError, match=re.escape("model.json: not valid JSON")) as info:
        registry.get_production_model_path("churn")
    assert str(path) in str(info.value)
    with pytest.raises(CorruptMetadataError):
        registry.register_model("churn", "2.0", _model_file(tmp_path))


def test_hand_edited_model_json_names_file_and_key(tmp_path: Path, registry: ModelRegistry) -> None:
    path = _registered(tmp_path, registry) / "model.json"
    doc = json.loads(path.read_text())
    doc["production"] = "7.0"
    path.write_text(json.dumps(doc))
    with pytest.raises(
        CorruptMetadataError,
        match=re.escape("model.json: production: expected a registered version or null, got '7.0'"),
    ) as info:
        registry.get_model("churn")
    assert str(path) in str(info.value)
    path.write_text("[1, 2]")
    with pytest.raises(CorruptMetadataError, match="expected a JSON object"):
        registry.get_model("churn")


MODEL_JSON_KEYS = [
    "format", "name", "created_at", "versions", "staging", "production", "archived",
    "previous_production", "seq", "last_events",
]  # fmt: skip


@pytest.mark.parametrize("key", MODEL_JSON_KEYS)
@pytest.mark.parametrize("edit", ["removed", "wrong type"])
def test_every_key_of_model_json_is_checked(
    tmp_path: Path, registry: ModelRegistry, key: str, edit: str
) -> None:
    """Any hand-edit gives CorruptMetadataError naming the file, never a KeyError/TypeError."""
    path = _registered(tmp_path, registry) / "model.json"
    doc = json.loads(path.read_text())
    assert sorted(doc) == sorted(MODEL_JSON_KEYS)  # the list above covers the whole file
    if edit == "removed":
        del doc[key]
    else:
        doc[key] = [{"unhashable": True}] if not isinstance(doc[key], list) else [["x"]]
    path.write_text(json.dumps(doc))
    for call in (registry.get_model, registry.get_history, registry.rollback):
        with pytest.raises(CorruptMetadataError) as info:
            call("churn")
        assert str(path) in str(info.value)


def test_hand_edited_metadata_is_reported_like_a_config_error(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    """One line: the file (and line), the dotted key, what was expected, what was found."""
    mdir = _registered(tmp_path, registry)
    model, history = mdir / "model.json", mdir / "history.jsonl"
    doc = json.loads(model.read_text())
    doc["last_events"][0]["to_stage"] = "live"
    model.write_text(json.dumps(doc))
    with pytest.raises(CorruptMetadataError) as info:
        registry.get_model("churn")
    assert str(info.value) == (
        f"{model}: last_events[0].to_stage: expected one of none, staging, production,"
        " archived, got 'live'"
    )
    doc["last_events"][0]["to_stage"] = "production"
    model.write_text(json.dumps(doc))
    lines = history.read_text().splitlines()
    first = json.loads(lines[0])
    first["seq"] = "1"
    history.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(CorruptMetadataError) as info:
        registry.get_history("churn")
    assert str(info.value) == f"{history}: line 1: seq: expected an integer, got '1' (str)"
    record_path = mdir / "versions" / "1.0" / "version.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "kind": "folder"}))
    with pytest.raises(CorruptMetadataError) as info:
        registry.get_version("churn", "1.0")
    assert str(info.value) == (
        f"{record_path}: kind: expected one of file, directory, got 'folder'"
    )


def test_keys_the_registry_does_not_know_are_let_through(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    """A later version may add keys: a registry it wrote to stays readable by this one."""
    mdir = _registered(tmp_path, registry)
    model = mdir / "model.json"
    doc = json.loads(model.read_text())
    doc["added_later"] = {"any": "thing"}
    doc["versions"][0]["signed_by"] = "ci"
    model.write_text(json.dumps(doc))
    assert registry.get_model("churn").production == "1.0"


def test_a_torn_last_history_line_is_skipped_with_a_warning(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    """A crash in the middle of an append leaves a last line that is not JSON: the events
    before it are read (model.json still holds the last change's), and a warning names it."""
    path = _registered(tmp_path, registry) / "history.jsonl"
    whole = path.read_bytes()
    first, second = whole.splitlines()
    for torn, line in ((whole + b'{"seq": 3, "act', 3), (first + b"\n" + second[:-9], 2)):
        path.write_bytes(torn)  # a partial next event; or the last event itself cut short
        with pytest.warns(RegistryWarning, match=re.escape(f"history.jsonl: line {line}: not")):
            assert [e.seq for e in registry.get_history("churn")] == [1, 2]


def test_edited_history_names_file_and_line(tmp_path: Path, registry: ModelRegistry) -> None:
    path = _registered(tmp_path, registry) / "history.jsonl"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n{not json\n" + lines[1] + "\n")  # a bad line in the middle
    with pytest.raises(
        CorruptMetadataError, match=re.escape("history.jsonl: line 2: not valid JSON")
    ):
        registry.get_history("churn")
    path.write_text(lines[1] + "\n")  # first line deleted
    with pytest.raises(CorruptMetadataError, match="line 1: event seq 2, expected 1"):
        registry.get_history("churn")
    with pytest.raises(CorruptMetadataError):
        registry.rollback("churn")


def test_corrupt_version_json_is_reported(tmp_path: Path, registry: ModelRegistry) -> None:
    mdir = _registered(tmp_path, registry)
    path = mdir / "versions" / "1.0" / "version.json"
    path.write_text('{"name": "churn"')
    with pytest.raises(CorruptMetadataError, match=re.escape("version.json")):
        registry.get_version("churn", "1.0")
    (result,) = registry.verify("churn")
    assert not result.ok and str(path) in result.problem


# --- recovery of what a killed writer leaves behind -------------------------------------------


def test_history_behind_model_json_is_merged_then_repaired(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    mdir = _registered(tmp_path, registry)
    history = mdir / "history.jsonl"
    full = history.read_text().splitlines()
    history.write_text(full[0] + "\n")  # as if killed after committing model.json
    assert [h.action for h in registry.get_history("churn")] == ["register", "promote"]
    registry.register_model("churn", "2.0", _model_file(tmp_path))
    lines = history.read_text().splitlines()
    assert lines[:2] == full
    assert [json.loads(x)["seq"] for x in lines] == [1, 2, 3]


def test_orphan_version_directory_is_cleaned_by_next_write(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    mdir = _registered(tmp_path, registry)
    orphan = mdir / "versions" / "2.0"
    orphan.mkdir()
    (orphan / "half.pkl").write_bytes(b"partial")
    hidden = mdir / "versions" / ".2.1.123.abcd.incoming"
    hidden.mkdir()
    assert [v.version for v in registry.list_versions("churn")] == ["1.0"]
    assert all(r.ok for r in registry.verify("churn"))
    mv = registry.register_model("churn", "2.0", _model_file(tmp_path, content=b"complete"))
    assert mv.path.read_bytes() == b"complete"
    assert sorted(p.name for p in (mdir / "versions").iterdir()) == ["1.0", "2.0"]


def test_lock_timeout_names_the_model(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "reg", lock_timeout=0.2)
    registry.register_model("churn", "1.0", _model_file(tmp_path))
    with open(registry.root / "churn" / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(LockTimeoutError, match="model 'churn'"):
            registry.promote_to_production("churn", "1.0")
        # readers take no lock
        assert registry.get_version("churn", "1.0").stage == "none"
    assert registry.promote_to_production("churn", "1.0").stage == "production"


def test_symlinked_versions_directory_is_refused(tmp_path: Path, registry: ModelRegistry) -> None:
    registry.register_model("churn", "1.0", _model_file(tmp_path))
    registry.promote_to_production("churn", "1.0")
    versions = registry.root / "churn" / "versions"
    outside = tmp_path / "outside-versions"
    versions.rename(outside)
    versions.symlink_to(outside)  # same content, but reached through a link
    with pytest.raises(IntegrityError, match="symlink"):
        registry.get_production_model_path("churn")
    assert "symlink" in registry.verify("churn")[0].problem
    with pytest.raises(IntegrityError, match="symlink"):
        registry.register_model("churn", "2.0", _model_file(tmp_path))
    assert sorted(p.name for p in outside.iterdir()) == ["1.0"]


def test_verify_names_an_unreadable_file_in_the_clis_one_line(
    tmp_path: Path, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library and the ``mlops`` CLI say an OS error one way (mlops_core.errors.one_line):
    the registry kept a copy of its own that did not fold whitespace, so a reason with a line
    break broke the one-line-per-version table of ``mlops registry verify``."""
    registry.register_model("churn", "1.0", _model_file(tmp_path))

    def unreadable(*args: object) -> None:
        raise PermissionError(13, "Permission denied\n  (read-only mount)", "/srv/m.pkl")

    monkeypatch.setattr(ModelRegistry, "_verify_version", unreadable)
    [result] = registry.verify("churn")
    assert not result.ok
    assert result.problem == "/srv/m.pkl: Permission denied (read-only mount)"
