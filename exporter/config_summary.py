"""The landing page's configuration summary: what the exporter was told, as it reads it.

One row per setting a user would check first when the page shows something unexpected
(which files, which reference, which features, the verdict's tolerance and level), with
durations written as the config writes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporter.config import ExporterConfig
from exporter.model_outcomes import calibrator, quality_settings, store_path
from exporter.models import ModelState
from mlops_core.durations import format_duration


def config_summary(c: ExporterConfig, states: Sequence[ModelState]) -> list[tuple[str, str]]:
    """(setting, value) rows of ``c`` for the models ``states``, first model's level."""
    rows = [
        ("config file", c.source),
        ("logs.paths", ", ".join(c.logs.paths)),
        ("logs.start_position", c.logs.start_position),
        ("logs.state_file", c.logs.state_file or "(none)"),
    ]
    for m in states:
        at = f"model {m.name}: " if len(states) > 1 else ""
        if m.spec.match:
            rows.append((f"{at}match", ", ".join(f"{k}={v}" for k, v in m.spec.match.items())))
        rows += [
            (f"{at}reference", m.source.describe()),
            (f"{at}features", ", ".join(f"{n} ({k})" for n, k in m.features.items())),
        ]
    first = states[0]
    level = first.monitor.settings.level(len(first.features))
    rows += [
        ("drift.interval", format_duration(c.drift.interval)),
        ("drift.window", f"{c.drift.window.max_samples} samples, "
         f"{format_duration(c.drift.window.max_age)}"),
        ("drift.min_samples", str(c.drift.min_samples)),
        ("drift.tolerance", f"numeric {c.drift.tolerance.numeric:g}, categorical "
         f"{c.drift.tolerance.categorical:g}"),
        ("drift.false_alarm_budget", f"{format_duration(c.drift.false_alarm_budget)} (level "
         f"{level:.3g} per feature and pass)"),
        ("drift.tests (reported)", ", ".join(c.drift.tests)),
    ]  # fmt: skip
    if c.outcomes is not None:
        q = c.quality
        several = len(states) > 1
        for m in states:
            at = f"model {m.name}: " if several else ""
            settings = quality_settings(c, m)
            reference = ", ".join(f"{k} {v:g}" for k, v in settings.reference.items())
            if reference and not q.reference:
                reference += " (stored with the version in the registry)"
            rows.append((f"{at}outcomes.store", str(store_path(c, m.name))))
            own = m.config.outcomes
            if m.spec.outcomes is not None and own is not None:  # models[i].outcomes
                rows += _bounds(at, own.max_delay, own.early_grace, own.max_pending)
            if m.spec.quality_max_drop is not None:
                rows.append((f"{at}quality.max_drop", f"{settings.max_drop:g}"))
            rows += [
                (f"{at}quality.reference", reference or "(none)"),
                (f"{at}estimated accuracy", "calibrated by the reference profile's "
                 "calibrator" if calibrator(m.monitor.reference.profile) is not None
                 else "raw confidence (the profile has no calibrator)"),
            ]  # fmt: skip
        q_level = quality_settings(c, first).level()
        rows += [
            ("outcomes.paths", ", ".join(c.outcomes.paths)),
            *_bounds("", c.outcomes.max_delay, c.outcomes.early_grace, c.outcomes.max_pending),
            ("quality.window", f"{q.window.max_samples} joined predictions"
             + ("" if q.window.max_age is None else f", {format_duration(q.window.max_age)}")),
            ("quality.min_samples", str(q.min_samples)),
            ("quality.max_drop", f"{q.max_drop:g}"),
            ("quality.false_alarm_budget", format_duration(q.false_alarm_budget)
             + ("" if q_level is None else f" (level {q_level:.3g} per judged metric and"
                " pass)")),
        ]  # fmt: skip
    return rows


def _bounds(
    at: str, max_delay: float, early_grace: float, max_pending: int
) -> list[tuple[str, str]]:
    """The store's bounds: the shared ``outcomes:``'s, or a model's own (``at`` names it)."""
    return [
        (f"{at}outcomes.max_delay / early_grace",
         f"{format_duration(max_delay)} / {format_duration(early_grace)}"),
        (f"{at}outcomes.max_pending", str(max_pending)),
    ]  # fmt: skip
