"""Several models in one exporter: the ``models:`` config, each model's state and its switch.

The end-to-end behaviour (real processes, a real registry) is in
``tests/e2e/test_exporter_registry.py``; here the parts, in-process.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np
import orjson
import pytest

from exporter.config import PathSpec, RegistrySpec, load_config
from exporter.errors import ConfigError
from exporter.ingest import IngestCounters, Ingestor, restore_counters
from exporter.models import ModelState, check_feature_kinds, parser_for, router_for
from exporter.references import FileReference, Reference, VersionChange
from exporter.tail import LogFollower
from mlops_core.profile import ReferenceProfile
from tests.conftest import config_error, write_yaml

TWO = """\
logs: {paths: [logs/*.jsonl]}
models:
  - name: churn
    reference: {registry: reg, stage: staging, poll_interval: 5s}
    match: {service: churn-api, shard: 3}
  - name: fraud
    reference: {path: fraud.json}
    version: "7"
    features: {amount: numeric}
"""


# --- the config -----------------------------------------------------------------------------


def test_models_are_read_in_order_with_their_references_resolved(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, TWO), {})
    churn, fraud = cfg.model_list()
    assert churn.reference == RegistrySpec(str(tmp_path / "reg"), "staging", 5.0)
    assert churn.match == {"service": "churn-api", "shard": "3"}  # values read as text
    assert churn.at == "models[0]." and churn.features is None and churn.version is None
    assert fraud.reference == PathSpec(str(tmp_path / "fraud.json"))
    assert fraud.version == "7" and [f.name for f in fraud.features or ()] == ["amount"]
    assert cfg.model_name == "churn"  # the first model's, as the one-model fields were
    view = cfg.for_model(fraud)
    assert view.model_name == "fraud" and view.reference_path == str(tmp_path / "fraud.json")
    assert view.model_version == "7" and view.model_list() == (fraud,)


def test_registry_poll_interval_is_every_models_default_and_a_reference_overrides_it(
    tmp_path: Path,
) -> None:
    text = TWO.replace("models:", "registry: {poll_interval: 2m}\nmodels:").replace(
        "    reference: {path: fraud.json}", "    reference: {registry: reg}"
    )
    churn, fraud = load_config(write_yaml(tmp_path, text), {}).model_list()
    assert churn.reference == RegistrySpec(str(tmp_path / "reg"), "staging", 5.0)  # its own
    assert fraud.reference == RegistrySpec(str(tmp_path / "reg"), "production", 120.0)
    without = load_config(
        write_yaml(
            tmp_path, TWO.replace("reference: {path: fraud.json}", "reference: {registry: reg}")
        ),
        {},
    )
    assert without.model_list()[1].reference == RegistrySpec(str(tmp_path / "reg"))  # 30 s
    bad = write_yaml(tmp_path, "registry: {poll_interval: 0s}\n" + TWO)
    assert config_error(bad).startswith("registry.poll_interval:")


def test_the_one_model_form_is_a_list_of_one(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, """\
        model: {name: churn, version: "1.2"}
        logs: {paths: [a.jsonl]}
        reference: {path: ref.csv}
        features: [age]
        """), {})  # fmt: skip
    (only,) = cfg.model_list()
    assert only.name == "churn" and only.reference == PathSpec(str(tmp_path / "ref.csv"))
    assert only.match == {} and only.version == "1.2" and only.at == ""
    assert [f.name for f in only.features or ()] == ["age"]


def test_a_registry_reference_in_the_one_model_form(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path, """\
        model: {name: churn}
        logs: {paths: [a.jsonl]}
        reference: {registry: "s3://models/registry"}
        """), {})  # fmt: skip
    assert cfg.model_list()[0].reference == RegistrySpec("s3://models/registry")
    assert cfg.reference_path == "s3://models/registry"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("logs: {paths: [a]}\n", "model.name: required key missing in"),
        ("logs: {paths: [a]}\nmodel: {name: m}\n", "reference.path: required key missing in"),
        ("logs: {paths: [a]}\nmodel: {name: m}\nreference: {path: r.csv, registry: reg}\n",
         "reference: set path or registry, not both"),
        ("logs: {paths: [a]}\nmodel: {name: m}\nreference: {path: r.csv, stage: staging}\n",
         "reference.stage: only with reference.registry"),
        ("logs: {paths: [a]}\nmodels: []\n", "models: expected a non-empty list of models"),
        (TWO + "model: {name: x}\n", "model: set inside each entry of models:"),
        (TWO + "features: [a]\n", "features: set inside each entry of models:"),
        (TWO.replace("stage: staging", "stage: canary"),
         "models[0].reference.stage: expected one of production, staging"),
        (TWO.replace("shard: 3", "event: x"),
         "models[0].match.event: the exporter reads this field itself"),
        (TWO.replace("shard: 3", 'latency_ms: "1"'),
         "models[0].match.latency_ms: the exporter reads this field itself"),
        (TWO.replace("{path: fraud.json}", "{}"), "models[1].reference: set path"),
        (TWO.replace("features: {amount: numeric}", "features: {amount: {kind: x}}"),
         "models[1].features.amount.kind: unknown key"),
        (TWO.replace("name: fraud", "name: fraud/eu") + "outcomes: {store: o.db}\n",
         "models[1].name: 'fraud/eu': with outcomes: and several models each model's outcome"
         " store is a file named after it"),
    ],
)  # fmt: skip
def test_errors_are_one_line_naming_the_entry(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in config_error(write_yaml(tmp_path, text))


def test_a_model_that_can_never_receive_a_record_is_refused() -> None:
    from exporter.routing import Route, Router

    with pytest.raises(ConfigError, match=r"models\[1\] \(b\): never receives a record"):
        Router([Route("a", {"service": "x"}), Route("b", {"service": "x", "shard": "1"})])
    with pytest.raises(ConfigError, match=r"model 'a' is listed twice"):
        Router([Route("a", {"service": "x"}), Route("a", {"service": "y"})])


# --- each model's state -----------------------------------------------------------------------


def _profile(shift: float = 0.0, *, with_plan: bool = True, seed: int = 0) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"age": rng.normal(40 + shift, 10, 800)}
    if with_plan:
        data["plan"] = rng.choice(["a", "b"], 800)
    return ReferenceProfile.from_data(data)


def _state(tmp_path: Path, name: str, profile: ReferenceProfile, **reference: object) -> ModelState:
    cfg = load_config(write_yaml(tmp_path, f"""\
        model: {{name: {name}}}
        logs: {{paths: [a.jsonl]}}
        reference: {{path: ref.csv}}
        drift: {{min_samples: 10}}
        """), {})  # fmt: skip
    ref = Reference(profile, MappingProxyType({n: profile[n].kind for n in profile.feature_names}),
                    **reference)  # type: ignore[arg-type]  # fmt: skip
    return ModelState(cfg, FileReference(name, ref))


def _lines(n: int, *, version: str | None, service: str = "s", shift: float = 0.0) -> bytes:
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        rec: dict[str, object] = {"event": "prediction", "service": service,
                                  "input_data": {"age": float(rng.normal(40 + shift, 10)),
                                                 "plan": "a"},
                                  "prediction": {"class": "x"}, "latency_ms": 5.0}  # fmt: skip
        if version is not None:
            rec["model_version"] = version
        out.append(orjson.dumps(rec))
    return b"\n".join(out) + b"\n"


def test_a_switch_starts_a_fresh_window_and_carries_the_counters_that_still_fit(
    tmp_path: Path,
) -> None:
    state = _state(tmp_path, "churn", _profile(), version="1", stage="production")
    assert state.monitored_version == "1"
    log = tmp_path / "a.jsonl"
    log.write_bytes(_lines(50, version="1") + _lines(7, version=None) + _lines(5, version="2"))
    follower = LogFollower([str(log)], start_position="beginning")
    lines = IngestCounters(state.monitor.reference.profile, [])
    ingestor = Ingestor(follower, parser_for([state], state.config), None, lines,
                        router=router_for([state]), models=[state])  # fmt: skip
    with follower:
        while ingestor.run_once():
            pass
        before = state.counters.snapshot()
        assert before.predictions_total == 57  # a record without model_version is version 1
        assert dict(before.other_versions) == {"2": 5}
        assert state.window.snapshot().samples() == 57
        old_labels = before.bucket_labels

        new_profile = _profile(shift=30.0, with_plan=True, seed=3)  # other age buckets
        new = Reference(new_profile, MappingProxyType({"age": "numeric", "plan": "categorical"}),
                        version="2", stage="production")  # fmt: skip
        with ingestor.lock:
            old = state.switch(VersionChange("churn", "1", "2", "production", new))
        assert old.reference.version == "1" and state.monitored_version == "2"
        assert state.version_changes == 1
        assert state.window.snapshot().samples() == 0  # fresh
        after = state.counters.snapshot()
        assert after.predictions_total == 57 and dict(after.other_versions) == {"2": 5}
        assert after.bucket_labels["plan"] == old_labels["plan"]
        assert int(after.bucket_observations["plan"].sum()) == 57  # same buckets: carried
        assert after.bucket_labels["age"] != old_labels["age"]
        assert int(after.bucket_observations["age"].sum()) == 0  # new buckets: from zero

        with log.open("ab") as handle:
            handle.write(_lines(4, version="2") + _lines(3, version="1"))
        while ingestor.run_once():
            pass
    counted = state.counters.snapshot()
    assert counted.predictions_total == 61
    assert dict(counted.other_versions) == {"2": 5, "1": 3}
    assert state.window.snapshot().samples() == 4


def test_feature_kinds_must_agree_across_models(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    numeric = ReferenceProfile.from_data({"score": rng.normal(0, 1, 300)})
    categorical = ReferenceProfile.from_data({"score": rng.choice(["lo", "hi"], 300)})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _state(tmp_path / "a", "a", numeric)
    b = _state(tmp_path / "b", "b", categorical)
    with pytest.raises(ConfigError, match="score: categorical in model 'b' but numeric in"):
        check_feature_kinds([a, b])


# --- the checkpoint's counters -----------------------------------------------------------------


def test_a_checkpoint_of_one_model_restores_into_the_first_model() -> None:
    profile = _profile()
    old = IngestCounters(profile, ["age", "plan"])
    from exporter.records import RecordParser

    old.add_batch(RecordParser({"age": "numeric", "plan": "categorical"}).parse(
        _lines(20, version=None).splitlines()))  # fmt: skip
    flat = old.state()  # as written before several models were served
    lines, first, second = (IngestCounters(profile, ["age", "plan"]) for _ in range(3))
    restore_counters(flat, lines, {"churn": first, "fraud": second})
    assert first.snapshot().predictions_total == 20 and first.snapshot().lines_total == 0
    assert second.snapshot().predictions_total == 0
    assert lines.snapshot().lines_total == 20 and lines.snapshot().predictions_total == 0


def test_each_model_restores_its_own_part_and_a_new_model_starts_at_zero() -> None:
    profile = _profile()
    churn = IngestCounters(profile, ["age"])
    churn.add_batch(_batch(12), other_versions={"9": 2})
    state = {**IngestCounters(profile, []).state(), "models": {"churn": churn.state()}}
    lines, restored, fresh = (IngestCounters(profile, ["age"]) for _ in range(3))
    restore_counters(state, lines, {"churn": restored, "fraud": fresh})
    assert restored.snapshot().predictions_total == 12
    assert dict(restored.snapshot().other_versions) == {"9": 2}
    assert fresh.snapshot().predictions_total == 0
    with pytest.raises(ValueError, match=r"models\.churn is not an object"):
        restore_counters({**state, "models": {"churn": 3}}, lines, {"churn": restored})


def _batch(n: int):  # type: ignore[no-untyped-def]
    from exporter.records import RecordParser

    return RecordParser({"age": "numeric"}).parse(_lines(n, version=None).splitlines())


def test_routing_fields_are_text_and_a_number_there_is_not_an_invalid_line() -> None:
    from exporter.records import RecordParser

    parser = RecordParser({"age": "numeric"}, route_fields=["service"],
                          version_field="model_version")  # fmt: skip
    lines = [
        b'{"event":"prediction","service":"a","model_version":"1","input_data":{"age":1}}',
        b'{"event":"prediction","service":7,"model_version":2,"input_data":{"age":2}}',
        b'{"event":"prediction","service":{"x":1},"input_data":{"age":3}}',
    ]
    batch = parser.parse(lines)
    assert batch.n_predictions == 3 and not batch.invalid
    assert batch.routes == {"service": ["a", None, None]}
    assert batch.versions == ["1", None, None]
    assert parser.parse_block(b"\n".join(lines) + b"\n").routes == batch.routes
    with pytest.raises(ConfigError, match="read by the parser itself"):
        RecordParser({"age": "numeric"}, route_fields=["event"])


def test_a_scrape_sees_the_line_counters_and_the_models_of_one_poll_without_a_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without logs.state_file the line counters are updated before each model's: a scrape
    reading them one after the other could see a line counted before its prediction.  The
    models' add_batch is slowed down so a reader would land in that gap on every poll."""
    import threading
    import time

    state = _state(tmp_path, "churn", _profile(), version="1", stage="production")
    log = tmp_path / "a.jsonl"
    log.write_bytes(b"")
    follower = LogFollower([str(log)], start_position="beginning")
    lines = IngestCounters(state.monitor.reference.profile, [])
    ingestor = Ingestor(follower, parser_for([state], state.config), None, lines,
                        router=router_for([state]), models=[state])  # fmt: skip
    add_batch = state.counters.add_batch

    def slow_add_batch(*args: object, **kwargs: object) -> None:
        time.sleep(0.005)  # the gap between the line counters and the model's
        add_batch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state.counters, "add_batch", slow_add_batch)
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            served = ingestor.served()
            model = served.models.get("churn")
            seen.append((served.lines.lines_total, 0 if model is None else model.predictions_total))

    reader = threading.Thread(target=scrape)
    with follower:
        reader.start()
        try:
            for _ in range(40):
                with log.open("ab") as out:
                    out.write(_lines(5, version="1"))
                while ingestor.run_once():
                    pass
        finally:
            done.set()
            reader.join()
    assert ingestor.served().lines.lines_total == 200
    assert ingestor.served().models["churn"].predictions_total == 200
    torn = [(n_lines, n_pred) for n_lines, n_pred in seen if n_lines != n_pred]
    assert len(seen) > 40 and not torn, torn[:5]
