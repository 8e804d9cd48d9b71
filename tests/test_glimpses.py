"""The ARC glimpse: Cauchy filterbanks placed by (x, y, zoom), differentiable."""
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from cab420utils import glimpses


def as_np(x):
    return ops.convert_to_numpy(x)


def test_zoom_zero_spreads_the_filters_over_the_whole_image():
    mu, stride = glimpses.glimpse_geometry(np.zeros((1, 3), np.float32), image_size=32, glimpse_size=8)
    np.testing.assert_allclose(as_np(mu)[0, 0, [0, -1]], [0.0, 31.0], atol=1e-5)   # first and last filter: the edges
    np.testing.assert_allclose(as_np(stride), [31 / 7], rtol=1e-6)


def test_zooming_in_shrinks_the_stride_around_the_same_centre():
    params = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, -2.0]], np.float32)
    mu, stride = glimpses.glimpse_geometry(params, 32, 8)
    stride = as_np(stride)
    assert stride[1] < stride[0] / 3 and stride[1] == pytest.approx(stride[2])   # only |zoom| counts
    np.testing.assert_allclose(as_np(mu).mean(axis=2), 15.5, atol=1e-4)            # centred on the image


def test_filters_are_normalised_and_a_constant_image_gives_a_constant_glimpse():
    params = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    fx, fy = glimpses.cauchy_filterbank(params, 20, 6)
    np.testing.assert_allclose(as_np(fx).sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(as_np(fy).sum(-1), 1.0, atol=1e-5)
    g = glimpses.take_glimpse(np.full((4, 20, 20), 0.7, np.float32), params, 6)
    np.testing.assert_allclose(as_np(g), 0.7, atol=1e-5)


def test_a_close_up_of_a_dot_puts_it_in_the_middle_of_the_glimpse():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 20, 6] = 1.0                                   # row 20 (y), column 6 (x)
    x, y = 2 * 6 / 27 - 1, 2 * 20 / 27 - 1                  # the dot's position in [-1, 1]
    params = np.array([[np.arctanh(x), np.arctanh(y), 1.5]], np.float32)
    g = as_np(glimpses.take_glimpse(image, params, 5))[0]
    assert np.unravel_index(g.argmax(), g.shape) == (2, 2)


def test_gradients_reach_the_parameters_and_are_finite_even_fully_zoomed():
    image = tf.constant(np.random.default_rng(1).random((2, 16, 16)), tf.float32)
    params = tf.Variable([[0.3, -0.2, 0.0], [0.1, 0.5, 20.0]])   # the second: tanh(20) = 1, the stride floor
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(glimpses.take_glimpse(image, params, 4)))
    grad = tape.gradient(loss, params).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad[0]).sum() > 0


def test_a_zoom_that_starts_at_zero_can_learn_to_zoom_in():
    # The controller's zoom starts at exactly 0, at the kink of |zoom|. TensorFlow's abs has slope 0 there, which
    # froze every ARC's zoom at 0 for good; zoom_amount has slope 1, as JAX's abs: stride = 31/7 (1 - |tanh z|),
    # so d stride / dz at 0 is -31/7, and the glimpse's gradient in its zoom is not 0.
    zoom = tf.Variable([0.0, 0.0, -0.5])
    with tf.GradientTape() as tape:
        amount = glimpses.zoom_amount(zoom)
        total = tf.reduce_sum(amount)
    np.testing.assert_allclose(amount.numpy(), [0.0, 0.0, 0.5])
    np.testing.assert_allclose(tape.gradient(total, zoom).numpy(), [1.0, 1.0, -1.0])
    params = tf.Variable(np.zeros((1, 3), np.float32))
    with tf.GradientTape(persistent=True) as tape:
        _, stride = glimpses.glimpse_geometry(params, image_size=32, glimpse_size=8)
        seen = tf.reduce_sum(glimpses.take_glimpse(np.eye(32, dtype=np.float32)[None], params, 8) ** 2)
    np.testing.assert_allclose(tape.gradient(stride, params).numpy(), [[0.0, 0.0, -31 / 7]], rtol=1e-5)
    assert abs(tape.gradient(seen, params).numpy()[0, 2]) > 1e-3


def test_layer_and_clear_errors():
    layer = glimpses.CauchyGlimpse(glimpse_size=4)
    out = layer([np.zeros((3, 10, 10), np.float32), np.zeros((3, 3), np.float32)])
    assert tuple(out.shape) == (3, 4, 4)
    with pytest.raises(ValueError, match="square"):
        glimpses.take_glimpse(np.zeros((1, 10, 12), np.float32), np.zeros((1, 3), np.float32), 4)
    with pytest.raises(ValueError, match=r"\(x, y, zoom\)"):
        glimpses.take_glimpse(np.zeros((1, 10, 10), np.float32), np.zeros((1, 2), np.float32), 4)
    with pytest.raises(ValueError, match="at least 2"):
        glimpses.CauchyGlimpse(glimpse_size=1)


def test_a_feature_glimpse_is_the_same_glimpse_of_every_channel():
    rng = np.random.default_rng(3)
    maps = rng.random((2, 10, 10, 3)).astype(np.float32)
    params = np.array([[0.3, -0.2, 0.5], [0.0, 0.0, 0.0]], np.float32)
    seen = as_np(glimpses.take_feature_glimpse(maps, params, 4))
    assert seen.shape == (2, 4, 4, 3)
    for c in range(3):
        np.testing.assert_allclose(seen[..., c], as_np(glimpses.take_glimpse(maps[..., c], params, 4)), rtol=1e-5,
                                   atol=1e-6)
    with pytest.raises(ValueError, match=r"\(batch, M, M, channels\)"):
        glimpses.take_feature_glimpse(maps[..., 0], params, 4)
    with pytest.raises(ValueError, match=r"\(x, y, zoom\)"):
        glimpses.take_feature_glimpse(maps, params[:, :2], 4)
