"""Checks on plain arguments, shared by the modules that refuse bad input."""
from __future__ import annotations

import numpy as np


def is_whole_number(n) -> bool:
    """``n`` is a count: an int, or a float or NumPy number with no fractional part (not a bool, NaN or inf)."""
    return not isinstance(n, (bool, np.bool_)) and float(n).is_integer()


def finite_positive(value) -> float | None:
    """``value`` as a float when it is a finite number above 0 (a number, or text that reads as one), else None.
    A bool is not a number here: ``True`` would read as 1, a setting nobody meant."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None
