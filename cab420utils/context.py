"""Contextual ARC (Shyam, Gupta & Dukkipati, 2017): one-shot N-way decisions
that look at all N candidates together.

A naive one-shot classifier scores a test image against each of the N
candidates on its own and takes the best.  The *full-context* model first runs
an ARC over every (test, candidate) pair, then reads the N pair encodings as a
sequence with a bidirectional LSTM — so each candidate's score can depend on
how the others looked — and turns each output into a score; a softmax over
the N scores is the decision.

:func:`one_shot_episodes` draws N-way episodes from a set of characters
(vectorised); :func:`episode_pairs` and :func:`lake_pairs` lay out the
(test, candidate) image pairs of episodes and of Lake et al.'s runs;
:func:`pair_encodings` runs the ARC over them; :func:`context_features` puts
each candidate's encoding and naive score together, and :func:`trial_features`
does both at once (:func:`feature_statistics` measures their spread, a chunk at
a time); :func:`context_model` is
the bidirectional-LSTM scorer; :func:`shuffle_candidates` re-orders candidates
for training, and :class:`ShuffledTrials` serves them to ``fit`` that way, batch
by batch.  To train the comparator *through* the decision, as Shyam et al.
do, :func:`one_shot_trials` draws single trials and :class:`EpisodeScorer` scores
a trial's candidates in one differentiable call (naive, or with a context model).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .sampling import EpochDataset, _check_count, whole_shares


def one_shot_episodes(n_characters: int, n_drawers: int, n_episodes: int, rng: np.random.Generator,
                      ways: int = 20, span: int | None = None):
    """Draw ``n_episodes`` one-shot episodes shaped like Lake et al.'s runs.

    Each episode has ``ways`` distinct characters, one drawing of each as the
    candidates and another person's drawing of each as the tests.  Returns
    ``(characters, candidate_drawers, test_drawers)``, each ``(n_episodes, ways)``;
    ``test_drawers != candidate_drawers`` everywhere.  ``span``: the characters of
    an episode lie within ``span`` consecutive characters of the set's order —
    Omniglot numbers characters alphabet by alphabet, so a span near ``ways``
    keeps most episodes within one alphabet, as Lake's runs are.
    """
    span = n_characters if span is None else int(span)
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1, got {n_episodes}")
    if ways < 2 or n_drawers < 2:
        raise ValueError(f"an episode needs at least 2 ways and 2 drawings per character; got {ways} and {n_drawers}")
    if not ways <= span <= n_characters:
        raise ValueError(f"{ways}-way episodes need a span of at least {ways} characters and at most the "
                         f"{n_characters} there are; got span={span}")
    start = rng.integers(0, n_characters - span + 1, (n_episodes, 1))
    chosen = np.argsort(rng.random((n_episodes, span)), axis=1)[:, :ways]    # ways distinct offsets, random order
    characters = start + chosen
    candidate_drawers = rng.integers(0, n_drawers, (n_episodes, ways))
    test_drawers = (candidate_drawers + rng.integers(1, n_drawers, (n_episodes, ways))) % n_drawers
    return characters, candidate_drawers, test_drawers


def episode_pairs(images, episodes):
    """The images of ``episodes`` from :func:`one_shot_episodes`, laid out for
    scoring: ``(tests, candidates, answers)`` with ``tests`` and ``candidates``
    shaped ``(episodes, ways, N, N)``; test ``i`` of an episode shows the same
    character as candidate ``answers[e, i]`` (= i)."""
    characters, candidate_drawers, test_drawers = episodes
    tests = images[characters, test_drawers]
    candidates = images[characters, candidate_drawers]
    answers = np.broadcast_to(np.arange(characters.shape[1]), characters.shape).copy()
    return tests, candidates, answers


def lake_pairs(runs):
    """Lake et al.'s runs in the layout of :func:`episode_pairs`: ``(tests,
    candidates, answers)`` shaped ``(runs, 20, N, N)``, ``(runs, 20, N, N)`` and
    ``(runs, 20)``."""
    return (np.stack([r.test_images for r in runs]), np.stack([r.train_images for r in runs]),
            np.stack([r.answers for r in runs]))


def pair_encodings(model, tests, candidates, batch_size: int = 1000, both_orders: bool = True,
                   append_scores: bool = False):
    """Run the ARC over every (test, candidate) pair of each episode.

    Returns ``(encodings, scores)``: the final hidden states,
    ``(episodes, tests, candidates, features)``, and the naive same-logits,
    ``(episodes, tests, candidates)`` (argmax over the last axis = naive ARC).
    With ``both_orders`` the features are the encodings of (test, candidate) and
    (candidate, test) side by side (``2 * hidden``) and the score is the mean of
    the two logits, since an ARC is not symmetric.  The pairs are gathered one
    batch at a time (pair ``(e, t, c)`` is number ``(e * T + t) * C + c``), so
    memory holds the results and one batch of images, not every pair's images.
    With ``append_scores`` each encoding has its score as one more feature, as
    :func:`context_features` puts them, written in place: the encodings are never
    held twice (in notebook 09's full profile they are 3.3 GB).
    """
    tests = np.asarray(tests, np.float32)
    candidates = np.asarray(candidates, np.float32)
    if tests.ndim != 4 or tests.shape[0] != candidates.shape[0] or tests.shape[2:] != candidates.shape[2:]:
        raise ValueError("tests and candidates must be (episodes, n, N, N) with the same episodes and image size; "
                         f"got {tests.shape} and {candidates.shape}")
    shape = (tests.shape[0], tests.shape[1], candidates.shape[1])
    n_pairs = int(np.prod(shape))
    if n_pairs == 0:
        raise ValueError(f"no pairs to encode: tests {tests.shape}, candidates {candidates.shape}")
    encodings, scores = None, np.empty(n_pairs, np.float32)
    for start in range(0, n_pairs, batch_size):
        pair = np.arange(start, min(start + batch_size, n_pairs))
        episode, test, candidate = np.unravel_index(pair, shape)
        orders = [(tests[episode, test], candidates[episode, candidate])]
        if both_orders:
            orders.append(orders[0][::-1])
        h = [model.encode(x, y) for x, y in orders]
        batch = np.concatenate([ops.convert_to_numpy(e) for e in h], axis=1)
        if encodings is None:                          # the first batch tells the width
            encodings = np.empty((n_pairs, batch.shape[1] + int(append_scores)), np.float32)
        encodings[pair, :batch.shape[1]] = batch
        scores[pair] = np.mean([ops.convert_to_numpy(model.head(e))[:, 0] for e in h], axis=0)
    if append_scores:
        encodings[:, -1] = scores
    return encodings.reshape(*shape, -1), scores.reshape(shape)


def trial_features(model, tests, candidates, batch_size: int = 1000, both_orders: bool = True):
    """What the context model reads, straight from the comparator: the result of
    ``context_features(*pair_encodings(...))`` without the encodings held twice
    (:func:`pair_encodings` with ``append_scores``).  Returns ``(features,
    scores)``: ``(trials, ways, features + 1)`` and the naive scores, ``(episodes,
    tests, candidates)``."""
    pairs, scores = pair_encodings(model, tests, candidates, batch_size, both_orders, append_scores=True)
    return pairs.reshape(-1, *pairs.shape[-2:]), scores


def context_features(encodings, scores) -> np.ndarray:
    """What the context model reads for each candidate: its pair encoding with
    the naive score appended, ``(..., ways, features + 1)``, as one trial per row:
    ``(trials, ways, features + 1)``."""
    encodings, scores = np.asarray(encodings, np.float32), np.asarray(scores, np.float32)
    if encodings.shape[:-1] != scores.shape:
        raise ValueError(f"encodings {encodings.shape} and scores {scores.shape} must describe the same pairs")
    features = np.concatenate([encodings, scores[..., None]], axis=-1)
    return features.reshape(-1, *features.shape[-2:])


def feature_statistics(features, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and (population) variance over all of ``features``'
    rows but the last axis, ``(..., features)`` -> two ``(features,)`` arrays:
    what Keras' ``Normalization.adapt`` measures, but computed ``chunk`` rows at
    a time (in float64, chunks merged with Chan et al.'s formula), so a set of
    several GB is never copied whole (``adapt`` copies it to subtract the mean).
    """
    features = np.asarray(features)
    if features.ndim < 2 or features.shape[-1] == 0 or features.size == 0:
        raise ValueError(f"features must be (..., features) with at least one row and one feature; got {features.shape}")
    chunk = _check_count("chunk", chunk)
    rows = features.reshape(-1, features.shape[-1])       # a view for any C-ordered array
    mean, m2, count = np.zeros(rows.shape[1]), np.zeros(rows.shape[1]), 0
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk].astype(np.float64)
        part_mean = part.mean(0)
        part_m2 = ((part - part_mean) ** 2).sum(0)
        n = len(part)
        delta = part_mean - mean
        mean = mean + delta * n / (count + n)
        m2 = m2 + part_m2 + delta ** 2 * count * n / (count + n)
        count += n
    if not (np.isfinite(mean).all() and np.isfinite(m2).all()):
        raise ValueError("features hold NaN or infinite values: the encodings or scores that made them are broken")
    return mean.astype(np.float32), (m2 / count).astype(np.float32)


def context_model(training_features, units: int = 32, dropout: float = 0.2, name: str = "full_context") -> keras.Model:
    """Full-context scorer: ``(batch, ways, features)`` in, ``(batch, ways)``
    logits out (softmax over the candidates = the decision).

    Each candidate's features are standardised (with the mean and spread of
    ``training_features``, shaped ``(trials, ways, features)``, from
    :func:`feature_statistics`), dropped out a
    little and projected to ``units`` numbers; a bidirectional LSTM then reads
    the candidates in turn, so each candidate's score is computed knowing all
    the others; one Dense unit per position turns its output into a score.
    """
    training_features = np.asarray(training_features)
    if training_features.ndim != 3:
        raise ValueError(f"training_features must be (trials, ways, features); got {training_features.shape}")
    ways, features = training_features.shape[1:]
    mean, variance = feature_statistics(training_features)
    standardise = layers.Normalization(axis=-1, mean=mean, variance=variance, name="standardise")
    inputs = keras.Input((ways, features), name="pair_features")
    x = layers.Dropout(dropout, name="dropout")(standardise(inputs))
    x = layers.Dense(units, activation="elu", name="project")(x)
    x = layers.Bidirectional(layers.LSTM(units, return_sequences=True), name="context")(x)
    scores = layers.Dense(1, name="score")(x)
    return keras.Model(inputs, layers.Reshape((ways,), name="logits")(scores), name=name)


def shuffle_candidates(encodings, answers, rng: np.random.Generator):
    """Put every example's candidates in a fresh random order (the BiLSTM reads
    them in order, and the order must carry no information); ``encodings`` is
    ``(examples, ways, features)``, ``answers`` ``(examples,)``.  Vectorised."""
    order = np.argsort(rng.random(encodings.shape[:2]), axis=1)
    shuffled = np.take_along_axis(encodings, order[:, :, None], axis=1)
    new_answers = np.argmax(order == np.asarray(answers)[:, None], axis=1)
    return shuffled, new_answers


class ShuffledTrials(EpochDataset):
    """The context model's training trials for ``fit``, made one batch at a time:
    ``(features, answers)`` of ``batch_size`` trials, in a fresh order each epoch,
    each trial's candidates in a fresh random order (:func:`shuffle_candidates`).

    ``features`` is ``(trials, ways, features)`` (:func:`context_features`),
    ``answers`` ``(trials,)``.  Nothing is copied up front: shuffling the whole
    set each epoch made a copy of it, and ``fit`` then copied that into a tensor
    of its own — 6.6 GB more for the full profile's 40,000 trials.  Epoch ``e``
    draws from ``default_rng([seed, e])`` and its batch ``i`` from
    ``default_rng([seed, e, i])``, so a rerun gives the same batches; epochs are
    counted as :class:`~cab420utils.sampling.EpochDataset` says (a second ``fit``
    on the same object goes on to the next epoch).  Under data-parallel training
    the batch size must be a multiple of the replicas, and a last, partial batch
    is cut to a multiple of them.
    """

    def __init__(self, features, answers, batch_size: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        features, answers = np.asarray(features, np.float32), np.asarray(answers)
        if features.ndim != 3:
            raise ValueError(f"features must be (trials, ways, features); got shape {features.shape}")
        if answers.shape != features.shape[:1]:
            raise ValueError(f"{len(features)} trials but answers shaped {answers.shape}: one answer per trial")
        if len(features) == 0:
            raise ValueError("no trials to train on")
        if not np.issubdtype(answers.dtype, np.integer) or answers.min() < 0 or answers.max() >= features.shape[1]:
            raise ValueError(f"answers must be candidate positions, whole numbers from 0 to {features.shape[1] - 1}")
        self.features, self.answers = features, answers
        self.batch_size, self.seed = _check_count("batch_size", batch_size), int(seed)
        self._used = whole_shares(len(features), self.batch_size)
        self._draw()

    def _draw(self) -> None:
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.features))[:self._used]

    def __len__(self) -> int:
        return -(-self._used // self.batch_size)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} of {len(self)}")
        rows = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return shuffle_candidates(self.features[rows], self.answers[rows],
                                  np.random.default_rng([self.seed, self.epoch, i]))


def one_shot_trials(images, n_trials: int, rng: np.random.Generator, ways: int = 20, span: int | None = None):
    """Draw ``n_trials`` one-shot trials from ``images`` (characters, drawers, N, N):
    one test image each, its ``ways`` candidates and the right one's position.

    Each trial is one test of an episode from :func:`one_shot_episodes`, picked at
    random, so the right candidate's position is random too.  Returns ``(tests,
    candidates, answers)`` shaped ``(n_trials, N, N)``, ``(n_trials, ways, N, N)``
    and ``(n_trials,)`` (the input of :class:`EpisodeScorer`).  Vectorised.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (characters, drawers, N, N); got shape {images.shape}")
    characters, candidate_drawers, test_drawers = one_shot_episodes(
        images.shape[0], images.shape[1], n_trials, rng, ways=ways, span=span)
    answers = rng.integers(0, ways, n_trials)
    rows = np.arange(n_trials)
    tests = images[characters[rows, answers], test_drawers[rows, answers]]
    return tests, images[characters, candidate_drawers], answers


class EpisodeScorer(keras.Model):
    """A trial's 20 candidate scores in one call, differentiable end to end.

    ``call([tests, candidates])``: ``(batch, N, N)`` test images and ``(batch,
    ways, N, N)`` candidates in, ``(batch, ways)`` logits out (softmax over the
    candidates = the decision).  ``comparator`` (an :class:`~cab420utils.arc.ARC`)
    compares the test image with every candidate in both orders, as
    :func:`pair_encodings` does.  Without ``context`` the logits are the naive
    scores (the mean of the two orders' same-logits); with a ``context`` model
    (:func:`context_model`) they are its scores of :func:`context_features`.  So a
    gradient step on a 20-way cross-entropy trains the comparator through the
    decision — with the naive rule, or jointly with the context model.
    """

    def __init__(self, comparator, context=None, **kwargs):
        super().__init__(**kwargs)
        self.comparator = comparator
        self.context = context

    def call(self, inputs, training: bool = False):
        tests, candidates = inputs
        tests, candidates = ops.cast(tests, "float32"), ops.cast(candidates, "float32")
        if len(tests.shape) != 3 or len(candidates.shape) != 4 or tuple(tests.shape[1:]) != tuple(candidates.shape[2:]):
            raise ValueError("EpisodeScorer takes tests (batch, N, N) and candidates (batch, ways, N, N); "
                             f"got {tuple(tests.shape)} and {tuple(candidates.shape)}")
        n, ways, size = ops.shape(candidates)[0], candidates.shape[1], candidates.shape[2]
        flat_candidates = ops.reshape(candidates, (-1, size, size))
        flat_tests = ops.reshape(ops.repeat(tests[:, None], ways, axis=1), (-1, size, size))
        encodings = [self.comparator.encode(x, y, training=training)
                     for x, y in ((flat_tests, flat_candidates), (flat_candidates, flat_tests))]
        scores = (self.comparator.head(encodings[0], training=training)
                  + self.comparator.head(encodings[1], training=training))[:, 0] / 2
        if self.context is None:
            return ops.reshape(scores, (n, ways))
        features = ops.concatenate([*encodings, scores[:, None]], axis=-1)
        return self.context(ops.reshape(features, (n, ways, -1)), training=training)


def decide(scores):
    """The one-shot decision from ``(trials, ways)`` scores (higher = more alike):
    ``(choice, confidence)`` — the index of the best candidate of each trial and
    its probability under a softmax over the trial's candidates."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (trials, ways) with at least 2 candidates; got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite numbers (a NaN or infinity cannot be ranked)")
    shifted = scores - scores.max(axis=1, keepdims=True)      # the best is 0: exp never overflows
    return scores.argmax(axis=1), 1.0 / np.exp(shifted).sum(axis=1)
