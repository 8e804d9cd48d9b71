"""Hidden tests of Exercise 8.2, `glimpse_from(images, fx, fy) -> (batch, Sy, Sx)`."""
import numpy as np


def glimpse(student, images, fx, fy):
    from keras import ops

    images, fx, fy = (np.asarray(x, np.float32) for x in (images, fx, fy))
    out = np.asarray(ops.convert_to_numpy(student.glimpse_from(*(ops.convert_to_tensor(x) for x in (images, fx, fy)))),
                     np.float64)
    want = (images.shape[0], fy.shape[1], fx.shape[1])
    assert out.shape == want, f"expected glimpses of shape {want}, got {out.shape}"
    return out


def test_rows_and_columns(student):
    """fy weighs rows, fx columns: an averaging pair of filters gives the mean of a 2x2 block"""
    image = np.arange(16.0).reshape(1, 4, 4)
    fx = np.zeros((1, 1, 4)); fx[0, 0, [0, 1]] = 0.5        # columns 0 and 1
    fy = np.zeros((1, 1, 4)); fy[0, 0, [2, 3]] = 0.5        # rows 2 and 3
    got = glimpse(student, image, fx, fy)[0, 0, 0]
    assert abs(got - image[0, 2:4, 0:2].mean()) < 1e-4, f"expected the mean of rows 2-3, columns 0-1 = 10.5, got {got:.4g}"


def test_random_batches(student):
    """random batches of different filter counts agree with fy @ image @ fx^T"""
    rng = np.random.default_rng(802)
    for batch, sx, sy, n in ((4, 3, 5, 10), (1, 2, 2, 2), (2, 6, 1, 7)):
        images, fx, fy = rng.random((batch, n, n)), rng.random((batch, sx, n)), rng.random((batch, sy, n))
        expected = np.einsum("bin,bnm,bjm->bij", fy, images, fx)
        assert np.allclose(glimpse(student, images, fx, fy), expected, atol=1e-4), \
            f"a batch of {batch} with {sy} x {sx} filters over {n} pixels disagrees with fy @ image @ fx^T"


def test_gradient_to_filters(student):
    """gradients flow to the filterbanks (where the controller's choice enters)"""
    import tensorflow as tf

    rng = np.random.default_rng(803)
    images = tf.constant(rng.random((2, 5, 5)).astype(np.float32))
    fx = tf.Variable(rng.random((2, 3, 5)).astype(np.float32))
    fy = tf.Variable(rng.random((2, 3, 5)).astype(np.float32))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(student.glimpse_from(images, fx, fy))
    grads = tape.gradient(value, [fx, fy])
    assert all(g is not None for g in grads), "no gradient reaches the filterbanks: use keras.ops"
