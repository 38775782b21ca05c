"""No silent failure: what the exporter sees that it cannot use, said in its log and pages.

Each of these once happened to a careful user and left nothing in the exporter's own log:

* ``logs.paths`` matches no file: warned at start and every ``REPEAT_EVERY`` while it lasts;
* a monitored feature is in none of the first ``FIELD_SAMPLE`` predictions (the reference
  said ``mean radius``, the logs ``mean_radius``): warned with the closest field name the
  records do have;
* record fields that nothing monitors, when ``features:`` is not set: logged once;
* existing log data skipped because of ``start_position: end``: logged once, with how to
  read it instead (naming the state file to delete, whose checkpoint would otherwise win),
  and shown on the landing page and ``/-/ready`` until the first prediction is read;
* rejected lines: the first ``SAMPLES_PER_REASON`` of each reason logged with file, byte
  offset (and line number when the file is small enough to count) and reason, then a
  summary per reason every ``SUMMARY_EVERY``;
* outcomes are joined (``outcomes:``) but none matched a prediction ``outcomes.early_grace``
  after the start: warned with what went wrong (no prediction carries a ``request_id``, no
  outcome record was read, or none of those read matched) and every ``REPEAT_EVERY`` while
  it lasts; cleared by the first match;
* predictions were read but every one was already older than ``drift.window.max_age`` when
  read (a replayed history, a writer's clock far behind), since the start or since the last
  fresh one: the window stays empty, so the drift pass only said "not enough samples";
  warned with the newest timestamp read, once per ``REPEAT_EVERY``.  Judged when they are
  read: a window that empties because traffic stopped is no such problem;
* predictions were read but none is of the version the model monitors (``model.version``,
  or the registry stage's version): warned with the versions seen, once per
  ``REPEAT_EVERY`` (the page listed them, the log and ``/-/ready`` did not);
* outcome records that cannot be joined (``actual`` an object or an array, no
  ``request_id``): the store counts them (``mlops_outcomes_unmatched_total{reason=
  "invalid"}``), the first ``SAMPLES_PER_REASON`` are logged with file and line here.
* lines were read but none is a usable prediction (every one rejected, or another event):
  the counters showed it, the page and ``/-/ready`` did not; warned after
  ``NO_PREDICTION_AFTER`` lines with the reasons and a hint (the fields a record without
  ``input_data`` does have), every ``REPEAT_EVERY`` while it lasts;
* a prediction's logged probability is unusable and left out: counted by the outcome store,
  the first ``SAMPLES_PER_REASON`` logged with file, line and what is wrong.

Excerpts of rejected lines have their control characters escaped (``\\x1b``), so a line of
binary garbage cannot write terminal escapes or NUL bytes into the log, whatever its format.

The current warnings are a tuple of one-line strings, shown on the landing page and in the
body of ``/-/ready``.  Everything here is bounded: a few hundred lines decoded once, a few
lines re-parsed per reason and minute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from exporter.keyed_records import probability_problem
from exporter.outcomes import OutcomeStats
from mlops_core.constants import PREDICTION_FEATURE
from mlops_core.durations import format_duration
from mlops_core.suggest import closest

log = structlog.get_logger("exporter.diagnostics")

#: predictions whose fields are sampled to find monitored features that never appear
FIELD_SAMPLE = 200
EARLY_FIELD_SAMPLE = 20
"""Predictions after which a monitored feature that is missing from all of them while a
record field nearly has its name is warned about at once (a rename)."""
#: rejected lines logged in full per reason, before only summaries are
SAMPLES_PER_REASON = 3
#: how often the rejected-line summary and a lasting "no files" warning are repeated
# keys of the sample counts beside the rejected lines' reasons (which never contain a colon)
_OUTCOME_SAMPLES = "outcome:invalid"
_PROBABILITY_SAMPLES = "prediction:probability_dropped"

SUMMARY_EVERY = 60.0
REPEAT_EVERY = 300.0

MILLISECONDS_ABOVE = 1e11
"""A numeric timestamp above this (the year 5138 in seconds, March 1973 in milliseconds) is
milliseconds: no prediction log is from the 52nd century."""

SMALL_REFERENCE_FACTOR = 4.0
"""A reference whose own radius keeps the smallest flaggable drift at this many times the
tolerance or more, whatever the window, is warned about (about 350 rows or fewer at the
default tolerance and level; the demo's 2,000 rows are fine)."""

NO_PREDICTION_AFTER = 10
"""Lines read with no usable prediction among them before that is said: a server may log a
few start-up events before its first prediction."""
#: the checks run at the passes, whose start times jitter by milliseconds: a repeat that is
#: due within this much is made at this pass, not one whole pass later
_SLACK = 1.0
#: line numbers are counted only in files up to this size (reading the file up to the line)
COUNT_LINES_UP_TO = 64 << 20
_EXCERPT = 120
#: control characters (C0, DEL, C1) as ``\\xNN``: the console format writes strings raw
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def excerpt(line: bytes) -> str:
    """The start of a rejected line, printable: what a log line may quote of the input.

    The one place excerpts are made.  Invalid UTF-8 becomes U+FFFD and control characters
    are escaped, so a hostile line cannot put a NUL or an ANSI escape on the terminal of
    whoever reads ``--log.format=console`` output (JSON escapes them itself, the console
    renderer does not).
    """
    return line[:_EXCERPT].decode("utf-8", "replace").translate(_ESCAPES)


class Diagnostics:
    """Collects what the exporter cannot use; thread-safe (ingest thread and scheduler)."""

    def __init__(
        self,
        features: Mapping[str, str],
        *,
        patterns: Sequence[str],
        features_configured: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._features = dict(features)
        self._patterns = tuple(patterns)
        self._features_configured = features_configured
        self._clock = clock
        self._lock = threading.Lock()
        self._fields: dict[str, int] = {}  # field name -> predictions that had it
        self._sampled = 0
        # feature -> its "never seen" warning: said once each, withdrawn when it appears
        self._field_warnings: dict[str, str] = {}
        self._early_done = False
        self._no_files_since: float | None = None
        self._no_files_logged = -float("inf")
        self._samples_logged: dict[str, int] = {}
        self._since_summary: dict[str, int] = {}
        self._last_summary = clock()
        self._started = clock()
        # per model (None: the one model), the "no outcome matched" warning shown, which
        # problem it is (logged again when it changes), and when it was last logged
        self._no_outcomes: dict[str | None, str] = {}
        self._no_outcomes_kind: dict[str | None, str] = {}
        self._no_outcomes_logged: dict[str | None, float] = {}
        self._skipped: str | None = None  # shown until the first prediction is read
        # lasting per-model problems: (check, model) -> (message, when it was last logged)
        self._lasting: dict[tuple[str, str], tuple[str, float]] = {}
        self._no_predictions: str | None = None  # the warning shown while it lasts
        self._no_predictions_logged = -float("inf")
        self._missing_field_keys: list[str] | None = None  # of a record without input_data
        self._small_reference: dict[str, str] = {}  # model -> the warning, while it holds
        self._ms_stamps = 0  # sampled predictions whose numeric timestamp is milliseconds
        self._ms_example: float = 0.0
        self._ms_warning: str | None = None

    # --- fields of the records --------------------------------------------------------------

    @property
    def sampling(self) -> bool:
        return self._sampled < FIELD_SAMPLE

    def observe_block(self, block: bytes) -> None:
        """Record the ``input_data`` field names of the block's predictions, while sampling."""
        if not self.sampling:
            return
        for line in block.split(b"\n"):
            if not line or b'"prediction"' not in line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict) or record.get("event") != "prediction":
                continue
            stamp = _milliseconds(record.get("timestamp"))
            if stamp is not None:
                with self._lock:
                    self._ms_stamps += 1
                    self._ms_example = stamp
            fields = record.get("input_data")
            if not isinstance(fields, dict):
                continue
            with self._lock:
                for name in fields:
                    self._fields[str(name)] = self._fields.get(str(name), 0) + 1
                self._sampled += 1
                if self._sampled >= FIELD_SAMPLE:
                    self._conclude_fields()
                    return

    def timestamps(self) -> None:
        """Called at every pass: say once, and show from then on, that the sampled
        predictions' numeric timestamps are milliseconds (``Date.now()``), which the exporter
        reads as seconds: the window's ``max_age`` never ages them out, and outcomes
        against them are joined with delay 0 or count ``expired``, with no other sign."""
        with self._lock:
            if not self._ms_stamps or self._ms_warning is not None:
                return
            self._ms_warning = (
                f"{self._ms_stamps} of the first {max(self._sampled, self._ms_stamps)} "
                f"prediction records have a numeric timestamp in milliseconds (e.g. "
                f"{self._ms_example:.0f}), read as unix seconds: drift.window.max_age and "
                "label delays are wrong; log seconds or ISO 8601 (PredictionLogger does)"
            )
            count, example = self._ms_stamps, self._ms_example
        log.warning(
            "timestamps_in_milliseconds", predictions=count, example=example,
            message=self._ms_warning,
        )  # fmt: skip

    def early_fields(self) -> None:
        """Called at every pass: once ``EARLY_FIELD_SAMPLE`` predictions were sampled, warn
        at once for a monitored feature no record had but whose name a record field nearly
        has (``Proline`` for ``proline``: a rename, not a sparse field), instead of after
        ``FIELD_SAMPLE`` predictions, which a first trial may never log."""
        with self._lock:
            if self._early_done or not EARLY_FIELD_SAMPLE <= self._sampled < FIELD_SAMPLE:
                return
            self._early_done = True
            self._conclude_fields(renamed_only=True)

    def _conclude_fields(self, *, renamed_only: bool = False) -> None:
        """After the sample: warn for monitored features no record had, once each."""
        seen = list(self._fields)
        if not renamed_only:  # an early warning whose feature has appeared since goes
            self._field_warnings = {
                f: w for f, w in self._field_warnings.items() if f not in self._fields
            }
        for feature in self._features:
            if feature in self._fields or feature == PREDICTION_FEATURE:  # not in input_data
                continue
            if feature in self._field_warnings:
                continue
            hint = closest(feature, [f for f in seen if f not in self._features])
            if renamed_only and hint is None:
                continue
            also = f"; the records have {hint!r}" if hint else ""
            message = (
                f"feature {feature!r} is missing from all of the first {self._sampled} "
                f"predictions{also}"
            )
            self._field_warnings[feature] = message
            log.warning("feature_never_seen", feature=feature, closest_field=hint,
                        predictions=self._sampled)  # fmt: skip
        if renamed_only:
            return
        if not self._features_configured:
            extra = sorted(f for f in self._fields if f not in self._features)
            if extra:
                log.info(
                    "fields_not_monitored",
                    fields=extra,
                    reason="not columns of the reference (features: is not set)",
                )

    # --- files ------------------------------------------------------------------------------

    def skipped_at_start(
        self, skipped_bytes: int, files: int, state_file: str | None = None
    ) -> None:
        """Say once what ``start_position: end`` left unread, and how to read it.

        With a ``state_file`` the advice names it too: this run saves a checkpoint there, and
        a restart with a checkpoint continues where it stopped, whatever ``start_position``
        says, so changing the setting alone would read nothing more.
        """
        if skipped_bytes:
            how = "set logs.start_position: beginning"
            if state_file is not None:
                how += f" and delete {state_file} before the next start"
            with self._lock:
                self._skipped = (
                    f"{skipped_bytes} bytes of existing log data in {files} file(s) were "
                    f"skipped at start (logs.start_position: end); to read them too, {how}"
                )
            log.info(
                "existing_log_data_skipped",
                bytes=skipped_bytes,
                files=files,
                hint="logs.start_position is 'end': only lines written from now on count; "
                f"to read them too, {how}",
            )

    def files_watched(self, count: int) -> None:
        """Called at every pass: warn while ``logs.paths`` matches nothing."""
        now = self._clock()
        with self._lock:
            if count > 0:
                if self._no_files_since is not None:
                    log.info("log_files_found", files=count)
                self._no_files_since = None
                return
            if self._no_files_since is None:
                self._no_files_since = now
            if now - self._no_files_logged >= REPEAT_EVERY - _SLACK:
                self._no_files_logged = now
                log.warning(
                    "no_log_files_match",
                    patterns=list(self._patterns),
                    waiting_seconds=round(now - self._no_files_since),
                )

    # --- rejected lines -----------------------------------------------------------------

    def wants_samples(self, reasons: Iterable[str]) -> bool:
        with self._lock:
            return any(self._samples_logged.get(r, 0) < SAMPLES_PER_REASON for r in reasons)

    def rejected(self, reasons: Mapping[str, int]) -> None:
        """Count the batch's rejected lines for the periodic summary."""
        with self._lock:
            for reason, count in reasons.items():
                self._since_summary[reason] = self._since_summary.get(reason, 0) + count

    def _take_sample(self, kind: str) -> bool:
        """Whether one more example of ``kind`` is logged (the first SAMPLES_PER_REASON of
        each: a rejected line's reason, an invalid outcome, a dropped probability)."""
        with self._lock:
            if self._samples_logged.get(kind, 0) >= SAMPLES_PER_REASON:
                return False
            self._samples_logged[kind] = self._samples_logged.get(kind, 0) + 1
            return True

    def _wants(self, kind: str) -> bool:
        with self._lock:
            return self._samples_logged.get(kind, 0) < SAMPLES_PER_REASON

    def sample(self, path: str, offset: int, reason: str, line: bytes) -> None:
        """Log one rejected line in full (the first few of each reason)."""
        if not self._take_sample(reason):
            return
        with self._lock:
            if reason == "missing_field" and self._missing_field_keys is None:
                self._missing_field_keys = _top_level_keys(line)
        log.warning(
            "log_line_rejected",
            file=path,
            offset=offset,
            line_number=_line_number(path, offset),
            reason=reason,
            excerpt=excerpt(line),
        )

    def summarise(self) -> None:
        """Every ``SUMMARY_EVERY``: one line with the rejected lines per reason since."""
        now = self._clock()
        with self._lock:
            if now - self._last_summary < SUMMARY_EVERY - _SLACK or not self._since_summary:
                return
            counts, self._since_summary = self._since_summary, {}
            seconds = now - self._last_summary
            self._last_summary = now
        log.warning("log_lines_rejected", seconds=round(seconds), by_reason=counts)

    def predictions_read(
        self, *, lines: int, predictions: int, invalid: Mapping[str, int], other_events: int
    ) -> None:
        """Called at every pass with the line counters: warn while lines are read and none
        is a usable prediction (the page only listed the counts), and say when one is."""
        message = None
        counts = {reason: n for reason, n in sorted(invalid.items()) if n}
        if predictions == 0 and lines >= NO_PREDICTION_AFTER:
            parts = [f"{reason} {n}" for reason, n in counts.items()]
            if other_events:
                parts.append(f"other events {other_events}")
            message = (
                f"{lines} log lines read, none is a usable prediction record "
                f"({', '.join(parts) or 'none counted'}): {self._no_prediction_hint(counts)}"
            )
        now = self._clock()
        with self._lock:
            was, self._no_predictions = self._no_predictions, message
            if message is None:
                if was is not None:
                    log.info("usable_predictions_read", predictions=predictions)
                return
            if was is not None and now - self._no_predictions_logged < REPEAT_EVERY - _SLACK:
                return
            self._no_predictions_logged = now
        log.warning(
            "no_usable_predictions",
            message=message,
            lines=lines,
            by_reason=counts,
            other_events=other_events,
        )

    def _no_prediction_hint(self, invalid: Mapping[str, int]) -> str:
        """What to check, for each kind of reason seen, commonest first (log_line_rejected
        has examples)."""
        hints: list[str] = []
        for reason in sorted(invalid, key=lambda r: -invalid[r]):
            if reason == "missing_field":
                keys = self._missing_field_keys
                have = f" (the first such record has {', '.join(keys)})" if keys else ""
                hint = (
                    'records lack "event": "prediction" or the input_data object of the '
                    f"features{have}"
                )
            elif reason in ("invalid_json", "not_an_object", "encoding"):
                hint = (
                    "lines are not JSON records: point logs.paths at what PredictionLogger writes"
                )
            else:
                hint = f"see the log_line_rejected lines for examples of {reason}"
            if hint not in hints:
                hints.append(hint)
        if not hints:
            hints.append('no record is a prediction ("event": "prediction"): check logs.paths')
        return "; ".join(hints) + "; see docs/log-format.md"

    # --- outcomes ---------------------------------------------------------------------------

    def outcomes(
        self,
        stats: OutcomeStats,
        *,
        predictions_read: int,
        wait: float,
        patterns: Sequence[str],
        model: str | None = None,
    ) -> None:
        """Called at every quality pass: warn when no outcome matched ``wait`` after start.

        ``predictions_read`` counts every prediction record read; ``stats`` are the store's
        counters (which survive restarts: a store that ever joined an outcome never warns).
        With several models, once per model with its own store's counters (``model``): one
        model's joins must not hide another's outcomes that match nothing.
        """
        now = self._clock()
        message: str | None = None
        kind = ""
        read = stats.outcomes_total + sum(stats.unmatched.values()) + stats.held
        unusable = stats.predictions_invalid
        if stats.outcomes_total == 0 and now - self._started >= wait:
            waited = _seconds(wait)
            if predictions_read and not (stats.predictions_total or unusable):
                kind = "no_request_id"
                message = (
                    f"outcomes: none of the {predictions_read} prediction records read carries a "
                    "request_id, so no outcome can be joined to them"
                )
            elif unusable and not stats.predictions_total:
                kind = "no_usable_prediction"
                message = (
                    f"outcomes: none of the {unusable} prediction records with a request_id "
                    "can be joined: they have no usable predicted class (under "
                    "prediction.class_field) or value, or no usable timestamp "
                    '(mlops_predictions_unjoinable_total{reason="invalid"})'
                )
            elif read == 0:
                kind = "no_outcome_records"
                message = (
                    f"outcomes: no outcome record read in {waited} ({stats.pending} "
                    f"predictions awaiting one): check that outcomes.paths "
                    f"({', '.join(patterns)}) matches the files they are written to and that "
                    'they have "event": "outcome"; late labels clear this when they arrive'
                )
            else:
                reasons = ", ".join(f"{r} {n}" for r, n in stats.unmatched.items() if n)
                held = f", {stats.held} waiting for their prediction" if stats.held else ""
                kind = "unmatched"
                message = (
                    f"outcomes: none of the {read} outcome records read matched a prediction "
                    f"in {waited} ({reasons or 'none counted yet'}{held}): check that they "
                    "carry the request_id of the prediction records"
                )
            if message is not None and model is not None:
                message = f"{model}: {message}"
        with self._lock:
            was = self._no_outcomes_kind.get(model, "")
            if message is None:
                self._no_outcomes.pop(model, None)
                self._no_outcomes_kind.pop(model, None)
                if was and stats.outcomes_total:
                    log.info("outcomes_matched", outcomes=stats.outcomes_total, model=model)
                return
            self._no_outcomes[model] = message
            self._no_outcomes_kind[model] = kind
            logged = self._no_outcomes_logged.get(model, -float("inf"))
            if was == kind and now - logged < REPEAT_EVERY - _SLACK:
                return
            self._no_outcomes_logged[model] = now
        log.warning(
            "no_outcomes_matched",
            problem=kind,
            message=message,
            model=model,
            predictions_awaiting=stats.pending,
            outcome_records=read,
            unmatched=dict(stats.unmatched),
        )

    def outcome_rejected(self, path: str, offset: int, line: bytes) -> None:
        """Log one outcome record the store counts as invalid (the first few of them).

        The store only counts them (``mlops_outcomes_unmatched_total{reason="invalid"}``);
        without the file and line a user cannot find which writer is wrong.
        """
        if not self._take_sample(_OUTCOME_SAMPLES):
            return
        log.warning(
            "outcome_rejected",
            file=path,
            offset=offset,
            line_number=_line_number(path, offset),
            problem=outcome_problem(line),
            excerpt=excerpt(line),
        )

    @property
    def wants_outcome_samples(self) -> bool:
        return self._wants(_OUTCOME_SAMPLES)

    def probability_dropped(self, path: str, offset: int, line: bytes) -> None:
        """Log one prediction whose logged probability was left out (the first few).

        The prediction still counts; only its probability is missing from log loss, the
        Brier score, ROC AUC and the estimated accuracy, which a user would otherwise not
        know (``mlops_predictions_probability_dropped_total`` counts them).
        """
        if not self._take_sample(_PROBABILITY_SAMPLES):
            return
        log.warning(
            "prediction_probability_dropped",
            file=path,
            offset=offset,
            line_number=_line_number(path, offset),
            problem=probability_problem(line),
            excerpt=excerpt(line),
        )

    @property
    def wants_probability_samples(self) -> bool:
        return self._wants(_PROBABILITY_SAMPLES)

    # --- each model's predictions -------------------------------------------------------

    def window(
        self,
        model: str,
        *,
        too_old: int,
        samples: int,
        newest: float | None,
        max_age: float | None,
    ) -> None:
        """Called at every pass: warn while the predictions read were all too old when read.

        ``too_old`` counts the predictions this process read for the model that were
        already older than ``max_age`` when added to its window, since the last fresh one
        (:attr:`exporter.window.Window.too_old`; not the checkpointed counters), ``newest``
        the newest timestamp among them, ``samples`` what the window holds.  Judged at
        ingest, because "read some, window empty now" is also what a model idle for longer
        than ``max_age`` looks like, whose timestamps are fine.  ``samples`` must be 0 too:
        old records after fresh ones (a replay appended to a live log) are said once the
        fresh ones aged out, not while drift is still judged on them.
        """
        message = None
        fields: dict[str, Any] = {}
        if too_old and not samples and max_age is not None and newest is not None:
            stamp = _iso(newest)
            message = (
                f"{model}: {too_old} predictions read, none within drift.window.max_age "
                f"({format_duration(max_age)}; newest at {stamp}) of the clock when read: the "
                "window is empty; raise drift.window.max_age to judge them, or check the "
                "records' timestamp"
            )
            fields = {"predictions": too_old, "newest": stamp, "max_age_seconds": max_age}
        self._lasting_problem("predictions_too_old", model, message, fields)

    def versions(
        self,
        model: str,
        *,
        monitored: str | None,
        predictions: int,
        other_versions: Mapping[str, int],
        registry: bool,
    ) -> None:
        """Called at every pass: warn while none of the predictions read is of the monitored
        version (the page listed the others; the log and ``/-/ready`` said nothing)."""
        message = None
        fields: dict[str, Any] = {}
        others = {v: n for v, n in other_versions.items() if n}
        if monitored is not None and not predictions and others:
            seen = ", ".join(f"{v}: {n}" for v, n in sorted(others.items()))
            key = (
                "the registry stage the model follows (the promoted version)"
                if registry
                else "model.version"
            )
            message = (
                f"{model}: monitors version {monitored}, but all {sum(others.values())} "
                f"predictions read are of other versions ({seen}): not judged; set {key} to "
                "the version being served, or check the records' model_version"
            )
            fields = {"monitored_version": monitored, "versions": others}
        self._lasting_problem("predictions_of_other_versions", model, message, fields)

    def reference_size(
        self, model: str, floors: Sequence[tuple[str, float, float, int, int]]
    ) -> None:
        """Called at every pass with each feature's ``(name, floor, tolerance, rows, rows
        needed)``: say once, and show while it lasts, when the reference is so small that
        no window can flag a drift below ``SMALL_REFERENCE_FACTOR`` times the tolerance
        (the detectable distance blamed only the window; 89 rows cap it near 0.4)."""
        capped = sorted(
            (f for f in floors if f[1] >= SMALL_REFERENCE_FACTOR * f[2] and f[2] > 0),
            key=lambda f: -f[1],
        )
        message = None
        if capped:
            name, floor, tolerance, rows, need = capped[0]
            others = f" (and {len(capped) - 1} more features)" if len(capped) > 1 else ""
            message = (
                f"{model}: the reference has {rows} rows: no drift below {floor:.2g} can be "
                f"flagged for {name}{others}, however large the window (tolerance "
                f"{tolerance:g}); a reference of about {need:,} rows brings that to twice "
                "the tolerance"
            )
        with self._lock:
            was = self._small_reference.get(model)
            if message is None:
                self._small_reference.pop(model, None)
                return
            self._small_reference[model] = message
            if was is not None:
                return
        log.warning(
            "reference_too_small",
            model=model,
            message=message,
            features={f[0]: round(f[1], 4) for f in capped[:10]},
            reference_rows=capped[0][3],
        )

    def _lasting_problem(
        self, check: str, model: str, message: str | None, fields: Mapping[str, Any]
    ) -> None:
        """Show ``message`` on the pages while it lasts; log it when it starts, when it
        changes kind, and every ``REPEAT_EVERY``; say when it is over."""
        now = self._clock()
        key = (check, model)
        with self._lock:
            was = self._lasting.get(key)
            if message is None:
                if was is None:
                    return
                del self._lasting[key]
                cleared = True
            else:
                cleared = False
                if was is not None and now - was[1] < REPEAT_EVERY - _SLACK:
                    self._lasting[key] = (message, was[1])
                    return
                self._lasting[key] = (message, now)
        if cleared:
            log.info("predictions_judged_again", check=check, model=model)
            return
        if check == "predictions_too_old":
            log.warning("predictions_too_old", model=model, message=message, **fields)
        else:
            log.warning("predictions_of_other_versions", model=model, message=message, **fields)

    def forget_models(self, keep: Iterable[str]) -> None:
        """Drop the lasting problems of models no longer monitored (after a reload)."""
        names = set(keep)
        with self._lock:
            self._lasting = {k: v for k, v in self._lasting.items() if k[1] in names}
            self._small_reference = {k: v for k, v in self._small_reference.items() if k in names}

    # --- what the pages show ------------------------------------------------------------

    def warnings(self) -> tuple[str, ...]:
        with self._lock:
            out = list(self._field_warnings.values())
            if self._no_files_since is not None:
                out.insert(0, f"logs.paths matches no file: {', '.join(self._patterns)}")
            if self._no_predictions is not None:
                out.append(self._no_predictions)
            out += self._no_outcomes.values()
            if self._skipped is not None and self._sampled == 0:  # no prediction read yet
                out.append(self._skipped)
            out += [message for message, _ in self._lasting.values()]
            out += self._small_reference.values()
            if self._ms_warning is not None:
                out.append(self._ms_warning)
            return tuple(out)


def _milliseconds(stamp: object) -> float | None:
    """A numeric timestamp that is milliseconds (above :data:`MILLISECONDS_ABOVE`), or None."""
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return None
    try:
        value = float(stamp)
    except OverflowError:
        return None
    return value if value > MILLISECONDS_ABOVE else None


def _top_level_keys(line: bytes) -> list[str] | None:
    """The first few field names of a JSON record, for a hint; None when it is not one."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    return [excerpt(str(k).encode())[:40] for k in list(record)[:8]]


def _iso(t: float) -> str:
    """Unix seconds as the logger writes timestamps (UTC, ``Z``), to the second."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def outcome_problem(line: bytes) -> str:
    """Why an outcome line cannot be joined, in a few words (for the first few logged)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not decodable (a number too large, or not UTF-8)"
    if not isinstance(record, dict):
        return "not an object"
    rid = record.get("request_id")
    if not (type(rid) is str and rid) and type(rid) is not int:  # as the store reads it
        return "no request_id"
    actual = record.get("actual")
    if isinstance(actual, dict | list):
        return "actual is an object or an array"
    if actual is None:
        return "no actual"
    return "actual or timestamp unusable (not a finite number or a label)"


def _seconds(seconds: float) -> str:
    """A duration as the config writes it (``10m``), whole seconds at least."""
    return format_duration(max(1.0, round(seconds)))


def _line_number(path: str, offset: int) -> int | None:
    """1-based line number of the line starting at ``offset``, for files not too large."""
    if offset > COUNT_LINES_UP_TO:
        return None
    try:
        with open(path, "rb") as fh:
            return fh.read(offset).count(b"\n") + 1
    except OSError:
        return None


def sample_rejected(
    diagnostics: Diagnostics, parse_one: Callable[[bytes], Any], path: str, start: int, block: bytes
) -> None:
    """Re-parse ``block`` line by line to log its first rejected lines with their reason.

    Only called while :meth:`Diagnostics.wants_samples` says a reason still needs examples,
    so the cost (one parse per line of a block) is paid a few times per exporter lifetime.
    """
    offset = start
    for line in block.split(b"\n"):
        if line:
            batch = parse_one(line)
            for reason in batch.invalid:
                diagnostics.sample(path, offset, reason, line)
        offset += len(line) + 1


def sample_invalid_outcomes(
    diagnostics: Diagnostics,
    path: str,
    start: int,
    block: bytes,
    outcomes: Iterable[tuple[int, object | None]],
) -> None:
    """Log the block's first outcome lines the store counts invalid: the one implementation
    for the single-model path (its :class:`~exporter.outcomes.KeyedBlock`) and the several-
    model one (each row's :func:`~exporter.outcomes.outcome_record`).

    ``outcomes`` are ``(offset, record)`` pairs, ``record`` what the store takes for the
    line at byte ``offset`` of ``path`` (``block`` starts at ``start``), None for a line it counts
    invalid: so the lines logged are exactly those counted, whichever path read them (two
    predicates drifted apart before).  Pass a generator to convert lazily: iteration stops
    as soon as :attr:`Diagnostics.wants_outcome_samples` is false, so after the first few
    this costs one check per block.
    """
    for offset, record in outcomes:
        if not diagnostics.wants_outcome_samples:
            return
        if record is None:
            diagnostics.outcome_rejected(path, offset, line_at(block, offset - start))


def sample_dropped_probabilities(
    diagnostics: Diagnostics, path: str, start: int, block: bytes, offsets: Iterable[int]
) -> None:
    """Log the block's first predictions whose probability was left out: ``offsets`` are
    exactly those the store counts (:attr:`~exporter.outcomes.KeyedBlock.dropped_offsets`,
    or the rows' ``probability_dropped``), whichever path read them."""
    for offset in offsets:
        if not diagnostics.wants_probability_samples:
            return
        diagnostics.probability_dropped(path, offset, line_at(block, offset - start))


def line_at(block: bytes, at: int) -> bytes:
    """The line of ``block`` that starts at ``at`` (without its newline)."""
    end = block.find(b"\n", at)
    return block[at:] if end < 0 else block[at:end]
