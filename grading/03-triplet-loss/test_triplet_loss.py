"""Hidden tests of Exercise 3.1, `triplet_loss(anchor, positive, negative, margin=0.2) -> scalar`."""
import numpy as np


def tensors(*arrays):
    from keras import ops

    return [ops.convert_to_tensor(np.asarray(x, np.float32)) for x in arrays]


def value(student, a, p, n, *margin):
    out = student.triplet_loss(*tensors(a, p, n), *margin)
    shape = tuple(getattr(out, "shape", np.shape(out)))
    assert shape == (), f"it should return one number for the batch, got shape {shape}"
    return float(np.asarray(out))


def numpy_loss(a, p, n, margin):
    d_ap, d_an = np.linalg.norm(a - p, axis=1), np.linalg.norm(a - n, axis=1)
    return float(np.mean(np.maximum(d_ap - d_an + margin, 0.0)))


def test_hand_values(student):
    """hand-worked batches: the mean of the hinge over the triplets"""
    got = value(student, [[0, 0], [0, 0]], [[3, 4], [3, 4]], [[6, 8], [0, 1]], 0.2)
    assert abs(got - 2.1) < 1e-4, \
        f"d(a, p) = 5 and d(a, n) = 10 and 1, margin 0.2: loss (0 + 4.2) / 2 = 2.1, yours {got:.4f}"
    got = value(student, [[1, 1, 1]], [[1, 1, 1]], [[1, 1, 1]], 0.3)
    assert abs(got - 0.3) < 1e-4, f"all three the same point, margin 0.3: loss 0.3, yours {got:.4f}"


def test_margin(student):
    """the margin counts, and defaults to 0.2"""
    a, p, n = [[0.0, 0.0]], [[0.0, 0.1]], [[0.0, 0.4]]
    for margin, expected in ((0.1, 0.0), (0.3, 0.0), (0.5, 0.2), (1.0, 0.7)):
        got = value(student, a, p, n, margin)
        assert abs(got - expected) < 1e-4, \
            f"d(a, p) = 0.1, d(a, n) = 0.4, margin {margin}: loss {expected}, yours {got:.4f}"
    default = float(np.asarray(student.triplet_loss(*tensors([[0.0]], [[0.0]], [[0.1]]))))
    assert abs(default - 0.1) < 1e-4, \
        f"without a margin argument the margin should be 0.2 (loss 0.1 here), yours gives {default:.4f}"


def test_euclidean_not_squared(student):
    """distances are Euclidean, not squared"""
    got = value(student, [[0.0, 0.0]], [[0.0, 2.0]], [[0.0, 3.0]], 2.0)
    assert abs(got - 1.0) < 1e-4, \
        f"d(a, p) = 2, d(a, n) = 3, margin 2: loss 1 with Euclidean distances, yours {got:.4f}"


def test_random_batches(student):
    """agrees with the formula on random batches of embeddings"""
    rng = np.random.default_rng(31)
    for batch, dim in ((64, 8), (7, 32)):
        a, p, n = (rng.normal(size=(batch, dim)) * 0.4 for _ in range(3))
        got, expected = value(student, a, p, n, 0.5), numpy_loss(a, p, n, 0.5)
        assert abs(got - expected) < 1e-4 * max(1, expected), \
            f"a random batch of {batch}: loss {expected:.5f}, yours {got:.5f}"


def test_gradient(student):
    """the gradient is right, and finite where anchor and positive coincide"""
    import tensorflow as tf

    rng = np.random.default_rng(32)
    a0, p0, n0 = (rng.normal(size=(5, 4)).astype(np.float32) for _ in range(3))
    p0[0] = a0[0]  # one anchor equal to its positive
    a = tf.Variable(a0)
    with tf.GradientTape() as tape:
        loss = student.triplet_loss(a, tf.constant(p0), tf.constant(n0), 10.0)  # every triplet active
    g = tape.gradient(loss, a)
    assert g is not None, "no gradient reaches the anchor: compute the loss with keras.ops on the inputs"
    g = g.numpy()
    assert np.all(np.isfinite(g)), "the gradient is not finite where an anchor equals its positive"
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    expected = (unit(a0[1:] - p0[1:]) - unit(a0[1:] - n0[1:])) / 5
    assert np.allclose(g[1:], expected, atol=1e-4), \
        "the gradient of the loss with respect to the anchors is not the formula's"


def test_in_keras_model(student):
    """trains a Keras model (runs on symbolic tensors)"""
    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(0)
    inputs = [keras.Input((3,)) for _ in range(3)]
    shared = layers.Dense(2)
    model = keras.Model(inputs, layers.Concatenate()([shared(x) for x in inputs]))

    def loss(y_true, y_pred):
        a, p, n = ops.split(y_pred, 3, axis=-1)
        return student.triplet_loss(a, p, n, 0.5)

    model.compile(optimizer="sgd", loss=loss)
    x = [np.random.default_rng(i).normal(size=(16, 3)).astype("float32") for i in range(3)]
    history = model.fit(x, np.zeros(16), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1]), "training with it gave a loss that is not finite"
