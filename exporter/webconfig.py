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
from typing import Annotated, Any, Literal

import bcrypt
import msgspec
from msgspec import Meta

from exporter.config import parse_yaml
from mlops_core import schema
from mlops_core.errors import ConfigError
from mlops_core.schema import Parse, Schema, Text

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
ClientAuthType = Literal["NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
TLSVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
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


def _supported_client_auth(raw: Any) -> Any:
    """Go's modes that take a certificate unverified: refused, naming the mode to use."""
    if isinstance(raw, str) and raw in _CLIENT_AUTH_REFUSED:
        raise ValueError(
            f"{raw} is not supported (Python's TLS cannot take a client certificate without "
            f"verifying it); use {_CLIENT_AUTH_REFUSED[raw]}"
        )
    return raw


def _header_names(raw: Any) -> Any:
    """Header names as text; one with a line break could split the response."""
    if not isinstance(raw, Mapping):
        return raw  # msgspec says "expected a mapping"
    for name in raw:
        if not str(name) or any(c in str(name) for c in "\r\n\0"):
            raise ValueError(f"header name {str(name)!r} may not be empty or contain a line break")
    return {str(name): value for name, value in raw.items()}


HeaderValue = Annotated[
    str,
    Parse(str),
    Meta(pattern=r"^[^\r\n\x00]*$", description="a header value without line breaks"),
]
BcryptHash = Annotated[
    str,
    Meta(pattern=r"^\$2[aby]\$", description="a bcrypt hash ($2y$...)", extra={"secret": True}),
]


class TLSConfig(Schema, frozen=True):
    """``tls_server_config``; the file paths are resolved against the web config's directory."""

    cert_file: Text
    key_file: Text
    client_auth_type: Annotated[ClientAuthType, Parse(_supported_client_auth)] = "NoClientCert"
    client_ca_file: Text | None = None
    min_version: TLSVersion | None = None
    max_version: TLSVersion | None = None
    # Go's TLS stack only: accepted so that a file shared with other exporters loads, ignored
    cipher_suites: Any = None
    curve_preferences: Any = None
    prefer_server_cipher_suites: Any = None
    client_allowed_sans: Any = None


class HTTPConfig(Schema, frozen=True):
    """``http_server_config``."""

    headers: Annotated[
        dict[str, HeaderValue],
        Parse(_header_names),
        Meta(description="a mapping of header names to values"),
    ] = msgspec.field(default_factory=dict)
    http2: Any = None  # Go only: accepted, ignored


class WebConfigFile(Schema, frozen=True):
    """The web configuration file as written."""

    tls_server_config: TLSConfig | None = None
    http_server_config: HTTPConfig | None = None
    basic_auth_users: (
        Annotated[dict[str, BcryptHash], Meta(description="a mapping of user: bcrypt hash")] | None
    ) = None


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
    """Check a parsed web configuration; errors are one line naming ``source`` and the key."""
    read = schema.convert(data, WebConfigFile, error=ConfigError, source=source)
    tls = read.tls_server_config
    if tls is not None:
        _check_client_auth(tls, source)
        tls = msgspec.structs.replace(
            tls,
            cert_file=str(base_dir / tls.cert_file),
            key_file=str(base_dir / tls.key_file),
            client_ca_file=None
            if tls.client_ca_file is None
            else str(base_dir / tls.client_ca_file),
        )
    headers = read.http_server_config.headers if read.http_server_config else {}
    users = {user: hashed.encode() for user, hashed in (read.basic_auth_users or {}).items()}
    return WebConfig(tls=tls, basic_auth_users=users, headers=headers)


def _check_client_auth(tls: TLSConfig, source: str) -> None:
    """A CA file goes with the modes that verify clients, and only with them."""
    where = f"{source}: tls_server_config.client_ca_file"
    if "Verify" in tls.client_auth_type and not tls.client_ca_file:
        raise ConfigError(f"{where}: required for client_auth_type {tls.client_auth_type}")
    if tls.client_ca_file and tls.client_auth_type == "NoClientCert":
        raise ConfigError(
            f"{where}: set but client_auth_type is NoClientCert, so no client would be "
            "checked; set client_auth_type: RequireAndVerifyClientCert"
        )
