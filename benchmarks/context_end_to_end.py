"""Does context help once the ARC is trained *through* the decision? (a study, not a test)

Notebook 09's context model reads the encodings of a frozen ARC that was trained
only to say same/different, and it does not beat the naive decision
(``benchmarks/context_variants.py``: six variants, none).  Shyam et al. train
the ARC and the context model together on the 20-way task, so the encodings
themselves can learn to serve the comparison.  This script does that, and
gives the naive decision the same chance:

* ``naive, fine-tuned``: notebook 08's ARC trained further with a 20-way
  cross-entropy over its own naive scores (:class:`cab420utils.context.EpisodeScorer`
  without a context model);
* ``context, end to end``: the same ARC with notebook 09's context model on top
  (first trained on the frozen encodings exactly as the notebook does), both
  trained together with the same cross-entropy;
* ``each alone, end to end``: the control — the same again with a model that
  reads the same features the same way but scores each candidate alone
  (``context_variants.independent_model``: a Dense layer where the context model
  has its bidirectional LSTM).  A gain the context arm shows over the naive
  arm counts as context only if it shows over this arm too.

All arms start from the same weights and see the same trials, the same
number of steps, with the same optimiser and learning rate for the ARC; only
the decision differs.  Each is judged on 3,200 trials of held-out background
characters (nothing is chosen by Lake's runs, which are reported beside), and
the sign test compares the arms trial by trial.  The frozen pipeline of
notebook 09 (and the frozen control) is measured too, as the starting point.
Two seeds (the trial stream and the context model's start).  ``--comparator``
starts from a saved comparator instead of notebook 08's ARC (the full
profile's ConvARC, say: ``build/models/09-convarc.weights.h5``).  Writes
``build/results/benchmarks/context_end_to_end_<steps>_steps_<learning rate>.json`` (with
``_<the comparator's build folder>`` before ``.json`` for a ``--comparator``).

    CAB420_DATA=... .venv/bin/python benchmarks/context_end_to_end.py   # about 15 min on 2 cores
    .venv/bin/python benchmarks/context_end_to_end.py --quick          # a smoke run, about a minute
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cab420utils import context, data, metrics, results, training  # noqa: E402
from context_variants import (NOTEBOOK, comparator_and_characters, draw_episodes, results_name,  # noqa: E402
                              train_context)

FINE_TUNING = dict(steps=1500, trials=4, learning_rate=3e-4, clipnorm=1.0)   # 6,000 trials, 240,000 comparisons


def copy_comparator(model, image_size: int):
    """A new ARC with ``model``'s settings and weights (each arm trains its own)."""
    twin = type(model).from_config(model.get_config())
    twin([np.zeros((1, image_size, image_size), np.float32)] * 2)
    twin.set_weights(model.get_weights())
    return twin


def fine_tune(scorer, images, seed: int, steps: int, trials: int, learning_rate: float, clipnorm: float):
    """Train ``scorer`` (an :class:`~cab420utils.context.EpisodeScorer`) for ``steps``
    steps of ``trials`` fresh one-shot trials each, with a 20-way cross-entropy;
    the trials depend only on ``seed``, so every arm sees the same ones.  The
    candidates come in a random order (the trials' answers are at random
    positions).  Returns each step's loss."""
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_of(tests, candidates, answers):
        return cross_entropy(answers, scorer([tests, candidates], training=True))

    step = training.gradient_step(scorer, training.cosine_adam(learning_rate, steps, clipnorm=clipnorm), loss_of)
    rng = np.random.default_rng([seed, 20])
    losses = []
    for _ in range(steps):
        tests, candidates, answers = context.one_shot_trials(images, trials, rng, ways=NOTEBOOK["ways"],
                                                             span=NOTEBOOK["span"])
        losses.append(float(step(tests, candidates, answers)))
    return losses


def decisions(comparator, judged: dict, *scorers) -> dict:
    """name -> (naive right, each scorer right ...): boolean arrays over each judged
    set's trials; ``judged``: name -> ``(tests, candidates, answers)`` of episodes;
    ``scorers``: models that read :func:`~cab420utils.context.context_features`."""
    out = {}
    for name, (tests, candidates, answers) in judged.items():
        features, _ = context.trial_features(comparator, tests, candidates)
        truth = answers.reshape(-1)
        out[name] = (features[..., -1].argmax(-1) == truth,
                     *(s.predict(features, verbose=0, batch_size=256).argmax(-1) == truth for s in scorers))
    return out


def compare(right_a, right_b) -> dict:
    """Trials ``b`` gets right and ``a`` wrong, the reverse, and the sign test's p."""
    won, lost = int((right_b & ~right_a).sum()), int((right_a & ~right_b).sum())
    return {"won": won, "lost": lost, "sign test p": round(metrics.sign_test(won, lost), 4)}


COMPARISONS = (("context, end to end", "naive, fine-tuned"), ("context, end to end", "frozen: naive"),
               ("context, end to end", "each alone, end to end"), ("each alone, end to end", "naive, fine-tuned"))


def summarise(per_seed: list[dict]) -> dict:
    """The table from each seed's outcomes: mean accuracy of every decision on each
    judged set, and the trial-by-trial counts of :data:`COMPARISONS` (the end-to-end
    context against the fine-tuned naive decision, the frozen naive one and the
    control; the control against the fine-tuned naive), both seeds pooled; a
    comparison whose arms did not run is left out."""
    table = {}
    for row in per_seed[0]:
        table[row] = {name: round(float(np.mean([seed[row][name].mean() for seed in per_seed])), 4)
                      for name in per_seed[0][row]}
    for arm, against in COMPARISONS:
        if arm not in per_seed[0] or against not in per_seed[0]:
            continue
        counts = [compare(seed[against]["held out"], seed[arm]["held out"]) for seed in per_seed]
        won, lost = sum(c["won"] for c in counts), sum(c["lost"] for c in counts)
        table[f"{arm} vs {against}"] = {"won": won, "lost": lost, "sign test p": round(metrics.sign_test(won, lost), 4)}
    return table


def print_table(table: dict) -> None:
    print(f"{'decision':<34} {'held out':>9} {'Lake':>7}")
    for name, row in table.items():
        if "won" in row:
            print(f"{name:<49} held-out trials won {row['won']} / lost {row['lost']}, p = {row['sign test p']:.3f}")
        else:
            print(f"{name:<34} {row['held out']:>9.4f} {row['Lake']:>7.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=420, help="notebook 08's seed (its saved ARC's)")
    parser.add_argument("--steps", type=int, default=FINE_TUNING["steps"], help="fine-tuning steps of each arm")
    parser.add_argument("--learning-rate", type=float, default=FINE_TUNING["learning_rate"],
                        help="the fine-tuning's peak learning rate (cosine to 0), both arms")
    parser.add_argument("--comparator", metavar="PATH", help="start from the comparator saved at PATH (its "
                        "*.weights.h5 and settings card) instead of notebook 08's ARC")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: a 100-step stand-in ARC, 5 episodes, 10 fine-tuning steps, one seed")
    args = parser.parse_args(argv)
    start = time.time()
    frozen, where_from, image_size, train_images, held_images = comparator_and_characters(args.seed, args.quick,
                                                                                           args.comparator)
    rng = lambda offset: np.random.default_rng([args.seed, offset])   # noqa: E731 - notebook 09's streams
    judged = {"held out": draw_episodes(held_images, 4 if args.quick else 160, rng(98)),
              "Lake": context.lake_pairs(data.load_lake_runs(size=image_size))}
    tests, candidates, answers = draw_episodes(train_images, 5 if args.quick else NOTEBOOK["episodes"], rng(10))
    train_features, _ = context.trial_features(frozen, tests, candidates)
    steps = 10 if args.quick else args.steps
    seeds, epochs = ([args.seed], 1) if args.quick else ([args.seed, args.seed + 1], NOTEBOOK["epochs"])
    per_seed = []
    for seed in seeds:
        scorer = train_context("context", train_features, answers.reshape(-1), seed, epochs)
        alone = train_context("independent", train_features, answers.reshape(-1), seed, epochs)
        outcome = {"frozen: naive": {}, "frozen: context": {}, "frozen: each alone": {}}
        for name, rights in decisions(frozen, judged, scorer, alone).items():
            for row, right in zip(outcome, rights):
                outcome[row][name] = right
        print(f"seed {seed}: frozen pipeline judged ({time.time() - start:.0f} s)", flush=True)
        tuning = dict(FINE_TUNING, steps=steps, learning_rate=args.learning_rate)
        naive_arc = copy_comparator(frozen, image_size)
        fine_tune(context.EpisodeScorer(naive_arc), train_images, seed, **tuning)
        outcome["naive, fine-tuned"] = {k: n for k, (n,) in decisions(naive_arc, judged).items()}
        print(f"seed {seed}: naive arm fine-tuned and judged ({time.time() - start:.0f} s)", flush=True)
        joint_arc = copy_comparator(frozen, image_size)
        fine_tune(context.EpisodeScorer(joint_arc, scorer), train_images, seed, **tuning)
        judged_joint = decisions(joint_arc, judged, scorer)
        outcome["context, end to end"] = {k: c for k, (_, c) in judged_joint.items()}
        outcome["end-to-end ARC, naive decision"] = {k: n for k, (n, _) in judged_joint.items()}
        print(f"seed {seed}: context arm trained end to end and judged ({time.time() - start:.0f} s)", flush=True)
        alone_arc = copy_comparator(frozen, image_size)
        fine_tune(context.EpisodeScorer(alone_arc, alone), train_images, seed, **tuning)
        outcome["each alone, end to end"] = {k: c for k, (_, c) in decisions(alone_arc, judged, alone).items()}
        print(f"seed {seed}: control arm trained end to end and judged ({time.time() - start:.0f} s)", flush=True)
        per_seed.append(outcome)
    table = summarise(per_seed)
    print_table(table)
    out = results.results_dir() / "benchmarks" / results_name(
        args.comparator, f"context_end_to_end_{steps}_steps_{args.learning_rate:g}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"comparator": where_from, "quick": args.quick, "seeds": seeds,
                               "fine_tuning": dict(FINE_TUNING, steps=steps, learning_rate=args.learning_rate),
                               "seconds": round(time.time() - start), "decisions": table}, indent=1))
    print(f"{time.time() - start:.0f} s in all; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
