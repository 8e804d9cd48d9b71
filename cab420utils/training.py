"""Training conveniences shared by the notebooks: one optimiser recipe."""
from __future__ import annotations

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
