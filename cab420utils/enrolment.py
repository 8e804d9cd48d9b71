"""Enrolling new classes into a trained embedding, and identifying against a gallery.

A metric-learning model does not need retraining to recognise a class it has
never seen: embed a few labelled examples of it (**enrol** them in a
**gallery**) and call a query whatever its nearest gallery entry is.  Two rules:

* ``rule="nearest"`` — the class of the nearest gallery *image* (1-NN);
* ``rule="mean"`` — the class whose gallery *mean* (prototype) is nearest,
  the "nearest class mean" / prototypical-network rule.

Everything here works on embeddings (NumPy arrays), not on models, so it is
fast to test and the same for any notebook.  Distances are Euclidean.  The
module also holds the triplet-loss notebook's figure helpers: the three kinds
of triplet (easy, semi-hard, hard), an enrolled gallery, and queries with
their nearest gallery images.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import metrics

TRIPLET_KINDS = ("easy", "semi-hard", "hard")


# --------------------------------------------------------------------------- triplet kinds
def triplet_kind(d_pos, d_neg, margin: float) -> np.ndarray:
    """Name each triplet by where its negative lies (FaceNet's terms):

    * ``"hard"``: ``d_neg <= d_pos`` — the negative is at least as close as the positive;
    * ``"semi-hard"``: ``d_pos < d_neg < d_pos + margin`` — further, but inside the margin;
    * ``"easy"``: ``d_neg >= d_pos + margin`` — the margin loss is already zero.

    Only hard and semi-hard triplets have a non-zero margin loss.
    """
    d_pos, d_neg = np.broadcast_arrays(np.asarray(d_pos, dtype=np.float64), np.asarray(d_neg, dtype=np.float64))
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    kind = np.full(d_pos.shape, "semi-hard", dtype=object)
    kind[d_neg >= d_pos + margin] = "easy"
    kind[d_neg <= d_pos] = "hard"
    return kind


def negatives_by_kind(embeddings, labels, anchor: int, positive: int, margin: float, rng=None) -> dict:
    """For one anchor-positive pair, one negative of each kind, as
    ``{kind: (index, d_neg)}`` with ``d_pos`` under ``"d_pos"``.  Within a kind
    the negative is drawn at random (``rng``; default: the first one found in
    index order); a kind with no negative in the data is left out."""
    e = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if labels[anchor] != labels[positive] or anchor == positive:
        raise ValueError("anchor and positive must be two different images of the same class")
    d_pos = float(np.linalg.norm(e[anchor] - e[positive]))
    negatives = np.flatnonzero(labels != labels[anchor])
    d_neg = np.linalg.norm(e[negatives] - e[anchor], axis=1)
    kinds = triplet_kind(d_pos, d_neg, margin)
    out = {"d_pos": d_pos}
    for kind in TRIPLET_KINDS:
        candidates = np.flatnonzero(kinds == kind)
        if len(candidates):
            j = candidates[0] if rng is None else rng.choice(candidates)
            out[kind] = (int(negatives[j]), float(d_neg[j]))
    return out


# --------------------------------------------------------------------------- galleries
@dataclass(frozen=True)
class Gallery:
    """Enrolled examples: ``embeddings`` (n, D), their ``labels`` (n,) and the
    ``indices`` they came from in the pool they were drawn from."""

    embeddings: np.ndarray
    labels: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.labels)


def choose_gallery(labels, k: int, rng: np.random.Generator, classes=None) -> np.ndarray:
    """Indices of ``k`` examples of each class in ``classes`` (default: every
    class in ``labels``), drawn without replacement, grouped by class in the
    order of ``classes``."""
    labels = np.asarray(labels).reshape(-1)
    classes = np.unique(labels) if classes is None else np.asarray(classes).reshape(-1)
    if k < 1:
        raise ValueError(f"k must be at least 1 (one example per class), got {k}")
    if len(np.unique(classes)) != len(classes):
        raise ValueError(f"classes must not repeat, got {classes.tolist()}")
    chosen = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        if len(members) < k:
            raise ValueError(f"class {c!r} has {len(members)} example(s) in the pool, fewer than k = {k}")
        chosen.append(rng.choice(members, k, replace=False))
    return np.concatenate(chosen).astype(np.int64)


def enrol(embeddings, labels, k: int, rng: np.random.Generator, classes=None) -> Gallery:
    """Enrol ``k`` examples per class: draw them from the pool (``embeddings``,
    ``labels``) with :func:`choose_gallery` and keep their embeddings."""
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels).reshape(-1)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError(f"embeddings must be (N, D) with one label each; got {embeddings.shape} and {labels.shape}")
    idx = choose_gallery(labels, k, rng, classes)
    return Gallery(embeddings[idx], labels[idx], idx)


def class_means(embeddings, labels) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, means)``: each class's mean embedding (its prototype)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError(f"class_means needs (N, D) embeddings and N labels; got {embeddings.shape} and "
                         f"{len(labels)} labels")
    classes, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(classes), embeddings.shape[1]))
    np.add.at(sums, inverse, embeddings)
    return classes, sums / np.bincount(inverse)[:, None]


def _squared_distances(queries, references) -> np.ndarray:
    return metrics.squared_distances(np.asarray(queries, dtype=np.float64), np.asarray(references, dtype=np.float64))


def nearest(queries, gallery: Gallery, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` nearest gallery entries of each query: ``(positions, distances)``,
    both (N, n), nearest first; positions index into the gallery."""
    d = _squared_distances(queries, gallery.embeddings)
    n = min(n, d.shape[1])
    order = np.argsort(d, axis=1, kind="stable")[:, :n]
    return order, np.sqrt(np.take_along_axis(d, order, axis=1))


def identify(queries, gallery: Gallery, rule: str = "mean") -> np.ndarray:
    """The class each query is identified as, against ``gallery``:
    ``rule="nearest"`` (class of the nearest gallery image) or ``"mean"``
    (class of the nearest class mean).  With one example per class they agree."""
    if len(gallery) == 0:
        raise ValueError("the gallery is empty: enrol at least one example")
    if rule == "nearest":
        positions, _ = nearest(queries, gallery, 1)
        return gallery.labels[positions[:, 0]]
    if rule == "mean":
        classes, means = class_means(gallery.embeddings, gallery.labels)
        return classes[np.argmin(_squared_distances(queries, means), axis=1)]
    raise ValueError(f"rule must be 'nearest' or 'mean', got {rule!r}")


def accuracy_by_group(true_labels, predicted, groups: dict) -> dict:
    """Accuracy over the queries whose true class is in each group:
    ``groups = {"unseen": [5, 8], "seen": [0, 1, ...]}`` -> ``{"unseen": 0.9, ...}``.
    A group with no query gives NaN."""
    true_labels = np.asarray(true_labels).reshape(-1)
    predicted = np.asarray(predicted).reshape(-1)
    if true_labels.shape != predicted.shape:
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted)} predictions")
    out = {}
    for name, classes in groups.items():
        mask = np.isin(true_labels, np.asarray(classes))
        out[name] = float(np.mean(predicted[mask] == true_labels[mask])) if mask.any() else float("nan")
    return out


def enrolment_trials(pool_embeddings, pool_labels, query_embeddings, query_labels, unseen_classes,
                     ks=(1, 5, 20), rules=("nearest", "mean"), repeats: int = 10, seed: int = 0) -> list[dict]:
    """Identify every query against galleries of ``k`` examples per class, for
    each ``k`` and rule, over ``repeats`` random galleries (the same galleries
    for every rule).  Returns one row per (k, rule, repeat) with the accuracy on
    queries of ``unseen`` classes, of ``seen`` classes and ``all``."""
    pool_labels = np.asarray(pool_labels).reshape(-1)
    query_labels = np.asarray(query_labels).reshape(-1)
    unseen = np.asarray(unseen_classes).reshape(-1)
    groups = {"unseen": unseen, "seen": np.setdiff1d(np.unique(query_labels), unseen),
              "all": np.unique(query_labels)}
    rows = []
    for k in ks:
        for repeat in range(repeats):
            gallery = enrol(pool_embeddings, pool_labels, k, np.random.default_rng([seed, k, repeat]))
            for rule in rules:
                acc = accuracy_by_group(query_labels, identify(query_embeddings, gallery, rule), groups)
                rows.append({"k": k, "rule": rule, "repeat": repeat, **acc})
    return rows


# --------------------------------------------------------------------------- figures
def _image(ax, image, title=None, color="black", xlabel=None):
    ax.imshow(np.squeeze(image), cmap="gray_r", vmin=0)
    ax.set_xticks([]), ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8, color=color)
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=7)


def show_triplet_kinds(images, labels, anchor: int, positive: int, negatives: dict, class_names, margin: float,
                       title="An anchor, its positive, and a negative of each kind"):
    """One row: anchor, positive, then the negatives of :func:`negatives_by_kind`
    with ``d(a, p)``, ``d(a, n)`` and the triplet's margin loss."""
    import matplotlib.pyplot as plt

    kinds = [k for k in TRIPLET_KINDS if k in negatives]
    fig, axes = plt.subplots(1, 2 + len(kinds), figsize=(2.1 * (2 + len(kinds)), 2.8), squeeze=False)
    axes = axes[0]
    d_pos = negatives["d_pos"]
    _image(axes[0], images[anchor], "anchor", xlabel=class_names[labels[anchor]])
    _image(axes[1], images[positive], f"positive\nd(a,p) = {d_pos:.2f}", "tab:green",
           xlabel=class_names[labels[positive]])
    colours = {"easy": "tab:blue", "semi-hard": "tab:orange", "hard": "tab:red"}
    for ax, kind in zip(axes[2:], kinds):
        idx, d_neg = negatives[kind]
        loss = max(d_pos - d_neg + margin, 0.0)
        _image(ax, images[idx], f"{kind} negative\nd(a,n) = {d_neg:.2f}, loss {loss:.2f}", colours[kind],
               xlabel=class_names[labels[idx]])
    fig.suptitle(f"{title} (margin {margin})")
    fig.tight_layout()
    return fig


def show_gallery(images, gallery: Gallery, class_names, unseen_classes=(), per_class: int = 8,
                 title="The enrolled gallery"):
    """One row per enrolled class, up to ``per_class`` of its gallery images;
    classes the network never trained on are marked *unseen*."""
    import matplotlib.pyplot as plt

    classes = gallery.classes
    cols = min(per_class, max(int(np.sum(gallery.labels == c)) for c in classes))
    fig, axes = plt.subplots(len(classes), cols, figsize=(1.0 * cols + 1.6, 1.0 * len(classes) + 0.6),
                             squeeze=False)
    for row, c in zip(axes, classes):
        members = gallery.indices[gallery.labels == c][:cols]
        for j, ax in enumerate(row):
            ax.axis("off") if j >= len(members) else _image(ax, images[members[j]])
        unseen = c in set(np.asarray(unseen_classes).tolist())
        row[0].axis("on"), row[0].set_xticks([]), row[0].set_yticks([])
        row[0].set_ylabel(f"{class_names[c]}\n(unseen)" if unseen else class_names[c], rotation=0, ha="right",
                          va="center", fontsize=8, color="tab:red" if unseen else "black")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_identifications(query_images, query_labels, query_embeddings, gallery_images, gallery: Gallery, queries,
                         class_names, n_neighbours: int = 5, rule: str = "mean", unseen_classes=(),
                         title="Queries and their nearest gallery images"):
    """One row per query (indices ``queries`` into the query arrays): the query
    with the class it is identified as (by ``rule``; green if right, red if
    wrong), then its ``n_neighbours`` nearest gallery images and their
    distances (green: the query's class)."""
    import matplotlib.pyplot as plt

    queries = np.asarray(queries).reshape(-1)
    query_embeddings = np.asarray(query_embeddings)[queries]
    predicted = identify(query_embeddings, gallery, rule)
    positions, distances = nearest(query_embeddings, gallery, n_neighbours)
    unseen = set(np.asarray(unseen_classes).tolist())
    cols = 1 + positions.shape[1]
    fig, axes = plt.subplots(len(queries), cols, figsize=(1.3 * cols + 0.4, 1.55 * len(queries)), squeeze=False)
    for row, q, guess, pos, dist in zip(axes, queries, predicted, positions, distances):
        truth = query_labels[q]
        tag = " (unseen)" if truth in unseen else ""
        _image(row[0], query_images[q], f"{class_names[truth]}{tag}\n→ {class_names[guess]}",
               "tab:green" if guess == truth else "tab:red")
        for ax, p, d in zip(row[1:], pos, dist):
            c = gallery.labels[p]
            _image(ax, gallery_images[gallery.indices[p]], f"{class_names[c]}\n{d:.2f}",
                   "tab:green" if c == truth else "tab:red")
    axes[0, 0].annotate("query → identified as", (0.5, 1.45), xycoords="axes fraction", ha="center", fontsize=8)
    fig.suptitle(f"{title} (rule: {rule})")
    fig.tight_layout()
    return fig
