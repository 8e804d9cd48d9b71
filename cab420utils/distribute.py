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
LOGICAL_CPUS_VARIABLE = "CAB420_LOGICAL_CPUS"   # split the CPU into N devices: data-parallel code without GPUs


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
    # tf.distribute logs every all-reduce it sets up at INFO ("Reduce to ... then broadcast to ...": dozens of
    # lines in a notebook's outputs); a notebook's first cell says what runs.  Warnings stay.
    tf.get_logger().setLevel("WARNING")
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


def split_cpu(count: int | str | None = None) -> int:
    """Split the CPU into ``count`` logical devices (default ``$CAB420_LOGICAL_CPUS``;
    unset, empty or 1: leave it whole), so that ``mirrored`` replicates over them
    on a machine without GPUs — how CI runs the data-parallel code.  TensorFlow can
    only split a device before it first runs anything, which is why
    ``cab420utils.setup`` (a notebook's first cell) calls this before anything else.
    Returns ``count``."""
    raw = os.environ.get(LOGICAL_CPUS_VARIABLE, "") if count is None else str(count)
    try:
        count = int(raw.strip() or 1)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{LOGICAL_CPUS_VARIABLE} must be a whole number of devices (e.g. 2), got {raw!r}")
    if count == 1:
        return 1
    import keras

    if keras.config.backend() != "tensorflow":
        raise ValueError(f"{LOGICAL_CPUS_VARIABLE} splits the CPU for tf.distribute: it needs the TensorFlow backend")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or [None]) != count:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError as error:   # "Virtual devices cannot be modified after being initialized"
            raise RuntimeError(f"{LOGICAL_CPUS_VARIABLE}={count}: TensorFlow has already run something, and a "
                               "device can only be split before that. Call cab420utils.setup() first (restart "
                               "the kernel, then run the notebook from its first cell).") from error
    return count


def replicas() -> int:
    """How many replicas the current strategy trains on (1 without distribution)."""
    import keras

    if keras.config.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def replicated(step, whole=()):
    """``step``, a training step written for one device, run on every replica.

    ``step(*arrays)`` computes a loss on the batch it is given, takes its
    gradients and applies them.  Here each replica calls it on its own share of
    the batch: every argument is split along its first axis into equal,
    consecutive shares, except those whose positions are in ``whole``, which
    every replica gets entire (notebook 07's references).  The optimizer *adds*
    the replicas' gradients, so ``step`` divides its loss by :func:`replicas`
    before taking gradients (a no-op on one device); what it returns is averaged
    over the replicas.  Without distribution this is ``tf.function(step)``.
    """
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    count = strategy.num_replicas_in_sync
    if count == 1:
        return tf.function(step)
    whole = frozenset(whole)

    def on_replica(*arrays):
        index = tf.distribute.get_replica_context().replica_id_in_sync_group
        shares = []
        for k, array in enumerate(arrays):
            if k not in whole:
                size = array.shape[0]
                if size is None or size % count:
                    raise ValueError(f"argument {k} of the step has {size} rows, which {count} replicas cannot "
                                     f"share equally: make the batch a multiple of {count}")
                array = array[index * (size // count):(index + 1) * (size // count)]
            shares.append(array)
        return step(*shares)

    @tf.function
    def run(*arrays):
        results = strategy.run(on_replica, args=tuple(tf.convert_to_tensor(a) for a in arrays))
        return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), results)

    return run


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
