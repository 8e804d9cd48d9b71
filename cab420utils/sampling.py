"""Drawing pairs, triplets and class-balanced batches, vectorised.

Every sampler takes the labels and a seeded ``numpy.random.Generator`` and
returns *indices* into the data, never copies of images: the training data
stays in one array and a batch is gathered only when Keras asks for it.
Samplers never compute a loss; losses never sample.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from . import distribute
from ._validate import is_whole_number


@dataclass(frozen=True)
class ClassIndex:
    """The data's indices grouped by class: ``order[start[c]:start[c] + count[c]]``
    are the indices of class ``classes[c]``.  Built once, used by every draw."""

    classes: np.ndarray
    order: np.ndarray
    start: np.ndarray
    count: np.ndarray

    @classmethod
    def from_labels(cls, labels) -> "ClassIndex":
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must be a 1-D array of class ids, got shape {labels.shape}")
        if len(labels) == 0:
            raise ValueError("labels is empty: there is nothing to sample from")
        order = np.argsort(labels, kind="stable")
        classes, start, count = np.unique(labels[order], return_index=True, return_counts=True)
        return cls(classes, order, start, count)

    def members(self, class_pos: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """Data index of the ``rank``-th member of class position ``class_pos``."""
        return self.order[self.start[class_pos] + rank]

    def random_member(self, class_pos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.members(class_pos, (rng.random(len(class_pos)) * self.count[class_pos]).astype(np.int64))

    def require_pairs(self) -> None:
        """Positive pairs need two images of a class; say which classes lack them."""
        lonely = self.classes[self.count < 2]
        if len(lonely):
            raise ValueError(
                f"{len(lonely)} class(es) have fewer than 2 samples, so no same-class pair can be drawn from them: "
                f"{lonely[:10].tolist()}{' ...' if len(lonely) > 10 else ''}. Remove those samples "
                f"(e.g. keep labels whose count is >= 2) before sampling pairs or triplets."
            )
        if len(self.classes) < 2:
            raise ValueError("Only one class is present: a different-class pair needs at least two classes.")


def _check_count(name: str, n) -> int:
    """``n`` as a whole number of at least 1, or a ValueError naming ``name``."""
    if not is_whole_number(n) or n < 1:
        raise ValueError(f"{name} must be a whole number, at least 1; got {n!r}")
    return int(n)


def whole_shares(n_items: int, batch_size: int) -> int:
    """How many of ``n_items``, served in batches of ``batch_size``, an epoch uses
    so that every batch splits into equal shares for the replicas of data-parallel
    training (``CAB420_DISTRIBUTION=mirrored``, R replicas): ``batch_size`` must be
    a multiple of R (else a ValueError says so), and a last, partial batch is cut
    to a multiple of R (at most R - 1 items are left out).  One device: all of them."""
    replicas = distribute.replicas()
    if batch_size % replicas:
        raise ValueError(f"batches of {batch_size} cannot be shared equally by the {replicas} replicas of "
                         f"data-parallel training ({distribute.DISTRIBUTION_VARIABLE}=mirrored): choose a batch "
                         f"size that is a multiple of {replicas}")
    return n_items - (n_items % batch_size) % replicas


def _two_distinct(n: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For each entry, two different ranks in ``range(n)`` (n >= 2), uniformly."""
    first = (rng.random(len(n)) * n).astype(np.int64)
    # Shift by 1..n-1 and wrap: never the same rank, and every other rank equally likely.
    second = (first + 1 + (rng.random(len(n)) * (n - 1)).astype(np.int64)) % n
    return first, second


def make_pairs(labels, n_pairs: int, rng: np.random.Generator, same_fraction: float = 0.5,
               index: ClassIndex | None = None):
    """Draw ``n_pairs`` pairs of indices, ``same_fraction`` of them same-class.

    Classes are chosen uniformly, so a rare class is as likely as a common one;
    a same pair never pairs an image with itself.  Returns ``(a, b, same)``
    with ``same`` a float32 array of 1 (same class) and 0 (different).
    """
    n_pairs = _check_count("n_pairs", n_pairs)
    if not 0.0 <= same_fraction <= 1.0:
        raise ValueError(f"same_fraction is the share of same-class pairs, between 0 and 1; got {same_fraction!r}")
    index = index or ClassIndex.from_labels(labels)
    index.require_pairs()
    n_same = int(round(n_pairs * same_fraction))
    n_diff = n_pairs - n_same
    k = len(index.classes)

    c_same = rng.integers(0, k, n_same)
    i, j = _two_distinct(index.count[c_same], rng)
    a_same, b_same = index.members(c_same, i), index.members(c_same, j)

    c1, c2 = _two_distinct(np.full(n_diff, k), rng)
    a_diff, b_diff = index.random_member(c1, rng), index.random_member(c2, rng)

    a = np.concatenate([a_same, a_diff])
    b = np.concatenate([b_same, b_diff])
    same = np.concatenate([np.ones(n_same, np.float32), np.zeros(n_diff, np.float32)])
    shuffle = rng.permutation(n_pairs)
    return a[shuffle], b[shuffle], same[shuffle]


def make_triplets(labels, n_triplets: int, rng: np.random.Generator, index: ClassIndex | None = None):
    """Draw ``(anchor, positive, negative)`` indices: anchor and positive share
    a class (and are different images), the negative comes from another class."""
    n_triplets = _check_count("n_triplets", n_triplets)
    index = index or ClassIndex.from_labels(labels)
    index.require_pairs()
    k = len(index.classes)
    c_pos, c_neg = _two_distinct(np.full(n_triplets, k), rng)
    i, j = _two_distinct(index.count[c_pos], rng)
    return index.members(c_pos, i), index.members(c_pos, j), index.random_member(c_neg, rng)


def make_class_batches(labels, n_batches: int, classes_per_batch: int, per_class: int,
                       rng: np.random.Generator, index: ClassIndex | None = None) -> np.ndarray:
    """``(n_batches, classes_per_batch * per_class)`` indices: each batch holds
    ``per_class`` images of each of ``classes_per_batch`` distinct classes — the
    "m per class" batches that online triplet mining needs (every anchor then
    has positives and negatives inside its batch).  Every class must have at
    least ``per_class`` images."""
    n_batches = _check_count("n_batches", n_batches)
    index = index or ClassIndex.from_labels(labels)
    index.require_pairs()
    k = len(index.classes)
    if not 2 <= classes_per_batch <= k:
        raise ValueError(f"classes_per_batch must be between 2 and the number of classes ({k}), got {classes_per_batch}")
    if per_class < 2:
        raise ValueError(f"per_class must be at least 2 (an anchor needs a positive), got {per_class}")
    small = index.classes[index.count < per_class]
    if len(small):
        raise ValueError(
            f"{len(small)} class(es) have fewer than per_class = {per_class} images: {small[:10].tolist()}"
            f"{' ...' if len(small) > 10 else ''} (the smallest has {index.count.min()}). Their batches would repeat "
            f"images, each repeat a positive at distance 0: choose per_class <= {index.count.min()}, or leave "
            f"those classes out.")
    # Distinct classes per batch: the first columns of a random permutation of the classes.
    chosen = np.argsort(rng.random((n_batches, k)), axis=1)[:, :classes_per_batch]
    chosen = np.repeat(chosen, per_class, axis=1)
    # Members are drawn with replacement: for classes of thousands, a repeat is rare and harmless
    # (the losses' distances are safe at zero), and it keeps the draw one vectorised line.
    counts = index.count[chosen]
    rank = (rng.random(chosen.shape) * counts).astype(np.int64)
    return index.members(chosen, rank)


@dataclass(frozen=True)
class PairSet:
    """Fixed evaluation pairs: drawn once with a seed, reused by every notebook."""

    a: np.ndarray
    b: np.ndarray
    same: np.ndarray

    def __len__(self) -> int:
        return len(self.same)


def fixed_pairs(labels, n_pairs: int = 10_000, seed: int = 2024) -> PairSet:
    """The evaluation pairs of a split, half same and half different: the same
    ``seed`` gives the same pairs in every notebook, so their ROC AUCs compare."""
    a, b, same = make_pairs(labels, n_pairs, np.random.default_rng(seed))
    return PairSet(a, b, same)


#: Seeds of the course's fixed evaluation pairs: every notebook scores the same pairs.
VALIDATION_PAIR_SEED, TEST_PAIR_SEED = 2025, 2024


def evaluation_pairs(val_labels, test_labels, n_val: int = 5_000, n_test: int = 10_000) -> tuple[PairSet, PairSet]:
    """The course's validation pairs (for choosing thresholds) and test pairs
    (for reporting), the same in every notebook."""
    return (fixed_pairs(val_labels, n_val, seed=VALIDATION_PAIR_SEED),
            fixed_pairs(test_labels, n_test, seed=TEST_PAIR_SEED))


def as_image_batch(images) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) images as an (N, H, W, C) array, dtype kept."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, H, W) or (N, H, W, C), got {images.shape}")
    return images


def as_model_input(images) -> np.ndarray:
    """(N, H, W) images to the (N, H, W, 1) float32 array the models take."""
    return as_image_batch(images).astype(np.float32)


class EpochDataset(keras.utils.PyDataset):
    """A ``PyDataset`` that draws afresh at the start of each epoch, counting
    epochs by Keras' ``on_epoch_begin`` calls, not ``on_epoch_end``: ``fit`` reads
    a batch to learn its shapes and then calls ``on_epoch_end`` *before* the first
    epoch, which would otherwise skip epoch 0.  So the first training epoch sees
    exactly what was drawn at construction (``data[i]``).  A second ``fit`` on the
    same object goes on with the next epochs; build a new one with the same seed to
    replay the same batches.  ``redraw=False`` keeps one draw for ever (fixed
    validation batches).  Subclasses implement ``_draw`` (from ``self.epoch``)
    and call it at the end of their ``__init__``.
    """

    def __init__(self, redraw: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.redraw = redraw
        self.epoch, self._epochs_begun = 0, 0

    def _draw(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_epoch_begin(self) -> None:
        if self.redraw and self._epochs_begun > 0:
            self.next_epoch()
        self._epochs_begun += 1

    def next_epoch(self) -> None:
        """Draw the next epoch's items (Keras calls this through ``on_epoch_begin``)."""
        self.epoch += 1
        self._draw()


class _EpochSampler(EpochDataset):
    """Shared machinery of the labelled samplers: a fresh set of indices each
    epoch from ``default_rng([seed, epoch])``, so epoch ``e`` is the same on every
    rerun (epochs counted as :class:`EpochDataset` says).

    Under data-parallel training (``CAB420_DISTRIBUTION=mirrored``, R replicas)
    every batch must split into R equal shares: ``batch_size`` must be a multiple
    of R (else a ValueError says so), and a last, partial batch is cut to a
    multiple of R (at most R - 1 items of an epoch are left out)."""

    def __init__(self, x, labels, n_items: int, batch_size: int, seed: int, redraw: bool = True, **kwargs):
        super().__init__(redraw=redraw, **kwargs)
        x = as_model_input(x)
        labels = np.asarray(labels)
        if len(x) != len(labels):
            raise ValueError(f"{len(x)} images but {len(labels)} labels: they must match one to one")
        self.x, self.labels = x, labels
        self.index = ClassIndex.from_labels(labels)
        self.index.require_pairs()
        self.n_items, self.batch_size = _check_count("n_items", n_items), _check_count("batch_size", batch_size)
        self.seed = int(seed)
        self._used = whole_shares(self.n_items, self.batch_size)
        self._draw()

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def __len__(self) -> int:
        return math.ceil(self._used / self.batch_size)

    def _slice(self, i: int) -> slice:
        return slice(i * self.batch_size, min((i + 1) * self.batch_size, self._used))


class PairDataset(_EpochSampler):
    """Balanced same/different pairs, fresh each epoch: yields ``((xa, xb), same)``."""

    def _draw(self) -> None:
        self.a, self.b, self.same = make_pairs(self.labels, self.n_items, self._rng(), index=self.index)

    def __getitem__(self, i: int):
        s = self._slice(i)
        return (self.x[self.a[s]], self.x[self.b[s]]), self.same[s]


class TripletDataset(_EpochSampler):
    """Random (offline) triplets, fresh each epoch: yields ``((xa, xp, xn), zeros)``
    (the loss needs no target; Keras wants one)."""

    def _draw(self) -> None:
        self.anchor, self.positive, self.negative = make_triplets(self.labels, self.n_items, self._rng(),
                                                                  index=self.index)

    def __getitem__(self, i: int):
        s = self._slice(i)
        a = self.anchor[s]
        return (self.x[a], self.x[self.positive[s]], self.x[self.negative[s]]), np.zeros(len(a), np.float32)


class ClassBatchDataset(_EpochSampler):
    """m-per-class batches for online mining: yields ``(x, labels)`` with
    ``classes_per_batch`` classes x ``per_class`` images in every batch."""

    def __init__(self, x, labels, n_batches: int, classes_per_batch: int, per_class: int, seed: int,
                 redraw: bool = True, **kwargs):
        self.classes_per_batch, self.per_class = classes_per_batch, per_class
        super().__init__(x, labels, n_batches * classes_per_batch * per_class,
                         classes_per_batch * per_class, seed, redraw, **kwargs)

    def _draw(self) -> None:
        self.batches = make_class_batches(self.labels, len(self), self.classes_per_batch, self.per_class,
                                          self._rng(), index=self.index)

    def __getitem__(self, i: int):
        idx = self.batches[i]
        return self.x[idx], self.labels[idx]
