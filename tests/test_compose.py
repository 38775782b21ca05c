"""deploy/compose/: the whole stack on one machine, checked without a Docker engine.

The compose file is parsed and cross-checked against the files it mounts and the configs
they hold: every bind-mounted path exists in the repository, the demo model server writes
where the exporter reads, ports are published once each on loopback, Prometheus loads every
shipped rule file (``promtool check config`` on the real prometheus.yml) and scrapes the
exporter under the job the alerts select on. The alerting leg runs for real: the Debian
Alertmanager with rules/alertmanager.yml delivers a posted alert to the demo's
webhook_receiver.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT, require_binary
from tests.dockerfile_tools import parse_dockerfile

COMPOSE_DIR = REPO_ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
SERVICES = {"model-server", "exporter", "prometheus", "alertmanager", "alert-receiver", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text(encoding="utf-8"))


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each short-syntax volume entry."""
    out = []
    for entry in service.get("volumes", []):
        parts = entry.split(":")
        source, target = parts[0], parts[1]
        out.append((source, target, len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


def _bind_source(source: str) -> Path | None:
    if source.startswith((".", "/")):
        return (COMPOSE_DIR / source).resolve()
    return None


def _target_of(service: dict[str, Any], source: str) -> str:
    found = [t for s, t, _ in _mounts(service) if s == source]
    assert len(found) == 1, f"{source} mounted {len(found)} times"
    return found[0]


def _rule_files() -> list[Path]:
    found = []
    for path in sorted((REPO_ROOT / "rules").glob("*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "groups" in data:
            found.append(path)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the compose file ---------------------------------------------------------------------------


def test_every_service_is_there(compose: dict) -> None:
    assert set(compose["services"]) == SERVICES


def test_every_bind_mount_exists_in_the_repository(compose: dict) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for source, target, _ in _mounts(service):
            path = _bind_source(source)
            if path is None:
                assert source in named, f"{name}: volume {source} is not declared"
            else:
                assert path.exists(), f"{name}: {source} (-> {target}) does not exist"
                assert REPO_ROOT in path.parents, f"{name}: {source} is outside the repository"
        build = service.get("build")
        if build:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).exists()


def test_third_party_images_are_pinned(compose: dict) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        if "build" in service:
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned"


def test_ports_are_published_once_on_loopback(compose: dict) -> None:
    published: dict[int, str] = {}
    for name, service in compose["services"].items():
        for entry in service.get("ports", []):
            host_ip, host_port, _ = entry.split(":")
            assert host_ip == "127.0.0.1", f"{name}: {entry} is reachable from the network"
            assert int(host_port) not in published, f"{name} and {published[int(host_port)]}"
            published[int(host_port)] = name
    runtime = parse_dockerfile(REPO_ROOT / "Dockerfile")[-1]
    exposed = int(runtime.last("EXPOSE").args)
    assert published == {exposed: "exporter", 9090: "prometheus", 9093: "alertmanager",
                         3000: "grafana"}  # fmt: skip


def test_demo_model_server_writes_where_the_exporter_reads(compose: dict) -> None:
    server, exporter = compose["services"]["model-server"], compose["services"]["exporter"]
    assert server["entrypoint"] == ["python", "-m", "exporter.demo"]
    log_dir = server["command"][server["command"].index("--log-dir") + 1]
    (volume,) = [s for s, t, _ in _mounts(server) if t == log_dir]
    exporter_view = [(t, ro) for s, t, ro in _mounts(exporter) if s == volume]
    assert exporter_view == [(log_dir, True)], "the exporter reads the same volume, read-only"

    # The exporter runs the image's default command: --config.file=/etc/mlops-exporter/config.yml
    assert "entrypoint" not in exporter and "command" not in exporter
    cmd = json.loads(parse_dockerfile(REPO_ROOT / "Dockerfile")[-1].last("CMD").args)
    config_path = cmd[0].split("=", 1)[1]
    config_source = next(s for s, t, _ in _mounts(exporter) if t == config_path)
    config = yaml.safe_load(_bind_source(config_source).read_text(encoding="utf-8"))
    for pattern in config["logs"]["paths"]:
        assert str(PurePosixPath(pattern).parent) == log_dir
    reference = PurePosixPath(config_path).parent / config["reference"]["path"]
    assert str(reference) in {t for _, t, _ in _mounts(exporter)}
    state_dir = str(PurePosixPath(config["logs"]["state_file"]).parent)
    assert state_dir in {t for _, t, ro in _mounts(exporter) if not ro}


def test_mounted_demo_config_is_a_valid_exporter_config(compose: dict) -> None:
    config_module = pytest.importorskip("exporter.config")
    exporter = compose["services"]["exporter"]
    source = next(s for s, t, _ in _mounts(exporter) if t == "/etc/mlops-exporter/config.yml")
    cfg = config_module.load_config(_bind_source(source), env={})
    _, features = config_module.load_reference(cfg)  # the reference mounted beside it
    assert features


# --- Prometheus -------------------------------------------------------------------------------


def test_prometheus_loads_every_shipped_rule_file(compose: dict, prometheus_config: dict) -> None:
    rules_target = _target_of(compose["services"]["prometheus"], "../../rules")
    loaded = []
    for entry in prometheus_config["rule_files"]:
        relative = PurePosixPath(entry).relative_to(rules_target)
        loaded.append(REPO_ROOT / "rules" / str(relative))
    assert loaded == _rule_files()


def test_prometheus_scrapes_the_exporter_under_the_alerts_job(
    compose: dict, prometheus_config: dict
) -> None:
    jobs = {j["job_name"]: j for j in prometheus_config["scrape_configs"]}
    thresholds = yaml.safe_load((REPO_ROOT / "rules" / "thresholds.yml").read_text("utf-8"))
    job = re.search(r'job="([^"]+)"', thresholds["exporter_selector"]).group(1)
    targets = jobs[job]["static_configs"][0]["targets"]
    assert targets == [f"exporter:{compose['services']['exporter']['ports'][0].split(':')[-1]}"]
    (alertmanagers,) = prometheus_config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_promtool_accepts_the_prometheus_config_with_the_shipped_rules(
    compose: dict, prometheus_config: dict, tmp_path: Path
) -> None:
    promtool = require_binary("promtool")
    rules_target = _target_of(compose["services"]["prometheus"], "../../rules")
    config = dict(prometheus_config)
    config["rule_files"] = [
        str(REPO_ROOT / "rules" / str(PurePosixPath(p).relative_to(rules_target)))
        for p in prometheus_config["rule_files"]
    ]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# --- Grafana ----------------------------------------------------------------------------------


def test_grafana_mounts_match_its_provisioning(compose: dict) -> None:
    grafana = compose["services"]["grafana"]
    assert _target_of(grafana, "../../grafana/provisioning") == "/etc/grafana/provisioning"
    dashboards_target = _target_of(grafana, "../../grafana/dashboards")
    providers = sorted((REPO_ROOT / "grafana" / "provisioning" / "dashboards").glob("*.y*ml"))
    if not providers:
        pytest.skip("grafana/provisioning/dashboards/ has no provider file yet")
    for path in providers:
        for provider in yaml.safe_load(path.read_text(encoding="utf-8"))["providers"]:
            provider_path = provider["options"]["path"]
            assert provider_path == dashboards_target or provider_path.startswith(
                dashboards_target + "/"
            ), f"{path.name}: {provider_path} is not where compose mounts grafana/dashboards"
    assert list((REPO_ROOT / "grafana" / "dashboards").glob("*.json")), "no dashboard to show"
    for path in sorted((REPO_ROOT / "grafana" / "provisioning" / "datasources").glob("*.y*ml")):
        for source in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]:
            if source.get("type") == "prometheus" and "url" in source:
                assert source["url"].rstrip("/") == "http://prometheus:9090", path.name


# --- Alertmanager to the receiver, for real ------------------------------------------------------


def test_alert_receiver_listens_where_alertmanager_sends(compose: dict) -> None:
    receiver = compose["services"]["alert-receiver"]
    assert receiver["network_mode"] == "service:alertmanager"
    listen = receiver["command"][receiver["command"].index("--listen") + 1]
    config = yaml.safe_load((REPO_ROOT / "rules" / "alertmanager.yml").read_text("utf-8"))
    urls = [w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert urls, "rules/alertmanager.yml has no webhook receiver for the demo"
    for url in urls:
        assert url.startswith(f"http://{listen}/"), url


@pytest.mark.e2e
@pytest.mark.slow  # the critical route's group_wait: 10 s
def test_alertmanager_delivers_an_alert_to_the_demo_receiver(tmp_path: Path) -> None:
    alertmanager = require_binary("alertmanager")
    receiver_port, am_port, cluster_port = _free_port(), _free_port(), _free_port()
    text = (REPO_ROOT / "rules" / "alertmanager.yml").read_text(encoding="utf-8")
    # Only the receiver's address changes: a free port instead of 5001.
    rewritten = re.sub(r"http://127\.0\.0\.1:5001/", f"http://127.0.0.1:{receiver_port}/", text)
    assert rewritten != text
    (tmp_path / "alertmanager.yml").write_text(rewritten, encoding="utf-8")

    receiver = subprocess.Popen(
        [sys.executable, str(COMPOSE_DIR / "webhook_receiver.py"),
         "--listen", f"127.0.0.1:{receiver_port}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    am = subprocess.Popen(
        [alertmanager, f"--config.file={tmp_path / 'alertmanager.yml'}",
         f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{am_port}",
         f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert json.loads(receiver.stdout.readline())["listening"]
        base = f"http://127.0.0.1:{am_port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/ready", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "alertmanager did not become ready"
                time.sleep(0.2)
        alert = [{
            "labels": {"alertname": "MlopsFeatureDriftHigh", "severity": "critical",
                       "model": "churn", "feature": "monthly_charges", "job": "mlops-exporter"},
            "annotations": {"summary": "Feature monthly_charges of model churn drifted"},
        }]  # fmt: skip
        request = urllib.request.Request(
            f"{base}/api/v2/alerts", data=json.dumps(alert).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert urllib.request.urlopen(request, timeout=5).status == 200
        # The critical route's group_wait (10s in rules/alertmanager.yml) passes first.
        line = _read_line(receiver, timeout=30)
        record = json.loads(line)
        assert record["receiver"] == "mlops-critical"
        assert record["status"] == "firing"
        assert (record["alertname"], record["feature"]) == ("MlopsFeatureDriftHigh",
                                                             "monthly_charges")  # fmt: skip
    finally:
        for proc in (am, receiver):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert receiver.returncode == 0


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next stdout line of ``proc``, failing after ``timeout`` seconds."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            pytest.fail(f"no notification within {timeout}s")
    return proc.stdout.readline()


def test_receiver_rejects_what_is_not_an_alertmanager_payload() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(COMPOSE_DIR / "webhook_receiver.py"), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        proc.stdout.readline()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/x", data=b"not json")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 400
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the stack without Docker ------------------------------------------------------------------


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError, KeyError, IndexError) as exc:
            last = exc
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout}s (last: {last!r})")


@pytest.mark.e2e
def test_the_stack_runs_with_the_real_binaries(compose: dict, tmp_path: Path) -> None:
    """compose.yaml's processes on loopback: the demo writer, the exporter with the mounted
    demo config, Prometheus with deploy/compose/prometheus.yml and the shipped rules, and
    Alertmanager. Only addresses change (service names -> 127.0.0.1:free port), plus the
    scrape and evaluation intervals (15s -> 1s) to keep the test short."""
    prometheus = require_binary("prometheus")
    alertmanager = require_binary("alertmanager")
    ports = {name: _free_port() for name in ("exporter", "prometheus", "alertmanager", "cluster")}
    logs = tmp_path / "logs"
    logs.mkdir()

    # The exporter's config: the file compose mounts, with the log and state paths moved.
    exporter = compose["services"]["exporter"]
    source = next(s for s, t, _ in _mounts(exporter) if t == "/etc/mlops-exporter/config.yml")
    config = yaml.safe_load(_bind_source(source).read_text(encoding="utf-8"))
    config["logs"]["paths"] = [str(logs / "*.jsonl")]
    config["logs"]["state_file"] = str(tmp_path / "positions.json")
    config["reference"]["path"] = str(_bind_source(source).parent / config["reference"]["path"])
    (tmp_path / "exporter.yml").write_text(yaml.safe_dump(config), encoding="utf-8")

    prom = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    text = yaml.safe_dump(prom)
    for service in ("exporter", "alertmanager"):
        port = compose["services"][service]["ports"][0].split(":")[-1]
        text = text.replace(f"{service}:{port}", f"127.0.0.1:{ports[service]}")
    text = text.replace("localhost:9090", f"127.0.0.1:{ports['prometheus']}")
    prom = yaml.safe_load(text)
    prom["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    rules_target = _target_of(compose["services"]["prometheus"], "../../rules")
    prom["rule_files"] = [
        str(REPO_ROOT / "rules" / str(PurePosixPath(p).relative_to(rules_target)))
        for p in prom["rule_files"]
    ]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom), encoding="utf-8")

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_EXPORTER_")}
    server = compose["services"]["model-server"]
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "exporter.cli", f"--config.file={tmp_path / 'exporter.yml'}",
             f"--web.listen-address=127.0.0.1:{ports['exporter']}"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        log_dir_arg = server["command"].index("--log-dir") + 1
        writer_args = [*server["command"][:log_dir_arg], str(logs)]
        procs.append(subprocess.Popen(
            [sys.executable, *server["entrypoint"][1:], *writer_args, "--rate", "100"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        procs.append(subprocess.Popen(
            [alertmanager, f"--config.file={REPO_ROOT / 'rules' / 'alertmanager.yml'}",
             f"--storage.path={tmp_path / 'am'}",
             f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
             f"--cluster.listen-address=127.0.0.1:{ports['cluster']}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        procs.append(subprocess.Popen(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        api = f"http://127.0.0.1:{ports['prometheus']}/api/v1"

        def query(expr: str) -> list[dict[str, Any]]:
            q = urllib.parse.quote(expr)
            return _get_json(f"{api}/query?query={q}")["data"]["result"]

        job = re.search(
            r'job="([^"]+)"',
            yaml.safe_load((REPO_ROOT / "rules" / "thresholds.yml").read_text("utf-8"))[
                "exporter_selector"
            ],
        ).group(1)
        _until(
            lambda: query(f'up{{job="{job}"}} == 1'), 60, "Prometheus never scraped the exporter"
        )
        _until(
            lambda: query(f'mlops_predictions_total{{job="{job}",model="churn"}} > 0'),
            60,
            "the demo's predictions never reached Prometheus",
        )
        groups = _get_json(f"{api}/rules")["data"]["groups"]
        shipped = [
            g["name"] for p in _rule_files() for g in yaml.safe_load(p.read_text())["groups"]
        ]
        assert sorted(g["name"] for g in groups) == sorted(shipped)
        assert all(r["health"] != "err" for g in groups for r in g["rules"]), groups
        _until(
            lambda: _get_json(f"{api}/alertmanagers")["data"]["activeAlertmanagers"],
            30,
            "Prometheus never discovered Alertmanager",
        )
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
