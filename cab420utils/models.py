"""The networks the course trains: the slides' small VGG-style backbone and the
Siamese / triplet wrappers that share it between two or three inputs."""
from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .losses import euclidean_distance

#: Parameter count of the backbone in the CAB420 slides (filters 8-16-32, a
#: 256-unit dense layer, 32-d embedding, 28x28x1 input).
SLIDES_PARAMETER_COUNT = 429_176


def _conv_block(x, filters: int, spatial_dropout: float, pool: bool):
    x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(filters, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    if spatial_dropout:
        x = layers.SpatialDropout2D(spatial_dropout)(x)
    if pool:
        x = layers.MaxPooling2D(2)(x)
    return x


class L2Normalize(layers.Layer):
    """Scale each embedding to unit length, so distances lie in [0, 2] and a
    margin of 1 means the same thing for every batch."""

    def call(self, x):
        return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))


def vgg_backbone(embedding_size: int = 32, filters=(8, 16, 32), dense=(256,), spatial_dropout: float = 0.2,
                 dropout: float = 0.0, input_shape=(28, 28, 1), normalize: bool = False,
                 name: str = "backbone") -> keras.Model:
    """The slides' VGG-style embedding network.

    Pixels in [0, 255] go in (a ``Rescaling`` layer scales them), an
    ``embedding_size`` vector comes out; ``normalize=True`` puts it on the unit
    sphere.  Blocks of two 3x3 convolutions, batch normalisation and max
    pooling (none after the last block), then dense layers and a linear
    embedding.  With the defaults it has :data:`SLIDES_PARAMETER_COUNT` weights.
    """
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255.0)(inputs)
    for i, f in enumerate(filters):
        x = _conv_block(x, f, spatial_dropout, pool=i < len(filters) - 1)
    x = layers.Flatten()(x)
    for units in dense:
        x = layers.Dense(units)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    x = layers.Dense(embedding_size, name="embedding")(x)
    if normalize:
        x = L2Normalize(name="l2_normalize")(x)
    return keras.Model(inputs, x, name=name)


class AbsoluteDifference(layers.Layer):
    """|a - b| element-wise: symmetric, so swapping the two images changes nothing."""

    def call(self, a, b):
        return ops.abs(a - b)


class Distance(layers.Layer):
    """Euclidean distance between two batches of embeddings, safe at zero."""

    def call(self, a, b):
        return ops.expand_dims(euclidean_distance(a, b), -1)


def _inputs(backbone: keras.Model, names):
    shape = backbone.input_shape[1:]
    return [keras.Input(shape, name=n) for n in names]


def siamese_bce_model(backbone: keras.Model, hidden: int = 64) -> keras.Model:
    """Two images through one shared backbone, then a small head that says how
    likely the pair is to show the same class.

    The head sees ``|e_a - e_b|`` and ``e_a * e_b`` (both symmetric, so
    swapping the images changes nothing), a ``hidden``-unit ReLU layer
    (``hidden=0``: none, a logistic regression on those features) and one sigmoid unit.
    Train with binary cross-entropy on same (1) / different (0).
    """
    a, b = _inputs(backbone, ("image_a", "image_b"))
    ea, eb = backbone(a), backbone(b)
    x = layers.Concatenate(name="pair_features")([AbsoluteDifference(name="abs_difference")(ea, eb),
                                                  layers.Multiply(name="product")([ea, eb])])
    if hidden:
        x = layers.Dense(hidden, activation="relu", name="head_hidden")(x)
    same = layers.Dense(1, activation="sigmoid", name="same_probability")(x)
    return keras.Model([a, b], same, name="siamese_bce")


def siamese_distance_model(backbone: keras.Model) -> keras.Model:
    """Two images through one shared backbone, out comes their embedding distance
    (for the contrastive loss)."""
    a, b = _inputs(backbone, ("image_a", "image_b"))
    d = Distance(name="distance")(backbone(a), backbone(b))
    return keras.Model([a, b], d, name="siamese_distance")


def triplet_model(backbone: keras.Model) -> keras.Model:
    """Anchor, positive and negative through one shared backbone; out come the
    two distances stacked as ``[d(a, p), d(a, n)]`` (shape (batch, 2))."""
    a, p, n = _inputs(backbone, ("anchor", "positive", "negative"))
    ea, ep, en = backbone(a), backbone(p), backbone(n)
    d = layers.Concatenate(name="distances")([Distance(name="d_pos")(ea, ep), Distance(name="d_neg")(ea, en)])
    return keras.Model([a, p, n], d, name="triplet")


def embed(backbone: keras.Model, images, batch_size: int = 512) -> np.ndarray:
    """Embeddings of ``images`` ((N, H, W) or (N, H, W, 1)) in inference mode."""
    from .sampling import as_model_input

    return np.asarray(backbone.predict(as_model_input(images), batch_size=batch_size, verbose=0))


def pair_scores(model: keras.Model, images, pairs, batch_size: int = 512) -> np.ndarray:
    """The model's output for each pair of a :class:`~cab420utils.sampling.PairSet`."""
    from .sampling import as_model_input

    x = as_model_input(images)
    return np.asarray(model.predict([x[pairs.a], x[pairs.b]], batch_size=batch_size, verbose=0)).reshape(-1)
