"""cab420utils.contrasting: the spatial-contrasting and reference-softmax losses
against hand-worked values and at coinciding embeddings; the patch sampler's
shapes, determinism and bounds; clear errors on bad input."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from cab420utils import contrasting as C


def value(x):
    return ops.convert_to_numpy(x)


# --------------------------------------------------------------------------- losses

def test_spatial_contrasting_hand_worked():
    # 1-D embeddings: first patches at 0 and 1, second patches at 0 and 3.
    # distances [[0, 3], [1, 2]] -> logits [[0, -3], [-1, -2]]
    # rows:    log(1 + e^-3),  log(1 + e)      (image 1's second patch is farther than image 0's)
    # columns: log(1 + e^-1),  log(1 + e^-1)
    first, second = np.array([[0.0], [1.0]]), np.array([[0.0], [3.0]])
    expected = 0.25 * (math.log1p(math.exp(-3)) + math.log1p(math.e) + 2 * math.log1p(math.exp(-1)))
    assert float(value(C.spatial_contrasting_loss(first, second))) == pytest.approx(expected, abs=1e-5)
    assert expected == pytest.approx(0.497093, abs=1e-6)


def test_spatial_contrasting_limits():
    # every embedding the same: each softmax is uniform over the batch, loss log N
    same = np.zeros((5, 3))
    assert float(value(C.spatial_contrasting_loss(same, same))) == pytest.approx(math.log(5), abs=1e-5)
    # pairs far apart from the other pairs: nothing to confuse, loss ~0
    far = np.arange(4)[:, None] * 100.0 * np.ones((1, 2))
    assert float(value(C.spatial_contrasting_loss(far, far + 0.1))) == pytest.approx(0.0, abs=1e-6)


def test_spatial_contrasting_keras_loss_matches_function():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 4)).astype("float32"), rng.normal(size=(6, 4)).astype("float32")
    y_pred = np.concatenate([a, b], axis=1)
    keras_loss = C.SpatialContrastingLoss()(np.zeros(6), y_pred)
    assert float(value(keras_loss)) == pytest.approx(float(value(C.spatial_contrasting_loss(a, b))), rel=1e-5)


def test_cross_distances_brute_force_and_clamped():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    brute = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    np.testing.assert_allclose(value(C.cross_distances(a, b)), brute, rtol=1e-5, atol=1e-5)
    # large, nearly equal vectors: |a|^2 + |b|^2 - 2ab rounds below zero in float32 without the clamp
    big = np.full((3, 8), 1e4) + rng.normal(size=(3, 8)) * 1e-3
    assert (value(C.cross_squared_distances(big, big)) >= 0).all()


def _gradient_is_finite(loss_fn, *tensors):
    variables = [tf.Variable(np.asarray(t, dtype="float32")) for t in tensors]
    with tf.GradientTape() as tape:
        loss = loss_fn(*variables)
    grads = tape.gradient(loss, variables)
    return np.isfinite(float(loss)) and all(np.isfinite(g.numpy()).all() for g in grads)


def test_no_nan_when_embeddings_coincide():
    same = np.ones((4, 3))
    assert _gradient_is_finite(C.spatial_contrasting_loss, same, same)
    refs = np.ones((3, 3))
    assert _gradient_is_finite(lambda x, r: C.semi_supervised_contrasting_loss(x, np.array([0, 1, 2, 0]), x, r)[0],
                               same, refs)


def test_reference_softmax_hand_worked():
    # one embedding at the origin; references at (1, 0) and (0, 2): squared distances 1 and 4
    log_p = value(C.reference_log_probs(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])))[0]
    p0 = 1 / (1 + math.exp(-3))
    np.testing.assert_allclose(np.exp(log_p), [p0, 1 - p0], rtol=1e-6)
    entropy = -(p0 * math.log(p0) + (1 - p0) * math.log(1 - p0))
    assert float(value(C.entropy_from_log_probs(log_p))) == pytest.approx(entropy, rel=1e-5)
    assert entropy == pytest.approx(0.190865, abs=1e-6)
    # labelled as class 1: cross-entropy -log(1 - p0) = log(1 + e^3)
    ce = C.reference_cross_entropy(np.array([1]), log_p[None])
    assert float(value(ce)) == pytest.approx(math.log1p(math.exp(3)), rel=1e-5)


def test_entropy_of_a_certain_distribution_is_zero_not_nan():
    # a reference at distance 0 and one very far: p = (1, ~0), log p = (0, ~-1e4)
    log_p = C.reference_log_probs(np.array([[0.0]]), np.array([[0.0], [100.0]]))
    assert float(value(C.entropy_from_log_probs(log_p))[0]) == pytest.approx(0.0, abs=1e-6)


def test_semi_supervised_loss_parts_and_weight():
    refs = np.array([[0.0, 0.0], [3.0, 0.0]])
    labelled, labels = np.array([[0.5, 0.0], [2.0, 0.0]]), np.array([0, 1])
    unlabelled = np.array([[1.5, 0.0]])                    # halfway: entropy log 2
    total, ce, ent = (float(value(v)) for v in C.semi_supervised_contrasting_loss(labelled, labels, unlabelled, refs))
    assert ent == pytest.approx(math.log(2), rel=1e-5)
    # -log p: 0.25 vs 6.25 -> log(1 + e^-6); 4 vs 1 -> log(1 + e^-3)
    assert ce == pytest.approx((math.log1p(math.exp(-6)) + math.log1p(math.exp(-3))) / 2, rel=1e-5)
    assert total == pytest.approx(ce + ent, rel=1e-6)
    total0 = float(value(C.semi_supervised_contrasting_loss(labelled, labels, unlabelled, refs, 0.0)[0]))
    assert total0 == pytest.approx(ce, rel=1e-6)


def test_loss_errors_are_clear():
    with pytest.raises(ValueError, match="same shape"):
        C.spatial_contrasting_loss(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="differ in size"):
        C.cross_squared_distances(np.zeros((3, 2)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        C.cross_squared_distances(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="2 \\* D"):
        C.SpatialContrastingLoss()(np.zeros(2), np.zeros((2, 3), "float32"))


# --------------------------------------------------------------------------- patches

def _images(n=6, size=28, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size)).astype(np.uint8)


def test_patch_pairs_shapes_bounds_and_content():
    images = _images()
    pairs = C.sample_patch_pairs(images, 14, np.random.default_rng(0), flip=False)
    assert pairs.first.shape == pairs.second.shape == (6, 14, 14, 1)
    for corners in (pairs.corners_first, pairs.corners_second):
        assert corners.shape == (6, 2) and corners.min() >= 0 and corners.max() <= 28 - 14
    for i, (r, c) in enumerate(pairs.corners_first):
        np.testing.assert_array_equal(pairs.first[i, ..., 0], images[i, r:r + 14, c:c + 14])
    # a patch as large as the image is the image
    whole = C.sample_patch_pairs(images, 28, np.random.default_rng(0), flip=False)
    np.testing.assert_array_equal(whole.first[..., 0], images)


def test_patch_pairs_cover_every_corner():
    corners = C.patch_corners(20_000, (28, 28), 14, np.random.default_rng(0))
    assert corners.min() == 0 and corners.max() == 14
    assert len(np.unique(corners[:, 0])) == 15


def test_patch_pairs_are_deterministic_and_flip_and_jitter_as_told():
    images = _images()
    a = C.sample_patch_pairs(images, 10, np.random.default_rng(5), jitter=0.5)
    b = C.sample_patch_pairs(images, 10, np.random.default_rng(5), jitter=0.5)
    np.testing.assert_array_equal(a.first, b.first)
    np.testing.assert_array_equal(a.second, b.second)
    c = C.sample_patch_pairs(images, 10, np.random.default_rng(6), jitter=0.5)
    assert not np.array_equal(a.first, c.first)
    # every flipped patch is the mirror image of its unflipped self
    plain = C.sample_patch_pairs(images, 10, np.random.default_rng(7), flip=False)
    flipped = C.sample_patch_pairs(images, 10, np.random.default_rng(7), flip=True)
    for p, f in zip(plain.first, flipped.first):
        assert np.array_equal(p, f) or np.array_equal(p[:, ::-1], f)
    # jitter only darkens, by at most the factor asked for
    unjittered = C.cut_patches(images, a.corners_first, 10).astype(np.float32)
    ratio = a.first.sum(axis=(1, 2, 3)) / np.maximum(unjittered.sum(axis=(1, 2, 3)), 1)
    assert (ratio >= 0.5 - 1e-6).all() and (ratio <= 1 + 1e-6).all()


def test_patch_dataset_batches_and_epochs():
    images = _images(10)
    ds = C.PatchPairDataset(images, 12, batch_size=4, n_batches=3, seed=1)
    assert len(ds) == 3
    (first, second), target = ds[0]
    assert first.shape == second.shape == (4, 12, 12, 1) and target.shape == (4,)
    again = C.PatchPairDataset(images, 12, batch_size=4, n_batches=3, seed=1)
    np.testing.assert_array_equal(again[2][0][0], ds[2][0][0])
    before = ds[0][0][0].copy()
    ds.next_epoch()
    assert not np.array_equal(before, ds[0][0][0])


def test_patch_dataset_fit_starts_on_epoch_0_then_draws_fresh_patches():
    """Keras calls on_epoch_end once before the first epoch; training must
    still start on the patches drawn at construction (what ``ds[i]`` shows)."""
    images = _images(10)

    class Spy(C.PatchPairDataset):
        served, training = [], False

        def on_epoch_begin(self):
            super().on_epoch_begin()
            self.training = True
            self.served.append([])

        def __getitem__(self, i):
            (first, second), target = super().__getitem__(i)
            if self.training:
                self.served[-1].append(first)
            return (first, second), target

    ds = Spy(images, 12, batch_size=4, n_batches=2, seed=3)
    replay = C.PatchPairDataset(images, 12, batch_size=4, n_batches=2, seed=3)
    first_in = keras.Input((12, 12, 1))
    second_in = keras.Input((12, 12, 1))
    flat = keras.layers.Flatten()
    model = keras.Model([first_in, second_in], keras.layers.Dense(1)(flat(first_in) - flat(second_in)))
    model.compile("sgd", "mse")
    model.fit(ds, epochs=2, verbose=0, shuffle=False)
    assert len(ds.served) == 2
    for epoch in range(2):
        served = sorted(b.tobytes() for b in ds.served[epoch])
        assert served == sorted(replay[i][0][0].tobytes() for i in range(len(replay))), f"epoch {epoch}"
        replay.next_epoch()
    assert sorted(b.tobytes() for b in ds.served[0]) != sorted(b.tobytes() for b in ds.served[1])


def test_patch_errors_are_clear():
    images = _images()
    with pytest.raises(ValueError, match="does not fit"):
        C.sample_patch_pairs(images, 29, np.random.default_rng(0))
    with pytest.raises(ValueError, match="positive int"):
        C.sample_patch_pairs(images, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shape"):
        C.sample_patch_pairs(np.zeros((28, 28)), 14, np.random.default_rng(0))
    with pytest.raises(ValueError, match="empty"):
        C.sample_patch_pairs(np.zeros((0, 28, 28)), 14, np.random.default_rng(0))
    with pytest.raises(ValueError, match="jitter"):
        C.sample_patch_pairs(images, 14, np.random.default_rng(0), jitter=1.0)
    with pytest.raises(ValueError, match="leaves"):
        C.cut_patches(images, np.full((6, 2), 20), 14)
    with pytest.raises(ValueError, match="at least 2"):
        C.PatchPairDataset(images, 14, batch_size=1, n_batches=1, seed=0)


# --------------------------------------------------------------------------- encoders and helpers

def test_encoder_takes_any_size_and_refuses_unknown_normalisation():
    encoder = C.conv_encoder((4, 8), "batch")
    assert C.features(encoder, np.zeros((2, 14, 14))).shape == (2, 8)
    assert C.features(encoder, np.zeros((3, 28, 28))).shape == (3, 8)
    with pytest.raises(ValueError, match="normalisation"):
        C.conv_encoder((4,), "instance")


def test_recomputed_batch_statistics_are_the_data_statistics():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    x = np.random.default_rng(0).normal(loc=[1.0, -2.0, 5.0], size=(400, 3)).astype("float32")
    C.recompute_batch_statistics(model, x, batch_size=100)
    norm = model.layers[-1]
    np.testing.assert_allclose(value(norm.moving_mean), x.mean(0), atol=1e-4)
    np.testing.assert_allclose(value(norm.moving_variance), x.reshape(4, 100, 3).var(1).mean(0), rtol=1e-3)
    assert norm.momentum == 0.99


def test_labelled_subset_is_balanced_and_seeded():
    labels = np.repeat(np.arange(4), 30)
    idx = C.labelled_subset(labels, 5, np.random.default_rng(0))
    assert np.bincount(labels[idx]).tolist() == [5] * 4 and len(np.unique(idx)) == 20
    np.testing.assert_array_equal(idx, C.labelled_subset(labels, 5, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="per class"):
        C.labelled_subset(labels, 31, np.random.default_rng(0))


def test_linear_probe_separable_and_chance():
    from cab420utils import metrics

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 50)
    separable = np.eye(3)[labels] * 5 + rng.normal(size=(150, 3)) * 0.1
    assert metrics.linear_probe(separable, labels, separable, labels) == 1.0


def test_fine_tune_frozen_steps_leave_the_encoder_alone():
    keras.utils.set_random_seed(0)
    encoder = C.conv_encoder((4,), "none")
    before = [w.copy() for w in encoder.get_weights()]
    images, labels = _images(20), np.arange(20) % 10
    model = C.fine_tune(C.copy_encoder(encoder), images, labels, steps=3, batch_size=10, frozen_steps=2)
    assert model.output_shape == (None, 10)
    for a, b in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(a, b)     # copy_encoder: the original is untouched
    with pytest.raises(ValueError, match="frozen_steps"):
        C.fine_tune(encoder, images, labels, steps=3, frozen_steps=3)
