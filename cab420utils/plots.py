"""Figures the notebooks share: every one has a title and labelled axes, and
returns its matplotlib ``Figure`` so a notebook can save or tweak it."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from . import metrics


def show_pairs(images, pairs, n: int = 8, class_names=None, labels=None, scores=None, title="Pairs"):
    """A grid of ``n`` pairs: top row image A, bottom row image B, marked same/different
    (and with a score under each pair when given)."""
    n = min(n, len(pairs.same))
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n, 3.4), squeeze=False)
    for i in range(n):
        for row, idx in enumerate((pairs.a[i], pairs.b[i])):
            ax = axes[row, i]
            ax.imshow(np.squeeze(images[idx]), cmap="gray_r" if images.max() <= 1 else "gray")
            ax.set_xticks([]), ax.set_yticks([])
            if labels is not None and class_names is not None:
                ax.set_xlabel(class_names[labels[idx]], fontsize=7)
        verdict = "same" if pairs.same[i] else "different"
        axes[0, i].set_title(verdict if scores is None else f"{verdict}\n{scores[i]:.2f}", fontsize=9,
                             color="tab:green" if pairs.same[i] else "tab:red")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def score_histograms(scores, same, ax=None, xlabel="distance", title="Same vs different pairs", threshold=None):
    """Overlaid histograms of a score (or distance) for same and different pairs:
    the less they overlap, the better the model verifies."""
    scores = np.asarray(scores).reshape(-1)
    same = np.asarray(same).astype(bool).reshape(-1)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(scores.min(), scores.max(), 60)
    sns.histplot(scores[same], bins=bins, color="tab:green", label="same class", stat="density",
                 alpha=0.5, ax=ax)
    sns.histplot(scores[~same], bins=bins, color="tab:red", label="different class", stat="density",
                 alpha=0.5, ax=ax)
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.2f}")
    ax.set(xlabel=xlabel, ylabel="density", title=title)
    ax.legend()
    return ax.figure


def roc_plot(curves: dict, ax=None, title="ROC on the fixed test pairs"):
    """ROC curves, one per entry of ``{label: (scores, same)}``, with AUC and EER in the legend."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for label, (scores, same) in curves.items():
        fpr, tpr, _ = metrics.roc_curve(scores, same)
        auc, eer = metrics.roc_auc(scores, same), metrics.equal_error_rate(scores, same)
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc:.3f}, EER {eer:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", label="chance")
    ax.plot([0, 1], [1, 0], color="grey", ls="--", lw=0.8, label="EER line")
    ax.set(xlabel="false positive rate (different pairs called same)",
           ylabel="true positive rate (same pairs called same)", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    return ax.figure


def embedding_map(embeddings, labels, class_names=None, method: str = "pca", ax=None, title=None,
                  max_points: int = 3000, seed: int = 0):
    """A 2-D map of embeddings coloured by class: the embedding itself if it is
    2-D, else its PCA or t-SNE projection (of embeddings, never of logits)."""
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(labels))[:max_points]
    e, y = embeddings[keep], labels[keep]
    if e.shape[1] == 2:
        xy, how = e, "the embedding itself (2-D)"
    elif method == "pca":
        from sklearn.decomposition import PCA

        xy, how = PCA(2, random_state=seed).fit_transform(e), "PCA"
    elif method == "tsne":
        from sklearn.manifold import TSNE

        xy, how = TSNE(2, init="pca", random_state=seed, perplexity=30).fit_transform(e), "t-SNE"
    else:
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5.5))
    names = np.asarray(class_names)[y] if class_names is not None else y
    sns.scatterplot(x=xy[:, 0], y=xy[:, 1], hue=names, hue_order=list(class_names) if class_names is not None
                    else None, palette="tab10", s=8, linewidth=0, ax=ax)
    ax.set(xlabel=f"{how} axis 1", ylabel=f"{how} axis 2",
           title=title or f"Test embeddings ({len(y)} points, {how})")
    ax.legend(fontsize=7, markerscale=2, loc="best")
    return ax.figure


def training_curves(history, metrics_to_plot=("loss",), title="Training curves"):
    """Loss (and other metrics) per epoch, training and validation, from a Keras History or dict."""
    h = getattr(history, "history", history)
    fig, axes = plt.subplots(1, len(metrics_to_plot), figsize=(5 * len(metrics_to_plot), 3.5), squeeze=False)
    for ax, name in zip(axes[0], metrics_to_plot):
        epochs = np.arange(1, len(h[name]) + 1)
        ax.plot(epochs, h[name], marker="o", label=f"training {name}")
        if f"val_{name}" in h:
            ax.plot(epochs, h[f"val_{name}"], marker="o", label=f"validation {name}")
        ax.set(xlabel="epoch", ylabel=name, title=title)
        ax.legend()
    fig.tight_layout()
    return fig


def metric_comparison(rows: dict, metric_names, title="Comparison", ax=None, reference: dict | None = None):
    """Grouped bars: ``rows`` maps a method name to its metrics dict; optional
    ``reference`` lines (e.g. raw-pixel P@1) drawn across."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.8 * len(metric_names) * max(1, len(rows)) / 2 + 3, 3.5))
    width = 0.8 / len(rows)
    x = np.arange(len(metric_names))
    for i, (label, values) in enumerate(rows.items()):
        bars = ax.bar(x + i * width - 0.4 + width / 2, [values.get(m, np.nan) for m in metric_names], width,
                      label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    for name, value in (reference or {}).items():
        ax.axhline(value, ls="--", color="grey", lw=1)
        ax.text(len(metric_names) - 0.5, value, name, fontsize=7, va="bottom", ha="right", color="grey")
    ax.set_xticks(x, metric_names)
    ax.set(ylabel="value (higher is better)", ylim=(0, 1.05), title=title)
    ax.legend(fontsize=8, loc="lower left")
    return ax.figure
