"""Losses against hand-worked values, brute force, and at the awkward points
(zero distance, mismatched shapes)."""
import itertools

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from cab420utils import losses


def value(x):
    return float(ops.convert_to_numpy(x))


def test_contrastive_hand_worked():
    # same pair at distance 0.5, different pair at 0.25 (inside the margin), different pair at 1.5 (outside).
    same = np.array([1.0, 0.0, 0.0])
    d = np.array([0.5, 0.25, 1.5])
    # squared (Hadsell): (0.5**2 + 0.75**2 + 0) / 3
    assert value(losses.contrastive_loss(same, d, margin=1.0)) == pytest.approx((0.25 + 0.5625) / 3)
    # plain distance (slides): (0.5 + 0.75 + 0) / 3
    assert value(losses.contrastive_loss(same, d, margin=1.0, squared=False)) == pytest.approx(1.25 / 3)
    # a larger margin pushes the far different pair too: (0.25 + 1.75**2 + 0.5**2) / 3
    assert value(losses.contrastive_loss(same, d, margin=2.0)) == pytest.approx((0.25 + 3.0625 + 0.25) / 3)


def test_contrastive_as_keras_loss_matches_function():
    same = np.array([[1.0], [0.0]])
    d = np.array([[0.3], [0.4]])
    assert value(losses.ContrastiveLoss(margin=1.0)(same, d)) == pytest.approx((0.09 + 0.36) / 2)


def test_triplet_margin_hand_worked():
    d_pos = np.array([0.2, 1.0, 0.5])
    d_neg = np.array([1.0, 0.5, 0.6])
    # easy: 0.2-1.0+0.2 < 0 -> 0; hard: 1.0-0.5+0.2 = 0.7; semi-hard: 0.5-0.6+0.2 = 0.1
    assert value(losses.triplet_margin_loss(d_pos, d_neg, margin=0.2)) == pytest.approx(0.8 / 3)


def test_softmax_ratio_hand_worked():
    d_pos, d_neg = np.array([1.0]), np.array([1.0])
    assert value(losses.softmax_ratio_loss(d_pos, d_neg, "mse")) == pytest.approx(0.25)  # p = 1/2
    assert value(losses.softmax_ratio_loss(d_pos, d_neg, "log")) == pytest.approx(np.log(2))
    p = np.exp(2.0) / (np.exp(2.0) + np.exp(0.5))  # Hoffer's d+ for distances 2 and 0.5
    assert value(losses.softmax_ratio_loss(np.array([2.0]), np.array([0.5]))) == pytest.approx(p ** 2, rel=1e-5)
    with pytest.raises(ValueError, match="form"):
        losses.softmax_ratio_loss(d_pos, d_neg, "hinge")


def test_mismatched_shapes_are_refused_clearly():
    with pytest.raises(ValueError, match="same shape"):
        losses.contrastive_loss(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="same shape"):
        losses.triplet_margin_loss(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="same shape"):
        losses.euclidean_distance(np.ones((2, 3)), np.ones((2, 4)))


@pytest.mark.parametrize("fn", [
    lambda a, b: losses.contrastive_loss(np.ones(2), losses.euclidean_distance(a, b)),
    lambda a, b: losses.triplet_margin_loss(losses.euclidean_distance(a, b), losses.euclidean_distance(a, b + 1)),
    lambda a, b: losses.softmax_ratio_loss(losses.euclidean_distance(a, b), losses.euclidean_distance(a, b + 1)),
])
def test_gradient_is_finite_when_embeddings_coincide(fn):
    a = tf.Variable(np.ones((2, 4), np.float32))
    with tf.GradientTape() as tape:
        loss = fn(a, tf.ones((2, 4)))
    grad = tape.gradient(loss, a).numpy()
    assert np.all(np.isfinite(grad))


def test_pairwise_distances_match_numpy_and_are_safe():
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    x[1] = x[0]  # a duplicate: distance exactly 0
    expected = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.testing.assert_allclose(ops.convert_to_numpy(losses.pairwise_distances(x)), expected, atol=1e-3)
    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(losses.pairwise_distances(v))
    assert np.all(np.isfinite(tape.gradient(loss, v).numpy()))


def brute_force(labels, emb, margin, mining):
    d = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(-1))
    n = len(labels)
    values = []
    for a, p in itertools.permutations(range(n), 2):
        if labels[a] != labels[p]:
            continue
        negatives = [d[a, k] for k in range(n) if labels[k] != labels[a]]
        if mining == "all":
            values += [max(d[a, p] - dn + margin, 0) for dn in negatives]
        else:  # semi-hard, TensorFlow Addons' rule
            outside = [dn for dn in negatives if dn > d[a, p]]
            chosen = min(outside) if outside else max(negatives)
            values.append(max(d[a, p] - chosen + margin, 0))
    values = np.array(values)
    if mining == "all":
        return values.sum() / max((values > 1e-16).sum(), 1)
    return values.mean()


@pytest.mark.parametrize("mining", ["all", "semi-hard"])
def test_online_mining_matches_brute_force(mining):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 4)
    emb = rng.normal(size=(12, 5)).astype(np.float32)
    fn = losses.batch_all_triplet_loss if mining == "all" else losses.batch_semi_hard_triplet_loss
    assert value(fn(labels, emb, 0.5)) == pytest.approx(brute_force(labels, emb, 0.5, mining), rel=1e-4)


def test_batch_hard_hand_worked():
    # 1-D embeddings: class 0 at 0 and 1, class 1 at 1.5 and 3.
    labels = np.array([0, 0, 1, 1])
    emb = np.array([[0.0], [1.0], [1.5], [3.0]], np.float32)
    # anchor 0: pos 1, neg 1.5 -> 1-1.5+0.2=-0.3 -> 0; anchor 1: pos 1, neg 0.5 -> 0.7
    # anchor 2: pos 1.5, neg 0.5 -> 1.2;            anchor 3: pos 1.5, neg 2 -> 0 (-0.3)
    assert value(losses.batch_hard_triplet_loss(labels, emb, 0.2)) == pytest.approx((0.7 + 1.2) / 4, rel=1e-5)


def test_online_loss_rejects_unknown_miner():
    with pytest.raises(ValueError, match="mining"):
        losses.OnlineTripletLoss(mining="hardest")


def test_a_margin_that_makes_no_sense_is_refused():
    d = np.ones(3, np.float32)
    labels, emb = np.array([0, 0, 1, 1]), np.eye(4, dtype=np.float32)
    for bad in (0.0, -1.0, float("nan")):          # at 0 different pairs are never pushed apart
        with pytest.raises(ValueError, match="contrastive_loss: margin must be above 0"):
            losses.contrastive_loss(d, d, margin=bad)
        with pytest.raises(ValueError, match="margin must be above 0"):
            losses.batch_contrastive_loss(labels, emb, margin=bad)
        with pytest.raises(ValueError, match="ContrastiveLoss: margin"):
            losses.ContrastiveLoss(margin=bad)
        with pytest.raises(ValueError, match="OnlineContrastiveLoss: margin"):
            losses.OnlineContrastiveLoss(margin=bad)
    for bad in (-0.2, float("inf")):
        with pytest.raises(ValueError, match="triplet_margin_loss: margin must be 0 or more"):
            losses.triplet_margin_loss(d, d, margin=bad)
        for mined in (losses.batch_all_triplet_loss, losses.batch_semi_hard_triplet_loss, losses.batch_hard_triplet_loss):
            with pytest.raises(ValueError, match="margin must be 0 or more"):
                mined(labels, emb, margin=bad)
        with pytest.raises(ValueError, match="TripletMarginLoss: margin"):
            losses.TripletMarginLoss(margin=bad)
        with pytest.raises(ValueError, match="OnlineTripletLoss: margin"):
            losses.OnlineTripletLoss(margin=bad)
    assert value(losses.triplet_margin_loss(d, 2 * d, margin=0)) == 0.0    # margin 0 is a (weak) triplet loss
    assert value(losses.triplet_margin_loss(d, d, margin=np.float32(0.5))) == pytest.approx(0.5)   # NumPy numbers too


def test_batch_contrastive_hand_worked():
    # 1-D embeddings: class 0 at 0 and 0.5, class 1 at 0.75 and 3.
    labels = np.array([0, 0, 1, 1])
    emb = np.array([[0.0], [0.5], [0.75], [3.0]], np.float32)
    # same pairs (each counted both ways, which leaves the mean unchanged): d = 0.5 and 2.25
    # different pairs: d = 0.75, 3, 0.25, 2.5 -> inside margin 1: 0.25 and 0.75 short
    pull_sq, push_sq = (0.5 ** 2 + 2.25 ** 2) / 2, (0.25 ** 2 + 0.75 ** 2) / 4
    assert value(losses.batch_contrastive_loss(labels, emb, 1.0)) == pytest.approx(pull_sq + push_sq, rel=1e-5)
    pull, push = (0.5 + 2.25) / 2, (0.25 + 0.75) / 4
    assert value(losses.batch_contrastive_loss(labels, emb, 1.0, squared=False)) == pytest.approx(pull + push, rel=1e-5)
    as_keras = losses.OnlineContrastiveLoss(margin=1.0)(labels, emb)
    assert value(as_keras) == pytest.approx(pull_sq + push_sq, rel=1e-5)


def test_batch_contrastive_matches_pairs_loss_on_a_balanced_batch():
    # the batch loss is the mean pair loss over all same pairs plus that over all different pairs
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 3)
    emb = rng.normal(size=(9, 4)).astype(np.float32)
    i, j = np.triu_indices(9, 1)
    d = np.linalg.norm(emb[i] - emb[j], axis=1)
    same = labels[i] == labels[j]
    expected = value(losses.contrastive_loss(np.ones(same.sum()), d[same], 1.5)) + \
        value(losses.contrastive_loss(np.zeros((~same).sum()), d[~same], 1.5))
    assert value(losses.batch_contrastive_loss(labels, emb, 1.5)) == pytest.approx(expected, rel=1e-4)


def test_keras_triplet_losses_read_the_triplet_models_output():
    y_pred = np.array([[0.2, 1.0], [1.0, 0.5], [0.5, 0.6]], np.float32)
    ignored = np.zeros(3)
    assert value(losses.TripletMarginLoss(0.2)(ignored, y_pred)) == pytest.approx(0.8 / 3, rel=1e-5)
    expected = value(losses.softmax_ratio_loss(y_pred[:, 0], y_pred[:, 1], "log"))
    assert value(losses.SoftmaxRatioLoss("log")(ignored, y_pred)) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        losses.TripletMarginLoss()(ignored, np.ones((3, 3), np.float32))
    with pytest.raises(ValueError, match="form"):
        losses.SoftmaxRatioLoss("hinge")


@pytest.mark.parametrize("form", ["mse", "log"])
def test_batch_softmax_ratio_is_the_mean_over_every_valid_triplet(form):
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), 3)
    emb = rng.normal(size=(9, 4)).astype(np.float32)
    d = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(-1))
    z = [d[a, p] - d[a, n] for a, p, n in itertools.permutations(range(9), 3)
         if labels[a] == labels[p] and labels[a] != labels[n]]
    z = np.array(z)
    expected = np.mean(1 / (1 + np.exp(-z)) ** 2 if form == "mse" else np.log1p(np.exp(z)))
    got = losses.batch_all_softmax_ratio_loss(labels, emb, form)
    assert value(got) == pytest.approx(expected, rel=1e-4)
    assert value(losses.OnlineSoftmaxRatioLoss(form)(labels, emb)) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="form"):
        losses.OnlineSoftmaxRatioLoss("hinge")
