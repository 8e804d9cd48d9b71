"""Data-parallel training on several GPUs, chosen by one setting; one device by default.

    from cab420utils import distribute

    strategy = distribute.strategy()          # CAB420_DISTRIBUTION=none|mirrored (default none)
    with strategy.scope():                    # build and compile inside the scope ...
        backbone = models.vgg_backbone()
        backbone.compile(optimizer="adam", loss=losses.OnlineTripletLoss())
    backbone.fit(sampling.ClassBatchDataset(...))   # ... fit anywhere, unchanged

``none`` is TensorFlow's default strategy: one device, and a scope that changes
nothing.  ``mirrored`` is ``tf.distribute.MirroredStrategy`` over every visible
GPU (or, with no GPU, every logical CPU; or the ``devices`` you name): each
replica holds a copy of the weights, takes an equal share of each batch, and the
gradients are summed across replicas before every update, so training is the
same synchronous SGD as on one device, only faster.

Why not ``keras.distribution.DataParallel``: in Keras 3 (checked on 3.15.1) that
API is implemented for the JAX backend.  With TensorFlow it can be set, but the
backend's ``distribution_lib`` is a prototype marked "DO NOT USE" that neither
places variables nor splits batches, so a model quietly trains on one device.
TensorFlow's own ``tf.distribute`` is what Keras' TensorFlow trainer uses.

The batch a sampler yields is the *global* batch: each of R replicas gets the
next 1/R of it, in order.  ``ClassBatchDataset`` lays a batch out class by class,
so with ``classes_per_batch`` a multiple of R every replica mines triplets inside
whole classes (see :func:`check_class_batches`).
"""
from __future__ import annotations

import os

DISTRIBUTION_VARIABLE = "CAB420_DISTRIBUTION"
DISTRIBUTIONS = ("none", "mirrored")


def resolve_distribution(requested: str | None = None) -> str:
    """``requested`` (or ``$CAB420_DISTRIBUTION``, default ``none``), checked."""
    name = (os.environ.get(DISTRIBUTION_VARIABLE) or "none" if requested is None else requested).strip().lower()
    if name not in DISTRIBUTIONS:
        raise ValueError(f"Unknown distribution {name!r}: choose one of {', '.join(DISTRIBUTIONS)} "
                         f"(e.g. `export {DISTRIBUTION_VARIABLE}=mirrored`).")
    return name


def _device_name(device) -> str:
    """A LogicalDevice, '/job:localhost/replica:0/task:0/device:GPU:1', 'gpu:1' or 'GPU' -> '/device:GPU:1'."""
    name = str(getattr(device, "name", device))
    tail = name.split("device:")[-1] if "device:" in name else name.rsplit("/", 1)[-1]
    kind, _, number = tail.partition(":")
    return f"/device:{kind.upper()}:{int(number or 0)}"


def strategy(distribution: str | None = None, devices=None):
    """The ``tf.distribute.Strategy`` to build and compile models in.

    ``distribution``: ``'none'`` or ``'mirrored'`` (default: ``$CAB420_DISTRIBUTION``,
    else ``'none'``).  ``devices``: for ``'mirrored'``, the devices to replicate on
    (names such as ``'GPU:0'``); default every visible GPU, or every logical CPU
    when there is none.
    """
    import keras

    name = resolve_distribution(distribution)
    if keras.config.backend() != "tensorflow":
        if name == "none":
            return _OneDevice()
        raise NotImplementedError(f"{DISTRIBUTION_VARIABLE}=mirrored needs the TensorFlow backend (the course's); "
                                  f"with {keras.config.backend()!r} use keras.distribution.DataParallel instead.")
    import tensorflow as tf

    if name == "none":
        return tf.distribute.get_strategy()  # the default strategy: one device, a scope that changes nothing
    if devices is None:
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    names = [_device_name(d) for d in devices]
    if not names:
        raise ValueError("no devices to replicate on")
    return tf.distribute.MirroredStrategy(devices=names)


class _OneDevice:
    """``strategy('none')`` on a backend without ``tf.distribute``: one device, a no-op scope."""

    num_replicas_in_sync = 1

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


def scope(distribution: str | None = None, devices=None):
    """Shorthand for ``strategy(distribution, devices).scope()``."""
    return strategy(distribution, devices).scope()


def use(distribution: str | None = None):
    """Make the chosen strategy the default for everything built afterwards
    (``tf.distribute.experimental_set_strategy``), so a notebook's plain
    ``vgg_backbone(...)``/``compile``/``fit`` run data-parallel without a
    ``with`` block.  ``'none'`` changes nothing.  Returns the strategy;
    ``cab420utils.setup`` calls this once per notebook."""
    chosen = strategy(distribution)
    if type(chosen).__name__ == "MirroredStrategy":
        import tensorflow as tf

        tf.distribute.experimental_set_strategy(chosen)
    return chosen


def describe(chosen) -> str:
    """One line for a notebook's first cell, e.g. 'mirrored over 2 devices (GPU:0, GPU:1)'."""
    if type(chosen).__name__ != "MirroredStrategy":
        return "one device (no distribution)"
    replicas = chosen.num_replicas_in_sync
    short = ", ".join(_device_name(d).removeprefix("/device:") for d in chosen.extended.worker_devices)
    return f"mirrored over {replicas} device{'s' if replicas > 1 else ''} ({short})"


def check_class_batches(classes_per_batch: int, per_class: int, chosen) -> None:
    """Raise if online mining could not work on every replica's share of an
    m-per-class batch: each replica needs whole classes (``classes_per_batch``
    a multiple of the replicas) and at least two of them."""
    replicas = chosen.num_replicas_in_sync
    if classes_per_batch % replicas or classes_per_batch // replicas < 2:
        raise ValueError(
            f"{classes_per_batch} classes per batch cannot be split into {replicas} replicas of whole classes, "
            f"at least 2 each: choose classes_per_batch as a multiple of {replicas} and at least {2 * replicas} "
            f"(each replica mines triplets only inside its {classes_per_batch * per_class // replicas} images).")
