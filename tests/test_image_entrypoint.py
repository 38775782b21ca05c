"""The image's command works, run without Docker from a virtualenv built as the Dockerfile does.

No Docker engine runs here, so this test replays the Dockerfile's steps on the host:

1. the build context is what .dockerignore lets through (copied to a temporary directory);
2. stage 1: its COPY instructions lay out the source tree, and its ``pip wheel`` RUN builds
   the project's wheel from that tree alone;
3. stage 2: a fresh ``python -m venv`` gets the wheel through the Dockerfile's own
   ``pip install --no-index --find-links`` command (run by this interpreter's pip with
   ``--python``, which saves bootstrapping pip into the venv);
4. the image's ENTRYPOINT + CMD run from that venv against the default config
   (deploy/docker/config.yml) with only its paths rewritten (a temporary log directory, state
   file and reference) and ``--web.listen-address`` on a free port;
5. ``python -m exporter.demo --log-dir`` from the same venv writes prediction logs, as the
   compose and Kubernetes demos' model server does, and /-/healthy, /-/ready, /metrics and
   the Dockerfile's HEALTHCHECK command are checked over real HTTP.

One deviation: the dependencies (numpy, scipy, ...) are not rebuilt as wheels. ``pip wheel``
of them would download ~100 MB from PyPI on every run. Instead the venv gets a ``.pth`` file
that lists the site directories of the interpreter running pytest (``site.getsitepackages()``,
plus the user site when it is enabled), so the dependencies come from wherever pytest found
them: a virtualenv, the base interpreter, or both. ``--system-site-packages`` would not do:
inside a virtualenv it inherits the *base* interpreter's packages, not the virtualenv's. The
``.pth`` lines only append directories to ``sys.path``; the ``.pth`` files inside them are not
run, so an editable install of the checkout stays invisible to the venv. The project's wheel
is installed with ``--no-deps``, and the test then checks that every dependency the wheel
declares is satisfied in the venv. The project itself is always the venv's own copy (checked
by its ``__file__``; the venv's site-packages comes first on ``sys.path``), never the checkout:
the image's processes run without ``PYTHONPATH`` and ``PYTHONHOME``, which a developer may have
set for pytest.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.dockerfile_tools import (
    Stage,
    build_context,
    copy_sources,
    exec_form,
    healthcheck,
    parse_dockerfile,
    split_flags,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # building the wheel takes ~15 s

IMAGE_CONFIG = "/etc/mlops-exporter/config.yml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _apply_copy(stage: Stage, context: Path, root: Path) -> Path:
    """Replay a stage's context COPYs into ``root`` (the image's filesystem); returns WORKDIR."""
    workdir = root / stage.last("WORKDIR").args.lstrip("/")
    workdir.mkdir(parents=True, exist_ok=True)
    for inst in stage.all("COPY"):
        flags, sources, dest = copy_sources(inst)
        if "from" in flags:
            continue
        target = (root / dest.lstrip("/")) if dest.startswith("/") else (workdir / dest)
        for source in sources:
            path = context / source
            if not path.exists():
                pytest.fail(f"Dockerfile:{inst.line}: COPY {source}: not in the build context")
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True)
            elif dest.endswith("/") or len(sources) > 1:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    return workdir


def _running_site_dirs() -> list[str]:
    """The site directories the interpreter running pytest imports installed packages from.

    In a virtualenv that is the virtualenv's site-packages (and the base interpreter's too if
    it was made with ``--system-site-packages``); outside one, the interpreter's own.
    """
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


def _pip_command(run_args: str, verb: str) -> list[str]:
    """The ``pip <verb> ...`` words of a RUN instruction (flags like --mount dropped)."""
    _, command = split_flags(run_args)
    words = shlex.split(command)
    start = words.index("pip")
    assert words[start + 1] == verb, command
    return words[start + 2 :]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not shutil.which("mlops-exporter") and not (REPO_ROOT / "exporter" / "cli.py").exists():
        pytest.skip("the exporter is not written yet")
    root = tmp_path_factory.mktemp("image")
    builder, runtime = parse_dockerfile(REPO_ROOT / "Dockerfile")

    context = root / "context"
    build_context(REPO_ROOT, context)

    # Stage 1: the source tree from the COPYs, then the Dockerfile's `pip wheel` with --no-deps.
    fs = root / "builder"
    src = _apply_copy(builder, context, fs)
    (wheel_run,) = [i.args for i in builder.all("RUN") if "pip wheel" in i.args]
    args = _pip_command(wheel_run, "wheel")
    wheel_dir = args[args.index("--wheel-dir") + 1]
    wheels = root / wheel_dir.lstrip("/")
    args[args.index("--wheel-dir") + 1] = str(wheels)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *args],
        cwd=src, check=True, timeout=300,
    )  # fmt: skip
    built = sorted(wheels.glob("*.whl"))
    assert len(built) == 1 and built[0].name.startswith("mlops_exporter-"), built

    # Stage 2: a fresh venv and the Dockerfile's `pip install`, offline from the wheel dir.
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "_pytest_site_dirs.pth").write_text(
        "".join(f"{d}\n" for d in _running_site_dirs()), encoding="utf-8"
    )
    (install_run,) = [i.args for i in runtime.all("RUN") if "pip install" in i.args]
    args = []
    for word in _pip_command(install_run, "install"):
        word = word.replace(wheel_dir, str(wheels))
        args += (
            [str(p) for p in sorted(Path("/").glob(word.lstrip("/")))] if "*" in word else [word]
        )
    assert "--no-index" in args
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--force-reinstall", *args],
        check=True, timeout=300, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip

    # The image's files outside the package: the default config.
    image_fs = root / "runtime"
    _apply_copy(runtime, context, image_fs)
    return {
        "root": root,
        "venv": venv,
        "python": python,
        "runtime": runtime,
        "default_config": image_fs / IMAGE_CONFIG.lstrip("/"),
    }


def _image_env() -> dict[str, str]:
    """The environment of the image's processes: this one without what would change them.

    ``PYTHONPATH`` and ``PYTHONHOME`` are left out (pytest may run with ``PYTHONPATH``
    pointing at the checkout, which would put it before the venv's own copy), and so are the
    ``MLOPS_EXPORTER_*`` overrides, which the image does not set.
    """
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("MLOPS_EXPORTER_")
    }


def _venv_run(image: dict[str, Any], code: str) -> str:
    result = subprocess.run(
        [str(image["python"]), "-c", code],
        capture_output=True, text=True, timeout=60, cwd=image["root"], env=_image_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_venv_runs_its_own_copy_and_every_dependency_is_satisfied(image: dict) -> None:
    where = _venv_run(image, "import exporter, mlops_core; print(exporter.__file__)")
    assert str(image["venv"]) in where, f"exporter imported from {where}, not from the venv"
    unmet = _venv_run(
        image,
        "from importlib.metadata import requires, version\n"
        "from packaging.requirements import Requirement\n"
        "bad = []\n"
        "for spec in requires('mlops-exporter') or []:\n"
        "    req = Requirement(spec)\n"
        "    if req.marker and not req.marker.evaluate({'extra': ''}):\n"
        "        continue\n"
        "    try:\n"
        "        have = version(req.name)\n"
        "    except Exception:\n"
        "        bad.append(f'{req} (missing)'); continue\n"
        "    if have not in req.specifier:\n"
        "        bad.append(f'{req} (have {have})')\n"
        "print('; '.join(bad))\n",
    )
    assert unmet == "", f"dependencies not satisfied: {unmet}"
    # The bundled demo reference ships inside the wheel (package data).
    assert _venv_run(
        image, "from exporter.demo import REFERENCE; print(REFERENCE.exists())"
    ) == "True"  # fmt: skip


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[Any]) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exporter exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, resp.read().decode()
        except (urllib.error.URLError, OSError) as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout}s: {last}")


def _sample(metrics: str, name: str) -> float | None:
    match = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_entrypoint_and_cmd_serve_health_readiness_and_metrics(image: dict, tmp_path: Path) -> None:
    runtime: Stage = image["runtime"]
    venv_bin = image["venv"] / "bin"
    python = str(image["python"])

    # The default config with only its paths rewritten.
    original = yaml.safe_load(image["default_config"].read_text(encoding="utf-8"))
    config = yaml.safe_load(image["default_config"].read_text(encoding="utf-8"))
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    state.mkdir()
    reference = Path(_venv_run(image, "from exporter.demo import REFERENCE; print(REFERENCE)"))
    config["logs"]["paths"] = [str(logs / "*.jsonl")]
    config["logs"]["state_file"] = str(state / "positions.json")
    config["reference"]["path"] = str(reference)
    changed = {k for k, v in _flatten(config).items() if _flatten(original).get(k) != v}
    assert changed == {"logs.paths", "logs.state_file", "reference.path"}
    config_path = tmp_path / "config.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")

    entrypoint = exec_form(runtime.last("ENTRYPOINT").args)
    cmd = [a.replace(IMAGE_CONFIG, str(config_path)) for a in exec_form(runtime.last("CMD").args)]
    assert cmd != exec_form(runtime.last("CMD").args), "CMD does not name the default config"
    port = _free_port()
    command = [str(venv_bin / entrypoint[0]), *entrypoint[1:], *cmd,
               f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    env = _image_env()
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    exporter = subprocess.Popen(
        command, cwd=state, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    writer = None
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_http(f"{base}/-/healthy", 30, exporter)[0] == 200
        assert _wait_http(f"{base}/-/ready", 30, exporter)[0] == 200

        # The compose/Kubernetes demo model server, from the same venv.
        writer = subprocess.Popen(
            [python, "-m", "exporter.demo", "--log-dir", str(logs), "--rate", "200"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        predictions = 0.0
        while time.monotonic() < deadline and predictions < 50:
            _, metrics = _wait_http(f"{base}/metrics", 10, exporter)
            predictions = _sample(metrics, "mlops_predictions_total") or 0.0
            time.sleep(0.3)
        assert predictions >= 50, "the demo writer's predictions never reached /metrics"

        with reference.open(encoding="utf-8") as fh:
            rows = sum(1 for _ in csv.DictReader(fh))
        assert _sample(metrics, "mlops_reference_samples") == rows
        version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["project"][
            "version"
        ]
        assert f'mlops_exporter_build_info{{version="{version}"}} 1.0' in metrics

        # The Dockerfile's HEALTHCHECK command, with the venv's python, passes ...
        _, check = healthcheck(runtime.last("HEALTHCHECK").args)
        check = [python if word == "python" else word for word in check]
        ok = subprocess.run(
            check, env={**env, "HEALTHCHECK_URL": f"{base}/-/healthy"}, timeout=30,
            capture_output=True,
        )  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        # ... and fails where nothing listens.
        down = subprocess.run(
            check, env={**env, "HEALTHCHECK_URL": f"http://127.0.0.1:{_free_port()}/-/healthy"},
            timeout=30, capture_output=True,
        )  # fmt: skip
        assert down.returncode != 0
    finally:
        if writer is not None:
            writer.send_signal(signal.SIGTERM)
            writer.wait(timeout=10)
        exporter.send_signal(signal.SIGTERM)
        try:
            code = exporter.wait(timeout=15)
        except subprocess.TimeoutExpired:
            exporter.kill()
            exporter.wait()
            raise
    stderr = exporter.stderr.read() if exporter.stderr else ""
    assert code == 0, stderr[-2000:]
    assert (state / "positions.json").exists(), "no checkpoint in the state_file directory"


def test_default_config_without_a_mounted_reference_fails_in_one_line(image: dict) -> None:
    # What a user sees who runs the image without mounting a reference (docs: troubleshooting).
    port = _free_port()
    result = subprocess.run(
        [str(image["venv"] / "bin" / "mlops-exporter"), f"--config.file={image['default_config']}",
         f"--web.listen-address=127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=60, cwd=image["root"],
        env=_image_env(),
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "reference.path" in lines[0] and "/etc/mlops-exporter/reference.csv" in lines[0]
