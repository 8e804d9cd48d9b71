"""Hidden tests of Exercise 5.1, `softmax_ratio_loss(d_pos, d_neg) -> scalar`."""
import numpy as np


def value(student, d_pos, d_neg):
    from keras import ops

    out = student.softmax_ratio_loss(*(ops.convert_to_tensor(np.asarray(x, np.float32)) for x in (d_pos, d_neg)))
    shape = tuple(getattr(out, "shape", np.shape(out)))
    assert shape == (), f"it should return one number for the batch, got shape {shape}"
    return float(np.asarray(out))


def numpy_loss(d_pos, d_neg):
    p = np.exp(d_pos) / (np.exp(d_pos) + np.exp(d_neg))
    return float(np.mean(p ** 2))


def test_hand_values(student):
    """hand-worked triplets: p+ = e^d+ / (e^d+ + e^d-), loss the mean of p+ squared"""
    got = value(student, [2.0, 0.0, 5.0], [2.0, 0.0, 5.0])
    assert abs(got - 0.25) < 1e-5, f"three undecided triplets (d+ = d-) cost 0.25, yours {got:.5f}"
    ln4 = float(np.log(4.0))
    got = value(student, [ln4], [0.0])
    assert abs(got - 0.64) < 1e-5, f"d+ = ln 4, d- = 0: p+ = 4/5, loss 0.64, yours {got:.5f}"
    got = value(student, [1.0, 1.0 + ln4], [1.0 + ln4, 1.0])
    assert abs(got - (0.04 + 0.64) / 2) < 1e-5, f"p+ = 1/5 and 4/5: loss (0.04 + 0.64) / 2 = 0.34, yours {got:.5f}"


def test_random_batches(student):
    """agrees with the definition on random batches of moderate distances"""
    rng = np.random.default_rng(91)
    for batch in (50, 7):
        d_pos, d_neg = rng.uniform(0, 6, batch), rng.uniform(0, 6, batch)
        got, expected = value(student, d_pos, d_neg), numpy_loss(d_pos, d_neg)
        assert abs(got - expected) < 1e-5, f"a random batch of {batch}: loss {expected:.6f}, yours {got:.6f}"


def test_bounded_and_monotone(student):
    """between 0 and 1, and larger the closer the negative"""
    values = [value(student, [3.0], [d]) for d in (10.0, 4.0, 3.0, 2.0, 0.0)]
    assert all(0 <= v <= 1 for v in values), f"the loss should lie in [0, 1], got {np.round(values, 4)}"
    assert all(a < b for a, b in zip(values, values[1:])), \
        f"as the negative comes closer (d- = 10, 4, 3, 2, 0 with d+ = 3) the loss should grow: {np.round(values, 4)}"


def test_large_distances(student):
    """finite and right for distances in the hundreds and thousands"""
    got = value(student, [500.0, 1000.0, 120.0], [1000.0, 500.0, 120.0])
    assert np.isfinite(got), "distances in the hundreds gave NaN or infinity: an exponential overflowed"
    assert abs(got - (0 + 1 + 0.25) / 3) < 1e-5, f"p+ is 0, 1 and 1/2: loss 0.41667, yours {got:.5f}"


def test_gradient(student):
    """the gradient with respect to the distances is right, and finite for large ones"""
    import tensorflow as tf

    d_pos = tf.Variable(np.array([0.3, 1.0, 400.0], np.float32))
    d_neg = tf.constant(np.array([0.8, 0.2, 100.0], np.float32))
    with tf.GradientTape() as tape:
        loss = student.softmax_ratio_loss(d_pos, d_neg)
    g = tape.gradient(loss, d_pos)
    assert g is not None, "no gradient reaches the distances: write the loss with keras.ops"
    g = g.numpy()
    assert np.all(np.isfinite(g)), "the gradient is not finite for distances in the hundreds"
    s = 1 / (1 + np.exp(-(np.array([0.3, 1.0]) - np.array([0.8, 0.2]))))
    assert np.allclose(g[:2], 2 * s ** 2 * (1 - s) / 3, atol=1e-5), "the gradient with respect to d+ is not the loss's"


def test_in_keras_model(student):
    """trains a triplet model (runs on symbolic tensors)"""
    import keras
    from keras import layers

    from cab420utils import models

    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    embed = keras.Model(inputs, layers.Dense(3)(inputs))
    a, p, n = (keras.Input((5,)) for _ in range(3))
    d = layers.Concatenate()([models.Distance()(embed(a), embed(p)), models.Distance()(embed(a), embed(n))])
    model = keras.Model([a, p, n], d)
    model.compile(optimizer="sgd", loss=lambda y_true, y_pred: student.softmax_ratio_loss(y_pred[:, 0], y_pred[:, 1]))
    x = [np.random.default_rng(i).normal(size=(16, 5)).astype("float32") for i in range(3)]
    history = model.fit(x, np.zeros(16), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1]), "training with it gave a loss that is not finite"
