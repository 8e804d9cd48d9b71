"""Metrics against scikit-learn and tiny hand cases."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.neighbors import KNeighborsClassifier

from cab420utils import metrics
from cab420utils.sampling import PairSet


@pytest.fixture
def scored_pairs():
    rng = np.random.default_rng(0)
    same = rng.integers(0, 2, 2000)
    scores = rng.normal(size=2000) + 1.2 * same
    scores[:50] = np.round(scores[:50])  # ties
    return scores, same


def test_roc_auc_and_curve_match_sklearn(scored_pairs):
    scores, same = scored_pairs
    assert metrics.roc_auc(scores, same) == pytest.approx(roc_auc_score(same, scores), abs=1e-12)
    fpr, tpr, _ = metrics.roc_curve(scores, same)
    sk_fpr, sk_tpr, _ = roc_curve(same, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_hand_cases():
    same = np.array([1, 1, 0, 0])
    assert metrics.roc_auc([0.9, 0.8, 0.1, 0.2], same) == 1.0
    assert metrics.roc_auc([0.1, 0.2, 0.9, 0.8], same) == 0.0
    assert metrics.roc_auc([0.5, 0.5, 0.5, 0.5], same) == 0.5
    assert metrics.equal_error_rate([0.9, 0.8, 0.1, 0.2], same) == 0.0
    # one same pair below one different pair: FAR = FRR = 0.5 at the crossing
    assert metrics.equal_error_rate([0.9, 0.1, 0.5, 0.0], same) == pytest.approx(0.5)
    t = metrics.best_threshold([0.9, 0.8, 0.1, 0.2], same)
    assert 0.2 < t <= 0.8
    assert metrics.accuracy_at_threshold([0.9, 0.8, 0.1, 0.2], same, t) == 1.0


def test_verification_threshold_comes_from_validation(scored_pairs):
    scores, same = scored_pairs
    report = metrics.verification_report(scores, same, scores + 100, same)  # validation shifted by +100
    assert report["threshold (from validation)"] > 50  # chosen on validation, so test accuracy is poor
    assert report["verification accuracy"] == pytest.approx(np.mean(same == 0))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="one entry per pair"):
        metrics.roc_auc([0.1, 0.2], [1, 0, 1])
    with pytest.raises(ValueError, match="both same and different"):
        metrics.roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_auc([np.nan, 0.2], [1, 0])
    with pytest.raises(ValueError, match="match one to one"):
        metrics.identification_report(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="single image"):
        metrics.identification_report(np.eye(3), [0, 0, 1])
    with pytest.raises(ValueError, match=r"\(trials, N\)"):
        metrics.one_shot_accuracy(np.zeros((3, 4)), [0, 1])


def test_p_at_1_matches_leave_one_out_knn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    emb = rng.normal(size=(300, 8)) + labels[:, None] * 0.6
    report = metrics.identification_report(emb, labels)
    correct = 0
    for i in range(len(labels)):  # leave-one-out 1-NN with scikit-learn
        keep = np.arange(len(labels)) != i
        knn = KNeighborsClassifier(1).fit(emb[keep], labels[keep])
        correct += knn.predict(emb[i:i + 1])[0] == labels[i]
    assert report["P@1"] == pytest.approx(correct / len(labels))
    assert report["P@1"] == metrics.precision_at_1(emb, labels)
    assert report["P@1"] <= report["Recall@5"] <= report["Recall@10"]


def test_map_at_r_hand_case():
    # 1-D points, no ties: class A at 0, 1, 10; class B at 2.2, 11, 12.5.  R = 2 for every query.
    emb = np.array([[0.0], [1.0], [10.0], [2.2], [11.0], [12.5]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    report = metrics.identification_report(emb, labels, ks=(1,))
    # two nearest (hits): 0 -> 1(A), 2.2(B): AP 1/2;   1 -> 0(A), 2.2(B): 1/2;   10 -> 11(B), 12.5(B): 0
    # 2.2 -> 1(A), 0(A): 0;   11 -> 10(A), 12.5(B): precision 1/2 at rank 2, AP (1/2)/2;   12.5 -> 11(B), 10(A): 1/2
    assert report["MAP@R"] == pytest.approx((0.5 + 0.5 + 0 + 0 + 0.25 + 0.5) / 6)
    assert report["R-precision"] == pytest.approx((0.5 + 0.5 + 0 + 0 + 0.5 + 0.5) / 6)


def test_embedding_report_uses_distances():
    emb = np.array([[0.0, 0], [0, 0.1], [5, 5], [5, 5.1]])
    labels = np.array([0, 0, 1, 1])
    pairs = PairSet(np.array([0, 0, 2, 1]), np.array([1, 2, 3, 3]), np.array([1.0, 0, 1, 0]))
    report = metrics.embedding_report(emb, labels, pairs, emb, pairs)
    assert report["ROC AUC"] == 1.0 and report["P@1"] == 1.0 and report["verification accuracy"] == 1.0


def test_one_shot_accuracy():
    scores = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    assert metrics.one_shot_accuracy(scores, [1, 2]) == 0.5


def test_squared_distances_match_brute_force_and_refuse_mismatched_widths():
    rng = np.random.default_rng(5)
    q, r = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    expected = ((q[:, None] - r[None]) ** 2).sum(-1)
    np.testing.assert_allclose(metrics.squared_distances(q, r), expected, atol=1e-12)
    assert metrics.squared_distances(q, q).min() >= 0.0   # clamped: the diagonal is 0, never -1e-16
    with pytest.raises(ValueError, match="same D"):
        metrics.squared_distances(q, rng.normal(size=(6, 4)))


def test_linear_probe_picks_its_strength_on_validation():
    # The probe must score on test exactly the C that validation prefers, fitted on the
    # training features alone; without validation it is scikit-learn's C = 1.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)

    def draw(n):
        labels = rng.integers(0, 2, n)
        features = rng.normal(size=(n, 200))
        features[:, :20] += 0.6 * labels[:, None]
        return features, labels

    (xtr, ytr), (xva, yva), (xte, yte) = draw(60), draw(400), draw(2000)

    def accuracy(c, x, y):
        return (make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(xtr, ytr).predict(x) == y).mean()

    strengths = (1e-4, 0.01, 1.0)
    chosen = strengths[int(np.argmax([accuracy(c, xva, yva) for c in strengths]))]
    tuned = metrics.linear_probe(xtr, ytr, xte, yte, validation=(xva, yva), strengths=strengths)
    assert chosen != 1e-4 and tuned == accuracy(chosen, xte, yte)
    assert metrics.linear_probe(xtr, ytr, xte, yte) == accuracy(1.0, xte, yte)
    # so strong a regularisation that every weight is ~0: chance, so the strengths are really used
    assert metrics.linear_probe(xtr, ytr, xte, yte, validation=(xva, yva), strengths=(1e-4,)) < 0.55


def test_linear_probe_refuses_mismatched_inputs():
    x, y = np.zeros((10, 3)), np.arange(10) % 2
    with pytest.raises(ValueError, match="differ in length"):
        metrics.linear_probe(x, y[:9], x, y)
    with pytest.raises(ValueError, match="same length"):
        metrics.linear_probe(x, y, x, y, validation=(x, y[:5]))
    with pytest.raises(ValueError, match="positive"):
        metrics.linear_probe(x, y, x, y, validation=(x, y), strengths=(0.0,))


def test_sign_test_and_raw_pixels_refuse_what_they_cannot_mean():
    assert metrics.sign_test(3.0, 1) == metrics.sign_test(3, 1) == pytest.approx(0.625)   # 2 * 5/16
    assert metrics.sign_test(np.int64(3), np.int64(1)) == pytest.approx(0.625)
    for wins in (2.5, float("nan"), True):
        with pytest.raises(ValueError, match="whole numbers"):
            metrics.sign_test(wins, 3)
    with pytest.raises(ValueError, match=r"one image\? add a first axis"):
        metrics.raw_pixels(np.zeros(784))
    assert metrics.raw_pixels(np.full((2, 28, 28), 255, np.uint8)).shape == (2, 784)


def test_rankings_and_thresholds_refuse_what_cannot_be_ranked():
    with pytest.raises(ValueError, match="NaN or infinite.*cannot be ranked"):
        metrics.one_shot_accuracy(np.array([[np.nan, 1.0], [0.0, 1.0]]), np.array([0, 1]))   # argmax would pick NaN
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        metrics.accuracy_at_threshold(np.array([0.1, 0.9]), np.array([0, 1]), np.nan)
    e, labels = np.random.default_rng(0).random((20, 3)), np.repeat(np.arange(4), 5)
    for ks in ((0,), (5, -1), (2.5,)):          # Recall@0 means nothing (it used to vanish from the report)
        with pytest.raises(ValueError, match="whole number, 1 or more"):
            metrics.identification_report(e, labels, ks=ks)
    assert metrics.identification_report(e, labels, ks=(1, 25))["Recall@25"] == 1.0   # beyond the 19 others: all
