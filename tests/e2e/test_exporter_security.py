"""TLS and basic auth from --web.config.file, end to end over real HTTPS."""

from __future__ import annotations

import base64
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import require_binary
from tests.e2e._exporter import run_exporter, running_exporter, write_config

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


@dataclass(frozen=True)
class ClientCerts:
    """A CA, a client certificate it signed, and a self-signed one it did not."""

    ca: Path
    signed: tuple[Path, Path]
    unsigned: tuple[Path, Path]


@pytest.fixture(scope="module")
def client_certs(tmp_path_factory: pytest.TempPathFactory) -> ClientCerts:
    openssl = require_binary("openssl")
    d = tmp_path_factory.mktemp("clients")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    new_key = ["-newkey", "rsa:2048", "-nodes", "-days", "2"]
    run(
        "req",
        "-x509",
        *new_key,
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.crt"),
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=prometheus",
        "-keyout",
        str(d / "signed.key"),
        "-out",
        str(d / "signed.csr"),
    )
    run(
        "x509",
        "-req",
        "-in",
        str(d / "signed.csr"),
        "-CA",
        str(d / "ca.crt"),
        "-CAkey",
        str(d / "ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        str(d / "signed.crt"),
    )
    run("req", "-x509", *new_key, "-subj", "/CN=stranger",
        "-keyout", str(d / "unsigned.key"), "-out", str(d / "unsigned.crt"))  # fmt: skip
    return ClientCerts(
        d / "ca.crt", (d / "signed.crt", d / "signed.key"), (d / "unsigned.crt", d / "unsigned.key")
    )


def _client_auth_config(
    tmp_path: Path, certificate: tuple[Path, Path], mode: str, ca: Path | None
) -> Path:
    cert, key = certificate
    text = f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    text += f"  client_auth_type: {mode}\n"
    if ca is not None:
        text += f"  client_ca_file: {ca}\n"
    path = tmp_path / "web.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mode", "instead"),
    [
        ("RequireAnyClientCert", "use RequireAndVerifyClientCert with a client_ca_file"),
        ("RequestClientCert", "use VerifyClientCertIfGiven with a client_ca_file"),
    ],
)
def test_client_cert_modes_python_cannot_honour_are_refused_naming_the_mode_to_use(
    tmp_path: Path, certificate: tuple[Path, Path], client_certs: ClientCerts,
    mode: str, instead: str,
) -> None:  # fmt: skip
    # Go takes any certificate in these modes; Python's ssl verifies every one it asks for,
    # so the exporter used to reject what node_exporter accepts.  Refused, not half-served.
    web = _client_auth_config(tmp_path, certificate, mode, client_certs.ca)
    result = run_exporter(
        f"--config.file={write_config(tmp_path)}", "--web.listen-address=127.0.0.1:0",
        f"--web.config.file={web}",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"tls_server_config.client_auth_type: {mode} is not supported" in lines[0]
    assert instead in lines[0]


def test_a_client_ca_without_a_client_auth_type_is_refused(
    tmp_path: Path, certificate: tuple[Path, Path], client_certs: ClientCerts
) -> None:
    web = _client_auth_config(tmp_path, certificate, "NoClientCert", client_certs.ca)
    result = run_exporter(
        f"--config.file={write_config(tmp_path)}", "--web.listen-address=127.0.0.1:0",
        f"--web.config.file={web}",
    )  # fmt: skip
    assert result.returncode == 1
    assert "client_ca_file: set but client_auth_type is NoClientCert" in result.stderr


def _get_with_client_cert(url: str, server_cert: Path, client: tuple[Path, Path] | None) -> int:
    context = client_context(server_cert)
    if client is not None:
        context.load_cert_chain(*client)
    with urllib.request.urlopen(url + "/-/healthy", timeout=5, context=context) as resp:
        return resp.status


REFUSED = (ssl.SSLError, urllib.error.URLError, ConnectionError, OSError)


def test_require_and_verify_client_cert_takes_only_certificates_the_ca_signed(
    tmp_path: Path, certificate: tuple[Path, Path], client_certs: ClientCerts
) -> None:
    cert, _ = certificate
    web = _client_auth_config(tmp_path, certificate, "RequireAndVerifyClientCert", client_certs.ca)
    context = client_context(cert)
    context.load_cert_chain(*client_certs.signed)
    with running_exporter(write_config(tmp_path), web_config=web, ssl_context=context) as exp:
        assert _get_with_client_cert(exp.url, cert, client_certs.signed) == 200
        with pytest.raises(REFUSED):
            _get_with_client_cert(exp.url, cert, None)
        with pytest.raises(REFUSED):
            _get_with_client_cert(exp.url, cert, client_certs.unsigned)
        assert exp.proc.poll() is None  # refused handshakes cost a debug line, nothing more


def test_verify_client_cert_if_given_takes_none_or_a_signed_one(
    tmp_path: Path, certificate: tuple[Path, Path], client_certs: ClientCerts
) -> None:
    cert, _ = certificate
    web = _client_auth_config(tmp_path, certificate, "VerifyClientCertIfGiven", client_certs.ca)
    with running_exporter(
        write_config(tmp_path), web_config=web, ssl_context=client_context(cert)
    ) as exp:
        assert _get_with_client_cert(exp.url, cert, None) == 200
        assert _get_with_client_cert(exp.url, cert, client_certs.signed) == 200
        with pytest.raises(REFUSED):
            _get_with_client_cert(exp.url, cert, client_certs.unsigned)
