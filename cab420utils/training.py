"""Training conveniences shared by the notebooks: one optimiser recipe."""
from __future__ import annotations

import math

import keras


def cosine_adam(learning_rate: float, steps: int, clipnorm: float | None = None) -> keras.optimizers.Adam:
    """Adam whose learning rate falls from ``learning_rate`` to 0 along a cosine
    over ``steps`` optimiser steps: large steps early, a gentle landing late —
    what a short training (the fast profile) needs.  ``clipnorm`` clips each
    gradient's norm (recurrent models)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=int(steps))
    return keras.optimizers.Adam(schedule, clipnorm=clipnorm)


@keras.saving.register_keras_serializable(package="cab420utils")
class ReplannedCosine(keras.optimizers.schedules.LearningRateSchedule):
    """A cosine decay from ``learning_rate`` to 0 that was re-planned at step
    ``since``, where it stood at ``progress`` (0: the top of the cosine, 1: its
    end): from there it moves on along the same cosine and reaches 0 at step
    ``end``.  The learning rate is continuous at the re-plan, whether the new
    end comes sooner (a training that will not fit its time) or later (one
    that found time to spare); with ``since=0, progress=0`` it is Keras'
    ``CosineDecay`` over ``end`` steps."""

    def __init__(self, learning_rate: float, since: int, progress: float, end: int):
        if not 0 <= since <= end or not 0.0 <= progress <= 1.0:
            raise ValueError(f"a re-planned cosine needs 0 <= since <= end and progress in [0, 1], "
                             f"got since={since}, end={end}, progress={progress}")
        self.learning_rate, self.since, self.progress, self.end = (float(learning_rate), int(since),
                                                                   float(progress), int(end))

    def progress_at(self, step: int) -> float:
        """Where along the cosine (0 to 1) step ``step`` stands (a plain number)."""
        along = min(max((step - self.since) / max(self.end - self.since, 1), 0.0), 1.0)
        return self.progress + (1.0 - self.progress) * along

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        along = keras.ops.clip((step - self.since) / max(self.end - self.since, 1), 0.0, 1.0)
        progress = self.progress + (1.0 - self.progress) * along
        return self.learning_rate * 0.5 * (1.0 + keras.ops.cos(math.pi * progress))

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "since": self.since, "progress": self.progress,
                "end": self.end}


def replanned_cosine_adam(optimizer, variables, steps: int, clipnorm: float | None = None) -> keras.optimizers.Adam:
    """Adam that carries on where ``optimizer`` (a built :func:`cosine_adam`, or
    one this function returned, for the same ``variables``) stands — the same
    step count and Adam moments, the learning rate where it was — and whose
    cosine now reaches 0 at step ``steps`` in all (:class:`ReplannedCosine`).
    For a training that learns, as it times itself, that its budget will not
    fit the time it has, or that more of it will (:func:`cab420utils.arc.train_comparator`)."""
    done = int(keras.ops.convert_to_numpy(optimizer.iterations))
    if steps < done:
        raise ValueError(f"cannot re-plan a training to {steps} steps: it has already taken {done}")
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, ReplannedCosine):
        learning_rate, progress = schedule.learning_rate, schedule.progress_at(done)
    elif isinstance(schedule, keras.optimizers.schedules.CosineDecay) and schedule.warmup_target is None \
            and not schedule.alpha:
        learning_rate, progress = schedule.initial_learning_rate, min(done / schedule.decay_steps, 1.0)
    else:
        raise ValueError("the optimizer to carry on from is not a cosine_adam (its learning rate "
                         "is not a cosine decay to re-plan)")
    replanned = keras.optimizers.Adam(ReplannedCosine(learning_rate, done, progress, steps), clipnorm=clipnorm)
    replanned.build(variables)
    if len(replanned.variables) != len(optimizer.variables):
        raise ValueError("the optimizer to carry on from is not a built cosine_adam of the same variables")
    for mine, theirs in zip(replanned.variables, optimizer.variables):
        mine.assign(theirs)
    return replanned


def gradient_step(model, optimizer, loss_fn, whole=()):
    """One compiled optimiser step on ``loss_fn``, on whichever backend Keras runs.

    ``loss_fn(*batch)`` calls ``model`` (``training=True``) and returns the loss
    to minimise, or a tuple whose first item is that loss (the others: numbers
    to watch).  ``step = gradient_step(model, optimizer, loss_fn)``; then each
    ``step(*batch)`` takes the gradients of the loss with respect to
    ``model.trainable_variables``, lets ``optimizer`` apply them and returns what
    ``loss_fn`` returned.  BatchNorm's statistics and other non-trainable
    updates are kept.

    TensorFlow: a ``GradientTape`` in a ``tf.function`` — under
    ``CAB420_DISTRIBUTION=mirrored`` on every replica, each with its share of
    every batch argument except those whose positions are in ``whole``
    (:func:`cab420utils.distribute.replicated`).  JAX: ``jax.value_and_grad`` of
    the loss computed statelessly (``keras.StatelessScope``), under ``jax.jit``.
    """
    optimizer.build(model.trainable_variables)   # its slots now, beside the weights (on every replica)
    backend = keras.config.backend()
    if backend == "tensorflow":
        return _tensorflow_step(model, optimizer, loss_fn, whole)
    if backend == "jax":
        return _jax_step(model, optimizer, loss_fn)
    raise NotImplementedError(f"gradient_step runs on the tensorflow and jax backends, not {backend!r}")


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _tensorflow_step(model, optimizer, loss_fn, whole):
    import tensorflow as tf

    from . import distribute

    share = 1 / distribute.replicas()            # the optimizer adds the replicas' gradients

    def step(*batch):
        with tf.GradientTape() as tape:
            out = loss_fn(*batch)
            scaled = _first(out) * share
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return out

    return distribute.replicated(step, whole=whole)


def _jax_step(model, optimizer, loss_fn):
    import jax

    trainable, fixed = model.trainable_variables, model.non_trainable_variables

    def loss_and_state(trainable_values, fixed_values, batch):
        mapping = list(zip(trainable, trainable_values)) + list(zip(fixed, fixed_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            out = loss_fn(*batch)
        updated = [scope.get_current_value(v) for v in fixed]
        fixed_values = [old if new is None else new for old, new in zip(fixed_values, updated)]
        return _first(out), (out, fixed_values)

    gradient = jax.value_and_grad(loss_and_state, has_aux=True)

    @jax.jit
    def compiled(trainable_values, fixed_values, optimizer_values, batch):
        (_, (out, fixed_values)), grads = gradient(trainable_values, fixed_values, batch)
        trainable_values, optimizer_values = optimizer.stateless_apply(optimizer_values, grads, trainable_values)
        return out, trainable_values, fixed_values, optimizer_values

    def step(*batch):
        out, *state = compiled([v.value for v in trainable], [v.value for v in fixed],
                               [v.value for v in optimizer.variables], batch)
        for variables, values in zip((trainable, fixed, optimizer.variables), state):
            for variable, value in zip(variables, values):
                variable.assign(value)
        return out

    return step
