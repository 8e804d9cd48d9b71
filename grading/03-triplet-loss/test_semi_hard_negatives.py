"""Hidden tests of Exercise 3.2, `semi_hard_negatives(distances, labels) -> (anchors, positives, negatives)`."""
import numpy as np


def batch(seed, sizes):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    points = rng.normal(size=(len(labels), 3)) + labels[:, None] * 0.5
    return np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)), labels


def mine(student, distances, labels):
    result = student.semi_hard_negatives(np.asarray(distances), np.asarray(labels))
    assert isinstance(result, (tuple, list)) and len(result) == 3, "it should return three arrays"
    a, p, n = (np.asarray(x).reshape(-1) for x in result)
    assert len(a) == len(p) == len(n), f"the arrays should be equally long, got {len(a)}, {len(p)}, {len(n)}"
    return a, p, n


def expected_negative(distances, labels, a, p):
    negatives = np.flatnonzero(labels != labels[a])
    further = negatives[distances[a, negatives] > distances[a, p]]
    if len(further):
        return further[np.argmin(distances[a, further])]
    return negatives[np.argmax(distances[a, negatives])]


def test_every_pair_once(student):
    """one triplet for each ordered anchor-positive pair, with integer indices"""
    distances, labels = batch(41, [4, 4, 4])
    a, p, n = mine(student, distances, labels)
    assert all(np.issubdtype(x.dtype, np.integer) for x in (a, p, n)), "the indices should be integers"
    pairs = list(zip(a.tolist(), p.tolist()))
    expected = {(i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j and labels[i] == labels[j]}
    assert len(pairs) == len(set(pairs)), "some anchor-positive pairs appear twice"
    assert set(pairs) == expected, f"{len(expected)} anchor-positive pairs expected, {len(set(pairs) & expected)} found"


def test_negatives_from_other_classes(student):
    """every negative has another class than its anchor"""
    distances, labels = batch(42, [5, 3, 6])
    a, _, n = mine(student, distances, labels)
    assert np.all(labels[a] != labels[n]), f"{int(np.sum(labels[a] == labels[n]))} negatives share the anchor's class"


def test_semi_hard_choice(student):
    """each negative is the closest one further than the positive, on random batches"""
    for seed in range(43, 48):
        distances, labels = batch(seed, [4, 5, 3, 4])
        a, p, n = mine(student, distances, labels)
        for i, j, k in zip(a.tolist(), p.tolist(), n.tolist()):
            want = expected_negative(distances, labels, i, j)
            assert distances[i, k] == distances[i, want], (
                f"anchor {i}, positive {j} (d = {distances[i, j]:.3f}): negative {k} at {distances[i, k]:.3f}, "
                f"but the semi-hard rule picks the one at {distances[i, want]:.3f}")


def test_fallback(student):
    """with no negative further than the positive, the furthest negative"""
    distances = np.array([[0.0, 3.0, 1.0, 2.0, 0.5],
                          [3.0, 0.0, 2.5, 1.5, 2.0],
                          [1.0, 2.5, 0.0, 1.0, 0.7],
                          [2.0, 1.5, 1.0, 0.0, 1.2],
                          [0.5, 2.0, 0.7, 1.2, 0.0]])
    labels = np.array([0, 0, 1, 1, 2])
    a, p, n = mine(student, distances, labels)
    chosen = {(i, j): k for i, j, k in zip(a.tolist(), p.tolist(), n.tolist())}
    assert chosen.get((0, 1)) == 3, \
        f"anchor 0, positive 1 at 3.0, negatives at 1.0, 2.0, 0.5: the furthest is 3, yours {chosen.get((0, 1))}"
    assert chosen.get((1, 0)) == 2, \
        f"anchor 1, positive 0 at 3.0: the furthest negative is 2, yours {chosen.get((1, 0))}"


def test_single_image_class(student):
    """a class with one image gives no pairs but serves as a negative"""
    distances, labels = batch(48, [1, 4, 4])
    a, p, n = mine(student, distances, labels)
    lone = np.flatnonzero(labels == np.argmin(np.bincount(labels)))[0]
    assert lone not in a and lone not in p, "the single image of its class cannot be an anchor or a positive"
    assert len(a) == 24, f"two classes of four give 24 anchor-positive pairs, yours {len(a)}"
