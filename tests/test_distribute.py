"""cab420utils.distribute: one setting chooses one device or data-parallel replicas.

The data-parallel path is proved on the CPU, split into two logical devices, the way
CI can: TensorFlow only splits a device before it first uses it, so that check runs
in a child process.  It trains the course's backbone with the online triplet loss
for a few steps under each setting, through the same code.
"""
from __future__ import annotations

import logging
import math

import pytest

from cab420utils import distribute

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
def trained(child_result):
    return child_result(TWO_CPU_TRAINING, CAB420_DISTRIBUTION="mirrored", KERAS_BACKEND="tensorflow")


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


# ------------------------------------------------- custom training loops (notebooks 07-09), set by env only
CUSTOM_LOOPS = r'''
import json
import cab420utils                      # before anything runs TensorFlow: setup() splits the CPU
run = cab420utils.setup("t", "t", quiet=True)

import keras
import numpy as np
import tensorflow as tf
from cab420utils import arc, distribute

out = {"distribution": run.distribution, "replicas": distribute.replicas(),
       "tf log level": tf.get_logger().getEffectiveLevel()}

# what replicated() gives each replica: argument 0 whole, the others in equal consecutive shares
probe = distribute.replicated(lambda whole, split: (tf.reduce_sum(whole), tf.cast(tf.shape(split)[0], tf.float32),
                                                    tf.reduce_sum(split)), whole=(0,))
out["probe"] = [float(v) for v in probe(np.arange(10.0), np.arange(8.0))]
try:
    probe(np.arange(10.0), np.arange(7.0))
    out["odd"] = "no error"
except ValueError as error:
    out["odd"] = str(error)
try:
    distribute.split_cpu(3)
    out["late split"] = "no error"
except RuntimeError as error:
    out["late split"] = str(error)

# notebook 08's training loop: the same losses and weights on one device and on every replica
images = np.random.default_rng(0).random((30, 20, 32, 32)).astype("float32")
trained = {}
for name in ("mirrored", "none"):
    if name == "none":
        tf.distribute.experimental_set_strategy(None)   # undo what setup() set: back to one device
    keras.utils.set_random_seed(0)
    model = arc.build_comparator(dict(arc.comparator_settings("fast", True), hidden=16))
    losses, _ = arc.train_comparator(model, images, steps=4, batch=8, learning_rate=1e-2, clipnorm=None,
                                     window=10, rng=np.random.default_rng(1), evaluate_every=4)
    trained[name] = {"losses": losses, "variable": type(model.trainable_weights[0].value).__name__,
                     "weights": [float(np.abs(w).sum()) for w in model.get_weights()]}
    ticks = iter(range(10**6))   # a time cap that re-plans: the optimiser rebuilt on every replica, at step 50 of 60
    trained[name]["capped"], _ = arc.train_comparator(model, images, steps=60, batch=8, learning_rate=1e-2,
                                                      clipnorm=None, window=10, rng=np.random.default_rng(2),
                                                      evaluate_every=1000, seconds=56,
                                                      clock=lambda: float(next(ticks)))
out["arc"] = trained
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def custom_loops(child_result):
    return child_result(CUSTOM_LOOPS, CAB420_DISTRIBUTION="mirrored", CAB420_LOGICAL_CPUS="2",
                        KERAS_BACKEND="tensorflow")


def test_logical_cpus_from_the_environment(custom_loops):
    assert custom_loops["distribution"] == "mirrored over 2 devices (CPU:0, CPU:1)"
    assert custom_loops["replicas"] == 2
    assert custom_loops["tf log level"] == logging.WARNING    # no INFO line for every all-reduce in the pages
    assert "already run something" in custom_loops["late split"] and "setup()" in custom_loops["late split"]


def test_replicated_shares_the_batch_and_keeps_whole_arguments_whole(custom_loops):
    whole_sum, rows, share_sum = custom_loops["probe"]
    assert whole_sum == 45.0               # each replica saw all of 0..9 (the mean of 45 and 45)
    assert rows == 4.0                     # 8 rows, 4 per replica
    assert share_sum == 14.0               # (0+1+2+3) and (4+5+6+7): their mean
    assert "7 rows" in custom_loops["odd"] and "multiple of 2" in custom_loops["odd"]


def test_arc_trains_the_same_on_two_replicas_as_on_one(custom_loops):
    mirrored, one = custom_loops["arc"]["mirrored"], custom_loops["arc"]["none"]
    assert mirrored["variable"] == "MirroredVariable" and one["variable"] == "ResourceVariable"
    assert mirrored["losses"] == pytest.approx(one["losses"], rel=1e-4)
    assert mirrored["weights"] == pytest.approx(one["weights"], rel=1e-4)
    assert mirrored["losses"][-1] != mirrored["losses"][0]   # it trained
    assert len(mirrored["capped"]) == len(one["capped"]) == 54   # the time cap's new plan, on replicas as on one
    assert mirrored["capped"] == pytest.approx(one["capped"], rel=1e-3)


def test_split_cpu_reads_and_checks_the_setting(monkeypatch):
    monkeypatch.delenv(distribute.LOGICAL_CPUS_VARIABLE, raising=False)
    assert distribute.split_cpu() == 1                     # unset: the CPU stays whole, TensorFlow untouched
    monkeypatch.setenv(distribute.LOGICAL_CPUS_VARIABLE, " 1 ")
    assert distribute.split_cpu() == 1
    for bad in ("two", "0", "-2", "1.5"):
        monkeypatch.setenv(distribute.LOGICAL_CPUS_VARIABLE, bad)
        with pytest.raises(ValueError, match="whole number of devices"):
            distribute.split_cpu()


def test_replicated_on_one_device_is_the_step_compiled(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv(distribute.DISTRIBUTION_VARIABLE, raising=False)
    assert distribute.replicas() == 1
    step = distribute.replicated(lambda a, b: (tf.reduce_sum(a), tf.shape(b)[0]), whole=(0,))
    total, rows = step(tf.range(5.0), tf.zeros((7, 2)))
    assert float(total) == 10.0 and int(rows) == 7             # nothing split, whatever the size
