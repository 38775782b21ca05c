"""mlops_core: drift statistics, reference profiles, a model registry, prediction logging
with PII redaction, model quality metrics, a pre-deployment validation gate and in-process
alerting.

The public names are re-exported here lazily (PEP 562): ``import mlops_core`` stays cheap
for the serving path that only needs the prediction logger, and scipy is imported only
by code that computes drift.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlops_core.errors import (
    AlertConfigError,
    ConditionalWritesUnsupportedError,
    CorruptMetadataError,
    DataFileWarning,
    DriftInputError,
    DurationError,
    IntegrityError,
    InvalidNameError,
    LockTimeoutError,
    LogOutputError,
    MissingFileError,
    MlopsError,
    ModelNotFoundError,
    PredictionLogError,
    ProfileError,
    RegistryError,
    RegistryInputError,
    RegistryWarning,
    StageError,
    StorageError,
    ValidationConfigError,
    ValidationInputError,
    VersionExistsError,
)

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY: dict[str, str] = {
    # drift statistics
    "detect_drift_ks": "mlops_core.drift",
    "detect_drift_psi": "mlops_core.drift",
    "detect_drift_chi2": "mlops_core.drift",
    "analyze_feature_drift": "mlops_core.drift",
    # reference profiles
    "ReferenceProfile": "mlops_core.profile",
    "NumericFeatureProfile": "mlops_core.profile",
    "CategoricalFeatureProfile": "mlops_core.profile",
    "drift_against_profile": "mlops_core.drift",
    # registry
    "ModelRegistry": "mlops_core.registry",
    # prediction logging and PII
    "PredictionLogger": "mlops_core.logging",
    "sanitize_pii": "mlops_core.pii",
    "PIIRedactor": "mlops_core.pii",
    "redact_pii": "mlops_core.pii",
    # validation gate
    "validate_model_for_deployment": "mlops_core.validation",
    # model quality
    "classification_metrics": "mlops_core.quality",
    "per_class_metrics": "mlops_core.quality",
    "regression_metrics": "mlops_core.quality",
    "probability_matrix": "mlops_core.quality",
    "positive_class_probability": "mlops_core.quality",
    "degradation": "mlops_core.quality",
    "quality_bound": "mlops_core.quality",
    "QualityVerdict": "mlops_core.quality",
    "ConfidenceCalibrator": "mlops_core.quality",
    "estimated_accuracy": "mlops_core.quality",
    # alerting
    "AlertSystem": "mlops_core.alerts",
    "AlertmanagerNotifier": "mlops_core.notifiers",
    "WebhookNotifier": "mlops_core.notifiers",
}

__all__ = [
    "AlertConfigError",
    "ConditionalWritesUnsupportedError",
    "CorruptMetadataError",
    "DataFileWarning",
    "DriftInputError",
    "DurationError",
    "IntegrityError",
    "InvalidNameError",
    "LockTimeoutError",
    "LogOutputError",
    "MissingFileError",
    "MlopsError",
    "ModelNotFoundError",
    "PredictionLogError",
    "ProfileError",
    "RegistryError",
    "RegistryInputError",
    "RegistryWarning",
    "StageError",
    "StorageError",
    "ValidationConfigError",
    "ValidationInputError",
    "VersionExistsError",
    "__version__",
    *_LAZY,
]


# moved out of the library (the exporter's own errors); resolved only when asked for, and
# not in __all__, so that neither ``import mlops_core`` nor ``from mlops_core import *``
# imports the daemon
_MOVED = {"ConfigError": "exporter.errors"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name) or _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'mlops_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from mlops_core.alerts import AlertSystem  # noqa: F401
    from mlops_core.drift import (  # noqa: F401
        analyze_feature_drift,
        detect_drift_chi2,
        detect_drift_ks,
        detect_drift_psi,
        drift_against_profile,
    )
    from mlops_core.logging import PredictionLogger  # noqa: F401
    from mlops_core.notifiers import AlertmanagerNotifier, WebhookNotifier  # noqa: F401
    from mlops_core.pii import PIIRedactor, redact_pii, sanitize_pii  # noqa: F401
    from mlops_core.profile import (  # noqa: F401
        CategoricalFeatureProfile,
        NumericFeatureProfile,
        ReferenceProfile,
    )
    from mlops_core.quality import (  # noqa: F401
        ConfidenceCalibrator,
        QualityVerdict,
        classification_metrics,
        degradation,
        estimated_accuracy,
        per_class_metrics,
        positive_class_probability,
        probability_matrix,
        quality_bound,
        regression_metrics,
    )
    from mlops_core.registry import ModelRegistry  # noqa: F401
    from mlops_core.validation import validate_model_for_deployment  # noqa: F401
