"""In-process alerting inside the exporter (the optional ``alerts:`` config section).

For users who run no Prometheus rules: after each drift pass the exporter's own figures go
through :class:`mlops_core.alerts.AlertSystem`, which applies thresholds and the cooldown
and pushes to Alertmanager's API or a webhook.  With Prometheus in place the shipped rules
in ``rules/`` are the better choice: they see every replica, survive exporter restarts and
are silenced and routed in one place.

Figures a threshold can name (the keys of :func:`figures`)::

    latency_p50_ms  latency_p90_ms  latency_p95_ms  latency_p99_ms
    features_drifted  features_drifted_ratio  max_psi  window_samples
    drifted:<feature>  distance:<feature>  distance_lower_bound:<feature>
    psi:<feature>  ks_p_value:<feature>  chi2_p_value:<feature>

``drifted:<feature>`` (1 or 0) and ``features_drifted`` follow the verdict, whose false-alarm
rate is set by ``drift.false_alarm_budget``: alert on these (a figure fires when it is
greater than the level, so ``drifted:`` takes a level below 1, e.g. 0.5).
``distance:<feature>`` is the observed distance, a raw figure that is large on noise alone
at small windows, and ``distance_lower_bound:<feature>`` its lower confidence bound at the
pass's level; a threshold on the lower bound is a verdict at that threshold.  ``psi:``,
``ks_p_value:``, ``chi2_p_value:`` and ``max_psi`` are raw statistics: on small windows they
move on noise alone (PSI >= 0.2 holds 40% of the time with 100 vs 100 samples of the same
data), so a threshold on them has no stated false-alarm rate.

A threshold naming anything else is a configuration error at start-up, so a typo cannot
silently turn an alert off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from msgspec.structs import replace

from exporter.errors import ConfigError
from exporter.pipeline import Snapshot
from mlops_core.alerts import AlertSystem, read_alerts_config
from mlops_core.errors import AlertConfigError

log = structlog.get_logger("exporter.alerting")

_GLOBAL_FIGURES = (
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "features_drifted",
    "features_drifted_ratio",
    "max_psi",
    "window_samples",
)
#: figure prefix -> FeatureResult attribute
_PER_FEATURE = {
    "drifted": "drifted",
    "distance": "distance",
    "distance_lower_bound": "lower_bound",
    "psi": "psi",
    "ks_p_value": "ks_p_value",
    "chi2_p_value": "chi2_p_value",
}


def known_figures(features: Mapping[str, str]) -> set[str]:
    """Every figure name a threshold may use for this set of monitored features."""
    names = set(_GLOBAL_FIGURES)
    for feature in features:
        names.update(f"{kind}:{feature}" for kind in _PER_FEATURE)
    return names


def figures(snapshot: Snapshot) -> dict[str, float]:
    """The snapshot's figures under the names thresholds use; absent when not computed.

    Before ``drift.min_samples`` is reached a feature has no verdict and its figures are
    absent, which :class:`AlertSystem` treats as "no data" (state kept), not as recovery.
    """
    if snapshot.computed_at is None:
        return {}
    out: dict[str, float] = {"window_samples": float(snapshot.window_samples)}
    for quantile, seconds in snapshot.latency_quantiles.items():
        out[f"latency_p{round(quantile * 100):d}_ms"] = seconds * 1000.0
    if snapshot.features:
        out["features_drifted"] = float(snapshot.features_drifted)
        out["features_drifted_ratio"] = snapshot.features_drifted_ratio
    for result in snapshot.features:
        for kind, attribute in _PER_FEATURE.items():
            value = getattr(result, attribute)
            if value is not None:
                out[f"{kind}:{result.name}"] = float(value)
    psis = [float(f.psi) for f in snapshot.features if f.psi is not None]
    if psis:
        out["max_psi"] = max(psis)
    return out


class ExporterAlerts:
    """Feeds each new snapshot to an :class:`AlertSystem`; never raises into the scheduler."""

    def __init__(self, system: AlertSystem) -> None:
        self.system = system
        self._last_seen: float | None = None

    @classmethod
    def from_config(
        cls,
        section: Mapping[str, Any],
        *,
        model: str,
        features: Mapping[str, str],
        at: str = "alerts",
    ) -> ExporterAlerts:
        """Build from the ``alerts:`` section (``at``: its key, ``models[1].alerts`` for an
        entry's own); errors become one :class:`ConfigError` line naming the key
        (``alerts.thresholds.max_psi.warning: ...``)."""
        try:
            config = read_alerts_config(section, at=at)
        except AlertConfigError as exc:
            raise ConfigError(str(exc)) from None
        known = known_figures(features)
        for name in config.thresholds:
            if name not in known:
                raise ConfigError(
                    f"{at}.thresholds.{name}: unknown figure; use one of "
                    f"{', '.join(sorted(_GLOBAL_FIGURES))} or "
                    f"{'/'.join(p + ':' for p in _PER_FEATURE)} followed by a monitored "
                    "feature name"
                )
        # every notification carries the model label (a configured one wins)
        if config.alertmanager is not None:
            labels = {"model": model, **config.alertmanager.labels}
            config = replace(config, alertmanager=replace(config.alertmanager, labels=labels))
        if config.webhook is not None:
            labels = {"model": model, **config.webhook.labels}
            config = replace(config, webhook=replace(config.webhook, labels=labels))
        return cls(AlertSystem.from_config(config))

    def evaluate(self, snapshot: Snapshot) -> dict[str, Any] | None:
        """Check a snapshot once (a snapshot already checked is skipped); the result or None."""
        if snapshot.computed_at is None or snapshot.computed_at == self._last_seen:
            return None
        self._last_seen = snapshot.computed_at
        try:
            result = self.system.analyze_metrics(figures(snapshot))
        except Exception as exc:  # alerting must never stop the exporter
            log.error("alert_evaluation_failed", error=str(exc))
            return None
        for alert in result["alerts"]:
            log.info(
                "alert_raised",
                metric=alert["metric"],
                severity=alert["severity"],
                value=alert["value"],
                threshold=alert["threshold"],
            )
        return result

    @property
    def notify_failures(self) -> int:
        return int(self.system.notify_failures)
