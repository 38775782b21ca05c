"""The Dockerfile keeps the promises of the deployment docs, checked without a Docker engine.

hadolint lints it; the rest reads the parsed instructions: two stages on one pinned slim base,
wheels built in the first and installed offline in the second, a numeric non-root user, the
exporter as ENTRYPOINT with the documented default config, the default port, OCI labels, a
HEALTHCHECK that needs nothing but Python, and a .dockerignore that sends what the COPYs
need and nothing else. tests/test_image_entrypoint.py runs the resulting command for real.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, require_binary
from tests.dockerfile_tools import (
    Stage,
    build_context,
    copy_sources,
    exec_form,
    healthcheck,
    is_ignored,
    key_values,
    parse_dockerfile,
    read_dockerignore,
    split_flags,
)

DOCKERFILE = REPO_ROOT / "Dockerfile"
DEFAULT_CONFIG_PATH = "/etc/mlops-exporter/config.yml"
DEFAULT_PORT = 9874
UID = "65532"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE)


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    # Every rule at every severity (style included) fails the run. OCI labels are checked by
    # test_oci_labels, not by --require-label: hadolint would demand them on the builder stage
    # too, whose labels never reach the image.
    binary = require_binary("hadolint")
    cmd = [binary, "--no-color", "--failure-threshold", "style", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


# --- hadolint ----------------------------------------------------------------------------------


def test_hadolint_passes_at_the_strictest_threshold() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_as_invoked_here_catches_a_regression(tmp_path: Path) -> None:
    # The same invocation must fail on a Dockerfile that installs an unpinned package and
    # runs as root: proof that the passing run above is not a run that can never fail.
    text = DOCKERFILE.read_text(encoding="utf-8")
    broken = text.replace("USER 65532:65532", "RUN apt-get install -y curl\nUSER root", 1)
    assert broken != text
    path = tmp_path / "Dockerfile"
    path.write_text(broken, encoding="utf-8")
    result = _hadolint(path)
    assert result.returncode != 0
    assert "DL3008" in result.stdout  # unpinned apt package
    assert "DL3002" in result.stdout  # last USER is root


def test_no_hadolint_rule_is_ignored_without_an_explanation() -> None:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "hadolint" in line and "ignore" in line:
            previous = lines[number - 1].strip() if number else ""
            explained = previous.startswith("#") and "hadolint" not in previous
            assert explained, f"Dockerfile:{number + 1}: ignore pragma without a comment above"
    for name in (".hadolint.yaml", ".hadolint.yml"):
        if (REPO_ROOT / name).exists():
            config = yaml.safe_load((REPO_ROOT / name).read_text(encoding="utf-8")) or {}
            assert not config.get("ignored"), f"{name} ignores rules: {config['ignored']}"


# --- stages and base image ---------------------------------------------------------------------


def test_two_stages_on_the_same_pinned_slim_python(stages: list[Stage]) -> None:
    assert len(stages) == 2
    builder, runtime = stages
    assert builder.name == "builder"
    assert builder.base == runtime.base
    # A full patch version and a Debian release: the base never moves under a rebuild.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-(bookworm|trixie)", runtime.base), runtime.base


def test_wheels_are_built_in_the_first_stage_and_installed_offline(stages: list[Stage]) -> None:
    builder, runtime = stages
    wheel_runs = [i.args for i in builder.all("RUN") if "pip wheel" in i.args]
    assert len(wheel_runs) == 1
    wheel_dir = re.search(r"--wheel-dir[ =](\S+)", wheel_runs[0]).group(1)

    installs = [i for i in runtime.all("RUN") if "pip install" in i.args]
    assert len(installs) == 1
    flags, command = split_flags(installs[0].args)
    assert f"from=builder,source={wheel_dir}" in flags.get("mount", ""), flags
    assert "--no-index" in command
    assert re.search(rf"--find-links[ =]{re.escape(wheel_dir)}\b", command)
    # No build tool reaches the final stage and nothing fetches from the network there.
    assert not runtime.all("ADD")
    assert not any("pip wheel" in i.args or "apt-get" in i.args for i in runtime.all("RUN"))


def test_builder_copies_exactly_the_packages_pyproject_declares(
    stages: list[Stage], pyproject: dict
) -> None:
    copied = set()
    for inst in stages[0].all("COPY"):
        _, sources, _ = copy_sources(inst)
        copied.update(sources)
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied, f"packages not copied into the builder: {packages - copied}"
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= copied


# --- runtime contract -------------------------------------------------------------------------


def test_runs_as_a_numeric_non_root_user(stages: list[Stage]) -> None:
    runtime = stages[1]
    user = runtime.last("USER")
    assert user is not None
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) != 0, user.args  # runAsNonRoot can verify a number
    assert gid.isdigit() and int(gid) != 0, user.args
    # The last USER stays in force: no later instruction switches back.
    assert runtime.instructions[-1].keyword != "USER" or runtime.instructions[-1] is user
    created = " ".join(i.args for i in runtime.all("RUN"))
    assert f"--uid {uid}" in created and f"--gid {gid}" in created


def test_entrypoint_is_the_console_script_with_the_documented_default_config(
    stages: list[Stage], pyproject: dict
) -> None:
    runtime = stages[1]
    entrypoint = exec_form(runtime.last("ENTRYPOINT").args)
    cmd = exec_form(runtime.last("CMD").args)
    assert entrypoint == ["mlops-exporter"]
    assert "mlops-exporter" in pyproject["project"]["scripts"]
    assert cmd == [f"--config.file={DEFAULT_CONFIG_PATH}"]
    destinations = {copy_sources(i)[2]: copy_sources(i)[1] for i in runtime.all("COPY")}
    assert destinations.get(DEFAULT_CONFIG_PATH) == ["deploy/docker/config.yml"]


def test_exposes_the_default_port_and_the_healthcheck_uses_it(stages: list[Stage]) -> None:
    runtime = stages[1]
    assert [i.args for i in runtime.all("EXPOSE")] == [str(DEFAULT_PORT)]
    env = {}
    for inst in runtime.all("ENV"):
        env.update(key_values(inst.args))
    assert env["HEALTHCHECK_URL"] == f"http://127.0.0.1:{DEFAULT_PORT}/-/healthy"


def test_healthcheck_needs_only_python(stages: list[Stage]) -> None:
    options, command = healthcheck(stages[1].last("HEALTHCHECK").args)
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "HEALTHCHECK_URL" in command[2]
    compile(command[2], "<HEALTHCHECK>", "exec")  # valid Python
    assert {"interval", "timeout", "start-period", "retries"} <= set(options)
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"^\s*(RUN|HEALTHCHECK).*\b(curl|wget)\b", text, re.MULTILINE)


def test_oci_labels(stages: list[Stage], pyproject: dict) -> None:
    runtime = stages[1]
    labels: dict[str, str] = {}
    for inst in runtime.all("LABEL"):
        labels.update(key_values(inst.args))
    expected = {"title", "description", "version", "revision", "created", "licenses", "source"}
    assert {f"org.opencontainers.image.{k}" for k in expected} <= set(labels)
    assert labels["org.opencontainers.image.licenses"] == pyproject["project"]["license"]["text"]
    # The version label comes from a build ARG whose default is the package version.
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    args = dict(a.args.split("=", 1) for a in runtime.all("ARG") if "=" in a.args)
    assert args["VERSION"] == pyproject["project"]["version"]


def test_default_config_is_a_valid_exporter_config_matching_the_image_layout(
    stages: list[Stage],
) -> None:
    config_module = pytest.importorskip("exporter.config")
    cfg = config_module.load_config(REPO_ROOT / "deploy/docker/config.yml", env={})
    assert cfg.logs.paths == ("/var/log/model/*.jsonl",)
    assert cfg.reference_path == "/etc/mlops-exporter/reference.csv"
    # The directories the config writes to or reads from exist in the image, owned by the user.
    setup = " ".join(i.args for i in stages[1].all("RUN"))
    state_dir = str(Path(cfg.logs.state_file).parent)
    assert "/var/log/model" in setup and state_dir in setup
    assert re.search(rf"chown {UID}:{UID} [^&]*{re.escape(state_dir)}", setup)


# --- build context -----------------------------------------------------------------------------


def test_dockerignore_sends_what_the_copies_need_and_leaves_the_rest(
    stages: list[Stage], tmp_path: Path
) -> None:
    sent = build_context(REPO_ROOT, tmp_path)
    for stage in stages:
        for inst in stage.all("COPY"):
            flags, sources, _ = copy_sources(inst)
            if "from" in flags:
                continue
            for source in sources:
                present = (tmp_path / source).exists()
                assert present, f"Dockerfile:{inst.line}: COPY {source} missing from the context"
    patterns = read_dockerignore(REPO_ROOT / ".dockerignore")
    for kept_out in (".git/config", "tests/conftest.py", "docs/architecture.md", "bench/x.py",
                     "exporter/__pycache__/cli.cpython-311.pyc", ".venv/bin/python"):  # fmt: skip
        assert is_ignored(kept_out, patterns), kept_out
    assert not any(p.startswith(("tests/", "docs/", "rules/", "grafana/")) for p in sent)
    assert "exporter/__init__.py" in sent
