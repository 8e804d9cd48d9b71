"""benchmarks/context_variants.py: the features and models it compares, worked by
hand, and a positive control — where the encodings do carry the answer, its
recipe finds the gain (so its "no gain" for notebook 09 is a finding, not a blind spot)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cab420utils import context

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "context_variants.py"
spec = importlib.util.spec_from_file_location("context_variants", SCRIPT)
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)


def test_candidate_features_by_hand():
    encodings = np.array([[[[1.0, 0.0], [3.0, 2.0], [2.0, 4.0]]]])   # 1 episode, 1 test, 3 candidates
    scores = np.array([[[1.0, 3.0, 2.0]]])
    plain = study.candidate_features(encodings, scores, "plain")
    assert plain.shape == (1, 3, 3)
    np.testing.assert_array_equal(plain[0, 1], [3, 2, 3])
    np.testing.assert_array_equal(study.candidate_features(encodings, scores, "scores")[0, :, 0], [1, 3, 2])
    relative = study.candidate_features(encodings, scores, "relative")
    # candidate 0: encoding (1, 0); less the mean encoding (2, 2); score 1 less the mean 2, less the best 3; score
    np.testing.assert_array_equal(relative[0, 0], [1, 0, -1, -2, -1, -2, 1])
    np.testing.assert_array_equal(relative[0, 1, -3:], [1, 0, 3])
    with pytest.raises(ValueError, match="kind must be"):
        study.candidate_features(encodings, scores, "ratios")


def test_untrained_residual_model_decides_as_the_naive_arc():
    rng = np.random.default_rng(0)
    features = rng.normal(5.0, 30.0, (40, 20, 6)).astype(np.float32)   # far from standardised
    model = study.residual_model(features)
    np.testing.assert_allclose(model.predict(features[:8], verbose=0), features[:8, :, -1], rtol=1e-6)


def test_each_alone_scores_a_candidate_without_looking_at_the_others():
    rng = np.random.default_rng(2)
    features = rng.normal(5.0, 30.0, (40, 20, 6)).astype(np.float32)
    alone, with_context = study.independent_model(features), context.context_model(features)
    changed = features[:4].copy()
    changed[:, 1:] = rng.normal(5.0, 30.0, changed[:, 1:].shape)      # every candidate but the first redrawn
    for model, depends in ((alone, False), (with_context, True)):
        before, after = (model.predict(x, verbose=0)[:, 0] for x in (features[:4], changed))
        assert np.allclose(before, after, atol=1e-5) != depends, model.name


def test_summarise_counts_trials_won_and_lost_over_seeds():
    context_right = np.array([True, True, False, False, True])
    naive_right = np.array([True, False, True, False, False])
    outcome = {"held out": (context_right, naive_right), "Lake": (naive_right, naive_right)}
    row = study.summarise([outcome, outcome])
    assert row["held out: context"] == 0.6 and row["held out: naive"] == 0.4 and row["Lake: context"] == 0.4
    assert (row["held out: won"], row["held out: lost"]) == (4, 2)
    assert row["sign test p"] == pytest.approx(2 * (1 + 6 + 15) / 64, abs=1e-4)


def test_the_recipe_finds_a_gain_when_the_encodings_carry_one():
    rng = np.random.default_rng(1)
    trials, ways = 600, 20
    answers = rng.integers(0, ways, trials)
    is_answer = np.arange(ways) == answers[:, None]
    scores = is_answer + rng.normal(0, 0.8, (trials, ways))            # the naive score: often wrong
    encodings = np.stack([is_answer + rng.normal(0, 0.1, (trials, ways)),  # an encoding that knows
                          rng.normal(0, 1, (trials, ways))], axis=-1)
    features = study.candidate_features(encodings, scores)
    train, held = slice(0, 400), slice(400, None)
    outcome = study.train_and_score("context", features[train], answers[train],
                                    {"held out": (features[held], answers[held])}, seed=0, epochs=4)
    context_right, naive_right = outcome["held out"]
    assert naive_right.mean() < 0.6 and context_right.mean() > 0.9, (naive_right.mean(), context_right.mean())


@pytest.mark.parametrize("comparator, expected", [
    (None, "context_variants.json"),
    ("build/full-cpu/models/08-arc.weights.h5", "context_variants_full-cpu.json"),
    ("arc512.weights.h5", "context_variants_arc512.json"),            # no build folder above it
    ("/tmp/my runs/ARC (v2).weights.h5", "context_variants_ARC-v2.json"),
])
def test_results_file_is_named_after_the_comparators_build_or_file(comparator, expected):
    assert study.results_name(comparator) == expected
