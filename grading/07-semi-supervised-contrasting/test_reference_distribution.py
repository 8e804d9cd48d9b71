"""Hidden tests of Exercise 7.1, `reference_distribution(embeddings, references) -> (N, K) log-probabilities`."""
import numpy as np


def log_probs(student, embeddings, references):
    from keras import ops

    embeddings, references = (np.asarray(x, np.float32) for x in (embeddings, references))
    out = student.reference_distribution(ops.convert_to_tensor(embeddings), ops.convert_to_tensor(references))
    out = np.asarray(ops.convert_to_numpy(out), np.float64)
    expected = (len(embeddings), len(references))
    assert out.shape == expected, f"it should return shape {expected} (embeddings x references), got {out.shape}"
    return out


def numpy_log_probs(embeddings, references):
    logits = -((np.asarray(embeddings, np.float64)[:, None] - np.asarray(references, np.float64)[None]) ** 2).sum(-1)
    m = logits.max(axis=1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))


def test_hand_values_2d(student):
    """references at (0, 0), (3, 0) and (0, 4); samples at the origin and between two references"""
    references = [[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]
    got = log_probs(student, [[0.0, 0.0], [1.5, 0.0]], references)
    assert np.all(got <= 1e-5), "log-probabilities are never positive: did it return probabilities?"
    z = 1 + np.exp(-9.0) + np.exp(-16.0)
    assert np.allclose(got[0], [-np.log(z), -9 - np.log(z), -16 - np.log(z)], atol=1e-4), \
        f"a sample at the origin (squared distances 0, 9, 16): expected {np.round(-np.log(z) - [0, 9, 16], 4)}, " \
        f"got {np.round(got[0], 4)}"
    z = 2 * np.exp(-2.25) + np.exp(-18.25)
    assert np.allclose(np.exp(got[1]), np.array([np.exp(-2.25), np.exp(-2.25), np.exp(-18.25)]) / z, atol=1e-5), \
        "a sample halfway between the first two references: probabilities about (0.5, 0.5, 0)"


def test_random_batches(student):
    """random batches agree with the formula, for several sizes"""
    rng = np.random.default_rng(701)
    for n, k, dim in ((12, 10, 16), (3, 2, 1), (1, 5, 4)):
        embeddings, references = rng.normal(size=(n, dim)), rng.normal(size=(k, dim))
        got, expected = log_probs(student, embeddings, references), numpy_log_probs(embeddings, references)
        assert np.allclose(got, expected, atol=1e-4), f"{n} embeddings, {k} references in {dim}-D disagree with " \
                                                       f"log_softmax(-squared distances)"


def test_columns_follow_references(student):
    """reordering the references reorders the columns; shifting everything changes nothing"""
    rng = np.random.default_rng(702)
    embeddings, references = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    base = log_probs(student, embeddings, references)
    order = rng.permutation(5)
    assert np.allclose(log_probs(student, embeddings, references[order]), base[:, order], atol=1e-4), \
        "column k should belong to reference k"
    shift = np.array([4.0, -2.0, 1.0])
    assert np.allclose(log_probs(student, embeddings + shift, references + shift), base, atol=1e-3), \
        "moving embeddings and references together changed the probabilities"


def test_far_apart(student):
    """right, not -inf or NaN, for squared distances in the tens of thousands"""
    got = log_probs(student, [[150.0, 0.0], [0.0, -5.0]], [[0.0, 0.0], [200.0, 0.0]])
    assert np.all(np.isfinite(got)), "squared distances in the tens of thousands gave -inf or NaN"
    assert np.allclose(got[0], [-20_000.0, 0.0], rtol=1e-3), f"expected (-20000, 0), got {got[0]}"
    assert abs(got[1, 0]) < 1e-4 and abs(got[1, 1] + 40_000.0) < 40.0, f"expected (0, -40000), got {got[1]}"


def test_gradient(student):
    """a finite gradient that matches the formula, also for far-apart embeddings"""
    import tensorflow as tf

    references = np.array([[0.0, 0.0], [1.0, 1.0], [40.0, 0.0]], np.float32)
    x0 = np.array([[0.2, -0.1], [35.0, 2.0]], np.float32)
    x = tf.Variable(x0)
    with tf.GradientTape() as tape:
        out = student.reference_distribution(x, tf.constant(references))
        value = tf.reduce_sum(out[:, 1])
    g = tape.gradient(value, x)
    assert g is not None, "no gradient reaches the embeddings: write it with keras.ops"
    g = g.numpy()
    assert np.all(np.isfinite(g)), "the gradient is not finite for far-apart embeddings"
    h = 1e-3
    for i, k in ((0, 0), (0, 1)):
        up, down = x0.astype(np.float64), x0.astype(np.float64)
        up[i, k] += h
        down[i, k] -= h
        numeric = (numpy_log_probs(up, references)[:, 1].sum() - numpy_log_probs(down, references)[:, 1].sum()) / (2 * h)
        assert abs(g[i, k] - numeric) < 2e-3, "the gradient disagrees with finite differences"


def test_in_keras_model(student):
    """trains a model with it (symbolic tensors)"""
    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(0)
    references = ops.convert_to_tensor(np.eye(3, 4, dtype=np.float32))
    inputs = keras.Input((6,))
    model = keras.Model(inputs, layers.Dense(4)(inputs))
    model.compile(optimizer="sgd", loss=lambda y_true, y_pred: -ops.mean(
        ops.sum(y_true * student.reference_distribution(y_pred, references), axis=1)))
    x = np.random.default_rng(3).normal(size=(16, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(16) % 3]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1]), "training with it gave a loss that is not finite"
