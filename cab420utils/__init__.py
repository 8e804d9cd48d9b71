"""Helpers shared by the CAB420 metric-learning notebooks.

Small modules, each named for what it holds: ``data`` (loaders), ``sampling``
(pairs, triplets, batches), ``losses``, ``models``, ``metrics``, ``plots``,
``profiles`` (the fast/full switch) and ``results`` (the recorder).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .profiles import setup  # noqa: E402
from .results import record_results  # noqa: E402

__all__ = ["setup", "record_results"]
__version__ = "0.1.0"
