"""Differentiable glimpses for Attentive Recurrent Comparators (Shyam, Gupta &
Dukkipati, ICML 2017), written with ``keras.ops``.

A glimpse is an S x S view of an H x W image, taken through a grid of S x S
Cauchy kernels (the DRAW idea, with Cauchy instead of Gaussian kernels as in
ARC).  Three numbers place the grid:

* ``x``, ``y``: its centre, in [-1, 1] across the image (-1 = left/top edge);
* ``zoom`` in [-1, 1]: 0 spreads the S filters over the whole image, |zoom|
  near 1 packs them together (a close-up).  Only |zoom| counts
  (:func:`zoom_amount`, whose slope at 0 is the same on every backend).

The controller produces unbounded values; ``tanh`` maps them into [-1, 1].
Everything is differentiable in the image *and* the three parameters, which is
what lets the controller learn where to look.
"""
from __future__ import annotations

import math

import keras
from keras import ops

MIN_STRIDE = 0.1   # pixels: a glimpse never collapses to a single point (keeps gradients finite)
EPS = 1e-8


def zoom_amount(zoom):
    """``|zoom|``, written so that its slope at 0 is 1 on every backend.

    The controller's zoom starts at exactly 0 (its weights start at zero), where
    ``|z|`` has a kink.  TensorFlow takes the slope of ``abs`` there to be 0,
    JAX takes it to be 1: with TensorFlow's the zoom's gradient is 0 at the start
    and stays 0, so the glimpses could never zoom in.  ``where(z >= 0, z, -z)``
    is the same number and has slope 1 at 0 on both."""
    return ops.where(zoom >= 0, zoom, -zoom)


def glimpse_geometry(params, image_size: int, glimpse_size: int):
    """Filter centres and the shared stride from raw parameters ``(batch, 3)``.

    Returns ``(mu, stride)``: ``mu`` (batch, 2, S) the centres of the S filters
    along x (row 0) and y (row 1), in pixels; ``stride`` (batch,) the distance
    between neighbouring filters, also the kernels' width (Cauchy gamma)."""
    if glimpse_size < 2:
        raise ValueError(f"glimpse_size must be at least 2, got {glimpse_size}")
    p = ops.tanh(ops.convert_to_tensor(params, dtype="float32"))
    span = float(image_size - 1)
    centre = (p[:, :2] + 1.0) * span / 2.0                                   # (batch, 2) pixels
    stride = ops.maximum(span / (glimpse_size - 1) * (1.0 - zoom_amount(p[:, 2])), MIN_STRIDE)  # (batch,)
    offsets = ops.arange(glimpse_size, dtype="float32") - (glimpse_size - 1) / 2.0  # (S,)
    mu = centre[:, :, None] + stride[:, None, None] * offsets[None, None, :]      # (batch, 2, S)
    return mu, stride


def cauchy_kernels(mu, gamma, image_size: int):
    """Normalised Cauchy kernels over the pixels ``0 .. image_size - 1``:
    ``mu`` (batch, S) the filters' centres in pixels, ``gamma`` (batch,) their
    width.  Row i of the ``(batch, S, image_size)`` result is
    ``1 / (pi g (1 + ((a - mu_i) / g)^2))`` over pixels a, divided by its sum —
    so a glimpse of a constant image is that constant."""
    pixels = ops.arange(image_size, dtype="float32")                    # (N,)
    gamma = ops.cast(gamma, "float32")[:, None, None]                    # (batch, 1, 1)
    z = (pixels[None, None, :] - ops.cast(mu, "float32")[:, :, None]) / gamma   # (batch, S, N)
    kernel = 1.0 / (math.pi * gamma * (1.0 + ops.square(z)))
    return kernel / (ops.sum(kernel, axis=-1, keepdims=True) + EPS)


def cauchy_filterbank(params, image_size: int, glimpse_size: int):
    """The two (batch, S, image_size) filterbanks ``(fx, fy)`` at raw glimpse
    parameters ``params`` (batch, 3): :func:`cauchy_kernels` at the centres and
    stride of :func:`glimpse_geometry`, along x and along y."""
    mu, stride = glimpse_geometry(params, image_size, glimpse_size)
    return cauchy_kernels(mu[:, 0], stride, image_size), cauchy_kernels(mu[:, 1], stride, image_size)


def apply_filterbanks(images, fx, fy):
    """``(batch, S, S)`` glimpses ``fy @ image @ fx^T`` of ``images`` (batch, N, N):
    row i, column j of a glimpse is the image weighted by y-kernel i down the
    rows and x-kernel j across the columns.  (Extra leading axes broadcast, as
    in ``matmul``: ConvARC's channels.)"""
    images = ops.cast(images, "float32")
    return ops.matmul(ops.matmul(fy, images), ops.swapaxes(fx, -1, -2))


def _check_params(params) -> None:
    if tuple(params.shape)[-1] != 3:
        raise ValueError(f"params must be (batch, 3) = (x, y, zoom); got {tuple(params.shape)}")


def take_glimpse(images, params, glimpse_size: int):
    """``(batch, S, S)`` glimpses of square images ``(batch, N, N)`` at ``params``
    ``(batch, 3)``: ``fy @ image @ fx^T``."""
    shape = tuple(images.shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"images must be square, shaped (batch, N, N); got {shape}")
    _check_params(params)
    fx, fy = cauchy_filterbank(params, shape[1], glimpse_size)
    return apply_filterbanks(images, fx, fy)


def take_feature_glimpse(maps, params, glimpse_size: int):
    """``(batch, S, S, C)`` glimpses of square feature maps ``(batch, M, M, C)``
    at ``params`` ``(batch, 3)``: the same two filterbanks for every channel,
    ``fy @ map[..., c] @ fx^T`` (ConvARC: attention over a CNN's feature maps).
    With one channel it is :func:`take_glimpse` of that channel."""
    shape = tuple(maps.shape)
    if len(shape) != 4 or shape[1] != shape[2]:
        raise ValueError(f"feature maps must be square, shaped (batch, M, M, channels); got {shape}")
    _check_params(params)
    fx, fy = cauchy_filterbank(params, shape[1], glimpse_size)
    by_channel = ops.transpose(maps, (0, 3, 1, 2))                                # (batch, C, M, M)
    seen = apply_filterbanks(by_channel, fx[:, None], fy[:, None])                # (batch, C, S, S)
    return ops.transpose(seen, (0, 2, 3, 1))                                    # (batch, S, S, C)


def glimpse_box(params, image_size: int, glimpse_size: int):
    """Where a glimpse looks, for drawing: ``(x0, y0, width)`` in pixels per row,
    as NumPy, from the first to the last filter centre."""
    mu, _ = glimpse_geometry(params, image_size, glimpse_size)
    mu = ops.convert_to_numpy(mu)
    return mu[:, 0, 0], mu[:, 1, 0], mu[:, 0, -1] - mu[:, 0, 0]


class CauchyGlimpse(keras.layers.Layer):
    """``take_glimpse`` as a layer: inputs ``[images (batch, N, N), params (batch, 3)]``."""

    def __init__(self, glimpse_size: int = 8, **kwargs):
        super().__init__(**kwargs)
        if glimpse_size < 2:
            raise ValueError(f"glimpse_size must be at least 2, got {glimpse_size}")
        self.glimpse_size = glimpse_size

    def call(self, inputs):
        images, params = inputs
        return take_glimpse(images, params, self.glimpse_size)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], self.glimpse_size, self.glimpse_size)

    def get_config(self):
        return {**super().get_config(), "glimpse_size": self.glimpse_size}
