"""Hidden tests of Exercise 4.1, `l2_normalize(x) -> x / |x|` along the last axis."""
import numpy as np


def normalized(student, x):
    from keras import ops

    out = student.l2_normalize(ops.convert_to_tensor(np.asarray(x, np.float32)))
    out = np.asarray(out)
    assert out.shape == np.shape(x), f"it should keep the input's shape {np.shape(x)}, got {out.shape}"
    return out


def test_unit_length_and_direction(student):
    """random vectors of very different lengths come out at unit length, in the same direction"""
    rng = np.random.default_rng(71)
    x = rng.normal(size=(50, 7)) * rng.uniform(0.01, 1000, size=(50, 1))
    out = normalized(student, x)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5), "not every vector came out at unit length"
    assert np.allclose(out, x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-5), \
        "some vectors changed direction: each should be divided by its own length"


def test_hand_values(student):
    """hand-worked vectors"""
    out = normalized(student, [[0.0, 5.0, 12.0], [-1.0, -1.0, 0.0]])
    expected = np.array([[0.0, 5 / 13, 12 / 13], [-1 / np.sqrt(2), -1 / np.sqrt(2), 0.0]])
    assert np.allclose(out, expected, atol=1e-6), f"[0, 5, 12] and [-1, -1, 0] should give {expected.round(4).tolist()}"


def test_last_axis(student):
    """normalises along the last axis, whatever the number of leading axes"""
    rng = np.random.default_rng(72)
    for shape in ((5,), (3, 2, 6), (2, 2, 2, 3)):
        x = rng.normal(size=shape)
        out = normalized(student, x)
        assert np.allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5), \
            f"an input of shape {shape} should have each vector along its last axis at unit length"


def test_zero_and_tiny(student):
    """a zero vector stays zero; a vector of length 1e-4 still becomes unit length"""
    out = normalized(student, [[0.0, 0.0], [1e-4, 0.0], [0.0, -3e-5]])
    assert np.all(np.isfinite(out)), "a zero vector came out as NaN or infinity"
    assert np.allclose(out[0], 0.0), f"a zero vector should stay zero, got {out[0].tolist()}"
    assert np.allclose(out[1:], [[1.0, 0.0], [0.0, -1.0]], atol=1e-3), \
        f"[1e-4, 0] and [0, -3e-5] should become [1, 0] and [0, -1], got {out[1:].round(4).tolist()}"


def test_gradient(student):
    """the gradient is right away from zero, and finite at a zero vector"""
    import tensorflow as tf

    x0 = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, -2.0]], np.float32)
    w = np.array([[0.5, 1.0, -1.0], [1.0, 0.0, 2.0]], np.float32)
    x = tf.Variable(x0)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(student.l2_normalize(x) * w)
    g = tape.gradient(value, x)
    assert g is not None, "no gradient reaches the input: write it with keras.ops"
    g = g.numpy()
    assert np.all(np.isfinite(g)), "the gradient is not finite at a zero vector"
    v, n = x0[1], np.linalg.norm(x0[1])
    expected = w[1] / n - v * (w[1] @ v) / n ** 3
    assert np.allclose(g[1], expected, atol=1e-5), "the gradient away from zero is not that of x / |x|"


def test_in_keras_model(student):
    """works as the last layer of a Keras model (symbolic tensors)"""
    import keras
    from keras import layers

    inputs = keras.Input((4,))
    model = keras.Model(inputs, student.l2_normalize(layers.Dense(3)(inputs)))  # keras.ops on symbolic tensors
    out = model.predict(np.random.default_rng(73).normal(size=(10, 4)).astype("float32"), verbose=0)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5), "inside a model its outputs are not unit length"
