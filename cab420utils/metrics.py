"""The numbers every notebook reports, computed the same way everywhere.

*Verification* asks "are these two the same?": ROC AUC, equal error rate and
accuracy at a threshold chosen on **validation** pairs (never on test).
*Identification* asks "who is this?": leave-one-out retrieval inside the test
split — each test image's neighbours are the other test images, by Euclidean
distance — giving P@1, Recall@K, R-precision and MAP@R (Musgrave et al. 2020).
*One-shot* asks "which of these N is it?": accuracy of an argmax over scores.

Scores follow one convention: **higher means more likely the same**; pass
``-distance`` for a distance.
"""
from __future__ import annotations

import math

import numpy as np

from ._validate import is_whole_number


def _check_scores(scores, same):
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    same = np.asarray(same).reshape(-1)
    if scores.shape != same.shape:
        raise ValueError(f"scores and same must have one entry per pair: got {scores.shape[0]} scores "
                         f"and {same.shape[0]} labels")
    if not np.all((same == 0) | (same == 1)):
        raise ValueError("same must hold 1 (same class) or 0 (different class) for each pair")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{np.sum(~np.isfinite(scores))} score(s) are NaN or infinite: did training diverge?")
    same = same.astype(bool)
    if same.all() or not same.any():
        raise ValueError("verification needs both same and different pairs")
    return scores, same


def roc_curve(scores, same):
    """False and true positive rates at every threshold (score >= t means "same").
    Returns ``(fpr, tpr, thresholds)`` with thresholds decreasing."""
    scores, same = _check_scores(scores, same)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], same[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (~y).sum()]
    return fpr, tpr, np.r_[np.inf, s[last_of_tie]]


def roc_auc(scores, same) -> float:
    """Area under the ROC curve: the probability that a random same pair scores
    above a random different pair (ties count half)."""
    scores, same = _check_scores(scores, same)
    # Mann-Whitney U with average ranks for ties.
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    n_pos, n_neg = same.sum(), (~same).sum()
    return float((ranks[same].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def equal_error_rate(scores, same) -> float:
    """The error rate where false accepts equal false rejects (interpolated on the ROC)."""
    fpr, tpr, _ = roc_curve(scores, same)
    fnr = 1 - tpr
    i = np.flatnonzero(fnr <= fpr)[0]  # first point where the curves cross
    if i == 0:
        return float(fpr[0])
    # Linear interpolation between points i-1 and i of (fpr - fnr) crossing zero.
    d0, d1 = fpr[i - 1] - fnr[i - 1], fpr[i] - fnr[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def best_threshold(scores, same) -> float:
    """The threshold that maximises accuracy on these (validation) pairs."""
    scores, same = _check_scores(scores, same)
    fpr, tpr, thresholds = roc_curve(scores, same)
    accuracy = (tpr * same.sum() + (1 - fpr) * (~same).sum()) / len(same)
    i = int(np.argmax(accuracy))
    if i == 0:
        return float(scores.max() + 1.0)  # predict "different" for everything
    return float(thresholds[i])


def accuracy_at_threshold(scores, same, threshold: float) -> float:
    scores, same = _check_scores(scores, same)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(np.mean((scores >= threshold) == same))


def verification_report(test_scores, test_same, val_scores, val_same) -> dict:
    """ROC AUC and EER on test pairs; accuracy on test at the threshold chosen on validation pairs."""
    threshold = best_threshold(val_scores, val_same)
    return {
        "ROC AUC": roc_auc(test_scores, test_same),
        "EER": equal_error_rate(test_scores, test_same),
        "verification accuracy": accuracy_at_threshold(test_scores, test_same, threshold),
        "threshold (from validation)": threshold,
    }


def _check_embeddings(embeddings, labels):
    embeddings = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels).reshape(-1)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (N, D), got shape {embeddings.shape}")
    if len(embeddings) != len(labels):
        raise ValueError(f"{len(embeddings)} embeddings but {len(labels)} labels: they must match one to one")
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("embeddings contain NaN or infinite values: did training diverge?")
    if len(embeddings) < 2:
        raise ValueError("need at least two embeddings to retrieve neighbours")
    return embeddings, labels


def squared_distances(queries, references) -> np.ndarray:
    """(N, M) squared Euclidean distances between every query row and every
    reference row, as ``|q|^2 - 2 q.r + |r|^2`` (one matrix product), clamped
    at 0 because rounding can make it slightly negative."""
    q, r = np.asarray(queries), np.asarray(references)
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"queries and references must be (N, D) and (M, D) with the same D; "
                         f"got {q.shape} and {r.shape}")
    d = np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * q @ r.T + np.einsum("ij,ij->i", r, r)[None, :]
    return np.maximum(d, 0.0)


def _sorted_neighbour_labels(embeddings, labels, depth: int, chunk: int = 1024) -> np.ndarray:
    """(N, depth) labels of each point's nearest other points, nearest first
    (leave-one-out: a point is never its own neighbour)."""
    out = np.empty((len(embeddings), depth), dtype=labels.dtype)
    for start in range(0, len(embeddings), chunk):
        q = embeddings[start:start + chunk]
        d = squared_distances(q, embeddings)
        rows = np.arange(len(q))
        d[rows, start + rows] = np.inf
        if depth < d.shape[1]:
            part = np.argpartition(d, depth - 1, axis=1)[:, :depth]
        else:
            part = np.broadcast_to(np.arange(d.shape[1]), d.shape).copy()
        order = np.take_along_axis(part, np.argsort(np.take_along_axis(d, part, axis=1), axis=1, kind="stable"),
                                   axis=1)
        out[start:start + chunk] = labels[order]
    return out


def identification_report(embeddings, labels, ks=(1, 5, 10)) -> dict:
    """Leave-one-out retrieval metrics within one split.

    ``P@1``: the nearest other image has the same class (1-NN accuracy).
    ``Recall@K``: at least one of the K nearest has the same class.
    ``R-precision`` / ``MAP@R``: with R = the number of other images of the
    query's class, the precision of the R nearest, and its rank-aware average
    precision (Musgrave, Belongie & Lim 2020).
    """
    embeddings, labels = _check_embeddings(embeddings, labels)
    bad = [k for k in ks if not is_whole_number(k) or k < 1]
    if bad:   # (a K beyond the other images counts them all: at least one is of the query's class)
        raise ValueError(f"Recall@K needs each K to be a whole number, 1 or more; got {bad}")
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    r = counts[inverse] - 1
    if np.any(r == 0):
        raise ValueError("some classes have a single image: it has no same-class neighbour to retrieve")
    depth = int(min(max(r.max(), max(ks)), len(labels) - 1))
    hits = _sorted_neighbour_labels(embeddings, labels, depth) == labels[:, None]
    within_r = np.arange(depth)[None, :] < r[:, None]
    hits_r = hits & within_r
    precision_at_i = np.cumsum(hits_r, axis=1) / np.arange(1, depth + 1)
    report = {"P@1": float(hits[:, 0].mean())}
    for k in map(int, ks):
        if k > 1:
            report[f"Recall@{k}"] = float(hits[:, :k].any(axis=1).mean())
    report["R-precision"] = float((hits_r.sum(axis=1) / r).mean())
    report["MAP@R"] = float(((precision_at_i * hits_r).sum(axis=1) / r).mean())
    return report


def precision_at_1(embeddings, labels) -> float:
    """Leave-one-out 1-NN accuracy (the course's headline identification figure)."""
    embeddings, labels = _check_embeddings(embeddings, labels)
    return float((_sorted_neighbour_labels(embeddings, labels, 1)[:, 0] == labels).mean())


def raw_pixels(images) -> np.ndarray:
    """Images as flat vectors in [0, 1]: the "embedding" a student tries first."""
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"raw_pixels takes a batch of images, (N, H, W) or (N, H, W, C); got shape {images.shape}"
                         f"{' (one image? add a first axis: image[None])' if images.ndim == 1 else ''}")
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def distances_for_pairs(embeddings, pairs) -> np.ndarray:
    """Euclidean distance between the embeddings of each pair of a PairSet."""
    e = np.asarray(embeddings, dtype=np.float64)
    return np.sqrt(np.maximum(((e[pairs.a] - e[pairs.b]) ** 2).sum(axis=1), 0.0))


def embedding_report(test_embeddings, test_labels, test_pairs, val_embeddings, val_pairs, ks=(1, 5, 10)) -> dict:
    """Everything a notebook reports about an embedding: verification on the
    fixed test pairs (score = -distance, threshold from validation pairs) and
    leave-one-out identification on the test split."""
    report = verification_report(-distances_for_pairs(test_embeddings, test_pairs), test_pairs.same,
                                 -distances_for_pairs(val_embeddings, val_pairs), val_pairs.same)
    report.update(identification_report(test_embeddings, test_labels, ks))
    return report


def one_shot_accuracy(scores, answers) -> float:
    """N-way one-shot accuracy: ``scores`` is (trials, N), higher = more likely
    the match; ``answers`` the index of the right candidate per trial."""
    scores = np.asarray(scores)
    answers = np.asarray(answers).reshape(-1)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values, which cannot be ranked: did training diverge?")
    if scores.ndim != 2 or len(scores) != len(answers):
        raise ValueError(f"scores must be (trials, N) with one answer per trial; got {scores.shape} "
                         f"and {answers.shape[0]} answers")
    if np.any((answers < 0) | (answers >= scores.shape[1])):
        raise ValueError(f"answers must be candidate indices in 0..{scores.shape[1] - 1}")
    return float(np.mean(np.argmax(scores, axis=1) == answers))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the probability, when two classifiers are equally
    good, of a split of their disagreements at least as uneven as ``wins`` against
    ``losses`` (trials where only one of them is right; ties are left out)."""
    if not (is_whole_number(wins) and is_whole_number(losses)):
        raise ValueError(f"wins and losses are counts of trials, whole numbers; got {wins!r} and {losses!r}")
    wins, losses = int(wins), int(losses)
    if wins < 0 or losses < 0:
        raise ValueError(f"wins and losses are counts, 0 or more; got {wins} and {losses}")
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2 ** n
    return float(min(1.0, 2 * tail))


PROBE_STRENGTHS = (0.01, 0.1, 1.0, 10.0)   # logistic regression's C (inverse regularisation) tried on validation


def linear_probe(train_features, train_labels, test_features, test_labels, max_iter: int = 1000,
                 validation=None, strengths=PROBE_STRENGTHS) -> float:
    """Accuracy of a logistic regression trained on frozen ``train_features``
    (standardised with the training features' mean and spread) on the test features.

    Without ``validation`` the regression keeps scikit-learn's default strength
    (C = 1).  With ``validation=(features, labels)`` — images that are neither in
    the probe's training set nor the test split — it is fitted once for each C in
    ``strengths`` and the one most accurate on validation is scored on test, so
    every feature set (raw pixels' 784 numbers or a 32-number embedding) gets the
    regularisation that suits it and no baseline is understated by a setting
    chosen for another.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    train_features, test_features = np.asarray(train_features), np.asarray(test_features)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if len(train_features) != len(train_labels) or len(test_features) != len(test_labels):
        raise ValueError(f"features and labels differ in length: train {len(train_features)} vs {len(train_labels)}, "
                         f"test {len(test_features)} vs {len(test_labels)}")
    if validation is not None and (len(validation) != 2 or len(validation[0]) != len(validation[1])):
        raise ValueError("validation must be (features, labels) of the same length")
    if validation is not None and (not len(strengths) or min(strengths) <= 0):
        raise ValueError(f"strengths must be positive numbers (logistic regression's C); got {strengths!r}")

    def fitted(c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter)).fit(train_features,
                                                                                             train_labels)

    # One BLAS thread: beside TensorFlow's idle thread pool, more threads make L-BFGS ~50x slower.
    with threadpool_limits(1):
        if validation is None:
            best = fitted(1.0)
        else:
            val_features, val_labels = np.asarray(validation[0]), np.asarray(validation[1])
            # max keeps the first of equals: on a tie, the stronger regularisation (the smaller C, listed first)
            best = max((fitted(float(c)) for c in strengths),
                       key=lambda probe: (probe.predict(val_features) == val_labels).mean())
        return float((best.predict(test_features) == test_labels).mean())
