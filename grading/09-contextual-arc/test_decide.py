"""Hidden tests of Exercise 9.1, `decide(scores) -> (choice, confidence)`."""
import numpy as np


def decided(student, scores):
    out = student.decide(np.asarray(scores, np.float64))
    assert isinstance(out, tuple) and len(out) == 2, "it should return (choice, confidence)"
    choice, confidence = (np.asarray(x) for x in out)
    n = np.shape(scores)[0]
    assert choice.shape == (n,) and confidence.shape == (n,), f"expected two arrays of shape ({n},)"
    return choice, confidence.astype(np.float64)


def test_hand_values(student):
    """three candidates with scores log 1, log 2, log 5: candidate 2 at probability 5/8"""
    choice, confidence = decided(student, [np.log([1.0, 2.0, 5.0])])
    assert choice[0] == 2 and abs(confidence[0] - 5 / 8) < 1e-6, f"expected (2, 0.625), got ({choice[0]}, {confidence[0]:.4f})"


def test_random_trials(student):
    """random 20-way trials: the argmax and the softmax probability of it"""
    scores = np.random.default_rng(901).normal(size=(200, 20)) * 3
    choice, confidence = decided(student, scores)
    p = np.exp(scores - scores.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert (choice == scores.argmax(1)).all(), "the choice should be the highest-scoring candidate"
    assert np.allclose(confidence, p.max(1), atol=1e-6), "the confidence should be the chosen candidate's softmax probability"


def test_extreme_scores(student):
    """scores in the thousands (and far apart) give finite confidences"""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        choice, confidence = decided(student, [[5000.0, 4990.0, -3000.0], [-800.0, -800.0, -9000.0]])
    assert np.all(np.isfinite(confidence)), "large scores overflowed"
    assert list(choice) == [0, 0] and abs(confidence[1] - 0.5) < 1e-6
    assert abs(confidence[0] - 1 / (1 + np.exp(-10.0))) < 1e-6
