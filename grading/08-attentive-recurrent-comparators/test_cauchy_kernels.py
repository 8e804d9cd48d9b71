"""Hidden tests of Exercise 8.1, `cauchy_kernels(mu, gamma, image_size) -> (batch, S, image_size)`."""
import numpy as np


def kernels(student, mu, gamma, image_size):
    from keras import ops

    mu, gamma = np.asarray(mu, np.float32), np.asarray(gamma, np.float32)
    out = np.asarray(ops.convert_to_numpy(student.cauchy_kernels(ops.convert_to_tensor(mu), ops.convert_to_tensor(gamma),
                                                                 image_size)), np.float64)
    want = (mu.shape[0], mu.shape[1], image_size)
    assert out.shape == want, f"mu {mu.shape} over {image_size} pixels should give {want}, got {out.shape}"
    return out


def reference(mu, gamma, image_size):
    a = np.arange(image_size)[None, None, :]
    g = np.asarray(gamma, np.float64)[:, None, None]
    k = 1.0 / (np.pi * g * (1.0 + ((a - np.asarray(mu, np.float64)[:, :, None]) / g) ** 2))
    return k / k.sum(-1, keepdims=True)


def test_hand_values(student):
    """centre 2 of 5 pixels, width 2: weights proportional to 1/2, 4/5, 1, 4/5, 1/2"""
    got = kernels(student, [[2.0]], [2.0], 5)[0, 0]
    raw = np.array([0.5, 0.8, 1.0, 0.8, 0.5])
    assert np.allclose(got, raw / raw.sum(), atol=1e-4), f"expected {np.round(raw / raw.sum(), 4)}, got {np.round(got, 4)}"


def test_random_filters(student):
    """random centres (also outside the image) and widths agree with the formula"""
    rng = np.random.default_rng(801)
    for batch, s, n in ((3, 4, 20), (1, 1, 2), (5, 7, 9)):
        mu = rng.uniform(-3, n + 3, (batch, s))
        gamma = rng.uniform(0.2, 5, batch)
        assert np.allclose(kernels(student, mu, gamma, n), reference(mu, gamma, n), atol=1e-4), \
            f"{batch} x {s} filters over {n} pixels disagree with the normalised Cauchy kernels"


def test_one_width_per_glimpse(student):
    """each glimpse of the batch uses its own width"""
    got = kernels(student, [[4.0], [4.0]], [0.5, 4.0], 9)
    assert got[0, 0, 4] > got[1, 0, 4] + 0.1, "a width of 0.5 should give a far sharper filter than a width of 4"


def test_gradient(student):
    """gradients reach mu and gamma, finite"""
    import tensorflow as tf

    mu = tf.Variable(np.array([[1.5, 3.2, 6.0]], np.float32))
    gamma = tf.Variable(np.array([0.8], np.float32))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(student.cauchy_kernels(mu, gamma, 8) * tf.range(8, dtype=tf.float32))
    g_mu, g_gamma = tape.gradient(value, [mu, gamma])
    assert g_mu is not None and g_gamma is not None, "no gradient reaches mu or gamma: use keras.ops"
    # moving a filter right moves its weighted mean pixel right: a positive gradient
    assert np.all(np.isfinite(g_mu.numpy())) and np.all(g_mu.numpy() > 0), "d(mean pixel)/d(mu) should be positive"
    assert np.isfinite(g_gamma.numpy()).all()
