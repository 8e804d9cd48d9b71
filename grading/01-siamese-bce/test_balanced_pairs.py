"""Hidden tests of Exercise 1.1, `balanced_pairs(labels, n_pairs, rng) -> (a, b, same)`.

Each test gets the student's notebook as `student` and asserts with a message
that says, in plain words, what is wrong.
"""

import numpy as np

# Class ids that are neither 0..k-1 nor sorted: a sampler must not assume either.
LABELS = np.random.default_rng(11).permutation(np.repeat([30, 10, 20, 50], 25))


def draw(student, labels, n_pairs, seed=0):
    result = student.balanced_pairs(np.asarray(labels), n_pairs, np.random.default_rng(seed))
    assert isinstance(result, (tuple, list)) and len(result) == 3, "it should return three arrays: (a, b, same)"
    a, b, same = (np.asarray(x).reshape(-1) for x in result)
    return a, b, same


def test_lengths_and_types(student):
    """three arrays of one entry per pair, with integer indices into the labels"""
    a, b, same = draw(student, LABELS, 1001)
    assert len(a) == len(b) == len(same) == 1001, f"asked for 1001 pairs, got lengths {len(a)}, {len(b)}, {len(same)}"
    assert np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer), \
        f"a and b should hold integer indices, got {a.dtype} and {b.dtype}"
    assert min(a.min(), b.min()) >= 0 and max(a.max(), b.max()) < len(LABELS), \
        "some indices are outside 0..len(labels)-1"


def test_flags_match_labels(student):
    """`same` is 1 exactly for the pairs whose two labels agree (shuffled, non-contiguous class ids)"""
    a, b, same = draw(student, LABELS, 2000)
    wrong = int(np.sum(same.astype(float) != (LABELS[a] == LABELS[b])))
    assert wrong == 0, f"`same` disagrees with the labels in {wrong} of 2000 pairs"


def test_half_same(student):
    """half the pairs are same-class, for even and odd numbers of pairs"""
    for n in (10, 1000, 1001):
        a, b, _ = draw(student, LABELS, n)
        n_same = int(np.sum(LABELS[a] == LABELS[b]))
        assert abs(n_same - n / 2) <= 0.5, f"{n_same} of {n} pairs are same-class; half should be"


def test_no_self_pairs(student):
    """a same pair is two different images, even in a class of only two"""
    labels = np.r_[np.zeros(2, int), np.ones(3, int), np.full(40, 2)]
    a, b, _ = draw(student, labels, 4000)
    assert not np.any(a == b), f"{int(np.sum(a == b))} pairs pair an image with itself"
    small = (labels[a] == 0) & (labels[b] == 0)
    assert small.any(), "the class of two images never appears in a same pair of 4000"


def test_classes_spread(student):
    """with ten equal classes, each takes a fair share of same and of different pairs"""
    labels = np.repeat(np.arange(10), 100)
    a, b, _ = draw(student, labels, 20000)
    same = labels[a] == labels[b]
    share_same = np.bincount(labels[a][same], minlength=10) / same.sum()
    ends = np.r_[labels[a][~same], labels[b][~same]]
    share_diff = np.bincount(ends, minlength=10) / len(ends)
    assert share_same.min() > 0.07 and share_same.max() < 0.13, \
        f"shares of same pairs per class range from {share_same.min():.3f} to {share_same.max():.3f}; 0.1 each expected"
    assert share_diff.min() > 0.07 and share_diff.max() < 0.13, \
        f"shares of different-pair images per class range from {share_diff.min():.3f} to {share_diff.max():.3f}"
    assert len(set(zip(a[same].tolist(), b[same].tolist()))) > 0.9 * same.sum(), \
        "the same pairs repeat a lot: are the images within a class drawn at random?"


def test_seeded(student):
    """the same seed gives the same pairs; another seed gives others"""
    first, again, other = draw(student, LABELS, 300, 5), draw(student, LABELS, 300, 5), draw(student, LABELS, 300, 6)
    assert all(np.array_equal(x, y) for x, y in zip(first, again)), \
        "two generators seeded alike gave different pairs: draw every random number from `rng`"
    assert not all(np.array_equal(x, y) for x, y in zip(first, other)), "different seeds gave the same pairs"


def test_vectorised(student):
    """500,000 pairs from 60,000 labels within 5 s, or 10 times the course's own time on a slow machine
    (a Python loop over pairs takes far longer)"""
    from cab420utils import sampling
    from cab420utils.grading import speed

    labels = np.random.default_rng(0).integers(0, 10, 60_000)
    timing = speed.time_against_course(lambda *args: draw(student, *args), sampling.make_pairs,
                                       lambda: (labels, 500_000, np.random.default_rng(0)), budget=5.0)
    assert not timing.too_slow, timing.describe("500,000 pairs")
