"""Benchmarks (not tests): how fast the vectorised samplers are, against a
straightforward per-sample Python loop and against the training step they feed.

    python3 tools/course.py bench        # or: .venv/bin/python benchmarks/run.py

Prints one table; targets: sampling >= 50x the loop and >= 20x the training step.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from cab420utils import sampling  # noqa: E402


def loop_pairs(labels, n_pairs, rng):
    """What a student writes first: one pair at a time."""
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    classes = list(by_class)
    a, b, same = [], [], []
    for i in range(n_pairs):
        if i % 2 == 0:
            c = classes[rng.integers(len(classes))]
            x, y = rng.choice(by_class[c], 2, replace=False)
            same.append(1.0)
        else:
            c1, c2 = rng.choice(len(classes), 2, replace=False)
            x, y = rng.choice(by_class[classes[c1]]), rng.choice(by_class[classes[c2]])
            same.append(0.0)
        a.append(x), b.append(y)
    return np.array(a), np.array(b), np.array(same)


def loop_triplets(labels, n, rng):
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    classes = list(by_class)
    out = []
    for _ in range(n):
        cp, cn = rng.choice(len(classes), 2, replace=False)
        a, p = rng.choice(by_class[classes[cp]], 2, replace=False)
        out.append((a, p, rng.choice(by_class[classes[cn]])))
    return np.array(out).T


def rate(fn, n, repeats=3):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def training_rate(batch_size=256, steps=10):
    import keras

    from cab420utils import models

    x = np.random.default_rng(0).integers(0, 255, (batch_size * steps, 28, 28, 1)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 2, batch_size * steps).astype(np.float32)
    model = models.siamese_bce_model(models.vgg_backbone())
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    model.fit((x, x[::-1]), y, batch_size=batch_size, epochs=1, verbose=0)  # compile and warm up
    start = time.perf_counter()
    model.fit((x, x[::-1]), y, batch_size=batch_size, epochs=1, verbose=0)
    return len(y) / (time.perf_counter() - start)


def main():
    labels = np.repeat(np.arange(10), 5500)  # Fashion-MNIST's training split after validation
    n_loop, n_vec = 20_000, 200_000
    rng = np.random.default_rng(0)
    index = sampling.ClassIndex.from_labels(labels)
    rows = [
        ("pairs, vectorised", rate(lambda: sampling.make_pairs(labels, n_vec, rng, index=index), n_vec)),
        ("pairs, per-sample loop", rate(lambda: loop_pairs(labels, n_loop, rng), n_loop, repeats=1)),
        ("triplets, vectorised", rate(lambda: sampling.make_triplets(labels, n_vec, rng, index=index), n_vec)),
        ("triplets, per-sample loop", rate(lambda: loop_triplets(labels, n_loop, rng), n_loop, repeats=1)),
    ]
    train = training_rate()
    rows.append(("training step (Siamese BCE, batch 256)", train))
    print(f"{'what':42s} {'items/s':>14s}")
    for name, r in rows:
        print(f"{name:42s} {r:14,.0f}")
    pairs_vs_loop = rows[0][1] / rows[1][1]
    triplets_vs_loop = rows[2][1] / rows[3][1]
    print(f"\npairs: {pairs_vs_loop:,.0f}x the loop, {rows[0][1] / train:,.0f}x training throughput (target 50x, 20x)")
    print(f"triplets: {triplets_vs_loop:,.0f}x the loop, {rows[2][1] / train:,.0f}x training throughput")


if __name__ == "__main__":
    main()
