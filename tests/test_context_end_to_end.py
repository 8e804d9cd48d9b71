"""benchmarks/context_end_to_end.py: its counts worked by hand, and the fine-tuning
it compares — both arms from the same weights, on the same trials, each its own copy."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from cab420utils import arc, context

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "context_end_to_end.py"
spec = importlib.util.spec_from_file_location("context_end_to_end", SCRIPT)
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)


def test_compare_counts_the_trials_each_side_alone_gets_right():
    a = np.array([True, True, False, False, True, False])
    b = np.array([True, False, True, True, True, True])
    assert study.compare(a, b) == {"won": 3, "lost": 1, "sign test p": pytest.approx(0.625)}   # 2 * 5/16


def test_summarise_averages_the_seeds_and_pools_their_counts():
    def seed(end_to_end, tuned):
        right = np.array
        return {"frozen: naive": {"held out": right([1, 0, 0, 0], bool), "Lake": right([1, 1], bool)},
                "naive, fine-tuned": {"held out": right(tuned, bool), "Lake": right([1, 0], bool)},
                "context, end to end": {"held out": right(end_to_end, bool), "Lake": right([0, 0], bool)}}

    table = study.summarise([seed([1, 1, 0, 0], [1, 0, 0, 1]), seed([1, 1, 1, 0], [0, 0, 0, 0])])
    assert table["context, end to end"] == {"held out": 0.625, "Lake": 0.0}
    assert table["naive, fine-tuned"]["held out"] == 0.25
    assert table["context, end to end vs naive, fine-tuned"] == {"won": 4, "lost": 1,
                                                                 "sign test p": pytest.approx(0.375)}
    assert table["context, end to end vs frozen: naive"]["won"] == 3
    assert "context, end to end vs each alone, end to end" not in table      # the control did not run


def test_summarise_counts_the_context_arm_against_the_control():
    right = lambda held: {"held out": np.array(held, bool), "Lake": np.array([1], bool)}   # noqa: E731
    seed = {"frozen: naive": right([0, 0, 0]), "naive, fine-tuned": right([1, 0, 0]),
            "context, end to end": right([1, 1, 0]), "each alone, end to end": right([0, 1, 1])}
    table = study.summarise([seed])
    assert table["context, end to end vs each alone, end to end"] == {"won": 1, "lost": 1,
                                                                       "sign test p": pytest.approx(1.0)}
    assert table["each alone, end to end vs naive, fine-tuned"] == {"won": 2, "lost": 1,
                                                                    "sign test p": pytest.approx(1.0)}


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    model = arc.ARC(hidden=8, glimpses_per_image=2, glimpse_size=4, head_units=4)
    model([np.zeros((1, 12, 12), np.float32)] * 2)
    images = np.random.default_rng(1).random((45, 3, 12, 12)).astype(np.float32)
    return model, images


def test_each_arm_trains_its_own_copy_from_the_same_weights_on_the_same_trials(tiny, monkeypatch):
    model, images = tiny
    monkeypatch.setitem(study.NOTEBOOK, "ways", 5)
    monkeypatch.setitem(study.NOTEBOOK, "span", 10)
    start = [w.copy() for w in model.get_weights()]
    first, second = study.copy_comparator(model, 12), study.copy_comparator(model, 12)
    x = [images[:2, 0], images[:2, 1]]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(first(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-6)
    tuning = dict(steps=3, trials=2, learning_rate=1e-2, clipnorm=1.0)
    losses = [study.fine_tune(context.EpisodeScorer(copy), images, seed=4, **tuning) for copy in (first, second)]
    assert len(losses[0]) == 3 and np.isfinite(losses[0]).all()
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)          # the same trials, the same steps
    assert any(np.abs(a - b).max() > 1e-6 for a, b in zip(first.get_weights(), start))   # it trained ...
    assert all((a == b).all() for a, b in zip(model.get_weights(), start))              # ... a copy only


def test_decisions_judge_the_naive_rule_and_each_scorer_on_the_same_features(tiny):
    model, images = tiny
    tests, candidates, answers = context.episode_pairs(
        images, context.one_shot_episodes(45, 3, 4, np.random.default_rng(2), ways=5, span=10))
    seen = []
    same = SimpleNamespace(predict=lambda f, **_: seen.append(f.shape) or f[..., -1])   # the naive score again
    reverse = SimpleNamespace(predict=lambda f, **_: -f[..., -1])                      # the worst candidate
    naive, by_same, by_reverse = study.decisions(model, {"held out": (tests, candidates, answers)},
                                                 same, reverse)["held out"]
    _, scores = context.pair_encodings(model, tests, candidates)
    np.testing.assert_array_equal(naive, scores.reshape(-1, 5).argmax(-1) == answers.reshape(-1))
    np.testing.assert_array_equal(by_same, naive)
    np.testing.assert_array_equal(by_reverse, scores.reshape(-1, 5).argmin(-1) == answers.reshape(-1))
    assert seen == [(20, 5, 17)]                          # 4 episodes x 5 tests, 5 candidates, 2 x 8 + 1 features
    (alone,) = study.decisions(model, {"held out": (tests, candidates, answers)})["held out"]
    np.testing.assert_array_equal(alone, naive)
