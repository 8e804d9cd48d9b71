"""Checks on plain arguments, shared by the modules that refuse bad input."""
from __future__ import annotations

import numpy as np


def is_whole_number(n) -> bool:
    """``n`` is a count: an int, or a float or NumPy number with no fractional part (not a bool, NaN or inf)."""
    return not isinstance(n, (bool, np.bool_)) and float(n).is_integer()
