"""Gallery enrolment and identification on tiny hand-made embeddings."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cab420utils import enrolment  # noqa: E402


def test_triplet_kind_boundaries():
    # d_pos = 1, margin 0.5: hard up to 1 (inclusive), semi-hard in (1, 1.5), easy from 1.5
    d_neg = np.array([0.2, 1.0, 1.2, 1.49, 1.5, 3.0])
    kinds = enrolment.triplet_kind(1.0, d_neg, margin=0.5)
    assert kinds.tolist() == ["hard", "hard", "semi-hard", "semi-hard", "easy", "easy"]
    # the kinds agree with the margin loss: zero exactly for easy ones, at least the margin for hard ones
    loss = np.maximum(1.0 - d_neg + 0.5, 0)
    assert np.all((loss == 0) == (kinds == "easy"))
    assert np.all((loss >= 0.5) == (kinds == "hard"))
    with pytest.raises(ValueError, match="margin"):
        enrolment.triplet_kind(1.0, d_neg, margin=0)


def test_negatives_by_kind_picks_one_of_each():
    # 1-D embeddings: anchor at 0, positive at 1 (d_pos = 1), margin 0.5
    e = np.array([[0.0], [1.0], [0.5], [1.2], [4.0], [-0.9]])
    y = np.array([0, 0, 1, 1, 2, 2])
    out = enrolment.negatives_by_kind(e, y, anchor=0, positive=1, margin=0.5)
    assert out["d_pos"] == pytest.approx(1.0)
    assert out["hard"] == (2, pytest.approx(0.5))  # first hard one in index order (index 5 is hard too)
    assert out["semi-hard"] == (3, pytest.approx(1.2))
    assert out["easy"] == (4, pytest.approx(4.0))
    # with a generator a hard negative is drawn from both candidates
    drawn = {enrolment.negatives_by_kind(e, y, 0, 1, 0.5, rng=np.random.default_rng(s))["hard"][0] for s in range(20)}
    assert drawn == {2, 5}
    # a kind that does not occur is left out
    assert "easy" not in enrolment.negatives_by_kind(e[:4], y[:4], 0, 1, 0.5)
    with pytest.raises(ValueError, match="same class"):
        enrolment.negatives_by_kind(e, y, anchor=0, positive=2, margin=0.5)


def test_choose_gallery_k_per_class_without_replacement():
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 1, 2, 0])
    idx = enrolment.choose_gallery(labels, 2, np.random.default_rng(0))
    assert labels[idx].tolist() == [0, 0, 1, 1, 2, 2]  # grouped by class, in class order
    assert len(set(idx.tolist())) == 6
    only = enrolment.choose_gallery(labels, 3, np.random.default_rng(1), classes=[2, 0])
    assert labels[only].tolist() == [2, 2, 2, 0, 0, 0]
    # the same generator seed gives the same gallery
    assert np.array_equal(enrolment.choose_gallery(labels, 2, np.random.default_rng(5)),
                          enrolment.choose_gallery(labels, 2, np.random.default_rng(5)))
    with pytest.raises(ValueError, match="fewer than k = 4"):
        enrolment.choose_gallery(labels, 4, np.random.default_rng(0), classes=[1])
    with pytest.raises(ValueError, match="at least 1"):
        enrolment.choose_gallery(labels, 0, np.random.default_rng(0))


def test_class_means_by_hand():
    e = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [1.0, 1.0]])
    classes, means = enrolment.class_means(e, [3, 3, 7, 3])
    assert classes.tolist() == [3, 7]
    np.testing.assert_allclose(means, [[1.0, 1 / 3], [10.0, 10.0]])
    with pytest.raises(ValueError, match=r"class_means needs \(N, D\) embeddings and N labels; got \(4, 2\) and 3"):
        enrolment.class_means(e, [3, 3, 7])


@pytest.fixture
def gallery():
    # class 0: two images at x = 0 and x = 10 (a spread-out class); class 1: two images at x = 4 and x = 6
    e = np.array([[0.0], [10.0], [4.0], [6.0]])
    return enrolment.Gallery(e, np.array([0, 0, 1, 1]), np.array([10, 11, 12, 13]))


def test_nearest_image_and_nearest_mean_differ(gallery):
    queries = np.array([[1.0], [4.5], [9.0], [5.0]])
    # nearest image: 1 -> 0 (class 0); 4.5 -> 4 (class 1); 9 -> 10 (class 0); 5 -> 4 or 6 (class 1)
    assert enrolment.identify(queries, gallery, "nearest").tolist() == [0, 1, 0, 1]
    # the class means are 5 and 5 here, so use a gallery where the two rules disagree
    g = enrolment.Gallery(np.array([[0.0], [10.0], [6.0], [7.0]]), np.array([0, 0, 1, 1]), np.arange(4))
    # means: class 0 at 5, class 1 at 6.5; a query at 9 is nearest to image 10 (class 0) but to mean 6.5 (class 1)
    assert enrolment.identify([[9.0]], g, "nearest").tolist() == [0]
    assert enrolment.identify([[9.0]], g, "mean").tolist() == [1]
    positions, distances = enrolment.nearest([[9.0]], g, n=3)
    assert positions.tolist() == [[1, 3, 2]]
    np.testing.assert_allclose(distances, [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="rule"):
        enrolment.identify(queries, gallery, "vote")
    with pytest.raises(ValueError, match="same D"):
        enrolment.identify(np.zeros((2, 3)), gallery, "mean")


def test_one_example_per_class_rules_agree():
    rng = np.random.default_rng(0)
    g = enrolment.Gallery(rng.normal(size=(5, 4)), np.arange(5), np.arange(5))
    q = rng.normal(size=(200, 4))
    assert np.array_equal(enrolment.identify(q, g, "nearest"), enrolment.identify(q, g, "mean"))


def test_enrol_and_accuracy_by_group():
    # three well-separated clusters in 2-D; class 2 plays the unseen class
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    rng = np.random.default_rng(0)
    pool_y = np.repeat([0, 1, 2], 20)
    pool = centres[pool_y] + rng.normal(scale=0.5, size=(60, 2))
    g = enrolment.enrol(pool, pool_y, 3, rng)
    assert len(g) == 9 and g.classes.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(g.embeddings, pool[g.indices])
    np.testing.assert_array_equal(g.labels, pool_y[g.indices])
    query_y = np.array([0, 1, 2, 2])
    queries = centres[query_y]
    predicted = enrolment.identify(queries, g, "mean")
    assert predicted.tolist() == [0, 1, 2, 2]
    wrong = np.array([0, 0, 2, 0])  # one seen query wrong, one unseen query wrong
    acc = enrolment.accuracy_by_group(query_y, wrong, {"seen": [0, 1], "unseen": [2], "none": [5]})
    assert acc["seen"] == 0.5 and acc["unseen"] == 0.5 and np.isnan(acc["none"])


def test_enrolment_trials_rows():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pool_y = np.repeat([0, 1, 2], 10)
    pool = centres[pool_y] + np.random.default_rng(1).normal(scale=0.5, size=(30, 2))
    rows = enrolment.enrolment_trials(pool, pool_y, centres, np.array([0, 1, 2]), unseen_classes=[2],
                                      ks=(1, 5), repeats=3)
    assert len(rows) == 2 * 3 * 2  # ks x repeats x rules
    assert {(r["k"], r["rule"]) for r in rows} == {(1, "nearest"), (1, "mean"), (5, "nearest"), (5, "mean")}
    assert all(r["unseen"] == 1.0 and r["seen"] == 1.0 and r["all"] == 1.0 for r in rows)
    # reproducible: the same seed gives the same rows
    again = enrolment.enrolment_trials(pool, pool_y, centres, np.array([0, 1, 2]), [2], ks=(1, 5), repeats=3)
    assert rows == again


def test_figures_draw():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (12, 28, 28))
    labels = np.repeat(np.arange(3), 4)
    e = labels[:, None] * 1.0 + rng.normal(scale=0.3, size=(12, 2))
    names = ["a", "b", "c"]
    neg = enrolment.negatives_by_kind(e, labels, 0, 1, margin=0.5)
    assert enrolment.show_triplet_kinds(images, labels, 0, 1, neg, names, 0.5).axes
    g = enrolment.enrol(e, labels, 2, rng)
    assert len(enrolment.show_gallery(images, g, names, unseen_classes=[2]).axes) == 3 * 2
    fig = enrolment.show_identifications(images, labels, e, images, g, [0, 5, 9], names, n_neighbours=3,
                                         unseen_classes=[2])
    assert len(fig.axes) == 3 * 4
    plt.close("all")
