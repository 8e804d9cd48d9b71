"""Hidden tests of Exercise 6.2, `spatial_contrasting_loss(first, second) -> scalar`."""
import numpy as np


def value(student, first, second):
    from keras import ops

    out = student.spatial_contrasting_loss(*(ops.convert_to_tensor(np.asarray(x, np.float32)) for x in (first, second)))
    shape = tuple(getattr(out, "shape", np.shape(out)))
    assert shape == (), f"it should return one number for the batch, got shape {shape}"
    return float(np.asarray(out))


def numpy_loss(first, second):
    d = np.sqrt(((first[:, None] - second[None]) ** 2).sum(-1))
    logits = -d

    def log_softmax(x, axis):
        m = x.max(axis=axis, keepdims=True)
        return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))

    rows, cols = -np.diag(log_softmax(logits, 1)), -np.diag(log_softmax(logits, 0))
    return float(np.mean(0.5 * (rows + cols)))


def test_hand_values(student):
    """hand-worked batches"""
    got = value(student, [[0.0], [1.0]], [[0.0], [1.0]])
    expected = np.log1p(np.exp(-1.0))
    assert abs(got - expected) < 1e-4, \
        f"patches at 0 and 1 matched exactly: loss log(1 + e^-1) = {expected:.4f}, yours {got:.4f}"
    got = value(student, [[0.0, 0.0], [3.0, 4.0]], [[3.0, 4.0], [0.0, 0.0]])
    expected = np.log1p(np.exp(5.0))
    assert abs(got - expected) < 1e-4, \
        f"each patch closest to the other image's: loss log(1 + e^5) = {expected:.4f}, yours {got:.4f}"


def test_collapsed_and_random(student):
    """a collapsed embedding costs log N; random batches agree with the formula"""
    got = value(student, np.ones((9, 5)), np.ones((9, 5)))
    assert abs(got - np.log(9)) < 1e-4, f"every embedding at one point: log 9 = {np.log(9):.4f}, yours {got:.4f}"
    rng = np.random.default_rng(121)
    for n, dim in ((16, 8), (5, 2)):
        first, second = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
        got, expected = value(student, first, second), numpy_loss(first, second)
        assert abs(got - expected) < 1e-4, f"a random batch of {n}: loss {expected:.5f}, yours {got:.5f}"


def test_symmetric_and_order_free(student):
    """swapping the two patches, or shuffling the images, changes nothing"""
    rng = np.random.default_rng(122)
    first, second = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
    base = value(student, first, second)
    assert abs(base - value(student, second, first)) < 1e-4, "swapping first and second changed the loss"
    order = rng.permutation(10)
    assert abs(base - value(student, first[order], second[order])) < 1e-4, "reordering the images changed the loss"


def test_far_apart(student):
    """finite for distances in the tens of thousands"""
    first = np.arange(6.0)[:, None] * [20_000.0, 0.0]
    got = value(student, first, first + [0.0, 1.0])
    assert np.isfinite(got) and abs(got) < 1e-4, \
        f"each patch 1 from its pair and 20,000 from the others: loss 0, yours {got}"
    got = value(student, [[0.0], [50_000.0]], [[50_000.0], [0.0]])
    assert np.isfinite(got) and abs(got - 50_000.0) < 1.0, f"pairs swapped 50,000 apart: loss 50,000, yours {got}"


def test_gradient(student):
    """the gradient is right, and finite where embeddings coincide"""
    import tensorflow as tf

    rng = np.random.default_rng(123)
    f0, s0 = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    s0[0] = f0[0]
    s0[2] = f0[1]
    first = tf.Variable(f0)
    with tf.GradientTape() as tape:
        loss = student.spatial_contrasting_loss(first, tf.constant(s0))
    g = tape.gradient(loss, first)
    assert g is not None, "no gradient reaches the embeddings: write the loss with keras.ops"
    g = g.numpy()
    assert np.all(np.isfinite(g)), "the gradient is not finite where two embeddings coincide"
    h = 1e-3
    f64, s64 = f0.astype(np.float64), s0.astype(np.float64)
    for i, k in ((3, 0), (3, 2)):
        up, down = f64.copy(), f64.copy()
        up[i, k] += h
        down[i, k] -= h
        numeric = (numpy_loss(up, s64) - numpy_loss(down, s64)) / (2 * h)
        assert abs(g[i, k] - numeric) < 2e-3, "the gradient disagrees with finite differences of the loss"


def test_in_keras_model(student):
    """trains a patch-pair model (symbolic tensors)"""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    a, b = keras.Input((6,)), keras.Input((6,))
    shared = layers.Dense(3)
    model = keras.Model([a, b], layers.Concatenate()([shared(a), shared(b)]))
    model.compile(optimizer="sgd",
                  loss=lambda y_true, y_pred: student.spatial_contrasting_loss(y_pred[:, :3], y_pred[:, 3:]))
    x = [np.random.default_rng(i).normal(size=(16, 6)).astype("float32") for i in range(2)]
    history = model.fit(x, np.zeros(16), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1]), "training with it gave a loss that is not finite"
