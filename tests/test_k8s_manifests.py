"""deploy/kubernetes/: valid manifests that wire the exporter up as a native sidecar.

No cluster runs here. Built-in kinds are validated against the Kubernetes OpenAPI schemas
(strict: unknown fields fail) shipped by the PyPI package kubernetes-validate; the Prometheus
Operator kinds, whose CRD schemas no registry package ships, get structural checks and
promtool. The rest checks what the sidecar pattern needs and what no schema can see: the
shared volume, probes on the exporter's real endpoints, labels that select each other, the
ConfigMap loading as an exporter config, and the PrometheusRule equal to what
generate_prometheusrule.py makes of rules/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT, require_binary
from tests.dockerfile_tools import parse_dockerfile

K8S_DIR = REPO_ROOT / "deploy" / "kubernetes"
GENERATOR = K8S_DIR / "generate_prometheusrule.py"
MIN_KUBERNETES = "1.29"  # native sidecars: initContainers[].restartPolicy (beta, on by default)
LATEST_CHECKED = "1.37"
EXPORTER = "mlops-exporter"


def _kubernetes_validate() -> Any:
    """The schema validator: a skip locally when missing, a failure under CI=true."""
    try:
        import kubernetes_validate
    except ImportError:
        message = (
            "kubernetes-validate not installed; install it with: pip install kubernetes-validate"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message} (CI=true: a missing validator is a failure, not a skip)")
        pytest.skip(message)
    return kubernetes_validate


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in _manifest_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((path, doc))
    return docs


@pytest.fixture(scope="module")
def docs() -> list[tuple[Path, dict[str, Any]]]:
    return _documents()


def _one(docs: list[tuple[Path, dict[str, Any]]], kind: str) -> dict[str, Any]:
    found = [d for _, d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def pod(docs: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    return _one(docs, "Deployment")["spec"]["template"]


@pytest.fixture(scope="module")
def exporter(pod: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in pod["spec"].get("initContainers", []) if c["name"] == EXPORTER]
    assert len(found) == 1, "the exporter must be an init container (native sidecar)"
    return found[0]


@pytest.fixture(scope="module")
def model_server(pod: dict[str, Any]) -> dict[str, Any]:
    containers = pod["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _mount_for(container: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The volume mount whose directory holds ``path`` (longest mountPath wins)."""
    best = None
    for mount in container.get("volumeMounts", []):
        root = PurePosixPath(mount["mountPath"])
        target = PurePosixPath(path)
        if (target == root or root in target.parents) and (
            best is None or len(mount["mountPath"]) > len(best["mountPath"])
        ):
            best = mount
    return best


def _exporter_config_text(docs: list[tuple[Path, dict[str, Any]]]) -> str:
    configmap = next(d for _, d in docs if d["kind"] == "ConfigMap")
    return configmap["data"]["config.yml"]


# --- every document ---------------------------------------------------------------------------


def test_every_document_parses_and_is_namespace_agnostic(docs: list) -> None:
    kinds = sorted(d["kind"] for _, d in docs)
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "Service", "ServiceMonitor", "PrometheusRule"]
    )
    for path, doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), path
        assert doc["metadata"].get("name"), path
        assert "namespace" not in doc["metadata"], f"{path}: set the namespace at apply time"


@pytest.mark.parametrize("version", [MIN_KUBERNETES, LATEST_CHECKED])
def test_builtin_kinds_validate_strictly_against_the_kubernetes_schema(
    docs: list, version: str
) -> None:
    kubernetes_validate = _kubernetes_validate()
    checked = 0
    for path, doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked == 3


def test_the_validator_rejects_native_sidecars_before_kubernetes_1_29(docs: list) -> None:
    # Shows the strict validation above can fail, and why 1.29 is the documented minimum.
    kubernetes_validate = _kubernetes_validate()
    deployment = _one(docs, "Deployment")
    with pytest.raises(kubernetes_validate.ValidationError, match="restartPolicy"):
        kubernetes_validate.validate(deployment, "1.27", strict=True)


def test_kustomization_lists_every_manifest(docs: list) -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    assert "namespace" not in kustomization
    assert sorted(kustomization["resources"]) == [p.name for p in _manifest_files()]


# --- the sidecar pattern ----------------------------------------------------------------------


def test_exporter_is_a_native_sidecar_and_the_model_server_a_regular_container(
    exporter: dict, model_server: dict
) -> None:
    assert exporter["restartPolicy"] == "Always"
    assert "restartPolicy" not in model_server


def test_log_volume_is_a_shared_emptydir_read_only_for_the_exporter(
    pod: dict, exporter: dict, model_server: dict, docs: list
) -> None:
    config = yaml.safe_load(_exporter_config_text(docs))
    log_dir = str(PurePosixPath(config["logs"]["paths"][0]).parent)
    exporter_mount = _mount_for(exporter, log_dir)
    server_mount = _mount_for(model_server, log_dir)
    assert exporter_mount and server_mount, f"{log_dir} must be mounted in both containers"
    assert exporter_mount["name"] == server_mount["name"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert "emptyDir" in volumes[exporter_mount["name"]]
    assert exporter_mount.get("readOnly") is True
    assert not server_mount.get("readOnly", False)
    # The demo model server writes where the exporter reads.
    assert model_server["command"][-2:] == ["--log-dir", server_mount["mountPath"]]


def test_probes_use_the_exporters_endpoints_on_its_port(exporter: dict) -> None:
    port = exporter["ports"][0]
    assert port["containerPort"] == 9874
    for probe, path in (
        ("livenessProbe", "/-/healthy"),
        ("readinessProbe", "/-/ready"),
        ("startupProbe", "/-/healthy"),
    ):
        get = exporter[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in (port["name"], port["containerPort"]), probe
    listen = next(a for a in exporter["args"] if a.startswith("--web.listen-address="))
    assert listen.rsplit(":", 1)[1] == str(port["containerPort"])


def test_exporter_args_are_accepted_by_the_real_command_line(exporter: dict) -> None:
    cli = pytest.importorskip("exporter.cli")
    args = cli.build_parser().parse_args(exporter["args"])
    assert args.config_file == "/etc/mlops-exporter/config.yml"
    assert _mount_for(exporter, args.config_file) is not None


def _quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}
    number, unit = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value)).groups()
    return float(number) * units[unit]


def test_every_container_has_requests_below_limits(pod: dict) -> None:
    for container in [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]:
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request = _quantity(resources["requests"][resource])
            limit = _quantity(resources["limits"][resource])
            assert 0 < request <= limit, f"{container['name']}: {resource}"


def test_read_only_root_and_non_root_user_matching_the_image(pod: dict) -> None:
    runtime = parse_dockerfile(REPO_ROOT / "Dockerfile")[-1]
    image_uid = int(runtime.last("USER").args.split(":")[0])
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["fsGroup"] == image_uid
    for container in [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, container["name"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == image_uid, container["name"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]


def test_everything_the_exporter_writes_is_on_a_writable_volume(
    pod: dict, exporter: dict, docs: list
) -> None:
    config = yaml.safe_load(_exporter_config_text(docs))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    for path in (config["logs"]["state_file"], "/tmp/x"):
        mount = _mount_for(exporter, path)
        assert mount is not None, f"{path}: on the read-only root filesystem"
        assert not mount.get("readOnly", False)
        assert "emptyDir" in volumes[mount["name"]]


def test_config_and_reference_are_projected_where_the_config_points(
    pod: dict, exporter: dict, docs: list
) -> None:
    config = yaml.safe_load(_exporter_config_text(docs))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    configmaps = {d["metadata"]["name"] for _, d in docs if d["kind"] == "ConfigMap"}
    for wanted in ("/etc/mlops-exporter/config.yml", config["reference"]["path"]):
        mount = _mount_for(exporter, wanted)
        relative = str(PurePosixPath(wanted).relative_to(mount["mountPath"]))
        sources = volumes[mount["name"]]["projected"]["sources"]
        providers = [
            s["configMap"]["name"]
            for s in sources
            if any(item["path"] == relative for item in s["configMap"]["items"])
        ]
        assert len(providers) == 1, wanted
    # The config ConfigMap ships here; the reference one is created by the user
    # (docs/deployment.md).
    assert "mlops-exporter-config" in configmaps


def test_configmap_is_a_valid_exporter_config(docs: list, tmp_path: Path) -> None:
    config_module = pytest.importorskip("exporter.config")
    path = tmp_path / "config.yml"
    path.write_text(_exporter_config_text(docs), encoding="utf-8")
    cfg = config_module.load_config(path, env={})
    assert cfg.model_name == "churn"
    assert cfg.logs.state_file == "/var/lib/mlops-exporter/positions.json"
    # With the demo reference in place of the user's, the reference resolves too.
    demo_reference = REPO_ROOT / "exporter" / "demo_data" / "reference.csv"
    if not demo_reference.exists():
        pytest.skip("exporter/demo_data/reference.csv not generated yet")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["reference"]["path"] = str(demo_reference)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    _, features = config_module.load_reference(config_module.load_config(path, env={}))
    assert features


# --- Service and ServiceMonitor ---------------------------------------------------------------


def test_service_selects_the_pods_on_the_exporters_port(docs: list, exporter: dict) -> None:
    deployment = _one(docs, "Deployment")
    service = _one(docs, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert _matches(service["spec"]["selector"], pod_labels)
    (port,) = service["spec"]["ports"]
    assert port["port"] == exporter["ports"][0]["containerPort"]
    # A numeric targetPort: a named one is not resolved from init (sidecar) containers.
    assert port["targetPort"] == exporter["ports"][0]["containerPort"]


def _rules_job() -> str | None:
    thresholds = REPO_ROOT / "rules" / "thresholds.yml"
    if not thresholds.exists():
        return None
    selector = yaml.safe_load(thresholds.read_text(encoding="utf-8")).get("exporter_selector", "")
    match = re.search(r'job="([^"]+)"', selector)
    return match.group(1) if match else None


def test_servicemonitor_selects_the_service_and_names_the_job_the_alerts_expect(
    docs: list,
) -> None:
    service = _one(docs, "Service")
    monitor = _one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert _matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint.get("path", "/metrics") == "/metrics"
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    expected = _rules_job()
    if expected is None:
        pytest.skip("rules/thresholds.yml has no exporter_selector job yet")
    assert job == expected


# --- PrometheusRule ---------------------------------------------------------------------------


def _rule_files() -> list[Path]:
    files = []
    for path in sorted((REPO_ROOT / "rules").glob("*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "groups" in data:
            files.append(path)
    if not files:
        pytest.skip("no rule files in rules/ yet")
    return files


def test_prometheusrule_is_exactly_what_the_generator_makes_of_rules(tmp_path: Path) -> None:
    _rule_files()
    out = tmp_path / "prometheusrule.yaml"
    subprocess.run([sys.executable, str(GENERATOR), "--output", str(out)], check=True, timeout=60)
    committed = (K8S_DIR / "prometheusrule.yaml").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed, (
        "deploy/kubernetes/prometheusrule.yaml is stale: "
        "run python deploy/kubernetes/generate_prometheusrule.py"
    )
    check = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stderr


def test_prometheusrule_groups_equal_the_rule_files(docs: list) -> None:
    # Independent of the generator's code: the same groups, in file order, nothing added.
    expected = []
    for path in _rule_files():
        expected += yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    rule = _one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == expected


def test_generator_check_fails_when_rules_change(tmp_path: Path) -> None:
    files = _rule_files()
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules_dir.joinpath(path.name).write_text(yaml.safe_dump(data), encoding="utf-8")
    data = yaml.safe_load(rules_dir.joinpath(files[0].name).read_text(encoding="utf-8"))
    data["groups"][0]["rules"][0].setdefault("labels", {})["edited"] = "yes"
    rules_dir.joinpath(files[0].name).write_text(yaml.safe_dump(data), encoding="utf-8")
    check = subprocess.run(
        [sys.executable, str(GENERATOR), "--rules-dir", str(rules_dir), "--check",
         "--output", str(K8S_DIR / "prometheusrule.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 1
    assert "out of date" in check.stderr


def test_generator_rejects_duplicate_group_names(tmp_path: Path) -> None:
    group = {"name": "same", "rules": [{"record": "a:b", "expr": "vector(1)"}]}
    for name in ("a.yml", "b.yml"):
        (tmp_path / name).write_text(yaml.safe_dump({"groups": [group]}), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--rules-dir", str(tmp_path), "--output", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "'same'" in result.stderr and "a.yml" in result.stderr
    assert "Traceback" not in result.stderr


def test_prometheusrule_spec_passes_promtool(docs: list, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rule = _one(docs, "PrometheusRule")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_containers_use_the_image_of_this_version(pod: dict) -> None:
    import tomllib

    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    for container in [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]:
        assert container["image"].endswith(f"/mlops-exporter:{version}"), container["name"]
