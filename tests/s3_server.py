"""A real S3-compatible server for the tests and the registry benchmark: moto's, on loopback.

``python -m tests.s3_server`` runs moto's S3 application (the one ``moto_server`` serves) in
this process on ``127.0.0.1`` and prints ``listening http://127.0.0.1:PORT`` once it accepts
connections.  :class:`S3Server` starts it as a child process, and the fixtures below give a
test a server for the session and an empty bucket of its own.

Two choices, and why:

* **One request at a time.**  moto evaluates ``If-Match``/``If-None-Match`` on ``PutObject``
  by reading the current object, comparing ETags and then storing the new one, with no lock
  between the two steps (``moto/s3/responses.py``, ``put_object``), and ``moto_server`` runs
  each request in its own thread.  Two racing conditional writes with the same ETag can then
  both succeed: a lost update made by the test server, not by the registry.  The window is
  small (three runs of the 8-writer race against ``--threaded`` lost nothing), but nothing
  closes it, and a test that fails now and then for the server's sake proves nothing.  AWS
  S3, MinIO and Ceph evaluate the condition atomically with the write; serving one request
  at a time gives moto that atomicity.  ``--threaded`` serves like stock ``moto_server``.
* **``--ignore-conditional-headers``** removes ``If-Match`` and ``If-None-Match`` from every
  request before moto sees it, so the server accepts a stale ``If-Match`` with 200 and
  overwrites, as an S3-compatible server without conditional writes (or a gateway that drops
  the headers) does on the wire.  The registry's start-up probe must refuse it.

Clients get the endpoint and dummy credentials through the standard AWS variables
(:meth:`S3Server.env`), with the AWS config and credentials files pointed at ``/dev/null`` so
nothing from the machine is read.  In CI (``CI=true``) a missing moto fails the test instead
of skipping it, as ``tests.conftest.require_binary`` does for programs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: the standard variables every AWS SDK reads; all a client of the test server needs
_CLIENT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
#: variables that would make a client talk to something else than the test server
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION")


def require_moto() -> None:
    """Skip (locally) or fail (``CI=true``) when moto's server or boto3 is not installed."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        message = f"{exc.name} not installed; install it with: pip install 'moto[server]' boto3"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message} (CI=true: a missing server is a failure, not a skip)")
        pytest.skip(message)


class S3Server:
    """A moto S3 server child process on a free loopback port; ``stop()`` ends it."""

    def __init__(self, *, ignore_conditional_headers: bool = False, threaded: bool = False):
        args = [sys.executable, "-m", "tests.s3_server", "--port", "0"]
        if ignore_conditional_headers:
            args.append("--ignore-conditional-headers")
        if threaded:
            args.append("--threaded")
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # blocks until it listens (or dies)
        if not line.startswith("listening "):
            self.proc.kill()
            raise RuntimeError(f"the S3 test server did not start (printed {line!r})")
        self.endpoint = line.split(" ", 1)[1]

    def env(self) -> dict[str, str]:
        """The variables a client (this process or a child) needs to use this server."""
        return {**_CLIENT_ENV, "AWS_ENDPOINT_URL": self.endpoint}

    def child_env(self, **extra: str) -> dict[str, str]:
        """``os.environ`` with this server's variables, for ``subprocess`` children."""
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
        return {**env, **self.env(), "PYTHONPATH": str(REPO_ROOT), **extra}

    def client(self) -> Any:
        import boto3

        env = self.env()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --- fixtures (import them into a test module to use them) ------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto server for the test session."""
    require_moto()
    server = S3Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server's AWS variables set in this process for the test."""
    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture
def s3_url(s3_env: S3Server) -> str:
    """``s3://<a new, empty bucket>/registry`` on the session's server."""
    return f"s3://{s3_env.create_bucket()}/registry"


# --- the server process -----------------------------------------------------------------------


def _without_conditional_headers(app: Callable[..., Any]) -> Callable[..., Any]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ.pop("HTTP_IF_MATCH", None)
        environ.pop("HTTP_IF_NONE_MATCH", None)
        return app(environ, start_response)

    return wsgi


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    parser.add_argument("--ignore-conditional-headers", action="store_true")
    parser.add_argument("--threaded", action="store_true", help="as stock moto_server")
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    app: Any = DomainDispatcherApplication(create_backend_app)
    if args.ignore_conditional_headers:
        app = _without_conditional_headers(app)
    server = make_server("127.0.0.1", args.port, app, threaded=args.threaded)
    print(f"listening http://127.0.0.1:{server.server_port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
