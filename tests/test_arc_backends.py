"""Notebooks 08 and 09 train their comparators the same way on Keras' JAX backend as on TensorFlow.

The GPU machine this course is run on may hold JAX and no TensorFlow (the README's full profile), so the
ARC and the ConvARC must train there as they do here.  A TensorFlow child process builds each comparator,
saves its initial weights, trains it a few steps with ``arc.train_comparator`` and scores pairs; a JAX
child loads the same initial weights, draws the same pairs (the sampler is NumPy's) and must reach the
same losses, weights and scores.  A third child checks that what TensorFlow trained and saved scores the
same when JAX loads it (notebook 09 reuses notebook 08's saved ARC).
"""
from __future__ import annotations

import numpy as np
import pytest

# Both children: the same small comparator (built, not yet trained) and the same pairs of random ink.
SETUP = r'''
import json, os, sys
import keras
import numpy as np
from cab420utils import arc

folder, kind = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
images = (rng.random((12, 4, 16, 16)) < 0.2).astype("float32")          # 12 characters x 4 drawings of ink
a, b, same = arc.pair_images(images, arc.character_pairs(12, 4, 10, np.random.default_rng(5), window=3))
settings = dict(arc.comparator_settings("fast", kind=kind), image_size=16, hidden=12, glimpses_per_image=2,
                glimpse_size=4, head_units=8)
if kind == "convarc":
    settings["filters"] = (4, 6)
model = arc.build_comparator(settings)
'''

TRAIN = SETUP + r'''
start = os.path.join(folder, f"{kind}-start.weights.h5")
if keras.config.backend() == "tensorflow":
    model.save_weights(start)
else:
    model.load_weights(start)
before = arc.pair_scores(model, a, b)
losses, curve = arc.train_comparator(model, images, steps=4, batch=8, learning_rate=1e-3, clipnorm=1.0,
                                     window=3, rng=np.random.default_rng(1), max_shift=1,
                                     validation=(a, b, same), evaluate_every=2)
model.save_weights(os.path.join(folder, f"{kind}-{keras.config.backend()}.weights.h5"))
result = {
    "backend": keras.config.backend(), "losses": losses, "before": before.tolist(),
    "scores": arc.pair_scores(model, a, b).tolist(),
    "curve": [[c["step"], c["validation ROC AUC"]] for c in curve],
    "weights": {w.path: np.asarray(w).tolist() for w in model.weights}}
ticks = iter(range(10**6))   # then a time cap that re-plans: a clock second a step; at step 50 of 60, 51 s gone, 4 more fit
capped, _ = arc.train_comparator(model, images, steps=60, batch=8, learning_rate=1e-3, clipnorm=1.0, window=3,
                                 rng=np.random.default_rng(2), evaluate_every=1000, seconds=56,
                                 clock=lambda: float(next(ticks)))
print("RESULT " + json.dumps(dict(result, capped=capped)))
'''

LOAD = SETUP + r'''
model.load_weights(os.path.join(folder, f"{kind}-tensorflow.weights.h5"))
print("RESULT " + json.dumps({"backend": keras.config.backend(), "scores": arc.pair_scores(model, a, b).tolist()}))
'''

JAX = dict(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("arc-backends")


@pytest.fixture(scope="module", params=["arc", "convarc"])
def runs(request, folder, child_result):
    pytest.importorskip("jax")
    kind = request.param
    tensorflow = child_result(TRAIN, KERAS_BACKEND="tensorflow", args=(str(folder), kind))
    jax = child_result(TRAIN, args=(str(folder), kind), **JAX)
    return kind, tensorflow, jax


def test_the_children_ran_on_the_backends_asked_for(runs):
    _, tensorflow, jax = runs
    assert (tensorflow["backend"], jax["backend"]) == ("tensorflow", "jax")


def test_jax_starts_where_tensorflow_starts(runs):
    _, tensorflow, jax = runs
    assert np.allclose(jax["before"], tensorflow["before"], rtol=1e-4, atol=1e-5)


def test_jax_trains_the_comparator_as_tensorflow_does(runs):
    kind, tensorflow, jax = runs
    assert len(jax["losses"]) == 4 and np.isfinite(jax["losses"]).all()
    assert np.allclose(jax["losses"], tensorflow["losses"], rtol=1e-4, atol=1e-5), kind
    assert jax["weights"].keys() == tensorflow["weights"].keys()
    assert sum("where" in path for path in jax["weights"]) == 1 and len(jax["weights"]) >= 8
    for path, mine in jax["weights"].items():
        # Every weight, the layer that places the glimpses too. It starts at zero, so the zoom starts at the kink of
        # |zoom|, where TensorFlow's abs has slope 0 and JAX's 1: before glimpses.zoom_amount, TensorFlow's zoom
        # weights never moved and JAX's did, and this layer had to be left out of the comparison.
        assert np.allclose(mine, tensorflow["weights"][path], rtol=1e-3, atol=1e-4), (kind, path)
    assert np.allclose(jax["scores"], tensorflow["scores"], rtol=1e-3, atol=1e-4), kind
    assert [step for step, _ in jax["curve"]] == [2, 4]
    assert np.allclose([auc for _, auc in jax["curve"]], [auc for _, auc in tensorflow["curve"]])
    assert not np.allclose(jax["scores"], jax["before"])        # four steps moved the scores: it trained


def test_jax_trains_under_a_time_cap_that_plans_again_as_tensorflow_does(runs):
    kind, tensorflow, jax = runs
    assert len(tensorflow["capped"]) == len(jax["capped"]) == 54      # the re-plan's steps, not the budget's 60
    assert np.isfinite(jax["capped"]).all()
    assert np.allclose(jax["capped"], tensorflow["capped"], rtol=1e-3, atol=1e-4), kind


def test_jax_scores_what_tensorflow_trained_and_saved(runs, folder, child_result):
    kind, tensorflow, _ = runs
    loaded = child_result(LOAD, args=(str(folder), kind), **JAX)
    assert loaded["backend"] == "jax"
    assert np.allclose(loaded["scores"], tensorflow["scores"], rtol=1e-4, atol=1e-5), kind
