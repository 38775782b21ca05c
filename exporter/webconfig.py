"""The Prometheus exporter-toolkit web configuration file (``--web.config.file``).

Every official exporter reads the same file format for TLS and basic auth, so users can
reuse the file they already have for node_exporter.  Supported keys::

    tls_server_config:
      cert_file: server.crt          # paths are relative to this file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional, default NoClientCert
      client_ca_file: ca.crt         # required for the *VerifyClientCert* types
      min_version: TLS12             # optional: TLS10..TLS13
      max_version: TLS13             # optional
    http_server_config:
      headers: {X-Frame-Options: deny}   # optional extra response headers
    basic_auth_users:
      alice: $2y$10$...              # bcrypt hashes, as `htpasswd -nBC 10` prints them

Keys of the toolkit that only make sense for Go's TLS stack (``cipher_suites``,
``curve_preferences``, ``prefer_server_cipher_suites``, ``client_allowed_sans``,
``http2``) are accepted and ignored, so a shared file does not stop this exporter; any
other key is an error naming it.

``client_auth_type`` accepts the three modes Python's TLS stack can honour as Go's does:
``NoClientCert``, ``VerifyClientCertIfGiven`` and ``RequireAndVerifyClientCert``.  Go's
``RequestClientCert`` and ``RequireAnyClientCert`` take a client certificate *without*
verifying it; Python's ``ssl`` always verifies a certificate it asks for against a CA, so
those modes would reject certificates Go accepts.  Rather than behave differently from the
toolkit's documentation, they are refused at start-up with a one-line error naming the mode
to use instead.  A ``client_ca_file`` with ``NoClientCert`` is refused too, as the toolkit
does: the operator meant to check clients, and nothing would be checked.

bcrypt is slow by design (tens of milliseconds per check), so like the toolkit we cache
successful checks keyed by a hash of the credentials; a failed check is never cached.  At
most :data:`BCRYPT_CONCURRENCY` checks run at once (the toolkit uses a mutex too): a flood
of wrong passwords queues behind it instead of taking every core, and a scraper whose
credentials are cached (:meth:`WebConfig.cached`) never waits for that queue.  An unknown
user name is checked against a placeholder hash of the same cost as the configured users'
hashes, so the response time does not tell which names exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt

from exporter.config import parse_yaml
from mlops_core.errors import ConfigError

_TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users"}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
}
_TLS_IGNORED = {
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
}
_HTTP_KEYS = {"headers"}
_HTTP_IGNORED = {"http2"}

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go modes that accept a certificate without verifying it, which Python's ssl cannot do;
# refused with the mode to use instead.  "RequireClientCert" is the toolkit's old alias.
_CLIENT_AUTH_REFUSED = {
    "RequestClientCert": "VerifyClientCertIfGiven with a client_ca_file (or NoClientCert)",
    "RequireAnyClientCert": "RequireAndVerifyClientCert with a client_ca_file",
    "RequireClientCert": "RequireAndVerifyClientCert with a client_ca_file",
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
#: bcrypt checks that may run at once; the rest wait (see the module docstring).
BCRYPT_CONCURRENCY = 1


def placeholder_hash(users: Mapping[str, bytes]) -> bytes:
    """A hash of a random password, as costly as the most costly of ``users``' hashes.

    Checked when the user name is unknown, so a wrong name costs what a wrong password
    costs.  Users of different costs still differ from each other; give all the same cost
    (``htpasswd -nBC 10`` for each) to make every name look alike.
    """
    costs = [_cost(hashed) for hashed in users.values()]
    rounds = max((c for c in costs if c is not None), default=10)
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=rounds))


def _cost(hashed: bytes) -> int | None:
    """The cost of a ``$2y$10$...`` hash, or None when it does not have one."""
    parts = hashed.split(b"$")
    if len(parts) < 4 or not parts[2].isdigit():
        return None
    cost = int(parts[2])
    return cost if 4 <= cost <= 31 else None


@dataclass(frozen=True)
class TLSConfig:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str | None = None
    max_version: str | None = None


@dataclass
class WebConfig:
    """A parsed web configuration; an empty one means plain HTTP without authentication."""

    tls: TLSConfig | None = None
    basic_auth_users: Mapping[str, bytes] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    _ok_cache: set[bytes] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _bcrypt_slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(BCRYPT_CONCURRENCY), repr=False
    )
    _placeholder: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if self.basic_auth_users and not self._placeholder:
            self._placeholder = placeholder_hash(self.basic_auth_users)

    @property
    def auth_required(self) -> bool:
        return bool(self.basic_auth_users)

    def ssl_context(self) -> ssl.SSLContext | None:
        """A server-side context built from ``tls_server_config``, or None for plain HTTP."""
        if self.tls is None:
            return None
        tls = self.tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"tls_server_config: cannot load cert_file {tls.cert_file} / key_file "
                f"{tls.key_file}: {exc}"
            ) from None
        if tls.min_version:
            context.minimum_version = _TLS_VERSIONS[tls.min_version]
        if tls.max_version:
            context.maximum_version = _TLS_VERSIONS[tls.max_version]
        context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
        if tls.client_ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(tls.client_ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"tls_server_config.client_ca_file: cannot load {tls.client_ca_file}: {exc}"
                ) from None
        return context

    def cached(self, authorization_header: str | None) -> bool | None:
        """The verdict without bcrypt: True (no users, or cached credentials), False (no or
        malformed credentials), None when only a bcrypt check can tell.

        Cheap enough for the HTTP server's event loop; :meth:`authorized` does the rest.
        """
        if not self.basic_auth_users:
            return True
        credentials = _parse_basic(authorization_header)
        if credentials is None:
            return False
        with self._lock:
            return True if _cache_key(*credentials) in self._ok_cache else None

    def authorized(self, authorization_header: str | None) -> bool:
        """True when no users are configured, or the header carries valid Basic credentials.

        May wait for a bcrypt slot (:data:`BCRYPT_CONCURRENCY`), then cost one bcrypt check.
        """
        verdict = self.cached(authorization_header)
        if verdict is not None:
            return verdict
        credentials = _parse_basic(authorization_header)
        assert credentials is not None  # cached() said None, so they parse
        user, password = credentials
        hashed = self.basic_auth_users.get(user)
        with self._bcrypt_slots:
            try:
                ok = bcrypt.checkpw(password, hashed or self._placeholder) and hashed is not None
            except ValueError:  # a malformed hash in the file was caught at load; be safe
                ok = False
        if ok:
            with self._lock:
                self._ok_cache.add(_cache_key(user, password))
        return ok


def _cache_key(user: str, password: bytes) -> bytes:
    return hashlib.sha256(user.encode() + b"\0" + password).digest()


def _parse_basic(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def load_web_config(path: str | Path | None) -> WebConfig:
    """Read and check a web configuration file; ``None`` gives plain HTTP, no auth."""
    if path is None or str(path) == "":
        return WebConfig()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--web.config.file {path}: {exc.strerror or exc}") from None
    data = parse_yaml(text, f"--web.config.file {path}")
    return parse_web_config(data or {}, base_dir=path.parent, source=str(path))


def parse_web_config(data: Any, *, base_dir: Path, source: str = "web config") -> WebConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    _check_keys(data, _TOP_KEYS, set(), source, "")

    tls = None
    tls_data = data.get("tls_server_config")
    if tls_data is not None:
        tls = _parse_tls(tls_data, base_dir, source)

    headers: dict[str, str] = {}
    http_data = data.get("http_server_config")
    if http_data is not None:
        if not isinstance(http_data, Mapping):
            raise ConfigError(f"{source}: http_server_config must be a mapping")
        _check_keys(http_data, _HTTP_KEYS, _HTTP_IGNORED, source, "http_server_config.")
        raw_headers = http_data.get("headers") or {}
        if not isinstance(raw_headers, Mapping):
            raise ConfigError(f"{source}: http_server_config.headers must be a mapping")
        headers = {str(k): str(v) for k, v in raw_headers.items()}
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n\0") or not name:
                raise ConfigError(
                    f"{source}: http_server_config.headers.{name}: a header name or value "
                    "may not contain a line break"
                )

    users: dict[str, bytes] = {}
    users_data = data.get("basic_auth_users")
    if users_data is not None:
        if not isinstance(users_data, Mapping):
            raise ConfigError(f"{source}: basic_auth_users must be a mapping of user: bcrypt hash")
        for user, hashed in users_data.items():
            if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise ConfigError(
                    f"{source}: basic_auth_users.{user}: expected a bcrypt hash ($2y$...)"
                )
            users[str(user)] = hashed.encode()
    return WebConfig(tls=tls, basic_auth_users=users, headers=headers)


def _parse_tls(tls_data: Any, base_dir: Path, source: str) -> TLSConfig:
    prefix = "tls_server_config."
    if not isinstance(tls_data, Mapping):
        raise ConfigError(f"{source}: tls_server_config must be a mapping")
    _check_keys(tls_data, _TLS_KEYS, _TLS_IGNORED, source, prefix)
    for key in ("cert_file", "key_file"):
        if not tls_data.get(key):
            raise ConfigError(f"{source}: {prefix}{key} is required when TLS is configured")
    auth_type = tls_data.get("client_auth_type") or "NoClientCert"
    if auth_type in _CLIENT_AUTH_REFUSED:
        raise ConfigError(
            f"{source}: {prefix}client_auth_type {auth_type} is not supported (Python's TLS "
            f"cannot take a client certificate without verifying it); use "
            f"{_CLIENT_AUTH_REFUSED[auth_type]}"
        )
    if auth_type not in _CLIENT_AUTH:
        raise ConfigError(
            f"{source}: {prefix}client_auth_type {auth_type!r} is not one of "
            f"{', '.join(_CLIENT_AUTH)}"
        )
    ca = tls_data.get("client_ca_file")
    if "Verify" in auth_type and not ca:
        raise ConfigError(f"{source}: {prefix}client_ca_file is required for {auth_type}")
    if ca and auth_type == "NoClientCert":
        raise ConfigError(
            f"{source}: {prefix}client_ca_file is set but client_auth_type is NoClientCert, so "
            "no client would be checked; set client_auth_type: RequireAndVerifyClientCert"
        )
    for key in ("min_version", "max_version"):
        value = tls_data.get(key)
        if value is not None and value not in _TLS_VERSIONS:
            raise ConfigError(
                f"{source}: {prefix}{key} {value!r} is not one of {', '.join(_TLS_VERSIONS)}"
            )
    return TLSConfig(
        cert_file=base_dir / str(tls_data["cert_file"]),
        key_file=base_dir / str(tls_data["key_file"]),
        client_auth_type=auth_type,
        client_ca_file=base_dir / str(ca) if ca else None,
        min_version=tls_data.get("min_version"),
        max_version=tls_data.get("max_version"),
    )


def _check_keys(
    data: Mapping[str, Any], known: set[str], ignored: set[str], source: str, prefix: str
) -> None:
    for key in data:
        if key not in known and key not in ignored:
            allowed = ", ".join(sorted(known))
            raise ConfigError(f"{source}: unknown key {prefix}{key} (expected one of: {allowed})")
