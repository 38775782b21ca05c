"""Estimated accuracy on a shifted scikit-learn bundled dataset, through the reference profile.

The inputs are the breast-cancer data set's (``sklearn.datasets.load_breast_cancer``, bundled
with scikit-learn, no download): its 569 rows standardised, drawn with replacement and
smoothed by a little Gaussian noise, so windows can be large.  569 labelled rows are too
few to measure errors of 0.03 (a window of 100 has a sampling error of about 0.04 on its
own), so the labels are drawn from a fixed concept: P(malignant | x) is a logistic function
fitted to the real labels, softened so the task is not trivially separable.  Fixing
P(y | x) is what covariate shift means; it is also what a real data set cannot promise.

The model is a logistic regression trained on its own sample of that world (well specified,
so calibrated for every x up to its estimation error).  Its reference is profiled with
``ReferenceProfile.from_data(..., predictions=, probabilities=, labels=)``, saved and
loaded: the estimate uses the calibrator the exporter would read from the profile file.

- Covariate shift: live windows drawn with an exponential tilt ``exp(beta * z_j)`` of one
  feature (a traffic mix with larger, or smaller, tumours: the accuracy rises), or with
  more borderline cases, ``exp(-beta * |logit|)`` of the concept (the accuracy falls); the
  estimate follows the accuracy within 0.03 either way.
- Concept shift: the same inputs, labels flipped where ``mean radius`` is in its top 40 %;
  the accuracy falls, the estimate stays at the reference's.  That is where it fails.

The figures are in docs/quality.md ("On a shifted bundled data set").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from mlops_core.profile import ReferenceProfile
from mlops_core.quality import ConfidenceCalibrator, estimated_accuracy

#: how much the concept fitted to the real labels is softened (its logit is multiplied)
SOFTEN = 0.35
#: standard deviation of the smoothing noise, in standard deviations of each feature
JITTER = 0.3
#: features whose distribution the live traffic tilts, by the data set's own names
TILTED = ("mean radius", "mean texture", "mean concave points", "worst radius",
          "worst texture", "worst concave points")  # fmt: skip
WINDOW = 5000


class World:
    """Breast-cancer inputs, a fixed concept, a model and its profiled reference."""

    def __init__(self, tmp_path: Path, seed: int = 0) -> None:
        data = load_breast_cancer()
        self.names = list(data.feature_names)
        self.z = StandardScaler().fit_transform(data.data)
        concept = LogisticRegression(C=0.05, max_iter=5000).fit(self.z, data.target)
        self.w = concept.coef_[0] * SOFTEN
        self.b = float(concept.intercept_[0]) * SOFTEN
        self.rng = np.random.default_rng(seed)
        x_train, y_train = self.draw(10_000)
        self.model = LogisticRegression(max_iter=5000).fit(x_train, y_train)
        x_ref, y_ref = self.draw(10_000)
        predicted, confidence = self.predict(x_ref)
        self.reference_accuracy = float(np.mean(predicted == y_ref))
        profile = ReferenceProfile.from_data(
            {name: x_ref[:, j] for j, name in enumerate(self.names)},
            {"__prediction__": "categorical"},
            predictions=predicted,
            probabilities=confidence,
            labels=y_ref,
        )
        loaded = ReferenceProfile.load(profile.save(tmp_path / "reference.profile.json"))
        assert loaded.calibrator is not None and loaded.calibrator == profile.calibrator
        self.calibrator: ConfidenceCalibrator = loaded.calibrator

    def tilt(self, name: str, beta: float) -> np.ndarray:
        """Row weights ``exp(beta * z)`` of one feature: more large (beta > 0) tumours."""
        return np.exp(beta * self.z[:, self.names.index(name)])

    def borderline(self, beta: float) -> np.ndarray:
        """Row weights ``exp(-beta * |logit|)``: more cases near the concept's boundary."""
        return np.exp(-beta * np.abs(self.z @ self.w + self.b))

    def draw(self, n: int, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` inputs (rows resampled, with ``weights`` when given, then smoothed) and their
        labels from the fixed concept: P(y | x) is the same whatever the weights."""
        p = None if weights is None else weights / weights.sum()
        rows = self.rng.choice(len(self.z), n, p=p)
        x = self.z[rows] + self.rng.normal(0.0, JITTER, (n, self.z.shape[1]))
        p_malignant = 1.0 / (1.0 + np.exp(-(x @ self.w + self.b)))
        return x, (self.rng.random(n) < p_malignant).astype(int)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted class and the probability of that class."""
        proba = self.model.predict_proba(x)
        return self.model.classes_[proba.argmax(axis=1)], proba.max(axis=1)

    def window(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Realised accuracy and estimated accuracy (from the confidences alone)."""
        predicted, confidence = self.predict(x)
        return float(np.mean(predicted == y)), estimated_accuracy(self.calibrator, confidence)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("quality_estimate"))


def test_without_shift_the_estimate_is_the_accuracy(world: World) -> None:
    realised, estimate = world.window(*world.draw(WINDOW))
    assert abs(estimate - realised) < 0.02
    assert abs(realised - world.reference_accuracy) < 0.02


def test_under_covariate_shift_the_estimate_stays_within_0_03(world: World) -> None:
    errors, moved = [], []
    shifts = [world.tilt(name, beta) for name in TILTED for beta in (-1.0, 1.0)]
    shifts += [world.borderline(beta) for beta in (1.0, 1.5)]
    for weights in shifts:
        realised, estimate = world.window(*world.draw(WINDOW, weights))
        errors.append(abs(estimate - realised))
        if abs(realised - world.reference_accuracy) > 0.04:  # the shift moved the accuracy
            moved.append(realised)
            # ... and the estimate went with it
            assert abs(estimate - realised) < abs(world.reference_accuracy - realised)
    print(
        f"covariate shift: max |estimate - realised| = {max(errors):.4f}, mean "
        f"{np.mean(errors):.4f} over {len(errors)} windows of {WINDOW}; {len(moved)} moved "
        f"the accuracy by > 0.04 (to {min(moved):.3f}..{max(moved):.3f} from a reference of "
        f"{world.reference_accuracy:.3f})"
    )
    assert max(errors) <= 0.03
    assert len(moved) >= 3  # real shifts, not copies of the reference
    assert min(moved) < world.reference_accuracy - 0.08  # and one that hurts


def test_under_concept_shift_the_estimate_stays_high_while_the_accuracy_falls(
    world: World,
) -> None:
    """Where it fails, by design: the inputs do not move, so neither do the confidences."""
    x, y = world.draw(2 * WINDOW)
    radius = x[:, world.names.index("mean radius")]
    flipped = radius > np.quantile(radius, 0.6)
    realised, estimate = world.window(x, np.where(flipped, 1 - y, y))
    print(
        f"concept shift: realised {realised:.3f}, estimated {estimate:.3f}, reference "
        f"{world.reference_accuracy:.3f}; error {estimate - realised:.3f}"
    )
    assert realised < world.reference_accuracy - 0.15
    assert abs(estimate - world.reference_accuracy) < 0.02  # the estimate does not move
    assert estimate - realised > 0.15
