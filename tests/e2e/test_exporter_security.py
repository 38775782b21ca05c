"""TLS and basic auth from --web.config.file, end to end over real HTTPS."""

from __future__ import annotations

import base64
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import require_binary
from tests.e2e._exporter import running_exporter, write_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = require_binary("openssl")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def web_config(tmp_path: Path, cert: Path, key: Path, users: dict[str, str] | None) -> Path:
    lines = [f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"]
    if users:
        lines.append("basic_auth_users:\n")
        for user, password in users.items():
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
            lines.append(f"  {user}: '{hashed}'\n")
    path = tmp_path / "web.yml"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_tls_and_basic_auth(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    config = write_config(tmp_path)
    web = web_config(tmp_path, cert, key, {"prom": "s3cret"})
    with running_exporter(
        config, web_config=web, ssl_context=client_context(cert), auth=("prom", "s3cret")
    ) as exp:
        assert exp.url.startswith("https://")
        s = exp.scrape()
        assert s.get("mlops_reference_samples", model="e2e") == 2000

        for path in ("/metrics", "/", "/-/ready"):
            status, headers, body = exp.get(path, auth=False)
            assert status == 401, path
            assert headers["WWW-Authenticate"].startswith("Basic")
            assert b"mlops_" not in body and b"e2e" not in body

        wrong = base64.b64encode(b"prom:wrong").decode()
        status, _, body = exp.get("/metrics", {"Authorization": f"Basic {wrong}"}, auth=False)
        assert status == 401 and b"mlops_" not in body
        unknown = base64.b64encode(b"mallory:s3cret").decode()
        assert exp.get("/metrics", {"Authorization": f"Basic {unknown}"}, auth=False)[0] == 401

        # Plain HTTP to the TLS port gets nothing.
        plain = exp.url.replace("https://", "http://") + "/metrics"
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(plain, timeout=5).read()

        # A client that does not trust the certificate refuses it.
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(
                exp.url + "/-/healthy", timeout=5, context=ssl.create_default_context()
            )


def test_tls_without_auth(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    config = write_config(tmp_path)
    web = web_config(tmp_path, cert, key, None)
    with running_exporter(config, web_config=web, ssl_context=client_context(cert)) as exp:
        assert exp.get("/metrics")[0] == 200


def test_basic_auth_without_tls(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  alice: '{hashed}'\n", encoding="utf-8")
    with running_exporter(config, web_config=web, auth=("alice", "pw")) as exp:
        assert exp.get("/metrics")[0] == 200
        assert exp.get("/metrics", auth=False)[0] == 401
