"""A model's reference: from a file, or following a registry stage through promotions.

The registry tests run against both backends, a directory and a real S3-compatible server
process (moto's, ``tests/s3_server.py``), with the same assertions, as
``tests/test_registry_s3.py`` does for the registry itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import structlog

from exporter.config import ExporterConfig, FeatureConfig, LogsConfig, load_reference
from exporter.errors import ConfigError
from exporter.references import (
    DEFAULT_POLL_INTERVAL,
    POLL_FAILURES,
    FileReference,
    PathSpec,
    PollFailure,
    RegistrySpec,
    Stage,
    StageReference,
    VersionChange,
    log_poll_result,
    open_reference,
    parse_reference,
)
from mlops_core.profile import ReferenceProfile
from mlops_core.registry import ModelRegistry
from tests import s3_server as _fixtures
from tests import test_registry_s3 as _registry_tests
from tests.conftest import REPO_ROOT
from tests.test_bench_smoke import NUMBER, figure, run_bench
from tests.test_registry_s3 import Backend

# the server for the session, its AWS variables, a new bucket; a registry on each backend and
# a model file to register in it
s3_server, s3_env, s3_url = _fixtures.s3_server, _fixtures.s3_env, _fixtures.s3_url
backend, model_file = _registry_tests.backend, _registry_tests.model_file


def _data(seed: int, shift: float = 0.0, *, with_plan: bool = True) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {"age": rng.normal(40 + shift, 10, 500)}
    if with_plan:
        data["plan"] = rng.choice(["basic", "pro", "max"], 500)
    return data


def _config(features: tuple[FeatureConfig, ...] | None = None) -> ExporterConfig:
    return ExporterConfig(
        model_name="churn",
        logs=LogsConfig(paths=("/var/log/predictions.jsonl",)),
        reference_path="<unused>",
        features=features,
    )


class Registered:
    """A registry holding churn 1 (in production) and 2 (not yet), each with its profile."""

    def __init__(self, backend: Backend, model_file: Path) -> None:
        self.backend = backend
        self.registry = backend.registry()
        self.v1 = ReferenceProfile.from_data(_data(1))
        self.v2 = ReferenceProfile.from_data(_data(2, shift=15.0))
        self.registry.register_model(
            "churn", "1", model_file, {"accuracy": 0.85}, reference=self.v1
        )
        self.registry.register_model(
            "churn", "2", model_file, {"accuracy": 0.88}, reference=self.v2
        )
        self.registry.promote_to_production("churn", "1")

    def follow(self, stage: Stage = "production", **kwargs: Any) -> StageReference:
        return follow(self.backend, stage, **kwargs)

    def tamper_profile(self, version: str) -> None:
        key = f"{self.backend.version_dir('churn', version)}/reference.json"
        self.backend.write(key, self.backend.read(key).replace(b'"n_rows"', b'"n_rowz"', 1))


def follow(
    backend: Backend, stage: Stage = "production", config: ExporterConfig | None = None
) -> StageReference:
    """The reference of ``stage`` of churn in the backend's registry, as the exporter opens it."""
    source = open_reference(
        "churn",
        RegistrySpec(backend.location, stage),
        config or _config(),
        registry_factory=lambda loc: ModelRegistry(loc, cache_dir=backend.cache),
    )
    assert isinstance(source, StageReference)
    return source


@pytest.fixture
def registered(backend: Backend, model_file: Path) -> Registered:
    return Registered(backend, model_file)


# --- the spec ---------------------------------------------------------------------------------


def test_a_path_spec_and_a_registry_spec_are_read_with_their_defaults() -> None:
    assert parse_reference({"path": "ref.csv"}) == PathSpec("ref.csv")
    assert parse_reference({"registry": "s3://models/registry"}) == RegistrySpec(
        "s3://models/registry", "production", DEFAULT_POLL_INTERVAL
    )
    assert parse_reference(
        {"registry": "/srv/models", "stage": "staging", "poll_interval": "1m"}
    ) == RegistrySpec("/srv/models", "staging", 60.0)


def test_relative_paths_are_resolved_but_an_s3_url_is_left_as_written() -> None:
    def rel(p: str) -> str:
        return f"/etc/mlops/{p}"

    assert parse_reference({"path": "ref.csv"}, rel=rel) == PathSpec("/etc/mlops/ref.csv")
    assert parse_reference({"registry": "reg"}, rel=rel) == RegistrySpec("/etc/mlops/reg")
    assert parse_reference({"registry": "s3://b/p"}, rel=rel) == RegistrySpec("s3://b/p")


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        ({"path": "r.csv", "registry": "/srv/models"}, "reference: set path or registry, not both"),
        ({}, "reference: set path (a reference file) or registry"),
        ({"path": "r.csv", "stage": "staging"}, "reference.stage: only with reference.registry"),
        ({"registry": "/srv/m", "stage": "prod"}, "reference.stage: expected one of production"),
        ({"registry": "/srv/m", "stgae": "staging"}, "did you mean 'stage'"),
        ({"registry": "/srv/m", "poll_interval": "0s"}, "reference.poll_interval:"),
    ],
)
def test_a_wrong_spec_is_one_line_naming_the_key(raw: dict[str, Any], line: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_reference(raw)
    assert line in str(err.value) and "\n" not in str(err.value)


# --- a file -----------------------------------------------------------------------------------


def test_a_path_reference_loads_exactly_as_load_reference_and_never_changes(
    tmp_path: Path,
) -> None:
    path = ReferenceProfile.from_data(_data(1)).save(tmp_path / "ref.json")
    config = _config((FeatureConfig("age"),))
    source = open_reference("churn", PathSpec(str(path)), config)
    assert isinstance(source, FileReference)
    profile, features = load_reference(msgspec.structs.replace(config, reference_path=str(path)))
    assert source.current.profile.hash == profile.hash
    assert dict(source.current.features) == features == {"age": "numeric"}
    assert (source.current.version, source.current.stage, source.poll_interval) == (
        None,
        None,
        None,
    )
    assert source.poll() is None
    assert source.describe() == f"file {path}"


def test_a_missing_reference_file_is_load_references_own_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^reference\.path: file not found: .*nope\.csv$"):
        open_reference("churn", PathSpec(str(tmp_path / "nope.csv")), _config())


# --- following a stage: start-up --------------------------------------------------------------


def test_start_up_loads_the_production_versions_profile_and_metrics(
    registered: Registered,
) -> None:
    source = registered.follow()
    ref = source.current
    assert (ref.version, ref.stage, ref.profile.hash) == ("1", "production", registered.v1.hash)
    assert dict(ref.features) == {"age": "numeric", "plan": "categorical"}
    assert dict(ref.metrics) == {"accuracy": 0.85}
    assert ref.source == f"registry {registered.backend.location}, stage production"
    assert source.poll() is None  # nothing moved


def test_no_production_version_at_start_up_is_one_line_naming_model_and_registry(
    backend: Backend, model_file: Path
) -> None:
    registry = backend.registry()
    registry.register_model("churn", "1", model_file, reference=_data(1))
    with pytest.raises(ConfigError) as err:
        follow(backend)
    assert str(err.value) == (
        f"reference.registry: model 'churn' in registry {registry.location} has no production"
        " version (promote one: mlops registry promote churn VERSION production)"
    )


def test_an_unknown_model_at_start_up_names_the_registered_ones(
    backend: Backend, model_file: Path
) -> None:
    backend.registry().register_model("fraud", "1", model_file)
    with pytest.raises(ConfigError) as err:
        follow(backend)
    assert str(err.value) == (
        f"reference.registry: model 'churn' in registry {backend.location}: no such model"
        " (registered: fraud)"
    )


def test_a_production_version_without_a_reference_at_start_up_is_one_line(
    backend: Backend, model_file: Path
) -> None:
    registry = backend.registry()
    registry.register_model("churn", "1", model_file)
    registry.promote_to_production("churn", "1")
    with pytest.raises(ConfigError) as err:
        follow(backend)
    line = str(err.value)
    assert line.startswith(
        f"reference.registry: model 'churn' in registry {backend.location}, production version"
        " '1': model 'churn' version '1' was registered without a reference profile"
    )
    assert "\n" not in line


def test_a_tampered_production_profile_at_start_up_is_one_line_naming_the_file(
    registered: Registered,
) -> None:
    registered.tamper_profile("1")
    with pytest.raises(ConfigError) as err:
        registered.follow()
    line = str(err.value)
    assert "production version '1'" in line and "reference.json" in line and "\n" not in line


def test_a_configured_feature_the_stage_profile_lacks_fails_start_up(
    registered: Registered,
) -> None:
    with pytest.raises(ConfigError, match=r"features\.income: not a column of the reference"):
        registered.follow(config=_config((FeatureConfig("income"),)))


def test_an_unsupported_registry_url_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^reference\.registry: registry 'gs://b/p'"):
        open_reference("churn", RegistrySpec("gs://b/p"), _config())


# --- following a stage: promote, rollback, failures -------------------------------------------


def test_a_promotion_is_seen_by_the_next_poll_with_the_new_profile_loaded(
    registered: Registered,
) -> None:
    source = registered.follow()
    registered.registry.promote_to_production("churn", "2")
    change = source.poll()
    assert isinstance(change, VersionChange)
    assert (change.model, change.old_version, change.new_version, change.stage) == (
        "churn", "1", "2", "production",
    )  # fmt: skip
    assert change.reference is source.current
    assert (source.current.version, source.current.profile.hash) == ("2", registered.v2.hash)
    assert dict(source.current.metrics) == {"accuracy": 0.88}
    assert source.current.profile.metadata["model_version"] == "2"
    assert source.poll() is None  # seen once


def test_a_rollback_goes_back_to_the_previous_versions_profile(registered: Registered) -> None:
    source = registered.follow()
    registered.registry.promote_to_production("churn", "2")
    assert isinstance(source.poll(), VersionChange)
    assert registered.registry.rollback("churn") == "1"
    change = source.poll()
    assert isinstance(change, VersionChange)
    assert (change.old_version, change.new_version) == ("2", "1")
    assert source.current.profile.hash == registered.v1.hash


def test_a_poll_that_finds_no_change_reads_no_profile(
    registered: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = registered.follow()
    reads: list[str] = []
    real = source._registry.get_reference_profile

    def counted(name: str, version: str) -> ReferenceProfile:
        reads.append(version)
        return real(name, version)

    monkeypatch.setattr(source._registry, "get_reference_profile", counted)
    for _ in range(5):
        assert source.poll() is None
    assert reads == []
    registered.registry.promote_to_production("churn", "2")
    source.poll()
    assert reads == ["2"]


def test_a_tampered_profile_keeps_the_last_good_one_and_is_reported_once(
    registered: Registered,
) -> None:
    source = registered.follow()
    registered.tamper_profile("2")
    registered.registry.promote_to_production("churn", "2")
    failure = source.poll()  # never raises
    assert isinstance(failure, PollFailure)
    assert (failure.model, failure.reason, failure.version, failure.kept_version) == (
        "churn", "invalid_reference", "2", "1",
    )  # fmt: skip
    assert "reference.json" in failure.error and "\n" not in failure.error
    assert failure.message().startswith("model 'churn' version '2': ")
    assert failure.message().endswith("keeping the reference of version '1'")
    assert (source.current.version, source.current.profile.hash) == ("1", registered.v1.hash)
    # a version's profile cannot change: it is not downloaded (nor counted) at every poll
    assert source.poll() is None
    assert source.current.version == "1"


def test_after_a_bad_version_a_good_one_is_followed_again(
    registered: Registered, model_file: Path
) -> None:
    source = registered.follow()
    registered.tamper_profile("2")
    registered.registry.promote_to_production("churn", "2")
    assert isinstance(source.poll(), PollFailure)
    v3 = ReferenceProfile.from_data(_data(3, shift=-5.0))
    registered.registry.register_model("churn", "3", model_file, reference=v3)
    registered.registry.promote_to_production("churn", "3")
    change = source.poll()
    assert isinstance(change, VersionChange)
    # the old version is the one whose profile was in use, not the broken one
    assert (change.old_version, change.new_version) == ("1", "3")
    assert source.current.profile.hash == v3.hash


def test_moving_back_to_a_bad_version_reports_it_again(registered: Registered) -> None:
    source = registered.follow()
    registered.tamper_profile("2")
    registry = registered.registry
    registry.promote_to_production("churn", "2")
    assert isinstance(source.poll(), PollFailure)
    registry.rollback("churn")  # back to 1, the version in use: nothing to report
    assert source.poll() is None
    registry.promote_to_production("churn", "2")
    again = source.poll()
    assert isinstance(again, PollFailure) and not again.repeated


def test_a_version_without_a_reference_keeps_the_last_good_one(
    registered: Registered, model_file: Path
) -> None:
    source = registered.follow()
    registered.registry.register_model("churn", "3", model_file)
    registered.registry.promote_to_production("churn", "3")
    failure = source.poll()
    assert isinstance(failure, PollFailure)
    assert (failure.reason, failure.version) == ("no_reference", "3")
    assert "registered without a reference profile" in failure.error
    assert source.current.version == "1"


def test_a_new_profile_without_a_configured_feature_is_unusable(
    registered: Registered, model_file: Path
) -> None:
    source = registered.follow(config=_config((FeatureConfig("age"), FeatureConfig("plan"))))
    registry = registered.registry
    registry.register_model("churn", "3", model_file, reference=_data(3, with_plan=False))
    registry.promote_to_production("churn", "3")
    failure = source.poll()
    assert isinstance(failure, PollFailure)
    assert (failure.reason, failure.version) == ("unusable_reference", "3")
    assert failure.error.startswith("features.plan: not a column of the reference")
    assert "version '3'" in failure.error
    assert dict(source.current.features) == {"age": "numeric", "plan": "categorical"}


def test_a_damaged_model_document_is_retried_and_logged_once(registered: Registered) -> None:
    source = registered.follow()
    good = registered.backend.read("churn/model.json")
    registered.backend.write("churn/model.json", b'{"format": "nonsense"}')
    first, second = source.poll(), source.poll()
    assert isinstance(first, PollFailure) and isinstance(second, PollFailure)
    assert (first.reason, first.version, first.repeated) == ("registry_unreadable", None, False)
    assert second.repeated  # counted, not logged again
    assert source.current.version == "1"
    registered.backend.write("churn/model.json", good)
    assert source.poll() is None
    registered.registry.promote_to_production("churn", "2")
    assert isinstance(source.poll(), VersionChange)


def test_following_staging_reports_an_empty_stage_and_keeps_the_last_good(
    registered: Registered,
) -> None:
    registered.registry.promote_to_staging("churn", "2")
    source = registered.follow("staging")
    assert (source.current.version, source.current.stage) == ("2", "staging")
    registered.registry.promote_to_production("churn", "2")  # staging is now empty
    failure = source.poll()
    assert isinstance(failure, PollFailure)
    assert (failure.reason, failure.kept_version) == ("no_version", "2")
    assert failure.error == "stage staging holds no version"


def test_a_poll_never_raises_even_on_a_bug(
    registered: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = registered.follow()

    def broken(name: str) -> str:
        raise KeyError("production")

    monkeypatch.setattr(source._registry, "get_production_version", broken)
    failure = source.poll()
    assert isinstance(failure, PollFailure)
    assert (failure.reason, failure.error) == ("internal_error", "KeyError: 'production'")
    assert failure.reason in POLL_FAILURES
    with structlog.testing.capture_logs() as logs:
        log_poll_result(failure)
    assert isinstance(logs[0]["exc_info"], KeyError)  # the traceback goes with the line


# --- logging ----------------------------------------------------------------------------------


def test_a_change_is_logged_at_info_and_a_failure_once_at_warning(registered: Registered) -> None:
    source = registered.follow()
    registered.registry.promote_to_production("churn", "2")
    good = registered.backend.read("churn/model.json")
    with structlog.testing.capture_logs() as logs:
        log_poll_result(source.poll())
        registered.backend.write("churn/model.json", b"{}")
        log_poll_result(source.poll())
        log_poll_result(source.poll())
        log_poll_result(None)
    registered.backend.write("churn/model.json", good)
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("model_version_changed", "info"),
        ("reference_poll_failed", "warning"),
        ("reference_poll_failed", "debug"),
    ]
    assert {k: logs[0][k] for k in ("model", "stage", "old_version", "new_version")} == {
        "model": "churn", "stage": "production", "old_version": "1", "new_version": "2",
    }  # fmt: skip
    assert (logs[1]["model"], logs[1]["reason"], logs[1]["kept_version"]) == (
        "churn", "registry_unreadable", "2",
    )  # fmt: skip


# --- imports ----------------------------------------------------------------------------------


def test_a_directory_registry_never_imports_the_s3_backend(
    tmp_path: Path, model_file: Path
) -> None:
    registry = ModelRegistry(tmp_path / "reg")
    registry.register_model("churn", "1", model_file, reference=_data(1))
    registry.promote_to_production("churn", "1")
    script = (
        "import sys\n"
        "from exporter.references import RegistrySpec, open_reference\n"
        "from exporter.config import ExporterConfig, LogsConfig\n"
        "config = ExporterConfig('churn', LogsConfig(paths=('x',)), reference_path='-')\n"
        f"source = open_reference('churn', RegistrySpec({str(tmp_path / 'reg')!r}), config)\n"
        "assert source.current.version == '1'\n"
        "s3 = ('boto', 'mlops_core.registry._s3')\n"
        "print(sorted(m for m in sys.modules if m.startswith(s3)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- the benchmark ----------------------------------------------------------------------------


def test_bench_reference_follow_prints_each_figure_for_both_backends() -> None:
    _fixtures.require_moto()
    out = run_bench("bench_reference_follow.py", "--repeats", "2", "--features", "2")
    figure(out, r"^\s+filesystem\s+S3 \(moto, loopback\)$")
    for name in (
        "poll, nothing moved",
        "poll that loads the promoted version",
        "promote \\+ that poll",
    ):
        figure(out, rf"^  {name}\s+{NUMBER} ms\s+{NUMBER} ms$")
