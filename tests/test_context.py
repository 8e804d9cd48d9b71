"""Contextual ARC: episodes like Lake's runs, pair encodings, the context model; the sign test."""
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from cab420utils import arc, context, metrics, sampling, training


def test_episodes_are_distinct_characters_within_a_span_with_other_drawers_for_the_tests():
    chars, cand, test = context.one_shot_episodes(100, 20, 500, np.random.default_rng(0), ways=20, span=30)
    assert chars.shape == cand.shape == test.shape == (500, 20)
    assert all(len(set(row)) == 20 for row in chars)                       # 20 different characters
    assert (chars.max(1) - chars.min(1) < 30).all() and chars.min() >= 0 and chars.max() < 100
    assert (test != cand).all() and cand.min() >= 0 and test.max() < 20
    # the right answer's position is spread over the 20 slots, not always the lowest character
    assert len(np.unique(np.argmin(chars, axis=1))) > 15
    again = context.one_shot_episodes(100, 20, 500, np.random.default_rng(0), ways=20, span=30)
    assert all((x == y).all() for x, y in zip((chars, cand, test), again))   # seeded: the same episodes


def test_episode_refuses_impossible_requests_with_a_message():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="span"):
        context.one_shot_episodes(100, 20, 5, rng, ways=20, span=10)
    with pytest.raises(ValueError, match="span"):
        context.one_shot_episodes(15, 20, 5, rng, ways=20)
    with pytest.raises(ValueError, match="2 drawings"):
        context.one_shot_episodes(100, 1, 5, rng)
    with pytest.raises(ValueError, match="n_episodes must be at least 1"):
        context.one_shot_episodes(100, 20, 0, rng)


def test_episode_pairs_look_up_the_drawings_and_answer_by_position():
    images = np.arange(30 * 4 * 2 * 2, dtype=np.float32).reshape(30, 4, 2, 2)
    episodes = context.one_shot_episodes(30, 4, 3, np.random.default_rng(1), ways=5, span=10)
    tests, candidates, answers = context.episode_pairs(images, episodes)
    chars, cand, test = episodes
    assert tests.shape == candidates.shape == (3, 5, 2, 2)
    np.testing.assert_array_equal(tests[2, 4], images[chars[2, 4], test[2, 4]])
    np.testing.assert_array_equal(candidates[1, 3], images[chars[1, 3], cand[1, 3]])
    np.testing.assert_array_equal(answers, np.tile(np.arange(5), (3, 1)))


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    m = arc.ARC(hidden=8, glimpses_per_image=2, glimpse_size=4, head_units=4)
    m([np.zeros((1, 12, 12), np.float32)] * 2)
    m.where.set_weights([np.random.default_rng(3).normal(size=(8, 3)).astype(np.float32)])
    return m


def test_pair_encodings_hold_both_orders_and_the_naive_scores(model):
    rng = np.random.default_rng(2)
    tests, candidates = rng.random((2, 3, 12, 12), np.float32), rng.random((2, 4, 12, 12), np.float32)
    encodings, scores = context.pair_encodings(model, tests, candidates, batch_size=5)
    assert encodings.shape == (2, 3, 4, 16) and scores.shape == (2, 3, 4)
    forward = keras.ops.convert_to_numpy(model.encode(tests[1, 2:3], candidates[1, 1:2]))[0]
    backward = keras.ops.convert_to_numpy(model.encode(candidates[1, 1:2], tests[1, 2:3]))[0]
    np.testing.assert_allclose(encodings[1, 2, 1], np.concatenate([forward, backward]), rtol=1e-4, atol=1e-5)
    # the naive score of each pair is the ARC's own two-order score, pair by pair
    expected = arc.pair_scores(model, np.repeat(tests[0], 4, axis=0), np.tile(candidates[0], (3, 1, 1)))
    np.testing.assert_allclose(scores[0].reshape(-1), expected, rtol=1e-4, atol=1e-5)
    one_order, _ = context.pair_encodings(model, tests, candidates, both_orders=False)
    np.testing.assert_allclose(one_order, encodings[..., :8], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="episodes"):
        context.pair_encodings(model, tests, candidates[:1])


def test_pair_encodings_can_append_the_score_as_context_features_do(model):
    rng = np.random.default_rng(5)
    tests, candidates = rng.random((2, 3, 12, 12), np.float32), rng.random((2, 4, 12, 12), np.float32)
    encodings, scores = context.pair_encodings(model, tests, candidates, batch_size=5)
    with_scores, same_scores = context.pair_encodings(model, tests, candidates, batch_size=5, append_scores=True)
    assert with_scores.shape == (2, 3, 4, 17)
    np.testing.assert_array_equal(same_scores, scores)
    np.testing.assert_array_equal(with_scores[..., -1], scores)
    np.testing.assert_allclose(with_scores.reshape(-1, 4, 17), context.context_features(encodings, scores),
                               rtol=1e-6, atol=1e-7)
    features, trial_scores = context.trial_features(model, tests, candidates, batch_size=5)
    assert features.shape == (6, 4, 17)                      # one trial (a test and its 4 candidates) per row
    np.testing.assert_array_equal(features, with_scores.reshape(-1, 4, 17))
    np.testing.assert_array_equal(trial_scores, scores)


def test_pair_encodings_gather_one_batch_of_images_at_a_time(model):
    """2,000 episodes of 400 pairs are 6.5 GB of images: only a batch's are gathered at once."""
    rng = np.random.default_rng(4)
    tests, candidates = rng.random((3, 2, 12, 12), np.float32), rng.random((3, 5, 12, 12), np.float32)
    seen, encode = [], model.encode
    spy = SimpleNamespace(encode=lambda a, b: seen.append(len(a)) or encode(a, b), head=model.head)
    encodings, scores = context.pair_encodings(spy, tests, candidates, batch_size=7)
    assert max(seen) <= 7 and sum(seen) == 2 * 30            # 30 pairs, both orders
    whole, whole_scores = context.pair_encodings(model, tests, candidates, batch_size=1000)
    np.testing.assert_allclose(encodings, whole, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores, whole_scores, rtol=1e-4, atol=1e-5)
    # pair (e, t, c) is test t of episode e against candidate c, as arc.every_pair lays them out
    a, b = arc.every_pair(tests, candidates)
    forward = keras.ops.convert_to_numpy(model.encode(a[17:18], b[17:18]))[0]
    np.testing.assert_allclose(encodings.reshape(30, -1)[17, :8], forward, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="no pairs"):
        context.pair_encodings(model, tests[:, :0], candidates)


def test_lake_pairs_stack_the_runs():
    runs = [SimpleNamespace(test_images=np.full((20, 4, 4), k), train_images=np.full((20, 4, 4), -k),
                            answers=np.arange(20)[::-1]) for k in range(3)]
    tests, candidates, answers = context.lake_pairs(runs)
    assert tests.shape == candidates.shape == (3, 20, 4, 4) and answers.shape == (3, 20)
    assert tests[2].min() == 2 and candidates[1].max() == -1 and answers[0, 0] == 19


def test_context_features_append_the_score_and_refuse_mismatches():
    encodings, scores = np.zeros((2, 3, 5, 4)), np.arange(30.0).reshape(2, 3, 5)
    features = context.context_features(encodings, scores)
    assert features.shape == (6, 5, 5)
    np.testing.assert_array_equal(features[4, :, -1], scores[1, 1])
    with pytest.raises(ValueError, match="same pairs"):
        context.context_features(encodings, scores[:, :2])


def test_shuffling_candidates_moves_the_answer_with_its_features():
    rng = np.random.default_rng(4)
    features = rng.random((50, 6, 3))
    answers = rng.integers(0, 6, 50)
    shuffled, moved = context.shuffle_candidates(features, answers, np.random.default_rng(5))
    np.testing.assert_array_equal(shuffled[np.arange(50), moved], features[np.arange(50), answers])
    np.testing.assert_allclose(np.sort(shuffled, axis=1), np.sort(features, axis=1))
    assert (moved != answers).any()


def test_shuffled_trials_serve_every_trial_once_an_epoch_with_its_answer_moved_with_its_candidates():
    rng = np.random.default_rng(9)
    features = rng.random((50, 6, 3)).astype(np.float32)
    answers = rng.integers(0, 6, 50)
    trials = context.ShuffledTrials(features, answers, batch_size=16, seed=3)
    assert len(trials) == 4 and trials.features is features          # no copy of the training set
    seen = []
    for i in range(len(trials)):
        x, y = trials[i]
        assert x.shape == (16 if i < 3 else 2, 6, 3) and y.shape == x.shape[:1]
        seen.append(x)
        # each served trial is one of the originals, its candidates reordered, the answer moved with them
        original = np.argmin(np.abs(np.sort(x, 1)[:, None] - np.sort(features, 1)[None]).sum((2, 3)), axis=1)
        np.testing.assert_allclose(np.sort(x, 1), np.sort(features[original], 1))
        np.testing.assert_array_equal(x[np.arange(len(x)), y], features[original, answers[original]])
    epoch0 = np.concatenate(seen)
    np.testing.assert_allclose(np.sort(epoch0.sum((1, 2))), np.sort(features.sum((1, 2))), rtol=1e-6)  # all, once
    again = context.ShuffledTrials(features, answers, batch_size=16, seed=3)
    np.testing.assert_array_equal(again[2][0], trials[2][0])         # the seed repeats the batches
    trials.next_epoch()                                                # what fit's next epoch asks for
    assert not np.array_equal(trials[0][0], again[0][0])               # a fresh order
    with pytest.raises(IndexError):
        trials[4]


def test_shuffled_trials_refuse_what_cannot_be_trained_on(monkeypatch):
    features, answers = np.zeros((10, 4, 3), np.float32), np.zeros(10, int)
    with pytest.raises(ValueError, match="trials, ways, features"):
        context.ShuffledTrials(features[..., 0], answers, 4, seed=0)
    with pytest.raises(ValueError, match="one answer per trial"):
        context.ShuffledTrials(features, answers[:9], 4, seed=0)
    with pytest.raises(ValueError, match="from 0 to 3"):
        context.ShuffledTrials(features, answers + 4, 4, seed=0)
    with pytest.raises(ValueError, match="no trials"):
        context.ShuffledTrials(features[:0], answers[:0], 4, seed=0)
    with pytest.raises(ValueError, match="batch_size must be a whole number, at least 1"):
        context.ShuffledTrials(features, answers, 0, seed=0)
    monkeypatch.setattr(sampling.distribute, "replicas", lambda: 2)
    with pytest.raises(ValueError, match="multiple of 2"):
        context.ShuffledTrials(features, answers, 3, seed=0)
    halves = context.ShuffledTrials(features[:9], answers[:9], 4, seed=0)   # 9 trials: the odd one left out
    assert len(halves) == 2 and sum(len(halves[i][1]) for i in range(len(halves))) == 8


def test_feature_statistics_match_numpy_and_keras_adapt_across_chunks():
    rng = np.random.default_rng(12)
    features = rng.normal(3.0, 40.0, (37, 5, 4)).astype(np.float32) + np.arange(4) * 1000   # far from standardised
    rows = features.reshape(-1, 4).astype(np.float64)
    for chunk in (1, 7, 185, 10_000):                        # one row a chunk, a ragged last chunk, one chunk
        mean, variance = context.feature_statistics(features, chunk=chunk)
        assert mean.dtype == variance.dtype == np.float32 and mean.shape == variance.shape == (4,)
        np.testing.assert_allclose(mean, rows.mean(0), rtol=1e-6)
        np.testing.assert_allclose(variance, rows.var(0), rtol=1e-5)
    adapted = keras.layers.Normalization(axis=-1)
    adapted.adapt(features.reshape(-1, 4))                   # what context_model did before
    given = keras.layers.Normalization(axis=-1, mean=mean, variance=variance)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(given(features[:3])),
                               keras.ops.convert_to_numpy(adapted(features[:3])), rtol=1e-4, atol=1e-4)
    model = context.context_model(features, units=4)
    standardised = keras.Model(model.input, model.get_layer("standardise").output).predict(features, verbose=0)
    np.testing.assert_allclose(standardised.reshape(-1, 4).mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(standardised.reshape(-1, 4).std(0), 1, atol=1e-4)
    with pytest.raises(ValueError, match="NaN or infinite"):
        context.feature_statistics(np.where(np.arange(4) == 2, np.nan, features))
    with pytest.raises(ValueError, match="at least one row"):
        context.feature_statistics(features[:0])
    with pytest.raises(ValueError, match="chunk must be a whole number"):
        context.feature_statistics(features, chunk=0)


def test_the_context_model_learns_a_decision_that_needs_the_other_candidates():
    # The right candidate is the one whose feature is largest *within its trial*: no threshold on one
    # candidate's feature alone can find it (the level of each trial is random), the context can.
    rng = np.random.default_rng(6)
    trials, ways = 600, 5
    level = rng.normal(0, 3, (trials, 1))
    features = (level + rng.normal(0, 1, (trials, ways)))[..., None].astype(np.float32)
    answers = features[..., 0].argmax(1)
    keras.utils.set_random_seed(0)
    model = context.context_model(features, units=8, dropout=0.0)
    assert tuple(model.output.shape) == (None, ways)
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(context.ShuffledTrials(features, answers, 50, seed=0), epochs=15, verbose=0)   # as notebook 09
    accuracy = metrics.one_shot_accuracy(model.predict(features, verbose=0), answers)
    assert accuracy > 0.8, accuracy
    with pytest.raises(ValueError, match="trials, ways, features"):
        context.context_model(features[..., 0])


def test_one_shot_trials_show_the_answer_by_another_drawer_and_repeat_with_the_seed():
    # each image holds its character and drawer, so what a trial shows can be read back
    characters, drawers = np.meshgrid(np.arange(60), np.arange(5), indexing="ij")
    images = np.stack([characters, drawers], -1)[..., None].repeat(2, -1).astype(np.float32)   # (60, 5, 2, 2)
    tests, candidates, answers = context.one_shot_trials(images, 400, np.random.default_rng(7), ways=6, span=12)
    assert tests.shape == (400, 2, 2) and candidates.shape == (400, 6, 2, 2) and answers.shape == (400,)
    right = candidates[np.arange(400), answers]
    assert (right[:, 0, 0] == tests[:, 0, 0]).all()                 # the answer shows the test's character ...
    assert (right[:, 1, 0] != tests[:, 1, 0]).all()                 # ... drawn by someone else
    assert all(len(set(row)) == 6 for row in candidates[:, :, 0, 0])  # six different characters a trial
    assert np.bincount(answers, minlength=6).min() > 40             # the answer's position is spread out
    again = context.one_shot_trials(images, 400, np.random.default_rng(7), ways=6, span=12)
    assert all((x == y).all() for x, y in zip((tests, candidates, answers), again))
    with pytest.raises(ValueError, match="characters, drawers, N, N"):
        context.one_shot_trials(images[0], 4, np.random.default_rng(0))


def test_episode_scorer_matches_the_frozen_pipeline_and_trains_the_comparator_through_the_decision(model):
    comparator = arc.ARC.from_config(model.get_config())     # a copy: this test trains it
    comparator([np.zeros((1, 12, 12), np.float32)] * 2)
    comparator.set_weights(model.get_weights())
    rng = np.random.default_rng(8)
    tests, candidates = rng.random((3, 12, 12), np.float32), rng.random((3, 5, 12, 12), np.float32)
    encodings, scores = context.pair_encodings(comparator, tests[:, None], candidates)     # one test per episode
    naive = context.EpisodeScorer(comparator)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(naive([tests, candidates])), scores[:, 0],
                               rtol=1e-4, atol=1e-5)
    features = context.context_features(encodings, scores)
    keras.utils.set_random_seed(1)
    scorer = context.context_model(features, units=4, dropout=0.0)
    joint = context.EpisodeScorer(comparator, scorer)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(joint([tests, candidates])),
                               keras.ops.convert_to_numpy(scorer(features)), rtol=1e-4, atol=1e-5)
    # one step of a 20-way (here 5-way) cross-entropy moves the comparator's weights and the context model's
    watched = (comparator.cell.weights[0], scorer.get_layer("score").kernel)
    before = [keras.ops.convert_to_numpy(w).copy() for w in watched]
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    step = training.gradient_step(joint, keras.optimizers.Adam(0.01),
                                  lambda t, c, y: cross_entropy(y, joint([t, c], training=True)))
    step(tests, candidates, np.array([0, 3, 4]))
    after = [keras.ops.convert_to_numpy(w) for w in watched]
    assert all(np.abs(a - b).max() > 1e-6 for a, b in zip(after, before))
    with pytest.raises(ValueError, match="candidates"):
        naive([tests, candidates[0]])


def test_sign_test_matches_hand_counts():
    assert metrics.sign_test(0, 0) == 1.0
    assert metrics.sign_test(3, 3) == 1.0
    assert metrics.sign_test(10, 0) == pytest.approx(2 / 1024)
    assert metrics.sign_test(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    with pytest.raises(ValueError, match="counts"):
        metrics.sign_test(-1, 3)
