"""Training conveniences shared by the notebooks: one optimiser recipe."""
from __future__ import annotations

import math

import keras

from ._validate import is_whole_number


def cosine_adam(learning_rate: float, steps: int, clipnorm: float | None = None) -> keras.optimizers.Adam:
    """Adam whose learning rate falls from ``learning_rate`` to 0 along a cosine
    over ``steps`` optimiser steps: large steps early, a gentle landing late —
    what a short training (the fast profile) needs.  ``clipnorm`` clips each
    gradient's norm (recurrent models)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=int(steps))
    return keras.optimizers.Adam(schedule, clipnorm=clipnorm)


class CosinePlan:
    """The learning rate of a cosine decay from ``learning_rate`` to 0 over
    ``steps`` steps (the values of :func:`cosine_adam`'s schedule) that can be
    planned again part way: :meth:`replanned` carries on along the same cosine
    from where a step stands and reaches 0 at a new end, sooner or later, with
    no jump in the rate.  For a training that learns, as it times itself, that
    its budget will not fit the time it has, or that more of it will
    (:func:`cab420utils.arc.train_comparator` sets the optimiser's rate from
    it before every step, so a new plan costs no compiling)."""

    def __init__(self, learning_rate: float, steps: int, since: int = 0, progress: float = 0.0):
        if not is_whole_number(steps) or steps < 1 or not 0 <= since <= steps or not 0.0 <= progress <= 1.0:
            raise ValueError(f"a cosine plan needs whole steps >= 1, 0 <= since <= steps and progress in [0, 1], "
                             f"got steps={steps!r}, since={since!r}, progress={progress!r}")
        self.learning_rate, self.steps = float(learning_rate), int(steps)
        self.since, self.progress = int(since), float(progress)

    def progress_at(self, step: int) -> float:
        """Where along the cosine (0: its top, 1: its end) the optimiser's step ``step`` stands."""
        along = min(max((step - self.since) / max(self.steps - self.since, 1), 0.0), 1.0)
        return self.progress + (1.0 - self.progress) * along

    def rate(self, step: int) -> float:
        """The learning rate of step ``step`` (counted from 0, as the optimiser counts its iterations)."""
        return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * self.progress_at(step)))

    def replanned(self, step: int, steps: int) -> "CosinePlan":
        """The same cosine from where step ``step`` stands, now reaching 0 at ``steps`` in all."""
        if steps < step:
            raise ValueError(f"cannot re-plan a training to {steps} steps: it has already taken {step}")
        return type(self)(self.learning_rate, steps, since=step, progress=self.progress_at(step))


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
