"""Samplers: balance, label correctness, no self-pairs, determinism, clear errors."""
import numpy as np
import pytest

from cab420utils import sampling


@pytest.fixture
def labels():
    # Unbalanced on purpose: class 2 is rare.
    return np.repeat([0, 1, 2, 3], [500, 300, 5, 200])


def test_pairs_are_balanced_correct_and_never_self(labels):
    a, b, same = sampling.make_pairs(labels, 10_000, np.random.default_rng(0))
    assert same.mean() == pytest.approx(0.5)
    np.testing.assert_array_equal(labels[a] == labels[b], same == 1)
    assert not np.any(a == b)
    # classes are drawn uniformly, so the rare class appears about a quarter of the time in same pairs
    share_rare = np.mean(labels[a[same == 1]] == 2)
    assert 0.2 < share_rare < 0.3


def test_pairs_same_seed_same_pairs_other_seed_other_pairs(labels):
    first = sampling.make_pairs(labels, 100, np.random.default_rng(7))
    again = sampling.make_pairs(labels, 100, np.random.default_rng(7))
    other = sampling.make_pairs(labels, 100, np.random.default_rng(8))
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], other[0])


def test_a_class_with_one_sample_is_a_clear_error():
    labels = np.array([0, 0, 1, 2, 2])
    with pytest.raises(ValueError, match=r"fewer than 2 samples.*\[1\]"):
        sampling.make_pairs(labels, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="fewer than 2"):
        sampling.make_triplets(labels, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="two classes"):
        sampling.make_pairs(np.zeros(5), 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="1-D"):
        sampling.make_pairs(np.zeros((5, 2)), 10, np.random.default_rng(0))


def test_triplets_have_the_right_labels(labels):
    a, p, n = sampling.make_triplets(labels, 5000, np.random.default_rng(0))
    assert np.all(labels[a] == labels[p])
    assert np.all(labels[a] != labels[n])
    assert not np.any(a == p)
    counts = np.bincount(labels[a], minlength=4)
    assert counts.min() > 5000 / 4 * 0.85  # anchors class-balanced


def test_class_batches_hold_m_per_class(labels):
    batches = sampling.make_class_batches(labels, 50, classes_per_batch=3, per_class=4,
                                          rng=np.random.default_rng(0))
    assert batches.shape == (50, 12)
    for batch in batches:
        classes, counts = np.unique(labels[batch], return_counts=True)
        assert len(classes) == 3 and np.all(counts == 4)
    with pytest.raises(ValueError, match="per_class"):
        sampling.make_class_batches(labels, 1, 2, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="classes_per_batch"):
        sampling.make_class_batches(labels, 1, 9, 2, np.random.default_rng(0))


def test_class_batches_never_repeat_an_image_of_a_small_class(labels):
    """Class 2 has 5 images: 6 per class would repeat one (a positive at distance 0) in every batch it is in."""
    with pytest.raises(ValueError, match=r"1 class\(es\) have fewer than per_class = 6 images: \[2\].*per_class <= 5"):
        sampling.make_class_batches(labels, 10, classes_per_batch=2, per_class=6, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="per_class = 6"):
        sampling.ClassBatchDataset(np.zeros((len(labels), 4, 4)), labels, 2, classes_per_batch=2, per_class=6, seed=0)
    batches = sampling.make_class_batches(labels, 200, classes_per_batch=4, per_class=5, rng=np.random.default_rng(0))
    assert np.all(np.bincount(labels[batches[0]]) == 5)


def test_counts_and_fractions_that_make_no_sense_are_refused(labels):
    rng = np.random.default_rng(0)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_pairs must be a whole number, at least 1"):
            sampling.make_pairs(labels, bad, rng)
        with pytest.raises(ValueError, match="n_triplets must be a whole number"):
            sampling.make_triplets(labels, bad, rng)
        with pytest.raises(ValueError, match="n_batches must be a whole number"):
            sampling.make_class_batches(labels, bad, 2, 2, rng)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="same_fraction is the share of same-class pairs, between 0 and 1"):
            sampling.make_pairs(labels, 10, rng, same_fraction=bad)
    with pytest.raises(ValueError, match="batch_size must be a whole number"):
        sampling.PairDataset(np.zeros((len(labels), 4, 4)), labels, 100, 0, seed=0)
    with pytest.raises(ValueError, match="n_items must be a whole number"):
        sampling.TripletDataset(np.zeros((len(labels), 4, 4)), labels, 0, 32, seed=0)
    a, b, same = sampling.make_pairs(labels, 10.0, rng, same_fraction=1.0)   # 10.0 is a whole number; all same
    assert len(a) == 10 and same.all()


def test_fixed_pairs_are_reproducible(labels):
    p1, p2 = sampling.fixed_pairs(labels, 1000, seed=3), sampling.fixed_pairs(labels, 1000, seed=3)
    np.testing.assert_array_equal(p1.a, p2.a)
    assert len(p1) == 1000 and p1.same.sum() == 500


def test_pair_dataset_is_fresh_each_epoch_and_reproducible(labels):
    x = np.arange(len(labels), dtype=np.float32)[:, None, None] * np.ones((1, 4, 4), np.float32)  # pixel = index
    ds = sampling.PairDataset(x, labels, 200, 64, seed=1)
    assert len(ds) == 4
    (xa, xb), same = ds[0]
    assert xa.shape == (64, 4, 4, 1) and xa.dtype == np.float32 and same.shape == (64,)
    first_epoch = ds.a.copy()
    ds.next_epoch()
    assert not np.array_equal(first_epoch, ds.a)
    again = sampling.PairDataset(x, labels, 200, 64, seed=1)
    np.testing.assert_array_equal(first_epoch, again.a)
    # the images served match the labels of the pairs
    (xa, xb), same = again[1]
    ia, ib = xa[:, 0, 0, 0].astype(int), xb[:, 0, 0, 0].astype(int)
    np.testing.assert_array_equal(labels[ia] == labels[ib], same == 1)


def test_triplet_and_class_batch_datasets(labels):
    x = np.zeros((len(labels), 4, 4), np.uint8)
    (a, p, n), y = sampling.TripletDataset(x, labels, 100, 32, seed=0)[0]
    assert a.shape == p.shape == n.shape == (32, 4, 4, 1) and y.shape == (32,)
    ds = sampling.ClassBatchDataset(x, labels, n_batches=5, classes_per_batch=2, per_class=5, seed=0)
    xb, yb = ds[4]
    assert len(ds) == 5 and xb.shape == (10, 4, 4, 1)
    assert sorted(np.unique(yb, return_counts=True)[1]) == [5, 5]


def test_mismatched_images_and_labels_are_refused(labels):
    with pytest.raises(ValueError, match="must match one to one"):
        sampling.PairDataset(np.zeros((10, 4, 4)), labels, 10, 5, seed=0)
    with pytest.raises(ValueError, match="images of shape"):
        sampling.as_model_input(np.zeros(10))


def test_fit_trains_on_the_batches_drawn_at_construction_then_fresh_ones(labels):
    """Keras reads a batch and calls on_epoch_end before the first epoch; the
    sampler must still start training on its epoch 0 (what ``data[i]`` shows)."""
    import keras

    x = np.arange(len(labels), dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)  # pixel = index

    class Spy(sampling.ClassBatchDataset):
        served, training = [], False

        def on_epoch_begin(self):
            super().on_epoch_begin()
            self.training = True
            self.served.append(set())

        def __getitem__(self, i):
            xb, yb = super().__getitem__(i)
            if self.training:
                self.served[-1].update(xb[:, 0, 0, 0].astype(int).tolist())
            return xb, yb

    ds = Spy(x, labels, 3, classes_per_batch=2, per_class=2, seed=4)
    replay = sampling.ClassBatchDataset(x, labels, 3, classes_per_batch=2, per_class=2, seed=4)
    fixed = sampling.ClassBatchDataset(x, labels, 2, classes_per_batch=2, per_class=2, seed=5, redraw=False)
    fixed_batches = fixed.batches.copy()
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(ds, epochs=3, verbose=0, validation_data=fixed)
    assert len(ds.served) == 3
    assert ds.served[0] == set(np.concatenate(replay.batches).tolist())   # epoch 0 = the construction-time draw
    replay.next_epoch()
    assert ds.served[1] == set(np.concatenate(replay.batches).tolist())   # then epoch 1, 2, ... as on a rerun
    assert ds.served[1] != ds.served[0]
    np.testing.assert_array_equal(fixed.batches, fixed_batches)           # redraw=False: validation stays fixed


def test_batches_split_into_equal_shares_under_data_parallel_training(labels, monkeypatch):
    x = np.zeros((len(labels), 28, 28), np.uint8)
    one = sampling.TripletDataset(x, labels, 51, 16, seed=0)
    assert len(one) == 4 and [len(one[i][1]) for i in range(4)] == [16, 16, 16, 3]   # one device: all 51
    monkeypatch.setattr(sampling.distribute, "replicas", lambda: 2)
    two = sampling.TripletDataset(x, labels, 51, 16, seed=0)
    assert [len(two[i][1]) for i in range(len(two))] == [16, 16, 16, 2]    # the odd one out is left out
    assert np.array_equal(two[3][0][0], one[3][0][0][:2])                     # the same triplets otherwise
    assert len(sampling.PairDataset(x, labels, 48, 16, seed=0)) == 3
    with pytest.raises(ValueError, match="27 cannot be shared equally by the 2 replicas.*multiple of 2"):
        sampling.TripletDataset(x, labels, 54, 27, seed=0)
