"""Hidden tests of Exercise 2.2, `roc_auc_from_distances(distances, same) -> float`."""

import numpy as np


def auc(student, distances, same):
    value = student.roc_auc_from_distances(np.asarray(distances, dtype=float), np.asarray(same))
    assert np.ndim(value) == 0, f"it should return one number, got shape {np.shape(value)}"
    return float(value)


def brute_force(distances, same):
    distances, same = np.asarray(distances, float), np.asarray(same).astype(bool)
    d_same, d_diff = distances[same][:, None], distances[~same][None, :]
    return float(np.mean((d_same < d_diff) + 0.5 * (d_same == d_diff)))


def test_hand_cases(student):
    """hand-worked cases: the share of (same, different) combinations where the same pair is closer"""
    cases = [([0.2, 0.6, 0.4, 0.8, 0.1], [1, 1, 0, 0, 0], 3 / 6),
             ([1.0, 2.0, 3.0], [1, 0, 0], 1.0),
             ([0.3, 0.3, 0.3, 0.1], [1, 0, 0, 0], 1 / 3)]
    for distances, same, expected in cases:
        value = auc(student, distances, same)
        assert abs(value - expected) < 1e-9, \
            f"distances {distances} for pairs {same}: AUC {expected:.4f}, yours {value:.4f}"


def test_extremes_and_ties(student):
    """perfect distances give 1, reversed ones 0, all tied 0.5"""
    assert abs(auc(student, [0.1, 0.3, 1.2, 1.9], [1, 1, 0, 0]) - 1) < 1e-9, "perfect distances should give AUC 1"
    assert abs(auc(student, [0.1, 0.3, 1.2, 1.9], [0, 0, 1, 1])) < 1e-9, "reversed distances should give AUC 0"
    assert abs(auc(student, [2.0] * 7, [1, 0, 0, 1, 0, 1, 0]) - 0.5) < 1e-9, "all distances tied should give AUC 0.5"


def test_matches_brute_force(student):
    """agrees with a comparison of every same pair with every different pair, ties included"""
    rng = np.random.default_rng(61)
    for n, fraction in ((300, 0.5), (1000, 0.1), (500, 0.9)):
        same = rng.random(n) < fraction
        distances = np.round(np.abs(rng.normal(1.0 - 0.5 * same, 0.5)), 1)  # rounded: many ties
        value, expected = auc(student, distances, same), brute_force(distances, same)
        assert abs(value - expected) < 1e-9, \
            f"{n} random pairs ({fraction:.0%} same): AUC {expected:.6f}, yours {value:.6f}"


def test_order_only_and_complement(student):
    """depends only on the order; swapping same and different gives 1 - AUC"""
    rng = np.random.default_rng(62)
    same = rng.random(800) < 0.4
    distances = np.abs(rng.normal(1.0 - 0.3 * same, 0.5))
    plain = auc(student, distances, same)
    assert abs(plain - auc(student, np.sqrt(distances) * 7 + 1, same)) < 1e-9, "a monotone rescaling changed the AUC"
    assert abs(plain + auc(student, distances, ~same) - 1) < 1e-9, "swapping same and different should give 1 - AUC"


def test_inputs(student):
    """takes lists and booleans, and returns a float"""
    value = student.roc_auc_from_distances([0.2, 0.6, 0.4, 0.9], [True, False, True, False])
    assert isinstance(value, (float, np.floating)), f"it should return a float, not {type(value).__name__}"
    assert abs(float(value) - 1.0) < 1e-9, f"plain lists with booleans: AUC 1, yours {float(value):.4f}"


def test_fast(student):
    """300,000 pairs within 3 s, or 10 times the course's own time on a slow machine (a table of every same pair
    against every different pair does not fit)"""
    from cab420utils import metrics
    from cab420utils.grading import speed

    rng = np.random.default_rng(63)
    same = rng.random(300_000) < 0.5
    distances = rng.random(300_000) + 0.2 * ~same
    timing = speed.time_against_course(lambda d, s: auc(student, d, s), lambda d, s: metrics.roc_auc(-d, s),
                                       lambda: (distances, same), budget=3.0)
    assert not timing.too_slow, timing.describe("300,000 pairs")
    value = timing.result
    assert 0.5 < value < 1.0, f"the AUC of 300,000 random pairs is about 0.68, yours {value:.4f}"
