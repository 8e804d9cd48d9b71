"""cab420utils.distribute: one setting chooses one device or data-parallel replicas.

The data-parallel path is proved on the CPU, split into two logical devices, the way
CI can: TensorFlow only splits a device before it first uses it, so that check runs
in a child process.  It trains the course's backbone with the online triplet loss
for a few steps under each setting, through the same code.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cab420utils import distribute

ROOT = Path(__file__).resolve().parents[1]

TWO_CPU_TRAINING = r'''
import json
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np
from cab420utils import distribute, losses, models, sampling

rng = np.random.default_rng(0)
x = rng.integers(0, 256, (160, 28, 28)).astype(np.uint8)
y = np.repeat(np.arange(8), 20)
loss = losses.OnlineTripletLoss(0.2, mining="semi-hard")


def train(chosen):
    """What a notebook does, whatever the setting: build and compile in the scope, then fit."""
    keras.utils.set_random_seed(420)
    with chosen.scope():
        backbone = models.vgg_backbone()
        backbone.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    distribute.check_class_batches(4, 4, chosen)
    data = sampling.ClassBatchDataset(x, y, n_batches=3, classes_per_batch=4, per_class=4, seed=0)
    before = [np.array(w.numpy()) for w in backbone.trainable_weights]
    history = backbone.fit(data, epochs=1, verbose=0)
    changed = any(not np.allclose(b, w.numpy()) for b, w in zip(before, backbone.trainable_weights))
    # the loss Keras reports for one batch, against each replica's share of it computed by hand
    xb, yb = data[0]
    reported = backbone.evaluate(xb, yb, batch_size=len(yb), verbose=0)
    r = chosen.num_replicas_in_sync
    share = len(yb) // r
    by_hand = float(np.mean([float(loss(yb[i * share:(i + 1) * share],
                                        backbone(xb[i * share:(i + 1) * share], training=False)))
                             for i in range(r)]))
    value = backbone.trainable_weights[0].value
    return {"replicas": r, "describe": distribute.describe(chosen), "losses": history.history["loss"],
            "steps": len(data), "changed": changed, "variable": type(value).__name__,
            "devices": [v.device for v in getattr(value, "values", [value])],
            "reported": float(reported), "by_hand": by_hand}


results = {"mirrored": train(distribute.strategy()),        # from CAB420_DISTRIBUTION
           "none": train(distribute.strategy("none"))}     # the argument wins
# what a notebook does: cab420utils.setup() makes the setting the default, no `with` block needed
import cab420utils
run = cab420utils.setup("t", "t", quiet=True)
plain = models.vgg_backbone()
results["setup"] = {"distribution": run.distribution, "variable": type(plain.trainable_weights[0].value).__name__}
print("RESULT " + json.dumps(results))
'''


@pytest.fixture(scope="module")
def trained():
    env = dict(os.environ, CAB420_DISTRIBUTION="mirrored", CUDA_VISIBLE_DEVICES="-1", KERAS_BACKEND="tensorflow",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", TWO_CPU_TRAINING], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"child failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_mirrored_trains_on_two_replicas(trained):
    run = trained["mirrored"]
    assert run["replicas"] == 2
    assert run["describe"] == "mirrored over 2 devices (CPU:0, CPU:1)"
    assert run["variable"] == "MirroredVariable"
    assert [d.rsplit("/", 1)[-1] for d in run["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert run["changed"] and all(math.isfinite(v) for v in run["losses"])


def test_setup_makes_the_setting_the_default_for_plain_notebook_code(trained):
    assert trained["setup"] == {"distribution": "mirrored over 2 devices (CPU:0, CPU:1)",
                                "variable": "MirroredVariable"}


def test_none_runs_the_same_code_on_one_device(trained):
    run = trained["none"]
    assert run["replicas"] == 1 and run["describe"] == "one device (no distribution)"
    assert run["variable"] == "ResourceVariable" and len(run["devices"]) == 1
    assert run["changed"] and all(math.isfinite(v) for v in run["losses"])
    assert run["reported"] == pytest.approx(run["by_hand"], rel=1e-4)


def test_mirrored_reports_the_mean_of_the_replicas_losses(trained):
    # A loss returning one number would be summed over the replicas (2x here); the course's batch losses
    # return it once per sample so that Keras averages.  Semi-hard mining picks its negatives by
    # comparisons, which float rounding on another device can flip: hence 1 %, not 1e-4.
    run = trained["mirrored"]
    assert run["reported"] == pytest.approx(run["by_hand"], rel=1e-2)


# --------------------------------------------------------------------------- in this process
def test_setting_default_and_override(monkeypatch):
    monkeypatch.delenv(distribute.DISTRIBUTION_VARIABLE, raising=False)
    assert distribute.resolve_distribution() == "none"
    monkeypatch.setenv(distribute.DISTRIBUTION_VARIABLE, " Mirrored ")
    assert distribute.resolve_distribution() == "mirrored"
    assert distribute.resolve_distribution("none") == "none"
    monkeypatch.setenv(distribute.DISTRIBUTION_VARIABLE, "data-parallel")
    with pytest.raises(ValueError, match="none, mirrored"):
        distribute.resolve_distribution()


def test_none_is_the_default_strategy(monkeypatch):
    monkeypatch.delenv(distribute.DISTRIBUTION_VARIABLE, raising=False)
    chosen = distribute.strategy()
    assert chosen.num_replicas_in_sync == 1 and distribute.describe(chosen) == "one device (no distribution)"
    with distribute.scope():
        pass


def test_device_names():
    assert distribute._device_name("/job:localhost/replica:0/task:0/device:GPU:1") == "/device:GPU:1"
    assert distribute._device_name("gpu:1") == distribute._device_name("/GPU:1") == "/device:GPU:1"
    assert distribute._device_name("CPU") == "/device:CPU:0"


def test_class_batches_must_split_into_whole_classes():
    class Two:
        num_replicas_in_sync = 2

    distribute.check_class_batches(10, 8, Two())
    for classes in (5, 3, 2):
        with pytest.raises(ValueError, match="multiple of 2"):
            distribute.check_class_batches(classes, 8, Two())
