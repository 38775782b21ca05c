"""In-process threshold alerting with a cooldown, for a process that has no Prometheus.

``AlertSystem`` compares metric values with warning/critical thresholds and decides which
alerts to raise *now*: the same metric at the same severity is raised at most once per
cooldown, an escalation (warning -> critical) is raised at once, and a metric back within
its thresholds clears its state (and is reported as resolved).  The cooldown state can be
kept in a JSON file so a restarted process does not re-send everything; it holds wall-clock
times, and a state that claims to come from the future (a clock that went backwards, a file
copied from another machine) is discarded rather than trusted.

Raised and resolved alerts are handed to the notifiers (:mod:`mlops_core.notifiers`).  A
notifier never raises into ``analyze_metrics``; delivery problems are logged and counted.

Where Prometheus and Alertmanager run, prefer the alerting rules in ``rules/``: they survive
restarts, have ``for:`` durations and silences.  This module is for batch jobs, notebooks
and services that want a guard rail without that stack.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import structlog
from msgspec import Meta

from mlops_core import schema
from mlops_core._common import is_finite_number, utc_timestamp
from mlops_core._fsutil import atomic_write_bytes
from mlops_core.errors import AlertConfigError
from mlops_core.notifiers import (
    AlertmanagerConfig,
    WebhookConfig,
    config_duration,
    notifiers_from_config,
)
from mlops_core.schema import Duration, FiniteNumber, Schema, Text

#: seconds from an alerts-section duration, AlertConfigError naming the key (the same
#: grammar as the exporter's config and the rules: mlops_core.durations)
parse_duration = config_duration

log = structlog.get_logger(__name__)

SEVERITIES = ("warning", "critical")  # least to most severe
_RANK = {"ok": 0, "warning": 1, "critical": 2}
_STATE_VERSION = 1


class Threshold(Schema, frozen=True):
    """The levels of one metric; ``direction: below`` for a lower bound such as accuracy."""

    warning: FiniteNumber | None = None
    critical: FiniteNumber | None = None
    direction: Literal["above", "below"] = "above"


Thresholds = Annotated[
    dict[str, Threshold],
    Meta(min_length=1, description="a non-empty mapping of metric -> levels"),
]


class AlertsConfig(Schema, frozen=True):
    """An ``alerts`` section, as :meth:`AlertSystem.from_config` takes it."""

    thresholds: Thresholds
    cooldown: Duration = 3600.0
    state_file: Text | None = None
    alertmanager: AlertmanagerConfig | None = None
    webhook: WebhookConfig | None = None


def read_alerts_config(section: Any, *, at: str = "alerts") -> AlertsConfig:
    """``section`` checked: one :class:`AlertConfigError` line naming the key (``at.key``)."""
    config = schema.convert(section, AlertsConfig, error=AlertConfigError, at=at)
    _check_levels(config.thresholds, f"{at}.thresholds")
    if config.state_file is not None:
        _check_state_file(config.state_file, f"{at}.state_file")
    return config


def _check_state_file(state_file: str, at: str) -> None:
    """Refuse a state file that can never be written, when the config is read.

    The state is first written at the first alert, maybe days after the start, and a
    failed write is only logged: a path under a file or in a read-only directory used to
    pass at start and lose the cooldowns at every restart.  As for ``logs.state_file``, the
    missing directories are created at that write, so what is checked is that the nearest
    existing ancestor is a directory this process may create entries in.
    """
    target = Path(os.path.abspath(state_file))
    if target.is_dir():
        raise AlertConfigError(f"{at}: {state_file} is a directory; name a file in it")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise AlertConfigError(f"{at}: {state_file}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AlertConfigError(f"{at}: {state_file}: directory {parent} is not writable")


class Notifier(Protocol):
    """Anything with ``notify(alerts) -> bool`` that never raises (see ``mlops_core.notifiers``)."""

    def notify(self, alerts: Sequence[Mapping[str, Any]]) -> bool: ...


class AlertSystem:
    """Threshold alerts with a per-(metric, severity) cooldown.

    ``thresholds`` maps a metric name to ``{"warning": x, "critical": y}`` (either may be
    omitted) and an optional ``"direction"``: ``"above"`` (default, an upper bound such as
    latency) or ``"below"`` (a lower bound such as accuracy).  ``clock`` returns the current
    wall-clock time in seconds since the epoch, or an aware ``datetime`` (default
    :func:`time.time`); tests inject their own.  ``state_file`` keeps the cooldown state
    across restarts.
    """

    def __init__(
        self,
        thresholds: Mapping[str, Mapping[str, Any] | Threshold],
        cooldown_hours: float = 1,
        *,
        clock: Callable[[], float | datetime] | None = None,
        state_file: str | os.PathLike[str] | None = None,
        notifiers: Iterable[Notifier] = (),
    ) -> None:
        self.thresholds = _check_thresholds(thresholds)
        if not is_finite_number(cooldown_hours) or cooldown_hours < 0:
            raise AlertConfigError(
                f"cooldown_hours must be a non-negative number, got {cooldown_hours!r}"
            )
        self.cooldown_seconds = float(cooldown_hours) * 3600.0
        self.clock = clock or time.time
        if state_file is not None and not isinstance(state_file, (str, os.PathLike)):
            raise AlertConfigError(f"state_file must be a file path, got {state_file!r}")
        self.state_file = Path(state_file) if state_file is not None else None
        self.notifiers = list(notifiers)
        self.notify_failures = 0
        self._lock = threading.Lock()
        # metric -> severity -> wall-clock time the alert was last raised
        self._state: dict[str, dict[str, float]] = self._load_state()

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | AlertsConfig) -> AlertSystem:
        """Build from a plain dict such as the exporter's ``alerts:`` config section.

        Keys (:class:`AlertsConfig`): ``thresholds`` (required, as for the constructor),
        ``cooldown`` (a duration such as ``"30m"``, ``"1h"``, ``"1h30m"`` or a number of
        seconds; default ``"1h"``), ``state_file`` (path, optional), ``alertmanager`` and
        ``webhook`` (notifier settings, see :mod:`mlops_core.notifiers`; optional).  A wrong
        key or value raises one :class:`AlertConfigError` line naming ``alerts.<key>``.
        """
        config = section if isinstance(section, AlertsConfig) else read_alerts_config(section)
        return cls(
            config.thresholds,
            cooldown_hours=config.cooldown / 3600.0,
            state_file=config.state_file,
            notifiers=notifiers_from_config(
                config.alertmanager, config.webhook, cooldown_seconds=config.cooldown
            ),
        )

    # --- analysis -----------------------------------------------------------------------------

    def analyze_metrics(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``metrics`` (name -> number or list of numbers) against the thresholds.

        Returns ``alerts`` (raised now), ``suppressed`` (held back by the cooldown),
        ``resolved`` (metrics back to normal that had alerted), ``status`` (``"ok"``,
        ``"warning"`` or ``"critical"``: the worst raised or suppressed severity),
        ``ignored`` (metrics without thresholds or without a finite value) and ``timestamp``.
        Metrics absent from ``metrics`` keep their state: no data is not "back to normal".
        """
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a mapping, not {type(metrics).__name__}")
        with self._lock:
            now = self._now()
            stamp = utc_timestamp(now)
            alerts: list[dict[str, Any]] = []
            suppressed: list[dict[str, Any]] = []
            resolved: list[dict[str, Any]] = []
            ignored: list[str] = []
            changed = False
            for name, raw in metrics.items():
                spec = self.thresholds.get(name)
                values = _finite_values(raw)
                if spec is None or not values:
                    ignored.append(name)
                    continue
                severity, value, threshold = _worst(spec, values)
                if severity is None:
                    previous = self._state.pop(name, None)
                    if previous:
                        changed = True
                        resolved.append(_resolved(name, spec, value, previous, now, stamp))
                    continue
                assert threshold is not None  # _worst names the level whenever a severity
                alert = _alert(name, spec, severity, value, threshold, stamp)
                sent = self._state.get(name, {}).get(severity)
                if sent is not None and now - sent < self.cooldown_seconds:
                    alert["cooldown_remaining_seconds"] = self.cooldown_seconds - (now - sent)
                    suppressed.append(alert)
                else:
                    self._state.setdefault(name, {})[severity] = now
                    changed = True
                    alerts.append(alert)
            if changed:
                self._save_state()
        worst = max(
            (a["severity"] for a in alerts + suppressed), key=_RANK.__getitem__, default="ok"
        )
        if alerts or resolved:
            self._notify(alerts + resolved)
        for a in alerts:
            log.warning(
                "alert_raised", metric=a["metric"], severity=a["severity"], value=a["value"]
            )
        return {
            "alerts": alerts,
            "suppressed": suppressed,
            "resolved": resolved,
            "status": worst,
            "ignored": ignored,
            "timestamp": stamp,
        }

    def reset(self, metric: str | None = None) -> None:
        """Forget the cooldown state of one metric, or of all (e.g. after a deployment)."""
        with self._lock:
            if metric is None:
                self._state.clear()
            else:
                self._state.pop(metric, None)
            self._save_state()

    def _now(self) -> float:
        """Wall-clock seconds from the clock, which may also return an aware ``datetime``."""
        now = self.clock()
        return now.timestamp() if isinstance(now, datetime) else float(now)

    def _notify(self, alerts: list[dict[str, Any]]) -> None:
        for notifier in self.notifiers:
            try:
                ok = notifier.notify(alerts)
            except Exception as exc:  # a third-party notifier broke its contract: contain it
                ok = False
                log.error("notifier_raised", notifier=type(notifier).__name__, error=str(exc))
            if not ok:
                self.notify_failures += 1

    # --- persistence --------------------------------------------------------------------------

    def _load_state(self) -> dict[str, dict[str, float]]:
        if self.state_file is None:
            return {}
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("alert_state_unreadable", path=str(self.state_file), error=str(exc))
            return {}
        entries = data.get("sent") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            log.warning("alert_state_unreadable", path=str(self.state_file), error="bad format")
            return {}
        now = self._now()
        state: dict[str, dict[str, float]] = {}
        discarded = 0
        for metric, by_severity in entries.items():
            if metric not in self.thresholds or not isinstance(by_severity, dict):
                continue
            for severity, when in by_severity.items():
                if severity not in SEVERITIES or not is_finite_number(when):
                    continue
                if when > now:  # from the future: the clock or the file cannot be trusted
                    discarded += 1
                    continue
                state.setdefault(metric, {})[severity] = float(when)
        if discarded:
            log.warning(
                "alert_state_from_future_discarded", path=str(self.state_file), entries=discarded
            )
        return state

    def _save_state(self) -> None:
        """Write the state atomically (``_fsutil``: temp file, fsync, ``os.replace``, dir fsync)."""
        if self.state_file is None:
            return
        body = json.dumps({"version": _STATE_VERSION, "sent": self._state}, sort_keys=True)
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.state_file, body.encode("utf-8"))
        except OSError as exc:  # alerting must go on even when the state cannot be kept
            log.error("alert_state_write_failed", path=str(self.state_file), error=str(exc))


# --- helpers ----------------------------------------------------------------------------------


def _check_thresholds(thresholds: Any) -> dict[str, dict[str, Any]]:
    """The constructor's ``thresholds``, checked, as ``{metric: {direction, levels...}}``."""
    read: dict[str, Threshold] = schema.convert(
        thresholds, Thresholds, error=AlertConfigError, at="thresholds"
    )
    _check_levels(read, "thresholds")
    out: dict[str, dict[str, Any]] = {}
    for metric, spec in read.items():
        levels = {s: getattr(spec, s) for s in SEVERITIES if getattr(spec, s) is not None}
        out[metric] = {"direction": spec.direction, **levels}
    return out


def _check_levels(thresholds: Mapping[str, Threshold], at: str) -> None:
    """What no single key states: a level is set, and warning comes before critical."""
    for metric, spec in thresholds.items():
        if spec.warning is None and spec.critical is None:
            raise AlertConfigError(f"{at}.{metric}: needs a warning or critical level")
        w, c = spec.warning, spec.critical
        if w is None or c is None:
            continue
        if (spec.direction == "above" and w > c) or (spec.direction == "below" and w < c):
            raise AlertConfigError(
                f"{at}.{metric}: the warning level {w:g} is beyond the critical "
                f"level {c:g} for direction {spec.direction!r}"
            )


def _finite_values(raw: Any) -> list[float]:
    items = raw if isinstance(raw, (list, tuple)) else [raw]
    if hasattr(raw, "tolist") and not isinstance(raw, (list, tuple)):  # numpy array or scalar
        items = raw.tolist()
        items = items if isinstance(items, list) else [items]
    return [float(v) for v in items if is_finite_number(v)]


def _breaches(direction: str, value: float, level: float) -> bool:
    return value > level if direction == "above" else value < level


def _worst(spec: Mapping[str, Any], values: list[float]) -> tuple[str | None, float, float | None]:
    """The worst severity reached, the worst value and the threshold it crossed."""
    direction = spec["direction"]
    value = max(values) if direction == "above" else min(values)
    for severity in reversed(SEVERITIES):
        level = spec.get(severity)
        if level is not None and _breaches(direction, value, level):
            return severity, value, level
    return None, value, None


def _alert(
    name: str, spec: Mapping[str, Any], severity: str, value: float, threshold: float, stamp: str
) -> dict[str, Any]:
    word = "above" if spec["direction"] == "above" else "below"
    return {
        "metric": name,
        "severity": severity,
        "value": value,
        "threshold": threshold,
        "direction": spec["direction"],
        "status": "firing",
        "message": f"{name} is {value:g}, {word} the {severity} threshold {threshold:g}",
        "timestamp": stamp,
    }


def _resolved(
    name: str,
    spec: Mapping[str, Any],
    value: float,
    previous: Mapping[str, float],
    now: float,
    stamp: str,
) -> dict[str, Any]:
    worst = max(previous, key=_RANK.__getitem__)
    return {
        "metric": name,
        "severity": worst,
        "value": value,
        "threshold": spec.get(worst),
        "direction": spec["direction"],
        "status": "resolved",
        "message": f"{name} is {value:g}, back within its thresholds",
        "timestamp": stamp,
        "started_at": utc_timestamp(min(min(previous.values()), now)),
    }
