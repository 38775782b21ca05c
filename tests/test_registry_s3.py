"""The registry on S3-compatible object storage, against a real server process (moto's).

The server runs as its own process on a loopback port (``tests/s3_server.py``); every test
gets an empty bucket.  The API tests run against both backends, the filesystem's and S3's,
with the same assertions: the two must behave the same.  Then what only object storage
has: objects changed behind the registry's back, a server that ignores conditional
writes, a commit whose answer was lost, writer processes racing and killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_core.errors import (
    ConditionalWritesUnsupportedError,
    CorruptMetadataError,
    IntegrityError,
    MissingFileError,
    MlopsError,
    ModelNotFoundError,
    RegistryInputError,
    StageError,
    StorageError,
    VersionExistsError,
)
from mlops_core.profile import ReferenceProfile
from mlops_core.registry import ModelRegistry
from tests import s3_server as _fixtures
from tests.s3_server import S3Server, require_moto
from tests.test_registry_safety import (
    assert_consistent,
    kill_writers_at_random_moments,
    race_eight_writers_and_a_reader,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# the server for the session, its AWS variables set for a test, a new bucket for a test
s3_server, s3_env, s3_url = _fixtures.s3_server, _fixtures.s3_env, _fixtures.s3_url
ENTRY = "import sys; from mlops_core.cli import main; sys.exit(main(sys.argv[1:]))"


# --- both backends ----------------------------------------------------------------------------


class Backend:
    """A registry location of one backend and raw access to what it stores.

    ``key`` arguments are paths relative to the registry (``churn/model.json``); a version's
    own files are under :meth:`version_dir`, which differs between the two layouts.
    """

    def __init__(self, kind: str, location: str, cache: Path, server: S3Server | None):
        self.kind, self.location, self.cache, self.server = kind, location, cache, server

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.location, cache_dir=self.cache)

    def version_dir(self, name: str, version: str) -> str:
        if self.kind == "fs":
            return f"{name}/versions/{version}"
        doc = json.loads(self.read(f"{name}/model.json"))
        upload = next(v["upload"] for v in doc["versions"] if v["version"] == version)
        return f"{name}/versions/{version}/{upload}"

    def artifact(self, name: str, version: str, source_name: str) -> str:
        sub = "" if self.kind == "fs" else "artifact/"
        return f"{self.version_dir(name, version)}/{sub}{source_name}"

    def where(self, key: str) -> str:
        """How error messages name ``key``: a path, or an s3:// URL."""
        return os.path.join(self.location, key) if self.kind == "fs" else f"{self.location}/{key}"

    def _bucket_key(self, key: str) -> tuple[str, str]:
        bucket, _, prefix = self.location[len("s3://") :].partition("/")
        return bucket, f"{prefix}/{key}"

    def read(self, key: str) -> bytes:
        if self.kind == "fs":
            return Path(self.location, key).read_bytes()
        assert self.server is not None
        bucket, k = self._bucket_key(key)
        return self.server.client().get_object(Bucket=bucket, Key=k)["Body"].read()

    def write(self, key: str, data: bytes) -> None:
        if self.kind == "fs":
            Path(self.location, key).write_bytes(data)
            return
        assert self.server is not None
        bucket, k = self._bucket_key(key)
        self.server.client().put_object(Bucket=bucket, Key=k, Body=data)

    def delete(self, key: str) -> None:
        if self.kind == "fs":
            Path(self.location, key).unlink()
            return
        assert self.server is not None
        bucket, k = self._bucket_key(key)
        self.server.client().delete_object(Bucket=bucket, Key=k)


@pytest.fixture(params=["fs", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "fs":
        return Backend("fs", str(tmp_path / "reg"), tmp_path / "cache", None)
    url = request.getfixturevalue("s3_url")
    return Backend("s3", url, tmp_path / "cache", request.getfixturevalue("s3_server"))


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "model.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"pickled churn model " * 100)
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "src" / "bundle"
    (root / "weights").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "config.json").write_text('{"layers": 3}')
    (root / "weights" / "part-0.bin").write_bytes(os.urandom(3000))
    return root


def _training_data(seed: int = 0, shift: float = 0.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "age": rng.normal(40 + shift, 10, 500),
        "plan": rng.choice(["basic", "pro", "max"], 500),
    }


def test_the_full_flow_behaves_the_same_in_both_backends(
    backend: Backend, model_file: Path, model_dir: Path
) -> None:
    registry = backend.registry()
    v1 = registry.register_model("churn", "1.0.0", model_file, {"accuracy": 0.85})
    assert v1.sha256 == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert (v1.stage, v1.kind, v1.size) == ("none", "file", model_file.stat().st_size)
    v2 = registry.register_model("churn", "1.10.0", model_dir, tags={"owner": "data-team"})
    assert v2.kind == "directory"
    registry.register_model("churn", "1.2.0", model_file, {"accuracy": 0.86})

    assert registry.promote_to_staging("churn", "1.0.0").stage == "staging"
    assert registry.promote_to_production("churn", "1.0.0").stage == "production"
    registry.promote_to_staging("churn", "1.2.0")
    registry.promote_to_production("churn", "1.10.0")
    registry.promote_to_production("churn", "1.2.0")
    assert registry.rollback("churn", reason="latency") == "1.10.0"
    with pytest.raises(StageError):
        registry.archive_version("churn", "1.10.0")  # in production

    info = registry.get_model("churn")
    assert info.versions == ("1.0.0", "1.10.0", "1.2.0")
    assert (info.production, info.staging) == ("1.10.0", None)
    assert info.rollback_targets == ("1.0.0",)
    assert [v.version for v in registry.list_versions("churn", order="version")] == [
        "1.0.0", "1.2.0", "1.10.0",
    ]  # fmt: skip
    assert registry.list_models() == ["churn"]
    assert registry.get_version_metrics("churn", "1.2.0") == {"accuracy": 0.86}
    assert assert_consistent(registry, "churn") == ["1.0.0", "1.10.0", "1.2.0"]
    history = registry.get_history("churn")
    assert history[-1].reason == "latency" and len(history) == 12

    # the artifacts come back byte for byte, directories with their empty sub-directories
    path = registry.get_production_model_path("churn")
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == [
        "config.json", "empty", "weights", "weights/part-0.bin",
    ]  # fmt: skip
    assert (path / "weights" / "part-0.bin").read_bytes() == (
        model_dir / "weights" / "part-0.bin"
    ).read_bytes()
    assert registry.get_model_path("churn", "1.0.0").read_bytes() == model_file.read_bytes()
    # the source is copied, not referenced
    model_file.write_bytes(b"overwritten later")
    assert registry.get_model_path("churn", "1.0.0").read_bytes().startswith(b"pickled")


def test_an_artifact_has_the_same_sha256_in_both_backends(
    tmp_path: Path, s3_url: str, model_file: Path, model_dir: Path
) -> None:
    on_disk = ModelRegistry(tmp_path / "reg")
    in_s3 = ModelRegistry(s3_url, cache_dir=tmp_path / "cache")
    for version, src in (("1", model_file), ("2", model_dir)):
        assert (
            on_disk.register_model("m", version, src).sha256
            == in_s3.register_model("m", version, src).sha256
        )


def test_refused_changes_write_nothing(backend: Backend, model_file: Path) -> None:
    registry = backend.registry()
    registry.register_model("churn", "1.0", model_file)
    before = backend.read("churn/model.json")
    with pytest.raises(StageError):
        registry.rollback("churn")
    with pytest.raises(VersionExistsError):
        registry.register_model("churn", "1.0", model_file)
    with pytest.raises(ModelNotFoundError, match=r"has no version '9\.9'"):
        registry.promote_to_production("churn", "9.9")
    assert backend.read("churn/model.json") == before
    assert [h.action for h in registry.get_history("churn")] == ["register"]


# --- the reference profile travels with the version -------------------------------------------


def _reference_inputs(tmp_path: Path) -> dict[str, Callable[[], Any]]:
    data = _training_data()
    csv = tmp_path / "ref.csv"
    csv.write_text(
        "age,plan\n" + "".join(f"{a},{p}\n" for a, p in zip(data["age"], data["plan"], strict=True))
    )
    saved = ReferenceProfile.from_file(csv).save(tmp_path / "ref.json")
    jsonl = tmp_path / "ref.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"age": float(a), "plan": str(p)}) + "\n"
            for a, p in zip(data["age"], data["plan"], strict=True)
        )
    )
    npz = tmp_path / "ref.npz"
    np.savez(npz, age=data["age"])
    return {
        "raw data": lambda: data,
        "a profile": lambda: ReferenceProfile.from_data(data),
        "a csv path": lambda: str(csv),
        "a saved profile": lambda: saved,
        "a jsonl path": lambda: jsonl,
        "an npz path": lambda: npz,
    }


@pytest.mark.parametrize(
    "given", ["raw data", "a profile", "a csv path", "a saved profile", "a jsonl path",
              "an npz path"],
)  # fmt: skip
def test_the_reference_is_stored_with_the_version_and_read_back(
    backend: Backend, model_file: Path, tmp_path: Path, given: str
) -> None:
    reference = _reference_inputs(tmp_path)[given]()
    expected = (
        reference if isinstance(reference, ReferenceProfile)
        else ReferenceProfile.from_data(reference) if isinstance(reference, dict)
        else ReferenceProfile.from_file(reference)
    )  # fmt: skip
    registry = backend.registry()
    mv = registry.register_model("churn", "1.0", model_file, reference=reference)
    stored = backend.read(f"{backend.version_dir('churn', '1.0')}/reference.json")
    assert mv.reference_sha256 == hashlib.sha256(stored).hexdigest()
    profile = registry.get_reference_profile("churn", "1.0")
    assert profile.hash == expected.hash
    assert profile.feature_names == expected.feature_names
    assert (profile.metadata["model_name"], profile.metadata["model_version"]) == ("churn", "1.0")


def test_the_production_reference_follows_promote_and_rollback(
    backend: Backend, model_file: Path
) -> None:
    registry = backend.registry()
    first = ReferenceProfile.from_data(_training_data(1))
    shifted = ReferenceProfile.from_data(_training_data(2, shift=15.0))
    registry.register_model("churn", "1", model_file, reference=first)
    registry.register_model("churn", "2", model_file, reference=shifted)
    with pytest.raises(ModelNotFoundError, match="has no production version"):
        registry.get_production_reference_profile("churn")
    registry.promote_to_production("churn", "1")
    assert registry.get_production_reference_profile("churn").hash == first.hash
    registry.promote_to_production("churn", "2")
    got = registry.get_production_reference_profile("churn")
    assert (got.hash, got.metadata["model_version"]) == (shifted.hash, "2")
    registry.rollback("churn")
    assert registry.get_production_reference_profile("churn").hash == first.hash


def test_the_reference_is_read_without_the_model(backend: Backend, model_file: Path) -> None:
    # the model artifact is gone; the profile is still served, verified, on its own
    registry = backend.registry()
    registry.register_model("churn", "1", model_file, reference=_training_data())
    backend.delete(backend.artifact("churn", "1", "model.pkl"))
    assert len(registry.get_reference_profile("churn", "1")) == 2
    with pytest.raises(IntegrityError):
        registry.get_model_path("churn", "1")


def test_a_version_registered_without_a_reference_says_so(
    backend: Backend, model_file: Path
) -> None:
    registry = backend.registry()
    registry.register_model("churn", "1", model_file)
    assert registry.get_version("churn", "1").reference_sha256 is None
    with pytest.raises(ModelNotFoundError) as caught:
        registry.get_reference_profile("churn", "1")
    assert str(caught.value) == (
        "model 'churn' version '1' was registered without a reference profile"
    )


def test_a_reference_that_cannot_be_read_registers_nothing(
    backend: Backend, model_file: Path, tmp_path: Path
) -> None:
    registry = backend.registry()
    with pytest.raises(MissingFileError, match=r"nope\.csv"):
        registry.register_model("churn", "1", model_file, reference=tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("age,plan\n1\n")
    with pytest.raises(MlopsError, match=r"bad\.csv"):
        registry.register_model("churn", "1", model_file, reference=bad)
    with pytest.raises(RegistryInputError, match="reference must be"):
        registry.register_model("churn", "1", model_file, reference=42)  # type: ignore[arg-type]
    assert registry.list_models() == []


def test_a_tampered_reference_is_refused_in_one_line_naming_the_file(
    backend: Backend, model_file: Path
) -> None:
    registry = backend.registry()
    registry.register_model("churn", "1", model_file, reference=_training_data())
    registry.promote_to_production("churn", "1")
    key = f"{backend.version_dir('churn', '1')}/reference.json"
    doc = json.loads(backend.read(key))
    doc["n_rows"] += 1  # a plausible edit: still a profile, another checksum
    backend.write(key, json.dumps(doc).encode())
    with pytest.raises(IntegrityError) as caught:
        registry.get_production_reference_profile("churn")
    message = str(caught.value)
    assert "\n" not in message and backend.where(key) in message
    assert "does not match" in message
    [result] = registry.verify("churn")
    assert not result.ok and backend.where(key) in (result.problem or "")
    # the model itself is intact and still served
    assert registry.get_model_path("churn", "1").read_bytes() == model_file.read_bytes()


def test_a_tampered_artifact_fails_verify_and_is_never_handed_out(
    backend: Backend, model_file: Path
) -> None:
    registry = backend.registry()
    registry.register_model("churn", "1", model_file)
    registry.promote_to_production("churn", "1")
    key = backend.artifact("churn", "1", "model.pkl")
    backend.write(key, b"a backdoored model")
    [result] = registry.verify("churn")
    assert not result.ok
    assert result.actual_sha256 == hashlib.sha256(b"a backdoored model").hexdigest()
    with pytest.raises(IntegrityError) as caught:
        registry.get_production_model_path("churn")
    assert backend.where(key) in str(caught.value) and "\n" not in str(caught.value)


# --- only on object storage -------------------------------------------------------------------


@pytest.fixture
def s3(s3_url: str, s3_server: S3Server, tmp_path: Path) -> Backend:
    return Backend("s3", s3_url, tmp_path / "cache", s3_server)


def test_layout_one_document_immutable_versions_one_object_per_event(
    s3: Backend, model_file: Path
) -> None:
    registry = s3.registry()
    registry.register_model("churn", "1", model_file, reference=_training_data())
    registry.promote_to_production("churn", "1")
    assert s3.server is not None
    bucket, prefix = s3._bucket_key("")
    keys = sorted(
        o["Key"][len(prefix) :]
        for o in s3.server.client().list_objects_v2(Bucket=bucket)["Contents"]
    )
    vdir = s3.version_dir("churn", "1")
    assert keys == [
        "churn/history/000000000001.json", "churn/history/000000000002.json",
        "churn/model.json", f"{vdir}/artifact/model.pkl", f"{vdir}/reference.json",
        f"{vdir}/version.json",
    ]  # fmt: skip
    event = json.loads(s3.read("churn/history/000000000002.json"))
    assert (event["action"], event["to_stage"]) == ("promote", "production")


def test_a_damaged_local_copy_is_fetched_again(s3: Backend, model_file: Path) -> None:
    registry = s3.registry()
    registry.register_model("churn", "1", model_file)
    path = registry.get_model_path("churn", "1")
    assert path.is_relative_to(s3.cache)
    path.write_bytes(b"corrupted on the local disk")
    assert registry.get_model_path("churn", "1").read_bytes() == model_file.read_bytes()


def test_a_hand_edited_model_document_is_one_line_naming_the_object(
    s3: Backend, model_file: Path
) -> None:
    registry = s3.registry()
    registry.register_model("churn", "1", model_file)
    s3.write("churn/model.json", b'{"format": 1, "name": "churn", "versions": [}')
    with pytest.raises(CorruptMetadataError) as caught:
        registry.get_model("churn")
    assert str(caught.value).startswith(f"{s3.location}/churn/model.json: not valid JSON")


def test_a_removed_history_event_is_reported_naming_its_object(
    s3: Backend, model_file: Path
) -> None:
    registry = s3.registry()
    registry.register_model("churn", "1", model_file)
    registry.register_model("churn", "2", model_file)
    registry.register_model("churn", "3", model_file)
    s3.delete("churn/history/000000000001.json")
    with pytest.raises(CorruptMetadataError) as caught:
        registry.get_history("churn")
    assert str(caught.value) == (
        f"{s3.location}/churn/history/000000000001.json: is missing (event 1 of the history)"
    )


def test_an_extra_object_in_a_stored_directory_fails_verification(
    s3: Backend, model_dir: Path
) -> None:
    registry = s3.registry()
    registry.register_model("bundle", "1", model_dir)
    key = f"{s3.artifact('bundle', '1', 'bundle')}/weights/planted.py"
    s3.write(key, b"import os")
    [result] = registry.verify("bundle")
    assert not result.ok
    assert result.problem == f"{s3.where(key)}: is not part of the registered directory"


def test_a_commit_whose_answer_was_lost_is_not_mistaken_for_a_conflict(
    s3: Backend, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retried PUT whose first attempt did commit gets 412 from S3: it is ours, not a
    rival's.  Simulated by sending each write of model.json twice, as botocore's retry does
    after a lost response."""
    from mlops_core.registry import _s3

    original = _s3.S3Store._put

    def twice(self: Any, key: str, body: Any, **kwargs: Any) -> str:
        etag = original(self, key, body, **kwargs)
        if key.endswith("/model.json"):
            original(self, key, body, **kwargs)  # raises _Conflict: the condition now fails
        return etag

    monkeypatch.setattr(_s3.S3Store, "_put", twice)
    registry = s3.registry()
    registry.register_model("churn", "1", model_file)
    registry.promote_to_production("churn", "1")
    assert [h.action for h in registry.get_history("churn")] == ["register", "promote"]
    assert registry.get_production_version("churn") == "1"


def test_a_missing_bucket_is_one_line_naming_bucket_and_endpoint(
    s3_env: S3Server, model_file: Path, tmp_path: Path
) -> None:
    registry = ModelRegistry("s3://no-such-bucket-4a8f/reg", cache_dir=tmp_path)
    with pytest.raises(StorageError) as caught:
        registry.register_model("churn", "1", model_file)
    assert str(caught.value) == f"s3://no-such-bucket-4a8f: no such bucket at {s3_env.endpoint}"
    assert isinstance(caught.value, OSError)


def test_an_unsupported_url_is_refused() -> None:
    with pytest.raises(RegistryInputError, match="unsupported URL"):
        ModelRegistry("gs://bucket/prefix")
    with pytest.raises(RegistryInputError, match="names no bucket"):
        ModelRegistry("s3:///prefix")


def test_boto3_is_imported_only_for_an_s3_url(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from mlops_core.registry import ModelRegistry
        reg = ModelRegistry(sys.argv[1])
        reg.register_model("m", "1", sys.argv[2])
        print(sorted(m for m in ("boto3", "botocore") if m in sys.modules))
        sys.modules["boto3"] = None  # as if it were not installed
        try:
            ModelRegistry("s3://bucket/prefix")
        except Exception as exc:
            print(type(exc).__name__, exc)
        """
    )
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "reg"), str(model)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out == [
        "[]",
        "RegistryInputError registry s3://bucket/prefix: the S3 backend needs boto3"
        " (pip install 'mlops-exporter[s3]')",
    ]


# --- a server that ignores conditional writes -------------------------------------------------


@pytest.fixture(scope="module")
def ignoring_server() -> Iterator[S3Server]:
    """moto behind a filter that drops If-Match and If-None-Match (see tests/s3_server.py)."""
    require_moto()
    server = S3Server(ignore_conditional_headers=True)
    try:
        yield server
    finally:
        server.stop()


def test_a_server_ignoring_conditional_writes_is_refused_before_anything_is_written(
    ignoring_server: S3Server, model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ignoring_server.env().items():
        monkeypatch.setenv(key, value)
    bucket = ignoring_server.create_bucket()
    registry = ModelRegistry(f"s3://{bucket}/reg", cache_dir=tmp_path)
    with pytest.raises(ConditionalWritesUnsupportedError) as caught:
        registry.register_model("churn", "1", model_file)
    assert str(caught.value) == (
        f"S3 endpoint {ignoring_server.endpoint} ignores conditional writes (If-None-Match: *"
        f" on an existing object was accepted); refusing to write to s3://{bucket}/reg, where"
        " racing writers could lose updates"
    )
    with pytest.raises(ConditionalWritesUnsupportedError):
        registry.promote_to_production("churn", "1")
    # nothing was left behind, and reading is not refused
    assert ignoring_server.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert registry.list_models() == []

    # through the command line: exit 1, one line naming the endpoint
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "registry", "--registry", f"s3://{bucket}/reg",
         "register", "churn", "1", str(model_file)],
        env=ignoring_server.child_env(MLOPS_REGISTRY_CACHE=str(tmp_path)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and ignoring_server.endpoint in proc.stderr
    assert proc.stderr.startswith("mlops registry: error: S3 endpoint ")


def test_the_probe_also_catches_a_server_ignoring_only_if_match(
    s3: Backend, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If-None-Match honoured, If-Match dropped: the stale-ETag check must still refuse."""
    from mlops_core.registry import _s3

    original = _s3.S3Store._put

    def drop_if_match(self: Any, key: str, body: Any, **kwargs: Any) -> str:
        kwargs.pop("if_match", None)
        return original(self, key, body, **kwargs)

    monkeypatch.setattr(_s3.S3Store, "_put", drop_if_match)
    monkeypatch.setattr(_s3, "_PROBED", set())
    with pytest.raises(ConditionalWritesUnsupportedError, match="a stale If-Match was accepted"):
        s3.registry().register_model("churn", "1", model_file)


def test_probe_objects_left_by_killed_writers_are_removed_once_stale(
    s3: Backend, model_file: Path
) -> None:
    registry = s3.registry()
    registry.register_model("churn", "1", model_file)
    s3.write(".mlops-probe/left-by-a-killed-writer", b"1")
    store: Any = registry._store
    store._delete_stale_probes()  # an hour old at least: this one may be in progress
    assert s3.read(".mlops-probe/left-by-a-killed-writer") == b"1"
    store._delete_stale_probes(age=-60)
    with pytest.raises(Exception, match="NoSuchKey"):
        s3.read(".mlops-probe/left-by-a-killed-writer")


# --- the command line, through the entry point ------------------------------------------------


def _mlops(server: S3Server, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        env=server.child_env(MLOPS_REGISTRY_CACHE=str(cache)),
        cwd=cache.parent, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
def test_the_command_line_on_an_s3_registry(s3: Backend, model_file: Path, tmp_path: Path) -> None:
    assert s3.server is not None
    data = _training_data()
    ref = tmp_path / "training.csv"
    ref.write_text(
        "age,plan\n" + "".join(f"{a},{p}\n" for a, p in zip(data["age"], data["plan"], strict=True))
    )

    def ok(*args: str) -> str:
        proc = _mlops(s3.server, s3.cache, "registry", "--registry", s3.location, *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    registered = json.loads(ok("register", "churn", "1.0", str(model_file), "--reference",
                               str(ref), "--metric", "accuracy=0.9", "--json"))  # fmt: skip
    assert registered["reference_sha256"] and registered["location"].startswith(s3.location)
    ok("register", "churn", "2.0", str(model_file))
    ok("promote", "churn", "1.0", "production")
    ok("promote", "churn", "2.0", "production")
    assert ok("rollback", "churn").strip() == "churn: rolled back, production is now 1.0"
    path = Path(ok("path", "churn").strip())
    assert path.read_bytes() == model_file.read_bytes() and path.is_relative_to(s3.cache)
    summary = json.loads(ok("reference", "churn", "--json", "-o", str(tmp_path / "p.json")))
    assert summary["version"] == "1.0" and summary["features"] == ["age", "plan"]
    assert ReferenceProfile.load(tmp_path / "p.json").hash == ReferenceProfile.from_file(ref).hash
    history = json.loads(ok("history", "churn", "--json"))
    assert [h["seq"] for h in history] == list(range(1, 8))
    rows = ok("verify").splitlines()[1:]
    assert [row.split()[3] for row in rows] == ["ok", "ok"]

    # MLOPS_REGISTRY names the same registry; a tampered profile fails verify in one line
    s3.write(f"{s3.version_dir('churn', '1.0')}/reference.json", b"{}")
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "registry", "verify", "churn"],
        env=s3.server.child_env(MLOPS_REGISTRY=s3.location, MLOPS_REGISTRY_CACHE=str(s3.cache)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "reference.json: sha256" in proc.stderr
    proc = _mlops(s3.server, s3.cache, "registry", "--registry", s3.location, "reference", "churn")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert f"{s3.version_dir('churn', '1.0')}/reference.json: sha256" in proc.stderr


# --- racing and killed writers ----------------------------------------------------------------


@pytest.mark.slow
def test_eight_racing_writer_processes_lose_no_update_on_s3(
    s3: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same writer and reader programs, and the same checks, as the filesystem's test
    monkeypatch.setenv("MLOPS_REGISTRY_CACHE", str(tmp_path / "cache"))
    race_eight_writers_and_a_reader(s3.location, tmp_path)


def _garbage(s3: Backend, name: str) -> set[str]:
    """Objects of the model that its document does not name: uploads of killed writers."""
    assert s3.server is not None
    bucket, prefix = s3._bucket_key(f"{name}/")
    doc = json.loads(s3.read(f"{name}/model.json"))
    named = {f"versions/{v['version']}/{v['upload']}/" for v in doc["versions"]}
    keys = [
        o["Key"][len(prefix) :]
        for page in s3.server.client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]
    return {
        k for k in keys
        if k.startswith("versions/") and not any(k.startswith(n) for n in named)
    }  # fmt: skip


def _events_behind(s3: Backend, name: str) -> bool:
    doc = json.loads(s3.read(f"{name}/model.json"))
    try:
        s3.read(f"{name}/history/{doc['seq']:012d}.json")
    except Exception:
        return True
    return False


@pytest.mark.slow
def test_writers_killed_at_random_moments_leave_a_consistent_s3_registry(
    s3: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_REGISTRY_CACHE", str(tmp_path / "cache"))
    rounds = 6
    seen: set[str] = set()

    def half_done() -> bool:  # this kill left new unnamed uploads, or events not yet written
        garbage = _garbage(s3, "crashy")
        new = bool(garbage - seen)
        seen.update(garbage)
        return new or _events_behind(s3, "crashy")

    acknowledged, kills_inside_a_write, seed = kill_writers_at_random_moments(
        s3.location, tmp_path / "src", rounds, half_done
    )
    registry = s3.registry()
    registry.register_model("crashy", "final", tmp_path / "src" / "m0.bin")
    assert set(assert_consistent(registry, "crashy")) >= acknowledged | {"final"}
    assert len(acknowledged) >= rounds // 2, f"too few operations ran (seed {seed})"
    assert kills_inside_a_write >= 1, f"no kill interrupted a write (seed {seed})"


def _scenario(registry: ModelRegistry, src: Path) -> None:
    registry.register_model("churn", "1.0", src, reference=_training_data())
    registry.register_model("churn", "1.1", src)
    registry.promote_to_production("churn", "1.0")
    registry.promote_to_production("churn", "1.1")
    registry.rollback("churn")


def _run_and_kill_before_request(location: str, cache: Path, src: Path, kill_at: int) -> int:
    """Fork; the child SIGKILLs itself just before its HTTP request number ``kill_at``.

    Every request reaches the server whole or not at all, so killing before each one in
    turn reaches every state a crash can leave on the server.  Returns the number of
    requests of the whole scenario (``kill_at=0``).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            import botocore.endpoint

            from mlops_core.registry import _s3

            _s3._PROBED.clear()  # the probe's requests are kill points too
            original = botocore.endpoint.Endpoint._send
            calls = [0]

            def send(self: Any, request: Any) -> Any:
                calls[0] += 1
                if calls[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                return original(self, request)

            botocore.endpoint.Endpoint._send = send  # type: ignore[method-assign]
            _scenario(ModelRegistry(location, cache_dir=cache), src)
            os.write(write_end, str(calls[0]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        reported = fh.read()
    _, status = os.waitpid(pid, 0)
    if kill_at:
        assert not reported, f"child was not killed at request {kill_at}"
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return int(reported or 0)


@pytest.mark.slow
def test_sigkill_before_every_request_leaves_a_consistent_s3_registry(
    s3: Backend, model_file: Path
) -> None:
    count = Backend("s3", f"{s3.location}-count", s3.cache, s3.server)
    total = _run_and_kill_before_request(count.location, s3.cache, model_file, 0)
    assert total > 30  # the scenario really goes through the requests
    half_done = 0
    for kill_at in range(1, total + 1):
        b = Backend("s3", f"{s3.location}-k{kill_at}", s3.cache, s3.server)
        _run_and_kill_before_request(b.location, s3.cache, model_file, kill_at)
        registry = b.registry()
        if "churn" not in registry.list_models():
            continue
        garbage = _garbage(b, "churn")
        half_done += bool(garbage) or _events_behind(b, "churn")
        before = assert_consistent(registry, "churn")
        if "1.0" in before:
            assert registry.get_reference_profile("churn", "1.0").hash == (
                ReferenceProfile.from_data(_training_data()).hash
            )
        # a new writer carries on from whatever state was left; registering the version a
        # killed writer was uploading removes what it left
        for version in ("1.0", "1.1"):
            if version not in before:
                registry.register_model("churn", version, model_file)
        after = assert_consistent(registry, "churn")
        assert after[: len(before)] == before and set(after) == {"1.0", "1.1"}
        assert _garbage(b, "churn") == set()
    assert half_done >= 5  # kills really landed between a commit and its follow-up writes


def test_racing_promotions_in_threads_leave_one_production_version(
    s3: Backend, model_file: Path
) -> None:
    """Threads of one process racing on one model (not just processes): every promotion is
    in the history, and the production version is the last one promoted."""
    import concurrent.futures

    registry = s3.registry()
    for v in range(6):
        registry.register_model("churn", str(v), model_file)
    order = list(range(6)) * 2
    random.shuffle(order)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda v: _promote(registry, str(v)), order))
    history = registry.get_history("churn")
    promoted = [h.version for h in history if h.action == "promote"]
    assert len(promoted) == sum(results)
    assert registry.get_production_version("churn") == promoted[-1]
    assert_consistent(registry, "churn")


def _promote(registry: ModelRegistry, version: str) -> bool:
    try:
        registry.promote_to_production("churn", version)
    except StageError:  # already in production when its turn came
        return False
    return True


def _cli(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m mlops_core.cli registry --registry LOCATION ARGS`` for either backend."""
    if backend.server is not None:
        env = backend.server.child_env(MLOPS_REGISTRY_CACHE=str(backend.cache))
    else:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "mlops_core.cli", "registry", "--registry", backend.location, *args],
        env=env, cwd=backend.cache.parent, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_one_corrupt_model_document_costs_only_its_model(
    backend: Backend, model_file: Path
) -> None:
    registry = backend.registry()
    for name in ("churn", "fraud"):
        registry.register_model(name, "1.0", model_file)
    backend.write("churn/model.json", b"{garbage")
    where = f"{backend.where('churn/model.json')}: not valid JSON"

    proc = _cli(backend, "--json", "verify")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert rows["fraud"]["ok"] and not rows["churn"]["ok"]
    assert rows["churn"]["problem"].startswith(where), rows["churn"]

    proc = _cli(backend, "--json", "list")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert rows["fraud"]["versions"] == 1 and rows["churn"]["problem"].startswith(where)
