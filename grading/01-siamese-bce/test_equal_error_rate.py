"""Hidden tests of Exercise 1.2, `equal_error_rate(scores, same) -> float`."""
import numpy as np


def eer(student, scores, same):
    value = student.equal_error_rate(np.asarray(scores, dtype=float), np.asarray(same))
    assert np.ndim(value) == 0, f"it should return one number, got shape {np.shape(value)}"
    return float(value)


def reference(scores, same):
    from cab420utils import metrics

    return metrics.equal_error_rate(scores, same)


def test_hand_cases(student):
    """hand-worked cases where false accepts and false rejects meet exactly"""
    cases = [([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [1, 1, 0, 1, 0, 0], 1 / 3),
             ([0.9, 0.8, 0.7, 0.1, 0.05], [1, 0, 1, 0, 0], 1 / 3),
             ([0.4, 0.3, 0.2, 0.1], [1, 0, 1, 0], 0.5)]
    for scores, same, expected in cases:
        value = eer(student, scores, same)
        assert abs(value - expected) < 1e-6, f"scores {scores} for pairs {same}: EER {expected:.4f}, yours {value:.4f}"


def test_extremes(student):
    """perfect scores give 0, reversed scores give 1"""
    value = eer(student, [0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert abs(value) < 1e-6, f"every same pair above every different pair: EER 0, yours {value:.4f}"
    value = eer(student, [0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])
    assert abs(value - 1) < 1e-6, f"every same pair below every different pair: EER 1, yours {value:.4f}"


def test_ties(student):
    """tied scores are accepted or rejected together"""
    value = eer(student, [0.5] * 8, [1, 0] * 4)
    assert abs(value - 0.5) < 1e-6, f"all scores tied: EER 0.5, yours {value:.4f}"
    scores, same = [1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0]
    value = eer(student, scores, same)
    assert abs(value - 1 / 3) < 1e-6, f"two tied blocks of three: EER 1/3, yours {value:.4f}"


def test_order_only_and_symmetric(student):
    """depends only on the order of the scores, and is symmetric in same/different"""
    rng = np.random.default_rng(21)
    same = rng.random(600) < 0.3
    scores = rng.normal(same * 1.0, 1.0)
    plain = eer(student, scores, same)
    assert abs(plain - eer(student, 5 * scores + 3, same)) < 1e-9, "rescaling the scores changed the EER"
    assert abs(plain - eer(student, np.arctan(scores), same)) < 1e-9, "a monotone squashing changed the EER"
    assert abs(plain - eer(student, -scores, ~same)) < 1e-6, \
        "negating the scores and swapping same/different changed the EER"


def test_matches_reference(student):
    """agrees with the course's metrics on large random sets, balanced or not"""
    rng = np.random.default_rng(22)
    for n, fraction, shift in ((20_000, 0.5, 1.0), (5_000, 0.1, 2.0), (3_000, 0.8, 0.3)):
        same = rng.random(n) < fraction
        scores = rng.normal(same * shift, 1.0)
        value, expected = eer(student, scores, same), reference(scores, same)
        assert abs(value - expected) < 0.005, \
            f"{n} random pairs ({fraction:.0%} same): EER {expected:.4f}, yours {value:.4f}"


def test_inputs(student):
    """takes lists, booleans and integers for `same`, and returns a float"""
    value = student.equal_error_rate([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [True, True, False, True, False, False])
    assert abs(float(value) - 1 / 3) < 1e-6, f"plain lists with booleans: EER 1/3, yours {float(value):.4f}"
    assert isinstance(value, (float, np.floating)), f"it should return a float, not {type(value).__name__}"
