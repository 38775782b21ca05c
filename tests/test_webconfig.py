"""The exporter-toolkit web configuration file: parsing, errors, TLS context, basic auth."""

from __future__ import annotations

import base64
import ssl
import subprocess
from pathlib import Path

import bcrypt
import pytest

from exporter.webconfig import load_web_config
from mlops_core.errors import ConfigError
from tests.conftest import require_binary


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def cert_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = require_binary("openssl")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(d / "server.key"), "-out", str(d / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "server.crt", d / "server.key"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def test_no_file_means_plain_http_without_auth() -> None:
    config = load_web_config(None)
    assert config.ssl_context() is None
    assert config.authorized(None)
    assert not config.auth_required


def test_basic_auth_accepts_right_password_and_rejects_others(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    config = load_web_config(_write(tmp_path, f"basic_auth_users:\n  alice: '{hashed}'\n"))
    assert config.auth_required
    assert config.authorized(_basic("alice", "s3cret"))
    assert config.authorized(_basic("alice", "s3cret"))  # second time from the cache
    assert not config.authorized(_basic("alice", "wrong"))
    assert not config.authorized(_basic("bob", "s3cret"))
    assert not config.authorized(None)
    assert not config.authorized("Bearer abc")
    assert not config.authorized("Basic !!!not-base64")
    assert not config.authorized("Basic " + base64.b64encode(b"no-colon").decode())


def test_relative_tls_paths_resolve_against_the_config_file(
    tmp_path: Path, cert_pair: tuple[Path, Path]
) -> None:
    cert, key = cert_pair
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "s.crt").write_bytes(cert.read_bytes())
    (tmp_path / "certs" / "s.key").write_bytes(key.read_bytes())
    path = _write(
        tmp_path,
        "tls_server_config:\n  cert_file: certs/s.crt\n  key_file: certs/s.key\n"
        "  min_version: TLS12\n",
    )
    context = load_web_config(path).ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE


def test_client_ca_makes_the_server_verify_clients(
    tmp_path: Path, cert_pair: tuple[Path, Path]
) -> None:
    cert, key = cert_pair
    path = _write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {cert}\n",
    )
    assert load_web_config(path).ssl_context().verify_mode == ssl.CERT_REQUIRED


def test_go_only_toolkit_keys_are_accepted(tmp_path: Path, cert_pair: tuple[Path, Path]) -> None:
    cert, key = cert_pair
    path = _write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        "  cipher_suites: [TLS_AES_128_GCM_SHA256]\nhttp_server_config:\n  http2: true\n"
        "  headers: {X-Frame-Options: deny}\n",
    )
    config = load_web_config(path)
    assert config.headers == {"X-Frame-Options": "deny"}


_TLS = "tls_server_config: {cert_file: a, key_file: b"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("tls_server_confg: {}\n",
         "tls_server_confg: unknown key (did you mean 'tls_server_config'?)"),
        ("tls_server_config:\n  cert_file: a.crt\n",
         "tls_server_config.key_file: required key missing"),
        (_TLS + ", colour: red}\n",
         "tls_server_config.colour: unknown key (expected one of: cert_file, key_file"),
        (_TLS + ", client_auth_type: Maybe}\n",
         "client_auth_type: expected one of NoClientCert, VerifyClientCertIfGiven, "
         "RequireAndVerifyClientCert, got 'Maybe'"),
        (_TLS + ", client_auth_type: RequireAndVerifyClientCert}\n",
         "tls_server_config.client_ca_file: required for client_auth_type "
         "RequireAndVerifyClientCert"),
        (_TLS + ", min_version: SSL3}\n", "tls_server_config.min_version: expected one of TLS10"),
        (_TLS + ", client_auth_type: RequireAnyClientCert, client_ca_file: ca}\n",
         "tls_server_config.client_auth_type: RequireAnyClientCert is not supported"),
        (_TLS + ", client_auth_type: RequireClientCert}\n", "use RequireAndVerifyClientCert"),
        (_TLS + ", client_auth_type: RequestClientCert}\n", "use VerifyClientCertIfGiven"),
        (_TLS + ", client_ca_file: ca}\n",
         "tls_server_config.client_ca_file: set but client_auth_type is NoClientCert"),
        ("http_server_config: {headers: {X-Frame-Options: \"deny\\r\\nSet-Cookie: a=b\"}}\n",
         "http_server_config.headers.X-Frame-Options: expected a header value without line "
         "breaks"),
        ("http_server_config: {headers: {\"a\\nb\": c}}\n",
         "http_server_config.headers: header name 'a\\nb' may not be empty or contain a line "
         "break"),
        ("basic_auth_users:\n  alice: plaintext\n",
         "basic_auth_users.alice: expected a bcrypt hash"),
        ("basic_auth_users: [alice]\n",
         "basic_auth_users: expected a mapping of user: bcrypt hash, got ['alice'] (list)"),
        ("- just a list\n", "expected a mapping"),
        ("key: [unclosed\n", "invalid YAML"),
    ],
)  # fmt: skip
def test_bad_files_give_one_line_naming_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_web_config(_write(tmp_path, text))
    message = str(info.value)
    assert needle in message
    assert "\n" not in message
    assert str(tmp_path / "web.yml") in message


def test_a_value_given_for_a_password_hash_is_not_echoed(tmp_path: Path) -> None:
    """It may be the password itself, written where its hash belongs."""
    with pytest.raises(ConfigError) as info:
        load_web_config(_write(tmp_path, "basic_auth_users:\n  alice: hunter2\n"))
    assert "basic_auth_users.alice: expected a bcrypt hash" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_go_only_keys_and_numeric_header_values_load(tmp_path: Path) -> None:
    path = _write(tmp_path, "http_server_config: {headers: {X-Max-Age: 5}, http2: true}\n")
    assert load_web_config(path).headers == {"X-Max-Age": "5"}


def test_missing_file_and_unloadable_certificate_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yml"):
        load_web_config(tmp_path / "nope.yml")
    path = _write(tmp_path, "tls_server_config: {cert_file: missing.crt, key_file: missing.key}\n")
    with pytest.raises(ConfigError, match=r"missing\.crt"):
        load_web_config(path).ssl_context()


def test_the_placeholder_hash_costs_what_the_users_hashes_cost(tmp_path: Path) -> None:
    # It used to be cost 10 whatever the users' cost: a cost-12 user answered in 214 ms and an
    # unknown name in 54 ms, so user names could be enumerated by timing.
    for rounds in (4, 12):
        hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds)).decode()
        config = load_web_config(_write(tmp_path, f"basic_auth_users:\n  alice: '{hashed}'\n"))
        assert config._placeholder.startswith(f"$2b${rounds:02d}$".encode())
        assert not bcrypt.checkpw(b"pw", config._placeholder)  # a random password


def test_mixed_costs_take_the_highest(tmp_path: Path) -> None:
    low = bcrypt.hashpw(b"a", bcrypt.gensalt(4)).decode()
    high = bcrypt.hashpw(b"b", bcrypt.gensalt(6)).decode()
    text = f"basic_auth_users:\n  a: '{low}'\n  b: '{high}'\n"
    assert load_web_config(_write(tmp_path, text))._placeholder.startswith(b"$2b$06$")


def test_cached_tells_without_bcrypt_and_only_successes_are_cached(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    config = load_web_config(_write(tmp_path, f"basic_auth_users:\n  alice: '{hashed}'\n"))
    assert config.cached(None) is False
    assert config.cached("Bearer x") is False
    assert config.cached(_basic("alice", "s3cret")) is None  # needs bcrypt
    assert config.authorized(_basic("alice", "s3cret"))
    assert config.cached(_basic("alice", "s3cret")) is True
    assert not config.authorized(_basic("alice", "wrong"))
    assert config.cached(_basic("alice", "wrong")) is None  # a failure is never cached
    assert load_web_config(None).cached(None) is True  # no users: everyone


def test_at_most_one_bcrypt_check_runs_at_once(tmp_path: Path, monkeypatch) -> None:
    import threading
    import time

    from exporter import webconfig

    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    config = load_web_config(_write(tmp_path, f"basic_auth_users:\n  alice: '{hashed}'\n"))
    running, peak, lock = 0, 0, threading.Lock()
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)  # long enough for the other threads to pile in
        with lock:
            running -= 1
        return real(password, hashed)

    monkeypatch.setattr(webconfig.bcrypt, "checkpw", counting)
    threads = [
        threading.Thread(target=config.authorized, args=(_basic("alice", f"guess{i}"),))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == webconfig.BCRYPT_CONCURRENCY == 1
