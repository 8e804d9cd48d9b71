"""training.gradient_step: one optimiser step on a loss the caller writes, on TensorFlow and on JAX.

Each backend runs in a child process (Keras picks its backend once per process) from the same initial
weights, on the same batches: the losses, the numbers the loss function returns beside the loss, the
weights and BatchNorm's moving statistics must agree, and the first step must be plain SGD by hand.
"""
from __future__ import annotations

import numpy as np
import pytest

STEPS = r'''
import json
import keras
import numpy as np
from cab420utils import training

rng = np.random.default_rng(0)
x = rng.normal(size=(3, 8, 4)).astype("float32")      # three batches of 8
y = rng.normal(size=(3, 8, 1)).astype("float32")
inputs = keras.Input((4,))
hidden = keras.layers.BatchNormalization(momentum=0.5)(keras.layers.Dense(3, name="first")(inputs))
model = keras.Model(inputs, keras.layers.Dense(1, name="last")(hidden))
model.set_weights([rng.normal(size=w.shape).astype("float32") if w.ndim > 1 else
                   (np.ones(w.shape, "float32") if i in (2, 5) else np.zeros(w.shape, "float32"))
                   for i, w in enumerate(model.get_weights())])   # gamma and moving variance 1, the rest 0 or random
start = [w.tolist() for w in model.get_weights()]


def loss_of(xb, yb):
    prediction = model(xb, training=True)
    return keras.ops.mean((prediction - yb) ** 2), keras.ops.mean(prediction)


step = training.gradient_step(model, keras.optimizers.SGD(0.1), loss_of)
seen, bias = [], []
for i in range(3):
    seen.append([float(v) for v in step(x[i], y[i])])
    bias.append(float(np.asarray(model.get_layer("last").bias)[0]))
bn = model.get_layer(index=2)
print("RESULT " + json.dumps({"backend": keras.config.backend(), "seen": seen, "start": start, "bias": bias,
                              "weights": [w.tolist() for w in model.get_weights()],
                              "moving_mean": np.asarray(bn.moving_mean).tolist()}))
'''


@pytest.fixture(scope="module")
def tensorflow_run(child_result):
    return child_result(STEPS, KERAS_BACKEND="tensorflow")


def test_first_step_is_sgd_by_hand(tensorflow_run):
    # the last layer's bias b: d(mean (p - y)^2)/db = 2 mean(p - y); after one step b = 0 - 0.1 * that
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 8, 4)), rng.normal(size=(3, 8, 1))
    w = [np.array(v) for v in tensorflow_run["start"]]
    h = x[0] @ w[0] + w[1]
    h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-3) * w[2] + w[3]      # BatchNorm in training: the batch's statistics
    p = h @ w[6] + w[7]
    loss, mean_prediction = tensorflow_run["seen"][0]
    assert loss == pytest.approx(np.mean((p - y[0]) ** 2), rel=1e-4)
    assert mean_prediction == pytest.approx(p.mean(), abs=1e-5)
    assert tensorflow_run["bias"][0] == pytest.approx(0.0 - 0.1 * 2 * np.mean(p - y[0]), rel=1e-4)


def test_jax_gives_tensorflows_numbers(tensorflow_run, child_result):
    pytest.importorskip("jax")
    jax_run = child_result(STEPS, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    assert jax_run["backend"] == "jax" and tensorflow_run["backend"] == "tensorflow"
    assert jax_run["start"] == tensorflow_run["start"]
    assert np.allclose(jax_run["seen"], tensorflow_run["seen"], rtol=1e-4, atol=1e-6)
    assert np.allclose(jax_run["bias"], tensorflow_run["bias"], rtol=1e-4, atol=1e-6)
    for a, b in zip(jax_run["weights"], tensorflow_run["weights"]):
        assert np.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert np.allclose(jax_run["moving_mean"], tensorflow_run["moving_mean"], rtol=1e-4, atol=1e-6)
    assert not np.allclose(jax_run["moving_mean"], 0.0)        # BatchNorm's statistics were updated, and kept
    assert not np.allclose(jax_run["weights"][0], jax_run["start"][0])   # the first layer learned too
