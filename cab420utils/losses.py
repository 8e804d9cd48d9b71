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


def _check_margin(name: str, margin, positive: bool) -> None:
    """A margin given as a number must make sense: above 0 for the contrastive loss (at 0 different
    pairs are never pushed apart), 0 or more for the triplet losses (below 0 a triplet whose negative
    is closer than its positive could already count as satisfied)."""
    if isinstance(margin, (int, float, np.number)) and not isinstance(margin, (bool, np.bool_)):
        if not np.isfinite(margin) or margin < 0 or (positive and margin == 0):
            raise ValueError(f"{name}: margin must be {'above 0' if positive else '0 or more'}, got {margin!r}")


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
    _check_margin("contrastive_loss", margin, positive=True)
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
        _check_margin("ContrastiveLoss", margin, positive=True)
        super().__init__(name=name, **kwargs)
        self.margin, self.squared = margin, squared

    def call(self, y_true, y_pred):
        return contrastive_loss(y_true, y_pred, self.margin, self.squared)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "squared": self.squared}


def _per_sample(batch_loss, y_pred):
    """A whole-batch loss repeated once per sample.  Keras averages a loss's
    per-sample values over the *global* batch; a loss that returns one number
    skips that step, and under a multi-device strategy it would be summed over
    the replicas instead of averaged (twice the loss on two GPUs)."""
    return ops.ones((ops.shape(y_pred)[0],), dtype=batch_loss.dtype) * batch_loss


def batch_contrastive_loss(labels, embeddings, margin: float = 1.0, squared: bool = True):
    """Contrastive loss over *every pair* in a batch of labelled embeddings.

    An m-per-class batch of ``B`` images holds ``B(B-1)/2`` pairs instead of
    ``B/2``: every same-class pair is pulled together and every different-class
    pair pushed out to ``margin``.  Different pairs far outnumber same pairs, so
    the two halves are averaged separately and added (each pair kind weighs
    the same, as in a balanced pair sampler)."""
    _check_margin("batch_contrastive_loss", margin, positive=True)
    positive, negative = _masks(labels)
    positive, negative = ops.cast(positive, "float32"), ops.cast(negative, "float32")
    distance = pairwise_distances(embeddings)
    pull = distance
    push = ops.maximum(margin - distance, 0.0)
    if squared:
        pull, push = ops.square(pull), ops.square(push)
    pull = ops.sum(pull * positive) / ops.maximum(ops.sum(positive), 1.0)
    push = ops.sum(push * negative) / ops.maximum(ops.sum(negative), 1.0)
    return pull + push


class OnlineContrastiveLoss(keras.losses.Loss):
    """``batch_contrastive_loss`` as a Keras loss: ``y_true`` = class labels of the
    batch, ``y_pred`` = its embeddings."""

    def __init__(self, margin: float = 1.0, squared: bool = True, name: str = "online_contrastive", **kwargs):
        _check_margin("OnlineContrastiveLoss", margin, positive=True)
        super().__init__(name=name, **kwargs)
        self.margin, self.squared = margin, squared

    def call(self, y_true, y_pred):
        return _per_sample(batch_contrastive_loss(y_true, y_pred, self.margin, self.squared), y_pred)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "squared": self.squared}


def triplet_margin_loss(d_pos, d_neg, margin: float = 0.2):
    """Margin triplet loss: ``max(d(a, p) - d(a, n) + margin, 0)``, mean over triplets.
    Zero once the negative is ``margin`` further from the anchor than the positive."""
    _check_margin("triplet_margin_loss", margin, positive=False)
    d_pos, d_neg = _flat(d_pos), _flat(d_neg)
    _check_same_shape("triplet_margin_loss", d_pos=d_pos, d_neg=d_neg)
    return ops.mean(ops.maximum(d_pos - d_neg + margin, 0.0))


def _check_ratio_form(form: str) -> None:
    if form not in ("mse", "log"):
        raise ValueError(f"form must be 'mse' or 'log', got {form!r}")


def softmax_ratio_loss(d_pos, d_neg, form: str = "mse"):
    """Hoffer & Ailon's (2015) triplet-network loss on plain distances.

    The softmax over ``(-d_pos, -d_neg)`` gives the probability that the
    *negative* is the closer one, ``p = sigmoid(d_pos - d_neg)``; training
    drives it to 0.  ``form='mse'`` is the paper's squared error ``p**2``;
    ``form='log'`` is the cross-entropy ``-log(1 - p) = softplus(d_pos - d_neg)``.
    """
    _check_ratio_form(form)
    d_pos, d_neg = _flat(d_pos), _flat(d_neg)
    _check_same_shape("softmax_ratio_loss", d_pos=d_pos, d_neg=d_neg)
    z = d_pos - d_neg
    return ops.mean(ops.square(ops.sigmoid(z)) if form == "mse" else ops.softplus(z))


def _distance_columns(y_pred):
    """Split a triplet model's output ``[d(a, p), d(a, n)]`` (shape (batch, 2))."""
    if len(_static_shape(y_pred)) != 2 or _static_shape(y_pred)[-1] not in (None, 2):
        raise ValueError("a triplet loss expects y_pred of shape (batch, 2) = [d(a, p), d(a, n)] "
                         f"(the output of models.triplet_model), got shape {_static_shape(y_pred)}")
    return y_pred[:, 0], y_pred[:, 1]


class TripletMarginLoss(keras.losses.Loss):
    """``triplet_margin_loss`` as a Keras loss on a triplet model's output
    ``[d(a, p), d(a, n)]``; ``y_true`` is ignored (Keras wants a target)."""

    def __init__(self, margin: float = 0.2, name: str = "triplet_margin", **kwargs):
        _check_margin("TripletMarginLoss", margin, positive=False)
        super().__init__(name=name, **kwargs)
        self.margin = margin

    def call(self, y_true, y_pred):
        return triplet_margin_loss(*_distance_columns(y_pred), self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


class SoftmaxRatioLoss(keras.losses.Loss):
    """``softmax_ratio_loss`` as a Keras loss on a triplet model's output
    ``[d(a, p), d(a, n)]``; ``y_true`` is ignored."""

    def __init__(self, form: str = "mse", name: str = "softmax_ratio", **kwargs):
        _check_ratio_form(form)
        super().__init__(name=name, **kwargs)
        self.form = form

    def call(self, y_true, y_pred):
        return softmax_ratio_loss(*_distance_columns(y_pred), self.form)

    def get_config(self):
        return {**super().get_config(), "form": self.form}


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
    _check_margin("batch_all_triplet_loss", margin, positive=False)
    d = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    # loss[a, p, n] = d[a, p] - d[a, n] + margin over valid triplets.
    loss = ops.expand_dims(d, 2) - ops.expand_dims(d, 1) + margin
    valid = ops.logical_and(ops.expand_dims(positive, 2), ops.expand_dims(negative, 1))
    loss = ops.where(valid, ops.maximum(loss, 0.0), 0.0)
    active = ops.cast(loss > 1e-16, "float32")
    return ops.sum(loss) / (ops.sum(active) + 1e-16)


def batch_all_softmax_ratio_loss(labels, embeddings, form: str = "mse"):
    """Hoffer & Ailon's softmax-ratio loss over *every* valid (a, p, n) of a
    batch, averaged.  It needs no mining: an easy triplet's loss is already
    near zero, so the many easy triplets of a batch weigh little on their own."""
    _check_ratio_form(form)
    d = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    z = ops.expand_dims(d, 2) - ops.expand_dims(d, 1)          # z[a, p, n] = d(a, p) - d(a, n)
    loss = ops.square(ops.sigmoid(z)) if form == "mse" else ops.softplus(z)
    valid = ops.cast(ops.logical_and(ops.expand_dims(positive, 2), ops.expand_dims(negative, 1)), "float32")
    return ops.sum(loss * valid) / ops.maximum(ops.sum(valid), 1.0)


class OnlineSoftmaxRatioLoss(keras.losses.Loss):
    """``batch_all_softmax_ratio_loss`` as a Keras loss: ``y_true`` = class labels
    of an m-per-class batch, ``y_pred`` = its embeddings."""

    def __init__(self, form: str = "mse", name: str = "online_softmax_ratio", **kwargs):
        _check_ratio_form(form)
        super().__init__(name=name, **kwargs)
        self.form = form

    def call(self, y_true, y_pred):
        return _per_sample(batch_all_softmax_ratio_loss(y_true, y_pred, self.form), y_pred)

    def get_config(self):
        return {**super().get_config(), "form": self.form}


def batch_semi_hard_triplet_loss(labels, embeddings, margin: float = 0.2):
    """Online mining, *semi-hard* (FaceNet; what TensorFlow Addons provided).

    For every anchor-positive pair take the closest negative that is still
    further than the positive (``d_an > d_ap``); when no negative is further,
    take the furthest negative there is.  Mean over anchor-positive pairs.
    """
    _check_margin("batch_semi_hard_triplet_loss", margin, positive=False)
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
    _check_margin("batch_hard_triplet_loss", margin, positive=False)
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
        _check_margin("OnlineTripletLoss", margin, positive=False)
        super().__init__(name=name, **kwargs)
        self.margin, self.mining = margin, mining

    def call(self, y_true, y_pred):
        return _per_sample(self.MINERS[self.mining](y_true, y_pred, self.margin), y_pred)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "mining": self.mining}
