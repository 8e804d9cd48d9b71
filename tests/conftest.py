"""Shared fixtures: the real Fashion-MNIST (skipped without the data unless
CAB420_REQUIRE_DATA=1, which CI sets), and a private build folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
if not os.environ.get("CAB420_DATA") and SHARED.is_dir():
    os.environ["CAB420_DATA"] = str(SHARED)


@pytest.fixture(scope="session")
def fashion():
    """Fashion-MNIST with the course's default validation split."""
    from cab420utils import data

    try:
        return data.load_fashion_mnist()
    except data.DataNotFoundError as error:
        if os.environ.get("CAB420_REQUIRE_DATA") == "1":
            pytest.fail(f"CAB420_REQUIRE_DATA=1 but the data is missing:\n{error}")
        pytest.skip(f"Fashion-MNIST not available: {error}".splitlines()[0])


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CAB420_BUILD", str(tmp_path / "build"))
    return tmp_path / "build"
