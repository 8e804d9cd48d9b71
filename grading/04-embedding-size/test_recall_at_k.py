"""Hidden tests of Exercise 4.2, `recall_at_k(embeddings, labels, k) -> float`."""

import numpy as np


def recall(student, embeddings, labels, k):
    value = student.recall_at_k(np.asarray(embeddings, dtype=float), np.asarray(labels), k)
    assert np.ndim(value) == 0, f"it should return one number, got shape {np.shape(value)}"
    return float(value)


def brute_force(embeddings, labels, k):
    e, labels = np.asarray(embeddings, float), np.asarray(labels)
    hits = []
    for i in range(len(e)):
        d = np.linalg.norm(e - e[i], axis=1)
        d[i] = np.inf
        hits.append(np.any(labels[np.argsort(d, kind="stable")[:k]] == labels[i]))
    return float(np.mean(hits))


def test_hand_cases(student):
    """hand-worked points on a plane"""
    points = [[0, 0], [0, 1], [5, 0], [5, 2], [0, 3]]
    labels = [7, 3, 7, 3, 3]
    # nearest others: (0,0)->(0,1) 3; (0,1)->(0,0) 7; (5,0)->(5,2) 3; (5,2)->(5,0) 7; (0,3)->(0,1) 3
    got = recall(student, points, labels, 1)
    assert abs(got - 0.2) < 1e-9, f"points {points} of classes {labels}: Recall@1 0.2, yours {got:.4f}"
    got = recall(student, points, labels, 2)
    assert abs(got - 0.8) < 1e-9, f"the same points: Recall@2 0.8, yours {got:.4f}"
    got = recall(student, points, labels, 4)
    assert abs(got - 1.0) < 1e-9, f"the same points: Recall@4 1, yours {got:.4f}"


def test_leave_one_out(student):
    """an image is never its own neighbour"""
    rng = np.random.default_rng(81)
    e = rng.normal(size=(40, 3)) * 10
    labels = np.arange(40)  # every image its own class: no image has a classmate
    assert recall(student, e, np.r_[labels[:-1], 0], 3) <= 2 / 40 + 1e-9, \
        "with one classmate pair among 40 images at most 2 of 40 can find theirs; is an image its own neighbour?"


def test_matches_brute_force(student):
    """agrees with a loop over the queries on random embeddings, for several K"""
    rng = np.random.default_rng(82)
    labels = rng.integers(0, 5, 300)
    e = rng.normal(size=(300, 6)) + labels[:, None] * 0.3
    for k in (1, 3, 10, 50):
        got, expected = recall(student, e, labels, k), brute_force(e, labels, k)
        assert abs(got - expected) < 1e-9, f"300 random points, K = {k}: Recall {expected:.4f}, yours {got:.4f}"


def test_grows_with_k(student):
    """Recall@K never falls as K grows, and reaches 1 when K covers everything"""
    rng = np.random.default_rng(83)
    labels = rng.integers(0, 4, 120)
    e = rng.normal(size=(120, 2))
    values = [recall(student, e, labels, k) for k in (1, 2, 5, 20, 119)]
    assert all(a <= b + 1e-12 for a, b in zip(values, values[1:])), f"Recall@K fell as K grew: {np.round(values, 4)}"
    assert abs(values[-1] - 1) < 1e-9, "with K = all the other images every query finds its class"


def test_inputs(student):
    """takes float32 arrays and string labels, and returns a float"""
    e = np.array([[0.0], [0.1], [5.0], [5.2]], np.float32)
    value = student.recall_at_k(e, np.array(["cat", "cat", "dog", "dog"]), 1)
    assert isinstance(value, (float, np.floating)), f"it should return a float, not {type(value).__name__}"
    assert abs(float(value) - 1) < 1e-9, f"two tight pairs of one class each: Recall@1 1, yours {float(value):.4f}"


def test_vectorised(student):
    """6,000 images of 16 numbers within 5 s, or 10 times the course's own time on a slow machine"""
    from cab420utils import metrics
    from cab420utils.grading import speed

    rng = np.random.default_rng(84)
    labels = rng.integers(0, 10, 6000)
    e = rng.normal(size=(6000, 16)).astype(np.float32)
    timing = speed.time_against_course(lambda *args: recall(student, *args),
                                       lambda x, y, k: metrics.identification_report(x, y, ks=(k,)),
                                       lambda: (e, labels, 5), budget=5.0)
    assert not timing.too_slow, timing.describe("6,000 images")
