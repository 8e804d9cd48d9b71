"""Attentive Recurrent Comparators (Shyam, Gupta & Dukkipati, ICML 2017), in Keras 3.

An ARC compares two images the way a person spots a difference: it looks at
one, then the other, then back, a small **glimpse** at a time, and an LSTM
*controller* remembers what it has seen.  Where the next glimpse falls is
computed from the controller's state, so the model learns where to look.
After ``2 * glimpses_per_image`` glimpses (A, B, A, B, ...) the final hidden
state says "same" or "different" through a small head.

:class:`ARC` is the model (:class:`ConvARC`: the same, with its glimpses over a small
convolutional network's feature maps, for the full profile of notebook 09); :func:`character_pairs` draws same/different pairs
of Omniglot drawings (vectorised) and :func:`train_comparator` trains on them;
:func:`save_comparator` / :func:`load_comparator` keep a trained ARC in
``build/models/`` so notebook 09 can reuse notebook 08's; :func:`lake_scores`
scores Lake et al.'s one-shot runs; :func:`attention_trace` returns where every
glimpse looked, for drawing.  The glimpse itself lives in
:mod:`cab420utils.glimpses`.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from ._validate import finite_positive, is_whole_number
from .glimpses import CauchyGlimpse, take_feature_glimpse
from .metrics import roc_auc
from .profiles import ARC_SECONDS_VARIABLE, check_arc_seconds, rehearsal_budget
from .training import CosinePlan, cosine_adam, gradient_step


@keras.saving.register_keras_serializable(package="cab420utils")
class ARC(keras.Model):
    """Attentive Recurrent Comparator over pairs of square grey images.

    ``call([images_a, images_b])`` takes two ``(batch, N, N)`` arrays (ink = 1)
    and returns one logit per pair (> 0: "same").  At step t the controller's
    previous hidden state h gives the glimpse parameters ``W h`` (no bias, as in
    the paper: the first glimpse, from h = 0, sees the whole image), the glimpse
    is taken from image A at even steps and image B at odd ones, and it enters
    an LSTM cell.  :meth:`encode` returns the final hidden state (notebook 09
    feeds it to a context model); ``return_params=True`` also returns the
    ``(batch, steps, 3)`` glimpse parameters, for drawing the attention.

    ``attention_scale``: the glimpse parameters are ``attention_scale * W h``.
    Adam moves every weight by about its learning rate a step whatever the size
    of its gradient, so this is the attention's own learning rate, relative to
    the rest of the model's.  1 is the paper's plain ``W h``; the course trains
    with 0.3 (:func:`comparator_settings`; notebook 08, "Making it train"),
    since at full speed the attention can swing onto a blank edge of the image,
    zoomed in, and stay there: the glimpses then see nothing, and the loss goes
    back to chance.
    """

    CONFIG = ("hidden", "glimpses_per_image", "glimpse_size", "head_units",
              "attention_scale")   # what rebuilds a saved one

    def __init__(self, hidden: int = 128, glimpses_per_image: int = 8, glimpse_size: int = 8,
                 head_units: int = 64, attention_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if glimpses_per_image < 1:
            raise ValueError(f"glimpses_per_image must be at least 1, got {glimpses_per_image}")
        self.attention_scale = finite_positive(attention_scale)
        if self.attention_scale is None:
            raise ValueError(f"attention_scale must be a finite number above 0 (1: the paper's), got {attention_scale!r}")
        self.hidden = int(hidden)
        self.glimpses_per_image = int(glimpses_per_image)
        self.glimpse_size = int(glimpse_size)
        self.head_units = int(head_units)
        self.cell = layers.LSTMCell(self.hidden, name="controller")
        # Zero weights: every pair starts with a whole-image glimpse; the controller learns to move.
        self.where = layers.Dense(3, use_bias=False, kernel_initializer="zeros", name="where")
        self.glimpse = CauchyGlimpse(self.glimpse_size, name="glimpse")
        self.head = keras.Sequential([layers.Dense(self.head_units, activation="elu"), layers.Dense(1)],
                                     name="same_different")

    @property
    def steps(self) -> int:
        return 2 * self.glimpses_per_image

    def encode(self, images_a, images_b, training: bool = False, return_params: bool = False):
        a = ops.cast(images_a, "float32")
        b = ops.cast(images_b, "float32")
        if len(a.shape) != 3 or tuple(a.shape[1:]) != tuple(b.shape[1:]) or a.shape[1] != a.shape[2]:
            raise ValueError("ARC compares two batches of square images shaped (batch, N, N); "
                             f"got {tuple(a.shape)} and {tuple(b.shape)}")
        n = ops.shape(a)[0]
        views = self.views(a, b, training)         # what the glimpses fall on: here the two images themselves
        h = ops.zeros((n, self.hidden))
        c = ops.zeros((n, self.hidden))
        params = []
        for t in range(self.steps):
            where = self.where(h) * self.attention_scale
            seen = self.look(views[t % 2], where)  # image A at even steps, B at odd ones
            h, (h, c) = self.cell(ops.reshape(seen, (n, -1)), [h, c], training=training)
            params.append(where)
        if return_params:
            return h, ops.stack(params, axis=1)
        return h

    def views(self, a, b, training: bool = False):
        """What the glimpses fall on: the two images."""
        return a, b

    def look(self, view, where):
        """One ``(batch, S, S)`` glimpse of ``view`` at ``where``."""
        return self.glimpse([view, where])

    def call(self, inputs, training: bool = False):
        images_a, images_b = inputs
        return self.head(self.encode(images_a, images_b, training=training), training=training)[:, 0]

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "glimpses_per_image": self.glimpses_per_image,
                "glimpse_size": self.glimpse_size, "head_units": self.head_units,
                "attention_scale": self.attention_scale}


@keras.saving.register_keras_serializable(package="cab420utils")
class ConvARC(ARC):
    """ARC whose glimpses fall on feature maps instead of pixels (Shyam et al.'s ConvARC).

    A small convolutional network (two 3x3 convolutions of ``filters[0]``
    channels, 2x2 max-pooling, a 3x3 convolution of ``filters[1]``) turns each
    ``(N, N)`` image into an ``(N/2, N/2, filters[1])`` map, once per comparison;
    each glimpse is an ``S x S`` grid of Cauchy filters over that map, the same
    filters for every channel (:func:`~cab420utils.glimpses.take_feature_glimpse`).
    The controller still chooses where to look and how closely, but it sees
    learned strokes and corners instead of raw ink.
    """

    CONFIG = ARC.CONFIG + ("filters",)

    def __init__(self, hidden: int = 128, glimpses_per_image: int = 6, glimpse_size: int = 4,
                 head_units: int = 64, attention_scale: float = 1.0, filters=(32, 64), **kwargs):
        super().__init__(hidden=hidden, glimpses_per_image=glimpses_per_image, glimpse_size=glimpse_size,
                         head_units=head_units, attention_scale=attention_scale, **kwargs)
        if len(filters) != 2 or min(filters) < 1:
            raise ValueError(f"filters are the two convolutions' widths, e.g. (32, 64); got {filters!r}")
        self.filters = tuple(int(f) for f in filters)
        self.features = keras.Sequential([
            layers.Conv2D(self.filters[0], 3, padding="same", activation="elu"),
            layers.Conv2D(self.filters[0], 3, padding="same", activation="elu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(self.filters[1], 3, padding="same", activation="elu"),
        ], name="features")

    def build(self, input_shape):
        size = input_shape[0][-1]
        self.features.build((None, size, size, 1))   # the rest builds itself on the first call, as in ARC
        self.built = True

    def views(self, a, b, training: bool = False):
        """Both images' feature maps, computed once per comparison."""
        return tuple(self.features(x[..., None], training=training) for x in (a, b))

    def look(self, view, where):
        return take_feature_glimpse(view, where, self.glimpse_size)

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters)}


#: Lake et al.'s modified Hausdorff distance on their 20 one-shot runs (Science 2015): 61.2% correct, the
#: baseline a learned comparator must beat (notebook 08 re-measures it: :func:`hausdorff_scores`).
LAKE_HAUSDORFF = 0.612

COMPARATORS = {"arc": ARC, "convarc": ConvARC}   # the "kind" in a comparator's settings -> its class


def build_comparator(settings: dict) -> ARC:
    """The untrained, built comparator that ``settings`` (:func:`comparator_settings`) describe."""
    kind = settings.get("kind", "arc")
    if kind not in COMPARATORS:
        raise ValueError(f"unknown comparator kind {kind!r}: choose one of {', '.join(COMPARATORS)}")
    cls = COMPARATORS[kind]
    model = cls(**{k: settings[k] for k in cls.CONFIG if k in settings})
    model([np.zeros((1, settings["image_size"], settings["image_size"]), np.float32)] * 2)
    return model


def comparator_settings(profile: str, rehearsal: bool = False, kind: str = "arc") -> dict:
    """The ARC that notebook 08 trains and notebook 09 reuses, for ``profile``
    (``"fast"``: a 2-core CPU, about three minutes; ``"full"``: a GPU).  In a
    ``rehearsal`` the training budget is cut as :mod:`cab420utils.profiles` says.
    ``kind="convarc"``: the same recipe for a :class:`ConvARC` (notebook 09's full
    profile), whose 4x4 glimpses fall on a 16x16 map of 64 channels."""
    if profile not in ("fast", "full"):
        raise ValueError(f"profile must be 'fast' or 'full', got {profile!r}")
    if kind not in COMPARATORS:
        raise ValueError(f"kind must be one of {', '.join(COMPARATORS)}, got {kind!r}")
    fast = profile == "fast"
    fast_steps = 8000
    settings = dict(
        image_size=32,                          # Omniglot's 105x105 drawings, area-averaged to 32x32
        glimpse_size=12,                        # a 12x12 grid of Cauchy filters per glimpse
        glimpses_per_image=6,                   # 12 glimpses in all: A, B, A, B, ...
        hidden=128 if fast else 512,            # LSTM units (the paper: 512)
        steps=fast_steps if fast else 60_000,   # training steps (the budget)
        batch=64 if fast else 128,              # pairs per step, half same, half different
        learning_rate=3e-3, clipnorm=1.0,       # not the paper's 1e-4: see notebook 08, "Making it train"
        attention_scale=0.3,                    # the attention learns at 0.3 of that rate (ibid.)
        window=20,                              # different pairs: characters within 20 of each other
        max_shift=0 if fast else 2,             # augmentation: pixels of random shift
        validation_characters=96,               # the last background characters, never trained on
        evaluate_every=1000 if fast else 2000,
    )
    if kind == "convarc":
        settings.update(kind="convarc", filters=(32, 64), glimpse_size=4)
    if rehearsal:
        settings["steps"] = rehearsal_budget(fast_steps)
        settings["evaluate_every"] = settings["steps"] // 2
    return settings


def character_pairs(n_characters: int, n_drawers: int, n_pairs: int, rng: np.random.Generator,
                    window: int | None = None):
    """Draw ``n_pairs`` pairs of drawings, the first half of the same character.

    Returns ``(char_a, drawer_a, char_b, drawer_b, same)`` index arrays, with
    ``drawer_a != drawer_b`` always (a drawing is never compared with itself).
    ``window``: a different pair's second character lies within ``window``
    characters of the first in the set's order.  Omniglot numbers characters
    alphabet by alphabet, so a small window mostly draws both from one alphabet
    — the harder comparison the paper trains on.
    """
    if n_characters < 2 or n_drawers < 2:
        raise ValueError(f"pairs need at least 2 characters and 2 drawings of each; got {n_characters} x {n_drawers}")
    if n_pairs < 2:
        raise ValueError(f"n_pairs must be at least 2 (half same, half different), got {n_pairs}")
    if window is not None and window < 1:
        raise ValueError(f"window must be at least 1 (or None for any character), got {window}")
    same = np.arange(n_pairs) < n_pairs // 2
    char_a = rng.integers(0, n_characters, n_pairs)
    if window is None:
        offset = rng.integers(1, n_characters, n_pairs)                 # any other character
        other = (char_a + offset) % n_characters
    else:
        w = min(window, n_characters - 1)
        step = rng.integers(1, w + 1, n_pairs) * rng.choice([-1, 1], n_pairs)
        other = char_a + step
        other = np.where((other < 0) | (other >= n_characters), char_a - step, other)   # reflect at the ends
        other = np.clip(other, 0, n_characters - 1)
        other = np.where(other == char_a, (char_a + 1) % n_characters, other)
    char_b = np.where(same, char_a, other)
    drawer_a = rng.integers(0, n_drawers, n_pairs)
    drawer_b = (drawer_a + rng.integers(1, n_drawers, n_pairs)) % n_drawers
    return char_a, drawer_a, char_b, drawer_b, same


def pair_images(images, pairs, max_shift: int = 0, rng: np.random.Generator | None = None):
    """The ``(images_a, images_b, same)`` arrays of ``pairs`` from :func:`character_pairs`,
    looked up in ``images`` shaped ``(characters, drawers, N, N)``; ``max_shift``
    > 0 moves every image by a few random pixels (:func:`shift_images`)."""
    ca, da, cb, db, same = pairs
    a, b = images[ca, da], images[cb, db]
    if max_shift:
        if rng is None:
            raise ValueError("shifting images needs a random generator: pass rng=")
        a, b = shift_images(a, max_shift, rng), shift_images(b, max_shift, rng)
    return a, b, same.astype("float32")


def train_comparator(model: ARC, images, *, steps: int, batch: int, learning_rate: float, clipnorm: float,
                     window: int | None, rng: np.random.Generator, max_shift: int = 0, validation=None,
                     evaluate_every: int = 1000, seconds: float | None = None, clock=time.perf_counter):
    """Train ``model`` on fresh same/different pairs of ``images`` (characters,
    drawers, N, N) for ``steps`` steps of ``batch`` pairs, with Adam whose
    learning rate decays along a cosine and gradients clipped to norm ``clipnorm``.

    Returns ``(losses, curve)``: the training loss of every step, and every
    ``evaluate_every`` steps a dict of step, mean training loss, and — when
    ``validation=(images_a, images_b, same)`` is given — validation accuracy
    (logit > 0) and ROC AUC, with the seconds since training started.
    The step is :func:`~cab420utils.training.gradient_step`: a ``GradientTape``
    on TensorFlow (each replica a share of every batch under
    ``CAB420_DISTRIBUTION=mirrored``), ``jax.value_and_grad`` on JAX.

    ``seconds``: a time cap (``run.arc_seconds``, for a GPU lent for minutes).
    After its first steps the training times itself, and again at every tenth of
    the cap (:class:`TimeCap`); when ``steps`` will not fit, it trains only the
    steps that do, its cosine carried on from where it stands to land at the new
    end (:class:`~cab420utils.training.CosinePlan`), and it stops at the cap
    whatever happens.  ``len(losses)``: the steps trained.
    """
    if seconds is None:
        cap, plan, optimizer = None, None, cosine_adam(learning_rate, steps, clipnorm=clipnorm)
    else:   # the same cosine, as a plan that can change: the rate is set before each step, no compiling again
        cap = TimeCap(seconds, steps, timed=min(steps, max(50, steps // 100)), clock=clock)
        plan, optimizer = CosinePlan(learning_rate, steps), keras.optimizers.Adam(learning_rate, clipnorm=clipnorm)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    def pair_loss(images_a, images_b, same):
        return loss_fn(same, model([images_a, images_b], training=True))

    train_step = gradient_step(model, optimizer, pair_loss)

    started, losses, curve = clock(), [], []
    n_characters, n_drawers = images.shape[:2]
    step = 0
    while step < steps:
        step += 1
        if plan is not None:
            optimizer.learning_rate = plan.rate(step - 1)   # the optimiser has taken step - 1 steps
        a, b, same = pair_images(images, character_pairs(n_characters, n_drawers, batch, rng, window=window),
                                 max_shift, rng)
        losses.append(float(train_step(a, b, same)))
        if cap is not None and (planned := cap.plan(step)) != steps:
            plan, steps = plan.replanned(step, planned), planned   # the cosine carries on to land at the new end
        if step % evaluate_every == 0 or step == steps:
            point = {"step": step, "training loss": float(np.mean(losses[-evaluate_every:]))}
            if validation is not None:
                val_a, val_b, val_same = validation
                scores = pair_scores(model, val_a, val_b, both_orders=False)
                point.update({"validation accuracy": float(((scores > 0) == (val_same > 0.5)).mean()),
                              "validation ROC AUC": roc_auc(scores, val_same)})
            point["seconds"] = clock() - started
            curve.append(point)
    return losses, curve


class TimeCap:
    """How many of a training's ``budget`` steps fit in ``seconds``: :meth:`plan`
    is asked after every step and answers the steps to train in all.

    After step ``timed`` it times the steps since the first (the first compiles)
    and plans the steps that fit, with 10% of the time left to spare
    (evaluations).  A pace timed once can mislead — early steps slowed by
    something running beside them leave the cap part used, a machine that
    slows later overruns it — so each time another tenth of ``seconds`` has
    gone it times the steps since its last plan and plans again, longer or
    shorter, never past ``budget``.  Past ``seconds`` it says stop (the plan:
    this step)."""

    CHECKS = tuple(tenth / 10 for tenth in range(1, 10))   # the fractions of the cap at which it plans again
    SPARE = 0.9                                            # the share of the time left that a plan fills

    def __init__(self, seconds: float, budget: int, timed: int, clock=time.perf_counter):
        self.seconds = check_arc_seconds(seconds, f"seconds={seconds!r} (a time cap)")
        if not is_whole_number(budget) or budget < 1:
            raise ValueError(f"a time cap plans a budget of at least 1 step, got budget={budget!r}")
        self.budget, self.planned = int(budget), int(budget)
        self.timed, self.clock = max(int(timed), 1), clock
        self.started, self.since = clock(), None      # since: (step, seconds) where the pace is timed from
        self.checks = [fraction * self.seconds for fraction in self.CHECKS]

    def plan(self, step: int) -> int:
        """The steps to train in all, now that ``step`` steps are done."""
        elapsed = self.clock() - self.started
        if step == 1:
            self.since = (1, elapsed)
        if elapsed > self.seconds:
            self.planned = step
        elif step >= self.timed > 1 and (step == self.timed or (self.checks and elapsed >= self.checks[0])):
            while self.checks and elapsed >= self.checks[0]:
                self.checks.pop(0)                     # checks passed while the steps ran are not made twice
            (since_step, since), self.since = self.since, (step, elapsed)
            per_step = max((elapsed - since) / max(step - since_step, 1), 1e-9)
            self.planned = max(step, min(self.budget, step + int(self.SPARE * (self.seconds - elapsed) / per_step)))
        return self.planned


def save_comparator(model: ARC, path, settings: dict) -> Path:
    """Save a trained ARC's weights to ``path`` (``*.weights.h5``, written
    atomically) with the ``settings`` it was trained with beside it (``.json``),
    so :func:`load_comparator` reuses it only for the same settings."""
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"an ARC's weights go in a file named *.weights.h5, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    card_path = _settings_path(path)
    card_path.unlink(missing_ok=True)         # no old card may vouch for the new weights, even after a crash
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".weights.h5")
    os.close(fd)
    try:
        model.save_weights(tmp, overwrite=True)
        os.replace(tmp, path)
        card = {"settings": _plain(settings), "class": type(model).__name__, "config": _plain(model.get_config())}
        with open(tmp, "w") as f:
            f.write(json.dumps(card, indent=1, sort_keys=True))
        os.replace(tmp, card_path)             # the card last: weights without a card are never used
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_comparator(path, settings: dict, image_size: int) -> ARC | None:
    """The ARC saved at ``path`` by :func:`save_comparator` with exactly these
    ``settings``, ready to use; ``None`` when there is none, or it was trained
    with other settings (then train one)."""
    path = Path(path)
    card_path = _settings_path(path)
    if not path.is_file() or not card_path.is_file():
        return None
    try:
        card = json.loads(card_path.read_text())
    except ValueError:
        return None
    if card.get("settings") != _plain(settings):
        return None
    classes = {cls.__name__: cls for cls in COMPARATORS.values()}
    cls, config = classes.get(card.get("class", "ARC")), card["config"]
    if cls is None:
        return None
    model = cls(**{k: config[k] for k in cls.CONFIG if k in config})
    model([np.zeros((1, image_size, image_size), np.float32)] * 2)
    model.load_weights(path)
    return model


def saved_comparator(path) -> tuple[ARC, dict]:
    """The comparator saved at ``path`` by :func:`save_comparator`, whatever it was
    trained with, and those settings (from its card, values as JSON writes them:
    ``int(settings["hidden"])``) — for a study of a comparator trained elsewhere,
    e.g. the full profile's in ``build/full-cpu/models/``.  A missing file, or
    weights without their card, raise ``FileNotFoundError`` saying which."""
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"a saved comparator's weights are in a file named *.weights.h5, got {path.name}")
    card_path = _settings_path(path)
    for needed, what in ((path, "weights"), (card_path, "settings card")):
        if not needed.is_file():
            raise FileNotFoundError(f"no saved comparator's {what} at {needed}: run the notebook that trains it "
                                    f"(notebook 08 saves build/models/{SAVED_NAME}), or give the path of one")
    try:
        settings = json.loads(card_path.read_text())["settings"]
        image_size = int(settings["image_size"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{card_path} is not a comparator's settings card with its image size "
                         "(save_comparator writes one)") from None
    model = load_comparator(path, settings, image_size)
    if model is None:
        raise ValueError(f"{card_path} names a comparator class this course does not have")
    return model, settings


SAVED = {   # a comparator kind -> (its file under build/models/, what it is, the notebook that trains it)
    "arc": ("08-arc.weights.h5", "notebook 08's ARC", "notebook 08"),
    "convarc": ("09-convarc.weights.h5", "notebook 09's ConvARC", "notebook 09 in the full profile"),
}
SAVED_NAME = SAVED["arc"][0]   # where notebook 08 leaves its ARC


def trained_comparator(settings: dict, seed: int, quick_steps: int | None = None, seconds: float | None = None):
    """The comparator ``settings`` describe (:func:`comparator_settings`), trained with ``seed``.

    Loaded from ``build/models/`` when one was saved with exactly these settings
    and seed; otherwise trained here on the background set with notebook 08's
    recipe (same seeds, same steps; then saved, so the next run loads it), or —
    with ``quick_steps`` — a stand-in trained for only that many steps (not
    saved: for exercises that must stay short).  ``seconds``: a time cap on that
    training (:func:`train_comparator`); a capped comparator is saved with the
    steps it trained, so a later uncapped run does not mistake it for the whole
    budget's.  Returns ``(model, where_from)``; ``model.trained_steps`` says how
    many steps trained it.
    """
    from .data import load_omniglot_background
    from .results import build_dir

    file_name, what, trainer = SAVED[settings.get("kind", "arc")]
    path = build_dir() / "models" / file_name
    model = load_comparator(path, dict(settings, seed=seed), settings["image_size"])
    if model is not None:
        model.trained_steps = int(settings["steps"])
        return model, f"{what}, loaded from {path}"
    images = load_omniglot_background(settings["image_size"])[0].images[:-settings["validation_characters"]]
    keras.utils.set_random_seed(seed)
    model = build_comparator(settings)
    steps = settings["steps"] if quick_steps is None else int(quick_steps)
    losses, _ = train_comparator(model, images, steps=steps, batch=settings["batch"],
                                 learning_rate=settings["learning_rate"], clipnorm=settings["clipnorm"],
                                 window=settings["window"], max_shift=settings["max_shift"],
                                 rng=np.random.default_rng([seed, 3]), evaluate_every=steps, seconds=seconds)
    model.trained_steps = len(losses)
    if quick_steps is None:
        capped = (f" (the time cap of {seconds:g} s: {len(losses):,} of its {steps:,} steps)"
                  if len(losses) < steps else "")
        save_comparator(model, path, dict(settings, seed=seed, steps=len(losses)))
        return model, f"{what} was not in {path.parent}: trained here with notebook 08's recipe{capped}, and saved"
    return model, (f"{what} was not in {path.parent} (run {trainer} first): a stand-in trained for "
                   f"only {len(losses):,} steps, far weaker")


def cut_short(trained_steps: int, planned_steps: int, seconds: float | None) -> str:
    """What a failed check's message should add when a time cap cut the
    comparator's training short: ``""`` when it trained all ``planned_steps``,
    otherwise a sentence that names the cap and the steps it left, so nobody
    takes a weak, half-trained comparator for a broken method."""
    if trained_steps >= planned_steps:
        return ""
    cap = f"the time cap ({ARC_SECONDS_VARIABLE}={seconds:g})" if seconds else "a time cap"
    return (f" — but {cap} let the comparator train only {trained_steps:,} of its {planned_steps:,} steps: "
            f"give it more time (or unset {ARC_SECONDS_VARIABLE}) before reading this as the method's result")


def notebook08_comparator(profile: str, seed: int, quick_steps: int | None = None, rehearsal: bool = False):
    """Notebook 08's trained ARC for ``profile`` and ``seed``, for later notebooks:
    :func:`trained_comparator` of ``comparator_settings(profile, rehearsal)``."""
    return trained_comparator(comparator_settings(profile, rehearsal), seed, quick_steps)


def _settings_path(path: Path) -> Path:
    return path.with_name(path.name[:-len(".weights.h5")] + ".json")


def _plain(mapping: dict) -> dict:
    """JSON-comparable: every value as its JSON form (tuples become lists)."""
    return json.loads(json.dumps(mapping, default=str, sort_keys=True))


def pair_scores(model: ARC, images_a, images_b, batch_size: int = 500, both_orders: bool = True) -> np.ndarray:
    """The model's same-logit for each pair; with ``both_orders`` the mean of
    (A, B) and (B, A) — ARC is not symmetric by construction, so averaging the
    two orders is a free improvement at test time."""
    a = np.asarray(images_a, np.float32)
    b = np.asarray(images_b, np.float32)
    if a.shape != b.shape:
        raise ValueError(f"images_a and images_b must have the same shape; got {a.shape} and {b.shape}")
    out = []
    for start in range(0, len(a), batch_size):
        xa, xb = a[start:start + batch_size], b[start:start + batch_size]
        s = ops.convert_to_numpy(model([xa, xb]))
        if both_orders:
            s = 0.5 * (s + ops.convert_to_numpy(model([xb, xa])))
        out.append(s)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def lake_scores(model: ARC, runs, batch_size: int = 500, both_orders: bool = True) -> np.ndarray:
    """``(runs, 20 test, 20 training)`` same-scores of every test image of each
    of Lake's runs against the run's 20 training images (naive ARC: the decision
    is the argmax over the last axis)."""
    tests = np.stack([r.test_images for r in runs])       # (R, T, N, N)
    trains = np.stack([r.train_images for r in runs])     # (R, C, N, N)
    a, b = every_pair(tests, trains)
    return pair_scores(model, a, b, batch_size, both_orders).reshape(len(runs), tests.shape[1], trains.shape[1])


def every_pair(tests, candidates):
    """Each test image of an episode paired with each of its candidates, test by
    test: ``(episodes, T, N, N)`` and ``(episodes, C, N, N)`` give two flat
    ``(episodes * T * C, N, N)`` arrays, pair ``(e, t, c)`` at ``(e * T + t) * C + c``."""
    n_tests, n_candidates = tests.shape[1], candidates.shape[1]
    a = np.repeat(tests, n_candidates, axis=1).reshape(-1, *tests.shape[2:])
    b = np.tile(candidates, (1, n_tests, 1, 1)).reshape(-1, *candidates.shape[2:])
    return a, b


def attention_trace(model: ARC, image_a, image_b) -> np.ndarray:
    """The ``(steps, 3)`` glimpse parameters (x, y, zoom before tanh) for one
    pair: step t looks at image A when t is even, B when odd."""
    _, params = model.encode(np.asarray(image_a, np.float32)[None], np.asarray(image_b, np.float32)[None],
                             return_params=True)
    return ops.convert_to_numpy(params)[0]


def shift_images(images, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Light augmentation: move each ``(N, N)`` image by a random whole number of
    pixels in [-max_shift, max_shift] along each axis (zeros = no ink come in at
    the edges), for a whole batch at once."""
    images = np.asarray(images)
    if max_shift < 0:
        raise ValueError(f"max_shift must be 0 or more, got {max_shift}")
    if max_shift == 0:
        return images
    n, rows, cols = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    dr, dc = rng.integers(0, 2 * max_shift + 1, (2, n))
    r = dr[:, None, None] + np.arange(rows)[None, :, None]
    c = dc[:, None, None] + np.arange(cols)[None, None, :]
    return padded[np.arange(n)[:, None, None], r, c]


def modified_hausdorff(image_a, image_b) -> float:
    """Dubuisson & Jain's modified Hausdorff distance between the ink pixels of two
    images (ink > 0.5), each set centred on its mean: the larger of the two
    mean distances from a point of one image to the nearest point of the other.
    Lake et al.'s one-shot baseline picks the training image at the smallest
    distance (61.2% on their 20 runs)."""
    a, b = _ink_points(image_a), _ink_points(image_b)
    return float(max(_nearest(a, b).mean(), _nearest(b, a).mean()))


def _ink_points(image) -> np.ndarray:
    """The (row, col) of every ink pixel, centred on their mean (as Lake et al.'s
    baseline does, so a drawing made a little to one side is not penalised)."""
    points = np.argwhere(np.asarray(image) > 0.5).astype(np.float64)
    if len(points) == 0:
        raise ValueError("modified_hausdorff needs ink in both images (pixels > 0.5); one of them is blank")
    return points - points.mean(axis=0)


def _nearest(points, others) -> np.ndarray:
    from scipy.spatial import cKDTree

    return cKDTree(others).query(points)[0]


def hausdorff_scores(runs) -> np.ndarray:
    """``(runs, 20 test, 20 training)`` minus the modified Hausdorff distance
    (higher = more alike, like :func:`lake_scores`), on the runs' images as given
    (load them at full size, 105 x 105, as Lake et al. did)."""
    return np.stack([[[-modified_hausdorff(t, c) for c in r.train_images] for t in r.test_images] for r in runs])
