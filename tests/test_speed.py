"""cab420utils.grading.speed: an answer's time limit follows the machine it runs on, with a simulated clock."""
import numpy as np
import pytest

from cab420utils.grading import checks, speed


class Clock:
    """perf_counter for speed: each call of a timed function moves it by that function's seconds."""

    def __init__(self, monkeypatch):
        self.now = 0.0
        monkeypatch.setattr(speed, "perf_counter", lambda: self.now)

    def taking(self, *seconds):
        """A function whose calls take these seconds, one after another (the last repeats)."""
        left = list(seconds)

        def function(*args):
            self.now += left.pop(0) if len(left) > 1 else left[0]
            return sum(args)
        return function


def test_the_limit_is_the_budget_or_ten_times_the_course(monkeypatch):
    clock = Clock(monkeypatch)
    fast_machine = speed.time_against_course(clock.taking(1.5), clock.taking(0.05), lambda: (1, 2), budget=2.0)
    # the budget, 2 s, is more than 10 x 0.05 s
    assert (fast_machine.limit, fast_machine.course, fast_machine.seconds) == pytest.approx((2.0, 0.05, 1.5))
    assert not fast_machine.too_slow and fast_machine.result == 3
    slow_machine = speed.time_against_course(clock.taking(3.5), clock.taking(0.4), lambda: (1, 2), budget=2.0)
    assert slow_machine.limit == pytest.approx(4.0) and not slow_machine.too_slow   # 10 x 0.4 s
    loop = speed.time_against_course(clock.taking(60.0), clock.taking(0.4), lambda: (1, 2), budget=2.0)
    assert loop.too_slow and loop.seconds == pytest.approx(60.0)          # far over: not measured again


def test_a_stall_just_over_the_limit_is_measured_once_more(monkeypatch):
    clock = Clock(monkeypatch)
    calls = []
    answer = clock.taking(5.0, 1.0)
    stalled = speed.time_against_course(lambda *a: calls.append(a) or answer(*a), clock.taking(0.1), lambda: (2,),
                                        budget=2.0)
    assert len(calls) == 2 and stalled.seconds == pytest.approx(1.0) and not stalled.too_slow   # the better of two
    slow = speed.time_against_course(clock.taking(5.0, 4.0), clock.taking(0.1), lambda: (2,), budget=2.0)
    assert slow.too_slow and slow.seconds == pytest.approx(4.0)


def test_each_run_gets_fresh_arguments_and_the_message_says_why(monkeypatch):
    Clock(monkeypatch)
    seen = []
    speed.time_against_course(lambda rng: seen.append(rng.random()), lambda rng: seen.append(rng.random()),
                              lambda: (np.random.default_rng(0),), budget=1.0)
    assert seen[0] == seen[1]                     # the course and the answer drew the same numbers
    text = speed.Timing(seconds=7.9, limit=5.1, course=0.51, budget=3.0).describe("5,000 images")
    assert text == ("5,000 images took 7.9 s; the limit here is 5.1 s (3 s, or 10 times the 0.51 s the course's "
                    "own function took on this machine just now)")
    with pytest.raises(ValueError, match="above 0"):
        speed.time_against_course(print, print, tuple, budget=0)


def test_the_recall_check_passes_a_vectorised_answer_on_a_busy_machine_and_fails_a_loop(monkeypatch):
    """Exercise 4.2's speed check on a machine 5 times slower than the budget assumes (the course's function
    takes 1.2 s), and on the same machine an answer with a Python loop over pairs of images."""
    clock = Clock(monkeypatch)

    def course(embeddings, labels, ks):
        clock.now += 1.2
        return {"Recall@10": 0.5}

    monkeypatch.setattr("cab420utils.metrics.identification_report", course)

    def vectorised(embeddings, labels, k):
        clock.now += 5.0          # 1.7 x the 3 s budget, as the CPU is 5 x slower
        return 0.5

    def pairs_loop(embeddings, labels, k):
        clock.now += 400.0
        return 0.5

    assert checks._recall_fast(vectorised) is None
    problem = checks._recall_fast(pairs_loop)
    assert "5,000 images took 400.0 s; the limit here is 12.0 s" in problem and "pairs of images" in problem
