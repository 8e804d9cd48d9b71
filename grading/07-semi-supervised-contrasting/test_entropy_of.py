"""Hidden tests of Exercise 7.2, `entropy_of(log_probs) -> (N,) entropies`."""
import numpy as np


def entropies(student, log_probs):
    from keras import ops

    log_probs = np.asarray(log_probs, np.float32)
    out = np.asarray(ops.convert_to_numpy(student.entropy_of(ops.convert_to_tensor(log_probs))), np.float64)
    assert out.shape == (len(log_probs),), f"it should return one entropy per row, shape ({len(log_probs)},), " \
                                           f"got {out.shape}"
    return out


def normalised(logits):
    logits = np.asarray(logits, np.float64)
    m = logits.max(axis=1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))


def test_hand_values(student):
    """(1/4, 1/4, 1/4, 1/4) has entropy log 4; (1/2, 1/4, 1/4) has 1.5 log 2"""
    got = entropies(student, np.log([[0.25, 0.25, 0.25, 0.25]]))
    assert abs(got[0] - np.log(4)) < 1e-4, f"uniform over 4: log 4 = {np.log(4):.4f}, got {got[0]:.4f}"
    got = entropies(student, np.log([[0.5, 0.25, 0.25]]))
    assert abs(got[0] - 1.5 * np.log(2)) < 1e-4, f"(1/2, 1/4, 1/4): 1.5 log 2 = {1.5 * np.log(2):.4f}, got {got[0]:.4f}"


def test_random_rows(student):
    """random rows agree with -sum p log p, one value per row"""
    rng = np.random.default_rng(711)
    for n, k in ((25, 10), (1, 2), (4, 30)):
        log_p = normalised(rng.normal(size=(n, k)) * 3)
        expected = -(np.exp(log_p) * log_p).sum(axis=1)
        got = entropies(student, log_p)
        assert np.allclose(got, expected, atol=1e-4), f"{n} rows of {k} classes disagree with -sum p log p"


def test_zero_probabilities(student):
    """probabilities that underflow to exactly 0 add nothing (no NaN)"""
    log_p = np.array([[-5000.0, 0.0, -5000.0, -5000.0],
                      [np.log(0.5), -3000.0, np.log(0.5), -3000.0]])
    got = entropies(student, log_p)
    assert np.all(np.isfinite(got)), "rows with probabilities of exactly 0 gave NaN (0 times log 0)"
    assert abs(got[0]) < 1e-4 and abs(got[1] - np.log(2)) < 1e-4, \
        f"expected entropies 0 and log 2 = {np.log(2):.4f}, got {np.round(got, 4)}"


def test_gradient(student):
    """a finite gradient, equal to -p (log p + 1), also where a probability is 0"""
    import tensorflow as tf

    log_p = normalised([[1.0, 0.0, -2.0]]).astype(np.float32)
    log_p = np.concatenate([log_p, np.array([[0.0, -2000.0, -2000.0]], np.float32)])
    x = tf.Variable(log_p)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(student.entropy_of(x))
    g = tape.gradient(value, x)
    assert g is not None, "no gradient reaches the log-probabilities: write it with keras.ops"
    g = g.numpy()
    assert np.all(np.isfinite(g)), "the gradient is NaN where a probability is 0"
    expected = -np.exp(log_p[0].astype(np.float64)) * (log_p[0] + 1.0)
    assert np.allclose(g[0], expected, atol=1e-4), "the gradient disagrees with d/d(log p) of -sum p log p"


def test_in_keras_model(student):
    """trains a model with it as a loss (symbolic tensors)"""
    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, layers.Dense(4)(inputs))
    model.compile(optimizer="sgd",
                  loss=lambda y_true, y_pred: ops.mean(student.entropy_of(ops.log_softmax(y_pred, axis=1))))
    x = np.random.default_rng(4).normal(size=(16, 5)).astype("float32")
    history = model.fit(x, np.zeros(16), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1]), "training with it gave a loss that is not finite"
