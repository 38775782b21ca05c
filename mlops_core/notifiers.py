"""Deliver alerts from :class:`mlops_core.alerts.AlertSystem` over HTTP.

Two notifiers, both on the standard library's ``urllib`` (no extra dependency):

* :class:`AlertmanagerNotifier` posts to Alertmanager's ``POST /api/v2/alerts``;
* :class:`WebhookNotifier` posts one generic JSON document to any URL (Slack relays,
  chat-ops bots, a serverless function).

Delivery has a timeout per attempt and a bounded number of retries with exponential
backoff.  A notifier never raises into its caller: an alert that cannot be delivered is
logged (structlog) and counted on ``.failures``; ``notify`` returns False.  Only 5xx, 429
and network errors are retried; any other 4xx means the request itself is wrong.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
import structlog
from msgspec import Meta

from mlops_core import durations
from mlops_core._common import is_finite_number, utc_timestamp
from mlops_core.errors import AlertConfigError, DurationError
from mlops_core.schema import FiniteNumber, Parse, PositiveDuration, Schema, StrMap, Text

log = structlog.get_logger(__name__)

DEFAULT_ALERTNAME = "MlopsMetricThreshold"
#: Per attempt; then up to DEFAULT_RETRIES more, waiting DEFAULT_BACKOFF, twice that, ...
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5


class _HttpNotifier:
    """POSTs JSON with a timeout and bounded retries; counts instead of raising.

    ``labels`` are the fixed labels every alert it sends carries.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        labels: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise AlertConfigError(f"{type(self).__name__} needs an http(s) URL, got {url!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise AlertConfigError(f"retries must be a non-negative integer, got {retries!r}")
        self.url = url
        self.timeout = _number(timeout, "timeout", positive=True)
        self.retries = retries
        self.backoff = _number(backoff, "backoff")
        self.labels = _str_map(labels, "labels")
        self.headers = _str_map(headers, "headers")
        self._sleep = sleep
        self.sent = 0  # batches delivered
        self.failures = 0  # batches given up on
        self.attempts = 0  # HTTP requests made, retries included
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_redact(self.url)!r})"

    def _post(self, url: str, payload: Any, count: int) -> bool:
        body = json.dumps(payload, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "mlops-core", **self.headers}
        error = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
            self.attempts += 1
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                self.sent += 1
                self.last_error = None
                return True
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code} {exc.reason}"
                exc.close()
                if 400 <= exc.code < 500 and exc.code != 429:
                    break  # the request is wrong; sending it again will not help
            except OSError as exc:  # URLError, timeouts, refused connections
                reason = getattr(exc, "reason", exc)
                error = f"{type(reason).__name__}: {reason}"
        self.failures += 1
        self.last_error = error
        log.error(
            "alert_delivery_failed",
            notifier=type(self).__name__,
            url=_redact(url),
            alerts=count,
            attempts=attempt + 1,
            error=error,
        )
        return False


class AlertmanagerNotifier(_HttpNotifier):
    """Send alerts to Alertmanager (``POST {url}/api/v2/alerts``).

    Labels: ``alertname`` (``alertname``, default ``MlopsMetricThreshold``), ``severity``,
    ``metric`` and the fixed ``labels`` given here (e.g. ``{"model": "churn"}``).
    Annotations: ``summary`` and ``description``.  A firing alert gets
    ``endsAt = startsAt + ends_after`` (default 2 h): the AlertSystem does not re-send within
    its cooldown, so the alert must outlive it or Alertmanager would resolve it after its
    ``resolve_timeout``; if the problem persists the next send after the cooldown extends it.
    A resolved alert is sent with ``endsAt`` = the time it was resolved.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        labels: Mapping[str, str] | None = None,
        alertname: str = DEFAULT_ALERTNAME,
        ends_after: float = 7200.0,
        generator_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            url,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            labels=labels,
            headers=headers,
            sleep=sleep,
        )
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        if not isinstance(alertname, str) or not alertname:
            raise AlertConfigError(f"alertname must be a non-empty string, got {alertname!r}")
        self.alertname = alertname
        self.ends_after = _number(ends_after, "ends_after", positive=True)
        self.generator_url = generator_url

    def payload(self, alerts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The JSON body Alertmanager receives (public so users can inspect it)."""
        return [self._one(a) for a in alerts]

    def _one(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        at = _parse_time(alert.get("timestamp"))
        if alert.get("status") == "resolved":
            starts = _parse_time(alert.get("started_at")) if alert.get("started_at") else at
            starts, ends = min(starts, at), at
        else:
            starts, ends = at, at + timedelta(seconds=self.ends_after)
        labels = {
            **self.labels,
            "alertname": self.alertname,
            "severity": str(alert.get("severity", "warning")),
            "metric": str(alert.get("metric", "")),
        }
        word = "above" if alert.get("direction", "above") == "above" else "below"
        summary = f"{alert.get('metric')} {word} its {alert.get('severity')} threshold"
        if alert.get("status") == "resolved":
            summary = f"{alert.get('metric')} back within its thresholds"
        item: dict[str, Any] = {
            "labels": labels,
            "annotations": {
                "summary": summary,
                "description": str(alert.get("message", "")),
            },
            "startsAt": utc_timestamp(starts),
            "endsAt": utc_timestamp(ends),
        }
        if self.generator_url:
            item["generatorURL"] = self.generator_url
        return item

    def notify(self, alerts: Sequence[Mapping[str, Any]]) -> bool:
        """Deliver ``alerts``; True when Alertmanager accepted them (or there were none)."""
        if not alerts:
            return True
        try:
            body = self.payload(alerts)
        except Exception as exc:  # a malformed alert dict must not break the caller either
            self.failures += 1
            self.last_error = f"cannot build payload: {exc}"
            log.error("alert_delivery_failed", notifier="AlertmanagerNotifier", error=str(exc))
            return False
        return self._post(self.endpoint, body, len(alerts))


class WebhookNotifier(_HttpNotifier):
    """POST ``{"source", "status", "alerts": [...]}`` to any URL.

    ``status`` is ``"firing"`` when any alert in the batch fires, else ``"resolved"``;
    each alert is the dict produced by ``AlertSystem`` (metric, severity, value, threshold,
    direction, status, message, timestamp) plus the fixed ``labels`` given here.
    """

    def payload(self, alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        firing = any(a.get("status", "firing") == "firing" for a in alerts)
        return {
            "source": "mlops_core",
            "status": "firing" if firing else "resolved",
            "labels": self.labels,
            "alerts": [dict(a) for a in alerts],
        }

    def notify(self, alerts: Sequence[Mapping[str, Any]]) -> bool:
        if not alerts:
            return True
        return self._post(self.url, self.payload(alerts), len(alerts))


# --- the alerts section's notifier keys ----------------------------------------------------


def _http_url(raw: Any) -> Any:
    parts = urlsplit(raw) if isinstance(raw, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return raw


HttpUrl = Annotated[str, Parse(_http_url)]
Seconds = Annotated[FiniteNumber, Meta(gt=0, description="a positive number of seconds")]
Backoff = Annotated[FiniteNumber, Meta(ge=0, description="a non-negative number of seconds")]
Retries = Annotated[int, Meta(ge=0, description="a non-negative integer")]


class _HttpConfig(Schema, frozen=True):
    """The keys both notifier sections have: the arguments of :class:`_HttpNotifier`."""

    url: HttpUrl
    timeout: Seconds = DEFAULT_TIMEOUT
    retries: Retries = DEFAULT_RETRIES
    backoff: Backoff = DEFAULT_BACKOFF
    labels: StrMap = msgspec.field(default_factory=dict)
    headers: StrMap = msgspec.field(default_factory=dict)


class WebhookConfig(_HttpConfig, frozen=True):
    """``alerts.webhook``: the arguments of :class:`WebhookNotifier`."""


class AlertmanagerConfig(_HttpConfig, frozen=True):
    """``alerts.alertmanager``: the arguments of :class:`AlertmanagerNotifier`."""

    alertname: Text = DEFAULT_ALERTNAME
    ends_after: PositiveDuration | None = None  # None: twice the cooldown, at least 5m
    generator_url: Text | None = None


def notifiers_from_config(
    alertmanager: AlertmanagerConfig | None,
    webhook: WebhookConfig | None,
    *,
    cooldown_seconds: float = 3600.0,
) -> list[AlertmanagerNotifier | WebhookNotifier]:
    """The notifiers of an ``alerts`` section's ``alertmanager`` and ``webhook`` keys."""
    # a section's keys are its notifier's keyword arguments, by name
    out: list[AlertmanagerNotifier | WebhookNotifier] = []
    if alertmanager is not None:
        args = msgspec.structs.asdict(alertmanager)
        if args["ends_after"] is None:
            args["ends_after"] = max(2 * cooldown_seconds, 300.0)
        out.append(AlertmanagerNotifier(**args))
    if webhook is not None:
        out.append(WebhookNotifier(**msgspec.structs.asdict(webhook)))
    return out


def _number(value: Any, what: str, *, positive: bool = False) -> float:
    """A finite number >= 0 (> 0 with ``positive``), else ``AlertConfigError`` naming it."""
    if not is_finite_number(value) or not (value > 0 if positive else value >= 0):
        kind = "positive" if positive else "non-negative"
        raise AlertConfigError(f"{what} must be a {kind} number, got {value!r}")
    return float(value)


def _str_map(value: Any, what: str) -> dict[str, str]:
    """Labels and headers: a mapping, its keys and values sent as strings."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AlertConfigError(f"{what} must be a mapping of names to values, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _redact(url: str) -> str:
    """Scheme and host only: webhook paths and userinfo often carry secrets (Slack, tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/..."


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime.now(UTC)


def config_duration(value: Any, key: str = "duration") -> float:
    """Seconds from a duration (``"90s"``, ``"1h30m"``, a number), for code that reads one
    by itself (``mlops_core.alerts.parse_duration``); the ``alerts:`` section's keys are
    read by its schema (:class:`mlops_core.alerts.AlertsConfig`).

    The grammar is :mod:`mlops_core.durations`' (Prometheus's); this adds one
    :class:`AlertConfigError` naming ``key``.
    """
    try:
        return durations.parse_duration(value)
    except DurationError:
        negative = isinstance(value, int | float) and not isinstance(value, bool) and value < 0
        problem = "must not be negative" if negative else "must be a duration such as '30m' or '1h'"
        raise AlertConfigError(f"{key} {problem}, got {value!r}") from None
