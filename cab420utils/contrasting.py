"""Learning by contrasting, with few labels or none (notebooks 06 and 07).

* **Spatial contrasting** (Hoffer, Hubara & Ailon 2016): two patches of the
  same image should be closer to each other than to the patches of the other
  images in the batch — a cross-entropy over the batch whose logits are minus
  the distances.  No labels are needed.  :func:`sample_patch_pairs` draws the
  patches, :func:`spatial_contrasting_loss` scores them.
* **Semi-supervised learning by contrasting** (Hoffer & Ailon 2016): one
  labelled reference per class; a sample's class distribution is the softmax
  over minus its squared distances to the references.  Labelled samples get a
  cross-entropy, unlabelled ones the entropy of that distribution.
* Small encoders, few-label fine-tuning and a linear probe, shared by both.

Numerics, as in :mod:`cab420utils.losses`: squared distances are clamped at 0,
every square root is taken of ``max(x, eps)`` (so two coinciding embeddings
give finite gradients, not NaN), and every log-probability and entropy comes
from ``log_softmax``, never from ``log(softmax(...))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from .losses import EPS, safe_sqrt
from .sampling import EpochDataset, as_image_batch

# --------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchPairs:
    """Two patches from each image: ``first[i]`` and ``second[i]`` come from image
    ``source[i]``; ``corners_*`` hold each patch's top-left ``(row, col)``."""

    first: np.ndarray
    second: np.ndarray
    source: np.ndarray
    corners_first: np.ndarray
    corners_second: np.ndarray


def _as_image_batch(images) -> np.ndarray:
    images = as_image_batch(images)
    if len(images) == 0:
        raise ValueError("images is empty: there is nothing to cut patches from")
    return images


def patch_corners(n: int, image_size: tuple[int, int], patch_size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random top-left corners ``(row, col)`` of a ``patch_size`` square that
    lies wholly inside an image of ``image_size = (H, W)``, uniformly."""
    height, width = image_size
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)) or patch_size < 1:
        raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
    if patch_size > min(height, width):
        raise ValueError(f"patch_size {patch_size} does not fit in images of size {height}x{width}")
    rows = rng.integers(0, height - patch_size + 1, size=n)
    cols = rng.integers(0, width - patch_size + 1, size=n)
    return np.stack([rows, cols], axis=1)


def cut_patches(images, corners, patch_size: int) -> np.ndarray:
    """``images[i, r:r+p, c:c+p]`` for each ``corners[i] = (r, c)``, in one gather."""
    images = _as_image_batch(images)
    corners = np.asarray(corners)
    if corners.shape != (len(images), 2):
        raise ValueError(f"corners must have shape ({len(images)}, 2), got {corners.shape}")
    height, width = images.shape[1:3]
    if (corners < 0).any() or (corners[:, 0] + patch_size > height).any() or (corners[:, 1] + patch_size > width).any():
        raise ValueError(f"a {patch_size}x{patch_size} patch at one of these corners leaves the {height}x{width} image")
    offsets = np.arange(patch_size)
    rows = (corners[:, 0:1] + offsets)[:, :, None]
    cols = (corners[:, 1:2] + offsets)[:, None, :]
    return images[np.arange(len(images))[:, None, None], rows, cols]


def sample_patch_pairs(images, patch_size: int, rng: np.random.Generator, flip: bool = True,
                       jitter: float = 0.0) -> PatchPairs:
    """Two independent random ``patch_size`` squares from every image (they may
    overlap), each mirrored left-right with probability 1/2 when ``flip``, and
    its intensities scaled by a random factor in ``[1 - jitter, 1]``."""
    images = _as_image_batch(images)
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
    n = len(images)
    first_at = patch_corners(n, images.shape[1:3], patch_size, rng)
    second_at = patch_corners(n, images.shape[1:3], patch_size, rng)
    first, second = cut_patches(images, first_at, patch_size), cut_patches(images, second_at, patch_size)
    if flip:
        for patches in (first, second):
            mirror = rng.random(n) < 0.5
            patches[mirror] = patches[mirror, :, ::-1]
    if jitter:
        first = first * rng.uniform(1 - jitter, 1, (n, 1, 1, 1)).astype(np.float32)
        second = second * rng.uniform(1 - jitter, 1, (n, 1, 1, 1)).astype(np.float32)
    return PatchPairs(first, second, np.arange(n), first_at, second_at)


class PatchPairDataset(EpochDataset):
    """Unlabelled images in, patch pairs out: yields ``((first, second), zeros)``
    (the loss needs no target; Keras wants one).  Image order, corners and
    flips are drawn afresh each epoch from ``default_rng([seed, epoch])``, epochs
    counted as :class:`~cab420utils.sampling.EpochDataset` says (so ``fit``'s first
    epoch is epoch 0)."""

    def __init__(self, images, patch_size: int, batch_size: int, n_batches: int, seed: int,
                 flip: bool = True, jitter: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.images = _as_image_batch(images).astype(np.float32)
        patch_corners(1, self.images.shape[1:3], patch_size, np.random.default_rng(0))  # validates the size
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (a patch needs other images to be contrasted with), "
                             f"got {batch_size}")
        self.patch_size, self.batch_size, self.n_batches = int(patch_size), int(batch_size), int(n_batches)
        self.seed, self.flip, self.jitter = int(seed), flip, float(jitter)
        self._draw()

    def _draw(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        need = self.n_batches * self.batch_size
        self.order = np.concatenate([rng.permutation(len(self.images))
                                     for _ in range(math.ceil(need / len(self.images)))])[:need]

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, i: int):
        rows = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, i])  # the same batch whatever order Keras asks
        pairs = sample_patch_pairs(self.images[rows], self.patch_size, rng, self.flip, self.jitter)
        return (pairs.first, pairs.second), np.zeros(len(rows), np.float32)


# --------------------------------------------------------------------------
# Distances and the spatial-contrasting loss
# --------------------------------------------------------------------------


def cross_squared_distances(a, b):
    """(N, M) squared Euclidean distances between every row of ``a`` and every
    row of ``b``, clamped at 0 (``|a|^2 + |b|^2 - 2ab`` can round below it)."""
    a_shape, b_shape = tuple(a.shape), tuple(b.shape)
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise ValueError(f"expected two (N, D) matrices, got shapes {a_shape} and {b_shape}")
    if a_shape[1] is not None and b_shape[1] is not None and a_shape[1] != b_shape[1]:
        raise ValueError(f"the embeddings differ in size: {a_shape[1]} and {b_shape[1]} dimensions")
    a, b = ops.cast(a, "float32"), ops.cast(b, "float32")
    d = (ops.expand_dims(ops.sum(ops.square(a), axis=1), 1) - 2.0 * ops.matmul(a, ops.transpose(b))
         + ops.expand_dims(ops.sum(ops.square(b), axis=1), 0))
    return ops.maximum(d, 0.0)


def cross_distances(a, b, eps: float = EPS):
    """(N, M) Euclidean distances, with ``eps`` inside the square root."""
    return safe_sqrt(cross_squared_distances(a, b), eps)


def spatial_contrasting_loss(first, second):
    """Hoffer, Hubara & Ailon's spatial-contrasting loss, symmetrised.

    ``first[i]`` and ``second[i]`` embed two patches of image i.  Row i of the
    logits ``-|first[i] - second[j]|`` is a softmax over the batch whose right
    answer is j = i; the loss is its cross-entropy, averaged with the same
    over the columns (patch two looking for patch one), then over the batch.
    """
    if tuple(first.shape) != tuple(second.shape):
        raise ValueError(f"first and second must have the same shape, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}")
    logits = -cross_distances(first, second)
    rows = -ops.diagonal(ops.log_softmax(logits, axis=1))
    cols = -ops.diagonal(ops.log_softmax(logits, axis=0))
    return ops.mean(0.5 * (rows + cols))


class SpatialContrastingLoss(keras.losses.Loss):
    """``spatial_contrasting_loss`` on a patch-pair model's output, the two
    embeddings side by side ``[f(first) | f(second)]``; ``y_true`` is ignored."""

    def __init__(self, name: str = "spatial_contrasting", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        width = y_pred.shape[-1]
        if len(y_pred.shape) != 2 or (width is not None and width % 2):
            raise ValueError("expects y_pred of shape (batch, 2 * D) = [f(first) | f(second)] "
                             f"(the output of patch_pair_model), got {tuple(y_pred.shape)}")
        half = width // 2
        return spatial_contrasting_loss(y_pred[:, :half], y_pred[:, half:])


def projection_head(in_size: int, width: int = 128, out_size: int = 64, name: str = "head") -> keras.Model:
    """A small MLP between the encoder and the contrasting loss, used only while
    pretraining: the loss may stretch its outputs as far as it likes (the
    distances are unbounded) without stretching the encoder's features."""
    inputs = keras.Input((in_size,))
    x = layers.Dense(width, activation="relu")(inputs)
    return keras.Model(inputs, layers.Dense(out_size)(x), name=name)


def patch_pair_model(encoder: keras.Model, patch_size: int, channels: int = 1,
                     head: keras.Model | None = None) -> keras.Model:
    """Both patches through one shared encoder (and ``head``, when given); out
    come the two embeddings side by side."""
    first = keras.Input((patch_size, patch_size, channels), name="first_patch")
    second = keras.Input((patch_size, patch_size, channels), name="second_patch")
    embed = encoder if head is None else (lambda x: head(encoder(x)))
    out = layers.Concatenate(name="embeddings")([embed(first), embed(second)])
    return keras.Model([first, second], out, name="patch_pair")


# --------------------------------------------------------------------------
# Encoders, fine-tuning, linear probe
# --------------------------------------------------------------------------

NORMALISATIONS = ("group", "layer", "batch", "none")


def _normalisation(kind: str, name: str):
    if kind == "group":
        return layers.GroupNormalization(groups=8, name=name)
    if kind == "layer":
        # over height, width and channels of each image: no batch statistics.
        return layers.LayerNormalization(axis=(-3, -2, -1), name=name)
    if kind == "batch":
        return layers.BatchNormalization(name=name)
    return None


def conv_encoder(filters=(32, 64, 128), normalisation: str = "group", channels: int = 1,
                 name: str = "encoder") -> keras.Model:
    """A small fully convolutional encoder: for each width in ``filters`` a 3x3
    convolution, normalisation and ReLU, with 2x2 max pooling between widths;
    global average pooling at the end gives one ``filters[-1]`` vector.

    It takes images of any size, so the same weights embed 14x14 patches while
    pretraining and whole 28x28 images when fine-tuning.  Pixels in [0, 255]
    go in.  ``normalisation='group'`` (the default) uses no batch statistics,
    so training and test mode compute the same thing — see notebook 06 for why
    that matters with few labels.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    inputs = keras.Input((None, None, channels), name="image")
    x = layers.Rescaling(1 / 255.0)(inputs)
    for i, width in enumerate(filters):
        if i:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        x = layers.Conv2D(width, 3, padding="same", use_bias=normalisation == "none", name=f"conv{i + 1}")(x)
        norm = _normalisation(normalisation, f"norm{i + 1}")
        if norm is not None:
            x = norm(x)
        x = layers.Activation("relu", name=f"relu{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, x, name=name)


def classifier(encoder: keras.Model, n_classes: int = 10, image_shape=(28, 28, 1)) -> keras.Model:
    """The encoder followed by one softmax layer."""
    inputs = keras.Input(image_shape, name="image")
    logits = layers.Dense(n_classes, name="logits")(encoder(inputs))
    return keras.Model(inputs, logits, name="classifier")


def labelled_subset(labels, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` examples of every class, chosen by ``rng``
    (sorted, so the subset does not depend on the order of the classes)."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if per_class < 1 or (counts < per_class).any():
        raise ValueError(f"cannot take {per_class} per class: the smallest class has {counts.min()} examples")
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                                   for c in classes]))


def accuracy(model: keras.Model, images, labels, batch_size: int = 1000) -> float:
    """Top-1 accuracy of a model whose outputs are class scores."""
    scores = model.predict(_as_image_batch(images).astype(np.float32), batch_size=batch_size, verbose=0)
    return float((np.argmax(scores, axis=1) == np.asarray(labels)).mean())


def fine_tune(encoder: keras.Model, images, labels, steps: int, batch_size: int = 50,
              learning_rate: float = 2e-3, seed: int = 0, n_classes: int = 10,
              frozen_steps: int = 0) -> keras.Model:
    """Train ``classifier(encoder)`` with cross-entropy for ``steps`` Adam steps
    on a cosine schedule: the first ``frozen_steps`` train only the softmax
    layer (the encoder frozen), the rest every weight.  The encoder is trained
    in place: pass a fresh or copied one."""
    from .training import cosine_adam

    x = _as_image_batch(images).astype(np.float32)
    y = np.asarray(labels)
    if not 0 <= frozen_steps < steps:
        raise ValueError(f"frozen_steps must be in [0, steps), got {frozen_steps} of {steps}")
    keras.utils.set_random_seed(seed)   # the head's initial weights
    model = classifier(encoder, n_classes, x.shape[1:])
    batch_size = min(batch_size, len(x))
    rng = np.random.default_rng(seed)
    # Shuffled passes over the labelled images, back to back, cut to ``steps`` batches.
    passes = math.ceil(steps * batch_size / len(x))
    order = np.concatenate([rng.permutation(len(x)) for _ in range(passes)])[:steps * batch_size]
    for trainable, part in ((False, order[:frozen_steps * batch_size]), (True, order[frozen_steps * batch_size:])):
        if len(part) == 0:
            continue
        encoder.trainable = trainable
        n_steps = len(part) // batch_size
        model.compile(optimizer=cosine_adam(learning_rate, n_steps),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x[part], y[part], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    encoder.trainable = True
    return model


def recompute_batch_statistics(model: keras.Model, images, batch_size: int = 500) -> None:
    """Replace every BatchNormalization layer's moving mean and variance by the
    average of its batch statistics over ``images`` (the current weights'
    statistics, not a lagging moving average of earlier weights')."""
    norms = [layer for layer in _all_layers(model) if isinstance(layer, layers.BatchNormalization)]
    if not norms:
        return
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3 and len(model.input_shape) == 4:
        x = x[..., None]
    saved = [layer.momentum for layer in norms]
    try:
        for k, start in enumerate(range(0, len(x), batch_size), start=1):
            for layer in norms:
                layer.momentum = 1.0 - 1.0 / k   # a running average over the k batches seen so far
            model(x[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(norms, saved):
            layer.momentum = momentum


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def copy_encoder(encoder: keras.Model) -> keras.Model:
    """A fresh encoder with the same architecture and weights (so a fine-tune does
    not change the pretrained original)."""
    clone = keras.models.clone_model(encoder)
    clone.set_weights(encoder.get_weights())
    return clone


def features(encoder: keras.Model, images, batch_size: int = 1000) -> np.ndarray:
    """The encoder's output for each image, in inference mode."""
    return np.asarray(encoder.predict(_as_image_batch(images).astype(np.float32), batch_size=batch_size, verbose=0))


# --------------------------------------------------------------------------
# Semi-supervised learning by contrasting (notebook 07)
# --------------------------------------------------------------------------


def reference_log_probs(embeddings, references):
    """Log class probabilities from distances to one reference per class:
    ``log_softmax(-|x - r_k|^2)`` over the classes k (the talk's formula),
    shape (N, K) for N embeddings and K references."""
    return ops.log_softmax(-cross_squared_distances(embeddings, references), axis=1)


def entropy_from_log_probs(log_probs):
    """Entropy ``-sum_k p_k log p_k`` of each row, from log-probabilities (a
    probability of 0 contributes 0, never 0 * -inf = NaN)."""
    return -ops.sum(ops.exp(log_probs) * log_probs, axis=-1)


def reference_cross_entropy(labels, log_probs):
    """Mean cross-entropy ``-log p_label`` of labelled rows."""
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    picked = ops.take_along_axis(log_probs, ops.expand_dims(labels, 1), axis=1)
    return -ops.mean(picked)


def semi_supervised_contrasting_loss(labelled, labels, unlabelled, references, entropy_weight: float = 1.0):
    """Cross-entropy of the labelled embeddings' reference distributions plus
    ``entropy_weight`` times the mean entropy of the unlabelled ones'.  Returns
    ``(total, cross_entropy, entropy)``."""
    cross_entropy = reference_cross_entropy(labels, reference_log_probs(labelled, references))
    entropy = ops.mean(entropy_from_log_probs(reference_log_probs(unlabelled, references)))
    return cross_entropy + entropy_weight * entropy, cross_entropy, entropy
