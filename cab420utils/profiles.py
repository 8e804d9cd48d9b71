"""One switch for the whole course: the fast profile (a 2-core CPU, minutes per
notebook) or the full profile (a GPU, closer to the papers).

Every notebook starts with::

    run = cab420utils.setup("01-siamese-bce", "Siamese network with binary cross-entropy")
    epochs = run.pick(fast=4, full=40)

``setup`` seeds every random number generator, prints which profile runs and
why, on which device and with which versions, and starts the clock that the
results recorder reads at the end.
"""
from __future__ import annotations

import os
import platform
import random
import time
from dataclasses import dataclass, field

import numpy as np

PROFILE_VARIABLE = "CAB420_PROFILE"
PROFILES = ("fast", "full", "auto")


def visible_gpus() -> list[str]:
    """Names of the GPUs the backend can use (empty on a CPU-only machine)."""
    import keras

    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if keras.config.backend() == "jax":  # pragma: no cover - not the course's backend
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    if keras.config.backend() == "torch":  # pragma: no cover
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def describe_device() -> str:
    """A short, human description of where training runs, e.g. 'CPU (2 cores)'."""
    gpus = visible_gpus()
    if gpus:
        names = _gpu_names() or gpus
        return f"GPU x{len(gpus)} ({', '.join(sorted(set(names)))})"
    return f"CPU ({os.cpu_count()} cores)"


def _gpu_names() -> list[str]:
    try:
        import tensorflow as tf

        return [
            tf.config.experimental.get_device_details(d).get("device_name", d.name)
            for d in tf.config.list_physical_devices("GPU")
        ]
    except Exception:  # details are a nicety; the count is what matters
        return []


def resolve_profile(requested: str | None = None) -> tuple[str, str]:
    """Return ``(profile, reason)`` for the requested name or ``$CAB420_PROFILE``.

    ``auto`` (the default) picks ``full`` when a GPU is visible and ``fast``
    otherwise, so a laptop never starts a multi-hour run by accident.
    """
    from_env = requested is None
    name = (os.environ.get(PROFILE_VARIABLE, "auto") if from_env else requested).strip().lower()
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}: choose one of {', '.join(PROFILES)} "
            f"(set it with e.g. `export {PROFILE_VARIABLE}=fast`)."
        )
    source = f"{PROFILE_VARIABLE}={name}" if from_env and PROFILE_VARIABLE in os.environ else (
        "the default (auto)" if from_env else f"requested {name!r}"
    )
    if name != "auto":
        return name, f"{source} was set"
    if visible_gpus():
        return "full", f"{source}: a GPU is visible, so the full profile runs"
    return "fast", f"{source}: no GPU is visible, so the fast (CPU) profile runs"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend, so a rerun on the same machine
    draws the same pairs and starts from the same weights."""
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


@dataclass
class Run:
    """What ``setup`` hands back: the profile's name, the seed, the device and
    the clock.  ``pick`` chooses a setting for the running profile."""

    notebook: str
    title: str
    profile: str
    reason: str
    seed: int
    device: str
    versions: dict[str, str]
    distribution: str = "one device (no distribution)"
    started: float = field(default_factory=time.perf_counter)

    def pick(self, *, fast, full):
        """The value for the running profile: ``run.pick(fast=3, full=30)``."""
        return fast if self.profile == "fast" else full

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def rng(self, offset: int = 0) -> np.random.Generator:
        """A NumPy generator derived from the run's seed (offset: a sub-stream)."""
        return np.random.default_rng([self.seed, offset])


def library_versions() -> dict[str, str]:
    import keras

    versions = {"python": platform.python_version(), "numpy": np.__version__, "keras": keras.__version__,
                "backend": keras.config.backend()}
    try:
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    except ImportError:  # pragma: no cover
        pass
    return versions


def setup(notebook: str, title: str, seed: int = 420, profile: str | None = None, quiet: bool = False) -> Run:
    """Seed everything, choose the profile, print what runs where, start the clock."""
    name, reason = resolve_profile(profile)
    seed_everything(seed)
    from . import distribute

    training = distribute.describe(distribute.use())
    run = Run(notebook=notebook, title=title, profile=name, reason=reason, seed=seed,
              device=describe_device(), versions=library_versions(), distribution=training)
    if not quiet:
        versions = ", ".join(f"{k} {v}" for k, v in run.versions.items())
        print(f"{title}\n"
              f"  profile : {name.upper()} ({reason})\n"
              f"  device  : {run.device}\n"
              f"  training: {training} (CAB420_DISTRIBUTION=none|mirrored)\n"
              f"  seed    : {seed}\n"
              f"  versions: {versions}")
    return run
