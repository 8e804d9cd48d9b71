"""Hidden tests of Exercise 2.1, `contrastive_loss(same, a, b, margin=1.0) -> scalar`."""
import numpy as np


def tensors(*arrays):
    from keras import ops

    return [ops.convert_to_tensor(np.asarray(x, np.float32)) for x in arrays]


def value(student, same, a, b, *margin):
    out = student.contrastive_loss(*tensors(same, a, b), *margin)
    shape = tuple(getattr(out, "shape", np.shape(out)))
    assert shape == (), f"it should return one number for the batch, got shape {shape}"
    return float(np.asarray(out))


def numpy_loss(same, a, b, margin):
    d = np.linalg.norm(a - b, axis=1)
    return float(np.mean(same * d ** 2 + (1 - same) * np.maximum(margin - d, 0.0) ** 2))


def test_hand_values(student):
    """hand-worked batches: pull same pairs, push different pairs inside the margin"""
    got = value(student, [1, 0], [[0, 0], [0, 0]], [[0.3, 0.4], [0.3, 0.4]], 1.0)
    assert abs(got - (0.25 + 0.25) / 2) < 1e-4, \
        f"a same and a different pair, both at distance 0.5, margin 1: loss (0.25 + 0.25) / 2 = 0.25, yours {got:.4f}"
    got = value(student, [0, 0, 0], [[0.0], [0.0], [0.0]], [[0.1], [0.9], [3.0]], 1.0)
    assert abs(got - (0.81 + 0.01 + 0.0) / 3) < 1e-4, \
        f"different pairs at 0.1, 0.9 and 3, margin 1: loss (0.81 + 0.01 + 0) / 3 = 0.2733, yours {got:.4f}"


def test_margin(student):
    """the margin counts for different pairs only, and defaults to 1"""
    a, b = [[0.0, 0.0]], [[0.0, 0.7]]
    for margin, expected in ((0.5, 0.0), (0.7, 0.0), (1.0, 0.09), (1.5, 0.64)):
        got = value(student, [0], a, b, margin)
        assert abs(got - expected) < 1e-4, f"a different pair at 0.7, margin {margin}: loss {expected}, yours {got:.4f}"
    for margin in (0.1, 3.0):
        got = value(student, [1], a, b, margin)
        assert abs(got - 0.49) < 1e-4, f"a same pair at 0.7 costs 0.49 whatever the margin ({margin}), yours {got:.4f}"
    default = float(np.asarray(student.contrastive_loss(*tensors([0], [[0.0]], [[0.4]]))))
    assert abs(default - 0.36) < 1e-4, \
        f"without a margin argument the margin should be 1 (loss 0.36 here), yours gives {default:.4f}"


def test_random_batches(student):
    """agrees with the formula on random batches, with labels as floats, ints or a column"""
    rng = np.random.default_rng(51)
    for batch, dim, margin in ((64, 8, 1.0), (9, 32, 2.0)):
        a, b = (rng.normal(size=(batch, dim)) * 0.3 for _ in range(2))
        same = (rng.random(batch) < 0.5).astype(np.float32)
        expected = numpy_loss(same, a, b, margin)
        for labels in (same, same.astype(np.int32), same[:, None]):
            got = value(student, labels, a, b, margin)
            assert abs(got - expected) < 1e-4 * max(1, expected), \
                f"a random batch of {batch} (labels of shape {labels.shape}): loss {expected:.5f}, yours {got:.5f}"


def test_gradient(student):
    """the gradient is right, and finite where the two embeddings of a pair coincide"""
    import tensorflow as tf

    rng = np.random.default_rng(52)
    a0, b0 = (rng.normal(size=(6, 3)).astype(np.float32) * 0.3 for _ in range(2))
    b0[0], b0[1] = a0[0], a0[1]  # a same pair and a different pair at distance 0
    same = np.array([1, 0, 1, 0, 1, 0], np.float32)
    a = tf.Variable(a0)
    with tf.GradientTape() as tape:
        loss = student.contrastive_loss(tf.constant(same), a, tf.constant(b0), 5.0)  # every different pair inside
    g = tape.gradient(loss, a)
    assert g is not None, "no gradient reaches the embeddings: compute the loss with keras.ops on the inputs"
    g = g.numpy()
    assert np.all(np.isfinite(g)), "the gradient is not finite where the two embeddings of a pair coincide"
    diff = a0 - b0
    d = np.linalg.norm(diff, axis=1, keepdims=True)
    expected = np.where(same[:, None] == 1, 2 * diff, -2 * (5.0 - d) * diff / np.maximum(d, 1e-12)) / 6
    assert np.allclose(g[2:], expected[2:], atol=1e-4), \
        "the gradient of the loss with respect to the embeddings is not the formula's"


def test_in_keras_model(student):
    """trains a Keras model (runs on symbolic tensors)"""
    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(0)
    inputs = [keras.Input((3,)) for _ in range(2)]
    shared = layers.Dense(2)
    model = keras.Model(inputs, layers.Concatenate()([shared(x) for x in inputs]))

    def loss(y_true, y_pred):
        a, b = ops.split(y_pred, 2, axis=-1)
        return student.contrastive_loss(y_true, a, b, 1.0)

    model.compile(optimizer="sgd", loss=loss)
    x = [np.random.default_rng(i).normal(size=(16, 3)).astype("float32") for i in range(2)]
    history = model.fit(x, (np.arange(16) % 2).astype("float32"), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1]), "training with it gave a loss that is not finite"
