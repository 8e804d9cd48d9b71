"""How long an exercise's answer may take, measured fairly on whatever machine runs the check.

A vectorised answer takes about as long as the course's own function; a Python loop over pairs or
images takes tens to thousands of times longer.  A fixed number of seconds cannot tell the two apart
on every machine: a laptop, a CI machine running two notebooks at once, or a marker grading many
submissions side by side can take several times longer for the same vectorised code.  So the limit
is the stated budget or ``TIMES_THE_COURSE`` times what the course's function takes on the same
arguments, on this machine, just before, whichever is more; and a time a little over the limit is
measured once more, the better of the two counting, since one call can stall (a busy core, the
operating system handing over fresh memory).
"""
from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter
from typing import Callable

TIMES_THE_COURSE = 10   # an answer may take this many times the course's own function, here and now
RETRY_WITHIN = 3        # a time over the limit but within this many limits is measured once more
ON_A_SLOW_MACHINE = f"on a slow machine, {TIMES_THE_COURSE} times the course's own time"   # for checks' names


def seconds_taken(function: Callable, *args):
    """``function(*args)`` and the seconds it took."""
    start = perf_counter()
    result = function(*args)
    return result, perf_counter() - start


@dataclass(frozen=True)
class Timing:
    seconds: float      # the answer's time (the better of two where it was measured again)
    limit: float        # what it may take on this machine
    course: float       # what the course's own function took here, just before
    budget: float       # the stated budget, the least limit
    result: object = None   # what the answer returned (the first time)

    @property
    def too_slow(self) -> bool:
        return self.seconds > self.limit

    def describe(self, what: str) -> str:
        """E.g. "5,000 images took 7.9 s; the limit here is 5.1 s (3 s, or 10 times the 0.51 s the course's
        own function took on this machine just now)"."""
        return (f"{what} took {self.seconds:.1f} s; the limit here is {self.limit:.1f} s ({self.budget:g} s, or "
                f"{TIMES_THE_COURSE} times the {self.course:.2f} s the course's own function took on this machine "
                f"just now)")


def time_against_course(answer: Callable, course: Callable, arguments: Callable[[], tuple],
                        budget: float) -> Timing:
    """Time ``answer`` and the course's function on fresh ``arguments()`` each (so a random generator among
    them starts afresh for each), and say whether the answer kept to ``max(budget, TIMES_THE_COURSE x the
    course's time)``; the Timing holds what the answer returned.  An answer that raises is not caught: its
    error is what the check reports."""
    if not budget > 0:
        raise ValueError(f"the budget must be a number of seconds above 0, got {budget!r}")
    _, course_seconds = seconds_taken(course, *arguments())
    limit = max(budget, TIMES_THE_COURSE * course_seconds)
    result, seconds = seconds_taken(answer, *arguments())
    if limit < seconds <= RETRY_WITHIN * limit:
        seconds = min(seconds, seconds_taken(answer, *arguments())[1])
    return Timing(seconds, limit, course_seconds, budget, result)
