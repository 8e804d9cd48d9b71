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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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


def _timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


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


def _pairs_seeded(f):
    labels = np.repeat(np.arange(5), 20)
    first, second = _pairs(f, labels, 200, seed=7), _pairs(f, labels, 200, seed=7)
    if not all(np.array_equal(x, y) for x, y in zip(first, second)):
        return "two calls with generators seeded alike gave different pairs: draw every random number from `rng`"
    other = _pairs(f, labels, 200, seed=8)
    if all(np.array_equal(x, y) for x, y in zip(first, other)):
        return "different seeds gave the same pairs: draw every random number from `rng`"
    return None


def _pairs_fast(f):
    labels = np.random.default_rng(0).integers(0, 10, 60_000)
    _, seconds = _timed(f, labels, 200_000, np.random.default_rng(0))
    if seconds > 2.0:
        return (f"200,000 pairs took {seconds:.1f} s; whole-array NumPy operations draw them in a few "
                f"hundredths of a second (is there a Python loop over pairs?)")
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
        ("vectorised: 200,000 pairs from 60,000 labels in under 2 s", _pairs_fast),
    ])


# --------------------------------------------------------------------------- 1.2 equal error rate
def _eer(f, scores, same) -> float:
    value = f(np.asarray(scores, dtype=float), np.asarray(same))
    if np.ndim(value) != 0:
        raise AssertionError(f"should return one number, got an array of shape {np.shape(value)}")
    return float(value)


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
    import keras

    if keras.config.backend() != "tensorflow":
        return None
    import tensorflow as tf

    spec = tf.TensorSpec((None, 4), tf.float32)
    graph = tf.function(lambda a, p, n: f(a, p, n, 0.2), input_signature=[spec] * 3)
    try:
        graph.get_concrete_function()
    except Exception as error:  # noqa: BLE001
        return (f"it cannot run inside a Keras model, on symbolic tensors ({describe_error(error)}); "
                f"use keras.ops rather than NumPy")
    return None


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


__all__ = ["CheckReport", "assert_checks_passed", "with_fallback", "is_not_written", "check_balanced_pairs",
           "check_equal_error_rate", "check_triplet_loss", "check_semi_hard_negatives"]
