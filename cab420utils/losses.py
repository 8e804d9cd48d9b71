"""Losses for learning to compare, written with ``keras.ops`` so they run on
any Keras backend.

Conventions: a *distance* is Euclidean (not squared) unless a name says
``squared``; labels for pairs are 1 = same class, 0 = different.  Every square
root is taken of ``max(x, eps)``, so two identical embeddings give a finite
(zero) gradient instead of NaN.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

EPS = 1e-12


def _static_shape(x) -> tuple:
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else tuple(np.shape(x))


def _check_same_shape(name: str, **tensors) -> None:
    """Refuse mismatched inputs with a clear message, instead of letting
    broadcasting silently compare every row with every other row.  Unknown
    (symbolic) dimensions match anything."""
    shapes = {k: _static_shape(v) for k, v in tensors.items()}
    first = next(iter(shapes.values()))
    for shape in shapes.values():
        if len(shape) != len(first) or any(a is not None and b is not None and a != b
                                           for a, b in zip(shape, first)):
            raise ValueError(f"{name}: inputs must have the same shape, got " +
                             ", ".join(f"{k} {s}" for k, s in shapes.items()))


def safe_sqrt(x, eps: float = EPS):
    """``sqrt(max(x, eps))``: sqrt's gradient is infinite at 0, this one is 0 there."""
    return ops.sqrt(ops.maximum(x, eps))


def squared_distance(a, b):
    """Squared Euclidean distance between matching rows of ``a`` and ``b``."""
    _check_same_shape("squared_distance", a=a, b=b)
    return ops.maximum(ops.sum(ops.square(a - b), axis=-1), 0.0)


def euclidean_distance(a, b):
    """Euclidean distance between matching rows, safe at zero."""
    return safe_sqrt(squared_distance(a, b))


def pairwise_squared_distances(embeddings):
    """(N, N) squared distances between all rows, clamped at 0 (rounding can make
    ``|a|^2 + |b|^2 - 2ab`` slightly negative)."""
    sq = ops.sum(ops.square(embeddings), axis=1)
    d = ops.expand_dims(sq, 1) - 2.0 * ops.matmul(embeddings, ops.transpose(embeddings)) + ops.expand_dims(sq, 0)
    return ops.maximum(d, 0.0)


def pairwise_distances(embeddings):
    return safe_sqrt(pairwise_squared_distances(embeddings))


def _flat(y):
    return ops.reshape(ops.cast(y, "float32"), (-1,))


def contrastive_loss(same, distance, margin: float = 1.0, squared: bool = True):
    """Contrastive loss (Hadsell, Chopra & LeCun 2006), mean over pairs.

    same pairs are pulled together, different pairs pushed apart until they are
    ``margin`` away::

        squared=True  (Hadsell):  same * d**2 + (1 - same) * max(margin - d, 0)**2
        squared=False (slides):   same * d    + (1 - same) * max(margin - d, 0)
    """
    same, distance = _flat(same), _flat(distance)
    _check_same_shape("contrastive_loss", same=same, distance=distance)
    pull = distance
    push = ops.maximum(margin - distance, 0.0)
    if squared:
        pull, push = ops.square(pull), ops.square(push)
    return ops.mean(same * pull + (1.0 - same) * push)


class ContrastiveLoss(keras.losses.Loss):
    """``contrastive_loss`` as a Keras loss: ``y_true`` = same (1/0), ``y_pred`` = distance."""

    def __init__(self, margin: float = 1.0, squared: bool = True, name: str = "contrastive", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin, self.squared = margin, squared

    def call(self, y_true, y_pred):
        return contrastive_loss(y_true, y_pred, self.margin, self.squared)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "squared": self.squared}


def triplet_margin_loss(d_pos, d_neg, margin: float = 0.2):
    """Margin triplet loss: ``max(d(a, p) - d(a, n) + margin, 0)``, mean over triplets.
    Zero once the negative is ``margin`` further from the anchor than the positive."""
    d_pos, d_neg = _flat(d_pos), _flat(d_neg)
    _check_same_shape("triplet_margin_loss", d_pos=d_pos, d_neg=d_neg)
    return ops.mean(ops.maximum(d_pos - d_neg + margin, 0.0))


def softmax_ratio_loss(d_pos, d_neg, form: str = "mse"):
    """Hoffer & Ailon's (2015) triplet-network loss on plain distances.

    The softmax over ``(-d_pos, -d_neg)`` gives the probability that the
    *negative* is the closer one, ``p = sigmoid(d_pos - d_neg)``; training
    drives it to 0.  ``form='mse'`` is the paper's squared error ``p**2``;
    ``form='log'`` is the cross-entropy ``-log(1 - p) = softplus(d_pos - d_neg)``.
    """
    d_pos, d_neg = _flat(d_pos), _flat(d_neg)
    _check_same_shape("softmax_ratio_loss", d_pos=d_pos, d_neg=d_neg)
    z = d_pos - d_neg
    if form == "mse":
        return ops.mean(ops.square(ops.sigmoid(z)))
    if form == "log":
        return ops.mean(ops.softplus(z))
    raise ValueError(f"form must be 'mse' or 'log', got {form!r}")


def _masks(labels):
    labels = ops.reshape(labels, (-1,))
    same = ops.equal(ops.expand_dims(labels, 0), ops.expand_dims(labels, 1))
    n = ops.shape(labels)[0]
    not_self = ops.logical_not(ops.cast(ops.eye(n), "bool"))
    return ops.logical_and(same, not_self), ops.logical_not(same)


def batch_all_triplet_loss(labels, embeddings, margin: float = 0.2):
    """Online mining, *batch all*: every valid (a, p, n) in the batch; the mean
    over the triplets that still violate the margin (the others contribute 0
    and would only dilute the gradient)."""
    d = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    # loss[a, p, n] = d[a, p] - d[a, n] + margin over valid triplets.
    loss = ops.expand_dims(d, 2) - ops.expand_dims(d, 1) + margin
    valid = ops.logical_and(ops.expand_dims(positive, 2), ops.expand_dims(negative, 1))
    loss = ops.where(valid, ops.maximum(loss, 0.0), 0.0)
    active = ops.cast(loss > 1e-16, "float32")
    return ops.sum(loss) / (ops.sum(active) + 1e-16)


def batch_semi_hard_triplet_loss(labels, embeddings, margin: float = 0.2):
    """Online mining, *semi-hard* (FaceNet; what TensorFlow Addons provided).

    For every anchor-positive pair take the closest negative that is still
    further than the positive (``d_an > d_ap``); when no negative is further,
    take the furthest negative there is.  Mean over anchor-positive pairs.
    """
    d = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    big = ops.max(d) + 1.0
    d_ap = ops.expand_dims(d, 2)                       # [a, p, 1]
    d_an = ops.expand_dims(d, 1)                       # [a, 1, n]
    neg = ops.expand_dims(negative, 1)                 # [a, 1, n]
    outside = ops.logical_and(neg, d_an > d_ap)        # semi-hard candidates [a, p, n]
    closest_outside = ops.min(ops.where(outside, d_an, big), axis=2)
    furthest_inside = ops.max(ops.where(neg, d_an, 0.0), axis=2)
    has_outside = ops.any(outside, axis=2)
    chosen = ops.where(has_outside, closest_outside, furthest_inside)
    loss = ops.maximum(d - chosen + margin, 0.0)
    pos = ops.cast(positive, "float32")
    return ops.sum(loss * pos) / (ops.sum(pos) + 1e-16)


def batch_hard_triplet_loss(labels, embeddings, margin: float = 0.2):
    """Online mining, *batch hard* (Hermans et al. 2017): for each anchor its
    furthest positive and its closest negative in the batch."""
    d = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    hardest_pos = ops.max(ops.where(positive, d, 0.0), axis=1)
    hardest_neg = ops.min(ops.where(negative, d, ops.max(d) + 1.0), axis=1)
    has_pos = ops.cast(ops.any(positive, axis=1), "float32")
    loss = ops.maximum(hardest_pos - hardest_neg + margin, 0.0) * has_pos
    return ops.sum(loss) / (ops.sum(has_pos) + 1e-16)


class OnlineTripletLoss(keras.losses.Loss):
    """A mining triplet loss as a Keras loss: ``y_true`` = class labels of the
    batch, ``y_pred`` = its embeddings.  ``mining`` is 'semi-hard', 'hard' or 'all'."""

    MINERS = {"semi-hard": batch_semi_hard_triplet_loss, "hard": batch_hard_triplet_loss,
              "all": batch_all_triplet_loss}

    def __init__(self, margin: float = 0.2, mining: str = "semi-hard", name: str = "online_triplet", **kwargs):
        if mining not in self.MINERS:
            raise ValueError(f"mining must be one of {sorted(self.MINERS)}, got {mining!r}")
        super().__init__(name=name, **kwargs)
        self.margin, self.mining = margin, mining

    def call(self, y_true, y_pred):
        return self.MINERS[self.mining](y_true, y_pred, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "mining": self.mining}
