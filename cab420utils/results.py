"""Write what a notebook measured where the rendered course can find it.

``build/results/<notebook>.json`` holds
``{notebook, title, profile, rehearsal, device, seconds, versions, metrics, references, floors,
headline, published}``
(``rehearsal``: true for a rehearsal's meaningless numbers, see :mod:`cab420utils.profiles`)
and, for Fashion-MNIST notebooks, ``build/results/<notebook>/embeddings.npz``
holds the test split's ``embeddings`` and ``labels`` so later notebooks (and
students) can compare without retraining.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

BUILD_VARIABLE = "CAB420_BUILD"


def project_root(start: Path | None = None) -> Path:
    """The folder holding ``pyproject.toml`` above ``start`` (default: cwd)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "cab420utils").is_dir():
            return folder
    return here


def build_dir() -> Path:
    """``$CAB420_BUILD`` if set, else ``build/`` at the project root."""
    return Path(os.environ.get(BUILD_VARIABLE) or project_root() / "build")


def results_dir() -> Path:
    return build_dir() / "results"


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _as_number(value):
    value = float(value)
    if math.isnan(value):
        return None
    return value


def record_results(run, metrics: dict, references: dict | None = None, floors: dict | None = None,
                   embeddings=None, labels=None, extra: dict | None = None, headline: tuple | None = None,
                   published: dict | None = None) -> Path:
    """Save a notebook's measured metrics (and optionally its test embeddings).

    ``run`` is what :func:`cab420utils.setup` returned; its clock gives the
    seconds.  ``headline = (metric, against)`` names the notebook's key result
    and what it is compared with (a baseline, or the other side of its
    experiment), both among ``metrics``: the course's summary table and chart
    show that pair.  ``published`` maps a metric to the published figure *on the
    same task* (a number, e.g. 0.9775 for ConvARC on Lake's runs; figures on
    other data stay text in ``references``).  Returns the JSON file's path.
    """
    if headline is not None:
        if len(headline) != 2 or any(name not in metrics for name in headline):
            raise ValueError(f"headline must be (metric, against), both among the recorded metrics "
                             f"({', '.join(map(str, metrics))}); got {headline!r}")
    for name, value in (published or {}).items():
        if name not in metrics or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"published maps a recorded metric to a number; got {name!r}: {value!r}")
    if embeddings is not None:
        embeddings = np.asarray(embeddings)
        labels = np.asarray(labels)
        if embeddings.ndim != 2 or labels.shape != (len(embeddings),):
            raise ValueError(f"embeddings must be (N, D) with labels (N,); got {embeddings.shape} and {labels.shape}")
    record = {
        "notebook": run.notebook,
        "title": run.title,
        "profile": run.profile,
        "rehearsal": bool(getattr(run, "rehearsal", False)),
        "device": run.device,
        "seconds": round(run.seconds, 1),
        "seed": run.seed,
        "versions": run.versions,
        "metrics": {str(k): _as_number(v) for k, v in metrics.items()},
        "references": dict(references or {}),
        "floors": {str(k): float(v) for k, v in (floors or {}).items()},
        "headline": None if headline is None else {"metric": str(headline[0]), "against": str(headline[1])},
        "published": {str(k): float(v) for k, v in (published or {}).items()},
    }
    if extra:
        record.update(extra)
    path = results_dir() / f"{run.notebook}.json"
    _atomic_write(path, lambda f: f.write(json.dumps(record, indent=2).encode()))
    if embeddings is not None:
        _atomic_write(results_dir() / run.notebook / "embeddings.npz",
                      lambda f: np.savez_compressed(f, embeddings=embeddings.astype(np.float32),
                                                    labels=labels.astype(np.int64)))
    print(f"Recorded {len(record['metrics'])} metrics for {run.notebook} ({record['seconds']:.0f} s, "
          f"{run.profile} profile{', REHEARSAL: not results' if record['rehearsal'] else ''}) in {path}")
    return path


def load_results(notebook_prefix: str) -> dict | None:
    """The recorded results of an earlier notebook (e.g. ``'01-'``), or None if it has not run."""
    matches = sorted(results_dir().glob(f"{notebook_prefix}*.json"))
    if not matches:
        return None
    return json.loads(matches[0].read_text())
