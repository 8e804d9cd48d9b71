"""One switch for the whole course: the fast profile (a 2-core CPU, minutes per
notebook) or the full profile (a GPU, closer to the papers).

Every notebook starts with::

    run = cab420utils.setup("01-siamese-bce", "Siamese network with binary cross-entropy")
    epochs = run.pick(fast=4, full=40)
    steps = run.budget(fast=900, full=20_000)

``setup`` seeds every random number generator, prints which profile runs and
why, on which device and with which versions, and starts the clock that the
results recorder reads at the end.

``pick`` chooses a setting (a model's size, which forms or seeds to run);
``budget`` chooses *how much* to train (steps, images, episodes).  The two differ
only in a **rehearsal** (``CAB420_REHEARSAL=1``): every setting is the profile's
own, but every budget is cut to a twentieth of the fast profile's, so the full
profile's code (its larger models, extra seeds and forms) runs end to end on a
CPU in minutes, before anyone spends hours of a GPU on it.  A rehearsal's
numbers mean nothing and say so (``python3 tools/course.py rehearse``).

A **time cap** (``CAB420_ARC_SECONDS=140``) is for a GPU lent for minutes: each
ARC training (notebook 08's ARC, notebook 09's ConvARC: the course's long
trainings) times its first steps, shortens its budget to the steps that fit in
that many seconds, with the learning-rate schedule fitted to the shorter run,
times itself again at every tenth of the cap and plans anew (``arc.TimeCap``),
and reports how many steps it trained.  Unset (the default), a budget's steps
are trained however long they take.
"""
from __future__ import annotations

import importlib
import os
import platform
import random
import time
from dataclasses import dataclass, field

import numpy as np

from ._validate import finite_positive
from .limits import usable_cores, usable_memory

PROFILE_VARIABLE = "CAB420_PROFILE"
PROFILES = ("fast", "full", "auto")
REHEARSAL_VARIABLE = "CAB420_REHEARSAL"
REHEARSAL_DIVISOR = 20   # a rehearsal's budgets: the fast profile's, divided by this
ARC_SECONDS_VARIABLE = "CAB420_ARC_SECONDS"


def rehearsal_requested(environ=None) -> bool:
    """Whether ``$CAB420_REHEARSAL`` asks for a rehearsal (1/true/yes; 0/false/no/empty: no).

    ``environ`` is the mapping to read (default: ``os.environ``); any other value is an error."""
    environ = os.environ if environ is None else environ
    value = (environ.get(REHEARSAL_VARIABLE) or "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{REHEARSAL_VARIABLE}={value!r}: use 1 (rehearse: tiny budgets, every setting of the "
                     f"profile) or 0 (a real run)")


def arc_seconds_requested() -> float | None:
    """The time cap ``$CAB420_ARC_SECONDS`` sets on each ARC training, in seconds (None: unset or empty)."""
    value = os.environ.get(ARC_SECONDS_VARIABLE, "").strip()
    return check_arc_seconds(value, f"{ARC_SECONDS_VARIABLE}={value!r}") if value else None


def check_arc_seconds(value, what: str = "arc_seconds") -> float:
    """``value`` as a time cap in seconds: a finite number above 0, or a clear error naming ``what``."""
    seconds = finite_positive(value)
    if seconds is None:
        raise ValueError(f"{what}: give the most seconds each ARC training may take, a number above 0 (e.g. 140), "
                         f"or leave {ARC_SECONDS_VARIABLE} unset to train every step of the budget")
    return seconds


def rehearsal_budget(fast_value: int, least: int = 1) -> int:
    """A rehearsal's budget: the fast profile's, divided by :data:`REHEARSAL_DIVISOR`, at least ``least``."""
    return max(int(least), int(fast_value) // REHEARSAL_DIVISOR)


def visible_gpus() -> list[str]:
    """Names of the GPUs the backend can use (empty on a CPU-only machine)."""
    import keras

    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if keras.config.backend() == "jax":  # the lent GPU machine's (README: the full profile)
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]   # e.g. 'NVIDIA H200'
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
    return f"CPU ({usable_cores()} cores)"


TF_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def limit_cpu_threads(environ=None) -> int | None:
    """Size TensorFlow's thread pools to the cores this process may use, where that is fewer than the
    machine's: TensorFlow counts the machine's cores (and the ones ``taskset`` allows), not a container's CPU
    quota, so on a JupyterHub or ``docker run --cpus 2`` on a 64-core server it would start 64 threads to share
    two cores' time.  Sets ``TF_NUM_INTRAOP_THREADS`` and ``TF_NUM_INTEROP_THREADS`` in ``environ`` (default:
    ``os.environ``), which TensorFlow reads when it first runs an operation, so call it before then; leaves
    them as they are where either is already set.  Returns the thread count set, or None where it set nothing."""
    environ = os.environ if environ is None else environ
    usable = usable_cores()
    if usable >= (os.cpu_count() or 1) or any(name in environ for name in TF_THREAD_VARIABLES):
        return None
    for name in TF_THREAD_VARIABLES:
        environ[name] = str(usable)
    return usable


# Memory: a notebook kernel's peak in each profile (the fast profile's notebooks 1.2-1.6 GB, the full profile's
# 09 5.5 GB: README, Benchmarks) and what to ask for.  A rehearsal keeps the full profile's models but cuts every
# budget below the fast profile's, so it needs what the fast profile needs.  On a JupyterHub the Jupyter server
# shares the limit with the kernel, hence the margin.
MEMORY_PEAK_GB = {"fast": 1.6, "full": 5.5}
MEMORY_ASK_GB = {"fast": 2, "full": 8}
MEMORY_MARGIN_GB = 0.3


def memory_warning(profile: str, rehearsal: bool = False, available: int | None = None) -> str | None:
    """Why this process may run out of memory in ``profile``, in words, or None where it has enough or its
    memory cannot be read.  ``available`` (bytes; default :func:`~cab420utils.limits.usable_memory`) is the
    smaller of the machine's RAM and a container's or JupyterHub's limit: a kernel that passes it is stopped
    without saying why, so each notebook's first cell says it beforehand."""
    available = usable_memory() if available is None else available
    budget = "fast" if rehearsal else profile
    if available is None or available >= (MEMORY_PEAK_GB[budget] + MEMORY_MARGIN_GB) * 2 ** 30:
        return None
    return (f"this process may use {available / 2 ** 30:.1f} GB of memory, and the {profile} profile's heaviest "
            f"notebooks peak at about {MEMORY_PEAK_GB[budget]} GB:\n            if the kernel dies mid-way, that is "
            f"why. Ask for {MEMORY_ASK_GB[budget]} GB or more (a JupyterHub's memory limit, docker run --memory)" +
            (", or use the fast profile (CAB420_PROFILE=fast)" if budget == "full" else ""))


def _gpu_names() -> list[str]:
    import keras

    if keras.config.backend() != "tensorflow":
        return []        # visible_gpus() already gives the cards' names
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
    rehearsal: bool = False
    arc_seconds: float | None = None   # the time cap on each ARC training ($CAB420_ARC_SECONDS), if any
    started: float = field(default_factory=time.perf_counter)

    def pick(self, *, fast, full):
        """The setting for the running profile: ``run.pick(fast=3, full=30)``."""
        return fast if self.profile == "fast" else full

    def budget(self, *, fast: int, full: int, least: int = 1) -> int:
        """How much to train (steps, images, episodes) in the running profile:
        ``run.budget(fast=900, full=20_000)``.  In a rehearsal, whatever the
        profile, the fast value divided by :data:`REHEARSAL_DIVISOR` (at least
        ``least``, for a budget that must cover something else, e.g. frozen steps)."""
        for name, value in (("fast", fast), ("full", full), ("least", least)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"a budget counts steps, images or episodes: {name} must be a positive int, "
                                 f"got {value!r}")
        if self.rehearsal:
            return rehearsal_budget(fast, least)
        return int(self.pick(fast=fast, full=full))

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def rng(self, offset: int = 0) -> np.random.Generator:
        """A NumPy generator derived from the run's seed (offset: a sub-stream)."""
        return np.random.default_rng([self.seed, offset])


def library_versions() -> dict[str, str]:
    import keras

    backend = keras.config.backend()
    versions = {"python": platform.python_version(), "numpy": np.__version__, "keras": keras.__version__,
                "backend": backend}
    if backend in ("tensorflow", "jax"):     # jax: the lent GPU machine's backend (it has no TensorFlow)
        versions[backend] = importlib.import_module(backend).__version__
    return versions


def setup(notebook: str, title: str, seed: int = 420, profile: str | None = None, quiet: bool = False,
          rehearsal: bool | None = None, arc_seconds: float | None = None) -> Run:
    """Seed everything, choose the profile, print what runs where, start the clock.
    ``rehearsal`` (default: ``$CAB420_REHEARSAL``) cuts every budget; ``arc_seconds``
    (default: ``$CAB420_ARC_SECONDS``) caps each ARC training's time; see the module's doc."""
    from . import distribute

    distribute.split_cpu()          # only if $CAB420_LOGICAL_CPUS asks, and before TensorFlow runs anything
    threads = limit_cpu_threads()   # only where a CPU quota leaves fewer cores than the machine has
    name, reason = resolve_profile(profile)
    rehearsal = rehearsal_requested() if rehearsal is None else bool(rehearsal)
    arc_seconds = arc_seconds_requested() if arc_seconds is None else check_arc_seconds(arc_seconds)
    seed_everything(seed)
    training = distribute.describe(distribute.use())
    run = Run(notebook=notebook, title=title, profile=name, reason=reason, seed=seed,
              device=describe_device(), versions=library_versions(), distribution=training,
              rehearsal=rehearsal, arc_seconds=arc_seconds)
    if not quiet:
        versions = ", ".join(f"{k} {v}" for k, v in run.versions.items())
        note = (f"\n  REHEARSAL ({REHEARSAL_VARIABLE}=1): the {name} profile's settings with every training budget "
                f"cut to 1/{REHEARSAL_DIVISOR} of the fast profile's,\n"
                "            to check that its code runs end to end; the numbers below mean nothing"
                if rehearsal else "")
        if threads is not None:
            note += (f"\n  THREADS : this process may use {threads} of the machine's {os.cpu_count()} cores (a CPU "
                     f"quota or taskset), so TensorFlow's thread pools are\n            set to {threads} "
                     "(TF_NUM_INTRAOP_THREADS, TF_NUM_INTEROP_THREADS)")
        memory = memory_warning(name, rehearsal)
        if memory is not None:
            note += f"\n  MEMORY  : {memory}"
        if arc_seconds is not None:
            note += (f"\n  TIME CAP ({ARC_SECONDS_VARIABLE}={arc_seconds:g}): each ARC training trains the steps "
                     f"that fit in {arc_seconds:g} s,\n            at most its budget; the notebook says how many it "
                     "trained")
        print(f"{title}\n"
              f"  profile : {name.upper()} ({reason}){note}\n"
              f"  device  : {run.device}\n"
              f"  training: {training} (CAB420_DISTRIBUTION=none|mirrored)\n"
              f"  seed    : {seed}\n"
              f"  versions: {versions}")
    return run
