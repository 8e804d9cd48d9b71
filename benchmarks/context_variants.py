"""Notebook 09's question at a size a sign test can answer (a study, not a test).

Notebook 09 finds that its full-context model does not beat the naive decision
of notebook 08's frozen ARC.  Is that the notebook's particular choices?  This
script tries the obvious changes, each trained exactly as the notebook trains
its model (the same passes, batch and learning-rate schedule) with two seeds,
and judges them on 3,200 trials of held-out background characters, never on
Lake's runs (those are reported beside, not used to choose):

* ``notebook 09``: each candidate's pair encoding and naive score (the notebook's model);
* ``scores only``: the naive scores alone;
* ``relative``: also each encoding less the trial's mean encoding, and the score
  less the trial's best and mean (what tells one candidate from the others);
* ``residual``: the naive score plus a learned correction that starts at zero;
* ``each alone``: the notebook's features and training, but no context: each
  candidate scored from its own features by a small network of the same width
  (the control that tells a gain from the context from a gain from reading the
  encodings better than the ARC's own same/different head does);
* ``3x episodes`` and ``relative, 3x episodes``: 1,200 training episodes, not 400.

It uses notebook 08's ARC from ``build/models/`` (trained here first, about four
minutes, when it is not there) and prints one row per variant: accuracy on the
held-out trials and on Lake's runs against the naive decision's, and the
held-out trials won and lost against it with the sign test's p.  Writes
``build/results/benchmarks/context_variants.json``.

    CAB420_DATA=... .venv/bin/python benchmarks/context_variants.py   # about 15 min on 2 cores
    .venv/bin/python benchmarks/context_variants.py --quick          # a smoke run, under a minute

``--comparator PATH`` studies another saved ARC — the full profile's, say
(``build/full-cpu/models/08-arc.weights.h5``, written to
``context_variants_full-cpu.json``) — and ``--variants`` runs only some.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from cab420utils import arc, context, data, metrics, results, training  # noqa: E402

NOTEBOOK = dict(ways=20, span=40, episodes=400, units=32, dropout=0.2, epochs=12, batch=32, learning_rate=2e-3)
VARIANTS = {   # name -> (features, model, training episodes as a multiple of the notebook's)
    "notebook 09": ("plain", "context", 1),
    "scores only": ("scores", "context", 1),
    "relative": ("relative", "context", 1),
    "residual": ("plain", "residual", 1),
    "each alone": ("plain", "independent", 1),
    "3x episodes": ("plain", "context", 3),
    "relative, 3x episodes": ("relative", "context", 3),
}


def candidate_features(encodings, scores, kind: str = "plain") -> np.ndarray:
    """``(trials, ways, features)`` for the context model from ``(..., ways, units)``
    encodings and ``(..., ways)`` scores.  The naive score is always the last
    feature.  ``"plain"``: encoding and score (notebook 09's); ``"scores"``: the
    score alone; ``"relative"``: the encoding, the encoding less the trial's mean
    encoding, the score less the trial's mean and less its best, then the score."""
    encodings, scores = np.asarray(encodings, np.float32), np.asarray(scores, np.float32)
    if kind == "scores":
        parts = []
    elif kind == "plain":
        parts = [encodings]
    elif kind == "relative":
        parts = [encodings, encodings - encodings.mean(-2, keepdims=True),
                 (scores - scores.mean(-1, keepdims=True))[..., None],
                 (scores - scores.max(-1, keepdims=True))[..., None]]
    else:
        raise ValueError(f"kind must be 'plain', 'scores' or 'relative', got {kind!r}")
    features = np.concatenate([*parts, scores[..., None]], axis=-1)
    return features.reshape(-1, *features.shape[-2:])


def residual_model(training_features, units: int = 32, dropout: float = 0.2) -> keras.Model:
    """Notebook 09's context model as a correction to the naive score: the
    logits are the naive score (the last feature, as it comes) plus the context
    model's output, whose last layer starts at zero, so an untrained one decides
    exactly as the naive ARC does."""
    correction = context.context_model(training_features, units=units, dropout=dropout, name="correction")
    score = correction.get_layer("score")
    score.set_weights([np.zeros_like(w) for w in score.get_weights()])
    inputs = keras.Input(np.shape(training_features)[1:])
    naive = layers.Lambda(lambda features: features[..., -1])(inputs)
    return keras.Model(inputs, layers.Add()([naive, correction(inputs)]))


def independent_model(training_features, units: int = 32, dropout: float = 0.2) -> keras.Model:
    """The control for notebook 09's context model: the same standardisation,
    dropout and projection, then a second Dense layer of the same width where
    the context model has its bidirectional LSTM, so each candidate's score
    depends on its own features only.  Trained the same way (a softmax over a
    trial's candidates), it reads the encodings as well as it can without
    seeing the other candidates."""
    training_features = np.asarray(training_features)
    ways, features = training_features.shape[1:]
    mean, variance = context.feature_statistics(training_features)
    inputs = keras.Input((ways, features))
    x = layers.Normalization(axis=-1, mean=mean, variance=variance)(inputs)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(units, activation="elu")(x)
    x = layers.Dense(units, activation="elu")(x)       # where the context model reads the other candidates
    return keras.Model(inputs, layers.Reshape((ways,))(layers.Dense(1)(x)), name="each_alone")


def train_context(model_kind: str, train_x, train_y, seed: int, epochs: int = NOTEBOOK["epochs"]) -> keras.Model:
    """One context model (``"context"``: notebook 09's; ``"residual"``; ``"independent"``:
    no context), trained as notebook 09 trains it on ``(trials, ways, features)`` and
    the answers."""
    keras.utils.set_random_seed(seed)
    build = {"context": context.context_model, "residual": residual_model,
             "independent": independent_model}[model_kind]
    model = build(train_x, units=NOTEBOOK["units"], dropout=NOTEBOOK["dropout"])
    trials = context.ShuffledTrials(train_x, train_y, NOTEBOOK["batch"], seed=seed)
    model.compile(training.cosine_adam(NOTEBOOK["learning_rate"], epochs * len(trials)),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for _ in range(epochs):
        model.fit(trials, epochs=1, verbose=0)
    return model


def train_and_score(model_kind: str, train_x, train_y, judged: dict, seed: int, epochs: int = NOTEBOOK["epochs"]):
    """Train one context model as notebook 09 does; ``judged``: name ->
    ``(features, answers)``.  Returns name -> (context right, naive right), boolean
    arrays over the trials."""
    model = train_context(model_kind, train_x, train_y, seed, epochs)
    return {name: (model.predict(x, verbose=0).argmax(-1) == y, x[..., -1].argmax(-1) == y)
            for name, (x, y) in judged.items()}


def summarise(outcomes: list[dict]) -> dict:
    """One variant's row from its seeds' outcomes (:func:`train_and_score`)."""
    row = {}
    for name in outcomes[0]:
        context_right = np.mean([o[name][0].mean() for o in outcomes])
        row[f"{name}: context"] = round(float(context_right), 4)
        row[f"{name}: naive"] = round(float(outcomes[0][name][1].mean()), 4)
    won = sum(int((c & ~n).sum()) for c, n in (o["held out"] for o in outcomes))
    lost = sum(int((n & ~c).sum()) for c, n in (o["held out"] for o in outcomes))
    row.update({"held out: won": won, "held out: lost": lost, "sign test p": round(metrics.sign_test(won, lost), 4)})
    return row


def print_table(table: dict) -> None:
    """The rows of :func:`summarise`, one line per variant."""
    print(f"{'variant':<22} {'held out: context / naive':>26} {'Lake: context / naive':>22} {'won / lost':>11} {'p':>6}")
    for name, row in table.items():
        print(f"{name:<22} {row['held out: context']:>15.4f} / {row['held out: naive']:.4f} "
              f"{row['Lake: context']:>11.4f} / {row['Lake: naive']:.4f} "
              f"{row['held out: won']:>5} / {row['held out: lost']:<4} {row['sign test p']:>6.3f}")


def comparator_and_characters(seed: int, quick: bool, saved: str | None = None):
    """Notebook 08's ARC (a 100-step stand-in when ``quick``; the comparator saved at
    ``saved``, e.g. the full profile's, when given), where it came from, its image size,
    and the background set's training and held-out characters, split as notebooks 08
    and 09 split them."""
    if saved:
        model, settings = arc.saved_comparator(saved)
        where_from = (f"{type(model).__name__} saved at {saved}: {settings['hidden']} LSTM units, "
                      f"{int(settings['steps']):,} training steps")
        settings = dict(image_size=int(settings["image_size"]),
                        validation_characters=int(settings["validation_characters"]))
    else:
        settings = arc.comparator_settings("fast")
        model, where_from = arc.trained_comparator(settings, seed, quick_steps=100 if quick else None)
    print(where_from, flush=True)
    background = data.load_omniglot_background(size=settings["image_size"])[0].images
    held = settings["validation_characters"]
    return model, where_from, settings["image_size"], background[:-held], background[-held:]


def draw_episodes(images, n_episodes, rng):
    """``(tests, candidates, answers)`` of ``n_episodes`` episodes, drawn as notebook 09 draws them."""
    return context.episode_pairs(images, context.one_shot_episodes(
        len(images), images.shape[1], n_episodes, rng, ways=NOTEBOOK["ways"], span=NOTEBOOK["span"]))


def encode(model, images, n_episodes, rng):
    tests, candidates, answers = draw_episodes(images, n_episodes, rng)
    return (*context.pair_encodings(model, tests, candidates), answers.reshape(-1))


def results_name(comparator: str | None, study: str = "context_variants") -> str:
    """The results file's name: ``context_variants.json`` for notebook 08's ARC; for a
    ``--comparator``, named after its build folder when it sits in one's ``models/``
    (``build/full-cpu/models/08-arc.weights.h5``: ``context_variants_full-cpu.json``),
    otherwise after the file itself (``arc512.weights.h5``: ``context_variants_arc512.json``).
    ``study``: the name's first part (another study's results)."""
    if not comparator:
        return f"{study}.json"
    path = Path(comparator).resolve()
    name = path.parent.parent.name if path.parent.name == "models" and path.parent.parent.name else (
        path.name.removesuffix(".weights.h5"))
    return f"{study}_{re.sub(r'[^A-Za-z0-9._-]+', '-', name).strip('-.') or 'comparator'}.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=420, help="notebook 08's seed (its saved ARC's)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: a 100-step stand-in ARC, 5 episodes, one pass, one seed")
    parser.add_argument("--comparator", metavar="PATH",
                        help="a saved comparator to study instead of notebook 08's (e.g. the full profile's, "
                             "build/full-cpu/models/08-arc.weights.h5); the results file is named after it")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), metavar="NAME",
                        help=f"only these variants (default: all of {', '.join(VARIANTS)})")
    args = parser.parse_args(argv)
    variants = {name: VARIANTS[name] for name in (args.variants or VARIANTS)}
    start = time.time()
    model, where_from, image_size, train_images, held_images = comparator_and_characters(
        args.seed, args.quick, args.comparator)
    episodes = 5 if args.quick else NOTEBOOK["episodes"]
    rng = lambda offset: np.random.default_rng([args.seed, offset])   # noqa: E731 - the notebook's streams
    train = [encode(model, train_images, episodes, rng(10))]
    if any(multiple > 1 for *_, multiple in variants.values()):   # 3x: two more episodes' worth
        train.append(encode(model, train_images, 2 * episodes, rng(99)))
    lake_tests, lake_candidates, lake_answers = context.lake_pairs(data.load_lake_runs(size=image_size))
    judged = {"held out": encode(model, held_images, 4 if args.quick else 160, rng(98)),
              "Lake": (*context.pair_encodings(model, lake_tests, lake_candidates), lake_answers.reshape(-1))}
    print(f"encoded in {time.time() - start:.0f} s", flush=True)
    seeds, epochs = ([420], 1) if args.quick else ([420, 421], NOTEBOOK["epochs"])   # 420: the notebook's
    table = {}
    for name, (kind, model_kind, multiple) in variants.items():
        used = train[:1] if multiple == 1 else train
        train_x = np.concatenate([candidate_features(e, s, kind) for e, s, _ in used])
        train_y = np.concatenate([a for *_, a in used])
        features = {k: (candidate_features(e, s, kind), a) for k, (e, s, a) in judged.items()}
        table[name] = summarise([train_and_score(model_kind, train_x, train_y, features, seed, epochs)
                                 for seed in seeds])
        print(f"trained {name} ({time.time() - start:.0f} s)", flush=True)
    print_table(table)
    out = results.results_dir() / "benchmarks" / results_name(args.comparator)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"comparator": where_from, "quick": args.quick, "seeds": seeds,
                               "seconds": round(time.time() - start), "variants": table}, indent=1))
    print(f"{time.time() - start:.0f} s in all; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
