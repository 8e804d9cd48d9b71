"""Instant feedback for the exercises: one call in a notebook's check cell.

A check runs the student's function on small cases and says, in plain words,
what holds and what does not (a shape, a value on a hand-worked case, a
symmetry, a gradient at zero distance), without saying how to write it.  A
function that is still the stub gets a "not written yet" line, never a
traceback, so a student copy runs to its end.

Each ``check_*`` returns a :class:`CheckReport` (shown as text in the
notebook) and remembers it, so a solution notebook can end with
:func:`assert_checks_passed`.
"""
from __future__ import annotations

import functools
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import speed
from .notebooks import STUB_PHRASE

_LIBRARY_DIRS = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
                      | {str(Path(__file__).resolve().parents[1])})


def is_not_written(error: BaseException) -> bool:
    """True when ``error`` is a stub's ``NotImplementedError`` (or one the
    student raised in their own code), not one raised inside a library, such as
    TensorFlow refusing to turn a symbolic tensor into a NumPy array."""
    if not isinstance(error, NotImplementedError):
        return False
    if STUB_PHRASE in str(error):
        return True
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is None or not tb.tb_frame.f_code.co_filename.startswith(_LIBRARY_DIRS)


def describe_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


@dataclass
class CheckReport:
    """What one check found: ``lines`` of ``(passed, text)``."""

    exercise: str
    title: str
    function: str
    lines: list[tuple[bool, str]] = field(default_factory=list)
    not_written: bool = False

    @property
    def passed(self) -> bool:
        return not self.not_written and bool(self.lines) and all(ok for ok, _ in self.lines)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = f"Exercise {self.exercise} · {self.title} (`{self.function}`)"
        if self.not_written:
            return (f"{head}: not written yet.\n  `{self.function}` still raises NotImplementedError. Write it in "
                    f"the cell above, run that cell, then run this one again. (The cells below use the course's "
                    f"version until then.)")
        n_ok = sum(ok for ok, _ in self.lines)
        verdict = "all checks pass" if self.passed else f"{n_ok} of {len(self.lines)} checks pass"
        return "\n".join([f"{head}: {verdict}"] + [f"  {'✓' if ok else '✗'} {text}" for ok, text in self.lines])

    __repr__ = __str__


_LATEST: dict[str, CheckReport] = {}


def _run(exercise: str, title: str, function, checks) -> CheckReport:
    """Run ``checks`` — ``(description, check)`` where ``check(function)``
    returns None when it holds or a sentence saying what is wrong."""
    report = CheckReport(exercise, title, getattr(function, "__name__", str(function)))
    if not callable(function):
        report.lines.append((False, f"expected a function, got {type(function).__name__}"))
    for description, check in checks if callable(function) else ():
        try:
            problem = check(function)
        except Exception as error:  # noqa: BLE001 - any error of the student's code is feedback
            if is_not_written(error):
                report.not_written, report.lines = True, []
                break
            problem = f"your function raised {describe_error(error)}"
        report.lines.append((problem is None, description if problem is None else f"{description}: {problem}"))
    _LATEST[exercise] = report
    return report


def assert_checks_passed() -> None:
    """Fail unless every check run in this session passed (solution notebooks end with it)."""
    if not _LATEST:
        raise AssertionError("no check has run in this session")
    failing = [str(r) for r in _LATEST.values() if not r.passed]
    assert not failing, "some checks do not pass:\n" + "\n".join(failing)
    print(f"All {len(_LATEST)} checks pass: " + ", ".join(sorted(_LATEST)))


def with_fallback(student, reference, exercise: str):
    """``student`` where it is written, else ``reference`` (same signature),
    saying so once: downstream cells of a student copy then run to the end."""
    told = []

    @functools.wraps(reference)
    def call(*args, **kwargs):
        try:
            return student(*args, **kwargs)
        except NotImplementedError as error:
            if not is_not_written(error):
                raise
            if not told:
                told.append(True)
                name = reference.__qualname__
                if reference.__module__ != "__main__":
                    name = f"{reference.__module__}.{name}"
                print(f"Exercise {exercise}: `{getattr(student, '__name__', student)}` is not written yet, "
                      f"so this uses the course's `{name}` instead.")
            return reference(*args, **kwargs)

    return call


def _np(x) -> np.ndarray:
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


# --------------------------------------------------------------------------- 1.1 balanced pairs
def _pairs(function, labels, n_pairs, seed=0):
    result = function(np.asarray(labels), n_pairs, np.random.default_rng(seed))
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise AssertionError("should return three arrays (a, b, same)")
    return tuple(np.asarray(r).reshape(-1) if np.ndim(r) else np.asarray(r) for r in result)


def _pairs_shape(f):
    try:
        a, b, same = _pairs(f, np.repeat(np.arange(5), 20), 1000)
    except AssertionError as error:
        return f"it {error}"
    lengths = [len(np.atleast_1d(x)) for x in (a, b, same)]
    if lengths != [1000] * 3:
        return f"asked for 1000 pairs, got arrays of lengths {lengths}"
    if not (np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)):
        return f"a and b should hold integer indices, got {a.dtype} and {b.dtype}"
    if min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= 100:
        return "some indices are outside 0..len(labels)-1"
    return None


def _pairs_flag(f):
    labels = np.repeat(np.arange(5), 20)
    a, b, same = _pairs(f, labels, 1000)
    truth = labels[a] == labels[b]
    wrong = int(np.sum(same.astype(float) != truth))
    if wrong:
        return f"in {wrong} of 1000 pairs `same` disagrees with the two labels (1 = same class, 0 = different)"
    return None


def _pairs_balance(f):
    labels = np.repeat(np.arange(5), 20)
    problems = []
    for n in (1000, 7):
        a, b, same = _pairs(f, labels, n)
        n_same = int(np.sum(labels[a] == labels[b]))
        if abs(n_same - n / 2) > 0.5:
            problems.append(f"{n_same} of {n} pairs are same-class")
    return "; ".join(problems) + " (half should be)" if problems else None


def _pairs_distinct(f):
    labels = np.r_[np.zeros(2, int), np.ones(50, int), np.full(50, 2)]  # class 0 has only two images
    a, b, same = _pairs(f, labels, 2000)
    selfish = int(np.sum(a == b))
    if selfish:
        return (f"{selfish} pairs pair an image with itself (a same pair needs two different images; "
                f"try labels with a class of only two images)")
    return None


def _pairs_classes(f):
    labels = np.repeat(np.arange(10), 30)
    a, b, same = _pairs(f, labels, 2000)
    same_pair = labels[a] == labels[b]
    missing_same = sorted(set(range(10)) - set(labels[a][same_pair].tolist()))
    missing_any = sorted(set(range(10)) - set(labels[np.r_[a, b]][~np.r_[same_pair, same_pair]].tolist()))
    if missing_same:
        return f"class(es) {missing_same} never appear in a same pair out of 1000"
    if missing_any:
        return f"class(es) {missing_any} never appear in a different pair"
    return None


def _seed_problem(draw, what: str):
    """None when ``draw(seed)`` (a tuple of arrays) repeats for one seed and changes with it."""
    first, again, other = draw(7), draw(7), draw(8)
    if not all(np.array_equal(x, y) for x, y in zip(first, again)):
        return f"two calls with generators seeded alike gave different {what}: draw every random number from `rng`"
    if all(np.array_equal(x, y) for x, y in zip(first, other)):
        return f"different seeds gave the same {what}: draw every random number from `rng`"
    return None


def _pairs_seeded(f):
    labels = np.repeat(np.arange(5), 20)
    return _seed_problem(lambda seed: _pairs(f, labels, 200, seed=seed), "pairs")


def _pairs_fast(f):
    from cab420utils import sampling

    labels = np.random.default_rng(0).integers(0, 10, 60_000)
    timing = speed.time_against_course(f, sampling.make_pairs,
                                       lambda: (labels, 200_000, np.random.default_rng(0)), budget=2.0)
    if timing.too_slow:
        return (timing.describe("200,000 pairs") + "; whole-array NumPy operations draw them in a few hundredths "
                "of a second (is there a Python loop over pairs?)")
    return None


def check_balanced_pairs(function) -> CheckReport:
    """Exercise 1.1: ``function(labels, n_pairs, rng) -> (a, b, same)``."""
    return _run("1.1", "balanced pairs", function, [
        ("returns index arrays a, b and flags same, one entry per pair", _pairs_shape),
        ("`same` is 1 exactly when the two images share a class", _pairs_flag),
        ("half the pairs are same-class", _pairs_balance),
        ("a same pair never pairs an image with itself", _pairs_distinct),
        ("every class appears in same and in different pairs", _pairs_classes),
        ("the same seed gives the same pairs", _pairs_seeded),
        (f"vectorised: 200,000 pairs from 60,000 labels in under 2 s ({speed.ON_A_SLOW_MACHINE})", _pairs_fast),
    ])


# --------------------------------------------------------------------------- 1.2 equal error rate
def _one_number(f, values, same) -> float:
    """``f(values, same)`` for a function that must return one number (an EER, an AUC)."""
    value = f(np.asarray(values, dtype=float), np.asarray(same))
    if np.ndim(value) != 0:
        raise AssertionError(f"should return one number, got an array of shape {np.shape(value)}")
    return float(value)


_eer = _one_number


def _eer_hand(f):
    value = _eer(f, [0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [1, 1, 0, 1, 0, 0])
    if abs(value - 1 / 3) > 1e-6:
        return (f"scores 0.9 0.8 0.7 0.3 0.2 0.1 for pairs same same diff same diff diff: accepting the top "
                f"three falsely accepts 1 of 3 and falsely rejects 1 of 3, so the EER is 1/3; yours gives {value:.4f}")
    return None


def _eer_extremes(f):
    separated = _eer(f, [0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    if abs(separated) > 1e-6:
        return f"every same pair scores above every different pair, so the EER is 0; yours gives {separated:.4f}"
    tied = _eer(f, [0.5] * 6, [1, 0, 1, 0, 1, 0])
    if abs(tied - 0.5) > 1e-6:
        return (f"all scores tied (the scores say nothing) should give 0.5: a threshold accepts all or none; "
                f"yours gives {tied:.4f}")
    return None


def _eer_order_only(f):
    rng = np.random.default_rng(1)
    same = rng.random(400) < 0.5
    scores = rng.normal(same * 1.0, 1.0)
    plain, squashed = _eer(f, scores, same), _eer(f, np.exp(3 * scores), same)
    if abs(plain - squashed) > 1e-9:
        return (f"stretching the scores without changing their order changed your EER ({plain:.4f} -> "
                f"{squashed:.4f}): it should depend only on the order of the scores")
    return None


def _eer_symmetry(f):
    rng = np.random.default_rng(2)
    same = rng.random(400) < 0.4
    scores = rng.normal(same * 1.5, 1.0)
    forward, mirrored = _eer(f, scores, same), _eer(f, -scores, ~same)
    if abs(forward - mirrored) > 1e-6:
        return (f"negating the scores and swapping same/different swaps false accepts with false rejects, so "
                f"the EER should not change; yours goes from {forward:.4f} to {mirrored:.4f}")
    return None


def _eer_large(f):
    from cab420utils import metrics

    rng = np.random.default_rng(3)
    same = rng.random(5000) < 0.5
    scores = rng.normal(same * 1.2, 1.0)
    value, expected = _eer(f, scores, same), metrics.equal_error_rate(scores, same)
    if abs(value - expected) > 0.01:
        return f"on 5,000 random pairs yours gives {value:.4f}, the course's metrics {expected:.4f}"
    return None


def check_equal_error_rate(function) -> CheckReport:
    """Exercise 1.2: ``function(scores, same) -> float``."""
    return _run("1.2", "equal error rate", function, [
        ("a hand-worked case of six pairs", _eer_hand),
        ("perfect scores give 0; scores that say nothing give 0.5", _eer_extremes),
        ("depends only on the order of the scores", _eer_order_only),
        ("symmetric: swapping same/different and negating the scores keeps it", _eer_symmetry),
        ("agrees with the course's metrics on 5,000 random pairs", _eer_large),
    ])


# --------------------------------------------------------------------------- 3.1 triplet loss
def _loss(f, a, p, n, margin):
    from keras import ops

    value = f(*(ops.convert_to_tensor(np.asarray(x, np.float32)) for x in (a, p, n)), margin)
    if tuple(getattr(value, "shape", np.shape(value))) != ():
        raise AssertionError(f"should return one number (the mean over the batch), got shape "
                             f"{tuple(value.shape)}")
    return float(_np(value))


def _loss_scalar(f):
    _loss(f, np.zeros((4, 3)), np.ones((4, 3)), np.full((4, 3), 2.0), 0.2)
    return None


def _loss_hand(f):
    value = _loss(f, [[0, 0], [0, 0]], [[3, 4], [3, 4]], [[6, 8], [0, 1]], 0.2)
    if abs(value - 2.1) > 1e-4:
        return (f"two triplets with d(a, p) = 5 and d(a, n) = 10 and 1, margin 0.2, cost 0 and 4.2, "
                f"mean 2.1; yours gives {value:.4f}")
    return None


def _loss_margin(f):
    a, p, n = [[0.0, 0.0]], [[0.0, 0.0]], [[0.0, 0.5]]
    small, large = _loss(f, a, p, n, 0.2), _loss(f, a, p, n, 1.0)
    if abs(small) > 1e-5:
        return (f"a negative 0.5 further than the positive, margin 0.2, is easy and should cost 0; "
                f"yours gives {small:.4f}")
    if abs(large - 0.5) > 1e-4:
        return f"the same triplet with margin 1.0 should cost 1.0 - 0.5 = 0.5; yours gives {large:.4f}"
    return None


def _loss_euclidean(f):
    value = _loss(f, [[0.0, 0.0]], [[0.0, 2.0]], [[0.0, 3.0]], 2.0)
    if abs(value - 1.0) > 1e-4:
        return (f"d(a, p) = 2, d(a, n) = 3, margin 2 should cost 2 - 3 + 2 = 1 with Euclidean (not squared) "
                f"distances; yours gives {value:.4f}")
    return None


def _loss_gradient_at_zero(f):
    import keras

    if keras.config.backend() != "tensorflow":
        return None
    import tensorflow as tf

    a = tf.Variable([[0.3, -0.2], [1.0, 1.0]])
    p = tf.constant([[0.3, -0.2], [1.0, 1.0]])  # the anchors themselves: d(a, p) = 0
    n = tf.constant([[0.4, -0.2], [1.0, 1.1]])
    with tf.GradientTape() as tape:
        value = f(a, p, n, 0.5)
    gradient = tape.gradient(value, a)
    if gradient is None:
        return "no gradient reaches the anchor: compute the loss with keras.ops on the inputs"
    if not np.all(np.isfinite(gradient.numpy())):
        return ("the gradient is NaN where the anchor and positive coincide: the slope of a square root "
                "is infinite at 0")
    return None


def _loss_graph(f):
    return _graph_problem(lambda a, p, n: f(a, p, n, 0.2), 3)


def check_triplet_loss(function) -> CheckReport:
    """Exercise 3.1: ``function(anchor, positive, negative, margin) -> scalar``."""
    return _run("3.1", "margin triplet loss", function, [
        ("returns one number for a batch", _loss_scalar),
        ("a hand-worked batch of two triplets", _loss_hand),
        ("easy triplets cost nothing, and the margin counts", _loss_margin),
        ("distances are Euclidean, not squared", _loss_euclidean),
        ("a finite gradient when anchor and positive coincide", _loss_gradient_at_zero),
        ("runs inside a Keras model (symbolic tensors)", _loss_graph),
    ])


# --------------------------------------------------------------------------- 3.2 semi-hard negatives
def _batch(seed: int, n_classes: int = 4, per_class: int = 4):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    points = rng.normal(size=(len(labels), 2)) + labels[:, None] * 0.6
    distances = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    return distances, labels


def _mined(f, distances, labels):
    result = f(np.asarray(distances), np.asarray(labels))
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise AssertionError("should return three arrays (anchors, positives, negatives)")
    return tuple(np.asarray(r).reshape(-1) for r in result)


def _positive_pairs(labels):
    same = labels[:, None] == labels[None]
    np.fill_diagonal(same, False)
    return set(zip(*map(lambda x: x.tolist(), np.nonzero(same))))


def _mined_pairs(f):
    distances, labels = _batch(0)
    try:
        a, p, n = _mined(f, distances, labels)
    except AssertionError as error:
        return f"it {error}"
    if not len(a) == len(p) == len(n):
        return f"the three arrays should have one entry per triplet, got lengths {len(a)}, {len(p)}, {len(n)}"
    expected = _positive_pairs(labels)
    got = list(zip(a.tolist(), p.tolist()))
    if len(got) != len(set(got)) or set(got) != expected:
        return (f"a batch of 4 classes x 4 images has {len(expected)} anchor-positive pairs (a != p, same class); "
                f"yours gives {len(set(got))} distinct pairs" + (", some of them twice" if len(got) != len(set(got))
                                                                 else "") + " or pairs that are not positives")
    return None


def _mined_negative_class(f):
    distances, labels = _batch(1)
    a, p, n = _mined(f, distances, labels)
    wrong = int(np.sum(labels[n] == labels[a]))
    if wrong:
        return f"{wrong} chosen negatives share the anchor's class"
    return None


def _semi_hard_problem(distances, labels, a, p, n) -> str | None:
    d_ap, d_an = distances[a, p], distances[a, n]
    negatives = np.flatnonzero(labels != labels[a])
    further = negatives[distances[a, negatives] > d_ap]
    if len(further):
        if not d_an > d_ap:
            return (f"anchor {a}, positive {p} (d = {d_ap:.3f}): negative {n} is at {d_an:.3f}, not further than "
                    f"the positive, although some negatives are")
        closer = further[distances[a, further] < d_an - 1e-12]
        if len(closer):
            return (f"anchor {a}, positive {p} (d = {d_ap:.3f}): negative {n} at {d_an:.3f}, but negative "
                    f"{closer[0]} at {distances[a, closer[0]]:.3f} is also further than the positive and closer "
                    f"to the anchor")
    elif d_an < distances[a, negatives].max() - 1e-12:
        return (f"anchor {a}, positive {p}: no negative is further than the positive, so take the furthest "
                f"negative; yours is at {d_an:.3f}, the furthest at {distances[a, negatives].max():.3f}")
    return None


def _mined_choice(f, seeds=(2, 3, 4)):
    for seed in seeds:
        distances, labels = _batch(seed)
        a, p, n = _mined(f, distances, labels)
        for triplet in zip(a.tolist(), p.tolist(), n.tolist()):
            problem = _semi_hard_problem(distances, labels, *triplet)
            if problem:
                return problem
    return None


def _mined_fallback(f):
    # Anchor 0's positive is far away: every negative is closer than it.
    distances = np.array([[0.0, 3.0, 1.0, 2.0],
                          [3.0, 0.0, 2.5, 1.5],
                          [1.0, 2.5, 0.0, 1.0],
                          [2.0, 1.5, 1.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    a, p, n = _mined(f, distances, labels)
    for triplet in zip(a.tolist(), p.tolist(), n.tolist()):
        if triplet[:2] == (0, 1) and triplet[2] != 3:
            return (f"anchor 0 and positive 1 are 3.0 apart and both negatives are closer (1.0 and 2.0): with no "
                    f"semi-hard negative, take the furthest negative (3); yours takes {triplet[2]}")
    return None


def check_semi_hard_negatives(function) -> CheckReport:
    """Exercise 3.2: ``function(distances, labels) -> (anchors, positives, negatives)``."""
    return _run("3.2", "semi-hard negatives", function, [
        ("one triplet for every anchor-positive pair of the batch", _mined_pairs),
        ("negatives come from other classes", _mined_negative_class),
        ("each negative is the closest one further than the positive", _mined_choice),
        ("with no such negative, the furthest negative", _mined_fallback),
    ])



# --------------------------------------------------------------------------- shared by the loss checks
def _tensor(x):
    from keras import ops

    return ops.convert_to_tensor(np.asarray(x, np.float32))


def _scalar(value) -> float:
    shape = tuple(getattr(value, "shape", np.shape(value)))
    if shape != ():
        raise AssertionError(f"should return one number (the mean over the batch), got shape {shape}")
    return float(_np(value))


def _graph_problem(function, n_inputs: int, width: int = 4, shapes=None):
    """None when ``function`` builds on symbolic inputs, else what went wrong.

    The inputs are ``n_inputs`` tensors of shape (None, width), or one per
    entry of ``shapes`` (each a shape tuple, None for the batch axis)."""
    import keras

    if keras.config.backend() != "tensorflow":
        return None
    import tensorflow as tf

    shapes = shapes or [(None, width)] * n_inputs
    graph = tf.function(function, input_signature=[tf.TensorSpec(shape, tf.float32) for shape in shapes])
    try:
        graph.get_concrete_function()
    except Exception as error:  # noqa: BLE001
        return (f"it cannot run inside a Keras model, on symbolic tensors ({describe_error(error)}); "
                f"use keras.ops rather than NumPy")
    return None


def _gradient_problem(loss_of_variable, variable_value, where: str):
    """None when the gradient of ``loss_of_variable(v)`` at ``variable_value`` is finite."""
    import keras

    if keras.config.backend() != "tensorflow":
        return None
    import tensorflow as tf

    v = tf.Variable(np.asarray(variable_value, np.float32))
    with tf.GradientTape() as tape:
        value = loss_of_variable(v)
    gradient = tape.gradient(value, v)
    if gradient is None:
        return "no gradient reaches the embeddings: compute the loss with keras.ops on the inputs"
    if not np.all(np.isfinite(gradient.numpy())):
        return f"the gradient is NaN {where}: the slope of a square root is infinite at 0"
    return None


# --------------------------------------------------------------------------- 2.1 contrastive loss
def _contrastive(f, same, a, b, *margin):
    return _scalar(f(_tensor(same), _tensor(a), _tensor(b), *margin))


def _contrastive_scalar(f):
    _contrastive(f, [1, 0, 1, 0], np.zeros((4, 3)), np.ones((4, 3)), 1.0)
    return None


def _contrastive_hand(f):
    value = _contrastive(f, [1, 0, 0], [[0, 0], [0, 0], [1, 0]], [[0.6, 0.8], [0, 0.5], [-1, 0]], 1.0)
    if abs(value - 1.25 / 3) > 1e-4:
        return (f"a same pair at distance 1 costs 1, a different pair at 0.5 costs 0.25 and one at 2 costs 0 "
                f"(margin 1), mean 0.4167; yours gives {value:.4f}")
    return None


def _contrastive_margin(f):
    a, b = [[0.0, 0.0]], [[0.0, 0.5]]
    small, large = _contrastive(f, [0], a, b, 0.5), _contrastive(f, [0], a, b, 2.0)
    if abs(small) > 1e-5:
        return f"a different pair 0.5 apart with margin 0.5 is far enough and should cost 0; yours gives {small:.4f}"
    if abs(large - 2.25) > 1e-4:
        return (f"the same different pair with margin 2 should cost (2 - 0.5)^2 = 2.25; yours gives {large:.4f}")
    return None


def _contrastive_same_pairs(f):
    value = _contrastive(f, [1], [[0.0, 0.0, 0.0]], [[0.0, 2.0, 0.0]], 1.0)
    if abs(value - 4.0) > 1e-4:
        return (f"a same pair 2 apart should cost 2^2 = 4 whatever the margin (squared Euclidean distance); "
                f"yours gives {value:.4f}")
    return None


def _contrastive_gradient_at_zero(f):
    from keras import ops

    b = np.array([[0.3, -0.2], [0.3, -0.2], [1.0, 1.0]], np.float32)
    same = ops.convert_to_tensor(np.array([1.0, 0.0, 0.0], np.float32))
    return _gradient_problem(lambda a: f(same, a, ops.convert_to_tensor(b), 1.0),
                             [[0.3, -0.2], [0.3, -0.2], [1.0, 1.2]],
                             "where the two embeddings of a pair coincide")


def _contrastive_graph(f):
    return _graph_problem(lambda same, a, b: f(same[:, 0], a, b, 1.0), 3)


def check_contrastive_loss(function) -> CheckReport:
    """Exercise 2.1: ``function(same, a, b, margin) -> scalar``."""
    return _run("2.1", "contrastive loss", function, [
        ("returns one number for a batch", _contrastive_scalar),
        ("a hand-worked batch of three pairs", _contrastive_hand),
        ("different pairs beyond the margin cost nothing, and the margin counts", _contrastive_margin),
        ("same pairs cost their squared distance", _contrastive_same_pairs),
        ("a finite gradient when the two embeddings of a pair coincide", _contrastive_gradient_at_zero),
        ("runs inside a Keras model (symbolic tensors)", _contrastive_graph),
    ])


# --------------------------------------------------------------------------- 2.2 ROC AUC from distances
_auc = _one_number


def _auc_hand(f):
    value = _auc(f, [0.1, 0.4, 0.3, 0.9], [1, 1, 0, 0])
    if abs(value - 0.75) > 1e-9:
        return (f"same pairs at 0.1 and 0.4, different pairs at 0.3 and 0.9: the same pair is the closer in 3 of "
                f"the 4 (same, different) combinations, so the AUC is 0.75; yours gives {value:.4f}")
    return None


def _auc_extremes(f):
    perfect = _auc(f, [0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])
    if abs(perfect - 1) > 1e-9:
        return f"every same pair closer than every different pair should give 1; yours gives {perfect:.4f}"
    reversed_ = _auc(f, [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    if abs(reversed_) > 1e-9:
        return f"every same pair further than every different pair should give 0; yours gives {reversed_:.4f}"
    return None


def _auc_ties(f):
    tied = _auc(f, [0.5] * 6, [1, 0, 1, 0, 1, 0])
    if abs(tied - 0.5) > 1e-9:
        return f"all distances equal should give 0.5 (a tie counts half); yours gives {tied:.4f}"
    partly = _auc(f, [0.2, 0.5, 0.5, 0.9], [1, 1, 0, 0])
    if abs(partly - 0.875) > 1e-9:
        return (f"same pairs at 0.2 and 0.5, different pairs at 0.5 and 0.9: 3 wins and one tie of 4, AUC 0.875; "
                f"yours gives {partly:.4f}")
    return None


def _auc_order_only(f):
    rng = np.random.default_rng(4)
    same = rng.random(500) < 0.5
    distances = np.abs(rng.normal(1.0 - 0.5 * same, 0.4))
    plain, stretched = _auc(f, distances, same), _auc(f, np.exp(2 * distances), same)
    if abs(plain - stretched) > 1e-9:
        return (f"stretching the distances without changing their order changed your AUC ({plain:.4f} -> "
                f"{stretched:.4f}): it should depend only on their order")
    return None


def _auc_reference(f):
    from cab420utils import metrics

    rng = np.random.default_rng(5)
    same = rng.random(4000) < 0.3
    distances = np.round(np.abs(rng.normal(1.0 - 0.4 * same, 0.5)), 2)  # rounded: many ties
    value, expected = _auc(f, distances, same), metrics.roc_auc(-distances, same)
    if abs(value - expected) > 1e-6:
        return f"on 4,000 random pairs with ties yours gives {value:.6f}, the course's metrics {expected:.6f}"
    return None


def _auc_fast(f):
    from cab420utils import metrics

    rng = np.random.default_rng(6)
    same = np.arange(100_000) % 2 == 0
    distances = rng.random(100_000) + 0.3 * ~same
    timing = speed.time_against_course(f, lambda d, s: metrics.roc_auc(-d, s), lambda: (distances, same),
                                       budget=2.0)
    if timing.too_slow:
        return (timing.describe("100,000 pairs") + "; sorting them takes a few hundredths of a second (is there a "
                "Python loop, or a table of every same pair against every different pair?)")
    return None


def check_roc_auc_from_distances(function) -> CheckReport:
    """Exercise 2.2: ``function(distances, same) -> float``."""
    return _run("2.2", "ROC AUC from distances", function, [
        ("a hand-worked case of four pairs", _auc_hand),
        ("perfect distances give 1, reversed ones 0", _auc_extremes),
        ("a tie between a same and a different pair counts half", _auc_ties),
        ("depends only on the order of the distances", _auc_order_only),
        ("agrees with the course's metrics on 4,000 random pairs", _auc_reference),
        (f"fast: 100,000 pairs in under 2 s ({speed.ON_A_SLOW_MACHINE})", _auc_fast),
    ])



# --------------------------------------------------------------------------- 4.1 L2 normalisation
def _normalized(f, x):
    out = _np(f(_tensor(x)))
    if out.shape != np.shape(x):
        raise AssertionError(f"should keep the shape of its input {np.shape(x)}, got {out.shape}")
    return out


def _norm_unit(f):
    x = np.random.default_rng(7).normal(size=(6, 5)) * [[0.1], [1], [10], [100], [3], [0.5]]
    out = _normalized(f, x)
    lengths = np.linalg.norm(out, axis=-1)
    if not np.allclose(lengths, 1.0, atol=1e-5):
        return f"rows of lengths 0.1 to 100 came out with lengths {np.round(lengths, 4).tolist()}, not all 1"
    return None


def _norm_direction(f):
    x = np.array([[3.0, 4.0], [-2.0, 0.0], [0.0, -0.5]])
    out = _normalized(f, x)
    expected = np.array([[0.6, 0.8], [-1.0, 0.0], [0.0, -1.0]])
    if not np.allclose(out, expected, atol=1e-5):
        return (f"[3, 4], [-2, 0] and [0, -0.5] should become [0.6, 0.8], [-1, 0] and [0, -1]; "
                f"yours {np.round(out, 4).tolist()}")
    return None


def _norm_last_axis(f):
    x = np.random.default_rng(8).normal(size=(2, 3, 4))
    out = _normalized(f, x)
    if not np.allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5):
        return "an input of shape (2, 3, 4) should have each of its 6 vectors of 4 numbers at unit length"
    return None


def _norm_zero(f):
    out = _normalized(f, [[0.0, 0.0, 0.0], [0.0, 3.0, 4.0]])
    if not np.all(np.isfinite(out)):
        return "a zero vector came out as NaN or infinity: dividing by a length of 0"
    if not np.allclose(out[0], 0.0):
        return f"a zero vector should come out as zeros, yours gives {np.round(out[0], 4).tolist()}"
    tiny = _normalized(f, [[0.0, 1e-4]])
    if abs(np.linalg.norm(tiny) - 1.0) > 1e-3:
        return (f"a vector of length 0.0001 should still come out at unit length, yours at {np.linalg.norm(tiny):.4f}: "
                f"keep the guard against zero far smaller than that")
    return None


def _norm_gradient(f):
    from keras import ops

    weights = ops.convert_to_tensor(np.array([[1.0, -2.0, 0.5], [0.3, 0.2, 0.1]], np.float32))
    return _gradient_problem(lambda x: ops.sum(f(x) * weights), [[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]],
                             "where the input is a zero vector")


def _norm_graph(f):
    return _graph_problem(lambda x: f(x), 1)


def check_l2_normalize(function) -> CheckReport:
    """Exercise 4.1: ``function(x) -> x / |x|`` along the last axis."""
    return _run("4.1", "L2 normalisation", function, [
        ("every vector comes out at unit length", _norm_unit),
        ("each vector keeps its direction", _norm_direction),
        ("works along the last axis, for any leading axes", _norm_last_axis),
        ("a zero vector stays zero; a short one still becomes unit length", _norm_zero),
        ("a finite gradient at a zero vector", _norm_gradient),
        ("runs inside a Keras model (symbolic tensors)", _norm_graph),
    ])


# --------------------------------------------------------------------------- 4.2 Recall@K
def _recall(f, embeddings, labels, k) -> float:
    value = f(np.asarray(embeddings, dtype=float), np.asarray(labels), k)
    if np.ndim(value) != 0:
        raise AssertionError(f"should return one number, got an array of shape {np.shape(value)}")
    return float(value)


def _recall_hand(f):
    points, labels = [[0.0], [1.0], [2.4], [4.0], [10.0]], [0, 1, 0, 1, 1]
    one, two = _recall(f, points, labels, 1), _recall(f, points, labels, 2)
    if abs(one - 0.2) > 1e-9:
        return (f"points 0, 1, 2.4, 4, 10 of classes 0 1 0 1 1: only the point at 10 has its own class nearest, so "
                f"Recall@1 is 0.2; yours gives {one:.4f}")
    if abs(two - 0.6) > 1e-9:
        return (f"the same points at K = 2: those at 0, 4 and 10 find their class among their two nearest, so "
                f"Recall@2 is 0.6; yours gives {two:.4f}")
    return None


def _recall_leave_one_out(f):
    points = np.arange(10, dtype=float)[:, None] * [1.0, 0.0]
    labels = np.arange(10) % 5   # each point's only classmate is 5 away, its nearest others 1 away
    value = _recall(f, points, labels, 1)
    if value > 1e-9:
        return (f"ten points in a line whose classmates are all five steps away: no image's nearest *other* image "
                f"shares its class, so Recall@1 is 0; yours gives {value:.4f} (is an image its own neighbour?)")
    return None


def _recall_p1(f):
    from cab420utils import metrics

    rng = np.random.default_rng(9)
    labels = rng.integers(0, 6, 600)
    e = rng.normal(size=(600, 8)) + labels[:, None] * 0.4
    value, expected = _recall(f, e, labels, 1), metrics.precision_at_1(e, labels)
    if abs(value - expected) > 1e-9:
        return f"Recall@1 of 600 random points is the course's P@1, {expected:.4f}; yours gives {value:.4f}"
    return None


def _recall_reference(f):
    from cab420utils import metrics

    rng = np.random.default_rng(10)
    labels = rng.integers(0, 8, 800)
    e = rng.normal(size=(800, 4)) + labels[:, None] * 0.3
    report = metrics.identification_report(e, labels, ks=(5, 10))
    for k in (5, 10):
        value = _recall(f, e, labels, k)
        if abs(value - report[f"Recall@{k}"]) > 1e-9:
            return f"on 800 random points Recall@{k} is {report[f'Recall@{k}']:.4f}; yours gives {value:.4f}"
    return None


def _recall_fast(f):
    from cab420utils import metrics

    rng = np.random.default_rng(11)
    labels = rng.integers(0, 10, 5000)
    e = rng.normal(size=(5000, 32)).astype(np.float32)
    timing = speed.time_against_course(f, lambda x, y, k: metrics.identification_report(x, y, ks=(k,)),
                                       lambda: (e, labels, 10), budget=3.0)
    if timing.too_slow:
        return (timing.describe("5,000 images") + "; whole-array NumPy operations take about a second "
                "(is there a Python loop over pairs of images?)")
    return None


def check_recall_at_k(function) -> CheckReport:
    """Exercise 4.2: ``function(embeddings, labels, k) -> float``."""
    return _run("4.2", "Recall@K", function, [
        ("a hand-worked case of five points", _recall_hand),
        ("leave-one-out: an image is never its own neighbour", _recall_leave_one_out),
        ("Recall@1 is the course's P@1", _recall_p1),
        ("agrees with the course's metrics at K = 5 and 10", _recall_reference),
        (f"vectorised: 5,000 images in under 3 s ({speed.ON_A_SLOW_MACHINE})", _recall_fast),
    ])



# --------------------------------------------------------------------------- 5.1 softmax-ratio loss
def _ratio(f, d_pos, d_neg) -> float:
    return _scalar(f(_tensor(np.reshape(d_pos, -1)), _tensor(np.reshape(d_neg, -1))))


def _ratio_scalar(f):
    _ratio(f, [0.5, 1.0, 2.0], [2.5, 1.0, 0.5])
    return None


def _ratio_undecided(f):
    value = _ratio(f, [1.0, 3.0], [1.0, 3.0])
    if abs(value - 0.25) > 1e-5:
        return (f"when the positive and the negative are equally far, p+ = 1/2 and the loss 0.25; yours gives "
                f"{value:.4f}")
    return None


def _ratio_hand(f):
    log3 = float(np.log(3.0))
    value = _ratio(f, [0.5, log3], [0.5 + log3, 0.0])
    if abs(value - 0.3125) > 1e-5:
        return (f"d+ = 0.5, d- = 0.5 + ln 3 gives p+ = 1/4 (loss 1/16), d+ = ln 3, d- = 0 gives p+ = 3/4 (loss "
                f"9/16), mean 0.3125; yours gives {value:.4f}")
    return None


def _ratio_shift(f):
    near, far = _ratio(f, [0.2, 1.5], [0.9, 0.4]), _ratio(f, [10.2, 11.5], [10.9, 10.4])
    if abs(near - far) > 1e-5:
        return (f"adding 10 to both distances of every triplet should not change the softmax over them "
                f"({near:.4f} -> {far:.4f})")
    return None


def _ratio_large(f):
    easy, violated = _ratio(f, [100.0], [200.0]), _ratio(f, [200.0], [100.0])
    if not (np.isfinite(easy) and np.isfinite(violated)):
        return "distances of 100 and 200 gave NaN or infinity: an exponential overflowed"
    if abs(easy) > 1e-6 or abs(violated - 1) > 1e-6:
        return (f"d+ = 100, d- = 200 should cost about 0 and d+ = 200, d- = 100 about 1; yours give {easy:.4f} "
                f"and {violated:.4f}")
    return None


def _ratio_gradient(f):
    from keras import ops

    d_neg = ops.convert_to_tensor(np.array([150.0, 1.0, 0.5], np.float32))
    return _gradient_problem(lambda d: f(d, d_neg), [300.0, 1.0, 0.7], "for distances in the hundreds")


def _ratio_graph(f):
    return _graph_problem(lambda d_pos, d_neg: f(d_pos[:, 0], d_neg[:, 0]), 2)


def check_softmax_ratio_loss(function) -> CheckReport:
    """Exercise 5.1: ``function(d_pos, d_neg) -> scalar``."""
    return _run("5.1", "softmax-ratio loss", function, [
        ("returns one number for a batch", _ratio_scalar),
        ("an undecided triplet (d+ = d-) costs 0.25", _ratio_undecided),
        ("a hand-worked batch of two triplets", _ratio_hand),
        ("depends only on the difference of the two distances", _ratio_shift),
        ("finite and right for distances in the hundreds", _ratio_large),
        ("a finite gradient for distances in the hundreds", _ratio_gradient),
        ("runs inside a Keras model (symbolic tensors)", _ratio_graph),
    ])


# --------------------------------------------------------------------------- 5.2 its gradient
def _grad(f, z, form):
    out = f(np.asarray(z, dtype=float), form)
    out = np.asarray(out, dtype=float)
    if out.shape != np.shape(z):
        raise AssertionError(f"should return one gradient per entry of z, shape {np.shape(z)}, got {out.shape}")
    return out


def _autodiff(z, form):
    import tensorflow as tf

    from cab420utils import losses

    z = tf.constant(np.asarray(z, np.float32).reshape(-1))
    with tf.GradientTape() as tape:
        tape.watch(z)
        total = losses.softmax_ratio_loss(z, tf.zeros_like(z), form) * float(z.shape[0])
    return tape.gradient(total, z).numpy()


def _grad_at_zero(f):
    mse, log = float(_grad(f, [0.0], "mse")[0]), float(_grad(f, [0.0], "log")[0])
    if abs(mse - 0.25) > 1e-6:
        return f"at z = 0, sigma = 1/2, so the MSE form's slope is 2 (1/2)^2 (1/2) = 0.25; yours gives {mse:.4f}"
    if abs(log - 0.5) > 1e-6:
        return f"at z = 0 the log form's slope is 0.5; yours gives {log:.4f}"
    return None


def _grad_autodiff(f, form):
    z = np.linspace(-8, 8, 33)
    got, expected = _grad(f, z, form), _autodiff(z, form)
    worst = int(np.argmax(np.abs(got - expected)))
    if abs(got[worst] - expected[worst]) > 1e-4:
        return (f"at z = {z[worst]:.1f} automatic differentiation of the course's loss gives {expected[worst]:.5f}, "
                f"yours {got[worst]:.5f}")
    return None


def _grad_shape(f):
    z = np.random.default_rng(12).normal(size=(3, 4))
    _grad(f, z, "mse")
    _grad(f, z, "log")
    return None


def _grad_extremes(f):
    z = np.array([-1000.0, -40.0, 40.0, 1000.0])
    with np.errstate(all="ignore"):
        mse, log = _grad(f, z, "mse"), _grad(f, z, "log")
    if not (np.all(np.isfinite(mse)) and np.all(np.isfinite(log))):
        return "at z = -1000, -40, 40 or 1000 it gave NaN or infinity"
    if np.any(np.abs(mse) > 1e-10):
        return f"far from 0 on either side the MSE form's slope is practically 0; yours gives {mse.tolist()}"
    if np.any(np.abs(log - [0, 0, 1, 1]) > 1e-10):
        return (f"the log form's slope tends to 0 for easy triplets and to 1 for violated ones; "
                f"yours gives {log.tolist()}")
    return None


def check_ratio_loss_gradient(function) -> CheckReport:
    """Exercise 5.2: ``function(z, form) -> dL/dz`` per triplet."""
    return _run("5.2", "gradient of the softmax-ratio loss", function, [
        ("the slopes at z = 0", _grad_at_zero),
        ("MSE form: agrees with automatic differentiation from z = -8 to 8", lambda f: _grad_autodiff(f, "mse")),
        ("log form: agrees with automatic differentiation from z = -8 to 8", lambda f: _grad_autodiff(f, "log")),
        ("one gradient per entry, whatever the shape of z", _grad_shape),
        ("finite, and right, for z far from 0 (up to 1000)", _grad_extremes),
    ])



# --------------------------------------------------------------------------- 6.1 patch pairs
def _coded_images(n, height, width, channels=1):
    """Images whose every pixel says where it is: image * 100,000 + row * 1,000 + col * 10 + channel."""
    i, r, c, k = np.meshgrid(np.arange(n), np.arange(height), np.arange(width), np.arange(channels), indexing="ij")
    return (i * 100_000 + r * 1_000 + c * 10 + k).astype(np.float64)


def _patches(f, images, patch_size, seed=0):
    result = f(images, patch_size, np.random.default_rng(seed))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError("should return two arrays (first, second)")
    first, second = (np.asarray(r) for r in result)
    expected = (len(images), patch_size, patch_size, images.shape[-1])
    for name, x in (("first", first), ("second", second)):
        if x.shape != expected:
            raise AssertionError(f"`{name}` should have shape {expected}, got {x.shape}")
    return first, second


def _corners_of(images, patches, patch_size):
    """The (row, col) each patch was cut at, or None for a patch that is not a square of its own image."""
    corners = []
    for i, patch in enumerate(patches):
        code = int(patch[0, 0, 0])
        image, row, col = code // 100_000, code % 100_000 // 1_000, code % 1_000 // 10
        ok = (image == i and row + patch_size <= images.shape[1] and col + patch_size <= images.shape[2]
              and np.array_equal(patch, images[i, row:row + patch_size, col:col + patch_size]))
        corners.append((row, col) if ok else None)
    return corners


def _patch_shapes(f):
    try:
        _patches(f, _coded_images(5, 12, 10, 3), 4)
    except AssertionError as error:
        return f"for 5 images of 12 x 10 pixels with 3 channels and patches of 4: it {error}"
    return None


def _patch_squares(f):
    images = _coded_images(200, 10, 12, 2)
    first, second = _patches(f, images, 5)
    for name, patches in (("first", first), ("second", second)):
        bad = [i for i, c in enumerate(_corners_of(images, patches, 5)) if c is None]
        if bad:
            return (f"`{name}[{bad[0]}]` is not a 5 x 5 square cut from image {bad[0]} ({len(bad)} of 200 are not; "
                    f"rows and columns in order, every channel, inside the image)")
    return None


def _patch_uniform(f):
    images = _coded_images(4000, 9, 9)
    first, second = _patches(f, images, 4)   # 6 x 6 = 36 possible corners
    for name, patches in (("first", first), ("second", second)):
        corners = _corners_of(images, patches, 4)
        counts = np.zeros((6, 6))
        for c in corners:
            if c is not None:
                counts[c] += 1
        if counts.min() == 0:
            r, c = np.argwhere(counts == 0)[0]
            return (f"of 4,000 `{name}` patches (4 x 4 in 9 x 9 images) none was cut at row {r}, column {c}: every "
                    f"position inside the image should be possible, the last row and column included")
        if counts.max() > 2.2 * counts.mean() or counts.min() < 0.45 * counts.mean():
            return (f"the 36 possible positions of the `{name}` patches were drawn from {int(counts.min())} to "
                    f"{int(counts.max())} times in 4,000: they should be about equally likely")
    return None


def _patch_independent(f):
    images = _coded_images(2000, 8, 8)
    first, second = _patches(f, images, 3)
    same = np.mean([a == b for a, b in zip(_corners_of(images, first, 3), _corners_of(images, second, 3))])
    if same > 0.1:
        return (f"the two patches of an image were cut at the same place {same:.0%} of the time; drawn "
                f"independently among 36 places it would be about 3%")
    return None


def _patch_seeded(f):
    images = _coded_images(50, 10, 10)
    return _seed_problem(lambda seed: _patches(f, images, 4, seed), "patches")


def _patch_fast(f):
    from cab420utils import contrasting

    images = np.random.default_rng(0).integers(0, 256, (60_000, 28, 28, 1)).astype(np.float32)
    timing = speed.time_against_course(f, lambda x, p, rng: contrasting.sample_patch_pairs(x, p, rng, flip=False),
                                       lambda: (images, 14, np.random.default_rng(0)), budget=2.0)
    if timing.too_slow:
        return (timing.describe("60,000 images") + "; one fancy index takes a fraction of a second (is there a "
                "Python loop over the images?)")
    return None


def check_patch_pairs(function) -> CheckReport:
    """Exercise 6.1: ``function(images, patch_size, rng) -> (first, second)``."""
    return _run("6.1", "patch pairs", function, [
        ("two arrays of (N, p, p, C) patches", _patch_shapes),
        ("each patch is a p x p square of its own image", _patch_squares),
        ("every position inside the image is about equally likely", _patch_uniform),
        ("the two patches of an image are placed independently", _patch_independent),
        ("the same seed gives the same patches", _patch_seeded),
        (f"vectorised: 60,000 images in under 2 s ({speed.ON_A_SLOW_MACHINE})", _patch_fast),
    ])


# --------------------------------------------------------------------------- 6.2 spatial-contrasting loss
def _sc(f, first, second) -> float:
    return _scalar(f(_tensor(first), _tensor(second)))


def _sc_scalar(f):
    _sc(f, np.zeros((5, 3)), np.ones((5, 3)))
    return None


def _sc_hand(f):
    value = _sc(f, [[0.0], [2.0]], [[0.5], [2.0]])
    expected = 0.25 * (2 * np.log1p(np.exp(-1.5)) + np.log1p(np.exp(-1.0)) + np.log1p(np.exp(-2.0)))
    if abs(value - expected) > 1e-4:
        return (f"first patches at 0 and 2, second patches at 0.5 and 2 (distances [[0.5, 2], [1.5, 0]]): rows cost "
                f"log(1 + e^-1.5) each, columns log(1 + e^-1) and log(1 + e^-2), mean of the halves {expected:.4f}; "
                f"yours gives {value:.4f}")
    return None


def _sc_collapsed(f):
    value = _sc(f, np.zeros((6, 4)), np.zeros((6, 4)))
    if abs(value - np.log(6)) > 1e-4:
        return f"every patch embedded at one point is chance among 6 images, log 6 = {np.log(6):.4f}; yours {value:.4f}"
    return None


def _sc_symmetric(f):
    rng = np.random.default_rng(13)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    forward, backward = _sc(f, a, b), _sc(f, b, a)
    if abs(forward - backward) > 1e-4:
        return (f"swapping the first and second patches changed the loss ({forward:.4f} -> {backward:.4f}): both "
                f"directions, rows and columns, should count")
    return None


def _sc_euclidean(f):
    value = _sc(f, [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]])
    expected = 0.25 * (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(2.0)) + 2 * np.log(2.0))
    if abs(value - expected) > 1e-4:
        return (f"first patches both at the origin, second patches at the origin and 2 away: logits minus the "
                f"Euclidean (not squared) distance give {expected:.4f}; yours gives {value:.4f}")
    return None


def _sc_far(f):
    value = _sc(f, [[0.0], [3000.0]], [[1000.0], [2000.0]])
    if not np.isfinite(value):
        return "distances in the thousands gave NaN or infinity: every e^-d underflowed to 0 before the log"
    if abs(value) > 1e-4:
        return (f"own patches 1,000 apart and the others 2,000 apart: the right answer wins by 1,000, loss about 0; "
                f"yours gives {value:.4f}")
    return None


def _sc_gradient(f):
    from keras import ops

    second = ops.convert_to_tensor(np.array([[0.3, 0.1], [1.0, -1.0], [2.0, 0.5]], np.float32))
    return _gradient_problem(lambda first: f(first, second), [[0.3, 0.1], [1.0, -1.0], [0.0, 0.0]],
                             "where two embeddings coincide")


def _sc_graph(f):
    return _graph_problem(lambda first, second: f(first, second), 2)


def check_spatial_contrasting_loss(function) -> CheckReport:
    """Exercise 6.2: ``function(first, second) -> scalar``."""
    return _run("6.2", "spatial-contrasting loss", function, [
        ("returns one number for a batch", _sc_scalar),
        ("a hand-worked batch of two images", _sc_hand),
        ("a collapsed embedding costs log N", _sc_collapsed),
        ("symmetric: both patches look for each other", _sc_symmetric),
        ("logits are minus Euclidean (not squared) distances", _sc_euclidean),
        ("finite and right for distances in the thousands", _sc_far),
        ("a finite gradient where two embeddings coincide", _sc_gradient),
        ("runs inside a Keras model (symbolic tensors)", _sc_graph),
    ])


__all__ = ["CheckReport", "assert_checks_passed", "with_fallback", "is_not_written", "check_balanced_pairs",
           "check_equal_error_rate", "check_triplet_loss", "check_semi_hard_negatives",
           "check_contrastive_loss", "check_roc_auc_from_distances", "check_l2_normalize", "check_recall_at_k",
           "check_softmax_ratio_loss", "check_ratio_loss_gradient",
           "check_patch_pairs", "check_spatial_contrasting_loss"]


# --------------------------------------------------------------------------- 7.1 reference distribution
def _refdist(f, embeddings, references) -> np.ndarray:
    out = _np(f(_tensor(embeddings), _tensor(references))).astype(np.float64)
    expected = (len(embeddings), len(references))
    if out.shape != expected:
        raise AssertionError(f"should return one row per embedding and one column per reference, shape {expected}; "
                             f"got {out.shape}")
    return out


def _refdist_shape(f):
    rng = np.random.default_rng(71)
    _refdist(f, rng.normal(size=(5, 3)), rng.normal(size=(4, 3)))
    return None


def _refdist_hand(f):
    out = _refdist(f, [[1.0], [0.0]], [[0.0], [2.0]])
    if np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-4):
        return "it returns probabilities; it should return their logarithms (log-probabilities, all <= 0)"
    probs = np.exp(out)
    tail = np.exp(-4.0) / (1 + np.exp(-4.0))
    if not np.allclose(probs[0], [0.5, 0.5], atol=1e-4):
        return (f"references at 0 and 2, a sample at 1 is equally far from both: probabilities (0.5, 0.5); yours "
                f"give ({probs[0, 0]:.4f}, {probs[0, 1]:.4f})")
    if not np.allclose(probs[1], [1 - tail, tail], atol=1e-4):
        return (f"a sample at 0 has squared distances 0 and 4: probabilities (1, e^-4) / (1 + e^-4) = "
                f"({1 - tail:.4f}, {tail:.4f}); yours give ({probs[1, 0]:.4f}, {probs[1, 1]:.4f}) (squared distances, "
                f"not distances, and minus them)")
    return None


def _refdist_rows(f):
    rng = np.random.default_rng(72)
    out = _refdist(f, rng.normal(size=(8, 3)), rng.normal(size=(6, 3)))
    sums = np.exp(out).sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        return f"the probabilities of a row should add up to 1; yours add up to {sums.min():.4f} ... {sums.max():.4f}"
    return None


def _refdist_far(f):
    out = _refdist(f, [[60.0], [-20.0]], [[0.0], [100.0]])
    if not np.all(np.isfinite(out)):
        return ("squared distances in the thousands gave -inf or NaN: e^-d underflowed to 0 before the log; take the "
                "logarithm inside the softmax")
    expected = np.array([[-2000.0, 0.0], [0.0, -14000.0]])
    if not np.allclose(out, expected, rtol=1e-3, atol=1e-3):
        return (f"references at 0 and 100, samples at 60 and -20: log-probabilities (-2000, 0) and (0, -14000); "
                f"yours give {np.round(out, 1).tolist()}")
    return None


def _refdist_gradient(f):
    from keras import ops

    references = ops.convert_to_tensor(np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 40.0]], np.float32))
    problem = _gradient_problem(lambda x: ops.sum(f(x, references)[:, 0]), [[-20.0, 0.0], [15.0, 1.0]], "")
    if problem and problem.startswith("the gradient is NaN"):
        return "the gradient is NaN for embeddings tens apart: a probability underflowed to 0 before its log"
    return problem


def _refdist_graph(f):
    return _graph_problem(lambda embeddings, references: f(embeddings, references), 2)


def check_reference_distribution(function) -> CheckReport:
    """Exercise 7.1: ``function(embeddings, references) -> (N, K) log-probabilities``."""
    return _run("7.1", "class distribution from references", function, [
        ("returns an (N, K) array: one row per embedding, one column per reference", _refdist_shape),
        ("a hand-worked case: references at 0 and 2", _refdist_hand),
        ("each row's probabilities add up to 1", _refdist_rows),
        ("finite and right for squared distances in the thousands", _refdist_far),
        ("a finite gradient for far-apart embeddings", _refdist_gradient),
        ("runs inside a Keras model (symbolic tensors)", _refdist_graph),
    ])


# --------------------------------------------------------------------------- 7.2 entropy from log-probabilities
def _ent(f, log_probs) -> np.ndarray:
    log_probs = np.asarray(log_probs, np.float64)
    out = _np(f(_tensor(log_probs))).astype(np.float64)
    if out.shape != (len(log_probs),):
        raise AssertionError(f"should return one entropy per row, shape ({len(log_probs)},); got {out.shape}")
    return out


def _ent_shape(f):
    _ent(f, np.log(np.full((6, 4), 0.25)))
    return None


def _ent_hand(f):
    out = _ent(f, np.log([[0.5, 0.5]]))
    if abs(out[0] - np.log(2)) > 1e-4:
        return f"probabilities (0.5, 0.5) have entropy log 2 = {np.log(2):.4f}; yours gives {out[0]:.4f}"
    return None


def _ent_zero(f):
    out = _ent(f, [[0.0, -1000.0, -1000.0]])
    if not np.isfinite(out[0]):
        return ("a row whose other probabilities are exactly 0 (log-probabilities 0, -1000, -1000) gave NaN: "
                "0 times log 0 = 0 * -inf; a probability of 0 should add nothing")
    if abs(out[0]) > 1e-4:
        return f"a certain row (one probability 1, the others 0) has entropy 0; yours gives {out[0]:.4f}"
    return None


def _ent_uniform(f):
    k = 7
    out = _ent(f, np.log(np.full((1, k), 1.0 / k)))
    if abs(out[0] - np.log(k)) > 1e-4:
        return f"a uniform row over 7 classes has the largest entropy, log 7 = {np.log(k):.4f}; yours gives {out[0]:.4f}"
    rng = np.random.default_rng(74)
    logits = rng.normal(size=(20, k)) * 2
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    got = _ent(f, log_probs)
    if np.any(got < -1e-4) or np.any(got > np.log(k) + 1e-4):
        return f"entropies over 7 classes lie between 0 and log 7; yours range from {got.min():.4f} to {got.max():.4f}"
    return None


def _ent_gradient(f):
    problem = _gradient_problem(lambda x: f(x)[0], [[0.0, -1000.0, -1000.0]], "")
    if problem and problem.startswith("the gradient is NaN"):
        return "the gradient is NaN where a probability is exactly 0: the slope of log p is infinite at p = 0"
    if problem and problem.startswith("no gradient"):
        return "no gradient reaches the log-probabilities: compute the entropy with keras.ops on the input"
    return problem


def _ent_graph(f):
    return _graph_problem(lambda log_probs: f(log_probs), 1)


def check_entropy_of(function) -> CheckReport:
    """Exercise 7.2: ``function(log_probs) -> (N,) entropies``."""
    return _run("7.2", "entropy of a class distribution", function, [
        ("returns one entropy per row", _ent_shape),
        ("a hand-worked case: (0.5, 0.5) has entropy log 2", _ent_hand),
        ("a certain row has entropy 0, finite where a probability is 0", _ent_zero),
        ("a uniform row has the largest entropy, log K", _ent_uniform),
        ("a finite gradient where a probability is 0", _ent_gradient),
        ("runs inside a Keras model (symbolic tensors)", _ent_graph),
    ])


__all__ += ["check_reference_distribution", "check_entropy_of"]


# --------------------------------------------------------------------------- 8.1 Cauchy kernels
def _kernels(f, mu, gamma, image_size):
    out = _np(f(_tensor(mu), _tensor(gamma), image_size))
    want = (np.shape(mu)[0], np.shape(mu)[1], image_size)
    if out.shape != want:
        raise AssertionError(f"mu {np.shape(mu)} over {image_size} pixels should give shape {want}, got {out.shape}")
    return out.astype(np.float64)


def _kern_shape(f):
    _kernels(f, np.zeros((2, 3)) + 4.0, [1.0, 2.0], 10)
    return None


def _kern_rows_sum(f):
    rng = np.random.default_rng(81)
    out = _kernels(f, rng.uniform(0, 15, (4, 5)), rng.uniform(0.3, 4, 4), 16)
    sums = out.sum(axis=-1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        return f"each filter's weights should add up to 1; yours add up to {np.round(sums.min(), 4)} … {np.round(sums.max(), 4)}"
    return None


def _kern_hand(f):
    out = _kernels(f, [[1.0]], [1.0], 3)[0, 0]
    if not np.allclose(out, [0.25, 0.5, 0.25], atol=1e-4):
        return ("a filter centred on pixel 1 of 3 with width 1 weighs 1/(1+1), 1, 1/(1+1) before normalising, "
                f"so [0.25, 0.5, 0.25] after; yours {np.round(out, 4).tolist()}")
    return None


def _kern_centre(f):
    out = _kernels(f, [[4.5, 2.0, 7.0]], [1.5], 10)[0]
    if not np.allclose(out[0], out[0][::-1], atol=1e-5):
        return "a filter centred at 4.5, the middle of 10 pixels, should be symmetric about it"
    if out[1].argmax() != 2 or out[2].argmax() != 7:
        return f"filters centred on pixels 2 and 7 should peak there; yours peak at {out[1].argmax()} and {out[2].argmax()}"
    return None


def _kern_width(f):
    narrow, wide = _kernels(f, [[5.0], [5.0]], [0.5, 3.0], 11)[:, 0]
    if not narrow[5] > wide[5] or not narrow[0] < wide[0]:
        return "a smaller gamma should give a narrower filter: more weight at its centre, less far from it"
    return None


def _kern_gradient(f):
    import keras

    if keras.config.backend() != "tensorflow":
        return None
    import tensorflow as tf

    mu = tf.Variable(np.array([[2.3, 6.1]], np.float32))
    gamma = tf.Variable(np.array([1.2], np.float32))
    weights = tf.constant(np.linspace(-1, 1, 9 * 2).reshape(1, 2, 9).astype(np.float32))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(f(mu, gamma, 9) * weights)
    g_mu, g_gamma = tape.gradient(value, [mu, gamma])
    if g_mu is None or g_gamma is None:
        return "no gradient reaches the centres or the width: compute the kernels with keras.ops on mu and gamma"
    if not (np.all(np.isfinite(g_mu.numpy())) and np.all(np.isfinite(g_gamma.numpy()))):
        return "the gradient is not finite"
    if np.abs(g_mu.numpy()).max() == 0:
        return "the gradient with respect to the centres is 0: moving a filter should change what it sees"
    return None


def _kern_graph(f):
    return _graph_problem(lambda mu, gamma: f(mu, gamma, 12), 2, shapes=[(None, 4), (None,)])


def check_cauchy_kernels(function) -> CheckReport:
    """Exercise 8.1: ``function(mu, gamma, image_size) -> (batch, S, image_size)``."""
    return _run("8.1", "Cauchy filterbank", function, [
        ("one row of image_size weights per filter", _kern_shape),
        ("each filter's weights add up to 1", _kern_rows_sum),
        ("a hand-worked filter over 3 pixels", _kern_hand),
        ("filters peak at their centres, symmetric about them", _kern_centre),
        ("a smaller gamma gives a narrower filter", _kern_width),
        ("gradients reach the centres and the width", _kern_gradient),
        ("runs inside a Keras model (symbolic tensors)", _kern_graph),
    ])


# --------------------------------------------------------------------------- 8.2 a glimpse from two filterbanks
def _glimpse(f, images, fx, fy):
    out = _np(f(_tensor(images), _tensor(fx), _tensor(fy)))
    want = (np.shape(images)[0], np.shape(fy)[1], np.shape(fx)[1])
    if out.shape != want:
        raise AssertionError(f"images {np.shape(images)} through filterbanks fx {np.shape(fx)} and fy {np.shape(fy)} "
                             f"should give glimpses of shape {want}, got {out.shape}")
    return out.astype(np.float64)


def _glimpse_shape(f):
    _glimpse(f, np.zeros((2, 8, 8)), np.full((2, 3, 8), 1 / 8), np.full((2, 3, 8), 1 / 8))
    return None


def _glimpse_identity(f):
    image = np.random.default_rng(82).random((1, 6, 6))
    eye = np.eye(6)[None]
    out = _glimpse(f, image, eye, eye)
    if not np.allclose(out, image, atol=1e-5):
        return "with both filterbanks the identity (one filter per pixel), a glimpse should be the image itself"
    return None


def _glimpse_rows_columns(f):
    image = np.arange(36.0).reshape(1, 6, 6)
    fx = np.zeros((1, 1, 6)); fx[0, 0, 2] = 1.0      # x picks column 2
    fy = np.zeros((1, 1, 6)); fy[0, 0, 5] = 1.0      # y picks row 5
    out = _glimpse(f, image, fx, fy)[0, 0, 0]
    if abs(out - image[0, 5, 2]) > 1e-4:
        hint = " (rows and columns swapped: fy weighs the rows, fx the columns)" if abs(out - image[0, 2, 5]) < 1e-4 else ""
        return f"fx picking column 2 and fy picking row 5 should see pixel [5, 2] = 32; yours gives {out:.4g}{hint}"
    return None


def _glimpse_batch(f):
    rng = np.random.default_rng(83)
    images = rng.random((3, 5, 5))
    fx, fy = rng.random((3, 2, 5)), rng.random((3, 4, 5))
    out = _glimpse(f, images, fx, fy)
    expected = np.einsum("bin,bnm,bjm->bij", fy, images, fx)
    if not np.allclose(out, expected, atol=1e-4):
        return "each image should go through its own pair of filterbanks (the batch axis comes first everywhere)"
    return None


def _glimpse_course(f):
    from .. import glimpses

    rng = np.random.default_rng(84)
    params = rng.normal(size=(4, 3)).astype(np.float32)
    images = rng.random((4, 16, 16)).astype(np.float32)
    fx, fy = (_np(x) for x in glimpses.cauchy_filterbank(params, 16, 5))
    out = _glimpse(f, images, fx, fy)
    expected = _np(glimpses.take_glimpse(images, params, 5))
    if not np.allclose(out, expected, atol=1e-4):
        return "through Cauchy filterbanks of the course, your glimpses differ from the course's take_glimpse"
    return None


def _glimpse_graph(f):
    return _graph_problem(f, 3, shapes=[(None, 8, 8), (None, 3, 8), (None, 3, 8)])


def check_glimpse_from(function) -> CheckReport:
    """Exercise 8.2: ``function(images, fx, fy) -> (batch, Sy, Sx)`` glimpses."""
    return _run("8.2", "a glimpse through two filterbanks", function, [
        ("one (Sy, Sx) glimpse per image", _glimpse_shape),
        ("identity filterbanks return the image", _glimpse_identity),
        ("fy weighs the rows, fx the columns", _glimpse_rows_columns),
        ("each image through its own filterbanks", _glimpse_batch),
        ("agrees with the course's glimpse on Cauchy filterbanks", _glimpse_course),
        ("runs inside a Keras model (symbolic tensors)", _glimpse_graph),
    ])


# --------------------------------------------------------------------------- 9.1 the one-shot decision
def _decide(f, scores):
    out = f(np.asarray(scores, np.float64))
    if not isinstance(out, tuple) or len(out) != 2:
        raise AssertionError("should return two arrays: (choice, confidence)")
    choice, confidence = (np.asarray(_np(x)) for x in out)
    n = np.shape(scores)[0]
    if choice.shape != (n,) or confidence.shape != (n,):
        raise AssertionError(f"{n} trials should give a choice and a confidence each, shapes ({n},); "
                             f"got {choice.shape} and {confidence.shape}")
    return choice, confidence.astype(np.float64)


def _decide_shape(f):
    _decide(f, np.zeros((7, 20)) + np.arange(20))
    return None


def _decide_hand(f):
    choice, confidence = _decide(f, [[0.0, np.log(3.0)], [2.0, 0.0], [0.0, 0.0]])
    if list(choice[:2]) != [1, 0]:
        return f"scores [0, log 3] and [2, 0] should choose candidates 1 and 0; yours chose {choice[:2].tolist()}"
    if abs(confidence[0] - 0.75) > 1e-4:
        return f"with scores [0, log 3] the softmax gives the chosen candidate 3/4; yours {confidence[0]:.4f}"
    if abs(confidence[2] - 0.5) > 1e-4:
        return f"two equal scores give the chosen one a probability of 1/2; yours {confidence[2]:.4f}"
    return None


def _decide_shift(f):
    scores = np.random.default_rng(91).normal(size=(30, 20))
    c1, p1 = _decide(f, scores)
    c2, p2 = _decide(f, scores + np.arange(30)[:, None] * 7.0)
    if (c1 != c2).any() or not np.allclose(p1, p2, atol=1e-6):
        return "adding the same number to all the scores of a trial should change neither its choice nor its confidence"
    return None


def _decide_large(f):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        choice, confidence = _decide(f, [[1000.0, 999.0], [-1000.0, -1001.0]])
    if not np.all(np.isfinite(confidence)):
        return "scores of ±1000 gave a NaN or infinite confidence: e^1000 overflows; shift each row first"
    expected = 1.0 / (1.0 + np.exp(-1.0))
    if not np.allclose(confidence, expected, atol=1e-4) or list(choice) != [0, 0]:
        return f"scores [1000, 999] and [-1000, -1001] should both give candidate 0 at {expected:.4f}; yours {np.round(confidence, 4).tolist()}"
    return None


def _decide_range(f):
    scores = np.random.default_rng(92).normal(size=(50, 20)) * 4
    choice, confidence = _decide(f, scores)
    if (choice != scores.argmax(1)).any():
        return "the choice should be the candidate with the highest score"
    if np.any(confidence < 1 / 20 - 1e-9) or np.any(confidence > 1 + 1e-9):
        return "the chosen candidate's probability lies between 1/20 (all equal) and 1"
    return None


def check_decide(function) -> CheckReport:
    """Exercise 9.1: ``function(scores) -> (choice, confidence)``."""
    return _run("9.1", "the one-shot decision", function, [
        ("one choice and one confidence per trial", _decide_shape),
        ("hand-worked trials", _decide_hand),
        ("adding a constant to a trial's scores changes nothing", _decide_shift),
        ("safe with large scores (no overflow)", _decide_large),
        ("the best candidate, with a probability between 1/ways and 1", _decide_range),
    ])


# --------------------------------------------------------------------------- 9.2 the sign test
def _p(f, wins, losses) -> float:
    value = f(wins, losses)
    if np.ndim(value) != 0:
        raise AssertionError(f"should return one number, the p-value; got shape {np.shape(value)}")
    return float(value)


def _sign_hand(f):
    got = _p(f, 10, 0)
    if abs(got - 2 / 1024) > 1e-9:
        return f"10 wins, 0 losses: each of the two all-one-way splits has probability 1/1024, so p = 2/1024; yours {got:.6g}"
    got = _p(f, 8, 2)
    if abs(got - 112 / 1024) > 1e-9:
        return f"8 wins, 2 losses: p = 2 (1 + 10 + 45) / 1024 = 0.109375; yours {got:.6g}"
    return None


def _sign_even(f):
    for wins, losses in ((0, 0), (5, 5), (6, 5)):
        got = _p(f, wins, losses)
        if abs(got - 1.0) > 1e-9:
            return f"{wins} wins and {losses} losses is as even as a split can be: p = 1; yours {got:.6g}"
    return None


def _sign_symmetric(f):
    for wins, losses in ((3, 12), (40, 25)):
        if abs(_p(f, wins, losses) - _p(f, losses, wins)) > 1e-12:
            return f"two-sided: {wins} against {losses} and {losses} against {wins} are equally uneven"
    return None


def _sign_large(f):
    import math

    got = _p(f, 600, 520)
    expected = 2 * sum(math.comb(1120, k) for k in range(521)) / 2 ** 1120
    if not np.isfinite(got) or abs(got - expected) > 1e-6:
        return f"600 against 520 should give p = {expected:.4f}; yours {got:.6g} (beware 2**1120 as a float)"
    return None


def _sign_monotone(f):
    ps = [_p(f, 20 + k, 20 - k) for k in range(0, 21, 4)]
    if any(b > a + 1e-12 for a, b in zip(ps, ps[1:])):
        return "a more uneven split should never be more likely: p should fall as wins - losses grows"
    return None


def check_sign_test(function) -> CheckReport:
    """Exercise 9.2: ``function(wins, losses) -> two-sided p-value``."""
    return _run("9.2", "the sign test", function, [
        ("hand-worked splits", _sign_hand),
        ("an even split gives p = 1, never more", _sign_even),
        ("two-sided: symmetric in wins and losses", _sign_symmetric),
        ("exact for a thousand trials", _sign_large),
        ("p falls as the split grows more uneven", _sign_monotone),
    ])


__all__ += ["check_cauchy_kernels", "check_glimpse_from", "check_decide", "check_sign_test"]
